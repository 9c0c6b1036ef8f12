"""Acceptance for extreme geometry (the on-demand ``wide`` search): repeated patterns and scale.

:mod:`hardmatch.geometry.acceptance` checks a model for every preset. Extreme views (issue 18: tilts up to 40+,
zoom up to 10x, facades of identical windows) need four more things, used by
:class:`hardmatch.twoview.on_demand.OnDemandMatcher`:

1. **Repeated patterns** (:func:`repeated_pattern_problem`): a model fitted to a row of identical
   brackets one period off puts most inliers in a thin band along one line, and one dense spot of
   near-duplicate frames off the band lifts the plain spread check. So, per image: distinct inliers
   are counted at a radius relative to the image (:data:`RELATIVE_RADIUS` of the diagonal); the
   densest spot is removed; what is left must not lie (for :data:`MAX_BAND_SHARE` of it) within a
   band of half-width :data:`BAND_HALF_WIDTH` of the diagonal around one line, and must still
   spread :data:`~hardmatch.geometry.acceptance.MIN_SPREAD_PX` across its major axis.
2. **A scale-aware error** (:func:`homography_sampson_errors`): under a zoom or tilt ``s`` an error of 1 px in
   the coarse image is ``s`` px in the fine one, so the symmetric transfer error rejects right
   matches. The Sampson error of the homography (first-order geometric distance, corrections shared
   by both images) is about the coarse image's error; at scale 1 it is the transfer error / sqrt 2,
   so :data:`SAMPSON_FACTOR` times the symmetric threshold keeps the same inliers there.
   :func:`refit_sampson` re-collects the inliers in that error and refits H minimising it (LO: wider
   thresholds first, then the threshold until the inliers are stable), on view steps and, through
   :func:`refine_accepted`, on the models the other steps accept.
3. **Precision** (:func:`model_uncertainty`): thin evidence in one part of the overlap fits a model
   that is right near the inliers and pixels off elsewhere; fits to random halves of the inliers must
   agree over the overlap to :data:`MAX_UNCERTAINTY_PX`.
4. **Sanity tied to the views** (:func:`anisotropy_limit`): a step whose views tilt both images up
   to ``t`` can match planes tilted ``t * t`` apart, so the axis-ratio limit of a homography is
   ``max(MAX_LOCAL_ANISOTROPY, t ** 2)`` there, not a constant below real tilts.

Points are (N, 2) pixels, H (3, 3) maps image 1 to image 2, image sizes are ``(width, height)``.
"""

from __future__ import annotations

import numpy as np

from ..core.close_pairs import close_pairs
from .acceptance import (
    DUPLICATE_RADIUS,
    MAX_LOCAL_ANISOTROPY,
    MIN_SPREAD_PX,
    distinct_count,
    distinct_indices,
    homography_jacobians,
    homography_problem,
    laf_consistent,
    spread_problem,
)

#: Distinct inliers: points closer than this share of the image diagonal count once (10 px at 1000x700).
RELATIVE_RADIUS = 0.008
#: Repeated pattern: half-width of the band around one line, share of the image diagonal (18 px at 1000x700).
BAND_HALF_WIDTH = 0.015
#: Repeated pattern: refuse when at least this share of the distinct inliers (densest spot removed) lies in one band.
MAX_BAND_SHARE = 0.75
#: Precision: fits to random halves of the inliers may disagree by at most this (mean over the overlap, image 2
#: pixels; in theory twice the full fit's error, measured 1.5-2.1x on the hard tier's views-step models: 3.8 px
#: off had 7.9, 3.9 px off 6.4, 7.4 px off 11.1), so an accepted model is at most about 4.7 px off.
MAX_UNCERTAINTY_PX = 7.0
#: Sampson threshold = SAMPSON_FACTOR * the symmetric transfer threshold (equal inliers at scale 1).
SAMPSON_FACTOR = 1.0 / np.sqrt(2.0)


def densest_spot(points: np.ndarray, radius: float) -> np.ndarray:
    """Bool mask (N,): the points within ``radius`` of the point with the most neighbours within ``radius``."""
    points = np.asarray(points, np.float64).reshape(-1, 2)
    if len(points) == 0:
        return np.zeros(0, bool)
    pairs = close_pairs(points, radius)
    if len(pairs) == 0:
        return np.arange(len(points)) == 0
    centre = int(np.argmax(np.bincount(pairs.ravel(), minlength=len(points))))
    return np.linalg.norm(points - points[centre], axis=1) <= radius


