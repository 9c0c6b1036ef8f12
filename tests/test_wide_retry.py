"""The scene's wide-baseline retry (hardmatch.scene.wide_retry): which pairs it retries, and a real pair
that the exhaustive stage leaves unverified, recovered onto the scene's features."""

import contextlib
import shutil

import numpy as np
import pytest

from hardmatch.core.errors import NoModelError
from hardmatch.datasets.registry import read_dataset
from hardmatch.scene import hloc_files as store
from hardmatch.scene.executor import SerialExecutor
from hardmatch.scene.features import extract_features
from hardmatch.scene.pair_matching import match_pairs
from hardmatch.scene.reconstruct import reconstruct
from hardmatch.scene.wide_retry import WideRetryConf, next_candidate, retry_weak_pairs, weak_images
from hardmatch.twoview.config import get_preset

from .conftest import need_shared

NAMES = ["a", "b", "c", "d"]


def test_an_image_is_weak_with_fewer_than_two_partners_or_outside_the_largest_part():
    assert weak_images(NAMES, {("a", "b"), ("b", "c"), ("a", "c")}) == {"d"}
    assert weak_images(NAMES, {("a", "b"), ("b", "c"), ("a", "c"), ("c", "d"), ("b", "d")}) == set()
    # two parts of two: everything weak (one partner each)
    assert weak_images(NAMES, {("a", "b"), ("c", "d")}) == set(NAMES)
    five = NAMES + ["e"]
    triangle_and_pair = {("a", "b"), ("b", "c"), ("a", "c"), ("d", "e")}
    assert weak_images(five, triangle_and_pair) == {"d", "e"}


def test_a_well_attached_scene_retries_nothing_and_a_weak_image_goes_to_its_best_attached_partner():
    pairs = [("a", "b"), ("a", "c"), ("a", "d"), ("b", "c"), ("b", "d"), ("c", "d")]
    full = {p: (50, 200, "") for p in pairs}
    assert next_candidate(NAMES, full, set(pairs), set()) is None
    summaries = {**full, ("a", "d"): (0, 40, ""), ("b", "d"): (0, 90, ""), ("c", "d"): (0, 10, "")}
    verified = {p for p, s in summaries.items() if s[0]}
    assert next_candidate(NAMES, summaries, verified, set()) == ("b", "d")  # the most tentatives first
    assert next_candidate(NAMES, summaries, verified, {("b", "d")}) == ("a", "d")
    # once d has two verified partners it is attached: nothing more to retry
    assert next_candidate(NAMES, summaries, verified | {("b", "d"), ("a", "d")}, set()) is None


@pytest.fixture(scope="module")
def lepoint2_scene(tmp_path_factory):
    """homogr LePoint2 (a real pair the `default` preset leaves unverified as F, which `wide` matches) as a
    two-image scene whose exhaustive stage is done: ``(images, out, config, spec)``."""
    folder = need_shared("data/homogr")
    spec = {s.name: s for s in read_dataset(folder, "auto")}["LePoint2"]
    images = tmp_path_factory.mktemp("lepoint2")
    for path in (spec.image1, spec.image2):
        shutil.copy(path, images / path.name)
    names = sorted(p.name for p in images.iterdir())
    out = tmp_path_factory.mktemp("out")
    config = get_preset("default")
    extract_features(images, names, out, config, SerialExecutor(), warn=lambda line: None)
    match_pairs([tuple(names)], out, config, SerialExecutor(), image_dir=images)
    return images, out, config, spec, names


