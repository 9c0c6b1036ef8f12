"""Progress of a long stage: ``bar(label, length)`` -> a context manager yielding ``advance(n)``.

Stages take such a factory (``reconstruct``'s stages, its wide retry); the command line passes one that
draws on a terminal, the library default :func:`no_bar` draws nothing.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable

#: ``bar(label, length)`` -> a context manager yielding ``advance(n)``.
ProgressFactory = Callable[[str, int], object]


@contextmanager
def no_bar(label: str, length: int):
    """A bar that draws nothing."""
    yield lambda n=1: None
