"""``hardmatch eval SCENE --reconstruct`` on a small downscaled Strecha subset (real images, real COLMAP)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from tests.conftest import need_shared

pytest.importorskip("pycolmap")
pytest.importorskip("h5py")


def downscaled_scene(source: Path, target: Path, names: list, factor: float) -> Path:
    """A Strecha scene of ``names`` (e.g. ``0000.jpg``) resized by ``factor``, cameras scaled to match.

    Strecha's K puts the first pixel's centre at 0 (as OpenCV's resize does), so a centre c maps to
    (c + 0.5) * factor - 0.5; rotation and centre are unchanged."""
    (target / "images").mkdir(parents=True)
    (target / "cameras").mkdir()
    for name in names:
        image = cv2.imread(str(source / "images" / name), cv2.IMREAD_GRAYSCALE)
        small = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        assert cv2.imwrite(str(target / "images" / name), small)
        values = np.array((source / "cameras" / f"{name}.camera").read_text().split(), np.float64)
        K = values[:9].reshape(3, 3)
        K[:2, :2] *= factor
        K[:2, 2] = (K[:2, 2] + 0.5) * factor - 0.5
        rows = [K[0], K[1], K[2], values[9:12], values[12:15], values[15:18], values[18:21], values[21:24],
                [small.shape[1], small.shape[0]]]
        (target / "cameras" / f"{name}.camera").write_text(
            "\n".join(" ".join(f"{v:.10g}" for v in row) for row in rows) + "\n")
    return target


@pytest.fixture(scope="module")
def small_fountain(tmp_path_factory) -> Path:
    source = need_shared("data/strecha/fountain-P11")
    return downscaled_scene(source, tmp_path_factory.mktemp("fountain-small"),
                            ["0003.jpg", "0004.jpg", "0005.jpg", "0006.jpg"], 0.25)


def test_downscaled_cameras_read_back(small_fountain):
    from hardmatch.datasets.strecha import read_strecha_views

    views = read_strecha_views(small_fountain)
    assert [v.size for v in views] == [(768, 512)] * 4
    assert views[0].K[0, 0] == pytest.approx(2759.48 / 4, rel=1e-6)


def test_eval_reconstruct_against_colmap_sift(small_fountain, tmp_path):
    from hardmatch.cli import main

    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["eval", str(small_fountain), "--reconstruct", "--out", str(out),
                                       "--pipeline", "default:nfeatures=2000"])
    assert result.exit_code == 0, result.output
    assert "colmap-sift" in result.output and "pair mAA@10" in result.output
    report = json.loads((out / "reconstruction.json").read_text())
    rows = {r["pipeline"]: r for r in report["rows"]}
    assert set(rows) == {"default:nfeatures=2000", "colmap-sift"}
    ours, colmap = rows["default:nfeatures=2000"], rows["colmap-sift"]
    assert ours["registered"] == 4 and ours["views"] == 4
    # 4 close views of the fountain: a right model is within a few degrees and a few cm of the truth
    assert ours["rotation_median_deg"] < 3 and ours["position_median"] < 0.1 and ours["pair_maa"] > 0.5
    assert ours["time_ratio"] == pytest.approx(ours["seconds"] / colmap["seconds"], rel=1e-3)
    assert colmap["registered"] >= 3 and colmap["time_ratio"] is None
    assert set(colmap["stage_seconds"]) == {"extract", "match", "map"} and "features" in ours["stage_seconds"]
    assert (out / "reconstruction.md").read_text().count("\n| ") == 3          # header + 2 rows
    assert (out / "default_nfeatures=2000" / "features.h5").is_file()
    assert (out / "colmap-sift" / "database.db").is_file()


def test_eval_reconstruct_needs_a_strecha_scene(tmp_path):
    from hardmatch.cli import main

    (tmp_path / "images").mkdir()
    result = CliRunner().invoke(main, ["eval", str(tmp_path), "--reconstruct", "--out", str(tmp_path / "o")])
    assert result.exit_code == 5
    assert result.output.count("\n") == 1 and "cameras" in result.output
