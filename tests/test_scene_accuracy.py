"""Reconstruction accuracy: Umeyama alignment, per-view errors and pair mAA against ground truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hardmatch.datasets.strecha import CalibratedView
from hardmatch.scene.accuracy import model_poses, reconstruction_accuracy, umeyama


def _rotation(axis, degrees: float) -> np.ndarray:
    axis = np.asarray(axis, np.float64) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    a = np.radians(degrees)
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


S, R_SIM, T_SIM = 2.5, _rotation([1, 2, -0.5], 73.0), np.array([4.0, -1.0, 0.5])


def test_umeyama_recovers_a_known_similarity():
    rng = np.random.default_rng(0)
    src = rng.normal(size=(20, 3))
    dst = S * src @ R_SIM.T + T_SIM
    s, R, t = umeyama(src, dst)
    assert s == pytest.approx(S, rel=1e-9)
    np.testing.assert_allclose(R, R_SIM, atol=1e-9)
    np.testing.assert_allclose(t, T_SIM, atol=1e-9)
    noisy = dst + rng.normal(scale=0.01, size=dst.shape)
    s, R, t = umeyama(src, noisy)
    assert abs(s - S) < 0.02 and np.degrees(np.arccos((np.trace(R.T @ R_SIM) - 1) / 2)) < 0.5
    s, R, _ = umeyama(src, src @ R_SIM.T + T_SIM, with_scale=False)
    assert s == 1.0 and np.allclose(R, R_SIM)


def test_umeyama_three_points_and_no_reflection():
    src = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])  # planar: a reflection fits as well as the rotation
    dst = S * src @ R_SIM.T + T_SIM
    s, R, t = umeyama(src, dst)
    assert np.linalg.det(R) == pytest.approx(1.0) and np.allclose(R, R_SIM) and s == pytest.approx(S)


@pytest.mark.parametrize("src", [np.zeros((4, 3)), np.outer(np.arange(5.0), [1, 2, 3]), np.ones((2, 3))])
def test_umeyama_refuses_degenerate_points(src):
    with pytest.raises(ValueError, match="umeyama"):
        umeyama(src, src + 1)


def _synthetic_model(frames: int = 6):
    pycolmap = pytest.importorskip("pycolmap")
    options = pycolmap.SyntheticDatasetOptions()
    options.num_rigs, options.num_cameras_per_rig, options.num_frames_per_rig = 1, 1, frames
    options.num_points3D = 50
    return pycolmap.synthesize_dataset(options)


def _views_in_another_frame(poses: dict) -> list:
    """Ground truth = the model's cameras moved by the similarity X_gt = S R_SIM X + T_SIM."""
    views = []
    for name, (R, t) in sorted(poses.items()):
        R_gt = R @ R_SIM.T
        views.append(CalibratedView(name=Path(name).stem, image=Path("/nowhere") / name, K=np.eye(3), R=R_gt,
                                    t=S * t - R_gt @ T_SIM, size=(1024, 768)))
    return views


def test_exact_model_has_zero_error():
    poses = model_poses(_synthetic_model())
    assert len(poses) == 6
    acc = reconstruction_accuracy(poses, _views_in_another_frame(poses))
    assert acc["registered"] == 6 and acc["registered_share"] == 1.0 and acc["aligned"]
    assert acc["scale"] == pytest.approx(S, rel=1e-6)
    assert acc["rotation_max_deg"] < 1e-4 and acc["position_max"] < 1e-6
    assert acc["pairs"] == 15 and acc["pair_maa"] == 1.0


def test_unregistered_view_and_a_rotated_camera():
    poses = model_poses(_synthetic_model())
    views = _views_in_another_frame(poses)
    names = sorted(poses)
    changed = dict(poses)
    del changed[names[0]]                                            # not registered
    R, t = changed[names[1]]
    turned = _rotation([0, 1, 0], 5.5) @ R                           # 5.5 degrees off about its own centre
    changed[names[1]] = (turned, turned @ R.T @ t)
    acc = reconstruction_accuracy(changed, views)
    assert acc["registered"] == 5 and acc["registered_share"] == pytest.approx(5 / 6)
    assert acc["rotation_max_deg"] == pytest.approx(5.5, abs=1e-6)
    assert acc["per_view"][Path(names[1]).stem]["rotation_deg"] == pytest.approx(5.5, abs=1e-6)
    assert acc["rotation_median_deg"] < 1e-4 and acc["position_max"] < 1e-5
    # 5 pairs with the missing view fail (0); of the 10 others, the 4 with the turned camera are 5.5 deg off
    # (below thresholds 6..10: 0.5 each) and 6 are exact (1 each)
    assert acc["pair_maa"] == pytest.approx((6 + 4 * 0.5) / 15)
    # relative rotations over the 10 registered pairs: 4 are 5.5 deg off, 6 exact -> median 0
    assert acc["pair_rotation_median_deg"] < 1e-4
    changed[names[2]] = (_rotation([1, 0, 0], 2.0) @ poses[names[2]][0], poses[names[2]][1])
    acc = reconstruction_accuracy(changed, views)  # now 7 of 10 pairs are off: median over 2 deg
    assert 2.0 - 1e-4 < acc["pair_rotation_median_deg"] < 5.5 + 2.0


def test_no_model_and_too_few_views_to_align():
    poses = model_poses(_synthetic_model())
    views = _views_in_another_frame(poses)
    acc = reconstruction_accuracy(None, views)
    assert acc["registered"] == 0 and acc["pair_maa"] == 0.0 and acc["rotation_median_deg"] is None
    assert acc["pair_rotation_median_deg"] is None
    two = {k: poses[k] for k in sorted(poses)[:2]}
    acc = reconstruction_accuracy(two, views)
    assert acc["registered"] == 2 and not acc["aligned"] and acc["position_median"] is None
    assert acc["pair_maa"] == pytest.approx(1 / 15)                  # the one pair the model holds is exact
