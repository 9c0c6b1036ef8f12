"""Local affine frames: conventions, conversions, homography transfer."""

import cv2
import numpy as np

from hardmatch.core import laf


def test_keypoint_round_trip_keeps_centre_size_angle():
    kps = [cv2.KeyPoint(10.5, 20.0, 4.0, 30.0), cv2.KeyPoint(100.0, 5.0, 12.0, 300.0)]
    frames = laf.from_keypoints(kps, magnification=6.0)
    assert frames.shape == (2, 2, 3) and frames.dtype == np.float32
    np.testing.assert_allclose(laf.radius(frames), [12.0, 36.0], rtol=1e-5)
    back = laf.to_keypoints(frames, magnification=6.0)
    for a, b in zip(kps, back):
        assert np.allclose(a.pt, b.pt) and np.isclose(a.size, b.size, rtol=1e-5)
        assert np.isclose(a.angle, b.angle, atol=1e-3)


def test_upright_ignores_angle():
    frames = laf.from_keypoints([cv2.KeyPoint(0, 0, 2.0, 77.0)], 6.0, upright=True)
    np.testing.assert_allclose(frames[0, :, :2], np.eye(2) * 6.0, atol=1e-6)


def test_transform_matches_numeric_jacobian():
    h = np.array([[1.2, 0.1, 5.0], [-0.05, 0.9, 3.0], [2e-4, -1e-4, 1.0]])
    frames = laf.from_center_radius_angle(np.array([[50.0, 60.0]]), np.array([5.0]), np.array([20.0]))
    out = laf.transform(frames, h)

    def apply(p):
        q = h @ np.array([p[0], p[1], 1.0])
        return q[:2] / q[2]

    c = frames[0, :, 2].astype(np.float64)
    np.testing.assert_allclose(out[0, :, 2], apply(c), rtol=1e-5)
    for axis in range(2):
        tip = c + 1e-3 * frames[0, :, axis]
        numeric = (apply(tip) - apply(c)) / 1e-3
        np.testing.assert_allclose(out[0, :, axis], numeric, rtol=1e-3)


def test_ellipse_of_circle_frame():
    frames = laf.from_center_radius_angle(np.array([[3.0, 4.0]]), np.array([2.0]), np.array([45.0]))
    e = laf.to_ellipses(frames)[0]
    np.testing.assert_allclose(e, [3.0, 4.0, 0.25, 0.0, 0.25], atol=1e-6)


def test_kornia_round_trip():
    frames = laf.from_center_radius_angle(np.random.rand(5, 2) * 100, np.ones(5) * 3, np.arange(5) * 40.0)
    t = laf.to_kornia(frames)
    assert tuple(t.shape) == (1, 5, 2, 3)
    np.testing.assert_array_equal(laf.from_kornia(t), frames)
