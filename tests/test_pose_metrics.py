"""Tests of hardmatch.geometry.pose_metrics: angular pose errors, mAA and the wrong-pose share."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from hardmatch.geometry.pose_metrics import (
    pose_error_deg, pose_maa, rotation_error_deg, translation_angle_deg, wrong_pose_share,
)


def _rotation(axis, degrees: float) -> np.ndarray:
    axis = np.asarray(axis, dtype=np.float64)
    rvec = axis / np.linalg.norm(axis) * np.radians(degrees)
    return cv2.Rodrigues(rvec)[0]


def test_rotation_error_is_the_angle_between_rotations():
    R_gt = _rotation([0.3, -1.0, 0.2], 35.0)
    R_est = _rotation([1.0, 2.0, -0.5], 7.0) @ R_gt
    assert rotation_error_deg(R_est, R_gt) == pytest.approx(7.0, abs=1e-6)
    assert rotation_error_deg(R_gt, R_gt) == pytest.approx(0.0, abs=1e-5)
    assert rotation_error_deg(_rotation([0, 0, 1], 180.0), np.eye(3)) == pytest.approx(180.0, abs=1e-6)


def test_rotation_error_non_finite_estimate_is_inf_and_bad_shape_raises():
    assert rotation_error_deg(np.full((3, 3), np.nan), np.eye(3)) == float("inf")
    with pytest.raises(ValueError, match="shape"):
        rotation_error_deg(np.eye(2), np.eye(3))


def test_translation_angle_ignores_sign_and_scale():
    t_gt = np.array([1.0, 0.2, -0.1])
    assert translation_angle_deg(-5.0 * t_gt, t_gt) == pytest.approx(0.0, abs=1e-5)
    assert translation_angle_deg([0.0, 1.0, 0.0], [1.0, 0.0, 0.0]) == pytest.approx(90.0)
    assert translation_angle_deg([1.0, 1.0, 0.0], [-1.0, 0.0, 0.0]) == pytest.approx(45.0)
    assert translation_angle_deg(np.zeros(3), t_gt) == float("inf")
    with pytest.raises(ValueError, match="zero"):
        translation_angle_deg(t_gt, np.zeros(3))


def test_pose_error_is_the_larger_error_and_inf_without_estimate():
    R_gt, t_gt = _rotation([0, 1, 0], 20.0), np.array([1.0, 0.0, 0.1])
    R_est = _rotation([0, 0, 1], 3.0) @ R_gt
    t_est = _rotation([0, 0, 1], 8.0) @ t_gt  # 8 degrees off in direction
    assert pose_error_deg(R_est, t_est, R_gt, t_gt) == pytest.approx(
        translation_angle_deg(t_est, t_gt)
    )
    assert pose_error_deg(R_est, t_gt, R_gt, t_gt) == pytest.approx(3.0, abs=1e-6)
    assert pose_error_deg(None, t_est, R_gt, t_gt) == float("inf")
    assert pose_error_deg(R_est, None, R_gt, t_gt) == float("inf")


def test_maa_means_the_accuracy_over_integer_thresholds():
    # thresholds 1..10: 0.5 is under all 10, 4.5 under 5..10 (6), 20 and a failure under none
    errors = [0.5, 4.5, 20.0, None]
    assert pose_maa(errors, 10) == pytest.approx((10 + 6) / (10 * 4))
    assert pose_maa(errors, 5) == pytest.approx((5 + 1) / (5 * 4))
    assert pose_maa([float("nan"), float("inf")]) == 0.0
    assert pose_maa([0.0, 0.99]) == 1.0
    # an error equal to a threshold is not under it
    assert pose_maa([1.0], 1) == 0.0


def test_maa_refuses_empty_and_bad_thresholds():
    with pytest.raises(ValueError, match="no pose errors"):
        pose_maa([])
    with pytest.raises(ValueError, match="integer"):
        pose_maa([1.0], 0)
    with pytest.raises(ValueError, match="integer"):
        pose_maa([1.0], 2.5)


def test_wrong_pose_share_counts_reported_poses_over_the_threshold_among_all_pairs():
    errors = [2.0, 15.0, float("inf"), 30.0, None]
    reported = [True, True, True, False, False]
    # wrong: 15 (reported) and inf (reported but no usable pose); 30 was not reported
    assert wrong_pose_share(errors, reported) == pytest.approx(2 / 5)
    assert wrong_pose_share(errors, reported, threshold_deg=20.0) == pytest.approx(1 / 5)
    with pytest.raises(ValueError, match="differ in length"):
        wrong_pose_share(errors, reported[:3])
