"""Calibrated two-view geometry: the relative pose (essential matrix) of two pinhole cameras.

``estimate_relative_pose(pts1 (K, 2), pts2 (K, 2), K1 (3, 3), K2 (3, 3), method, threshold, ...)
-> RelativePose | None`` with ``R`` (3, 3), unit ``t`` (3,) such that a point X1 in camera 1's
frame is ``R X1 + t`` in camera 2's, ``E = [t]x R`` (3, 3, unit Frobenius norm; ``x2n^T E x1n = 0``
for normalized coordinates ``xn = K^-1 x``) and ``inliers`` (K,) bool.

Points are pixel coordinates of the images the K belong to; ``threshold`` is the Sampson
(first-order epipolar) distance in those pixels. Two estimators, both real minimal-solver
libraries:

- ``poselib``: PoseLib's LO-RANSAC with the 5-point solver and its non-linear refinement
  (``poselib.estimate_relative_pose``, Cauchy loss, on the inliers);
- ``magsac``: OpenCV's USAC MAGSAC++ ``cv2.findEssentialMat`` on normalized points,
  ``cv2.recoverPose``, then a non-linear least-squares refinement of R, t on the Sampson errors of
  the inliers (:func:`refine_pose`, SciPy).

Whatever the estimator, the reported inliers are the correspondences within ``threshold`` of
the final model whose triangulated point lies in front of both cameras (:func:`pose_inliers`),
so both are judged alike. The default estimator and threshold were chosen by measurement on the
Strecha scenes (``benchmarks/essential_solvers.py``, ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.model_maps import fundamental_from_essential  # noqa: F401 (part of this module's API)

METHODS = ("poselib", "magsac")
DEFAULT_METHOD = "poselib"

#: Sampson distance in ORIGINAL pixels (measured: benchmarks/essential_solvers.py).
DEFAULT_THRESHOLD = 1.0

#: Minimal sample of the 5-point solver.
MIN_MATCHES = 5


@dataclass
class RelativePose:
    """``E`` (3, 3), ``R`` (3, 3), ``t`` (3,) unit, ``inliers`` (K,) bool: see the module docstring."""

    E: np.ndarray
    R: np.ndarray
    t: np.ndarray
    inliers: np.ndarray

    @property
    def num_inliers(self) -> int:
        return int(self.inliers.sum())


def skew(v: np.ndarray) -> np.ndarray:
    """[v]x (3, 3): ``skew(v) @ w == cross(v, w)``."""
    x, y, z = np.asarray(v, np.float64).reshape(3)
    return np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])


def essential_from_pose(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """E = [t]x R (3, 3), scaled to unit Frobenius norm."""
    e = skew(t) @ np.asarray(R, np.float64)
    return e / max(np.linalg.norm(e), 1e-300)


def normalize(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pixel points (N, 2) -> normalized image coordinates (N, 2) = K^-1 x."""
    p = np.asarray(points, np.float64).reshape(-1, 2)
    h = np.concatenate([p, np.ones((len(p), 1))], axis=1) @ np.linalg.inv(K).T
    return h[:, :2] / h[:, 2:]


def epipolar_sampson_errors(F: np.ndarray, pts1: np.ndarray, pts2: np.ndarray) -> np.ndarray:
    """Sampson distance (N,) of correspondences pts1/pts2 (N, 2) to ``x2^T F x1 = 0`` in their pixels."""
    return np.abs(_signed_sampson(F, pts1, pts2))


def _signed_sampson(F: np.ndarray, pts1: np.ndarray, pts2: np.ndarray) -> np.ndarray:
    x1 = np.concatenate([np.asarray(pts1, np.float64).reshape(-1, 2), np.ones((len(pts1), 1))], axis=1)
    x2 = np.concatenate([np.asarray(pts2, np.float64).reshape(-1, 2), np.ones((len(pts2), 1))], axis=1)
    fx1, ftx2 = x1 @ F.T, x2 @ F
    denominator = fx1[:, 0] ** 2 + fx1[:, 1] ** 2 + ftx2[:, 0] ** 2 + ftx2[:, 1] ** 2
    return (x2 * fx1).sum(1) / np.sqrt(np.maximum(denominator, 1e-300))


def in_front(R: np.ndarray, t: np.ndarray, x1n: np.ndarray, x2n: np.ndarray) -> np.ndarray:
    """Bool (N,): the point triangulated from normalized x1n/x2n (N, 2) has positive depth in both cameras.

    Depths d1, d2 minimise |d2 x2 - (d1 R x1 + t)| (x homogeneous rays), solved per point.
    """
    n = len(x1n)
    a = np.concatenate([x1n, np.ones((n, 1))], axis=1) @ np.asarray(R, np.float64).T  # R x1
    b = -np.concatenate([x2n, np.ones((n, 1))], axis=1)  # columns [R x1, -x2] [d1, d2] = -t
    t = np.asarray(t, np.float64).reshape(3)
    aa, ab, bb = (a * a).sum(1), (a * b).sum(1), (b * b).sum(1)
    at, bt = -(a @ t), -(b @ t)
    det = aa * bb - ab * ab
    with np.errstate(divide="ignore", invalid="ignore"):
        d1 = (bb * at - ab * bt) / det
        d2 = (aa * bt - ab * at) / det
    return (det > 1e-12) & (d1 > 0) & (d2 > 0)


