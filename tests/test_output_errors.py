"""Outputs that cannot be written and interrupted runs (issue 29, cases 4 and 8), as a user meets them.

Every case runs the real command in a subprocess and asserts the exit code (5 for an output that
cannot be written, 130 for Ctrl-C, never 1 which means "no model"), the single stderr line (no
traceback) and that nothing was lost: outputs already there are untouched, no temporary is left
behind, rows and logs written before Ctrl-C are kept.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from hardmatch.core.errors import OutputError
from hardmatch.viz import check_image_output, draw_pair_result, write_image

from .conftest import synthetic_texture, write_image as save_gray

CLI = [sys.executable, "-m", "hardmatch.cli"]


def run(*args, cwd=None, timeout=300):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=cwd)


def one_error_line(proc) -> str:
    """The one stderr line of a failed run (asserted: one line, 'hardmatch: error:', no traceback)."""
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr
    assert lines[0].startswith("hardmatch: error:"), lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def image_pair(tmp_path_factory) -> tuple[Path, Path]:
    """Two small views of one generated texture, a homography apart (they match)."""
    folder = tmp_path_factory.mktemp("pair")
    image = synthetic_texture(240, 320, seed=3)
    H = np.array([[0.97, 0.04, 6.0], [-0.03, 1.0, 4.0], [0.0, 0.0, 1.0]])
    return (save_gray(folder / "a.png", image),
            save_gray(folder / "b.png", cv2.warpPerspective(image, H, (320, 240))))


PAIR = ("--geometry", "homography", "--nfeatures", "300")


@pytest.mark.parametrize("case", ["json-missing-folder", "json-folder-in-the-way", "viz-unknown-extension",
                                  "viz-missing-folder"])
def test_pair_refuses_unwritable_outputs_before_the_work(tmp_path, image_pair, case):
    kept = tmp_path / "kept.json"
    kept.write_text("{}")
    (tmp_path / "taken.json").mkdir()
    option, target, says = {
        "json-missing-folder": ("--json", tmp_path / "nope" / "x.json", "does not exist"),
        "json-folder-in-the-way": ("--json", tmp_path / "taken.json", "it is a folder"),
        "viz-unknown-extension": ("--viz", tmp_path / "x.xyz", "unknown image extension '.xyz'"),
        "viz-missing-folder": ("--viz", tmp_path / "nope" / "v.png", "does not exist"),
    }[case]
    extra = ("--json", kept) if option == "--viz" else ()
    proc = run("pair", *image_pair, *PAIR, option, target, *extra)
    assert proc.returncode == 5, proc.stderr
    assert says in one_error_line(proc) and str(target) in proc.stderr
    assert proc.stdout == ""  # refused before any matching was done or printed
    assert kept.read_text() == "{}"  # the other output was not written either
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.json", "taken.json"]


def test_pair_write_error_after_the_work_is_one_line_exit_5(tmp_path, image_pair):
    if not Path("/proc/self").is_dir():
        pytest.skip("needs /proc (a folder where files cannot be created even by root)")
    proc = run("pair", *image_pair, *PAIR, "--json", "/proc/hardmatch-test.json")
    assert proc.returncode == 5, proc.stderr  # not 1: a model was found
    assert "cannot write" in one_error_line(proc) and "inliers" in proc.stdout


def test_pair_writes_json_and_drawing_atomically(tmp_path, image_pair):
    out, viz = tmp_path / "r.json", tmp_path / "r.png"
    proc = run("pair", *image_pair, *PAIR, "--json", out, "--viz", viz)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["num_inliers"] >= 15
    assert cv2.imread(str(viz)).shape == (240, 640, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "r.png"]  # no temporaries left


@pytest.mark.parametrize("command", ["extract", "export"])
def test_extract_and_export_to_a_missing_folder(tmp_path, command):
    target = tmp_path / "nope" / ("d.txt" if command == "extract" else "m.pt")
    patches = tmp_path / "patches.png"
    save_gray(patches, synthetic_texture(65 * 2, 65, seed=1))
    proc = run(*(("extract", patches) if command == "extract" else ("export",)), target)
    assert proc.returncode == 5, proc.stderr
    assert "does not exist" in one_error_line(proc) and not target.parent.exists()


def test_check_image_output_and_write_image(tmp_path):
    with pytest.raises(OutputError, match="unknown image extension"):
        check_image_output(tmp_path / "x.xyz")
    with pytest.raises(OutputError, match="unknown image extension"):
        check_image_output(tmp_path / "no-extension")
    assert check_image_output(tmp_path / "x.JPG") == tmp_path / "x.JPG"
    image = synthetic_texture(40, 50)
    write_image(tmp_path / "x.png", image)
    assert np.array_equal(cv2.imread(str(tmp_path / "x.png"), cv2.IMREAD_GRAYSCALE), image)
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]


def test_draw_pair_result_draws_in_working_pixels(image_pair):
    """A pair matched at half resolution is drawn on the half-size images, the points mapped there."""
    from hardmatch.twoview.api import build_matcher

    matcher = build_matcher("default", geometry="homography", nfeatures=300, max_side=160)
    work1, work2 = matcher.load(image_pair[0]), matcher.load(image_pair[1])
    result = matcher.match_pair(work1, work2)
    canvas = draw_pair_result(result, work1, work2)
    assert canvas.shape == (120, 320, 3) and result.num_inliers > 0
    p1, _ = result.inlier_points  # original pixels; drawn at half of them
    x, y = np.round(p1[0] / 2).astype(int)
    assert canvas[max(0, y - 1):y + 2, max(0, x - 1):x + 2].std() > 0


# ---- Ctrl-C -------------------------------------------------------------------------------------


def interrupt_when(args, ready, cwd, wait_s=240.0):
    """Start the command in its own process group, send SIGINT to the whole group (as a terminal's
    Ctrl-C does) once ``ready()`` holds; -> (completed process, seconds from SIGINT to exit)."""
    proc = subprocess.Popen([*CLI, *map(str, args)], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        deadline = time.time() + wait_s
        while not ready() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None, f"finished before the interrupt: {proc.communicate()}"
        sent = time.time()
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), time.time() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def assert_interrupted(proc) -> None:
    assert proc.returncode == 130, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr and lines[-1].startswith("hardmatch: interrupted"), proc.stderr


def test_ctrl_c_in_eval_with_two_workers_exits_130_at_once_and_keeps_rows(tmp_path):
    for i in range(6):
        save_gray(tmp_path / "data" / f"x{i}.png", synthetic_texture(480, 640, seed=10 + i))
    (tmp_path / "data" / "pairs.txt").write_text("".join(f"x{i}.png x{(i + 1) % 6}.png none\n" for i in range(6)))
    rows = tmp_path / "out" / "results.jsonl"

    def one_row() -> bool:
        return rows.is_file() and rows.read_text().count("\n") >= 1

    proc, seconds = interrupt_when(["eval", "data/pairs.txt", "--out", "out", "--workers", "2"], one_row, tmp_path)
    assert_interrupted(proc)
    assert seconds < 5.0  # the workers are terminated, not waited for (13 s before)
    kept = [json.loads(line) for line in rows.read_text().splitlines()]
    assert 1 <= len(kept) < 6 and all(row["pair"] for row in kept)
    time.sleep(0.5)
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.endswith(".tmp")]


def test_ctrl_c_in_train_with_loader_workers_exits_130_and_keeps_the_log(tmp_path):
    for i in range(2):
        save_gray(tmp_path / "images" / f"t{i}.png", synthetic_texture(240, 320, seed=20 + i))
    log = tmp_path / "run" / "log.csv"
    proc, seconds = interrupt_when(["train", "--images", "images", "--out", "run", "--steps", "5000",
                                    "--batch-size", "16", "--workers", "2", "--no-baselines"],
                                   lambda: log.is_file() and log.read_text().count("\n") >= 2, tmp_path)
    assert_interrupted(proc)
    assert seconds < 5.0
    assert log.read_text().startswith("step,")  # the log written so far is kept
