"""CMP "homogr" / "kusvod2" layout (``--format cmp``).

``NAMEA.ext``, ``NAMEB.ext``, ``NAME_vpts.mat`` (struct ``validation`` with field ``pts``: 6xN
homogeneous points, image A rows 0-2, image B rows 3-5) and optionally ``NAME_model.txt`` (3x3).
The geometry of each pair is decided from the data (see :func:`read_cmp`) unless forced.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from ..core.errors import DatasetError
from .files import find_image, load_matrix
from .scoring import homography_error
from .spec import Layout, PairSpec

#: Mean reprojection error (pixels) below which a model file / fitted H counts as fitting the
#: ground-truth points of a CMP pair.
_FIT_TOLERANCE_PX = 5.0

_README_PLANAR = "planar scenes! thus cannot be used for testing of epipolar"
_README_NON_PLANAR = "does not contain purely planar"


def is_cmp(root: Path) -> bool:
    """Whether ``root`` holds ``*_vpts.mat`` files."""
    return any(root.glob("*_vpts.mat"))


def _load_vpts(path: Path) -> np.ndarray:
    """Read ``validation.pts`` (6xN homogeneous) of a CMP ``*_vpts.mat`` as (N, 4) pixels."""
    import scipy.io

    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as exc:  # scipy raises assorted errors for corrupt files
        raise DatasetError(f"{path}: cannot read MATLAB file ({exc})") from None
    validation = mat.get("validation")
    if validation is None:
        raise DatasetError(f"{path}: no 'validation' struct in the MATLAB file")
    try:
        pts = validation["pts"]
    except (ValueError, IndexError, KeyError, TypeError):
        raise DatasetError(f"{path}: 'validation' struct has no 'pts' field") from None
    pts = np.asarray(pts)
    while pts.dtype == object:
        if pts.size != 1:
            raise DatasetError(f"{path}: unexpected structure of validation.pts")
        pts = np.asarray(pts.flat[0])
    try:
        pts = np.asarray(pts, dtype=np.float64)
    except (TypeError, ValueError):
        raise DatasetError(f"{path}: validation.pts is not numeric") from None
    if pts.ndim != 2 or 6 not in pts.shape:
        raise DatasetError(f"{path}: validation.pts must be 6xN homogeneous points, got shape {pts.shape}")
    if pts.shape[0] != 6:
        pts = pts.T
    if pts.shape[1] == 0:
        raise DatasetError(f"{path}: validation.pts holds no points")
    w1, w2 = pts[2], pts[5]
    if np.any(np.abs(w1) < 1e-12) or np.any(np.abs(w2) < 1e-12) or not np.all(np.isfinite(pts)):
        raise DatasetError(f"{path}: validation.pts has points at infinity or non-finite values")
    return np.stack([pts[0] / w1, pts[1] / w1, pts[3] / w2, pts[4] / w2], axis=1)


def _readme_geometry(folder: Path) -> Optional[str]:
    for candidate in sorted(folder.iterdir()):
        if candidate.is_file() and candidate.name.lower() in ("readme.txt", "readme", "readme.md"):
            try:
                text = " ".join(candidate.read_text(errors="replace").lower().split())
            except OSError:
                continue
            if _README_PLANAR in text:
                return "homography"
            if _README_NON_PLANAR in text:
                return "fundamental"
    return None


def _try_model(path: Path) -> Optional[np.ndarray]:
    """The 3x3 matrix held by a ``NAME_model.txt``, or None when absent or not a 3x3 matrix."""
    if not path.is_file():
        return None
    try:
        return load_matrix(path)
    except DatasetError:
        return None


def _fit_homography(points: np.ndarray, where: str) -> np.ndarray:
    if points.shape[0] < 4:
        raise DatasetError(f"{where}: need at least 4 ground-truth points to fit a homography, got {points.shape[0]}")
    H, _ = cv2.findHomography(points[:, :2].astype(np.float64), points[:, 2:].astype(np.float64), method=0)
    if H is None or not np.all(np.isfinite(H)):
        raise DatasetError(f"{where}: cannot fit a homography to the ground-truth points")
    return H / H[2, 2] if abs(H[2, 2]) > 1e-12 else H


def read_cmp(root: Path, geometry: Optional[str]) -> list:
    """The pairs of a CMP homogr / kusvod2 folder; ``geometry`` forces every pair's geometry.

    Geometry per pair, unless overridden: a 3x3 ``NAME_model.txt`` that fits the points as a
    homography (mean error A->B < 5 px) makes it a homography pair. Otherwise the folder's
    README decides ("planar scenes! Thus cannot be used for testing of epipolar" ->
    homography, "does not contain purely planar" -> fundamental); a pair with a 3x3 model
    that does not fit as H is fundamental unless the README says the scenes are planar. With
    neither model file nor README hint, the majority decision of the folder's other pairs is
    used, and failing that a homography fitted to the points decides (fits < 5 px ->
    homography).
    """
    mats = sorted(root.glob("*_vpts.mat"))
    if not mats:
        raise DatasetError(f"{root}: no *_vpts.mat files, not a CMP homogr/kusvod2 folder")
    readme = _readme_geometry(root)
    entries = []
    for mat in mats:
        name = mat.name[: -len("_vpts.mat")]
        image1 = find_image(root, name + "A")
        image2 = find_image(root, name + "B")
        if image1 is None or image2 is None:
            missing = f"{name}A" if image1 is None else f"{name}B"
            raise DatasetError(f"{root}: pair {name} has {mat.name} but no image {missing}.<ext>")
        points = _load_vpts(mat)
        model = _try_model(root / f"{name}_model.txt")
        model_fits = model is not None and homography_error(model, points) < _FIT_TOLERANCE_PX
        if geometry is not None:
            decided = geometry
        elif model_fits:
            decided = "homography"
        elif readme is not None:
            decided = readme
        elif model is not None:
            decided = "fundamental"
        else:
            decided = None  # decided below from the folder's other pairs
        entries.append([name, image1, image2, points, model if model_fits else None, decided])

    votes = [e[5] for e in entries if e[5] is not None]
    majority = None
    if votes:
        n_h = votes.count("homography")
        majority = "homography" if n_h * 2 > len(votes) else "fundamental" if n_h * 2 < len(votes) else None

    specs = []
    for name, image1, image2, points, model, decided in entries:
        where = f"{root}: pair {name}"
        if decided is None:
            if majority is not None:
                decided = majority
            else:
                fitted = _fit_homography(points, where) if points.shape[0] >= 4 else None
                fits = fitted is not None and homography_error(fitted, points) < _FIT_TOLERANCE_PX
                decided = "homography" if fits else "fundamental"
        H = None
        if decided == "homography":
            H = model if model is not None else _fit_homography(points, where)
        specs.append(PairSpec(name, image1, image2, decided, H, points))
    return specs


LAYOUT = Layout("cmp", read_cmp, is_cmp, hint="*_vpts.mat")
