"""Robust two-view geometry: DEGENSAC (pydegensac), MAGSAC++ (OpenCV USAC) or PoseLib.

``verify(pts1 (K, 2), pts2 (K, 2), geometry, method, ...) -> Verification`` with ``model`` (3, 3)
float64 (homography image1 -> image2, fundamental matrix with ``x2^T F x1 = 0``, or essential
matrix ``E = [t]x R`` of cameras ``K1``/``K2`` with the pose ``R``, ``t``: :mod:`hardmatch.geometry.essential`)
or None, and ``inliers`` (K,) bool. ``method="auto"``: degensac for H and F, poselib for E.

Reproducibility: both estimators get ``seed`` on every call (pydegensac's ``seed`` argument;
``cv2.setRNGSeed(seed)`` before MAGSAC++), so the same input gives the same output whatever ran
before (tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..core.options import check_fields, option
from . import essential as essentiallib

GEOMETRIES = ("homography", "fundamental", "essential")
METHODS = ("auto", "degensac", "magsac", "poselib")

#: Minimal sample sizes: fewer tentative matches cannot define a model.
MIN_MATCHES = {"homography": 4, "fundamental": 8, "essential": essentiallib.MIN_MATCHES}

#: Pixels: working pixels for H and F; Sampson distance in the pixels of K1/K2 for E.
DEFAULT_THRESHOLD = {"homography": 3.0, "fundamental": 1.0, "essential": essentiallib.DEFAULT_THRESHOLD}


@dataclass
class Verification:
    """``model`` (3, 3) or None, ``inliers`` (K,) bool; for essential also ``R`` (3, 3) and unit ``t`` (3,)."""

    model: np.ndarray | None
    inliers: np.ndarray
    R: np.ndarray | None = None
    t: np.ndarray | None = None

    @property
    def num_inliers(self) -> int:
        return int(self.inliers.sum())


def verify(pts1: np.ndarray, pts2: np.ndarray, geometry: str = "homography", method: str = "degensac",
           threshold: float | None = None, max_iters: int = 10000, confidence: float = 0.9999,
           seed: int = 0, lafs1: np.ndarray | None = None, lafs2: np.ndarray | None = None,
           laf_check: float = 0.0, magnification: float = 6.0, K1: np.ndarray | None = None,
           K2: np.ndarray | None = None) -> Verification:
    """Fit ``geometry`` to correspondences pts1 (K, 2) <-> pts2 (K, 2) robustly.

    ``threshold`` is the inlier distance in pixels (default per geometry, see ``DEFAULT_THRESHOLD``).
    ``laf_check > 0`` (DEGENSAC only) also requires each inlier's frames ``lafs1``/``lafs2`` (K, 2, 3)
    to agree with the model: pydegensac's ``laf_consistensy_coef``. Frames are handed over at
    OpenCV keypoint scale (radius / magnification * 2, pydegensac's convention for keypoints).
    ``geometry="essential"`` needs the cameras ``K1``, ``K2`` (3, 3) of the points' pixels.
    """
    if geometry not in GEOMETRIES:
        raise ValueError(f"geometry must be one of {GEOMETRIES}, got {geometry!r}")
    if method not in METHODS:
        raise ValueError(f"ransac method must be one of {METHODS}, got {method!r}")
    method = resolve_method(geometry, method)
    pts1 = np.ascontiguousarray(pts1, dtype=np.float64).reshape(-1, 2)
    pts2 = np.ascontiguousarray(pts2, dtype=np.float64).reshape(-1, 2)
    k = len(pts1)
    no_model = Verification(None, np.zeros(k, dtype=bool))
    if k < MIN_MATCHES[geometry]:
        return no_model
    threshold = DEFAULT_THRESHOLD[geometry] if threshold is None else float(threshold)
    centres1, centres2 = pts1, pts2
    if geometry == "essential":
        if K1 is None or K2 is None:
            raise ValueError("geometry essential needs the camera matrices K1 and K2")
        pose = essentiallib.estimate_relative_pose(pts1, pts2, K1, K2, method, threshold, max_iters, confidence, seed)
        return no_model if pose is None else Verification(pose.E, pose.inliers, pose.R, pose.t)
    if method == "degensac":
        if laf_check > 0 and lafs1 is not None and lafs2 is not None:
            pts1 = _pydegensac_frames(lafs1, 2.0 / magnification)
            pts2 = _pydegensac_frames(lafs2, 2.0 / magnification)
        model, mask = _degensac(pts1, pts2, geometry, threshold, max_iters, confidence, max(laf_check, 0.0), seed)
    else:
        cv2.setRNGSeed(int(seed))
        if geometry == "homography":
            model, mask = cv2.findHomography(pts1, pts2, cv2.USAC_MAGSAC, threshold, maxIters=max_iters,
                                             confidence=confidence)
        else:
            model, mask = cv2.findFundamentalMat(pts1, pts2, cv2.USAC_MAGSAC, threshold, confidence, max_iters)
    if model is None or mask is None or model.shape != (3, 3) or not np.all(np.isfinite(model)):
        return no_model
    inliers = np.asarray(mask).reshape(-1).astype(bool)
    if inliers.sum() < MIN_MATCHES[geometry]:
        return no_model
    model = np.asarray(model, dtype=np.float64)
    if geometry == "homography":
        model, inliers = refit_homography(model, centres1, centres2, inliers, threshold)
    return Verification(model, inliers)


def resolve_method(geometry: str, method: str) -> str:
    """The estimator ``method`` means for ``geometry`` (``auto``: degensac, or poselib for essential);
    ``ValueError`` for a method without a solver for it."""
    if method == "auto":
        return essentiallib.DEFAULT_METHOD if geometry == "essential" else "degensac"
    if (geometry == "essential") != (method in essentiallib.METHODS) and method != "magsac":
        raise ValueError(f"ransac method {method!r} has no {geometry} solver")
    return method


def symmetric_transfer_error(h: np.ndarray, pts1: np.ndarray, pts2: np.ndarray) -> np.ndarray:
    """Per correspondence (K,): the larger of |H x1 - x2| and |H^-1 x2 - x1| in pixels (inf where undefined)."""
    def transfer(m, p):
        q = np.concatenate([p, np.ones((len(p), 1))], axis=1) @ m.T
        with np.errstate(divide="ignore", invalid="ignore"):
            return q[:, :2] / q[:, 2:]

    try:
        inverse = np.linalg.inv(h)
    except np.linalg.LinAlgError:
        return np.full(len(pts1), np.inf)
    err = np.maximum(np.linalg.norm(transfer(h, pts1) - pts2, axis=1),
                     np.linalg.norm(transfer(inverse, pts2) - pts1, axis=1))
    return np.where(np.isfinite(err), err, np.inf)


def refit_homography(model: np.ndarray, pts1: np.ndarray, pts2: np.ndarray, inliers: np.ndarray,
                     threshold: float, rounds: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares homography on the RANSAC inliers, and its inliers (K,) at the same threshold.

    DEGENSAC and MAGSAC++ return the model of their best (locally optimised) sample, whose
    extrapolation beyond the inliers can be pixels off even with hundreds of inliers at sub-pixel
    residuals (measured: 10.9 px at the corners of a 1600 px image, 0.58 px after the refit). Up to
    ``rounds`` refits, each on the previous one's inliers. A refit replaces the model when its MSAC
    cost (sum over all correspondences of min(e^2, threshold^2), e the symmetric transfer error) is
    not higher: the cost weighs how well the inliers fit, not only how many fall under the
    threshold. Counting inliers alone kept a biased sample model 1.9 px off over a 10 Mpx image
    because its refit, with half the cost, counted one boundary inlier fewer (4786 of 4787).
    """

    def cost_and_inliers(h: np.ndarray) -> tuple[float, np.ndarray]:
        error = symmetric_transfer_error(h, pts1, pts2)
        return float(np.sum(np.minimum(np.nan_to_num(error, nan=np.inf), threshold) ** 2)), error < threshold

    best, best_kept = model, inliers  # unless a refit does better: the estimator's model and inliers
    best_cost, _ = cost_and_inliers(model)
    current = inliers
    for _ in range(rounds):
        if current.sum() < MIN_MATCHES["homography"]:
            break
        refined, _ = cv2.findHomography(pts1[current], pts2[current], 0)
        if (refined is None or refined.shape != (3, 3) or not np.all(np.isfinite(refined))
                or abs(refined[2, 2]) < 1e-12):
            break
        refined = refined / refined[2, 2]
        cost, kept = cost_and_inliers(refined)
        if cost > best_cost or kept.sum() < MIN_MATCHES["homography"]:
            break
        best, best_cost, best_kept = refined, cost, kept
        if np.array_equal(kept, current):
            break
        current = kept
    return best, best_kept


def _pydegensac_frames(lafs: np.ndarray, factor: float) -> np.ndarray:
    """Frames (K, 2, 3) -> pydegensac's (K, 6) ``x, y`` + the shape's columns (its cv2.KeyPoint layout)."""
    a = np.asarray(lafs, dtype=np.float64).reshape(-1, 2, 3)
    return np.ascontiguousarray(np.concatenate([a[:, :, 2], a[:, 0:1, 0] * factor, a[:, 1:2, 0] * factor,
                                                a[:, 0:1, 1] * factor, a[:, 1:2, 1] * factor], axis=1))


#: Iterations of the quick fundamental-matrix pass that bounds the inlier ratio from below
#: (:func:`_degensac`): a cost bound (about 1 % of the default ``max_iters``), not a decision.
INLIER_RATIO_PASS_ITERS = 200

#: Minimal sample of the seven-point fundamental-matrix solver.
FUNDAMENTAL_SAMPLE = 7


def sufficient_iterations(inlier_ratio: float, confidence: float, sample_size: int, max_iters: int) -> int:
    """RANSAC's stopping rule: the iterations that draw at least one all-inlier sample of ``sample_size``
    with probability ``confidence`` when a share ``inlier_ratio`` of the matches are inliers, in [1, max_iters]."""
    p = float(inlier_ratio) ** int(sample_size)
    if p >= 1.0:
        return 1
    if p <= 0.0:
        return int(max_iters)
    needed = np.ceil(np.log1p(-float(confidence)) / np.log1p(-p))
    return int(min(max_iters, max(1, needed)))


def _degensac(pts1, pts2, geometry, threshold, max_iters, confidence, laf_check: float = 0.0, seed: int = 0):
    """pydegensac's homography or fundamental matrix -> ``(model, mask)``.

    pydegensac's F estimator with its degeneracy check runs all ``max_iters`` iterations (measured: the
    same 2976 of 3259 inliers on a fountain-P11 pair after 20 and after 10000 iterations, 0.5 s against
    15.6 s), where its stopping rule should end it after a handful. So a quick pass without the check
    (:data:`INLIER_RATIO_PASS_ITERS` iterations) measures a share of inliers the best model has at least,
    and DEGENSAC then runs the iterations RANSAC's stopping rule asks for at that share
    (:func:`sufficient_iterations`), never more than ``max_iters``: at 90 % inliers 15, at 30 % all of them.
    """
    import pydegensac

    seed = abs(int(seed))  # pydegensac: a negative seed means its own default
    if geometry == "homography":
        return pydegensac.findHomography(pts1, pts2, threshold, confidence, max_iters, laf_check, seed=seed)
    quick = min(int(max_iters), INLIER_RATIO_PASS_ITERS)
    _, mask = pydegensac.findFundamentalMatrix(pts1, pts2, threshold, confidence, quick, laf_check, seed=seed,
                                               enable_degeneracy_check=False)
    share = float(np.asarray(mask).sum()) / max(1, len(pts1)) if mask is not None else 0.0
    iterations = sufficient_iterations(share, confidence, FUNDAMENTAL_SAMPLE, max_iters)
    return pydegensac.findFundamentalMatrix(pts1, pts2, threshold, confidence, iterations, laf_check, seed=seed)


@dataclass(frozen=True)
class RansacConf:
    """The verification stage: model, robust estimator and its settings."""

    geometry: str = option("fundamental", "model to verify: homography (planar scene or pure rotation), "
                                        "fundamental (any rigid scene) or essential (relative pose R, t of "
                                        "calibrated cameras: see intrinsics)", GEOMETRIES)
    ransac: str = option("auto", "robust estimator: degensac (pydegensac), magsac (OpenCV MAGSAC++; for essential "
                               "findEssentialMat + refinement), poselib (essential only: PoseLib LO-RANSAC), or "
                               "auto (degensac for homography/fundamental, poselib for essential)", METHODS)
    threshold: float | None = option(None, "inlier threshold in pixels (default: 3 for homography, 1 for fundamental, "
                                         "in working pixels; essential: 1, Sampson distance in original pixels)",
                                   range="(0, inf)")
    max_iters: int = option(10000, "RANSAC iterations at most", range="[1, inf)")
    confidence: float = option(0.9999, "RANSAC confidence", range="(0, 1)")
    seed: int = option(0, "random seed of the robust estimator", range="[0, inf)")
    ransac_attempts: int = option(3, "RANSAC runs (seeds seed, seed+1, ...); the accepted model with the most inliers "
                                   "wins (one run misses models at 5% inliers: benchmarks/RESULTS.md)",
                                range="[1, inf)")
    laf_check: float = option(0.0, "degensac: pydegensac's LAF-consistency coefficient for minimal samples (0: off)",
                            range="[0, inf)")

    def __post_init__(self) -> None:
        check_fields(self)
        if self.ransac == "poselib" and self.geometry != "essential":
            raise ValueError(f"ransac: poselib estimates relative poses (geometry essential) only, "
                             f"not a {self.geometry}")
        if self.ransac == "degensac" and self.geometry == "essential":
            raise ValueError("ransac: degensac has no essential-matrix solver; use auto, poselib or magsac")
