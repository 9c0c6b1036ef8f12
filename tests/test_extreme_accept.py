"""Acceptance for extreme geometry (hardmatch.geometry.extreme_acceptance) on constructed cases."""

import numpy as np
import pytest

from hardmatch.core import laf
from hardmatch.geometry.acceptance import accept, homography_anisotropy, homography_jacobians, spread_problem
from hardmatch.geometry.extreme_acceptance import (
    MAX_UNCERTAINTY_PX, accept_extreme, band_share, densest_spot, model_uncertainty, refit_sampson,
    repeated_pattern_problem, homography_sampson_errors,
)
from hardmatch.geometry.ransac import symmetric_transfer_error

SIZE = (1000, 700)


def _project(h, pts):
    q = np.concatenate([pts, np.ones((len(pts), 1))], axis=1) @ h.T
    return q[:, :2] / q[:, 2:]


def _tilted(tilt: float) -> np.ndarray:
    """A homography of local tilt about ``tilt``: compress x by sqrt(tilt), stretch y by sqrt(tilt), a rotation,
    a mild projective part; maps a 1000x700 image onto a canvas of similar extent."""
    a = np.deg2rad(20.0)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    h = np.eye(3)
    h[:2, :2] = rot @ np.diag([np.sqrt(tilt), 1.0 / np.sqrt(tilt)]) * 0.5
    h[:2, 2] = [300.0, 400.0]
    h[2, :2] = [2e-5, -1e-5]
    return h


def _frames_through(h, pts1, radius=8.0):
    """Round frames at pts1 and their exact images under H's local affine map (frames that agree with H)."""
    lafs1 = laf.from_center_radius_angle(pts1, np.full(len(pts1), radius), np.zeros(len(pts1)))
    jac, _ = homography_jacobians(h, pts1)
    lafs2 = np.concatenate([jac @ lafs1[:, :, :2], _project(h, pts1)[:, :, None]], axis=2)
    return lafs1, lafs2


def test_repeated_pattern_band_with_one_dense_spot_is_refused():
    rng = np.random.default_rng(0)
    # 19 inliers along a row of identical brackets (one line, a few px off it) and 2 frames on one spot
    x = np.linspace(80.0, 920.0, 19)
    band = np.stack([x, 250.0 + 0.2 * x + rng.normal(0.0, 4.0, 19)], axis=1)
    spot = np.array([[420.0, 560.0], [431.0, 569.0]])
    pts1 = np.vstack([band, spot])
    h = np.array([[1.1, 0.05, 130.0], [-0.02, 0.95, 10.0], [1e-5, 0.0, 1.0]])  # one period off: still "a model"
    pts2 = _project(h, pts1)
    assert spread_problem(pts1, pts2) == ""  # the spot lifts the plain spread check...
    why = repeated_pattern_problem(pts1, pts2, SIZE, SIZE, min_inliers=10)
    assert "line" in why  # ...but not the band test without the densest spot


def test_inliers_spread_over_the_plane_are_not_a_repeated_pattern():
    rng = np.random.default_rng(1)
    pts1 = rng.uniform([0, 0], SIZE, (40, 2))
    assert repeated_pattern_problem(pts1, _project(_tilted(4.0), pts1), SIZE, SIZE, min_inliers=10) == ""


def test_distinct_inliers_are_counted_at_a_radius_relative_to_the_image():
    rng = np.random.default_rng(2)
    clusters = rng.uniform([100, 100], [900, 600], (6, 2))
    pts1 = np.repeat(clusters, 5, axis=0) + rng.normal(0.0, 2.0, (30, 2))  # 30 points on 6 spots
    why = repeated_pattern_problem(pts1, pts1 + 3.0, SIZE, SIZE, min_inliers=10)
    assert why.startswith("only 6 distinct inliers")


def test_densest_spot_and_band_share():
    pts = np.array([[0, 0], [1, 1], [2, 0], [100, 100], [200, 0]], float)
    assert densest_spot(pts, 5.0).tolist() == [True, True, True, False, False]
    line = np.stack([np.arange(10.0) * 50, np.zeros(10)], 1)
    assert band_share(np.vstack([line, [[0, 300]]]), 5.0) == pytest.approx(10 / 11)


def test_sampson_error_is_the_coarse_image_error_under_a_zoom():
    zoom = np.diag([8.0, 8.0, 1.0])
    pts1 = np.array([[10.0, 10.0], [50.0, 20.0]])
    pts2 = _project(zoom, pts1 + [[0.5, 0.0], [0.0, -0.5]])  # half a pixel off in the small image
    assert homography_sampson_errors(zoom, pts1, pts2) == pytest.approx([0.5, 0.5], rel=0.02)
    assert symmetric_transfer_error(zoom, pts1, pts2) == pytest.approx([4.0, 4.0])
    # no scale change: the transfer error / sqrt 2
    assert homography_sampson_errors(np.eye(3), pts1, pts1 + [3.0, 0.0]) == pytest.approx([3 / np.sqrt(2)] * 2)


