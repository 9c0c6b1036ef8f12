"""A-contrario validation of a two-view model: is its consensus unlikely to arise by chance?

The number of false alarms (NFA) of Moisan and Stival (ORSA, IJCV 2004) as Moisan, Moulon and
Monasse apply it to homographies (IPOL 2012) and openMVG's AC-RANSAC to F: under the background
hypothesis the N tentative correspondences are independent and each point of image 2 is uniform in
image 2, independent of its partner in image 1. A model fitted from a sample of ``s`` of them
(H: 4, F: 7 with up to 3 solutions) that puts ``k`` of them within ``r`` of itself is then a false
alarm with an expected count bounded by

    NFA(k) = m (N - s) C(N, k) C(k, s) alpha(r)^(k - s)

(``m`` models per sample; ``N - s`` choices of k; which k tentatives; which s of them made the
model; the other ``k - s`` each within ``r`` with probability ``alpha(r)``). The residuals
``e_1 <= ... <= e_N`` of the model are sorted and NFA is minimised over ``k`` (``r = e_k``); the
model is **real** when ``min NFA < epsilon`` (:data:`EPSILON` = 1: fewer than one such model
expected from pure chance in the whole search; log10 NFA < 0). Everything is in log10 and floats
(``gammaln``), so N of 10^5 is exact enough and cheap.

Residuals and alpha (one-way errors, where the probability bound is exact):

- **H**: the transfer error ``|H x1 - x2|`` in image 2, ``alpha(r) = pi r^2 / A2`` (``A2`` the area
  of image 2, w x h, in the pixels of the points): a uniform x2 falls in the disc of radius r about
  H x1 with at most that probability, whatever H. The symmetric transfer error would charge a
  zoom twice: under a scale change s the fine image's errors are s times the coarse one's, so the
  test is run in both directions (``H^-1`` into image 1 with ``A1``) and the smaller NFA kept,
  times 2 for the two tests (Bonferroni): the coarse image's error decides, as the Sampson error
  does for the inlier threshold (:mod:`hardmatch.geometry.extreme_acceptance`).
- **F**: the distance of x2 to the epipolar line ``F x1``, ``alpha(r) = 2 r D2 / A2`` (``D2`` the
  diagonal of image 2: the band of half-width r about a line across the image), both directions,
  times 2 likewise.

Two departures from the background hypothesis are handled, both measured on real non-matching
pairs (benchmarks/RESULTS.md, "Extreme views: a-contrario validation"):

- **The model judged is ORSA's, not the refit.** A least-squares refit over its own inliers bends to
  them: 8 parameters put 6-8 chance tentatives within a pixel (log10 NFA -3 to -5 on non-matching
  pairs), which ORSA's count, made for a model through ``s`` of them, does not charge. So
  :func:`validate` takes the model's consensus (its best ``k``) and scores :data:`SAMPLES` models
  through minimal samples drawn from it (seeded), each over all N tentatives, keeping the lowest NFA:
  ORSA's own quantity, restricted to samples from that consensus.
- **Distinct evidence.** One feature matched twice (from two views, or two features of one image
  matched to the same one) is one observation, not two independent ones: in a consensus, a
  tentative within :data:`DISTINCT_RADIUS` px, in either image, of one nearer the model does not count.

``N`` is the number of distinct tentatives (after the duplicate filter) of the step that found the
model, so the same test is fair for a 2000-feature step and a 100k-feature view step: there the
``C(N, k)`` term grows and a count of inliers that would be overwhelming among 500 tentatives is
noise among 50 000.

Points are (N, 2) pixels, H (3, 3) maps image 1 to image 2, F satisfies ``x2^T F x1 = 0``, image
sizes are ``(width, height)`` in the points' pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..core.close_pairs import close_pairs

#: Models are real when NFA < EPSILON (log10 NFA < log10 EPSILON = 0).
EPSILON = 1.0
#: Minimal sample size and solutions per sample of each geometry (essential: 5 points, up to 10 solutions).
SAMPLE_SIZE = {"homography": 4, "fundamental": 7, "essential": 5}
MODELS_PER_SAMPLE = {"homography": 1, "fundamental": 3, "essential": 10}
#: Minimal samples drawn from a model's consensus to score it (:func:`validate`).
SAMPLES = 100
#: A model whose own log10 NFA is this or more is reported as is (no consensus worth sampling; above every epsilon).
NO_CONSENSUS = 2.0
#: Distinct evidence: in a consensus, a tentative whose point in image 1 or in image 2 is within this (px) of a
#: nearer one to the model does not count (one feature matched twice, e.g. from two views, is one observation).
DISTINCT_RADIUS = 3.0
#: Residuals below this (px) count as this: no point is located better (keeps alpha > 0 for exact fits).
MIN_RESIDUAL_PX = 1e-3


@dataclass(frozen=True)
class Validation:
    """The a-contrario verdict of a model: ``log10_nfa`` (min over k; inf when there are at most
    ``s`` finite residuals), ``k`` the tentatives of the best consensus, ``radius`` its residual
    bound ``e_k`` (px, in image ``image``: 1 or 2, where the error was measured), ``n`` the tentatives."""

    log10_nfa: float
    k: int
    radius: float
    image: int
    n: int

    def real(self, epsilon: float = EPSILON) -> bool:
        """Whether the consensus is meaningful: NFA < ``epsilon``."""
        return bool(self.log10_nfa < math.log10(epsilon))

    def to_dict(self) -> dict:
        """JSON-ready: ``log10_nfa`` (2 decimals, None when infinite), ``nfa_k``, ``nfa_radius_px``, ``nfa_image``."""
        finite = math.isfinite(self.log10_nfa)
        return {"log10_nfa": round(self.log10_nfa, 2) if finite else None, "nfa_k": int(self.k),
                "nfa_radius_px": round(self.radius, 3) if finite else None, "nfa_image": int(self.image)}


NO_MODEL = Validation(math.inf, 0, math.inf, 0, 0)


def log10_binomial(n, k) -> np.ndarray:
    """log10 C(n, k) for arrays (or scalars) of integers 0 <= k <= n, by lgamma."""
    from scipy.special import gammaln

    n, k = np.asarray(n, np.float64), np.asarray(k, np.float64)
    return (gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)) / math.log(10.0)


def _smallest(residuals: np.ndarray, keep: int | None) -> np.ndarray:
    """The finite residuals, sorted; only the ``keep`` smallest when given."""
    e = residuals[np.isfinite(residuals)]
    if keep is not None and keep < len(e):
        e = np.partition(e, keep - 1)[:keep]
    return np.sort(e)


def nfa_curve(residuals: np.ndarray, log10_alpha, sample: int, models_per_sample: int = 1,
              n: int | None = None, keep: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """log10 NFA(k) for k = sample+1 .. (finite residuals, at most ``keep``): ``(ks, log10_nfa)``.

    ``residuals`` (N,) px (inf/nan: never in a consensus), ``log10_alpha`` a function of the sorted
    residuals -> log10 of the probability that a background point is within that distance (clipped
    at 0), ``n`` the number of tentatives (default ``len(residuals)``)."""
    residuals = np.asarray(residuals, np.float64).ravel()
    n = len(residuals) if n is None else int(n)
    e = _smallest(residuals, keep)
    if len(e) <= sample or n <= sample:
        return np.zeros(0, np.int64), np.zeros(0)
    ks = np.arange(sample + 1, len(e) + 1)
    radius = np.maximum(e[ks - 1], MIN_RESIDUAL_PX)
    la = np.minimum(np.asarray(log10_alpha(radius), np.float64), 0.0)
    log_cnk, log_cks = log10_binomial(n, ks), log10_binomial(ks, sample)
    curve = math.log10(models_per_sample * (n - sample)) + log_cnk + log_cks + (ks - sample) * la
    return ks, curve


def best_nfa(residuals: np.ndarray, log10_alpha, sample: int, models_per_sample: int = 1,
             n: int | None = None, keep: int | None = None) -> tuple[float, int, float]:
    """``(min log10 NFA, its k, its radius e_k)`` of :func:`nfa_curve`; ``(inf, 0, inf)`` without a curve."""
    residuals = np.asarray(residuals, np.float64).ravel()
    ks, curve = nfa_curve(residuals, log10_alpha, sample, models_per_sample, n, keep)
    if len(ks) == 0:
        return math.inf, 0, math.inf
    best = int(np.argmin(curve))
    return float(curve[best]), int(ks[best]), float(_smallest(residuals, keep)[ks[best] - 1])


def transfer_errors(h: np.ndarray, pts1: np.ndarray, pts2: np.ndarray) -> np.ndarray:
    """One-way transfer errors |H x1 - x2| (K,) in image 2 pixels; inf where H x1 is at or behind infinity."""
    pts1 = np.asarray(pts1, np.float64).reshape(-1, 2)
    pts2 = np.asarray(pts2, np.float64).reshape(-1, 2)
    q = np.concatenate([pts1, np.ones((len(pts1), 1))], axis=1) @ np.asarray(h, np.float64).T
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        err = np.linalg.norm(q[:, :2] / q[:, 2:] - pts2, axis=1)
    return np.where(np.isfinite(err) & (np.abs(q[:, 2]) > 1e-12), err, np.inf)


def epipolar_distances(f: np.ndarray, pts1: np.ndarray, pts2: np.ndarray) -> np.ndarray:
    """Distances (K,) of x2 to the epipolar lines F x1, image 2 pixels; inf where the line is undefined."""
    pts1 = np.asarray(pts1, np.float64).reshape(-1, 2)
    pts2 = np.asarray(pts2, np.float64).reshape(-1, 2)
    lines = np.concatenate([pts1, np.ones((len(pts1), 1))], axis=1) @ np.asarray(f, np.float64).T
    norm = np.hypot(lines[:, 0], lines[:, 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.abs(np.sum(lines[:, :2] * pts2, axis=1) + lines[:, 2]) / norm
    return np.where(np.isfinite(d) & (norm > 1e-12), d, np.inf)


def _log10_disc(area: float):
    return lambda r: np.log10(math.pi * np.square(r) / area)


def _log10_band(area: float, diagonal: float):
    return lambda r: np.log10(2.0 * r * diagonal / area)


def _tests(geometry: str, model: np.ndarray, pts1: np.ndarray, pts2: np.ndarray, size1, size2) -> list:
    """The two one-way tests of a model: ``[(image, residuals (N,), log10_alpha)]`` (empty when H is singular)."""
    if geometry == "homography":
        try:
            inverse = np.linalg.inv(model)
        except np.linalg.LinAlgError:
            return []
        return [(2, transfer_errors(model, pts1, pts2), _log10_disc(float(size2[0] * size2[1]))),
                (1, transfer_errors(inverse, pts2, pts1), _log10_disc(float(size1[0] * size1[1])))]
    return [(2, epipolar_distances(model, pts1, pts2), _log10_band(float(size2[0] * size2[1]), math.hypot(*size2))),
            (1, epipolar_distances(model.T, pts2, pts1), _log10_band(float(size1[0] * size1[1]), math.hypot(*size1)))]


def distinct_order(residuals: np.ndarray, pts1: np.ndarray, pts2: np.ndarray, keep: int | None = None,
                   radius: float = DISTINCT_RADIUS) -> np.ndarray:
    """Indices of the tentatives by increasing residual (finite ones; the ``keep`` nearest when given), without
    those within ``radius`` px, in image 1 or in image 2, of a nearer one (:data:`DISTINCT_RADIUS`)."""
    finite = np.nonzero(np.isfinite(residuals))[0]
    if keep is not None and keep < len(finite):
        finite = finite[np.argpartition(residuals[finite], keep - 1)[:keep]]
    order = finite[np.argsort(residuals[finite], kind="stable")]
    if len(order) < 2 or radius <= 0:
        return order
    drop = np.zeros(len(order), bool)
    for pts in (pts1, pts2):
        pairs = close_pairs(pts[order], radius)  # positions in ``order``: the later of a pair is the farther
        if len(pairs):
            drop[pairs.max(axis=1)] = True
    return order[~drop]


def model_nfa(geometry: str, model: np.ndarray, pts1: np.ndarray, pts2: np.ndarray, size1, size2,
              n: int | None = None, keep: int | None = None) -> tuple[Validation, np.ndarray]:
    """The NFA of this very model over the tentatives (both directions, the better one times 2; distinct
    evidence only, :func:`distinct_order`) and the indices of its best consensus (its ``k`` distinct
    tentatives nearest the model in the chosen image)."""
    n = len(pts1) if n is None else int(n)
    sample, per_sample = SAMPLE_SIZE[geometry], MODELS_PER_SAMPLE[geometry]
    tests = _tests(geometry, np.asarray(model, np.float64), pts1, pts2, size1, size2)
    best, consensus = Validation(math.inf, 0, math.inf, 0, n), np.zeros(0, np.int64)
    for image, residuals, log10_alpha in tests:
        order = distinct_order(residuals, pts1, pts2, keep)
        value, k, radius = best_nfa(residuals[order], log10_alpha, sample, per_sample, n)
        value += math.log10(len(tests))  # two tests, the better one kept
        if value < best.log10_nfa:
            best, consensus = Validation(value, k, radius, image, n), order[:k]
    return best, consensus


def minimal_models(geometry: str, pts1: np.ndarray, pts2: np.ndarray) -> list[np.ndarray]:
    """The models through a minimal sample (H: 4 correspondences; F: 7, up to 3 solutions); [] if degenerate."""
    if geometry == "homography":
        h = cv2.getPerspectiveTransform(pts1.astype(np.float32), pts2.astype(np.float32)).astype(np.float64)
        return [h] if np.all(np.isfinite(h)) and abs(np.linalg.det(h)) > 1e-12 else []
    found, _ = cv2.findFundamentalMat(pts1, pts2, cv2.FM_7POINT)
    if found is None:
        return []
    return [f for f in np.asarray(found, np.float64).reshape(-1, 3, 3) if np.all(np.isfinite(f))]


def validate(geometry: str, model: np.ndarray | None, pts1: np.ndarray, pts2: np.ndarray,
             size1: tuple[int, int], size2: tuple[int, int], n: int | None = None, samples: int = SAMPLES,
             seed: int = 0) -> Validation:
    """The a-contrario :class:`Validation` of a homography or fundamental matrix (``geometry``
    "homography", "fundamental"; for "essential" pass its F in pixels as "fundamental") over the
    tentatives pts1/pts2 (N, 2) (``n``: their number, default N).

    The model's consensus (its best ``k`` by :func:`model_nfa`) is judged as ORSA judges it: the NFA of
    ``samples`` models through minimal samples drawn from it (seeded), each over all N tentatives, the lowest
    kept. The model itself is not scored: a least-squares refit over ``k`` inliers bends to them (8 parameters
    fit 6-8 chance tentatives to a pixel), which ORSA's count, made for a model through ``s`` of them, does not
    charge. ``samples=0`` scores the model itself."""
    if model is None:
        return NO_MODEL
    pts1 = np.asarray(pts1, np.float64).reshape(-1, 2)
    pts2 = np.asarray(pts2, np.float64).reshape(-1, 2)
    n = len(pts1) if n is None else int(n)
    own, consensus = model_nfa(geometry, model, pts1, pts2, size1, size2, n)
    sample = SAMPLE_SIZE[geometry]
    if samples <= 0 or len(consensus) <= sample or own.log10_nfa >= NO_CONSENSUS:
        return own  # (own NFA is the lower, optimistic, value: at NO_CONSENSUS and above there is nothing to sample)
    keep = min(len(pts1), max(2 * len(consensus), len(consensus) + 50))  # NFA(k) past that is never the lowest
    rng = np.random.default_rng(seed)
    best = Validation(math.inf, 0, math.inf, 0, n)
    for _ in range(samples):
        pick = rng.choice(consensus, sample, replace=False)
        for candidate in minimal_models(geometry, pts1[pick], pts2[pick]):
            found, _ = model_nfa(geometry, candidate, pts1, pts2, size1, size2, n, keep)
            if found.log10_nfa < best.log10_nfa:
                best = found
    return best


def result_validation(result) -> Validation:
    """:func:`validate` of a :class:`~hardmatch.core.records.PairResult`'s model over all its tentatives
    (``points1``/``points2``, original pixels; ``n`` = its de-duplicated tentative matches)."""
    if result.model is None:
        return NO_MODEL
    geometry = "homography" if result.geometry == "homography" else "fundamental"
    matrix = result.model if geometry == "homography" else result.F
    shapes = [f.image_shape if f is not None else None for f in (result.features1, result.features2)]
    if any(s is None for s in shapes):
        return NO_MODEL
    sizes = tuple((s[1], s[0]) for s in shapes)
    return validate(geometry, matrix, result.points1, result.points2, *sizes, n=result.num_matches)
