"""Relative-pose accuracy: angular errors and mean average accuracy (Image Matching Challenge style).

A pose ``(R, t)`` maps camera-1 coordinates to camera-2 coordinates, ``x2 = R @ x1 + t``;
two-view geometry fixes ``t`` only up to scale, so only its direction is compared, and without
its sign (the convention of the Image Matching Challenge, SuperGlue and LoFTR). The pose error
of a pair is the larger of the rotation error and the translation-direction error; a pair with
no pose counts as an infinite error. ``mAA@T`` is the mean over the thresholds 1, 2, .., T
degrees of the share of pairs whose error is below the threshold.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

#: A pose reported as found with an error above this many degrees counts as a wrong pose.
WRONG_POSE_DEG = 10.0


def relative_pose_between(R_a: np.ndarray, t_a: np.ndarray, R_b: np.ndarray, t_b: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Relative pose of two world-to-camera poses (``x_cam = R @ X + t``): ``(R_ab (3, 3), t_ab (3,))``
    with ``x_b = R_ab @ x_a + t_ab`` (``t_ab`` in the world's units, not normalised)."""
    R_ab = np.asarray(R_b, np.float64) @ np.asarray(R_a, np.float64).T
    return R_ab, np.asarray(t_b, np.float64).reshape(3) - R_ab @ np.asarray(t_a, np.float64).reshape(3)


def rotation_error_deg(R_est: np.ndarray, R_gt: np.ndarray) -> float:
    """Angle in degrees (0..180) of the rotation ``R_est^T R_gt`` between two (3, 3) rotations."""
    R_est = np.asarray(R_est, dtype=np.float64)
    R_gt = np.asarray(R_gt, dtype=np.float64)
    if R_est.shape != (3, 3) or R_gt.shape != (3, 3):
        raise ValueError(f"rotations must have shape (3, 3), got {R_est.shape} and {R_gt.shape}")
    if not np.all(np.isfinite(R_est)):
        return float("inf")
    cosine = (np.trace(R_est.T @ R_gt) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))))


def translation_angle_deg(t_est: np.ndarray, t_gt: np.ndarray) -> float:
    """Sign-free angle in degrees (0..90) between two (3,) translation directions.

    Returns ``inf`` when ``t_est`` is zero or not finite; raises ValueError when ``t_gt`` is
    zero (a pure rotation has no translation direction to compare).
    """
    t_est = np.asarray(t_est, dtype=np.float64).reshape(-1)
    t_gt = np.asarray(t_gt, dtype=np.float64).reshape(-1)
    if t_est.shape != (3,) or t_gt.shape != (3,):
        raise ValueError(f"translations must have shape (3,), got {t_est.shape} and {t_gt.shape}")
    norm_gt = np.linalg.norm(t_gt)
    if not np.isfinite(norm_gt) or norm_gt == 0:
        raise ValueError("ground-truth translation is zero or not finite: no direction to compare")
    norm_est = np.linalg.norm(t_est)
    if not np.isfinite(norm_est) or norm_est == 0:
        return float("inf")
    cosine = abs(float(np.dot(t_est, t_gt))) / (norm_est * norm_gt)
    return float(np.degrees(np.arccos(min(cosine, 1.0))))


def pose_error_deg(
    R_est: Optional[np.ndarray],
    t_est: Optional[np.ndarray],
    R_gt: np.ndarray,
    t_gt: np.ndarray,
) -> float:
    """Pose error in degrees: max of :func:`rotation_error_deg` and :func:`translation_angle_deg`.

    ``inf`` when the estimate (``R_est`` or ``t_est``) is None.
    """
    if R_est is None or t_est is None:
        return float("inf")
    return max(rotation_error_deg(R_est, R_gt), translation_angle_deg(t_est, t_gt))


def _errors_array(errors: Sequence[Optional[float]]) -> np.ndarray:
    """(N,) float64 errors with None and NaN turned into inf; raises ValueError when empty."""
    values = np.array([np.inf if e is None else float(e) for e in errors], dtype=np.float64)
    if values.size == 0:
        raise ValueError("no pose errors given")
    values[np.isnan(values)] = np.inf
    return values


def pose_maa(errors: Sequence[Optional[float]], max_threshold_deg: int = 10) -> float:
    """Mean average accuracy: mean over thresholds 1..``max_threshold_deg`` degrees of the share of errors below each.

    Args:
        errors: N >= 1 pose errors in degrees; None, NaN and inf count as failures.
        max_threshold_deg: the largest threshold, an integer >= 1.

    Returns:
        a value in [0, 1].
    """
    if int(max_threshold_deg) != max_threshold_deg or max_threshold_deg < 1:
        raise ValueError(f"max_threshold_deg must be an integer >= 1, got {max_threshold_deg}")
    values = _errors_array(errors)
    thresholds = np.arange(1, int(max_threshold_deg) + 1, dtype=np.float64)
    return float(np.mean(values[None, :] < thresholds[:, None]))


def wrong_pose_share(
    errors: Sequence[Optional[float]],
    reported: Sequence[bool],
    threshold_deg: float = WRONG_POSE_DEG,
) -> float:
    """Share of ALL N pairs whose pose was reported as found but is off by more than ``threshold_deg``.

    Args:
        errors: N pose errors in degrees (None/NaN: no pose, counts as inf).
        reported: N flags, True where the pipeline reported a pose (a model) for the pair.
        threshold_deg: error above which a reported pose is wrong.
    """
    values = _errors_array(errors)
    flags = np.asarray(reported, dtype=bool).reshape(-1)
    if flags.shape != values.shape:
        raise ValueError(f"errors and reported differ in length ({values.size} vs {flags.size})")
    return float(np.mean(flags & (values > threshold_deg)))
