"""Pose scoring of calibrated pairs: the relative pose a pipeline reports, against the pair's ground truth.

A pair with calibrated ground truth (:attr:`~hardmatch.datasets.spec.PairSpec.calibrated`: ``K1``,
``K2``, ``R``, ``t``) is judged by its pose error (:mod:`hardmatch.geometry.pose_metrics`) instead of an
epipolar error in pixels. The pose of a result:

* geometry ``essential``: the result's ``R``, ``t`` (estimated with the pair's true K, which the
  evaluation passes as the cameras);
* geometry ``fundamental``: ``E = K2^T F K1`` with the pair's true K, the pose among its four
  decompositions that puts the most inliers in front of both cameras (``cv2.recoverPose`` on the
  normalized inlier points), so presets without calibrated geometry are comparable;
* geometry ``homography``: no pose (not decomposed; not counted as a reported pose).

An essential or fundamental model whose pose cannot be had counts as a reported pose with an
infinite error (a wrong pose).

A pair counts as matched when a pose is reported and its error is at most
:data:`~hardmatch.geometry.pose_metrics.WRONG_POSE_DEG`; a reported pose above it is a wrong pose.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import cv2
import numpy as np

from ..datasets.spec import PairSpec
from ..geometry.essential import normalize
from ..geometry.pose_metrics import (
    WRONG_POSE_DEG, pose_maa, rotation_error_deg, translation_angle_deg, wrong_pose_share,
)
from .rows import result_row
from .specs import Task

#: Row keys added for calibrated pairs (degrees; None where no pose was reported).
POSE_COLUMNS = ("pose_err_deg", "rot_err_deg", "t_err_deg", "pose_reported")

#: mAA thresholds (degrees) reported per pipeline.
MAA_THRESHOLDS = (5, 10, 20)

#: Fewest inliers in front of both cameras for a pose recovered from F.
_MIN_POSE_POINTS = 5


def pose_from_fundamental(F: np.ndarray, pts1: np.ndarray, pts2: np.ndarray, K1: np.ndarray, K2: np.ndarray
                          ) -> Tuple[Optional[np.ndarray], Optional[np.ndarray], str]:
    """Relative pose from a fundamental matrix and the true cameras.

    Args:
        F: (3, 3) with ``x2^T F x1 = 0`` in pixels of the images ``K1``/``K2`` belong to.
        pts1, pts2: (N, 2) inlier pixel coordinates (image 1, image 2).
        K1, K2: (3, 3) intrinsics.

    Returns:
        ``(R (3, 3), t (3,) unit, "")`` taking camera 1 to camera 2, or ``(None, None, reason)``
        when fewer than 5 inliers are in front of both cameras for every decomposition.
    """
    pts1 = np.asarray(pts1, np.float64).reshape(-1, 2)
    pts2 = np.asarray(pts2, np.float64).reshape(-1, 2)
    if len(pts1) < _MIN_POSE_POINTS:
        return None, None, f"only {len(pts1)} inliers to recover a pose from F"
    E = np.asarray(K2, np.float64).T @ np.asarray(F, np.float64) @ np.asarray(K1, np.float64)
    E /= max(np.linalg.norm(E), 1e-300)
    x1n, x2n = normalize(pts1, K1), normalize(pts2, K2)
    count, R, t, _ = cv2.recoverPose(E, x1n, x2n, np.eye(3))
    if count < _MIN_POSE_POINTS:
        return None, None, f"only {count} inliers in front of both cameras for the pose from F"
    return R, t.reshape(3), ""


def estimated_pose(result, pair: PairSpec) -> Tuple[Optional[np.ndarray], Optional[np.ndarray], str]:
    """``(R, t, "")`` of a pipeline's :class:`~hardmatch.core.records.PairResult` on a calibrated pair,
    or ``(None, None, reason)`` (see the module docstring)."""
    if result.model is None:
        return None, None, result.reason or "no model found"
    if result.geometry == "essential":
        if result.R is None or result.t is None:
            return None, None, "essential model without a pose"
        return np.asarray(result.R, np.float64), np.asarray(result.t, np.float64).reshape(3), ""
    if result.geometry == "fundamental":
        p1, p2 = result.inlier_points
        return pose_from_fundamental(result.model, p1, p2, pair.K1, pair.K2)
    return None, None, f"no pose from a {result.geometry}"


def no_pose(reported: bool = False) -> dict:
    """Pose columns of a row without a pose (``reported``: a model that implies one was reported)."""
    return {"pose_err_deg": None, "rot_err_deg": None, "t_err_deg": None, "pose_reported": reported}


def score_pose(result, pair: PairSpec) -> Tuple[dict, bool, str]:
    """Pose columns of a row (:data:`POSE_COLUMNS`), whether the pair counts as matched, and the
    reason when it does not ("" when it does)."""
    R, t, why = estimated_pose(result, pair)
    if R is None:
        reported = result.model is not None and result.geometry in ("essential", "fundamental")
        return no_pose(reported), False, why
    rot, trans = rotation_error_deg(R, pair.R), translation_angle_deg(t, pair.t)
    error = max(rot, trans)
    fields = {"pose_err_deg": _round(error), "rot_err_deg": _round(rot), "t_err_deg": _round(trans),
              "pose_reported": True}
    if error <= WRONG_POSE_DEG:
        return fields, True, ""
    return fields, False, f"wrong pose: error {error:.1f} deg > {WRONG_POSE_DEG:g} deg"


def pose_row(task: Task, result, geometry: str) -> dict:
    """Row of a calibrated pair: :func:`~hardmatch.evaluation.rows.result_row` with the pose columns,
    ``matched`` by the pose and the pose's reason (``error_px`` None: no pixel ground truth)."""
    fields, matched, why = score_pose(result, task.pair)
    row = result_row(task, result, geometry, matched, float("inf"))
    del row["reason"]
    row.update(fields)
    row["reason"] = why
    return row


def summarize_poses(rows) -> dict:
    """Pose summary of one pipeline's rows: ``{}`` when none is of a calibrated pair, else
    ``pose_pairs``, ``maa5`` / ``maa10`` / ``maa20`` (:func:`~hardmatch.geometry.pose_metrics.pose_maa`; a row
    without a pose, an error row included, counts as infinite), ``wrong_poses`` (reported with an
    error above :data:`WRONG_POSE_DEG`) and ``wrong_pose_share`` (of the calibrated pairs)."""
    posed = [r for r in rows if "pose_reported" in r]
    if not posed:
        return {}
    errors = [r.get("pose_err_deg") for r in posed]
    reported = [bool(r.get("pose_reported")) for r in posed]
    share = wrong_pose_share(errors, reported)
    summary = {"pose_pairs": len(posed)}
    summary.update({f"maa{k}": round(pose_maa(errors, k), 4) for k in MAA_THRESHOLDS})
    summary.update({"wrong_poses": int(round(share * len(posed))), "wrong_pose_share": round(share, 4)})
    return summary


def pose_cells(summary: dict) -> list:
    """Two markdown cells of a pipeline's summary: ``"0.812 / 0.905 / 0.951"`` and ``"2/41"`` (``-`` without poses)."""
    if "maa10" not in summary:
        return ["-", "-"]
    maa = " / ".join(f"{summary[f'maa{k}']:.3f}" for k in MAA_THRESHOLDS)
    return [maa, f"{summary['wrong_poses']}/{summary['pose_pairs']}"]


def _round(value: float) -> Optional[float]:
    return round(float(value), 4) if math.isfinite(value) else None