def pose_inliers(R: np.ndarray, t: np.ndarray, pts1: np.ndarray, pts2: np.ndarray, K1: np.ndarray,
                 K2: np.ndarray, threshold: float) -> np.ndarray:
    """Bool (N,): Sampson distance (pixels) below ``threshold`` and the point in front of both cameras."""
    f = fundamental_from_essential(essential_from_pose(R, t), K1, K2)
    close = epipolar_sampson_errors(f, pts1, pts2) < threshold
    return close & in_front(R, t, normalize(pts1, K1), normalize(pts2, K2))


def estimate_relative_pose(pts1: np.ndarray, pts2: np.ndarray, K1: np.ndarray, K2: np.ndarray,
                           method: str = DEFAULT_METHOD, threshold: float | None = None, max_iters: int = 10000,
                           confidence: float = 0.9999, seed: int = 0) -> RelativePose | None:
    """Robust relative pose from pixel correspondences pts1/pts2 (K, 2) of cameras K1/K2 (3, 3); None if none.

    ``threshold``: Sampson distance in pixels (default :data:`DEFAULT_THRESHOLD`).
    """
    if method not in METHODS:
        raise ValueError(f"ransac method for essential must be one of {METHODS}, got {method!r}")
    pts1 = np.ascontiguousarray(pts1, dtype=np.float64).reshape(-1, 2)
    pts2 = np.ascontiguousarray(pts2, dtype=np.float64).reshape(-1, 2)
    if len(pts1) < MIN_MATCHES:
        return None
    threshold = DEFAULT_THRESHOLD if threshold is None else float(threshold)
    solve = _poselib if method == "poselib" else _magsac
    found = solve(pts1, pts2, K1, K2, threshold, max_iters, confidence, seed)
    if found is None:
        return None
    R, t = found
    if not (np.all(np.isfinite(R)) and np.all(np.isfinite(t)) and np.linalg.norm(t) > 1e-12):
        return None
    t = t / np.linalg.norm(t)
    inliers = pose_inliers(R, t, pts1, pts2, K1, K2, threshold)
    if inliers.sum() < MIN_MATCHES:
        return None
    return RelativePose(essential_from_pose(R, t), R, t, inliers)


def _pinhole(K: np.ndarray) -> dict:
    return {"model": "PINHOLE", "width": 0, "height": 0,
            "params": [float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2])]}


def _poselib(pts1, pts2, K1, K2, threshold, max_iters, confidence, seed):
    import poselib

    options = {"max_epipolar_error": threshold, "max_iterations": int(max_iters),
               "min_iterations": min(1000, int(max_iters)), "success_prob": confidence, "seed": int(seed)}
    pose, info = poselib.estimate_relative_pose(pts1, pts2, _pinhole(K1), _pinhole(K2), options, {})
    if not info.get("num_inliers"):
        return None
    return np.asarray(pose.R, np.float64), np.asarray(pose.t, np.float64)


def _magsac(pts1, pts2, K1, K2, threshold, max_iters, confidence, seed):
    import cv2

    x1n, x2n = normalize(pts1, K1), normalize(pts2, K2)
    focal = float(np.mean([K1[0, 0], K1[1, 1], K2[0, 0], K2[1, 1]]))
    cv2.setRNGSeed(int(seed))
    e, mask = cv2.findEssentialMat(x1n, x2n, np.eye(3), cv2.USAC_MAGSAC, confidence, threshold / focal,
                                   maxIters=int(max_iters))
    if e is None or mask is None or e.shape[0] < 3:
        return None
    e = e[:3]  # several solutions come stacked; USAC returns one
    _, R, t, _ = cv2.recoverPose(e, x1n, x2n, np.eye(3), mask=mask.copy())
    inliers = pose_inliers(R, t.ravel(), pts1, pts2, K1, K2, threshold)
    if inliers.sum() < MIN_MATCHES:
        return None
    return refine_pose(R, t.ravel(), pts1[inliers], pts2[inliers], K1, K2, threshold)


def refine_pose(R: np.ndarray, t: np.ndarray, pts1: np.ndarray, pts2: np.ndarray, K1: np.ndarray, K2: np.ndarray,
                scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Non-linear least-squares refinement (SciPy's trust-region solver) of R (3, 3), unit t (3,) on the
    Sampson errors (pixels) of inlier correspondences pts1/pts2 (N, 2), Huber loss at ``scale`` px.
    Five parameters: a rotation update (axis-angle) and a step in the tangent plane of t's sphere."""
    import cv2
    from scipy.optimize import least_squares

    R0, t0 = np.asarray(R, np.float64), np.asarray(t, np.float64) / np.linalg.norm(t)
    basis = np.linalg.svd(t0.reshape(1, 3))[2][1:]  # (2, 3): orthonormal, perpendicular to t0

    def pose(p):
        rotation = cv2.Rodrigues(p[:3].reshape(3, 1))[0] @ R0
        direction = t0 + p[3:] @ basis
        return rotation, direction / np.linalg.norm(direction)

    def residuals(p):
        rotation, direction = pose(p)
        return _signed_sampson(fundamental_from_essential(essential_from_pose(rotation, direction), K1, K2),
                               pts1, pts2)

    solution = least_squares(residuals, np.zeros(5), method="trf", loss="huber", f_scale=scale, max_nfev=100)
    if not solution.success and solution.status <= 0:
        return R0, t0
    return pose(solution.x)