def band_share(points: np.ndarray, half_width: float, max_lines: int = 20000, seed: int = 0) -> float:
    """Largest share of ``points`` (N, 2) within ``half_width`` of one line through two of them."""
    points = np.asarray(points, np.float64).reshape(-1, 2)
    n = len(points)
    if n < 3:
        return 1.0
    i, j = np.triu_indices(n, 1)
    if len(i) > max_lines:
        pick = np.random.default_rng(seed).choice(len(i), max_lines, replace=False)
        i, j = i[pick], j[pick]
    direction = points[j] - points[i]
    length = np.linalg.norm(direction, axis=1)
    ok = length > 1e-9
    i, direction, length = i[ok], direction[ok], length[ok]
    if len(i) == 0:
        return 1.0  # all points on one spot
    normal = np.stack([-direction[:, 1], direction[:, 0]], 1) / length[:, None]
    best = 0
    for start in range(0, len(i), 2000):  # (lines, points) distances in chunks
        sl = slice(start, start + 2000)
        dist = np.abs(np.einsum("lk,lnk->ln", normal[sl], points[None] - points[i[sl]][:, None]))
        best = max(best, int((dist <= half_width).sum(1).max()))
    return best / n


def repeated_pattern_problem(pts1: np.ndarray, pts2: np.ndarray, size1: tuple[int, int], size2: tuple[int, int],
                             min_inliers: int) -> str:
    """Why the inliers pts1/pts2 (N, 2) look like a repeated pattern or a degenerate set, or "" when they
    do not (see the module docstring, point 1). ``size1``/``size2``: (width, height) of the images."""
    pts1 = np.asarray(pts1, np.float64).reshape(-1, 2)
    pts2 = np.asarray(pts2, np.float64).reshape(-1, 2)
    for name, pts, size in (("image 1", pts1, size1), ("image 2", pts2, size2)):
        diagonal = float(np.hypot(*size))
        radius = RELATIVE_RADIUS * diagonal
        count = distinct_count(pts, pts, radius)
        if count < min_inliers:
            return (f"only {count} distinct inliers in {name} at {radius:.0f} px ({RELATIVE_RADIUS:.1%} of the "
                    f"diagonal; < min_inliers {min_inliers})")
        rest = pts[distinct_indices(pts, radius)]
        rest = rest[~densest_spot(rest, 2.0 * BAND_HALF_WIDTH * diagonal)]
        if len(rest) < 3:
            return f"inliers in {name} are one spot and at most two more points"
        half_width = BAND_HALF_WIDTH * diagonal
        share = band_share(rest, half_width)
        if share >= MAX_BAND_SHARE:
            return (f"inliers in {name} lie along one line ({share:.0%} of the distinct ones off the densest spot "
                    f"within {half_width:.0f} px of it): a repeated pattern or a degenerate set")
        minor = np.sqrt(max(np.linalg.eigvalsh(np.cov(rest.T))[0], 0.0))
        if minor < MIN_SPREAD_PX:
            return (f"inliers in {name} without their densest spot lie on a line (spread {minor:.1f} px "
                    f"< {MIN_SPREAD_PX:g})")
    return ""


def _whitened_residuals(h: np.ndarray, pts1: np.ndarray, pts2: np.ndarray) -> np.ndarray:
    """(N, 2) residuals H(x1) - x2 whitened by (J J^T + I)^-1/2: their norm is the Sampson error; inf rows
    where H is undefined (a point sent to infinity, overflow)."""
    jac, w = homography_jacobians(h, pts1)
    q = np.concatenate([pts1, np.ones((len(pts1), 1))], axis=1) @ np.asarray(h, np.float64).T
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        r = q[:, :2] / q[:, 2:] - pts2
        bad = (np.abs(w) < 1e-12) | ~np.isfinite(r).all(1) | ~np.isfinite(jac).all(axis=(1, 2))
        jac, r = np.where(bad[:, None, None], 0.0, jac), np.where(bad[:, None], 0.0, r)
        s = jac @ np.transpose(jac, (0, 2, 1)) + np.eye(2)  # symmetric, eigenvalues >= 1
        bad |= ~np.isfinite(s).all(axis=(1, 2))
        s = np.where(bad[:, None, None], np.eye(2), s)
        root_det = np.sqrt(s[:, 0, 0] * s[:, 1, 1] - s[:, 0, 1] * s[:, 1, 0])
        norm = np.sqrt(s[:, 0, 0] + s[:, 1, 1] + 2 * root_det)
        root = (s + root_det[:, None, None] * np.eye(2)) / norm[:, None, None]  # the square root of s
        a, b, c, d = root[:, 0, 0], root[:, 0, 1], root[:, 1, 0], root[:, 1, 1]
        det = a * d - b * c  # >= 1: root's eigenvalues are >= 1
        white = np.stack([(d * r[:, 0] - b * r[:, 1]) / det, (a * r[:, 1] - c * r[:, 0]) / det], axis=1)
    white[bad | ~np.isfinite(white).all(1)] = np.inf
    return white