def test_a_real_unverified_pair_is_recovered_onto_the_scenes_features(lepoint2_scene):
    images, out, config, spec, names = lepoint2_scene
    path, features = out / store.MATCHES_H5, out / store.FEATURES_H5
    assert store.pair_summaries(path, [tuple(names)])[tuple(names)][0] == 0  # the exhaustive stage gave up
    before = [len(store.read_keypoints(features, n)[0]) for n in names]
    steps = []

    @contextlib.contextmanager
    def bar(label, length):
        steps.append((label, length))
        yield lambda n=1: steps.append(n)

    report = retry_weak_pairs(out, images, names, [tuple(names)], config, bar=bar)
    assert report["tried"] == 1 and len(report["recovered"]) == 1, report
    outcome = report["recovered"][0]
    assert report["weak_after"] == names  # two images: one partner each, still "weak", nothing left to try
    assert report["left"] == 0 and steps == [("wide retry", 1), 1]  # the bar: one candidate, one retry
    inliers, model, geometry = store.read_inliers(path, *names)
    assert geometry == "fundamental" and model is not None and len(inliers) == outcome["inliers"] >= config.min_inliers
    keypoints = [store.read_keypoints(features, n)[0] for n in names]
    assert [len(k) for k in keypoints] == [b + n for b, n in zip(before, outcome["appended"])]
    assert len(np.unique(inliers[:, 0])) == len(inliers) == len(np.unique(inliers[:, 1]))  # one use per feature
    # the matches index the scene's keypoints (stored + appended) and are right by the ground-truth homography
    pa, pb = keypoints[0][inliers[:, 0]], keypoints[1][inliers[:, 1]]
    assert names[0] == spec.image1.name
    mapped = np.c_[pa, np.ones(len(pa))] @ np.asarray(spec.H).T
    error = np.linalg.norm(mapped[:, :2] / mapped[:, 2:] - pb, axis=1)
    assert np.mean(error < 5.0) > 0.9, (np.median(error), np.mean(error < 5.0))
    # hloc's layout holds: matches0 as long as image 0's keypoints, descriptors one per keypoint
    import h5py
    with h5py.File(path, "r") as f:
        assert len(f[store.pair_key(*names)]["matches0"]) == len(keypoints[0])
    for name, k in zip(names, keypoints):
        assert len(store.read_features(features, name).descriptors_numpy) == len(k)
    # marked: a re-run retries nothing
    again = retry_weak_pairs(out, images, names, [tuple(names)], config)
    assert again["tried"] == 0


def test_no_budget_or_switched_off_retries_nothing(lepoint2_scene, tmp_path):
    images, out, config, spec, names = lepoint2_scene
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    store.write_matches(copy / store.MATCHES_H5, *names, {  # back to unverified, unmarked
        "matches0": np.full(3, -1, np.int32), "matching_scores0": np.zeros(3, np.float32),
        "inliers": np.zeros((0, 2), np.int32), "model": None, "geometry": "fundamental", "reason": "none"})
    assert retry_weak_pairs(copy, images, names, [tuple(names)], config, WideRetryConf(wide_retry=False)) == {
        "enabled": False}
    report = retry_weak_pairs(copy, images, names, [tuple(names)], config, WideRetryConf(wide_retry_seconds=0))
    assert report["tried"] == 0 and report["left"] == 1


def test_two_photos_that_only_wide_matches_reconstruct_with_the_retry_and_not_without(tmp_path):
    folder = need_shared("data/homogr")
    images = tmp_path / "images"
    images.mkdir()
    for name in ("LePoint2A.png", "LePoint2B.png"):
        shutil.copy(folder / name, images / name)
    config = get_preset("default")
    with pytest.raises(NoModelError):
        reconstruct(images, tmp_path / "off", config, wide_retry=WideRetryConf(wide_retry=False), warn=lambda line: None)
    summary = reconstruct(images, tmp_path / "on", config, warn=lambda line: None)
    assert summary["model"]["registered"] == 2 and summary["matches"]["verified_pairs"] == 1
    assert summary["wide_retry"]["tried"] == 1 and len(summary["wide_retry"]["recovered"]) == 1
    assert "wide_retry" in summary["seconds"]


def test_a_deadline_stops_the_search_between_steps():
    import time

    from hardmatch.scene.wide_retry import wide_matcher

    folder = need_shared("data/homogr")
    matcher = wide_matcher(get_preset("default"))
    result = matcher.match_pair(str(folder / "LePoint2A.png"), str(folder / "LePoint2B.png"),
                                deadline=time.perf_counter())
    assert not result.success and [s["step"] for s in result.steps] == ["base"]  # base fails; nothing after it
    assert "time budget spent before step affine" in result.reason
