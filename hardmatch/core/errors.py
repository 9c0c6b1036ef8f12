"""Exceptions that carry a one-line, user-facing message.

The CLI prints ``str(error)`` of any :class:`HardmatchError` on one line and exits with
``error.exit_code``; everything else is a bug and keeps its traceback.
"""


class HardmatchError(Exception):
    """Base class of the errors hardmatch reports to users."""

    exit_code = 2


class ImageError(HardmatchError):
    """An image is missing, unreadable, not an image, empty or too small."""

    exit_code = 3


class WeightsError(HardmatchError):
    """A weights file cannot be found, downloaded, verified or loaded."""

    exit_code = 4


class NoModelError(HardmatchError):
    """Matching ran but no geometric model could be verified."""

    exit_code = 1


class DatasetError(HardmatchError):
    """A dataset folder or file does not have the expected layout."""

    exit_code = 5


class OutputError(HardmatchError):
    """An output file or folder cannot be written, or is in use by another run."""

    exit_code = 5


class InterruptedByUser(HardmatchError):
    """The run was stopped (Ctrl-C, SIGINT); what was already written is kept for a resume."""

    exit_code = 130