def homography_sampson_errors(h: np.ndarray, pts1: np.ndarray, pts2: np.ndarray) -> np.ndarray:
    """Sampson error (K,) of H at correspondences pts1/pts2 (K, 2), pixels; inf where undefined."""
    pts1 = np.asarray(pts1, np.float64).reshape(-1, 2)
    pts2 = np.asarray(pts2, np.float64).reshape(-1, 2)
    if len(pts1) == 0:
        return np.zeros(0)
    err = np.linalg.norm(_whitened_residuals(h, pts1, pts2), axis=1)
    return np.where(np.isfinite(err), err, np.inf)


def _normaliser(points: np.ndarray) -> np.ndarray:
    centre = points.mean(0)
    scale = np.sqrt(2.0) / max(np.linalg.norm(points - centre, axis=1).mean(), 1e-9)
    return np.array([[scale, 0, -scale * centre[0]], [0, scale, -scale * centre[1]], [0, 0, 1.0]])


def _least_squares_sampson(h: np.ndarray, pts1: np.ndarray, pts2: np.ndarray) -> np.ndarray | None:
    """H minimising the sum of squared Sampson errors over pts1/pts2 (N >= 4), started from ``h``."""
    from scipy.optimize import least_squares

    t1, t2 = _normaliser(pts1), _normaliser(pts2)
    start = t2 @ h @ np.linalg.inv(t1)
    start = start / start[2, 2]

    def unpack(p):
        return np.linalg.inv(t2) @ np.append(p, 1.0).reshape(3, 3) @ t1

    def residuals(p):
        res = _whitened_residuals(unpack(p), pts1, pts2).ravel()
        return np.where(np.isfinite(res), res, 1e6)

    try:
        fit = least_squares(residuals, start.ravel()[:8], method="lm", max_nfev=200)
    except (ValueError, np.linalg.LinAlgError):  # a degenerate start or set: no refit
        return None
    out = unpack(fit.x)
    return out / out[2, 2] if np.all(np.isfinite(out)) and abs(out[2, 2]) > 1e-12 else None


#: LO schedule of :func:`refit_sampson`: the first refits collect inliers at these multiples of the threshold
#: (a model a few pixels off has few inliers at 1x: LO-RANSAC's shrinking threshold), then 1x until stable.
REFIT_WIDENING = (3.0, 2.0, 1.5)
#: Refits at the threshold itself at most (the inlier set is usually stable after 2-4).
REFIT_ROUNDS = 10


