"""Issue 28's failure modes of ``wide``, built from real images (../shared/data; skipped without it):
a coincidental consensus in a large view step, a near-miss model the refit pulls in, and the rule
that the step which ended the search reports its model (or a better one, by NFA)."""

import cv2
import numpy as np
import pytest

from hardmatch.core import laf
from hardmatch.core.records import Features, PairResult
from hardmatch.datasets.registry import read_dataset
from hardmatch.datasets.scoring import judge
from hardmatch.geometry.a_contrario import result_validation, validate
from hardmatch.geometry.extreme_acceptance import SAMPSON_FACTOR, refit_sampson
from hardmatch.geometry.model_accuracy import accuracy
from hardmatch.twoview import on_demand
from hardmatch.twoview.config import get_preset
from hardmatch.twoview.on_demand import OnDemandMatcher
from hardmatch.twoview.steps import Frames, Step

from .conftest import need_shared


@pytest.fixture(scope="module")
def graf_1_3():
    """graf 1-3 (real, planar, ground-truth H): SIFT tentatives (ratio 0.8) -> (spec, pts1, pts2, sizes)."""
    folder = need_shared("data/oxford/graf")
    spec = {s.name: s for s in read_dataset(folder, "oxford")}["graf/1-3"]
    grays = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in (spec.image1, spec.image2)]
    sift = cv2.SIFT_create(3000)
    (k1, d1), (k2, d2) = (sift.detectAndCompute(g, None) for g in grays)
    knn = cv2.BFMatcher(cv2.NORM_L2).knnMatch(d1, d2, k=2)
    good = [m[0] for m in knn if len(m) == 2 and m[0].distance < 0.8 * m[1].distance]
    pts1 = np.float64([k1[m.queryIdx].pt for m in good])
    pts2 = np.float64([k2[m.trainIdx].pt for m in good])
    sizes = tuple((g.shape[1], g.shape[0]) for g in grays)
    return spec, pts1, pts2, sizes


def _perturbed(h, size, shift, rng):
    """H with the images of image 1's corners moved by ``shift`` px on average (a near miss)."""
    w, hgt = size
    corners = np.float32([[0, 0], [w, 0], [w, hgt], [0, hgt]])
    q = np.c_[corners, np.ones(4)] @ h.T
    moved = rng.normal(0, 1, (4, 2))
    moved *= shift / np.linalg.norm(moved, axis=1).mean()
    return cv2.getPerspectiveTransform(corners, (q[:, :2] / q[:, 2:] + moved).astype(np.float32)).astype(np.float64)


def test_a_near_miss_is_pulled_in_by_the_refit(graf_1_3):
    """Models about 6 px off the truth over graf 1-3 (issue 28's near miss was 6.1 px) come back within 2 px:
    the refit collects inliers at widening thresholds first, then iterates at the threshold until stable;
    the accuracy summary reports the refitted model as precise."""
    spec, pts1, pts2, sizes = graf_1_3
    rng = np.random.default_rng(0)
    threshold = SAMPSON_FACTOR * 3.0
    for _ in range(3):
        start = _perturbed(spec.H, sizes[0], 6.0, rng)
        before = judge(spec, start, "homography", sizes)[1]
        assert 4.5 < before < 9.0
        refit, inliers = refit_sampson(start, pts1, pts2, threshold)
        after = judge(spec, refit, "homography", sizes)[1]
        assert after < 2.0, (before, after)
        summary = accuracy("homography", refit, pts1[inliers], pts2[inliers])
        assert summary["inliers"] >= 100 and summary["residual_rms_px"] < threshold
        assert summary["expected_error_px"] < 0.5


def test_a_coincidental_consensus_in_a_large_view_step_is_refused():
    """A real non-matching pair (benchmarks/results/nonmatching/pairs.txt, first line) through a view step
    (DoG on views tilted 2 and 4, every nearest neighbour a tentative: thousands of them; OpenCV's SIFT
    describes the patches so the test takes seconds): RANSAC finds a homography with at least
    ``step_inliers`` inliers, which an inlier count would take as a match, and the NFA refuses it."""
    shared = need_shared("data")
    image1, image2 = shared / "homogr" / "adamA.png", shared / "oxford" / "graf" / "img2.png"
    config = get_preset("wide").with_options(geometry="homography", max_side=400, descriptor="sift")
    step = Step("views-dense", {"matcher": "snn", "ratio": 1.0},
                frames=(Frames({"detector": "dog", "nfeatures": 300}, (2.0, 4.0), 45.0),))
    matcher = OnDemandMatcher(config, (step,))
    works = matcher.load(image1), matcher.load(image2)
    result = matcher.pipeline(step).match_features(*(matcher.features(step, w) for w in works))
    assert result.num_matches >= 2000 and result.success
    assert result.num_inliers >= config.step_inliers  # a count that would end the search
    ransac = result_validation(result)
    assert ransac.n == result.num_matches and not ransac.real() and ransac.log10_nfa > 2.0
    checked, validation = matcher._check(step, result, works)  # the refitted model: refused as well
    assert not checked.success and not validation.real()


