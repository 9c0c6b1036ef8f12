"""``hardmatch eval``: real images warped by known homographies, real pipelines, nothing mocked.

Fixtures are small datasets in their native layouts (EVD, HPatches, WxBS) built from a real
photo (shared/data/homogr/BostonA.jpg, downscaled to 400 px); tests needing it skip when
shared/ is absent. The pipelines are cut down (500 features) to keep the file fast.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field, fields
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner, Result

from hardmatch.cli import main
from hardmatch.twoview.config import get_preset
from hardmatch.datasets.spec import PairSpec
from hardmatch.evaluation.specs import _cast, parse_pipeline_spec, resolve_geometry
from hardmatch.evaluation.provenance import default_out_dir
from hardmatch.evaluation.store import RESULTS_JSONL, load_results
from hardmatch.evaluation.summary import summarize

from .conftest import need_shared, synthetic_texture, write_image, write_matrix

FAST = "fast:nfeatures=500"
SIDE = 400

#: Known image-1 -> image-2 homographies: mild rotation + zoom, and a perspective tilt.
H_ROT = np.array([[0.92, -0.16, 40.0], [0.16, 0.92, -12.0], [0.0, 0.0, 1.0]])
H_TILT = np.array([[0.85, 0.05, 30.0], [-0.03, 0.95, 15.0], [2e-4, -1e-4, 1.0]])


# ---------------------------------------------------------------------------------------------
# fixture builders
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """BostonA.jpg as grayscale uint8 (H, W), longest side 400 px."""
    path = need_shared("data/homogr/BostonA.jpg")
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    f = SIDE / max(image.shape)
    return cv2.resize(image, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)


def warp(image: np.ndarray, H: np.ndarray) -> np.ndarray:
    """``image`` (H, W) warped by the 3x3 ``H`` into a canvas of the same size."""
    return cv2.warpPerspective(image, H, (image.shape[1], image.shape[0]), flags=cv2.INTER_LINEAR)


def make_evd(root: Path, photo: np.ndarray) -> dict:
    """EVD layout ``1/NAME.png, 2/NAME.png, h/NAME.txt``; returns the expected matched flag per pair.

    ``rot`` and ``tilt`` are true warps; ``other`` pairs the photo with an unrelated texture;
    ``broken`` has a second "image" that is a text file (an error recorded in its row)."""
    other = synthetic_texture(photo.shape[0], photo.shape[1], seed=3)
    for name, H, second in (("rot", H_ROT, None), ("tilt", H_TILT, None), ("other", np.eye(3), other)):
        write_image(root / "1" / f"{name}.png", photo)
        write_image(root / "2" / f"{name}.png", warp(photo, H) if second is None else second)
        write_matrix(root / "h" / f"{name}.txt", H)
    write_image(root / "1" / "broken.png", photo)
    (root / "2" / "broken.png").write_text("not an image")
    write_matrix(root / "h" / "broken.txt", np.eye(3))
    return {"broken": False, "other": False, "rot": True, "tilt": True}


def make_hpatches(root: Path, photo: np.ndarray) -> list:
    """One HPatches sequence ``v_boston`` with ``1.ppm .. 3.ppm`` and ``H_1_2, H_1_3``; returns pair names."""
    seq = root / "v_boston"
    write_image(seq / "1.ppm", photo)
    for k, H in ((2, H_ROT), (3, H_TILT)):
        write_image(seq / f"{k}.ppm", warp(photo, H))
        write_matrix(seq / f"H_1_{k}", H)
    return ["v_boston/1-2", "v_boston/1-3"]


def make_wxbs(root: Path, photo: np.ndarray) -> str:
    """One WxBS pair folder ``WGABS/boston`` (``01.png, 02.png, corrs.txt``); returns the pair name.

    The ground-truth correspondences are grid points mapped by the warp and kept inside image 2."""
    folder = root / "WGABS" / "boston"
    write_image(folder / "01.png", photo)
    write_image(folder / "02.png", warp(photo, H_ROT))
    h, w = photo.shape
    xs, ys = np.meshgrid(np.linspace(20, w - 20, 8), np.linspace(20, h - 20, 6))
    xy1 = np.stack([xs.ravel(), ys.ravel()], 1)
    xy2 = cv2.perspectiveTransform(xy1[None], H_ROT)[0]
    inside = np.all((xy2 > 0) & (xy2 < [w - 1, h - 1]), axis=1)
    np.savetxt(folder / "corrs.txt", np.hstack([xy1, xy2])[inside])
    return "WGABS/boston"


def run_eval(*args) -> Result:
    """``hardmatch eval ARGS`` in-process; stdout and stderr kept apart."""
    return CliRunner().invoke(main, ["eval", *map(str, args)])


def read_jsonl(path: Path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------
# EVD: one run shared by several tests
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def evd_run(tmp_path_factory, photo):
    """The EVD fixture evaluated once with one worker: (dataset root, out dir, expected flags, result)."""
    root = tmp_path_factory.mktemp("evd")
    expected = make_evd(root, photo)
    out = tmp_path_factory.mktemp("evd-out")
    result = run_eval(root, "--format", "evd", "--pipeline", FAST, "--out", out)
    return root, out, expected, result


def test_evd_matches_and_writes_outputs(evd_run):
    root, out, expected, result = evd_run
    assert result.exit_code == 0, result.stderr
    assert f"eval {root.name}" in result.stderr  # the progress bar (label only when not a terminal)
    rows = read_jsonl(out / RESULTS_JSONL)
    assert {r["pair"]: r["matched"] for r in rows} == expected
    by_pair = {r["pair"]: r for r in rows}
    for name in ("rot", "tilt"):
        row = by_pair[name]
        assert row["geometry"] == "homography" and row["pipeline"] == FAST and row["dataset"] == root.name
        assert row["inliers"] >= 20 and row["error_px"] < 5 and row["reason"] == ""
        assert row["features1"] > 0 and row["tentative"] >= row["inliers"]
        assert row["time_total"] > 0 and row["time_verify"] >= 0 and "step" in row
    assert by_pair["broken"]["reason"].startswith("error: ") and "broken.png" in by_pair["broken"]["reason"]
    assert by_pair["other"]["reason"]
    # CSV: same rows, time_<stage> columns
    with open(out / "results.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert sorted(r["pair"] for r in table) == sorted(expected)
    assert {"time_total", "time_match", "reason", "error_px"} <= set(table[0])
    # summaries
    summary = json.loads((out / "summary.json").read_text())
    (entry,) = summary["pipelines"]
    assert (entry["pipeline"], entry["matched"], entry["pairs"], entry["errors"]) == (FAST, 2, 4, 1)
    assert entry["mean_inliers"] == pytest.approx(np.mean([by_pair[n]["inliers"] for n in ("rot", "tilt")]), abs=0.1)
    assert summary["computed"] == 4 and summary["resumed"] == 0
    assert f"| {FAST} | 2/4 |" in (out / "summary.md").read_text()
    assert f"| {FAST} | 2/4 |" in result.stdout  # the table is printed
    plot = cv2.imread(str(out / "summary.png"))
    assert plot is not None and plot.shape[0] > 50 and plot.shape[1] > 300


def test_second_run_resumes_without_work(evd_run):
    root, out, _, first = evd_run
    assert first.exit_code == 0, first.stderr
    before = (out / RESULTS_JSONL).read_text()
    result = run_eval(root, "--format", "evd", "--pipeline", FAST, "--out", out)
    assert result.exit_code == 0, result.stderr
    assert "computed 0 rows and resumed 4" in result.stdout
    assert (out / RESULTS_JSONL).read_text() == before  # nothing appended
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["computed"], summary["resumed"], summary["pipelines"][0]["matched"]) == (0, 4, 2)


def test_resume_after_a_killed_run(evd_run, tmp_path):
    """A run killed mid-write leaves half a line: it is skipped and the missing row recomputed."""
    root, out, expected, first = evd_run
    assert first.exit_code == 0, first.stderr
    lines = (out / RESULTS_JSONL).read_text().splitlines()
    kept = [line for line in lines if json.loads(line)["pair"] != "rot"]
    cut = next(line for line in lines if json.loads(line)["pair"] == "rot")[:25]
    copy = tmp_path / "out"
    copy.mkdir()
    (copy / RESULTS_JSONL).write_text("\n".join(kept) + "\n" + cut)
    result = run_eval(root, "--format", "evd", "--pipeline", FAST, "--out", copy)
    assert result.exit_code == 0, result.stderr
    assert "computed 1 rows and resumed 3" in result.stdout
    rows = read_jsonl(copy / RESULTS_JSONL)  # the cut line is gone: every line parses
    assert len(rows) == 4 and rows[-1]["pair"] == "rot"
    assert {r["pair"]: r["matched"] for r in rows} == expected
    assert {key[2] for key in load_results(copy / RESULTS_JSONL)} == set(expected)


def test_two_workers_give_the_same_flags(evd_run, tmp_path):
    root, out, expected, first = evd_run
    assert first.exit_code == 0, first.stderr
    result = run_eval(root, "--format", "evd", "--pipeline", FAST, "--out", tmp_path / "w2", "--workers", 2)
    assert result.exit_code == 0, result.stderr
    rows = read_jsonl(tmp_path / "w2" / RESULTS_JSONL)
    assert len(rows) == 4
    assert {r["pair"]: r["matched"] for r in rows} == expected
    serial = {r["pair"]: r["inliers"] for r in read_jsonl(out / RESULTS_JSONL)}
    for row in rows:  # other thread counts change float sums a little, so an inlier or two may differ
        assert row["inliers"] == pytest.approx(serial[row["pair"]], rel=0.1, abs=2)


# ---------------------------------------------------------------------------------------------
# HPatches and WxBS layouts
# ---------------------------------------------------------------------------------------------


def test_hpatches_two_pipelines_give_two_summary_rows(tmp_path, photo):
    names = make_hpatches(tmp_path / "hp", photo)
    out = tmp_path / "out"
    result = run_eval(tmp_path / "hp", "--pipeline", FAST, "--pipeline", "sift:nfeatures=500", "--limit", 1,
                      "--out", out)
    assert result.exit_code == 0, result.stderr
    rows = read_jsonl(out / RESULTS_JSONL)
    assert sorted((r["pipeline"], r["pair"]) for r in rows) == [("fast:nfeatures=500", names[0]),
                                                                ("sift:nfeatures=500", names[0])]
    assert all(r["matched"] for r in rows)
    summary = json.loads((out / "summary.json").read_text())["pipelines"]
    assert [s["pipeline"] for s in summary] == [FAST, "sift:nfeatures=500"]
    assert all(s["matched"] == 1 and s["pairs"] == 1 for s in summary)
    table_rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and "/1 |" in line]
    assert len(table_rows) == 2


def test_wxbs_fundamental_pair_and_default_out_dir(tmp_path, photo, monkeypatch):
    name = make_wxbs(tmp_path / "wxbs", photo)
    monkeypatch.chdir(tmp_path)
    result = run_eval(tmp_path / "wxbs", "--pipeline", FAST)
    assert result.exit_code == 0, result.stderr
    out = tmp_path / default_out_dir(tmp_path / "wxbs")  # eval-out/wxbs-<hash of the dataset path>
    (row,) = read_jsonl(out / RESULTS_JSONL)
    assert row["pair"] == name and row["geometry"] == "fundamental"
    assert row["matched"], row["reason"]
    assert row["error_px"] < 3


# ---------------------------------------------------------------------------------------------
# errors and spec parsing (no shared data needed)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["auto", "evd"])
def test_bad_dataset_folder_exits_5_with_one_line(tmp_path, fmt):
    (tmp_path / "data" / "1").mkdir(parents=True)
    result = run_eval(tmp_path / "data", "--format", fmt, "--out", tmp_path / "out")
    assert result.exit_code == 5
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hardmatch: error:")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("spec", ["nosuch", "fast:bogus=1", "fast:nfeatures=many", "fast:matcher=knn", "fast:ratio"])
def test_bad_pipeline_spec_exits_2(tmp_path, spec):
    result = run_eval(tmp_path, "--pipeline", spec)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hardmatch: error:") and "Traceback" not in result.stderr


def test_bad_weights_fail_before_any_pair(evd_run, tmp_path):
    root = evd_run[0]
    result = run_eval(root, "--pipeline", "fast:weights=no-such-weights.pth", "--out", tmp_path / "out")
    assert result.exit_code == 4
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no-such-weights.pth" in lines[0]
    assert not (tmp_path / "out" / RESULTS_JSONL).exists()


def test_parse_pipeline_spec_casts_by_field_type():
    spec = parse_pipeline_spec("fast:nfeatures=1000, ratio=0.85,threshold=none,min-inliers=12,matcher=mnn")
    assert spec.label == "fast:nfeatures=1000, ratio=0.85,threshold=none,min-inliers=12,matcher=mnn"
    config = spec.config
    assert (config.nfeatures, config.ratio, config.threshold, config.min_inliers, config.matcher) == (
        1000, 0.85, None, 12, "mnn")
    assert config.geometry == get_preset("fast").geometry  # the rest comes from the preset
    assert parse_pipeline_spec("fast:threshold=2.5").config.threshold == 2.5
    assert parse_pipeline_spec("default").options == ()
    with pytest.raises(ValueError, match="unknown preset"):
        parse_pipeline_spec("nope:nfeatures=1")
    with pytest.raises(ValueError, match="given twice"):
        parse_pipeline_spec("fast:seed=1,seed=2")


def test_option_values_cast_by_field_type():
    """Casting follows the (string) annotation of the field, whatever fields the config has today."""

    @dataclass
    class Fields:
        flag: bool = False
        count: int = 0
        limit: float | None = None
        mode: str = field(default="a", metadata={"choices": ("a", "b")})

    f = {x.name: x for x in fields(Fields)}
    assert [_cast(v, f["flag"]) for v in ("true", "YES", "0", "off")] == [True, True, False, False]
    assert _cast("12", f["count"]) == 12 and _cast("none", f["limit"]) is None and _cast("2.5", f["limit"]) == 2.5
    assert _cast("b", f["mode"]) == "b"
    for value, name, message in (("maybe", "flag", "boolean"), ("1.5", "count", "integer"), ("c", "mode", "one of")):
        with pytest.raises(ValueError, match=message):
            _cast(value, f[name])


def test_geometry_resolution_and_summary():
    pair = PairSpec("p", Path("a.png"), Path("b.png"), "homography")
    assert resolve_geometry(parse_pipeline_spec("fast"), pair) == "homography"
    assert resolve_geometry(parse_pipeline_spec("fast"), pair, forced="fundamental") == "fundamental"
    assert resolve_geometry(parse_pipeline_spec("fast:geometry=fundamental"), pair, forced="homography") == "fundamental"
    rows = [{"pipeline": "a", "matched": True, "inliers": 10, "time_total": 1.0, "step": "s1", "reason": ""},
            {"pipeline": "a", "matched": True, "inliers": 30, "time_total": 3.0, "step": "s2", "reason": ""},
            {"pipeline": "a", "matched": False, "inliers": 0, "time_total": 5.0, "step": None, "reason": "error: x"}]
    (s,) = summarize(rows)
    assert (s["matched"], s["pairs"], s["mean_inliers"], s["total_time_s"], s["median_time_s"]) == (2, 3, 20.0, 9.0, 3.0)
    assert s["errors"] == 1 and s["steps"] == {"s1": 1, "s2": 1}
