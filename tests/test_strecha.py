"""Tests of hardmatch.datasets.strecha on the real Strecha scenes (skipped when ../shared is absent)
and on broken copies of a scene's layout."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from hardmatch.datasets.strecha import (
    CalibratedView, optical_axis_angle_deg, read_strecha_pairs, read_strecha_views, relative_pose,
)
from hardmatch.datasets.calibration_checks import axis_angle_deg
from hardmatch.core.errors import DatasetError

from .conftest import need_shared


def _skew(v: np.ndarray) -> np.ndarray:
    return np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])


@pytest.fixture(scope="module")
def fountain() -> list:
    return read_strecha_views(need_shared("data/strecha/fountain-P11"))


def test_reads_all_views_sorted_with_rotations_and_centres(fountain):
    assert [v.name for v in fountain] == [f"{i:04d}" for i in range(11)]
    first = fountain[0]
    assert first.image.name == "0000.jpg" and first.image.is_file()
    assert first.size == (3072, 2048)
    assert first.K[0, 0] == pytest.approx(2759.48)
    for view in fountain:
        assert np.allclose(view.R @ view.R.T, np.eye(3), atol=1e-4)
        assert np.linalg.det(view.R) == pytest.approx(1.0, abs=1e-4)
    # the camera file's C is the centre: first camera at (-7.28137, -7.57667, 0.204446)
    assert np.allclose(first.center, [-7.28137, -7.57667, 0.204446], atol=1e-6)


def test_relative_pose_composes_and_inverts(fountain):
    a, b, c = fountain[1], fountain[4], fountain[6]
    R_ab, t_ab = relative_pose(a, b)
    R_bc, t_bc = relative_pose(b, c)
    R_ac, t_ac = relative_pose(a, c)
    assert np.allclose(R_bc @ R_ab, R_ac, atol=1e-9)
    assert np.allclose(R_bc @ t_ab + t_bc, t_ac, atol=1e-9)
    R_ba, t_ba = relative_pose(b, a)
    assert np.allclose(R_ba, R_ab.T, atol=1e-9)
    # camera b's centre seen from camera a is -R_ab^T t_ab
    assert np.allclose(a.R @ b.center + a.t, -R_ab.T @ t_ab, atol=1e-9)


def test_relative_pose_agrees_with_real_matches(fountain):
    """SIFT matches of two real photos lie on the epipolar lines of F = K2^-T [t]x R K1^-1."""
    a, b = fountain[4], fountain[5]
    scale = 0.25
    images = [cv2.imread(str(v.image), cv2.IMREAD_GRAYSCALE) for v in (a, b)]
    images = [cv2.resize(im, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) for im in images]
    sift = cv2.SIFT_create(3000)
    (k1, d1), (k2, d2) = [sift.detectAndCompute(im, None) for im in images]
    knn = cv2.BFMatcher(cv2.NORM_L2).knnMatch(d1, d2, k=2)
    good = [m for m, n in knn if m.distance < 0.7 * n.distance]
    # pixel centres: full-res x = (x_small + 0.5) / scale - 0.5
    p1 = (np.float64([k1[m.queryIdx].pt for m in good]) + 0.5) / scale - 0.5
    p2 = (np.float64([k2[m.trainIdx].pt for m in good]) + 0.5) / scale - 0.5
    R, t = relative_pose(a, b)
    F = np.linalg.inv(b.K).T @ _skew(t) @ R @ np.linalg.inv(a.K)
    x1 = np.hstack([p1, np.ones((len(p1), 1))])
    x2 = np.hstack([p2, np.ones((len(p2), 1))])
    lines = x1 @ F.T
    dist = np.abs(np.sum(x2 * lines, 1)) / np.hypot(lines[:, 0], lines[:, 1])
    assert len(good) > 200
    assert np.median(dist) < 3.0  # full-res pixels; a wrong convention gives hundreds
    # the swapped convention (R^T) does not fit
    F_wrong = np.linalg.inv(b.K).T @ _skew(t) @ R.T @ np.linalg.inv(a.K)
    lines = x1 @ F_wrong.T
    assert np.median(np.abs(np.sum(x2 * lines, 1)) / np.hypot(lines[:, 0], lines[:, 1])) > 20.0


def test_optical_axis_angles(fountain):
    assert optical_axis_angle_deg(fountain[0], fountain[0]) == pytest.approx(0.0, abs=1e-5)
    angle = optical_axis_angle_deg(fountain[0], fountain[1])
    assert angle == pytest.approx(optical_axis_angle_deg(fountain[1], fountain[0]))
    R, _ = relative_pose(fountain[0], fountain[1])
    # the angle between the axes is at most the relative rotation angle
    rotation = np.degrees(np.arccos((np.trace(R) - 1) / 2))
    assert 1.0 < angle <= rotation + 1e-6
    within = sum(
        optical_axis_angle_deg(a, b) <= 60.0 for i, a in enumerate(fountain) for b in fountain[i + 1:]
    )
    assert within == 41  # the pair count of issue 19's table


def test_herz_jesus_all_pairs_within_60_degrees():
    views = read_strecha_views(need_shared("data/strecha/Herz-Jesus-P8"))
    assert len(views) == 8
    angles = [optical_axis_angle_deg(a, b) for i, a in enumerate(views) for b in views[i + 1:]]
    assert len(angles) == 28 and max(angles) <= 60.0


# ---- broken layouts -----------------------------------------------------------------------


@pytest.fixture
def scene_copy(tmp_path) -> Path:
    """Two views of the real scene copied (camera files + tiny stand-in image files)."""
    source = need_shared("data/strecha/Herz-Jesus-P8")
    root = tmp_path / "scene"
    (root / "images").mkdir(parents=True)
    (root / "cameras").mkdir()
    for name in ("0000.jpg", "0001.jpg"):
        shutil.copy(source / "cameras" / f"{name}.camera", root / "cameras" / f"{name}.camera")
        (root / "images" / name).write_bytes(b"not read by the reader")
    return root


def test_broken_layouts_give_one_line_errors(scene_copy, tmp_path):
    assert len(read_strecha_views(scene_copy)) == 2
    with pytest.raises(DatasetError, match="no such scene folder"):
        read_strecha_views(tmp_path / "missing")
    (scene_copy / "images" / "0001.jpg").unlink()
    with pytest.raises(DatasetError, match="no image 0001.jpg"):
        read_strecha_views(scene_copy)
    (scene_copy / "cameras" / "0001.jpg.camera").unlink()
    with pytest.raises(DatasetError, match="need at least two views"):
        read_strecha_views(scene_copy)
    shutil.rmtree(scene_copy / "cameras")
    with pytest.raises(DatasetError, match="no cameras/ folder"):
        read_strecha_views(scene_copy)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda lines: lines[:-1], "expected 26 numbers"),
        (lambda lines: [lines[0].replace("0", "x", 1)] + lines[1:], "non-numeric"),
        (lambda lines: lines[:3] + ["0.1 0 0"] + lines[4:], "distortion"),
        (lambda lines: lines[:4] + ["2 0 0"] + lines[5:], "not a rotation"),
        (lambda lines: ["-1 0 1500"] + lines[1:], "fx, fy > 0"),
        (lambda lines: lines[:-1] + ["3072 nan"], "NaN"),
        (lambda lines: lines[:-1] + ["3072 -5"], "positive integers"),
    ],
)
def test_malformed_camera_files(scene_copy, edit, message):
    path = scene_copy / "cameras" / "0001.jpg.camera"
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    path.write_text("\n".join(edit(lines)) + "\n")
    with pytest.raises(DatasetError, match=message) as info:
        read_strecha_views(scene_copy)
    assert "\n" not in str(info.value) and "0001.jpg.camera" in str(info.value)


def test_view_centre_and_axis_from_world_to_camera():
    R = cv2.Rodrigues(np.array([0.0, np.radians(30), 0.0]))[0]
    view = CalibratedView("v", Path("v.png"), np.eye(3), R, np.array([1.0, 2.0, 3.0]), (10, 10))
    assert np.allclose(R @ view.center + view.t, 0)
    assert np.allclose(view.axis, R.T @ [0, 0, 1])


def test_pairs_of_a_scene_and_of_a_folder_of_scenes(fountain):
    scene = need_shared("data/strecha/fountain-P11")
    specs = read_strecha_pairs(scene)
    assert len(specs) == 41 and specs[0].name == "0000-0001"
    assert all(s.geometry == "fundamental" and s.calibrated for s in specs)
    R, t = relative_pose(fountain[0], fountain[1])
    assert np.allclose(specs[0].R, R) and np.allclose(specs[0].t, t) and np.allclose(specs[0].K1, fountain[0].K)
    assert len(read_strecha_pairs(scene, max_axis_angle_deg=180)) == 55
    assert [s.name for s in read_strecha_pairs(scene, max_axis_angle_deg=10)] == ["0000-0001", "0001-0002", "0005-0006"]
    # the extreme non-planar pairs of issue 18: optical axes 60 to 100 degrees apart
    extreme = read_strecha_pairs(scene, max_axis_angle_deg=100, min_axis_angle_deg=60)
    assert len(extreme) == 13 and {"0000-0007", "0005-0010"} <= {s.name for s in extreme}
    assert all(60 <= axis_angle_deg(s.R) <= 100 for s in extreme)
    both = read_strecha_pairs(scene.parent)
    assert len(both) == 41 + 28
    assert {s.name.split("/")[0] for s in both} == {"fountain-P11", "Herz-Jesus-P8"}


def test_pairs_refuse_a_bad_angle_and_no_pairs(scene_copy, tmp_path):
    with pytest.raises(DatasetError, match="0 <= min <= max <= 180"):
        read_strecha_pairs(scene_copy, max_axis_angle_deg=200)
    with pytest.raises(DatasetError, match="0 <= min <= max <= 180"):
        read_strecha_pairs(scene_copy, max_axis_angle_deg=30, min_axis_angle_deg=40)
    with pytest.raises(DatasetError, match="no pair of views"):
        read_strecha_pairs(scene_copy, max_axis_angle_deg=0.5)
    with pytest.raises(DatasetError, match="not a Strecha scene"):
        read_strecha_pairs(tmp_path / "scene" / "images")