class _Stub:
    """A step pipeline that returns a prepared result (and has no fallbacks)."""

    def __init__(self, result):
        self.result, self.frames, self.fallbacks = result, self, []

    def match_features(self, *_):
        return self.result


def _result(config, model, pts1, pts2, inliers, sizes):
    shape1, shape2 = (sizes[0][1], sizes[0][0]), (sizes[1][1], sizes[1][0])
    k = len(pts1)
    features = [Features(laf.from_center_radius_angle(p, np.full(k, 10.0), np.zeros(k)), np.zeros(k),
                         np.zeros((k, 128), np.float32), shape) for p, shape in ((pts1, shape1), (pts2, shape2))]
    return PairResult("homography", model, np.c_[np.arange(k), np.arange(k)], pts1, pts2, inliers, (k, k), {},
                      config, *features)


@pytest.mark.parametrize("earlier_is_better", [False, True])
def test_the_step_that_ends_the_search_reports_its_model_or_a_better_one(graf_1_3, monkeypatch, earlier_is_better):
    """Issue 28, case 1: a round-frame first step accepts a model with too few inliers to end the search
    (< 30), the next step ends it with the same count. The reported model is the ending step's unless the
    earlier one has the lower NFA; an equal inlier count is no reason to report the earlier one."""
    spec, pts1, pts2, sizes = graf_1_3
    config = get_preset("wide").with_options(geometry="homography")
    rng = np.random.default_rng(1)
    good = refit_sampson(spec.H, pts1, pts2, SAMPSON_FACTOR * 3.0)[0]
    weak = _perturbed(good, sizes[0], 3.0, rng)  # a real but less precise model: fewer tentatives agree
    nfa_good, nfa_weak = (validate("homography", h, pts1, pts2, *sizes).log10_nfa for h in (good, weak))
    assert nfa_good < nfa_weak < 0
    count = 25
    mask = np.zeros(len(pts1), bool)
    mask[rng.choice(len(pts1), count, replace=False)] = True
    first, second = (good, weak) if earlier_is_better else (weak, good)
    steps = (Step("base"), Step("affine", {"affine": "affnet"}))
    results = {"base": _result(config, first, pts1, pts2, mask.copy(), sizes),
               "affine": _result(config, second, pts1, pts2, mask.copy(), sizes)}
    matcher = OnDemandMatcher(config, steps)
    monkeypatch.setattr(matcher, "features", lambda step, work, pyramid=None: None)
    monkeypatch.setattr(matcher, "pipeline", lambda step, group=None: _Stub(results[step.name]))
    monkeypatch.setattr(matcher, "frames", lambda step, group: _Stub(None))
    monkeypatch.setattr(Features, "concat", staticmethod(lambda parts: None))
    monkeypatch.setattr(on_demand, "refine_accepted", lambda model, inliers, *_: (model, inliers))  # the rule alone
    monkeypatch.setattr(on_demand, "precision_problem", lambda *_: "")
    gray = np.random.default_rng(0).integers(0, 255, (sizes[0][1], sizes[0][0]), dtype=np.uint8)  # not looked at
    reported = matcher.match_pair(gray, gray)
    assert [s["step"] for s in reported.steps] == ["base", "affine"]  # base alone could not end it
    assert all(s["inliers"] == count and s["log10_nfa"] < 0 for s in reported.steps)
    assert reported.step == ("base" if earlier_is_better else "affine")
    assert np.allclose(reported.model, good)
    lowest = min(s["log10_nfa"] for s in reported.steps)
    assert next(s for s in reported.steps if s["step"] == reported.step)["log10_nfa"] == lowest