def refit_sampson(h: np.ndarray, pts1: np.ndarray, pts2: np.ndarray, threshold: float,
                  rounds: int = REFIT_ROUNDS, widening: tuple = REFIT_WIDENING) -> tuple[np.ndarray, np.ndarray]:
    """H refitted in the Sampson error and its inliers (K,) bool among all correspondences pts1/pts2 (K, 2).

    Local optimisation: each round fits H (minimising the Sampson error) to the correspondences within
    ``factor * threshold`` of the previous fit, ``factor`` running through ``widening`` and then 1 for at most
    ``rounds`` rounds, until the inliers at ``threshold`` no longer change; a near miss (a model some pixels off,
    with few inliers at the threshold) is pulled in by the wider first rounds. Of the start and every fit, the one
    with the lowest truncated cost (sum of min(e, threshold)^2 over all correspondences) is returned, so a refit
    never makes the model worse."""
    pts1 = np.asarray(pts1, np.float64).reshape(-1, 2)
    pts2 = np.asarray(pts2, np.float64).reshape(-1, 2)
    fits = [np.asarray(h, np.float64) / h[2, 2]]
    errors = [homography_sampson_errors(fits[0], pts1, pts2)]
    previous = None
    for factor in (*widening, *([1.0] * rounds)):
        chosen = errors[-1] < factor * threshold
        if chosen.sum() < 4:
            if factor > 1.0:
                continue
            break
        if factor == 1.0 and previous is not None and np.array_equal(chosen, previous):
            break  # stable
        refined = _least_squares_sampson(fits[-1], pts1[chosen], pts2[chosen])
        if refined is None:
            break
        fits.append(refined)
        errors.append(homography_sampson_errors(refined, pts1, pts2))
        if factor == 1.0:
            previous = chosen
    costs = [float(np.sum(np.minimum(e, threshold) ** 2)) for e in errors]
    best = int(np.argmin(costs))
    return fits[best], errors[best] < threshold


