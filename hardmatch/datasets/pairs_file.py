"""Pairs text file layout (``--format pairs``): lines ``img1 img2 [gt-file | none]``, paths relative
to the file's folder (paths leaving it are refused unless allowed), ``#`` comments.

The ground-truth file is a 3x3 homography (image 1 -> image 2; a homography pair) or lines
``x1 y1 x2 y2`` (N x 4 correspondences; a fundamental pair). ``none`` marks a non-matching pair:
any model returned for it is a false accept. A pair is named ``STEM1-STEM2`` (``@LINE`` added
when the name repeats).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from ..core.errors import DatasetError
from .files import list_file_lines, listed_path, load_text_array
from .spec import Layout, PairSpec


def read_pairs_file(path: Path, geometry: Optional[str], allow_outside_root: bool = False) -> list:
    """The pairs listed in a pairs text file, in file order; ``geometry`` is that of pairs
    without a ground-truth file (default homography) and must agree with those with one.
    Listed paths outside the file's folder are refused unless ``allow_outside_root``
    (:func:`~hardmatch.datasets.files.listed_path`)."""
    base = path.parent
    specs, names = [], set()
    for lineno, fields in list_file_lines(path, "pairs"):
        if len(fields) not in (2, 3):
            raise DatasetError(f"{path}:{lineno}: expected 'img1 img2 [gt-file | none]', got {len(fields)} fields")
        negative = len(fields) == 3 and fields[2].lower() == "none"
        listed = [listed_path(base, text, f"{path}:{lineno}", allow_outside_root)
                  for text in (fields[:2] if negative else fields)]
        image1, image2 = listed[:2]
        for image in (image1, image2):
            if not image.is_file():
                raise DatasetError(f"{path}:{lineno}: image {image} does not exist")
        H = points = None
        pair_geometry = geometry or "homography"
        if len(fields) == 3 and not negative:
            H, points, pair_geometry = _ground_truth(listed[2], f"{path}:{lineno}", geometry)
        name = f"{image1.stem}-{image2.stem}"
        if name in names:
            name = f"{name}@{lineno}"
        names.add(name)
        specs.append(PairSpec(name, image1, image2, pair_geometry, H, points, negative))
    if not specs:
        raise DatasetError(f"{path}: pairs file lists no pairs")
    return specs


def _ground_truth(gt_path: Path, where: str,
                  geometry: Optional[str]) -> Tuple[Optional[np.ndarray], Optional[np.ndarray], str]:
    """``(H, points, geometry)`` of a ground-truth file: a (3, 3) H (homography pair) or (N, 4)
    points (fundamental pair); ``where`` (``FILE:LINE``) prefixes errors of the listing."""
    if not gt_path.is_file():
        raise DatasetError(f"{where}: ground-truth file {gt_path} does not exist")
    array = load_text_array(gt_path)
    H = points = None
    if array.shape == (3, 3):
        H, pair_geometry = array, "homography"
    elif array.shape[1] == 4:
        points, pair_geometry = array, "fundamental"
    else:
        raise DatasetError(
            f"{gt_path}: ground truth must be a 3x3 homography or N x 4 correspondences, got shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise DatasetError(f"{gt_path}: ground truth contains NaN or infinite values")
    if geometry is not None and geometry != pair_geometry:
        raise DatasetError(f"{where}: ground truth is a {pair_geometry} pair, cannot override to {geometry}")
    return H, points, pair_geometry


LAYOUT = Layout("pairs", read_pairs_file, Path.is_file, takes_file=True, lists_paths=True)
