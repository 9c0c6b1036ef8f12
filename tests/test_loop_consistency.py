"""The view graph's loop check (``scene/loop_consistency``): rotation maths, and a real scene where no
pair is dropped until one pair's model is made wrong."""

import json

import cv2
import numpy as np
import pytest

from hardmatch.scene import loop_consistency as lc

from .conftest import need_shared


def rot(axis_angle_deg) -> np.ndarray:
    return cv2.Rodrigues(np.radians(np.asarray(axis_angle_deg, np.float64)))[0]


def synthetic_graph(n=7, noise_deg=0.2, seed=0, complete=True):
    """World-to-camera rotations of ``n`` cameras and the noisy relative rotations of every pair."""
    rng = np.random.default_rng(seed)
    names = [f"{i:04d}.jpg" for i in range(n)]
    world = {name: rot(rng.normal(size=3) * 30) for name in names}
    rotations = {}
    for i, a in enumerate(names):
        for b in names[i + 1:] if complete else names[i + 1:i + 2]:
            rotations[(a, b)] = world[b] @ world[a].T @ rot(rng.normal(size=3) * noise_deg / np.sqrt(3))
    return names, world, rotations


# ------------------------------------------------------------------------------------------------
# Maths on synthetic rotations
# ------------------------------------------------------------------------------------------------


def test_loop_error_is_the_angle_of_the_composed_rotation():
    names, world, exact = synthetic_graph(4, noise_deg=0.0)
    a, b, c = names[:3]
    assert lc.loop_error_deg(exact, a, b, c) < 1e-6
    assert lc.loop_error_deg(exact, c, a, b) < 1e-6  # any order, either direction of each edge
    bent = dict(exact)
    bent[(a, b)] = exact[(a, b)] @ rot([0, 7.0, 0])
    assert lc.loop_error_deg(bent, a, b, c) == pytest.approx(7.0, abs=1e-6)
    assert lc.rotation_angle_deg(rot([0, 0, 179.0])) == pytest.approx(179.0, abs=1e-6)
    assert len(lc.triangles(exact)) == 4 and len(lc.triangles(synthetic_graph(5, complete=False)[2])) == 0


def test_only_the_wrong_edge_is_dropped():
    names, _, rotations = synthetic_graph(7, noise_deg=0.3)
    assert lc.inconsistent_edges(rotations, 10.0) == []  # noise far below the threshold: nothing
    wrong = (names[1], names[4])
    rotations[wrong] = rotations[wrong] @ rot([0, 25.0, 0])  # e.g. a facade seen as its neighbour
    dropped = lc.inconsistent_edges(rotations, 10.0)
    assert [d["pair"] for d in dropped] == [wrong]
    assert dropped[0]["failing"] == dropped[0]["triangles"] == 5 and dropped[0]["agreeing"] == 5
    assert dropped[0]["median_loop_error_deg"] == pytest.approx(25.0, abs=2.0)


def test_two_wrong_edges_and_what_cannot_be_decided():
    names, _, rotations = synthetic_graph(8, noise_deg=0.3, seed=3)
    bad = {(names[0], names[5]), (names[2], names[6])}
    for pair in bad:
        rotations[pair] = rotations[pair] @ rot([40.0, 0, 0])
    assert {d["pair"] for d in lc.inconsistent_edges(rotations, 10.0)} == bad
    # one triangle: every edge fails it, no edge can be blamed, nothing is dropped
    names, _, one = synthetic_graph(3, noise_deg=0.0)
    one[(names[0], names[1])] = one[(names[0], names[1])] @ rot([0, 0, 30.0])
    assert lc.inconsistent_edges(one, 10.0) == []
    # an edge in no triangle is kept, however wrong
    names, _, chain = synthetic_graph(5, noise_deg=0.0, complete=False)
    chain[(names[0], names[1])] = chain[(names[0], names[1])] @ rot([0, 90.0, 0])
    assert lc.inconsistent_edges(chain, 10.0) == []


