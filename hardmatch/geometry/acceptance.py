"""Model acceptance: a verified model is reported only when it survives these checks.

RANSAC's inlier count alone does not separate a right model from a wrong one on hard pairs (a
non-matching pair can give 10-50 "inliers"). Following MODS (Mishkin, Matas, Perdoch, CVIU 2015),
:func:`accept` takes the model DEGENSAC / MAGSAC++ found and

1. keeps only the inliers whose local affine frames agree with the model
   (:func:`laf_errors_homography` / :func:`laf_errors_fundamental`, tolerances below);
2. for a homography, checks that it is sane over the convex hull of the remaining inliers
   (:func:`homography_problem`: orientation-preserving, bounded local scale and anisotropy);
3. checks that the remaining inliers are not near-degenerate (spread in both images,
   :func:`spread_problem`) and that at least ``min_inliers`` of them are *distinct*
   (:func:`distinct_count`: points closer than ``radius`` px in an image count once).

:func:`unique_correspondences` is the duplicate filter run before RANSAC: of tentative
correspondences closer than ``radius`` px to another in both images, the one with the best
(lowest) ratio is kept.

Frames are LAFs (N, 2, 3) as in :mod:`hardmatch.core.laf`; points (N, 2) pixels; H maps image 1 to
image 2 and F satisfies ``x2^T F x1 = 0``. An essential matrix is checked through its fundamental
matrix in the points' pixels, ``F = K2^-T E K1^-1`` (:func:`hardmatch.core.model_maps.fundamental_from_essential`):
pass ``geometry="essential"`` with that F, and every check of F applies.

The tolerances were chosen by measuring these errors for inliers of right models on the dev pairs
against inliers of wrong models on non-matching pairs (``benchmarks/acceptance.py``,
``benchmarks/RESULTS.md`` "Model acceptance").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.close_pairs import close_pairs
from ..core.options import check_fields, option

#: Correspondences closer than this (pixels) to another in both images are duplicates (MODS: 2 px).
DUPLICATE_RADIUS = 2.0

#: Homography LAF check: frame 1 mapped by H's Jacobian vs frame 2, ``M = A2^-1 J A1``.
#: |log2 scale of M| (octaves), rotation of M (degrees), log2 of M's axis ratio.
MAX_SCALE_ERROR = 1.0
MAX_ANGLE_ERROR = 30.0
MAX_SHAPE_ERROR = 2.0

#: Fundamental LAF check: distance of frame 2's axis end points from the epipolar lines of frame
#: 1's, symmetric, relative to the frames' radii.
MAX_EPIPOLAR_AXIS_ERROR = 0.5

#: Homography sanity over the inlier hull: local scale sqrt|det J| within [1/s, s], axis ratio of J.
MAX_LOCAL_SCALE = 16.0
MAX_LOCAL_ANISOTROPY = 12.0

#: Degeneracy: the inliers' minor standard deviation (pixels) in each image must reach this.
MIN_SPREAD_PX = 5.0


@dataclass
class Acceptance:
    """Outcome of :func:`accept`: ``inliers`` (K,) bool after the checks, ``reason`` ("" when accepted)."""

    inliers: np.ndarray
    reason: str = ""

    @property
    def accepted(self) -> bool:
        return not self.reason


def unique_correspondences(pts1: np.ndarray, pts2: np.ndarray, ratios: np.ndarray,
                           radius: float = DUPLICATE_RADIUS) -> np.ndarray:
    """Sorted indices (M,) of the correspondences to keep, best ratio first.

    pts1, pts2 (K, 2), ratios (K,): a correspondence closer than ``radius`` px to a better one
    (lower ratio; ties: lower index) in image 1 AND in image 2 is dropped.
    """
    k = len(pts1)
    if k < 2 or radius <= 0:
        return np.arange(k)
    pts1 = np.asarray(pts1, np.float64).reshape(-1, 2)
    pts2 = np.asarray(pts2, np.float64).reshape(-1, 2)
    pairs = close_pairs(pts1, radius)
    if len(pairs) == 0:
        return np.arange(k)
    pairs = pairs[np.linalg.norm(pts2[pairs[:, 0]] - pts2[pairs[:, 1]], axis=1) < radius]
    order = np.lexsort((np.arange(k), np.asarray(ratios, np.float64)))  # best first
    rank = np.empty(k, np.int64)
    rank[order] = np.arange(k)
    neighbours: dict[int, list[int]] = {}
    for i, j in pairs:
        neighbours.setdefault(int(i), []).append(int(j))
        neighbours.setdefault(int(j), []).append(int(i))
    drop = np.zeros(k, bool)
    for i in order:
        if drop[i] or i not in neighbours:
            continue
        for j in neighbours[i]:
            if rank[j] > rank[i]:
                drop[j] = True
    return np.nonzero(~drop)[0]


def distinct_count(pts1: np.ndarray, pts2: np.ndarray, radius: float = DUPLICATE_RADIUS) -> int:
    """Number of distinct correspondences: min over both images of the points (K, 2) left when
    points closer than ``radius`` px to an earlier one are counted once."""
    if len(pts1) == 0:
        return 0
    return min(len(distinct_indices(pts1, radius)), len(distinct_indices(pts2, radius)))


def distinct_indices(points: np.ndarray, radius: float) -> np.ndarray:
    """Indices (M,) of the points (N, 2) kept when a point closer than ``radius`` px to an earlier
    kept one is dropped (all of them for ``radius`` <= 0)."""
    points = np.asarray(points, np.float64).reshape(-1, 2)
    if radius <= 0 or len(points) < 2:
        return np.arange(len(points))
    pairs = close_pairs(points, radius)  # sorted by i, then j
    drop = np.zeros(len(points), bool)
    for i, j in pairs:
        if not drop[i]:
            drop[j] = True
    return np.nonzero(~drop)[0]


def homography_jacobians(H: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Jacobians (N, 2, 2) of the map x -> H(x) at points (N, 2), and the homogeneous scale w (N,)."""
    h = np.asarray(H, np.float64)
    p = np.asarray(points, np.float64).reshape(-1, 2)
    q = np.concatenate([p, np.ones((len(p), 1))], axis=1) @ h.T
    w = q[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        mapped = q[:, :2] / w[:, None]
        jac = (h[None, :2, :2] - mapped[:, :, None] * h[None, 2:3, :2]) / w[:, None, None]
    return jac, w


def laf_errors_homography(H: np.ndarray, lafs1: np.ndarray, lafs2: np.ndarray) -> dict:
    """How far each frame 1 mapped through H's local affine approximation is from its partner.

    lafs1, lafs2 (N, 2, 3). With ``M = A2^-1 J(c1) A1`` (identity for a perfect pair) returns
    arrays (N,): ``scale`` = |log2 sqrt det M| (octaves), ``angle`` = rotation of M's polar factor
    (degrees, 0..180), ``shape`` = log2 of M's singular-value ratio. A reflection (det M <= 0) or
    a point mapped to infinity gives inf everywhere.
    """
    l1 = np.asarray(lafs1, np.float64).reshape(-1, 2, 3)
    l2 = np.asarray(lafs2, np.float64).reshape(-1, 2, 3)
    n = len(l1)
    if n == 0:
        return {"scale": np.zeros(0), "angle": np.zeros(0), "shape": np.zeros(0)}
    jac, w = homography_jacobians(H, l1[:, :, 2])
    a2 = l2[:, :, :2]
    det2 = a2[:, 0, 0] * a2[:, 1, 1] - a2[:, 0, 1] * a2[:, 1, 0]
    bad = ~np.isfinite(jac).all(axis=(1, 2)) | (np.abs(w) < 1e-12) | (np.abs(det2) < 1e-12)
    jac[bad] = np.eye(2)
    a2 = np.where(bad[:, None, None], np.eye(2), a2)
    m = np.linalg.solve(a2, jac @ l1[:, :, :2])
    u, s, vt = np.linalg.svd(m)
    det = np.linalg.det(m)
    rot = u @ vt
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.abs(np.log2(np.sqrt(np.abs(det))))
        shape = np.log2(s[:, 0] / s[:, 1])
    angle = np.abs(np.rad2deg(np.arctan2(rot[:, 1, 0], rot[:, 0, 0])))
    bad |= ~(det > 0)
    return {name: np.where(bad, np.inf, value) for name, value in
            (("scale", scale), ("angle", angle), ("shape", shape))}


def laf_errors_fundamental(F: np.ndarray, lafs1: np.ndarray, lafs2: np.ndarray) -> np.ndarray:
    """Epipolar transfer of the frames' axes: errors (N,).

    F determines only where a point may lie across its epipolar line, so of an affine frame it
    checks the axes' components across the epipolar lines: for each axis k the end points
    ``c1 + A1[:, k]`` and ``c2 + A2[:, k]`` must be an epipolar pair too. The error is the
    larger over both axes of their symmetric point-to-line distance (mean over the two images),
    divided by the mean radius of the two frames (so 0.5 means half a frame radius).
    """
    l1 = np.asarray(lafs1, np.float64).reshape(-1, 2, 3)
    l2 = np.asarray(lafs2, np.float64).reshape(-1, 2, 3)
    if len(l1) == 0:
        return np.zeros(0)
    f = np.asarray(F, np.float64)
    worst = np.zeros(len(l1))
    for k in (0, 1):
        x1 = np.concatenate([l1[:, :, 2] + l1[:, :, k], np.ones((len(l1), 1))], axis=1)
        x2 = np.concatenate([l2[:, :, 2] + l2[:, :, k], np.ones((len(l2), 1))], axis=1)
        line2, line1 = x1 @ f.T, x2 @ f
        algebraic = np.abs((x2 * line2).sum(1))
        with np.errstate(divide="ignore", invalid="ignore"):
            d = 0.5 * (algebraic / np.linalg.norm(line2[:, :2], axis=1)
                       + algebraic / np.linalg.norm(line1[:, :2], axis=1))
        worst = np.maximum(worst, np.where(np.isfinite(d), d, np.inf))
    size = 0.5 * (_radius(l1) + _radius(l2))
    return worst / np.maximum(size, 1e-12)


def _radius(lafs: np.ndarray) -> np.ndarray:
    a = lafs[:, :, :2]
    return np.sqrt(np.abs(a[:, 0, 0] * a[:, 1, 1] - a[:, 0, 1] * a[:, 1, 0]))


def laf_consistent(geometry: str, model: np.ndarray, lafs1: np.ndarray, lafs2: np.ndarray) -> np.ndarray:
    """Bool mask (N,): the frames (N, 2, 3) of each correspondence agree with ``model`` within the tolerances
    (``model``: H, or F for fundamental and essential)."""
    if geometry == "homography":
        e = laf_errors_homography(model, lafs1, lafs2)
        return (e["scale"] <= MAX_SCALE_ERROR) & (e["angle"] <= MAX_ANGLE_ERROR) & (e["shape"] <= MAX_SHAPE_ERROR)
    return laf_errors_fundamental(model, lafs1, lafs2) <= MAX_EPIPOLAR_AXIS_ERROR


def _hull(points: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.convexHull(np.asarray(points, np.float32).reshape(-1, 1, 2)).reshape(-1, 2).astype(np.float64)


def homography_anisotropy(H: np.ndarray, points: np.ndarray) -> float:
    """Largest axis ratio of H's Jacobian (its local tilt) at the points (N, 2); over a convex hull the
    hull's vertices bound it. inf where H is singular or undefined at a point, 1 for no points."""
    jac, _ = homography_jacobians(H, np.asarray(points, np.float64).reshape(-1, 2))
    s = np.linalg.svd(jac, compute_uv=False)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = s[:, 0] / s[:, 1]
    return float(np.nanmax(np.where(np.isfinite(ratio), ratio, np.inf))) if len(ratio) else 1.0


def homography_problem(H: np.ndarray, pts1: np.ndarray, max_anisotropy: float = MAX_LOCAL_ANISOTROPY) -> str:
    """Why H (3, 3) is not a plausible image-to-image map over the convex hull of inlier points
    pts1 (N, 2), or "" when it is: the hull must not reach H's line at infinity, H must preserve
    orientation there, its local scale sqrt|det J| must stay within [1/MAX_LOCAL_SCALE,
    MAX_LOCAL_SCALE] and its axis ratio at most ``max_anisotropy`` (the tilt between the two views
    that H may show). ``w`` and ``det J = det H / w^3`` vary monotonically along hull edges, so the
    hull's vertices bound them."""
    h = np.asarray(H, np.float64)
    if not np.all(np.isfinite(h)) or abs(np.linalg.det(h)) < 1e-12 * max(np.abs(h).max(), 1e-12) ** 3:
        return "homography is singular"
    vertices = _hull(pts1)
    jac, w = homography_jacobians(h, vertices)
    if not (np.all(w > 0) or np.all(w < 0)):
        return "homography sends part of the inliers' region to infinity"
    det = np.linalg.det(jac)
    if np.any(det <= 0):
        return "homography flips the image (not orientation-preserving)"
    scale = np.sqrt(det)
    if scale.max() > MAX_LOCAL_SCALE or scale.min() < 1.0 / MAX_LOCAL_SCALE:
        return (f"homography's local scale {scale.min():.3g}..{scale.max():.3g} is outside "
                f"1/{MAX_LOCAL_SCALE:g}..{MAX_LOCAL_SCALE:g}")
    anisotropy = homography_anisotropy(h, vertices)
    if anisotropy > max_anisotropy:
        return f"homography squashes the inliers' region {anisotropy:.3g}x (> {max_anisotropy:g})"
    return ""


def spread_problem(pts1: np.ndarray, pts2: np.ndarray) -> str:
    """"" unless the points (N, 2) of either image lie nearly on a line or a spot (minor standard
    deviation below MIN_SPREAD_PX): a degenerate configuration that fixes no model."""
    for name, pts in (("image 1", pts1), ("image 2", pts2)):
        pts = np.asarray(pts, np.float64).reshape(-1, 2)
        if len(pts) < 3:
            return f"inliers in {name} are too few to span an area"
        minor = np.sqrt(max(np.linalg.eigvalsh(np.cov(pts.T))[0], 0.0))
        if minor < MIN_SPREAD_PX:
            return f"inliers in {name} lie on a line or spot (spread {minor:.1f} px < {MIN_SPREAD_PX:g})"
    return ""


def accept(geometry: str, model: np.ndarray, inliers: np.ndarray, pts1: np.ndarray, pts2: np.ndarray,
           lafs1: np.ndarray, lafs2: np.ndarray, min_inliers: int,
           radius: float = DUPLICATE_RADIUS) -> Acceptance:
    """Checks of a verified model (see the module docstring).

    ``inliers`` (K,) bool from RANSAC over the correspondences pts1/pts2 (K, 2) with frames
    lafs1/lafs2 (K, 2, 3). Returns the inliers that pass the LAF check and the reason for
    rejecting the model ("" when accepted).
    """
    inliers = np.asarray(inliers, bool).copy()
    ransac_count = int(inliers.sum())
    index = np.nonzero(inliers)[0]
    consistent = laf_consistent(geometry, model, lafs1[index], lafs2[index])
    inliers[index[~consistent]] = False
    kept = np.nonzero(inliers)[0]
    count = distinct_count(pts1[kept], pts2[kept], radius)
    if count < min_inliers:
        return Acceptance(inliers, f"only {count} distinct inliers with frames consistent with the {geometry} "
                                   f"(of {ransac_count} RANSAC inliers; < min_inliers {min_inliers})")
    problem = spread_problem(pts1[kept], pts2[kept])
    if not problem and geometry == "homography":
        problem = homography_problem(model, pts1[kept])
    return Acceptance(inliers, problem)


@dataclass(frozen=True)
class AcceptanceConf:
    """Model acceptance: duplicate merging before RANSAC and the checks a model must pass."""

    min_inliers: int = option(10, "a model with fewer distinct, frame-consistent inliers counts as not found",
                            range="[0, inf)")
    duplicate_radius: float = option(2.0, "before RANSAC, of tentative matches closer than this (px) to another in "
                                        "both images keep the best ratio (MODS: 2; 0: off)", range="[0, inf)")
    accept_checks: bool = option(True, "accept a model only after the frame (LAF) consistency check, homography "
                                     "sanity and min_inliers distinct inliers (hardmatch.geometry.acceptance); off only to measure")

    def __post_init__(self) -> None:
        check_fields(self)
