"""Calibrated two-view geometry (geometry essential): solvers, pipeline, presets, CLI, on real and exact data."""

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from hardmatch.geometry.acceptance import laf_consistent
from hardmatch.geometry.essential import (
    METHODS, estimate_relative_pose, essential_from_pose, in_front, normalize, epipolar_sampson_errors,
)
from hardmatch.core.model_maps import fundamental_from_essential
from hardmatch.geometry.intrinsics import calibration_matrix, format_intrinsics
from hardmatch.twoview.api import build_matcher
from hardmatch.geometry.ransac import verify

from .conftest import need_shared

poselib = pytest.importorskip("poselib")

REPO = Path(__file__).resolve().parents[1]


def rotation_error(r_est, r_true) -> float:
    return float(np.degrees(np.arccos(np.clip((np.trace(r_est @ r_true.T) - 1) / 2, -1, 1))))


def direction_error(t_est, t_true) -> float:
    c = t_est @ t_true / (np.linalg.norm(t_est) * np.linalg.norm(t_true))
    return float(np.degrees(np.arccos(np.clip(c, -1, 1))))


# ---------------------------------------------------------------------------------------------
# exact synthetic scene: points projected by two known cameras
# ---------------------------------------------------------------------------------------------

K1 = calibration_matrix(1000.0, 1000.0, 640.0, 480.0)
K2 = calibration_matrix(900.0, 950.0, 600.0, 500.0)
R_TRUE = cv2.Rodrigues(np.array([0.05, -0.2, 0.03]))[0]
T_TRUE = np.array([1.0, 0.1, 0.2]) / np.linalg.norm([1.0, 0.1, 0.2])


def project(k, points):
    q = points @ k.T
    return q[:, :2] / q[:, 2:]


@pytest.fixture(scope="module")
def scene():
    rng = np.random.default_rng(0)
    world = np.c_[rng.uniform(-2, 2, (300, 2)), rng.uniform(4, 8, 300)]
    pts1, pts2 = project(K1, world), project(K2, world @ R_TRUE.T + T_TRUE)
    outliers = np.zeros(300, bool)
    outliers[rng.choice(300, 60, replace=False)] = True
    pts2[outliers] = rng.uniform(0, 1000, (60, 2))
    return pts1, pts2, outliers


@pytest.mark.parametrize("method", METHODS)
def test_exact_scene_recovers_pose(scene, method):
    pts1, pts2, outliers = scene
    pose = estimate_relative_pose(pts1, pts2, K1, K2, method, threshold=1.0)
    assert rotation_error(pose.R, R_TRUE) < 1e-3 and direction_error(pose.t, T_TRUE) < 1e-3
    assert np.linalg.norm(pose.t) == pytest.approx(1.0)
    assert np.array_equal(pose.inliers, ~outliers)  # every true match, no outlier
    e = essential_from_pose(pose.R, pose.t)
    assert np.allclose(np.abs(e), np.abs(pose.E))
    f = fundamental_from_essential(pose.E, K1, K2)
    assert epipolar_sampson_errors(f, pts1[~outliers], pts2[~outliers]).max() < 1e-6


def test_verify_dispatches_essential_with_auto(scene):
    pts1, pts2, outliers = scene
    result = verify(pts1, pts2, "essential", "auto", K1=K1, K2=K2)
    assert result.model.shape == (3, 3) and rotation_error(result.R, R_TRUE) < 1e-3
    assert result.num_inliers == (~outliers).sum()
    with pytest.raises(ValueError, match="K1 and K2"):
        verify(pts1, pts2, "essential", "poselib")
    with pytest.raises(ValueError, match="no essential solver"):
        verify(pts1, pts2, "essential", "degensac", K1=K1, K2=K2)


def test_points_behind_a_camera_are_not_inliers(scene):
    pts1, pts2, outliers = scene
    x1n, x2n = normalize(pts1[~outliers], K1), normalize(pts2[~outliers], K2)
    assert in_front(R_TRUE, T_TRUE, x1n, x2n).all()
    assert not in_front(R_TRUE, -T_TRUE, x1n, x2n).any()  # the mirrored pose satisfies E but not cheirality


def test_too_few_or_random_matches_give_no_pose():
    rng = np.random.default_rng(1)
    assert estimate_relative_pose(rng.uniform(0, 500, (4, 2)), rng.uniform(0, 500, (4, 2)), K1, K2) is None


# ---------------------------------------------------------------------------------------------
# real pair with ground-truth cameras (Strecha fountain-P11)
# ---------------------------------------------------------------------------------------------


def strecha(name: str):
    """(image path, K, world-to-camera R, t) of a fountain-P11 image."""
    scene = need_shared("data/strecha/fountain-P11")
    rows = [list(map(float, line.split())) for line in (scene / "cameras" / f"{name}.camera").read_text().splitlines()
            if line.strip()]
    r = np.array(rows[4:7]).T
    return scene / "images" / name, np.array(rows[0:3]), r, -r @ np.array(rows[7])


@pytest.fixture(scope="module")
def real_pair():
    (p1, k1, r1, t1), (p2, k2, r2, t2) = strecha("0003.jpg"), strecha("0005.jpg")
    r = r2 @ r1.T
    return p1, p2, k1, k2, r, t2 - r @ t1


