"""The model precision reported with every result (hardmatch.geometry.model_accuracy)."""

import json

import numpy as np
import pytest

from hardmatch.geometry.model_accuracy import accuracy


def _noisy_homography_pairs(n: int, sigma: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    h = np.array([[1.1, 0.05, 20.0], [-0.03, 0.95, 10.0], [1e-5, 2e-5, 1.0]])
    pts1 = rng.uniform(0, 800, (n, 2))
    mapped = np.c_[pts1, np.ones(n)] @ h.T
    pts2 = mapped[:, :2] / mapped[:, 2:]
    return h, pts1 + rng.normal(0, sigma, (n, 2)), pts2 + rng.normal(0, sigma, (n, 2))


def test_noise_is_recovered_and_precision_grows_with_the_inliers():
    """Noise sigma in both images: the homography's Sampson error has an rms of sqrt(2) sigma; the
    expected model error falls as 1/sqrt(k)."""
    h, pts1, pts2 = _noisy_homography_pairs(4000, 0.5)
    many = accuracy("homography", h, pts1, pts2)
    assert many["noise_px"] == pytest.approx(np.sqrt(2) * 0.5, rel=0.05)
    few = accuracy("homography", h, pts1[:40], pts2[:40])
    assert few["expected_error_px"] > 5 * many["expected_error_px"]
    assert json.loads(json.dumps(many)) == many  # plain JSON numbers


def test_too_few_inliers_for_the_degrees_of_freedom_give_no_estimate():
    h, pts1, pts2 = _noisy_homography_pairs(8, 0.5)
    result = accuracy("homography", h, pts1, pts2)
    assert result["inliers"] == 8 and result["expected_error_px"] is None and result["noise_px"] is None


def test_a_result_reports_its_accuracy():
    """Through the public API on a real pair: the reported model carries its precision, in the JSON too."""
    from .conftest import need_shared

    import hardmatch

    a, b = need_shared("data/homogr/BostonA.jpg"), need_shared("data/homogr/BostonB.jpg")
    result = hardmatch.match_pair(str(a), str(b), geometry="homography", nfeatures=1500)
    assert result.success
    assert result.accuracy["inliers"] == result.num_inliers
    assert 0 < result.accuracy["expected_error_px"] < result.accuracy["noise_px"] < 3.0
    assert json.loads(json.dumps(result.to_dict()))["accuracy"] == result.accuracy
