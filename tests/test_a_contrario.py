"""A-contrario (NFA) validation of models: the maths (geometry/a_contrario)."""

import math

import cv2
import numpy as np
import pytest

from hardmatch.geometry.a_contrario import (
    EPSILON,
    best_nfa,
    epipolar_distances,
    log10_binomial,
    transfer_errors,
    validate,
)
from hardmatch.geometry.ransac import verify

W, H = 1000, 700
SIZE = (W, H)
H_TRUE = np.array([[0.9, 0.12, 40.0], [-0.08, 1.05, 20.0], [1e-4, -5e-5, 1.0]])


def _random(n, seed):
    rng = np.random.default_rng(seed)
    return rng.uniform((0, 0), SIZE, (n, 2)), rng.uniform((0, 0), SIZE, (n, 2))


def _apply(h, pts):
    q = np.concatenate([pts, np.ones((len(pts), 1))], axis=1) @ h.T
    return q[:, :2] / q[:, 2:]


def _planted(n, k, seed, noise=1.0):
    """n tentatives of which the first k follow H_TRUE (noise px), the others uniform."""
    pts1, pts2 = _random(n, seed)
    pts2[:k] = _apply(H_TRUE, pts1[:k]) + np.random.default_rng(seed + 1).normal(0, noise, (k, 2))
    return pts1, pts2


def test_log10_binomial_is_the_binomial():
    for n, k in ((10, 3), (50, 25), (200, 4), (7, 7), (7, 0)):
        assert log10_binomial(n, k) == pytest.approx(math.log10(math.comb(n, k)), abs=1e-9)


def test_epsilon_is_one():
    assert EPSILON == 1.0


@pytest.mark.parametrize("n", [50, 500, 5000])
def test_ransac_on_random_points_is_no_false_alarm(n):
    """The best model RANSAC finds in uniformly random tentatives is not meaningful, at any N, although its
    inlier count grows with N."""
    counts = []
    for seed in range(3):
        pts1, pts2 = _random(n, seed)
        found = verify(pts1, pts2, "homography", "degensac", 3.0, seed=seed)
        if found.model is None:
            continue
        counts.append(found.num_inliers)
        assert validate("homography", found.model, pts1, pts2, SIZE, SIZE).log10_nfa >= 0.0
    if n == 5000:
        assert max(counts) >= 6  # chance inliers grow with N (5000 random tentatives: 6-7 at 3 px)


def test_a_planted_homography_is_very_meaningful():
    pts1, pts2 = _planted(500, 40, 0)
    v = validate("homography", H_TRUE, pts1, pts2, SIZE, SIZE)
    assert v.log10_nfa < -20 and v.real()
    assert 35 <= v.k <= 41 and v.radius < 5.0 and v.n == 500


def test_the_evidence_a_count_is_depends_on_n():
    """20 inliers within ~2 px are overwhelming among 1000 tentatives and chance among 100 000: the test
    asks for more support as N grows, the k it needs grows with N, where a fixed count would not move."""
    pts1, pts2 = _planted(1000, 20, 3)
    assert validate("homography", H_TRUE, pts1, pts2, SIZE, SIZE).real()
    pts1, pts2 = _planted(100_000, 20, 3)
    assert not validate("homography", H_TRUE, pts1, pts2, SIZE, SIZE).real()

    def needed(n):  # the least k inliers at 1.5 px that make NFA < 1 among n
        residuals = np.full(n, np.inf)
        for k in range(5, 200):
            residuals[:k] = 1.5
            if best_nfa(residuals, lambda r: np.log10(math.pi * r ** 2 / (W * H)), 4, 1, n)[0] < 0:
                return k
        return None

    small, large = needed(1000), needed(100_000)
    assert small == 10 and large == 28  # grows with N (the C(N, k) term): no fixed count is right for both


def test_the_coarse_image_decides_under_a_zoom():
    """Zoom 4 (image 2 the fine one): errors are 4x larger in image 2, so the test in image 1 is the stronger."""
    zoom = np.diag([4.0, 4.0, 1.0])
    rng = np.random.default_rng(0)
    pts1 = rng.uniform((0, 0), (250, 175), (60, 2))
    pts2 = _apply(zoom, pts1 + rng.normal(0, 0.7, pts1.shape))
    noise1, noise2 = _random(300, 5)
    pts1, pts2 = np.vstack([pts1, noise1]), np.vstack([pts2, noise2])
    v = validate("homography", zoom, pts1, pts2, SIZE, SIZE)
    assert v.image == 1 and v.real()
    assert np.median(transfer_errors(zoom, pts1[:60], pts2[:60])) > 2.0 * np.median(
        transfer_errors(np.linalg.inv(zoom), pts2[:60], pts1[:60]))


