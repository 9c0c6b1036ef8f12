"""Tests of hardmatch.evaluation.pose: the pose of a result on a calibrated pair (real Strecha photos,
real SIFT matches and RANSAC; skipped when ../shared is absent)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from hardmatch.twoview.config import get_preset
from hardmatch.datasets.strecha import read_strecha_pairs
from hardmatch.geometry.essential import estimate_relative_pose
from hardmatch.evaluation.pose import estimated_pose, pose_from_fundamental, score_pose
from hardmatch.core.records import PairResult
from hardmatch.geometry.pose_metrics import pose_error_deg

from .conftest import need_shared

SCALE = 0.25


@pytest.fixture(scope="module")
def pair_and_matches():
    """Pair 0002-0003 of Herz-Jesus-P8 with ratio-tested SIFT matches in full-resolution pixels."""
    spec = next(s for s in read_strecha_pairs(need_shared("data/strecha/Herz-Jesus-P8")) if s.name == "0002-0003")
    images = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in (spec.image1, spec.image2)]
    images = [cv2.resize(im, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_AREA) for im in images]
    sift = cv2.SIFT_create(4000)
    (k1, d1), (k2, d2) = [sift.detectAndCompute(im, None) for im in images]
    good = [m for m, n in cv2.BFMatcher(cv2.NORM_L2).knnMatch(d1, d2, k=2) if m.distance < 0.8 * n.distance]
    p1 = (np.float64([k1[m.queryIdx].pt for m in good]) + 0.5) / SCALE - 0.5
    p2 = (np.float64([k2[m.trainIdx].pt for m in good]) + 0.5) / SCALE - 0.5
    return spec, p1, p2


def _result(geometry, model, p1, p2, inliers, **pose) -> PairResult:
    n = len(p1)
    return PairResult(geometry, model, np.stack([np.arange(n)] * 2, 1), p1, p2, inliers, (n, n), {},
                      get_preset("default"), **pose)


def test_pose_from_a_ransac_fundamental_is_close_to_the_truth(pair_and_matches):
    spec, p1, p2 = pair_and_matches
    F, mask = cv2.findFundamentalMat(p1, p2, cv2.USAC_MAGSAC, 4.0, 0.9999, 10000)
    inliers = mask.ravel().astype(bool)
    R, t, why = pose_from_fundamental(F, p1[inliers], p2[inliers], spec.K1, spec.K2)
    assert why == "" and abs(np.linalg.norm(t) - 1) < 1e-9
    assert pose_error_deg(R, t, spec.R, spec.t) < 5.0
    # the transposed F (images swapped) gives a wrong pose: the check can fail
    R_bad, t_bad, _ = pose_from_fundamental(F.T, p1[inliers], p2[inliers], spec.K1, spec.K2)
    assert R_bad is None or pose_error_deg(R_bad, t_bad, spec.R, spec.t) > 10.0
    fields, matched, reason = score_pose(_result("fundamental", F, p1, p2, inliers), spec)
    assert matched and reason == "" and fields["pose_reported"] and fields["pose_err_deg"] < 5.0
    assert fields["pose_err_deg"] == max(fields["rot_err_deg"], fields["t_err_deg"])


def test_essential_results_report_their_own_pose_and_wrong_poses_are_not_matched(pair_and_matches):
    spec, p1, p2 = pair_and_matches
    pose = estimate_relative_pose(p1, p2, spec.K1, spec.K2, threshold=4.0)
    result = _result("essential", pose.E, p1, p2, pose.inliers, R=pose.R, t=pose.t, K1=spec.K1, K2=spec.K2)
    R, t, _ = estimated_pose(result, spec)
    assert np.allclose(R, pose.R) and pose_error_deg(R, t, spec.R, spec.t) < 5.0
    flipped = cv2.Rodrigues(np.array([0.0, np.radians(25), 0.0]))[0] @ pose.R
    fields, matched, reason = score_pose(
        _result("essential", pose.E, p1, p2, pose.inliers, R=flipped, t=pose.t), spec)
    assert not matched and fields["pose_reported"] and fields["rot_err_deg"] > 20
    assert reason.startswith("wrong pose: error")


def test_no_model_and_homography_give_no_pose(pair_and_matches):
    spec, p1, p2 = pair_and_matches
    none = _result("fundamental", None, p1, p2, np.zeros(len(p1), bool))
    none.reason = "no fundamental found from 12 tentative matches"
    fields, matched, reason = score_pose(none, spec)
    assert not matched and fields == {"pose_err_deg": None, "rot_err_deg": None, "t_err_deg": None,
                                      "pose_reported": False}
    assert reason == none.reason
    H, mask = cv2.findHomography(p1, p2, cv2.RANSAC, 20.0)
    fields, matched, reason = score_pose(_result("homography", H, p1, p2, mask.ravel() > 0), spec)
    assert not matched and not fields["pose_reported"] and fields["pose_err_deg"] is None
    assert reason == "no pose from a homography"
    few = np.zeros(len(p1), bool)
    few[:3] = True
    fields, matched, reason = score_pose(_result("fundamental", np.eye(3), p1, p2, few), spec)
    assert not matched and fields["pose_reported"] and fields["pose_err_deg"] is None  # a wrong pose
    R, t, why = pose_from_fundamental(np.eye(3), p1[:3], p2[:3], spec.K1, spec.K2)
    assert R is None and "only 3 inliers" in why
