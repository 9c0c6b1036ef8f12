"""Tests of hardmatch.datasets: the layout registry, readers in native layouts, and judging metrics."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io

from hardmatch.datasets.registry import FORMATS, LAYOUTS, detect_format, read_dataset
from hardmatch.datasets.scoring import (
    F_THRESHOLD_PX, H_THRESHOLD_PX, grid_points_from_homography, homography_error, judge, symmetric_epipolar_error,
)
from hardmatch.datasets.spec import PairSpec
from hardmatch.core.errors import DatasetError

from .conftest import write_image, write_matrix


def _shared_dir() -> Path:
    env = os.environ.get("HARDMATCH_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared"


SHARED_DATA = _shared_dir() / "data"


def _need(sub: str) -> Path:
    path = SHARED_DATA / sub
    if not path.is_dir():
        pytest.skip(f"shared dataset folder {path} is absent (set HARDMATCH_SHARED to point at shared/)")
    return path


# ---------------------------------------------------------------------------------------------
# helpers for synthetic fixtures
# ---------------------------------------------------------------------------------------------

RNG = np.random.default_rng(0)


def _write_image(path: Path, width: int = 64, height: int = 48) -> Path:
    return write_image(path, RNG.integers(0, 256, size=(height, width), dtype=np.uint8))


def _random_h(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    H = np.eye(3) + rng.normal(scale=[[0.05, 0.05, 3.0], [0.05, 0.05, 3.0], [1e-4, 1e-4, 0.0]])
    return H / H[2, 2]


def _apply_h(H: np.ndarray, xy: np.ndarray) -> np.ndarray:
    p = np.hstack([xy, np.ones((len(xy), 1))]) @ H.T
    return p[:, :2] / p[:, 2:]


# ---------------------------------------------------------------------------------------------
# real shared folders
# ---------------------------------------------------------------------------------------------


def test_homogr_real_folder():
    root = _need("homogr")
    assert detect_format(root) == "cmp"
    specs = read_dataset(root)
    assert len(specs) == 16
    assert all(s.geometry == "homography" for s in specs)
    identity_worse = 0
    for spec in specs:
        assert spec.image1.is_file() and spec.image2.is_file()
        assert spec.H is not None and spec.H.shape == (3, 3)
        assert spec.points.ndim == 2 and spec.points.shape[1] == 4 and spec.points.dtype == np.float64
        gt_error = homography_error(spec.H, spec.points)
        assert gt_error < H_THRESHOLD_PX, spec.name
        assert judge(spec, spec.H)[0]
        if homography_error(np.eye(3), spec.points) > gt_error:
            identity_worse += 1
    assert identity_worse >= 13


def test_kusvod2_real_folder():
    root = _need("kusvod2-dev")
    specs = read_dataset(root, "cmp")
    assert len(specs) == 8
    assert all(s.geometry == "fundamental" and s.H is None for s in specs)
    names = {s.name for s in specs}
    assert "Leuven1" in names and not (root / "Leuven1_model.txt").exists()
    # an F fitted to the ground truth points (OpenCV convention x2^T F x1 = 0) is judged matched
    for spec in specs:
        F, _ = cv2.findFundamentalMat(spec.points[:, :2], spec.points[:, 2:], cv2.FM_8POINT)
        assert symmetric_epipolar_error(F, spec.points) < F_THRESHOLD_PX, spec.name
    # overriding the geometry is honoured
    forced = read_dataset(root, "cmp", geometry="homography")
    assert all(s.geometry == "homography" and s.H is not None for s in forced)


def test_oxford_graf_real_folder():
    root = _need("oxford/graf")
    assert detect_format(root) == "oxford"
    specs = read_dataset(root)
    assert [s.name for s in specs] == ["graf/1-2", "graf/1-3", "graf/1-4", "graf/1-5"]
    for spec in specs:
        assert spec.geometry == "homography" and spec.H.shape == (3, 3) and spec.points is None
        matched, error = judge(spec, spec.H)  # image sizes read from the files, grid points
        assert matched and error < 1e-6
        assert not judge(spec, np.eye(3))[0]


# ---------------------------------------------------------------------------------------------
# synthetic fixtures for each layout
# ---------------------------------------------------------------------------------------------


def _make_cmp(root: Path, readme: str | None, with_model: bool, planar: bool = True) -> dict:
    hs = {}
    for i, name in enumerate(["alpha", "beta"]):
        _write_image(root / f"{name}A.png")
        _write_image(root / f"{name}B.jpg")
        H = _random_h(10 + i)
        xy1 = RNG.uniform(0, 60, size=(10, 2))
        xy2 = _apply_h(H, xy1)
        if not planar:
            xy2 = xy2 + RNG.normal(scale=30.0, size=xy2.shape)
        pts = np.vstack([xy1.T * 2.0, np.full((1, 10), 2.0), xy2.T, np.ones((1, 10))])  # 6xN homogeneous
        scipy.io.savemat(root / f"{name}_vpts.mat", {"validation": {"pts": pts}})
        if with_model:
            write_matrix(root / f"{name}_model.txt", H)
        hs[name] = H
    if readme is not None:
        (root / "README.txt").write_text(readme)
    return hs


def test_cmp_synthetic_model_readme_and_override(tmp_path):
    hs = _make_cmp(tmp_path / "m", readme=None, with_model=True)
    specs = read_dataset(tmp_path / "m")
    assert [s.name for s in specs] == ["alpha", "beta"]
    for spec in specs:
        assert spec.geometry == "homography"
        np.testing.assert_allclose(spec.H, hs[spec.name])
        assert spec.points.shape == (10, 4) and homography_error(spec.H, spec.points) < 1e-6
        assert spec.image2.suffix == ".jpg"

    _make_cmp(tmp_path / "p", readme="This dataset contains planar scenes!\nThus cannot be used for testing of epipolar geometry.", with_model=False)
    specs = read_dataset(tmp_path / "p", "cmp")
    assert all(s.geometry == "homography" and homography_error(s.H, s.points) < 1e-3 for s in specs)

    _make_cmp(tmp_path / "n", readme="This dataset does not contain purely planar scenes.", with_model=False, planar=False)
    specs = read_dataset(tmp_path / "n")
    assert all(s.geometry == "fundamental" and s.H is None for s in specs)
    assert all(s.geometry == "homography" for s in read_dataset(tmp_path / "n", geometry="homography"))

    # a 3x3 model that does not fit the points as a homography (e.g. an F) -> fundamental
    _make_cmp(tmp_path / "f", readme=None, with_model=False, planar=False)
    for name in ("alpha", "beta"):
        write_matrix(tmp_path / "f" / f"{name}_model.txt", np.zeros((3, 3)))
    assert all(s.geometry == "fundamental" for s in read_dataset(tmp_path / "f"))


def test_cmp_missing_image_raises(tmp_path):
    _make_cmp(tmp_path, readme=None, with_model=True)
    (tmp_path / "betaB.jpg").unlink()
    with pytest.raises(DatasetError, match="betaB"):
        read_dataset(tmp_path)


def test_hpatches_layout(tmp_path):
    hs = {}
    for seq, n in (("v_seq", 6), ("i_seq", 3)):
        for k in range(1, n + 1):
            _write_image(tmp_path / seq / f"{k}.ppm")
            if k > 1:
                hs[f"{seq}/1-{k}"] = write_matrix(tmp_path / seq / f"H_1_{k}", _random_h(k))
    assert detect_format(tmp_path) == "hpatches"
    specs = read_dataset(tmp_path)
    assert sorted(s.name for s in specs) == sorted(hs)
    assert len(specs) == 5 + 2
    for spec in specs:
        assert spec.geometry == "homography" and spec.points is None
        np.testing.assert_allclose(spec.H, np.loadtxt(hs[spec.name]))
    single = read_dataset(tmp_path / "i_seq")
    assert detect_format(tmp_path / "i_seq") == "hpatches"
    assert [s.name for s in single] == ["i_seq/1-2", "i_seq/1-3"]
    assert single[0].image1.name == "1.ppm" and single[1].image2.name == "3.ppm"


def test_oxford_layout_pairs_for_files_present(tmp_path):
    for k in (1, 2, 3, 4):
        _write_image(tmp_path / "bikes" / f"img{k}.ppm")
    for k in (2, 3, 5):  # H1to5p without img5, img4 without H1to4p
        write_matrix(tmp_path / "bikes" / f"H1to{k}p", _random_h(k))
    specs = read_dataset(tmp_path / "bikes")
    assert [s.name for s in specs] == ["bikes/1-2", "bikes/1-3"]
    assert detect_format(tmp_path) == "oxford"  # a folder of sequences
    assert len(read_dataset(tmp_path, "oxford")) == 2


def test_evd_layout(tmp_path):
    hs = {}
    for name in ("adam", "cafe"):
        _write_image(tmp_path / "1" / f"{name}.png")
        _write_image(tmp_path / "2" / f"{name}.png")
        hs[name] = _random_h(len(name) + ord(name[0]))
        write_matrix(tmp_path / "h" / f"{name}.txt", hs[name])
    assert detect_format(tmp_path) == "evd"
    specs = read_dataset(tmp_path)
    assert [s.name for s in specs] == ["adam", "cafe"]
    for spec in specs:
        assert spec.image1.parent.name == "1" and spec.image2.parent.name == "2"
        np.testing.assert_allclose(spec.H, hs[spec.name])
        # judging with the true H on grid points, sizes given explicitly
        assert judge(spec, spec.H, "homography", ((64, 48), (64, 48))) == (True, pytest.approx(0.0, abs=1e-9))
    (tmp_path / "h" / "cafe.txt").unlink()
    with pytest.raises(DatasetError, match="h/cafe.txt"):
        read_dataset(tmp_path, "evd")


def test_wxbs_layout(tmp_path):
    pairs = {"WGABS/kremlin": ("01.png", "02.png"), "WGALBS/flag": ("1.jpg", "2.jpg"), "lone": ("01.png", "02.png")}
    truth = {}
    for name, (a, b) in pairs.items():
        folder = tmp_path / name
        _write_image(folder / b)
        _write_image(folder / a)
        truth[name] = RNG.uniform(0, 60, size=(7, 4))
        np.savetxt(folder / "corrs.txt", truth[name])
        (folder / "crossval_errors.txt").write_text("1.0\n")
    assert detect_format(tmp_path) == "wxbs"
    specs = read_dataset(tmp_path)
    assert [s.name for s in specs] == sorted(pairs)
    for spec in specs:
        assert spec.geometry == "fundamental" and spec.H is None
        assert spec.image1.name == pairs[spec.name][0] and spec.image2.name == pairs[spec.name][1]
        np.testing.assert_allclose(spec.points, truth[spec.name])
    one = read_dataset(tmp_path / "lone")
    assert len(one) == 1 and one[0].name == "lone"


def test_pairs_file(tmp_path):
    for name in ("a", "b", "c"):
        _write_image(tmp_path / "imgs" / f"{name}.png")
    H = _random_h(3)
    write_matrix(tmp_path / "gt" / "ab.txt", H)
    corrs = RNG.uniform(0, 60, size=(9, 4))
    np.savetxt(tmp_path / "gt" / "bc.txt", corrs)
    listing = tmp_path / "pairs.txt"
    listing.write_text(
        "# img1 img2 [gt]\n\nimgs/a.png imgs/b.png gt/ab.txt\nimgs/b.png imgs/c.png gt/bc.txt  # corrs\nimgs/a.png imgs/c.png\n"
    )
    assert detect_format(listing) == "pairs"
    specs = read_dataset(listing)
    assert [s.name for s in specs] == ["a-b", "b-c", "a-c"]
    assert specs[0].geometry == "homography" and np.allclose(specs[0].H, H) and specs[0].points is None
    assert specs[1].geometry == "fundamental" and np.allclose(specs[1].points, corrs) and specs[1].H is None
    assert specs[2].geometry == "homography" and specs[2].H is None and specs[2].points is None
    with pytest.raises(DatasetError, match="no ground truth"):
        judge(specs[2], np.eye(3))
    listing.write_text("imgs/a.png\n")
    with pytest.raises(DatasetError, match=r"pairs.txt:1"):
        read_dataset(listing, "pairs")
    listing.write_text("imgs/a.png imgs/missing.png\n")
    with pytest.raises(DatasetError, match="does not exist"):
        read_dataset(listing)


def test_layout_errors(tmp_path):
    with pytest.raises(DatasetError, match="no such"):
        read_dataset(tmp_path / "nope")
    _write_image(tmp_path / "x.png")
    with pytest.raises(DatasetError, match="cannot detect"):
        read_dataset(tmp_path)
    with pytest.raises(DatasetError, match="unknown dataset format"):
        read_dataset(tmp_path, "kitti")
    with pytest.raises(DatasetError, match="EVD layout"):
        read_dataset(tmp_path, "evd")
    with pytest.raises(DatasetError, match="vpts"):
        read_dataset(tmp_path, "cmp")


def test_registry_lists_every_layout_once_and_names_its_hints(tmp_path):
    names = [layout.name for layout in LAYOUTS]
    assert FORMATS == ("auto", *names) and len(set(names)) == len(names)
    first = {"cmp": None, "oxford": "homography", "hpatches": "homography", "evd": "homography",
             "wxbs": "fundamental", "pairs": None}  # the first layouts: --format choices, detection order
    assert [name for name in names if name in first] == list(first)
    assert {layout.name: layout.geometry for layout in LAYOUTS if layout.name in first} == first
    with pytest.raises(DatasetError, match=r"cannot detect .*\*_vpts.mat, H1to2p, H_1_2, 1/ 2/ h/ .*corrs.txt"):
        detect_format(_write_image(tmp_path / "x.png").parent)


def _oxford_sequence(folder: Path) -> None:
    for k in (1, 2):
        _write_image(folder / f"img{k}.png")
    write_matrix(folder / "H1to2p", _random_h(5))


def _hpatches_sequence(folder: Path) -> None:
    for k in (1, 2):
        _write_image(folder / f"{k}.ppm")
    write_matrix(folder / "H_1_2", _random_h(6))


def test_detection_priority_folder_before_folder_of_folders(tmp_path):
    # a folder that is an Oxford sequence and also holds H_1_2: Oxford comes first
    _oxford_sequence(tmp_path / "both")
    _hpatches_sequence(tmp_path / "both")
    assert detect_format(tmp_path / "both") == "oxford"
    # a folder of sequence folders of both kinds reads as HPatches
    _oxford_sequence(tmp_path / "mixed" / "graf")
    _hpatches_sequence(tmp_path / "mixed" / "v_seq")
    assert detect_format(tmp_path / "mixed") == "hpatches"
    assert [s.name for s in read_dataset(tmp_path / "mixed")] == ["v_seq/1-2"]
    assert [s.name for s in read_dataset(tmp_path / "mixed", "oxford")] == ["graf/1-2"]
    # a folder that is itself a dataset (EVD) wins over the sequence folders inside it
    _oxford_sequence(tmp_path / "evd" / "graf")
    for sub in ("1", "2"):
        _write_image(tmp_path / "evd" / sub / "a.png")
    write_matrix(tmp_path / "evd" / "h" / "a.txt", _random_h(7))
    assert detect_format(tmp_path / "evd") == "evd"
    # a file is only ever a pairs file
    assert detect_format(tmp_path / "evd" / "h" / "a.txt") == "pairs"


def test_fixed_geometry_layouts_refuse_an_override(tmp_path):
    _oxford_sequence(tmp_path / "graf")
    assert read_dataset(tmp_path / "graf", geometry="homography")[0].geometry == "homography"
    with pytest.raises(DatasetError, match="oxford datasets are homography pairs"):
        read_dataset(tmp_path / "graf", geometry="fundamental")
    with pytest.raises(DatasetError, match="unknown geometry"):
        read_dataset(tmp_path / "graf", geometry="pose")
    with pytest.raises(DatasetError, match="must be a folder"):
        read_dataset(tmp_path / "graf" / "H1to2p", "oxford")


def test_pairspec_calibrated_ground_truth_is_optional_and_checked():
    plain = PairSpec("p", Path("a.png"), Path("b.png"), "homography")
    assert not plain.calibrated and plain.K1 is None and plain.R is None and plain.t is None
    K = [[800, 0, 320], [0, 800, 240], [0, 0, 1]]
    R = cv2.Rodrigues(np.array([0.0, 0.1, 0.0]))[0]
    spec = PairSpec("c", Path("a.png"), Path("b.png"), "fundamental", K1=K, K2=K, R=R, t=[1, 0, 0])
    assert spec.calibrated
    assert spec.K1.dtype == np.float64 and spec.K1.shape == (3, 3) and spec.t.shape == (3,)
    with pytest.raises(ValueError, match="missing K2, R, t"):
        PairSpec("c", Path("a.png"), Path("b.png"), "fundamental", K1=K)
    with pytest.raises(ValueError, match=r"t must have shape \(3,\)"):
        PairSpec("c", Path("a.png"), Path("b.png"), "fundamental", K1=K, K2=K, R=R, t=[1, 0])
    with pytest.raises(ValueError, match="R contains NaN"):
        PairSpec("c", Path("a.png"), Path("b.png"), "fundamental", K1=K, K2=K, R=np.full((3, 3), np.nan), t=[1, 0, 0])


# ---------------------------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------------------------


def _two_view_setup():
    rng = np.random.default_rng(7)
    K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
    angle = 0.2
    R = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    t = np.array([1.0, 0.2, 0.1])
    P1 = K @ np.hstack([np.eye(3), np.zeros((3, 1))])
    P2 = K @ np.hstack([R, t[:, None]])
    X = np.hstack([rng.uniform(-2, 2, (50, 2)), rng.uniform(4, 8, (50, 1)), np.ones((50, 1))])
    x1, x2 = X @ P1.T, X @ P2.T
    points = np.hstack([x1[:, :2] / x1[:, 2:], x2[:, :2] / x2[:, 2:]])
    tx = np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]])
    Kinv = np.linalg.inv(K)
    F = Kinv.T @ tx @ R @ Kinv
    return F / np.linalg.norm(F), points


def test_symmetric_epipolar_error_true_and_perturbed():
    F, points = _two_view_setup()
    assert symmetric_epipolar_error(F, points) < 1e-6
    assert symmetric_epipolar_error(F * 123.0, points) < 1e-6  # scale invariant
    perturbed = F + np.random.default_rng(1).normal(scale=1e-2 * np.abs(F).max(), size=(3, 3))
    assert symmetric_epipolar_error(perturbed, points) > 1.0
    assert symmetric_epipolar_error(None, points) == np.inf
    assert symmetric_epipolar_error(np.full((3, 3), np.nan), points) == np.inf


def test_homography_error_and_grid_points():
    H = _random_h(5)
    xy1 = np.random.default_rng(2).uniform(0, 100, size=(20, 2))
    points = np.hstack([xy1, _apply_h(H, xy1)])
    assert homography_error(H, points) < 1e-9
    shifted = np.hstack([xy1, xy1 + [3.0, 4.0]])
    assert homography_error(np.eye(3), shifted) == pytest.approx(5.0)
    assert homography_error(None, points) == np.inf

    T = np.array([[1.0, 0, 10], [0, 1, 0], [0, 0, 1]])
    grid = grid_points_from_homography(T, 100, 50, step=10)
    assert grid.shape == (50, 4)
    np.testing.assert_allclose(grid[:, 2:] - grid[:, :2], np.tile([10.0, 0.0], (50, 1)))
    assert grid[:, 0].min() >= 0 and grid[:, 0].max() < 100 and grid[:, 1].max() < 50
    inside = grid_points_from_homography(T, 100, 50, step=10, image2_size=(100, 50))
    assert inside.shape == (45, 4) and inside[:, 2].max() <= 99


def test_judge_thresholds(tmp_path):
    assert H_THRESHOLD_PX == 5.0 and F_THRESHOLD_PX == 3.0
    xy1 = np.random.default_rng(3).uniform(0, 100, size=(30, 2))
    img = tmp_path / "a.png"
    for dx, expected in ((4.9, True), (5.1, False)):
        spec = PairSpec("h", img, img, "homography", None, np.hstack([xy1, xy1 + [dx, 0.0]]))
        matched, error = judge(spec, np.eye(3), "homography")
        assert matched is expected and error == pytest.approx(dx)
    # rectified pair: F = [t]_x with t = (1, 0, 0) -> epipolar error is exactly |y1 - y2|
    F_rect = np.array([[0.0, 0, 0], [0, 0, -1], [0, 1, 0]])
    for dy, expected in ((2.9, True), (3.1, False)):
        spec = PairSpec("f", img, img, "fundamental", None, np.hstack([xy1, xy1 + [7.0, dy]]))
        matched, error = judge(spec, F_rect)
        assert matched is expected and error == pytest.approx(dy)
    for bad in (None, np.full((3, 3), np.inf), np.zeros((3, 3))):
        assert judge(spec, bad) == (False, np.inf)
    # H-only spec: grid points from the GT H, sizes read from the image files when not given
    _write_image(img, 80, 60)
    H = _random_h(9)
    spec = PairSpec("grid", img, img, "homography", H, None)
    assert judge(spec, H) == (True, pytest.approx(0.0, abs=1e-9))
    assert judge(spec, H @ np.array([[1.0, 0, 8], [0, 1, 0], [0, 0, 1]]))[0] is False
