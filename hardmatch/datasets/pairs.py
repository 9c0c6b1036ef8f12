"""Two-view evaluation datasets: pair listings with ground truth, and the judging metrics.

:func:`read_dataset` lists the image pairs of a dataset in its native layout as
:class:`PairSpec` records; :func:`judge` decides whether an estimated model matches a pair
under the project's rule:

* homography pairs: mean reprojection error (image 1 -> image 2) of the ground-truth points
  under the estimated H is at most :data:`H_THRESHOLD_PX` (5 px);
* fundamental pairs: mean symmetric point-to-epipolar-line distance of the ground-truth
  points under the estimated F is at most :data:`F_THRESHOLD_PX` (3 px).

Supported layouts (``fmt``):

``cmp``
    CMP "homogr" / "kusvod2": ``NAMEA.ext``, ``NAMEB.ext``, ``NAME_vpts.mat`` (struct
    ``validation`` with field ``pts``: 6xN homogeneous points, image A rows 0-2, image B
    rows 3-5) and optionally ``NAME_model.txt`` (3x3).
``oxford``
    Oxford affine sequence: ``img1.ext`` .. ``imgN.ext`` + ``H1to2p`` .. ``H1toNp``; a folder
    of such sequence folders is accepted too.
``hpatches``
    A folder of sequence folders with ``1.ppm`` .. ``6.ppm`` + ``H_1_2`` .. ``H_1_6``, or a
    single sequence folder.
``evd``
    ``1/NAME.png``, ``2/NAME.png``, ``h/NAME.txt`` (3x3 H, image 1 -> image 2).
``wxbs``
    One folder per pair (optionally one level under category folders) holding two images
    and ``corrs.txt`` (lines ``x1 y1 x2 y2``); geometry is fundamental.
``pairs``
    A text file with lines ``img1 img2 [gt-file | none]`` (paths relative to the file's folder);
    ``none`` marks a non-matching pair: any model returned for it is a false accept.
``auto``
    Detected from the layout.

Point arrays are float64 of shape (N, 4) with columns ``x1, y1, x2, y2`` (pixels, image 1
then image 2). Homographies are float64 (3, 3) and map image 1 to image 2. Image sizes are
given as ``(width, height)``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from ..errors import DatasetError

PathLike = Union[str, os.PathLike]

#: A homography pair is matched when the mean reprojection error is at most this (pixels).
H_THRESHOLD_PX = 5.0
#: A fundamental pair is matched when the mean symmetric epipolar distance is at most this (pixels).
F_THRESHOLD_PX = 3.0

GEOMETRIES = ("homography", "fundamental")
FORMATS = ("auto", "cmp", "oxford", "hpatches", "evd", "wxbs", "pairs")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".pbm", ".bmp", ".tif", ".tiff", ".webp")

#: Mean reprojection error (pixels) below which a model file / fitted H counts as fitting the
#: ground-truth points of a CMP pair.
_FIT_TOLERANCE_PX = 5.0

_README_PLANAR = "planar scenes! thus cannot be used for testing of epipolar"
_README_NON_PLANAR = "does not contain purely planar"


@dataclass
class PairSpec:
    """One image pair of a two-view dataset with its ground truth.

    Attributes:
        name: identifier of the pair, unique within the dataset (e.g. ``"Boston"``, ``"graf/1-3"``).
        image1: path of the first image.
        image2: path of the second image.
        geometry: ``"homography"`` or ``"fundamental"``: the model the pair is judged with.
        H: float64 (3, 3) ground-truth homography mapping image 1 to image 2, or None.
        points: float64 (N, 4) ground-truth correspondences ``x1, y1, x2, y2``, or None.
        negative: the images do not match (a ``none`` line of a pairs file); any model is wrong.
    """

    name: str
    image1: Path
    image2: Path
    geometry: str
    H: Optional[np.ndarray] = None
    points: Optional[np.ndarray] = None
    negative: bool = False


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


def _as_points(points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 4:
        raise ValueError(f"points must have shape (N, 4), got {pts.shape}")
    if pts.shape[0] == 0:
        raise ValueError("points is empty (shape (0, 4)): nothing to measure the error on")
    return pts


def _as_model(model) -> Optional[np.ndarray]:
    """Return ``model`` as a float64 (3, 3) array, or None when it is missing or not finite."""
    if model is None:
        return None
    matrix = np.asarray(model, dtype=np.float64)
    if matrix.shape != (3, 3):
        raise ValueError(f"model must have shape (3, 3), got {matrix.shape}")
    if not np.all(np.isfinite(matrix)) or not np.any(matrix):
        return None
    return matrix


def _project(H: np.ndarray, xy: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Map (N, 2) points through (3, 3) H; returns (N, 2) points and the (N,) homogeneous w."""
    homog = np.hstack([xy, np.ones((xy.shape[0], 1))]) @ H.T
    w = homog[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        mapped = homog[:, :2] / w[:, None]
    return mapped, w


def homography_error(H_est: Optional[np.ndarray], points: np.ndarray) -> float:
    """Mean reprojection error (pixels) of ground-truth correspondences under ``H_est``.

    Args:
        H_est: (3, 3) homography mapping image 1 to image 2, or None.
        points: (N, 4) correspondences ``x1, y1, x2, y2``, N >= 1.

    Returns:
        mean over the N points of ``|| H_est(x1, y1) - (x2, y2) ||``; ``inf`` when ``H_est`` is
        None, non-finite or all zero, or maps a point to infinity.
    """
    pts = _as_points(points)
    H = _as_model(H_est)
    if H is None:
        return float("inf")
    mapped, w = _project(H, pts[:, :2])
    if np.any(np.abs(w) < 1e-12):
        return float("inf")
    error = float(np.mean(np.linalg.norm(mapped - pts[:, 2:], axis=1)))
    return error if np.isfinite(error) else float("inf")


def symmetric_epipolar_error(F_est: Optional[np.ndarray], points: np.ndarray) -> float:
    """Mean symmetric point-to-epipolar-line distance (pixels) under ``F_est``.

    Convention ``x2^T F x1 = 0``. For each point the error is
    ``(d(x2, F x1) + d(x1, F^T x2)) / 2`` with ``d`` the Euclidean point-to-line distance.

    Args:
        F_est: (3, 3) fundamental matrix, or None.
        points: (N, 4) correspondences ``x1, y1, x2, y2``, N >= 1.

    Returns:
        the mean over the N points; ``inf`` when ``F_est`` is None, non-finite or all zero, or
        gives a degenerate (zero) epipolar line for a point.
    """
    pts = _as_points(points)
    F = _as_model(F_est)
    if F is None:
        return float("inf")
    ones = np.ones((pts.shape[0], 1))
    x1 = np.hstack([pts[:, :2], ones])  # (N, 3)
    x2 = np.hstack([pts[:, 2:], ones])  # (N, 3)
    lines2 = x1 @ F.T  # (N, 3): F x1, lines in image 2
    lines1 = x2 @ F  # (N, 3): F^T x2, lines in image 1
    norm2 = np.hypot(lines2[:, 0], lines2[:, 1])
    norm1 = np.hypot(lines1[:, 0], lines1[:, 1])
    if np.any(norm1 < 1e-300) or np.any(norm2 < 1e-300):
        return float("inf")
    residual = np.sum(x2 * lines2, axis=1)  # x2^T F x1, (N,)
    dist2 = np.abs(residual) / norm2
    dist1 = np.abs(residual) / norm1
    error = float(np.mean(0.5 * (dist1 + dist2)))
    return error if np.isfinite(error) else float("inf")


def grid_points_from_homography(
    H_gt: np.ndarray,
    width: int,
    height: int,
    step: float = 10.0,
    image2_size: Optional[Tuple[int, int]] = None,
) -> np.ndarray:
    """Ground-truth correspondences from a regular grid over image 1 mapped by ``H_gt``.

    Args:
        H_gt: (3, 3) ground-truth homography mapping image 1 to image 2.
        width, height: size of image 1 in pixels; the grid covers ``[0, width) x [0, height)``
            with spacing ``step``, offset by ``step / 2`` from the top-left corner.
        step: grid spacing in pixels (> 0).
        image2_size: ``(width2, height2)`` of image 2; when given, only points that land inside
            image 2 are kept (if none do, every point with a finite, in-front projection is kept).

    Returns:
        float64 (N, 4) array ``x1, y1, x2, y2``.
    """
    H = _as_model(H_gt)
    if H is None:
        raise ValueError("H_gt must be a finite, non-zero (3, 3) matrix")
    if step <= 0:
        raise ValueError(f"step must be positive, got {step}")
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    step = float(step)
    xs = np.arange(min(step / 2.0, (width - 1) / 2.0), width, step)
    ys = np.arange(min(step / 2.0, (height - 1) / 2.0), height, step)
    gx, gy = np.meshgrid(xs, ys)
    xy1 = np.stack([gx.ravel(), gy.ravel()], axis=1)
    xy2, w = _project(H, xy1)
    # Points with w <= 0 are behind the second camera (or at infinity): not real correspondences.
    keep = (w > 1e-12) & np.all(np.isfinite(xy2), axis=1)
    if image2_size is not None:
        w2, h2 = image2_size
        inside = keep & (xy2[:, 0] >= 0) & (xy2[:, 0] <= w2 - 1) & (xy2[:, 1] >= 0) & (xy2[:, 1] <= h2 - 1)
        if np.any(inside):
            keep = inside
    return np.hstack([xy1[keep], xy2[keep]]).astype(np.float64)


def _image_size(path: Path) -> Tuple[int, int]:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DatasetError(f"{path}: cannot read image to get its size")
    return int(image.shape[1]), int(image.shape[0])


def ground_truth_points(
    spec: PairSpec,
    image_sizes: Optional[Sequence[Tuple[int, int]]] = None,
    step: float = 10.0,
) -> np.ndarray:
    """The (N, 4) ground-truth correspondences of ``spec``.

    ``spec.points`` when present, else a grid mapped through ``spec.H``
    (:func:`grid_points_from_homography`). ``image_sizes`` is ``((w1, h1), (w2, h2))``; when
    None the sizes are read from the image files. Raises :class:`DatasetError` when the pair
    has no ground truth.
    """
    if spec.points is not None and len(spec.points) > 0:
        return _as_points(spec.points)
    if spec.H is None:
        raise DatasetError(f"pair {spec.name}: no ground truth (neither points nor H), cannot be judged")
    if image_sizes is None:
        image_sizes = (_image_size(spec.image1), _image_size(spec.image2))
    (w1, h1), size2 = image_sizes[0], image_sizes[1]
    points = grid_points_from_homography(spec.H, int(w1), int(h1), step=step, image2_size=tuple(size2))
    if points.shape[0] == 0:
        raise DatasetError(f"pair {spec.name}: ground-truth H maps no grid point of image 1 in front of image 2")
    return points


def judge(
    spec: PairSpec,
    model: Optional[np.ndarray],
    geometry: Optional[str] = None,
    image_sizes: Optional[Sequence[Tuple[int, int]]] = None,
) -> Tuple[bool, float]:
    """Judge an estimated model against the ground truth of a pair.

    Args:
        spec: the pair.
        model: estimated (3, 3) model (H mapping image 1 to image 2, or F with
            ``x2^T F x1 = 0``), or None when estimation failed.
        geometry: what ``model`` is, ``"homography"`` or ``"fundamental"``; None means
            ``spec.geometry``. The error is measured with the metric of the model's geometry
            (reprojection error for H at :data:`H_THRESHOLD_PX`, symmetric epipolar distance
            for F at :data:`F_THRESHOLD_PX`) on the pair's ground-truth points.
        image_sizes: ``((w1, h1), (w2, h2))``, used only for pairs whose ground truth is an H
            without points (grid points, see :func:`ground_truth_points`); read from the image
            files when None.

    Returns:
        ``(matched, error)``: error in pixels, ``matched`` is ``error <= threshold``. A missing,
        None or non-finite model gives ``(False, inf)``, and so does any model of a non-matching
        (``negative``) pair.
    """
    geometry = spec.geometry if geometry is None else geometry
    if geometry not in GEOMETRIES:
        raise ValueError(f"geometry must be one of {GEOMETRIES}, got {geometry!r}")
    if _as_model(model) is None or spec.negative:
        return False, float("inf")
    points = ground_truth_points(spec, image_sizes)
    if geometry == "homography":
        error, threshold = homography_error(model, points), H_THRESHOLD_PX
    else:
        error, threshold = symmetric_epipolar_error(model, points), F_THRESHOLD_PX
    if not np.isfinite(error):
        return False, float("inf")
    return bool(error <= threshold), float(error)


# --------------------------------------------------------------------------------------------
# Readers
# --------------------------------------------------------------------------------------------


def read_dataset(root: PathLike, fmt: str = "auto", geometry: Optional[str] = None) -> list:
    """List the image pairs of a two-view dataset with their ground truth.

    Args:
        root: dataset folder (or, for ``fmt="pairs"``, the pairs text file).
        fmt: one of ``"auto"``, ``"cmp"``, ``"oxford"``, ``"hpatches"``, ``"evd"``, ``"wxbs"``,
            ``"pairs"`` (see the module docstring).
        geometry: None (decide from the data) or ``"homography"`` / ``"fundamental"`` to force
            the geometry of every pair; only meaningful for ``cmp``, other formats have a fixed
            geometry and raise :class:`DatasetError` on a conflicting override (``pairs`` files
            accept it for pairs without a ground-truth file).

    Returns:
        ``list[PairSpec]`` sorted by pair name (``pairs`` keeps the file order).

    Raises:
        DatasetError: missing root, unknown format, undetectable or broken layout.
    """
    if fmt not in FORMATS:
        raise DatasetError(f"unknown dataset format {fmt!r} (expected one of {', '.join(FORMATS)})")
    if geometry is not None and geometry not in GEOMETRIES:
        raise DatasetError(f"unknown geometry {geometry!r} (expected homography or fundamental)")
    path = Path(root)
    if not path.exists():
        raise DatasetError(f"{path}: no such dataset file or folder")
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt != "pairs" and not path.is_dir():
        raise DatasetError(f"{path}: {fmt} dataset must be a folder, got a file")
    if fmt == "pairs":
        return _read_pairs_file(path, geometry)
    if fmt == "cmp":
        return _read_cmp(path, geometry)
    fixed = "fundamental" if fmt == "wxbs" else "homography"
    if geometry is not None and geometry != fixed:
        raise DatasetError(f"{path}: {fmt} datasets are {fixed} pairs, cannot override geometry to {geometry}")
    reader = {"oxford": _read_oxford, "hpatches": _read_hpatches, "evd": _read_evd, "wxbs": _read_wxbs}[fmt]
    return reader(path)


def detect_format(root: PathLike) -> str:
    """Guess the dataset format of ``root`` from its layout; raises :class:`DatasetError`."""
    path = Path(root)
    if not path.exists():
        raise DatasetError(f"{path}: no such dataset file or folder")
    if path.is_file():
        return "pairs"
    if any(path.glob("*_vpts.mat")):
        return "cmp"
    if _is_oxford_sequence(path):
        return "oxford"
    if (path / "H_1_2").is_file():
        return "hpatches"
    if all((path / sub).is_dir() for sub in ("1", "2", "h")):
        return "evd"
    if _wxbs_pair_folders(path):
        return "wxbs"
    subdirs = _subdirs(path)
    if any((d / "H_1_2").is_file() for d in subdirs):
        return "hpatches"
    if any(_is_oxford_sequence(d) for d in subdirs):
        return "oxford"
    raise DatasetError(
        f"{path}: cannot detect the dataset format (no *_vpts.mat, H1to2p, H_1_2, 1/ 2/ h/ or corrs.txt found); "
        "pass the format explicitly"
    )


def _subdirs(path: Path) -> list:
    return sorted(d for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS


def _find_image(folder: Path, stem: str) -> Optional[Path]:
    """The image file ``folder/stem.<image ext>`` (case-insensitive extension), or None."""
    matches = sorted(p for p in folder.glob(f"{_glob_escape(stem)}.*") if p.stem == stem and _is_image(p))
    return matches[0] if matches else None


def _glob_escape(text: str) -> str:
    """Escape glob wildcards in a literal file-name part."""
    return re.sub(r"([\[\]*?])", r"[\1]", text)


def _load_matrix(path: Path, what: str = "3x3 matrix") -> np.ndarray:
    """Load a whitespace-separated 3x3 matrix text file as float64 (3, 3)."""
    matrix = _load_text_array(path)
    if matrix.shape != (3, 3):
        raise DatasetError(f"{path}: expected a {what}, got an array of shape {matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        raise DatasetError(f"{path}: {what} contains NaN or infinite values")
    return matrix


def _load_text_array(path: Path) -> np.ndarray:
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


def _load_correspondences(path: Path) -> np.ndarray:
    points = _load_text_array(path)
    if points.ndim != 2 or points.shape[1] != 4:
        raise DatasetError(f"{path}: expected lines 'x1 y1 x2 y2', got {points.shape[1]} values per line")
    if not np.all(np.isfinite(points)):
        raise DatasetError(f"{path}: correspondences contain NaN or infinite values")
    return points


# ---- CMP homogr / kusvod2 -------------------------------------------------------------------


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
        return _load_matrix(path)
    except DatasetError:
        return None


def _fit_homography(points: np.ndarray, where: str) -> np.ndarray:
    if points.shape[0] < 4:
        raise DatasetError(f"{where}: need at least 4 ground-truth points to fit a homography, got {points.shape[0]}")
    H, _ = cv2.findHomography(points[:, :2].astype(np.float64), points[:, 2:].astype(np.float64), method=0)
    if H is None or not np.all(np.isfinite(H)):
        raise DatasetError(f"{where}: cannot fit a homography to the ground-truth points")
    return H / H[2, 2] if abs(H[2, 2]) > 1e-12 else H


def _read_cmp(root: Path, geometry: Optional[str]) -> list:
    """CMP homogr / kusvod2 layout; see :func:`read_dataset`.

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
        image1 = _find_image(root, name + "A")
        image2 = _find_image(root, name + "B")
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


# ---- Oxford affine --------------------------------------------------------------------------


def _is_oxford_sequence(path: Path) -> bool:
    return any(path.glob("H1to*p")) and _find_image(path, "img1") is not None


def _read_oxford_sequence(folder: Path, prefix: str) -> list:
    image1 = _find_image(folder, "img1")
    if image1 is None:
        raise DatasetError(f"{folder}: no img1.<ext> (Oxford affine sequence expects img1..imgN + H1to2p..H1toNp)")
    specs = []
    for h_path in folder.glob("H1to*p"):
        match = re.fullmatch(r"H1to(\d+)p", h_path.name)
        if not match or match.group(1) == "1":
            continue
        k = int(match.group(1))
        image2 = _find_image(folder, f"img{k}")
        if image2 is None:
            continue  # pairs are listed for the files present
        specs.append((k, PairSpec(f"{prefix}1-{k}", image1, image2, "homography", _load_matrix(h_path, "3x3 homography"))))
    specs.sort(key=lambda item: item[0])
    return [spec for _, spec in specs]


def _read_oxford(root: Path) -> list:
    if _is_oxford_sequence(root):
        specs = _read_oxford_sequence(root, f"{root.name}/")
    else:
        specs = []
        for sub in _subdirs(root):
            if _is_oxford_sequence(sub):
                specs.extend(_read_oxford_sequence(sub, f"{sub.name}/"))
    if not specs:
        raise DatasetError(f"{root}: no Oxford affine pairs (expected img1.<ext>, imgK.<ext> and H1toKp files)")
    return specs


# ---- HPatches -------------------------------------------------------------------------------


def _read_hpatches_sequence(folder: Path) -> list:
    image1 = _find_image(folder, "1")
    if image1 is None:
        raise DatasetError(f"{folder}: HPatches sequence has H_1_k files but no image 1.ppm")
    specs = []
    for h_path in folder.glob("H_1_*"):
        match = re.fullmatch(r"H_1_(\d+)", h_path.name)
        if not match or match.group(1) == "1":
            continue
        k = int(match.group(1))
        image2 = _find_image(folder, str(k))
        if image2 is None:
            raise DatasetError(f"{folder}: has {h_path.name} but no image {k}.ppm")
        specs.append((k, PairSpec(f"{folder.name}/1-{k}", image1, image2, "homography", _load_matrix(h_path, "3x3 homography"))))
    specs.sort(key=lambda item: item[0])
    return [spec for _, spec in specs]


def _read_hpatches(root: Path) -> list:
    if (root / "H_1_2").is_file() or any(root.glob("H_1_*")):
        specs = _read_hpatches_sequence(root)
    else:
        specs = []
        for sub in _subdirs(root):
            if any(sub.glob("H_1_*")):
                specs.extend(_read_hpatches_sequence(sub))
    if not specs:
        raise DatasetError(f"{root}: no HPatches sequences (expected folders with 1.ppm..6.ppm and H_1_2..H_1_6)")
    return specs


# ---- EVD ------------------------------------------------------------------------------------


def _read_evd(root: Path) -> list:
    dirs = {sub: root / sub for sub in ("1", "2", "h")}
    missing = [sub + "/" for sub, d in dirs.items() if not d.is_dir()]
    if missing:
        raise DatasetError(f"{root}: EVD layout needs folders 1/, 2/ and h/; missing {', '.join(missing)}")
    specs = []
    for image1 in sorted(p for p in dirs["1"].iterdir() if _is_image(p)):
        name = image1.stem
        image2 = _find_image(dirs["2"], name)
        if image2 is None:
            raise DatasetError(f"{root}: EVD pair {name} has 1/{image1.name} but no 2/{name}.<ext>")
        h_path = dirs["h"] / f"{name}.txt"
        if not h_path.is_file():
            raise DatasetError(f"{root}: EVD pair {name} has no homography file h/{name}.txt")
        specs.append(PairSpec(name, image1, image2, "homography", _load_matrix(h_path, "3x3 homography")))
    if not specs:
        raise DatasetError(f"{root}: EVD folder 1/ holds no images")
    return specs


# ---- WxBS -----------------------------------------------------------------------------------


def _wxbs_pair_folders(root: Path) -> list:
    if (root / "corrs.txt").is_file():
        return [root]
    found = []
    for sub in _subdirs(root):
        if (sub / "corrs.txt").is_file():
            found.append(sub)
        else:
            found.extend(d for d in _subdirs(sub) if (d / "corrs.txt").is_file())
    return found


def _read_wxbs(root: Path) -> list:
    folders = _wxbs_pair_folders(root)
    if not folders:
        raise DatasetError(f"{root}: no WxBS pair folders (expected folders with two images and corrs.txt)")
    specs = []
    for folder in folders:
        images = sorted(p for p in folder.iterdir() if _is_image(p))
        if len(images) < 2:
            raise DatasetError(f"{folder}: WxBS pair folder holds {len(images)} image(s), expected two")
        points = _load_correspondences(folder / "corrs.txt")
        name = folder.name if folder == root else folder.relative_to(root).as_posix()
        specs.append(PairSpec(name, images[0], images[1], "fundamental", None, points))
    specs.sort(key=lambda spec: spec.name)
    return specs


# ---- pairs text file ------------------------------------------------------------------------


def _read_pairs_file(path: Path, geometry: Optional[str]) -> list:
    if path.is_dir():
        raise DatasetError(f"{path}: pairs format expects a text file, got a folder")
    base = path.parent
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read pairs file ({exc})") from None
    specs, names = [], set()
    for lineno, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) not in (2, 3):
            raise DatasetError(f"{path}:{lineno}: expected 'img1 img2 [gt-file | none]', got {len(fields)} fields")
        image1, image2 = (base / fields[0]), (base / fields[1])
        for image in (image1, image2):
            if not image.is_file():
                raise DatasetError(f"{path}:{lineno}: image {image} does not exist")
        H = points = None
        pair_geometry = geometry or "homography"
        negative = len(fields) == 3 and fields[2].lower() == "none"
        if len(fields) == 3 and not negative:
            gt_path = base / fields[2]
            if not gt_path.is_file():
                raise DatasetError(f"{path}:{lineno}: ground-truth file {gt_path} does not exist")
            array = _load_text_array(gt_path)
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
                raise DatasetError(f"{path}:{lineno}: ground truth is a {pair_geometry} pair, cannot override to {geometry}")
        name = f"{image1.stem}-{image2.stem}"
        if name in names:
            name = f"{name}@{lineno}"
        names.add(name)
        specs.append(PairSpec(name, image1, image2, pair_geometry, H, points, negative))
    if not specs:
        raise DatasetError(f"{path}: pairs file lists no pairs")
    return specs
