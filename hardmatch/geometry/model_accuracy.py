"""How precise a verified model is, from its inliers' residuals: what ``PairResult.accuracy`` reports.

For a model fitted to ``k`` inliers with ``p`` degrees of freedom (H 8, F 7, E 5) and residuals
``r_i`` in pixels (H: the Sampson error of the homography, which weighs both images' errors by the
local scale; F and E: the epipolar Sampson distance, E through its F in pixels), the noise is
``sigma = sqrt(sum r_i^2 / (k - p))`` and the model's expected reprojection error at the inliers,
from the usual least-squares error propagation, ``sigma * sqrt(p / k)``: a model supported by few,
noisy inliers is imprecise even when every inlier is within the threshold.

``accuracy(...) -> {"inliers": k, "residual_rms_px": ..., "noise_px": sigma, "expected_error_px": ...}``,
with None for the last two when ``k <= p``.
"""

from __future__ import annotations

import numpy as np

from .essential import epipolar_sampson_errors
from .extreme_acceptance import homography_sampson_errors

DEGREES_OF_FREEDOM = {"homography": 8, "fundamental": 7, "essential": 5}


def residuals(geometry: str, matrix: np.ndarray, pts1: np.ndarray, pts2: np.ndarray) -> np.ndarray:
    """Residuals (K,) in pixels of correspondences pts1/pts2 (K, 2) under an H or an F (3, 3) in their pixels."""
    if geometry == "homography":
        return homography_sampson_errors(matrix, pts1, pts2)
    return epipolar_sampson_errors(matrix, pts1, pts2)


def accuracy(geometry: str, matrix: np.ndarray, pts1: np.ndarray, pts2: np.ndarray) -> dict:
    """The precision summary of a model (``matrix``: H, or the F of an F or E model) at its inliers pts1/pts2 (k, 2)."""
    dof = DEGREES_OF_FREEDOM[geometry]
    r = residuals("homography" if geometry == "homography" else "fundamental", matrix, pts1, pts2)
    r = r[np.isfinite(r)]
    k = len(r)
    summary = {"inliers": int(k), "residual_rms_px": round(float(np.sqrt(np.mean(r ** 2))), 4) if k else None,
               "noise_px": None, "expected_error_px": None}
    if k > dof:
        sigma = float(np.sqrt(np.sum(r ** 2) / (k - dof)))
        summary["noise_px"] = round(sigma, 4)
        summary["expected_error_px"] = round(float(sigma * np.sqrt(dof / k)), 4)
    return summary


def result_accuracy(result) -> dict | None:
    """:func:`accuracy` of a :class:`~hardmatch.core.records.PairResult`'s model at its inliers, in the
    original images' pixels (None without a model)."""
    if result.model is None:
        return None
    matrix = result.F if result.geometry == "essential" else result.model
    pts1, pts2 = result.inlier_points
    return accuracy(result.geometry, matrix, pts1, pts2)
