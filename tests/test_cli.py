"""The command line as a user runs it: subprocesses, exit codes, one-line errors."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from .conftest import need_shared, synthetic_texture


def run(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "hardmatch.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def test_pair_on_dev_images_writes_json_and_viz(tmp_path):
    root = need_shared("data/homogr")
    out = tmp_path / "out.json"
    viz = tmp_path / "viz.png"
    proc = run("pair", root / "BostonA.jpg", root / "BostonB.jpg", "--geometry", "homography", "--nfeatures", "2000",
               "--json", out, "--viz", viz)
    assert proc.returncode == 0, proc.stderr
    assert "inliers" in proc.stdout
    data = json.loads(out.read_text())
    assert np.asarray(data["H"]).shape == (3, 3) and data["num_inliers"] >= 15
    assert len(data["inliers"]) == data["num_inliers"] and len(data["inliers"][0]) == 4
    assert cv2.imread(str(viz)) is not None


def test_pair_without_model_exits_1(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    cv2.imwrite(str(a), synthetic_texture(200, 240, seed=1))
    cv2.imwrite(str(b), synthetic_texture(200, 240, seed=2))
    proc = run("pair", a, b, "--nfeatures", "300", "--min-inliers", "20")
    assert proc.returncode == 1
    assert "no model" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("case", ["missing", "text", "tiny", "blank"])
def test_bad_input_gives_one_line_error(tmp_path, case):
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), synthetic_texture(100, 100))
    bad = tmp_path / f"{case}.png"
    if case == "text":
        bad.write_text("not an image")
    elif case == "tiny":
        cv2.imwrite(str(bad), np.zeros((5, 5), np.uint8))
    elif case == "blank":
        cv2.imwrite(str(bad), np.full((64, 64), 128, np.uint8))
    proc = run("pair", good, bad)
    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hardmatch: error:") and "Traceback" not in proc.stderr


def test_bad_weights_and_bad_option(tmp_path):
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), synthetic_texture(100, 100))
    proc = run("pair", good, good, "--weights", tmp_path / "nope.pth")
    assert proc.returncode == 4 and len(proc.stderr.strip().splitlines()) == 1
    proc = run("pair", good, good, "--geometry", "affine")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_extract_hpatches_sample(tmp_path):
    ref = need_shared("data/hpatches-sample/ref.png")
    out = tmp_path / "out.txt"
    proc = run("extract", ref, out)
    assert proc.returncode == 0, proc.stderr
    desc = np.loadtxt(out)
    assert desc.shape == (1123, 128)
    np.testing.assert_allclose(np.linalg.norm(desc, axis=1), 1.0, atol=1e-3)


def test_extract_rejects_wrong_geometry(tmp_path):
    bad = tmp_path / "bad.png"
    cv2.imwrite(str(bad), synthetic_texture(100, 70))
    proc = run("extract", bad, tmp_path / "o.txt")
    assert proc.returncode == 5 and len(proc.stderr.strip().splitlines()) == 1
