"""The OpenCV drop-in: detectAndCompute output works with BFMatcher and FLANN; compute on foreign keypoints."""

import cv2
import numpy as np
import pytest

import hardmatch


@pytest.fixture(scope="module")
def detector():
    return hardmatch.HardNet_create(nfeatures=600)


@pytest.fixture(scope="module")
def pair(texture):
    h, w = texture.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 25, 0.9)
    return texture, cv2.warpAffine(texture, m, (w, h)), m


def test_detect_and_compute_with_bfmatcher(detector, pair):
    img1, img2, m = pair
    kp1, d1 = detector.detectAndCompute(img1, None)
    kp2, d2 = detector.detectAndCompute(cv2.cvtColor(img2, cv2.COLOR_GRAY2BGR), None)  # colour input works too
    assert isinstance(kp1[0], cv2.KeyPoint) and d1.dtype == np.float32 and d1.shape == (len(kp1), 128)
    matches = cv2.BFMatcher(cv2.NORM_L2, crossCheck=True).match(d1, d2)
    src = np.float32([kp1[x.queryIdx].pt for x in matches])
    dst = np.float32([kp2[x.trainIdx].pt for x in matches])
    expected = src @ m[:, :2].T + m[:, 2]
    correct = np.linalg.norm(expected - dst, axis=1) < 3
    assert correct.sum() > 100 and correct.mean() > 0.5


def test_flann_and_knn_ratio(detector, pair):
    img1, img2, _ = pair
    _, d1 = detector.detectAndCompute(img1, None)
    _, d2 = detector.detectAndCompute(img2, None)
    flann = cv2.FlannBasedMatcher({"algorithm": 1, "trees": 4}, {"checks": 64})
    knn = flann.knnMatch(d1, d2, k=2)
    good = [a for a, b in knn if a.distance < 0.85 * b.distance]
    assert len(good) > 50


def test_compute_on_keypoints_from_another_detector(detector, pair):
    img1, _, _ = pair
    orb_kps = cv2.ORB_create(300).detect(img1, None)
    kps, desc = detector.compute(img1, orb_kps)
    assert len(kps) == len(orb_kps) and desc.shape == (len(orb_kps), 128)
    np.testing.assert_allclose(np.linalg.norm(desc, axis=1), 1.0, atol=1e-4)


def test_mask_and_frames(detector, pair):
    img1, _, _ = pair
    mask = np.zeros_like(img1)
    mask[:, : img1.shape[1] // 2] = 255
    kps = detector.detect(img1, mask)
    assert kps and max(k.pt[0] for k in kps) < img1.shape[1] / 2 + 1
    kps, desc, frames = detector.detectAndComputeFrames(img1)
    assert frames.shape == (len(kps), 2, 3)
    assert detector.descriptorSize() == 128 and detector.defaultNorm() == cv2.NORM_L2