def test_right_model_at_tilt_20_with_one_way_subpixel_inliers_is_accepted():
    rng = np.random.default_rng(3)
    h = _tilted(20.0)
    pts1 = rng.uniform([0, 0], SIZE, (60, 2))
    assert homography_anisotropy(h, pts1) > 15.0
    pts2 = _project(h, pts1) + rng.normal(0.0, 0.35, pts1.shape)  # sub-pixel one way (in image 2) ...
    assert (symmetric_transfer_error(h, pts1, pts2) > 3.0).sum() > 10  # ... pixels off the other way
    lafs1, lafs2 = _frames_through(h, pts1)
    # the preset acceptance refuses it (the constant axis-ratio limit); the extreme one with views of tilt 8 takes it
    plain = accept("homography", h, symmetric_transfer_error(h, pts1, pts2) < 3.0, pts1, pts2, lafs1, lafs2, 10)
    assert not plain.accepted
    model, inliers, why = accept_extreme(h, pts1, pts2, lafs1, lafs2, (SIZE, SIZE), 10, 3.0, max_view_tilt=8.0)
    assert why == ""
    assert inliers.sum() >= 57
    corners = np.array([[0, 0], [999, 0], [999, 699], [0, 699]], float)
    assert np.abs(_project(model, corners) - _project(h, corners)).max() < 3.0
    # the same model from views of tilt at most 2 (limit 12): refused as too squashing
    _, _, why = accept_extreme(h, pts1, pts2, lafs1, lafs2, (SIZE, SIZE), 10, 3.0, max_view_tilt=2.0)
    assert "squashes" in why


def test_wrong_correspondences_give_no_accepted_model():
    rng = np.random.default_rng(4)
    pts1 = rng.uniform([0, 0], SIZE, (80, 2))
    pts2 = rng.uniform([0, 0], SIZE, (80, 2))
    h = _tilted(20.0)
    lafs1, lafs2 = _frames_through(h, pts1)
    _, inliers, why = accept_extreme(h, pts1, pts2, lafs1, lafs2, (SIZE, SIZE), 10, 3.0, max_view_tilt=8.0)
    assert why and inliers.sum() < 10


def test_refit_sampson_recovers_the_model_from_a_perturbed_start():
    rng = np.random.default_rng(5)
    h = _tilted(6.0)
    pts1 = rng.uniform([0, 0], SIZE, (100, 2))
    pts2 = _project(h, pts1 + rng.normal(0.0, 0.2, pts1.shape))
    start = h.copy()
    start[0, 2] += 1.5
    start[1, 1] *= 1.01
    model, inliers = refit_sampson(start, pts1, pts2, 2.0)
    assert inliers.all()
    assert np.abs(_project(model, pts1) - _project(h, pts1)).max() < 0.5


def test_thin_evidence_in_one_corner_does_not_pin_the_model_down():
    rng = np.random.default_rng(6)
    h = _tilted(6.0)
    corner = rng.uniform([0, 0], [150, 120], (14, 2))  # 14 inliers in a corner of a 1000x700 image, 1 px noise
    pts2 = _project(h, corner) + rng.normal(0.0, 1.0, corner.shape)
    lafs1, lafs2 = _frames_through(h, corner)
    size2 = tuple(int(v) for v in _project(h, np.array([[999.0, 699.0]]))[0] + 400)
    assert model_uncertainty(h, corner, pts2, SIZE, size2) > MAX_UNCERTAINTY_PX
    _, _, why = accept_extreme(h, corner, pts2, lafs1, lafs2, (SIZE, size2), 10, 3.0, max_view_tilt=8.0)
    assert why
    spread = rng.uniform([0, 0], SIZE, (60, 2))  # the same noise over the whole image: pinned down
    pts2 = _project(h, spread) + rng.normal(0.0, 1.0, spread.shape)
    assert model_uncertainty(h, spread, pts2, SIZE, size2) < 2.0


def test_points_sent_to_infinity_are_outliers_not_errors():
    h = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1e-2, 0.0, 1.0]])  # the line x = -100 goes to infinity
    pts1 = np.array([[-100.0, 5.0], [10.0, 10.0], [1e200, 3.0], [20.0, 40.0]])
    pts2 = np.array([[0.0, 0.0], [10.0 / 1.1, 10.0 / 1.1], [0.0, 0.0], [20.0 / 1.2, 40.0 / 1.2]])
    e = homography_sampson_errors(h, pts1, pts2)
    assert np.isinf(e[0]) and e[2] > 50.0 and e[1] < 1e-6 and e[3] < 1e-6
    model, inliers = refit_sampson(h, np.vstack([pts1, pts1[[1, 3]] + 1.0]), np.vstack([pts2, pts2[[1, 3]]]), 2.0)
    assert np.all(np.isfinite(model)) and not inliers[0] and not inliers[2]