def _cameras():
    k = np.array([[800.0, 0, W / 2], [0, 800.0, H / 2], [0, 0, 1]])
    angle = 0.2
    r = np.array([[math.cos(angle), 0, math.sin(angle)], [0, 1, 0], [-math.sin(angle), 0, math.cos(angle)]])
    t = np.array([-1.0, 0.1, 0.05])
    tx = np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]])
    f = np.linalg.inv(k).T @ tx @ r @ np.linalg.inv(k)
    return k, r, t, f / np.linalg.norm(f)


def test_fundamental_planted_and_random():
    k, r, t, f = _cameras()
    rng = np.random.default_rng(1)
    points = np.c_[rng.uniform(-3, 3, (80, 2)), rng.uniform(6, 12, 80)]
    x1 = points @ k.T
    x2 = (points @ r.T + t) @ k.T
    pts1 = x1[:, :2] / x1[:, 2:] + rng.normal(0, 0.5, (80, 2))
    pts2 = x2[:, :2] / x2[:, 2:] + rng.normal(0, 0.5, (80, 2))
    noise1, noise2 = _random(400, 2)
    pts1, pts2 = np.vstack([pts1, noise1]), np.vstack([pts2, noise2])
    assert np.median(epipolar_distances(f, pts1[:80], pts2[:80])) < 1.5
    v = validate("fundamental", f, pts1, pts2, SIZE, SIZE)
    assert v.log10_nfa < -20 and v.k >= 60
    for seed in range(2):
        rand1, rand2 = _random(500, 10 + seed)
        found = verify(rand1, rand2, "fundamental", "degensac", 1.0, seed=seed)
        if found.model is not None:
            assert validate("fundamental", found.model, rand1, rand2, SIZE, SIZE).log10_nfa >= 0.0


def test_no_model_and_too_few_tentatives():
    assert validate("homography", None, np.zeros((0, 2)), np.zeros((0, 2)), SIZE, SIZE).log10_nfa == math.inf
    pts1, pts2 = _planted(4, 4, 0)
    v = validate("homography", H_TRUE, pts1, pts2, SIZE, SIZE)
    assert not v.real() and v.to_dict()["log10_nfa"] is None


def test_a_feature_matched_twice_is_one_observation():
    """Four random tentatives define an H exactly; near-copies of them (2.2 px off in image 1, the same
    point in image 2, as one feature matched from two views) look like four more inliers. Counted as
    independent they make the model "real"; as the observations they are, it is not."""
    pts1, pts2 = _random(40, 7)
    h = cv2.getPerspectiveTransform(pts1[:4].astype(np.float32), pts2[:4].astype(np.float32)).astype(np.float64)
    pts1 = np.vstack([pts1, pts1[:4] + [2.2, 0.0]])
    pts2 = np.vstack([pts2, pts2[:4]])
    residuals = transfer_errors(h, pts1, pts2)
    naive = best_nfa(residuals, lambda r: np.log10(math.pi * r ** 2 / (W * H)), 4, 1, len(pts1))
    assert naive[0] < 0 and naive[1] > 4  # the copies counted as evidence
    assert not validate("homography", h, pts1, pts2, SIZE, SIZE).real()


def test_the_refit_is_not_what_is_scored():
    """validate scores minimal-sample models from the consensus (ORSA), which a refit cannot flatter: for a
    planted model the two agree within a few orders of magnitude, for samples=0 the model itself is scored."""
    pts1, pts2 = _planted(300, 30, 4)
    own = validate("homography", H_TRUE, pts1, pts2, SIZE, SIZE, samples=0)
    sampled = validate("homography", H_TRUE, pts1, pts2, SIZE, SIZE)
    assert own.real() and sampled.real() and abs(own.log10_nfa - sampled.log10_nfa) < 15
    assert validate("homography", H_TRUE, pts1, pts2, SIZE, SIZE) == sampled  # seeded
