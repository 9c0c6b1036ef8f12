"""SIFT / RootSIFT on the frames' full affine patches (hardmatch.features.sift_describe)."""

import cv2
import numpy as np

from hardmatch.core import laf
from hardmatch.features.sift_describe import describe_affine_sift, describe_keypoint_sift, describe_sift

from .conftest import textured_image


def _frames_under(affine, pts, radius=12.0):
    """Round frames at pts (N, 2) in image 1 and their images under ``affine`` (2, 3) in image 2."""
    l1 = laf.from_center_radius_angle(pts, np.full(len(pts), radius), np.zeros(len(pts)))
    l2 = np.concatenate([affine[:, :2] @ l1[:, :, :2], (pts @ affine[:, :2].T + affine[:, 2])[:, :, None]], axis=2)
    return l1, l2


def _nn_correct(d1, d2):
    return float((np.argmin(((d1[:, None] - d2[None]) ** 2).sum(-1), 1) == np.arange(len(d1))).mean())


def test_affine_patch_descriptor_survives_an_anisotropic_warp_the_keypoint_route_does_not():
    image = textured_image(640)
    h, w = image.shape
    affine = np.array([[0.5, 0.25, 0.3 * w], [-0.1, 1.4, 40.0]])  # axis ratio about 3
    warped = cv2.warpAffine(image, affine, (int(1.2 * w), int(1.6 * h)))
    pts = np.random.default_rng(0).uniform([0.2 * w, 0.2 * h], [0.8 * w, 0.8 * h], (300, 2))
    l1, l2 = _frames_under(affine, pts)
    ours = _nn_correct(describe_affine_sift(image, l1, 6.0, root=True),
                       describe_affine_sift(warped, l2, 6.0, root=True))
    theirs = _nn_correct(describe_keypoint_sift(image, l1, 6.0, True),
                         describe_keypoint_sift(warped, l2, 6.0, True))
    assert ours > 0.8
    assert ours > theirs + 0.3


def test_descriptors_are_unit_rows_and_rootsift_is_non_negative():
    image = textured_image(320)
    pts = np.random.default_rng(1).uniform(40, 200, (50, 2))
    lafs = laf.from_center_radius_angle(pts, np.full(50, 8.0), np.zeros(50))
    for root in (False, True):
        d = describe_affine_sift(image, lafs, 6.0, root=root)
        assert d.shape == (50, 128) and d.dtype == np.float32
        assert np.allclose(np.linalg.norm(d, axis=1), 1.0, atol=1e-3)
        assert (d >= 0).all()
    assert describe_affine_sift(image, np.zeros((0, 2, 3)), 6.0).shape == (0, 128)


def test_round_frames_keep_the_keypoint_route_and_shaped_ones_take_the_patch():
    image = textured_image(320)
    rng = np.random.default_rng(2)
    pts = rng.uniform(40, 200, (40, 2))
    round_frames = laf.from_center_radius_angle(pts, np.full(40, 8.0), rng.uniform(0, 360, 40))
    shaped = round_frames.copy()
    shaped[20:, :, :2] = shaped[20:, :, :2] @ np.array([[2.0, 0.0], [0.0, 0.5]])  # axis ratio 4 on half of them
    assert np.array_equal(describe_sift(image, round_frames, 6.0, True),
                          describe_keypoint_sift(image, round_frames, 6.0, True))
    mixed = describe_sift(image, shaped, 6.0, True)
    assert np.array_equal(mixed[:20], describe_keypoint_sift(image, shaped[:20], 6.0, True))
    assert np.array_equal(mixed[20:], describe_affine_sift(image, shaped[20:], 6.0, True))