def test_a_near_miss_fitted_to_one_corner_is_refused_by_its_precision(graf_1_3):
    """Issue 28, case 3 on any step (wide's affine step gave the easy tier's img_058 a 6.6 px model from 21
    inliers in one part of the image): real graf 1-3 correspondences right by the ground truth, fitted in one
    corner only, do not pin the homography down over the overlap; spread over the image, they do."""
    import cv2

    from hardmatch.geometry.extreme_acceptance import MAX_UNCERTAINTY_PX, model_uncertainty, precision_problem

    spec, pts1, pts2, sizes = graf_1_3
    mapped = cv2.perspectiveTransform(pts1.reshape(-1, 1, 2), spec.H).reshape(-1, 2)
    right = np.linalg.norm(mapped - pts2, axis=1) < 2.0
    p1, p2 = pts1[right], pts2[right]
    corner = np.argsort(np.linalg.norm(p1 - p1.min(axis=0), axis=1))[:21]  # the 21 nearest one corner
    h_corner = cv2.findHomography(p1[corner], p2[corner], 0)[0]
    spread = model_uncertainty(h_corner, p1[corner], p2[corner], *sizes)
    assert spread > MAX_UNCERTAINTY_PX and "fix the homography only" in precision_problem(
        h_corner, p1[corner], p2[corner], sizes)
    everywhere = np.random.default_rng(0).choice(len(p1), 21, replace=False)
    h_all = cv2.findHomography(p1[everywhere], p2[everywhere], 0)[0]
    assert precision_problem(h_all, p1[everywhere], p2[everywhere], sizes) == ""


def _element_period(strip: np.ndarray) -> int:
    """The horizontal period (px) of a strip of repeated elements: the highest autocorrelation of its
    high-passed rows past the first shift at which it turns negative."""
    g = strip.astype(np.float32)
    hp = g - cv2.GaussianBlur(g, (0, 0), 3)
    corr = np.array([(hp[:, s:] * hp[:, :-s]).mean() for s in range(1, strip.shape[1] // 3)])
    first_negative = int(np.argmax(corr < 0))
    return first_negative + int(np.argmax(corr[first_negative:])) + 1


@pytest.fixture(scope="module")
def window_band_pair():
    return window_band_images()


def window_band_images():
    """Issue 28, case 1, from real photos: image 1 a real facade (urban100 img_014); image 2 an unrelated
    real photo (bsd100) into which the facade's row of windows (70 px high) is pasted one window period
    along, then slightly rotated and scaled. The two images share nothing but that band of repeated
    elements: any homography between them is a wrong answer. Returns (image1, image2, band rows)."""
    urban, other = need_shared("data/train-images/urban100"), need_shared("data/train-images/bsd100")
    facade = cv2.imread(str(urban / "img_014.png"), cv2.IMREAD_GRAYSCALE)
    h, w = facade.shape
    unrelated = cv2.resize(cv2.imread(str(sorted(other.iterdir())[0]), cv2.IMREAD_GRAYSCALE), (w, h))
    y0, y1 = 820, 890
    period = _element_period(facade[y0:y1])
    assert 40 <= period <= 120  # the spacing of the windows, not of their texture
    composite = unrelated.copy()
    composite[y0:y1, :w - period] = facade[y0:y1, period:]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), 4.0, 0.92)
    return facade, cv2.warpAffine(composite, turn, (w, h), borderMode=cv2.BORDER_REFLECT), (y0, y1)


def test_a_band_of_repeated_elements_the_first_step_finds_is_refused(window_band_pair):
    """The first step (DoG, round frames, HardNet) verifies a homography on the band alone, with more
    inliers than would end the search by count; the wide search's check refuses it as a repeated
    pattern, and the search with its affine step after it reports no model."""
    image1, image2, (y0, y1) = window_band_pair
    config = get_preset("wide").with_options(geometry="homography", max_side=640)  # seconds, not a minute
    steps = (Step("base"), Step("affine", {"affine": "affnet"}))
    matcher = OnDemandMatcher(config, steps)
    works = matcher.load(image1), matcher.load(image2)
    base = matcher.pipeline(steps[0]).match_features(*(matcher.features(steps[0], w) for w in works))
    assert base.success and base.num_inliers >= config.step_inliers  # the failure: a count would take it
    band_y = base.inlier_points[0][:, 1]  # original pixels
    assert ((band_y > y0 - 10) & (band_y < y1 + 10)).mean() > 0.9  # the model is the band's
    checked, _ = matcher._check(steps[0], base, works)
    assert not checked.success and "repeated pattern" in checked.reason
    reported = matcher.match_pair(image1, image2)
    assert not reported.success and reported.model is None, reported.steps
