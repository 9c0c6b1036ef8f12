"""Judging an estimated model against a pair's ground truth: the project's H and F rule.

:func:`judge` decides whether an estimated model matches a :class:`~hardmatch.datasets.spec.PairSpec`:

* homography pairs: mean reprojection error (image 1 -> image 2) of the ground-truth points
  under the estimated H is at most :data:`H_THRESHOLD_PX` (5 px);
* fundamental pairs: mean symmetric point-to-epipolar-line distance of the ground-truth
  points under the estimated F is at most :data:`F_THRESHOLD_PX` (3 px).

Scorers of other ground truth (e.g. relative-pose errors against a pair's calibrated ``K1``,
``K2``, ``R``, ``t``) belong here, next to these two.

Point arrays are float64 (N, 4) ``x1, y1, x2, y2``; models are float64 (3, 3); image sizes
are ``(width, height)``.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from ..core.errors import DatasetError
from .files import image_size
from .spec import GEOMETRIES, PairSpec

#: A homography pair is matched when the mean reprojection error is at most this (pixels).
H_THRESHOLD_PX = 5.0
#: A fundamental pair is matched when the mean symmetric epipolar distance is at most this (pixels).
F_THRESHOLD_PX = 3.0


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
        image_sizes = (image_size(spec.image1), image_size(spec.image2))
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
