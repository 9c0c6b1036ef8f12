"""The images of a scene: the image files of one folder (not its subfolders), by name.

A folder that is missing, is not a folder, or holds fewer than two image files is a layout
problem (:class:`~hardmatch.core.errors.DatasetError`, exit 5). Whether each file decodes is found out
when its features are extracted (:mod:`hardmatch.scene.features`): a corrupt image is skipped there
with a warning.
"""

from __future__ import annotations

from pathlib import Path

from ..core.errors import DatasetError

#: File name endings taken as images (case-insensitive); anything else in the folder is ignored.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pnm", ".jp2")


def list_images(folder: Path) -> list[str]:
    """Sorted names of the image files directly in ``folder`` (at least two, else :class:`DatasetError`)."""
    folder = Path(folder)
    if not folder.exists():
        raise DatasetError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise DatasetError(f"{folder}: not a folder (give a folder of images)")
    try:
        names = sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    except OSError as exc:
        raise DatasetError(f"{folder}: cannot list ({exc.strerror or exc})") from exc
    if not names:
        raise DatasetError(f"{folder}: no image files ({', '.join(IMAGE_SUFFIXES[:4])}, ...)")
    if len(names) == 1:
        raise DatasetError(f"{folder}: only one image ({names[0]}); a reconstruction needs at least two")
    return names