def test_rotation_and_focal_length_from_synthetic_two_view_geometry():
    from hardmatch.geometry.essential import essential_from_pose
    from hardmatch.core.model_maps import fundamental_from_essential

    rng = np.random.default_rng(1)
    width, height, focal = 1200, 800, 1000.0
    K = np.array([[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2], [0, 0, 1.0]])
    points = rng.uniform([-2, -2, 6], [2, 2, 10], (200, 3))
    models = []
    for k in range(6):
        R, t = rot(rng.normal(size=3) * 8), np.array([1.0, 0.2 * k - 0.5, 0.1])
        x0 = points @ K.T
        x1 = (points @ R.T + t) @ K.T
        pts0, pts1 = x0[:, :2] / x0[:, 2:], x1[:, :2] / x1[:, 2:]
        F = fundamental_from_essential(essential_from_pose(R, t), K, K)
        models.append(F)
        found = lc.relative_rotation(F, "fundamental", K, K, pts0, pts1)
        assert lc.rotation_angle_deg(found.T @ R) < 1e-4  # camera 0 -> camera 1, the right one of four
        assert lc.rotation_angle_deg(lc.calibrated_rotation(F, K, K, pts0, pts1).T @ R) < 1e-3
    assert lc.relative_rotation(F, "homography", K, K, pts0, pts1) is None
    assert lc.self_calibrated_focal(models, width, height) == pytest.approx(focal, rel=0.01)
    assert lc.self_calibrated_focal([], width, height) is None


def test_options_are_checked():
    assert lc.ViewGraphConf(loop_check="false", loop_threshold="3").loop_threshold == 3.0
    with pytest.raises(ValueError, match="loop_threshold"):
        lc.ViewGraphConf(loop_threshold=0)


# ------------------------------------------------------------------------------------------------
# A real dev scene: nothing dropped; one pair given a wrong model is found and dropped
# ------------------------------------------------------------------------------------------------

FOUNTAIN = ["0002.jpg", "0003.jpg", "0004.jpg", "0005.jpg", "0006.jpg"]


@pytest.fixture(scope="module")
def matched(tmp_path_factory):
    """Five fountain-P11 images at 800 px, 2000 features, every pair matched (no mapping)."""
    pytest.importorskip("h5py")
    from hardmatch.evaluation.specs import parse_pipeline_spec
    from hardmatch.scene.executor import SerialExecutor
    from hardmatch.scene.features import extract_features
    from hardmatch.scene.pair_matching import match_pairs
    from hardmatch.scene.pairs import write_pairs

    root = need_shared("data/strecha/fountain-P11/images")
    base = tmp_path_factory.mktemp("loops")
    images, out = base / "images", base / "out"
    images.mkdir()
    out.mkdir()
    for name in FOUNTAIN:
        image = cv2.imread(str(root / name))
        f = 800 / max(image.shape[:2])
        cv2.imwrite(str(images / name), cv2.resize(image, None, fx=f, fy=f, interpolation=cv2.INTER_AREA))
    config = parse_pipeline_spec("default:nfeatures=2000").config
    pairs = [(a, b) for i, a in enumerate(FOUNTAIN) for b in FOUNTAIN[i + 1:]]
    extract_features(images, FOUNTAIN, out, config, SerialExecutor(), warn=lambda *_: None)
    write_pairs(out / "pairs.txt", pairs)
    match_pairs(pairs, out, config, SerialExecutor(), image_dir=images)
    return images, out, pairs, config


def test_real_scene_keeps_every_pair(matched):
    images, out, pairs, _ = matched
    kept, report = lc.check_view_graph(out, images, pairs, None)
    assert kept == pairs and report["dropped"] == [] and report["unresolved"] == 0
    assert report["checked"] == report["in_triangles"] == len(pairs) and report["triangles"] == 10
    assert report["loop_error_deg"]["max"] < 1.0  # right pairs: far below the 10 deg threshold
    assert report["cameras"].startswith("self-calibrated focal")
    focal = float(report["cameras"].split()[2])
    assert focal == pytest.approx(2759.48 * 800 / 3072, rel=0.05)  # Strecha's K.txt at 800 px
    off_kept, off = lc.check_view_graph(out, images, pairs, None, lc.ViewGraphConf(loop_check=False))
    assert off_kept == pairs and off == {"enabled": False}


def test_real_scene_finds_a_pair_given_another_pairs_rotation(matched):
    """A wrong edge with a real rotation: pair (0002, 0003) carries the rotation of (0002, 0006), the
    confusion of a view with a similar one further along (about 30 deg off)."""
    images, out, pairs, _ = matched
    rotations, _ = lc.pair_rotations(out, images, pairs, None)
    wrong, donor = ("0002.jpg", "0003.jpg"), ("0002.jpg", "0006.jpg")
    assert lc.rotation_angle_deg(rotations[wrong].T @ rotations[donor]) > 15
    rotations[wrong] = rotations[donor]
    assert [d["pair"] for d in lc.inconsistent_edges(rotations)] == [wrong]