def pose_error(result, r_true, t_true) -> float:
    return max(rotation_error(result.R, r_true), direction_error(result.t, t_true))


@pytest.mark.parametrize("preset", ["default", "sift", "wide"])
def test_real_pair_pose_within_a_degree(real_pair, preset):
    p1, p2, k1, k2, r_true, t_true = real_pair
    matcher = build_matcher(preset, geometry="essential", intrinsics=(k1, k2), nfeatures=2000, max_side=1024)
    result = matcher.match_pair(p1, p2)
    assert result.success, result.reason
    assert pose_error(result, r_true, t_true) < 2.0
    assert result.intrinsics_source == ("given", "given") and np.array_equal(result.K1, k1)
    # the inliers passed the LAF check through F = K2^-T E K1^-1 (original pixels, original frames)
    i = result.inliers
    f = result.F
    assert np.allclose(f, fundamental_from_essential(result.E, k1, k2))
    assert epipolar_sampson_errors(f, result.points1[i], result.points2[i]).max() < 1.0 + 1e-9
    lafs1 = result.features1.lafs[result.matches[i, 0]]
    lafs2 = result.features2.lafs[result.matches[i, 1]]
    assert laf_consistent("essential", f, lafs1, lafs2).mean() > 0.95  # original pixels: the same frames up to scale
    if preset == "wide":
        assert result.step is not None and result.steps  # matched by the first MODS step


def test_real_pair_with_prior_intrinsics_says_so(real_pair):
    p1, p2, *_ = real_pair
    result = build_matcher("sift", geometry="essential", nfeatures=2000, max_side=1024).match_pair(p1, p2)
    assert result.intrinsics_source[0].startswith("prior") and result.K1[0, 0] == pytest.approx(1.2 * 3072)
    data = result.to_dict()
    assert data["intrinsics_source"][1].startswith("prior")


def test_unrelated_images_give_no_pose(real_pair):
    p1, *_ = real_pair
    other = need_shared("data/strecha/Herz-Jesus-P8/images/0004.jpg")
    result = build_matcher("default", geometry="essential", nfeatures=2000, max_side=1024).match_pair(p1, other)
    assert not result.success and result.R is None and result.to_dict()["R"] is None


# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------


def run(*args):
    return subprocess.run([sys.executable, "-m", "hardmatch.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=900)


def test_cli_essential_with_intrinsics_writes_pose(real_pair, tmp_path):
    p1, p2, k1, k2, r_true, t_true = real_pair
    out = tmp_path / "out.json"
    proc = run("pair", p1, p2, "--geometry", "essential", "--intrinsics", format_intrinsics([k1]),
               "--intrinsics", format_intrinsics([k2]), "--nfeatures", "2000", "--max-side", "1024", "--json", out)
    assert proc.returncode == 0, proc.stderr
    assert "essential (poselib)" in proc.stdout and "t (unit)" in proc.stdout and "notice" not in proc.stderr
    data = json.loads(out.read_text())
    e, r, t = (np.asarray(data[k]) for k in ("E", "R", "t"))
    assert e.shape == r.shape == (3, 3) and np.linalg.norm(t) == pytest.approx(1.0)
    assert max(rotation_error(r, r_true), direction_error(t, t_true)) < 2.0
    assert len(data["inliers"]) == data["num_inliers"] >= 50 and len(data["inliers"][0]) == 4
    assert data["intrinsics_source"] == ["given", "given"]


def test_cli_essential_without_intrinsics_uses_exif_or_prior(real_pair, tmp_path):
    p1, p2, k1, _, r_true, t_true = real_pair
    # image 1 re-saved with its true focal length as an EXIF 35 mm equivalent; image 2 without EXIF
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0xA405] = int(round(k1[0, 0] / 3072 * 36))
    with_exif = tmp_path / "with_exif.jpg"
    Image.open(p1).save(with_exif, exif=exif, quality=95)
    out = tmp_path / "out.json"
    proc = run("pair", with_exif, p2, "--geometry", "essential", "--preset", "sift", "--nfeatures", "2000",
               "--max-side", "1024", "--json", out)
    assert proc.returncode == 0, proc.stderr
    notices = [line for line in proc.stderr.splitlines() if "notice" in line]
    assert len(notices) == 2 and "EXIF FocalLengthIn35mmFilm" in notices[0] and "prior" in notices[1]
    data = json.loads(out.read_text())
    assert data["intrinsics_source"][0].startswith("EXIF") and data["intrinsics_source"][1].startswith("prior")
    assert data["K1"][0][0] == pytest.approx(k1[0, 0], rel=0.02)


@pytest.mark.parametrize("value, message", [("1000,1000,500", "4 numbers"), ("1000,x,500,400", "numbers"),
                                            ("-1000,1000,500,400", "> 0")])
def test_cli_bad_intrinsics_exit_2(tmp_path, value, message):
    proc = run("pair", tmp_path / "a.jpg", tmp_path / "b.jpg", "--geometry", "essential", "--intrinsics", value)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
