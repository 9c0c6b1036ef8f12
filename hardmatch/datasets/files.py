"""Small file helpers of the dataset readers: finding images, listing folders, loading text arrays.

Every loader raises :class:`~hardmatch.core.errors.DatasetError` with the file's path on a missing,
unreadable or malformed file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from ..core.errors import DatasetError
from ..core.io import image_size as core_image_size

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".pbm", ".bmp", ".tif", ".tiff", ".webp")


def subdirs(path: Path) -> list:
    """The sub-folders of ``path`` (hidden ones left out), sorted."""
    return sorted(d for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))


def is_image(path: Path) -> bool:
    """Whether ``path`` is a file with an image extension (:data:`IMAGE_EXTENSIONS`, any case)."""
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS


def find_image(folder: Path, stem: str) -> Optional[Path]:
    """The image file ``folder/stem.<image ext>`` (case-insensitive extension), or None."""
    matches = sorted(p for p in folder.glob(f"{_glob_escape(stem)}.*") if p.stem == stem and is_image(p))
    return matches[0] if matches else None


def _glob_escape(text: str) -> str:
    """Escape glob wildcards in a literal file-name part."""
    return re.sub(r"([\[\]*?])", r"[\1]", text)


def image_size(path: Path) -> Tuple[int, int]:
    """``(width, height)`` of the image file ``path`` as displayed (EXIF orientation applied, as the loader
    and cv2.imread do), from its header (:func:`hardmatch.core.io.image_size`)."""
    return core_image_size(Path(path), DatasetError)


def load_matrix(path: Path, what: str = "3x3 matrix") -> np.ndarray:
    """Load a whitespace-separated 3x3 matrix text file as float64 (3, 3)."""
    matrix = load_text_array(path)
    if matrix.shape != (3, 3):
        raise DatasetError(f"{path}: expected a {what}, got an array of shape {matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        raise DatasetError(f"{path}: {what} contains NaN or infinite values")
    return matrix


def load_text_array(path: Path) -> np.ndarray:
    """A numeric text file (``#`` comments, blank lines and commas allowed) as float64 (rows, cols)."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read text file ({exc})") from None
    rows = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].replace(",", " ").strip()
        if not line:
            continue
        try:
            rows.append([float(v) for v in line.split()])
        except ValueError:
            raise DatasetError(f"{path}: not a numeric text file (bad line {line[:40]!r})") from None
    if not rows:
        raise DatasetError(f"{path}: empty file, expected numbers")
    if len({len(r) for r in rows}) != 1:
        raise DatasetError(f"{path}: rows have different numbers of values")
    return np.array(rows, dtype=np.float64)


def list_file_lines(path: Path, what: str) -> List[Tuple[int, List[str]]]:
    """The lines of a text listing as ``(line number, whitespace-separated fields)``, ``#``
    comments and blank lines left out; ``what`` names the format in the errors (``"pairs"``)."""
    if path.is_dir():
        raise DatasetError(f"{path}: {what} format expects a text file, got a folder")
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read {what} file ({exc})") from None
    listed = ((lineno, raw.split("#", 1)[0].split()) for lineno, raw in enumerate(lines, start=1))
    return [(lineno, fields) for lineno, fields in listed if fields]


def load_correspondences(path: Path) -> np.ndarray:
    """Lines ``x1 y1 x2 y2`` as float64 (N, 4)."""
    points = load_text_array(path)
    if points.ndim != 2 or points.shape[1] != 4:
        raise DatasetError(f"{path}: expected lines 'x1 y1 x2 y2', got {points.shape[1]} values per line")
    if not np.all(np.isfinite(points)):
        raise DatasetError(f"{path}: correspondences contain NaN or infinite values")
    return points


#: The environment variable that, set to 1, lets ``hardmatch eval`` read listed paths outside the dataset folder.
ALLOW_OUTSIDE_ROOT_ENV = "HARDMATCH_ALLOW_OUTSIDE_ROOT"


def listed_path(base: Path, text: str, where: str, allow_outside_root: bool = False) -> Path:
    """``base / text`` for a path listed in a dataset file (``where``: ``FILE:LINE`` for errors).

    A path that leaves ``base`` (absolute, or with ``..`` climbing above it) raises
    :class:`DatasetError` unless ``allow_outside_root``; the check is on the path as written
    (nothing outside is touched before it), so symbolic links inside the folder still work."""
    normal = os.path.normpath(text)
    outside = Path(text).is_absolute() or normal == os.pardir or normal.startswith(os.pardir + os.sep)
    if outside and not allow_outside_root:
        raise DatasetError(f"{where}: {text} is outside the dataset folder {base}; pass --allow-outside-root "
                           f"(or set {ALLOW_OUTSIDE_ROOT_ENV}=1) to read it")
    return base / text