def test_reconstruct_drops_a_pair_whose_stored_model_is_wrong(matched, tmp_path):
    """End to end, a doppelganger pair: the verified matches of (0003, 0005) replaced by correspondences of a
    pose turned 20 deg about the vertical (what a repeated facade gives: the real points of 0003, seen in
    0005 as that wrong camera would see them, 0.3 px noise) with their F. ``reconstruct`` drops that pair
    before mapping, maps every image and reports it."""
    pytest.importorskip("pycolmap")
    import shutil

    import h5py

    from hardmatch.core.model_maps import fundamental_from_essential
    from hardmatch.geometry.essential import essential_from_pose, estimate_relative_pose
    from hardmatch.scene import hloc_files as store
    from hardmatch.scene.reconstruct import reconstruct

    images, out, pairs, config = matched
    work = tmp_path / "out"
    work.mkdir()
    for name in ("features.h5", "matches.h5"):
        shutil.copy(out / name, work / name)
    a, b = wrong = ("0003.jpg", "0005.jpg")
    inliers, _, _ = store.read_inliers(work / store.MATCHES_H5, a, b)
    kp0, kp1 = (store.read_keypoints(work / store.FEATURES_H5, n)[0] for n in wrong)
    s = 800 / 3072  # Strecha's K (images/K.txt) at 800 px, pixel centres at integers
    K = np.array([[2759.48 * s, 0, (1520.69 + 0.5) * s - 0.5], [0, 2764.16 * s, (1006.81 + 0.5) * s - 0.5], [0, 0, 1]])
    pts0, pts1 = kp0[inliers[:, 0]], kp1[inliers[:, 1]]
    pose = estimate_relative_pose(pts0, pts1, K, K)
    X = cv2.triangulatePoints(K @ np.eye(3, 4), K @ np.c_[pose.R, pose.t], pts0.T, pts1.T)
    X = (X[:3] / X[3]).T
    R_wrong = pose.R @ rot([0, 20.0, 0])
    x = (X @ R_wrong.T + pose.t) @ K.T
    seen = np.random.default_rng(0).normal(0, 0.3, (len(X), 2)) + x[:, :2] / x[:, 2:]
    inside = (x[:, 2] > 0) & np.all((seen >= 0) & (seen < [800, 533]), axis=1)
    assert inside.sum() >= 30
    with h5py.File(work / store.FEATURES_H5, "r+") as f:  # the wrong view's points appended to 0005's keypoints
        g = f[b]
        del g["keypoints"]
        g["keypoints"] = np.concatenate([kp1, seen[inside]]).astype(np.float32)
    with h5py.File(work / store.MATCHES_H5, "r+") as f:
        g = f[store.pair_key(a, b)]
        g["model"][...] = fundamental_from_essential(essential_from_pose(R_wrong, pose.t), K, K)
        del g["inliers"]
        g["inliers"] = np.stack([inliers[inside, 0], len(kp1) + np.arange(inside.sum())], 1).astype(np.int32)
    summary = reconstruct(images, work, config, camera_mode="per-image", warn=lambda *_: None)
    graph = summary["view_graph"]
    assert [tuple(d["pair"]) for d in graph["dropped"]] == [wrong], json.dumps(graph)
    assert graph["dropped"][0]["failing"] == 3 and graph["checked"] == len(pairs) and graph["unresolved"] == 0
    assert graph["dropped"][0]["median_loop_error_deg"] == pytest.approx(20.0, abs=3.0)
    assert summary["matches"]["verified_pairs"] == len(pairs) - 1
    assert summary["model"]["registered"] == len(FOUNTAIN)


def test_cli_option_is_checked_before_any_work(matched, tmp_path):
    import subprocess
    import sys

    images = matched[0]
    proc = subprocess.run([sys.executable, "-m", "hardmatch.cli", "reconstruct", str(images), str(tmp_path / "o"),
                           "--loop-threshold", "0"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "hardmatch: error: loop_threshold: expected a value in (0, 180), got 0.0"], proc.stderr
    assert not (tmp_path / "o" / "features.h5").exists()