def sampson_refit_with_frames(model: np.ndarray, pts1: np.ndarray, pts2: np.ndarray, lafs1: np.ndarray,
                              lafs2: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """H refitted in the Sampson error (:func:`refit_sampson` at ``SAMPSON_FACTOR * threshold``) over the
    tentatives pts1/pts2 (K, 2) (float64) and its inliers (K,) bool, less those whose frames lafs1/lafs2
    (K, 2, 3) disagree with the refit."""
    h, inliers = refit_sampson(model, pts1, pts2, SAMPSON_FACTOR * threshold)
    index = np.nonzero(inliers)[0]
    inliers[index[~laf_consistent("homography", h, lafs1[index], lafs2[index])]] = False
    return h, inliers


def refine_accepted(model: np.ndarray, inliers: np.ndarray, pts1: np.ndarray, pts2: np.ndarray, lafs1: np.ndarray,
                    lafs2: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """An accepted homography (its ``inliers`` (K,) among the tentatives pts1/pts2 (K, 2), frames lafs1/lafs2
    (K, 2, 3)) refitted in the Sampson error (:func:`refit_sampson` at ``SAMPSON_FACTOR * threshold``), its
    inliers those whose frames agree with the refit; the refit is kept when it has at least as many distinct
    inliers as the model had, else ``(model, inliers)`` come back unchanged."""
    pts1 = np.asarray(pts1, np.float64).reshape(-1, 2)
    pts2 = np.asarray(pts2, np.float64).reshape(-1, 2)
    h, refit = sampson_refit_with_frames(model, pts1, pts2, lafs1, lafs2, threshold)
    before = distinct_count(pts1[inliers], pts2[inliers], DUPLICATE_RADIUS)
    if distinct_count(pts1[refit], pts2[refit], DUPLICATE_RADIUS) >= before:
        return h, refit
    return model, inliers


def overlap_grid(h: np.ndarray, size1: tuple[int, int], size2: tuple[int, int], step: float = 20.0) -> np.ndarray:
    """Grid points (M, 2) of image 1 (every ``step`` px) that H maps in front of and inside image 2."""
    ys, xs = np.mgrid[0:size1[1]:step, 0:size1[0]:step]
    grid = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)
    q = np.concatenate([grid, np.ones((len(grid), 1))], axis=1) @ np.asarray(h, np.float64).T
    with np.errstate(divide="ignore", invalid="ignore"):
        p = q[:, :2] / q[:, 2:]
    inside = (q[:, 2] * h[2, 2] > 0) & (p[:, 0] >= 0) & (p[:, 1] >= 0) & (p[:, 0] <= size2[0] - 1) \
        & (p[:, 1] <= size2[1] - 1)
    return grid[inside]


def model_uncertainty(h: np.ndarray, pts1: np.ndarray, pts2: np.ndarray, size1: tuple[int, int],
                      size2: tuple[int, int], rounds: int = 6, seed: int = 0) -> float:
    """How well the inliers pts1/pts2 (N, 2) determine H over the overlap, in image 2 pixels: the inliers are
    split in random halves, H is fitted to each (Sampson error), and the two fits' mean distance over the
    image-1 points H maps into image 2 (the region a judge of H looks at) is averaged over ``rounds`` splits.
    Two halves disagree by about twice the full fit's error; inf when a half cannot be fitted."""
    pts1 = np.asarray(pts1, np.float64).reshape(-1, 2)
    pts2 = np.asarray(pts2, np.float64).reshape(-1, 2)
    grid = overlap_grid(h, size1, size2)
    if len(pts1) < 8 or len(grid) == 0:
        return float("inf")
    rng = np.random.default_rng(seed)
    gaps = []
    for _ in range(rounds):
        order = rng.permutation(len(pts1))
        halves = order[: len(order) // 2], order[len(order) // 2:]
        fits = [_least_squares_sampson(h, pts1[i], pts2[i]) for i in halves]
        if any(f is None for f in fits):
            return float("inf")
        mapped = [np.concatenate([grid, np.ones((len(grid), 1))], axis=1) @ f.T for f in fits]
        with np.errstate(divide="ignore", invalid="ignore"):
            gap = np.linalg.norm(mapped[0][:, :2] / mapped[0][:, 2:] - mapped[1][:, :2] / mapped[1][:, 2:], axis=1)
        gaps.append(float(np.mean(gap)) if np.all(np.isfinite(gap)) else float("inf"))
    return float(np.mean(gaps))


def anisotropy_limit(max_view_tilt: float) -> float:
    """Axis-ratio limit of a homography for a step whose views tilt each image up to ``max_view_tilt``."""
    return max(MAX_LOCAL_ANISOTROPY, float(max_view_tilt) ** 2)


def accept_extreme(model: np.ndarray, pts1: np.ndarray, pts2: np.ndarray, lafs1: np.ndarray, lafs2: np.ndarray,
                   sizes: tuple, min_inliers: int, threshold: float, max_view_tilt: float = 1.0
                   ) -> tuple[np.ndarray, np.ndarray, str]:
    """Acceptance of a RANSAC homography for extreme views: ``(H, inliers (K,) bool, reason)``, reason "" when
    accepted.

    Over all tentative correspondences pts1/pts2 (K, 2) with frames lafs1/lafs2 (K, 2, 3): inliers in the
    Sampson error at ``SAMPSON_FACTOR * threshold`` and H refitted on them (:func:`refit_sampson`); the
    frame check, ``min_inliers`` distinct inliers and the spread check of :mod:`hardmatch.geometry.acceptance`; its
    homography sanity with the axis-ratio limit of views tilted up to ``max_view_tilt``
    (:func:`anisotropy_limit`); :func:`repeated_pattern_problem` (``sizes``: ((w1, h1), (w2, h2))); and
    :func:`model_uncertainty` at most :data:`MAX_UNCERTAINTY_PX` (a model the inliers do not pin down over the
    overlap is no answer).
    """
    pts1 = np.asarray(pts1, np.float64).reshape(-1, 2)
    pts2 = np.asarray(pts2, np.float64).reshape(-1, 2)
    h, inliers = sampson_refit_with_frames(model, pts1, pts2, lafs1, lafs2, threshold)
    count = distinct_count(pts1[inliers], pts2[inliers], DUPLICATE_RADIUS)
    if count < min_inliers:
        return h, inliers, (f"only {count} distinct inliers in the Sampson error with frames consistent with the "
                            f"homography (< min_inliers {min_inliers})")
    why = (spread_problem(pts1[inliers], pts2[inliers])
           or homography_problem(h, pts1[inliers], anisotropy_limit(max_view_tilt)))
    why = why or repeated_pattern_problem(pts1[inliers], pts2[inliers], *sizes, min_inliers)
    return h, inliers, why or precision_problem(h, pts1[inliers], pts2[inliers], sizes)


def precision_problem(h: np.ndarray, pts1: np.ndarray, pts2: np.ndarray, sizes) -> str:
    """Why the inliers pts1/pts2 (N, 2) do not pin H down over the overlap (:func:`model_uncertainty` above
    :data:`MAX_UNCERTAINTY_PX`; ``sizes`` ((w1, h1), (w2, h2))), or "" when they do."""
    spread = model_uncertainty(h, pts1, pts2, *sizes)
    if spread > MAX_UNCERTAINTY_PX:
        return (f"the inliers fix the homography only to {spread:.3g} px over the overlap (halves of them "
                f"disagree; > {MAX_UNCERTAINTY_PX:g})")
    return ""
