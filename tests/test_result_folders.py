"""Result folders that know what they hold (issue 29, cases 1-3, 7 and two of 8), for ``eval`` and
``reconstruct``: another dataset or scene into a folder is refused with one line (exit 5), never
reported or mixed in; a second run on a locked folder is refused at once while the first finishes;
temporaries are unique and leave nothing behind; two photos give a two-view model.

``eval`` cases use small generated images (no shared data); ``reconstruct`` cases use two or three
fountain-P11 images downscaled in the test and skip without ../shared.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from hardmatch.cli import main
from hardmatch.core.files import LOCK_NAME, FolderLock
from hardmatch.evaluation.provenance import default_out_dir
from hardmatch.evaluation.store import RESULTS_JSONL

from .conftest import need_shared, synthetic_texture, write_image, write_matrix

FAST = "fast:nfeatures=500"
H_ROT = np.array([[0.92, -0.16, 40.0], [0.16, 0.92, -12.0], [0.0, 0.0, 1.0]])
RECONSTRUCT_FAST = ("--nfeatures", "2000")


def eval_cli(*args):
    return CliRunner().invoke(main, ["eval", *map(str, args)])


def assert_one_error(stderr: str, code: int, returncode: int, words: str) -> str:
    """``stderr`` is exactly one ``hardmatch: error:`` line containing ``words``; exit ``code``."""
    lines = stderr.strip().splitlines()
    assert returncode == code, stderr
    assert len(lines) == 1 and lines[0].startswith("hardmatch: error: ") and words in lines[0], lines
    return lines[0]


def rows_of(out: Path) -> list:
    return [json.loads(line) for line in (out / RESULTS_JSONL).read_text().splitlines() if line.strip()]


def make_evd(root: Path, matching: bool) -> Path:
    """An EVD dataset of one pair named ``p``: a texture and its warp (``matching``), or two unrelated
    textures; the same pair name and homography in both kinds."""
    image = synthetic_texture(300, 400, seed=1 if matching else 5)
    second = cv2.warpPerspective(image, H_ROT, (400, 300)) if matching else synthetic_texture(300, 400, seed=9)
    write_image(root / "1" / "p.png", image)
    write_image(root / "2" / "p.png", second)
    write_matrix(root / "h" / "p.txt", H_ROT)
    return root


# ---- eval ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_datasets(tmp_path_factory):
    """Two EVD datasets both named ``evd`` (so both stems are ``evd``) with one pair ``p`` each:
    A matches, B does not."""
    base = tmp_path_factory.mktemp("datasets")
    return make_evd(base / "a" / "evd", matching=True), make_evd(base / "b" / "evd", matching=False)


def test_default_folders_differ_and_rows_record_their_source(two_datasets, tmp_path, monkeypatch):
    a, b = two_datasets
    monkeypatch.chdir(tmp_path)
    first, second = eval_cli(a, "--pipeline", FAST), eval_cli(b, "--pipeline", FAST)
    assert first.exit_code == 0 and second.exit_code == 0, (first.stderr, second.stderr)
    assert "computed 1 rows and resumed 0" in second.stdout  # B is computed, not A's row reused
    out_a, out_b = tmp_path / default_out_dir(a), tmp_path / default_out_dir(b)
    assert out_a != out_b and out_a.name.startswith("evd-") and out_b.name.startswith("evd-")
    (row_a,), (row_b,) = rows_of(out_a), rows_of(out_b)
    assert row_a["matched"] and not row_b["matched"]  # each folder reports its own dataset
    assert row_a["source"]["dataset_root"] == str(a.resolve())
    assert row_b["source"]["image2"]["path"] == str((b / "2" / "p.png").resolve())
    assert row_b["source"]["image2"]["size"] == (b / "2" / "p.png").stat().st_size
    assert row_a["source"]["config"] == row_b["source"]["config"] and row_a["source"]["truth"] == row_b["source"]["truth"]
    assert "source" not in (out_b / "results.csv").read_text().splitlines()[0]
    resumed = eval_cli(a, "--pipeline", FAST)  # the same dataset again: resumed, nothing computed
    assert resumed.exit_code == 0 and "computed 0 rows and resumed 1" in resumed.stdout


def test_another_dataset_into_one_folder_is_refused_never_truncated(two_datasets, tmp_path):
    a, b = two_datasets
    out = tmp_path / "out"
    assert eval_cli(a, "--pipeline", FAST, "--out", out).exit_code == 0
    before = (out / RESULTS_JSONL).read_bytes()
    for extra in ((), ("--no-resume",)):
        result = eval_cli(b, "--pipeline", FAST, "--out", out, *extra)
        assert_one_error(result.stderr, 5, result.exit_code, "holds results of another dataset")
        assert (out / RESULTS_JSONL).read_bytes() == before  # A's results are untouched
    assert "1/1" in (out / "summary.md").read_text()  # the summary is still A's (matched)


def test_a_changed_image_is_recomputed_not_resumed(tmp_path):
    root = make_evd(tmp_path / "evd", matching=True)
    out = tmp_path / "out"
    assert eval_cli(root, "--pipeline", FAST, "--out", out).exit_code == 0
    write_image(root / "2" / "p.png", synthetic_texture(300, 400, seed=9))  # same name, other image
    result = eval_cli(root, "--pipeline", FAST, "--out", out)
    assert result.exit_code == 0, result.stderr
    assert "computed 1 rows and resumed 0" in result.stdout
    assert "0/1" in (out / "summary.md").read_text()  # the new image does not match: not the old answer


def test_eval_on_a_folder_in_use_is_refused_at_once(two_datasets, tmp_path):
    a, _ = two_datasets
    out = tmp_path / "out"
    with FolderLock(out, "eval"):
        started = time.perf_counter()
        result = eval_cli(a, "--pipeline", FAST, "--out", out)
        assert time.perf_counter() - started < 5
    assert_one_error(result.stderr, 5, result.exit_code, "is in use by another hardmatch run")
    assert not (out / RESULTS_JSONL).exists()
    assert eval_cli(a, "--pipeline", FAST, "--out", out).exit_code == 0  # free again once released


# ---- reconstruct ----------------------------------------------------------------------------------


def reconstruct_cli(*args, timeout: int = 600):
    return subprocess.run([sys.executable, "-m", "hardmatch.cli", "reconstruct", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def fountain_images(folder: Path, sources: dict, side: int = 800) -> Path:
    """``{target name: fountain-P11 image name}`` copied into ``folder``, resized to ``side`` px."""
    root = need_shared("data/strecha/fountain-P11/images")
    folder.mkdir(parents=True, exist_ok=True)
    for target, source in sources.items():
        image = cv2.imread(str(root / source))
        f = side / max(image.shape[:2])
        cv2.imwrite(str(folder / target), cv2.resize(image, None, fx=f, fy=f, interpolation=cv2.INTER_AREA))
    return folder


def leftovers(out: Path) -> list:
    """Temporaries and SQLite sidecars left in ``out`` (nothing is expected after a run)."""
    return sorted(p.name for p in out.iterdir() if p.name.endswith((".tmp", "-wal", "-shm", "-journal"))
                  or ".tmp" in p.name)


def true_relative_rotation(names: tuple) -> np.ndarray:
    """cam2_from_cam1 rotation of two fountain-P11 views (Strecha R is camera-to-world)."""
    cameras = need_shared("data/strecha/fountain-P11/cameras")
    r = [np.array((cameras / f"{n}.camera").read_text().split(), np.float64)[12:21].reshape(3, 3) for n in names]
    return r[1].T @ r[0]


def rotation_angle_deg(r: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip((np.trace(r) - 1) / 2, -1, 1))))


@pytest.fixture(scope="module")
def two_photos(tmp_path_factory):
    """fountain-P11 0000 and 0001 at 800 px, reconstructed once: (images, out, process)."""
    base = tmp_path_factory.mktemp("two-photos")
    images = fountain_images(base / "scene-a", {"0000.jpg": "0000.jpg", "0001.jpg": "0001.jpg"})
    out = base / "out"
    return images, out, reconstruct_cli(images, out, *RECONSTRUCT_FAST)


def test_two_photos_give_a_two_view_model(two_photos):
    import pycolmap

    _, out, proc = two_photos
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("registered 2/2 images")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"]["registered"] == 2 and summary["model"]["points3D"] > 300
    assert summary["model"]["mean_reprojection_error"] < 1.0
    model = pycolmap.Reconstruction(str(out / "sparse" / "0"))
    first, second = sorted(model.images.values(), key=lambda image: image.name)
    relative = (second.cam_from_world() * first.cam_from_world().inverse()).rotation.matrix()
    error = rotation_angle_deg(relative.T @ true_relative_rotation(("0000.jpg", "0001.jpg")))
    assert error < 2.0, error  # the verified relative pose, against the ground-truth cameras
    assert (out / "points.ply").stat().st_size > 0
    assert leftovers(out) == []


def test_another_scene_with_the_same_names_is_refused(two_photos, tmp_path):
    _, out, first = two_photos
    assert first.returncode == 0, first.stderr
    other = fountain_images(tmp_path / "scene-b", {"0000.jpg": "0004.jpg", "0001.jpg": "0005.jpg"})
    kept = {name: (out / name).read_bytes() for name in ("features.h5", "matches.h5", "summary.json")}
    proc = reconstruct_cli(other, out, *RECONSTRUCT_FAST)
    assert_one_error(proc.stderr, 5, proc.returncode, "holds features of other images")
    assert "0000.jpg, 0001.jpg differ" in proc.stderr and proc.stdout == ""
    assert {name: (out / name).read_bytes() for name in kept} == kept  # scene A's files untouched


def test_the_same_images_copied_elsewhere_are_reused(two_photos, tmp_path):
    images, out, first = two_photos
    assert first.returncode == 0, first.stderr
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("0000.jpg", "0001.jpg"):  # same bytes, new path and modification time
        (copy / name).write_bytes((images / name).read_bytes())
    proc = reconstruct_cli(copy, out, *RECONSTRUCT_FAST)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["features"] == {"written": 0, "reused": 2} and summary["model"]["registered"] == 2


def test_stale_leftovers_of_killed_runs_do_not_fail_the_next(two_photos):
    images, out, first = two_photos
    assert first.returncode == 0, first.stderr
    (out / "database.db.tmp-wal").write_bytes(b"stale journal of an old killed run")
    (out / ".database.db.k1ll3d.tmp").write_bytes(b"half a database")
    (out / ".database.db.k1ll3d.tmp-wal").write_bytes(b"its journal")
    (out / "database.db-wal").write_bytes(b"a killed mapper's journal of the old database")
    (out / "sparse.tmp").mkdir()
    proc = reconstruct_cli(images, out, *RECONSTRUCT_FAST, "--remap")  # the mapper reads database.db again
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "summary.json").read_text())["model"]["registered"] == 2
    assert leftovers(out) == []


def test_a_second_run_on_one_folder_is_refused_and_the_first_finishes(tmp_path):
    images = fountain_images(tmp_path / "scene", {"0000.jpg": "0000.jpg", "0001.jpg": "0001.jpg"})
    out = tmp_path / "out"
    command = [sys.executable, "-m", "hardmatch.cli", "reconstruct", str(images), str(out), *RECONSTRUCT_FAST]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not ((out / LOCK_NAME).is_file() and f"pid {first.pid}" in (out / LOCK_NAME).read_text()):
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.05)
        second = reconstruct_cli(images, out, *RECONSTRUCT_FAST, timeout=120)
        stdout, stderr = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            first.kill()
    assert_one_error(second.stderr, 5, second.returncode, f"is in use by another hardmatch run (pid {first.pid}")
    assert first.returncode == 0, stderr
    assert stdout.startswith("registered 2/2 images")
    assert json.loads((out / "summary.json").read_text())["model"]["registered"] == 2
    assert leftovers(out) == []


def test_a_pairs_file_naming_unknown_images_fails_before_any_work(tmp_path):
    images = tmp_path / "images"
    for name, seed in (("a.png", 1), ("b.png", 2)):
        write_image(images / name, synthetic_texture(240, 320, seed=seed))
    listed = tmp_path / "pairs.txt"
    listed.write_text("a.png b.png\na.png zz.png\n")
    out = tmp_path / "out"
    proc = reconstruct_cli(images, out, "--pairs", listed)
    assert_one_error(proc.stderr, 5, proc.returncode, "zz.png is not an image of the scene")
    assert not (out / "features.h5").exists()  # refused before feature extraction


def test_identical_pair_reports_its_own_line_first(tmp_path):
    """Two copies of one image verify but have no baseline: no model (exit 1), and COLMAP's log
    ("Failed to create any sparse model") is not printed before hardmatch's one line."""
    pytest.importorskip("pycolmap")
    images = tmp_path / "images"
    texture = synthetic_texture(360, 480, seed=4)
    write_image(images / "a.png", texture)
    write_image(images / "b.png", texture)
    proc = reconstruct_cli(images, tmp_path / "out")
    assert_one_error(proc.stderr, 1, proc.returncode, "no model")
    assert leftovers(tmp_path / "out") == []
    assert os.listdir(tmp_path / "out")  # the stages before the mapper are kept for a rerun
