"""The accepted model of a set of tentative correspondences: RANSAC attempts, then the acceptance checks.

:func:`search_model` runs the robust estimator ``ransac.ransac_attempts`` times (seeds ``seed``,
``seed + 1``, ...) and, with ``acceptance.accept_checks``, accepts a model only when it passes
:func:`hardmatch.geometry.acceptance.accept` (LAF consistency, homography sanity, ``min_inliers``
distinct inliers); the accepted model with the most inliers wins, and when none is accepted the
first run's reason is reported.

Pixel frames: H and F are fitted and checked in WORKING pixels (``work1``/``work2`` (K, 2), frames
``lafs1``/``lafs2`` (K, 2, 3)), so thresholds mean the same at any image size. The essential matrix
is fitted on ORIGINAL pixels ``pts1``/``pts2`` (K, 2) with the cameras ``K1``/``K2`` (3, 3), and
checked through its F in working pixels, ``(W2 K2)^-T E (W1 K1)^-1`` (``W``: original -> working).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.model_maps import fundamental_from_essential
from .acceptance import AcceptanceConf, accept
from .ransac import RansacConf, verify


@dataclass
class SearchedModel:
    """``model`` (3, 3) or None, ``inliers`` (K,) bool (all False without a model), ``reason`` why
    not (empty when found); for geometry essential the pose ``R`` (3, 3) and unit ``t`` (3,)."""

    model: np.ndarray | None
    inliers: np.ndarray
    reason: str
    R: np.ndarray | None = None
    t: np.ndarray | None = None


def search_model(work1: np.ndarray, work2: np.ndarray, lafs1: np.ndarray, lafs2: np.ndarray,
                 ransac: RansacConf, acceptance: AcceptanceConf, magnification: float,
                 pts1: np.ndarray | None = None, pts2: np.ndarray | None = None,
                 cameras: tuple[np.ndarray, np.ndarray] | None = None,
                 to_working: tuple[np.ndarray, np.ndarray] | None = None) -> SearchedModel:
    """The accepted model of K correspondences (see the module docstring for the pixel frames).

    ``magnification`` gives the frames' keypoint scale to DEGENSAC's LAF check; ``pts1``/``pts2``,
    ``cameras`` (K1, K2) and ``to_working`` (W1, W2, each (3, 3)) are needed for geometry essential.
    """
    essential = ransac.geometry == "essential"
    if essential:
        given = {"K1": cameras[0], "K2": cameras[1]}
        w1, w2 = to_working
    model, inliers, reason, pose = None, np.zeros(len(work1), dtype=bool), "", (None, None)
    for attempt in range(max(1, ransac.ransac_attempts)):
        result = verify(pts1 if essential else work1, pts2 if essential else work2, ransac.geometry, ransac.ransac,
                        ransac.threshold, ransac.max_iters, ransac.confidence, ransac.seed + attempt,
                        lafs1=lafs1, lafs2=lafs2, laf_check=ransac.laf_check, magnification=magnification,
                        **(given if essential else {}))
        found, kept, why = result.model, result.inliers, ""
        if found is None:
            why = f"no {ransac.geometry} found from {len(work1)} tentative matches"
        elif acceptance.accept_checks:
            checked = fundamental_from_essential(found, w1 @ given["K1"], w2 @ given["K2"]) if essential else found
            verdict = accept(ransac.geometry, checked, kept, work1, work2, lafs1, lafs2, acceptance.min_inliers,
                             max(acceptance.duplicate_radius, 0.0))
            kept, why = verdict.inliers, verdict.reason
        elif result.num_inliers < acceptance.min_inliers:
            why = f"only {result.num_inliers} inliers (< min_inliers {acceptance.min_inliers})"
        if not why and (model is None or kept.sum() > inliers.sum()):
            model, inliers, reason, pose = found, kept, "", (result.R, result.t)
        elif model is None and (not reason or attempt == 0):
            reason = why
    if reason:
        return SearchedModel(None, np.zeros(len(work1), dtype=bool), reason)
    return SearchedModel(model, inliers, "", *pose)
