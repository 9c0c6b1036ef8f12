"""Calibrated pairs list (``--format calibrated-pairs``): the "pairs with ground truth" text layout
of the ScanNet / YFCC / MegaDepth test pairs used by SuperGlue and LoFTR.

One pair per line, 38 whitespace-separated fields::

    name0 name1 rot0 rot1 K0(9 numbers, row-major) K1(9) T_0to1(16, row-major 4x4)

``name0``/``name1`` are image paths relative to the list file's folder (paths leaving it are
refused unless allowed); ``K0``/``K1`` are the
intrinsics in pixels of the images as stored; ``T_0to1`` takes camera-0 coordinates to camera-1
coordinates (``X1 = R X0 + t`` with ``R = T[:3, :3]``, ``t = T[:3, 3]``). ``#`` starts a comment.

``rot0``/``rot1`` (number of 90-degree turns applied to each image before matching, in the
original lists a rotation-robustness variant) must be 0: the pipeline matches the images as
stored, so a non-zero turn is refused with a one-line error rather than silently ignored.

Every pair is a fundamental pair with calibrated ground truth (``K1``, ``K2``, ``R``, ``t`` of
:class:`~hardmatch.datasets.spec.PairSpec`), in file order. A pair is named
``FOLDER/STEM0-STEM1`` when both images share a folder (``STEM0-STEM1`` at the list's own level),
else ``PATH0-PATH1`` (paths without extension); ``@LINE`` is added when a name repeats.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Optional

import numpy as np

from ..core.errors import DatasetError
from .calibration_checks import check_intrinsics, check_rotation
from .files import list_file_lines, listed_path
from .spec import Layout, PairSpec

#: Fields per line: two names, two rotations, K0 (9), K1 (9), T_0to1 (16).
FIELDS = 38


def read_calibrated_pairs(path: Path, geometry: Optional[str] = None, allow_outside_root: bool = False) -> list:
    """The pairs of a calibrated pairs list, in file order (``geometry`` is ignored: fundamental);
    image paths outside the list's folder are refused unless ``allow_outside_root``."""
    path = Path(path)
    specs, names = [], set()
    for lineno, fields in list_file_lines(path, "calibrated pairs"):
        spec = _parse_line(path, lineno, fields, allow_outside_root)
        if spec.name in names:
            spec.name = f"{spec.name}@{lineno}"
        names.add(spec.name)
        specs.append(spec)
    if not specs:
        raise DatasetError(f"{path}: calibrated pairs file lists no pairs")
    return specs


def _parse_line(path: Path, lineno: int, fields: list, allow_outside_root: bool = False) -> PairSpec:
    """One line of the list (already split, comment removed) as a PairSpec."""
    where = f"{path}:{lineno}"
    if len(fields) != FIELDS:
        raise DatasetError(
            f"{where}: expected {FIELDS} fields 'name0 name1 rot0 rot1 K0(9) K1(9) T_0to1(16)', got {len(fields)}"
        )
    try:
        numbers = np.array([float(v) for v in fields[2:]], dtype=np.float64)
    except ValueError:
        raise DatasetError(f"{where}: rot0, rot1, K0, K1 and T_0to1 must be numbers") from None
    if not np.all(np.isfinite(numbers)):
        raise DatasetError(f"{where}: NaN or infinite values")
    rot0, rot1 = numbers[:2]
    if rot0 != 0 or rot1 != 0:
        raise DatasetError(
            f"{where}: rot0/rot1 = {rot0:g}/{rot1:g}: rotated pairs are not supported "
            "(the images are matched as stored; use a list with rot0 = rot1 = 0)"
        )
    K0 = check_intrinsics(numbers[2:11].reshape(3, 3), f"{where}: K0")
    K1 = check_intrinsics(numbers[11:20].reshape(3, 3), f"{where}: K1")
    T = numbers[20:36].reshape(4, 4)
    if np.max(np.abs(T[3] - [0, 0, 0, 1])) > 1e-9:
        raise DatasetError(f"{where}: T_0to1 is not a rigid transform (last row must be 0 0 0 1)")
    R = check_rotation(T[:3, :3], f"{where}: T_0to1")
    t = T[:3, 3].copy()
    if not np.any(t):
        raise DatasetError(f"{where}: T_0to1 has no translation, the pair has no epipolar geometry")
    images = [listed_path(path.parent, name, where, allow_outside_root) for name in fields[:2]]
    for image in images:
        if not image.is_file():
            raise DatasetError(f"{where}: image {image} does not exist")
    return PairSpec(_pair_name(fields[0], fields[1]), images[0], images[1], "fundamental", K1=K0, K2=K1, R=R, t=t)


def _pair_name(name0: str, name1: str) -> str:
    """``FOLDER/STEM0-STEM1`` for images in one folder, else ``PATH0-PATH1`` (no extensions)."""
    p0, p1 = PurePosixPath(name0), PurePosixPath(name1)
    if p0.parent == p1.parent:
        prefix = "" if str(p0.parent) == "." else f"{p0.parent}/"
        return f"{prefix}{p0.stem}-{p1.stem}"
    return f"{p0.with_suffix('')}-{p1.with_suffix('')}"


def is_calibrated_pairs(path: Path) -> bool:
    """Whether ``path`` is a text file whose first pair line has :data:`FIELDS` fields."""
    try:
        with open(path, "r", encoding="utf-8") as handle:
            for _ in range(100):  # leading comment / blank lines
                fields = handle.readline(100_000).split("#", 1)[0].split()
                if fields:
                    return len(fields) == FIELDS
    except (OSError, UnicodeDecodeError):
        return False
    return False


LAYOUT = Layout(
    "calibrated-pairs",
    read_calibrated_pairs,
    is_calibrated_pairs,
    geometry="fundamental",
    takes_file=True,
    lists_paths=True,
)
