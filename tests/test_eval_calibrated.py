"""``hardmatch eval`` on calibrated pairs (real Strecha photos, real matching and RANSAC; skipped when
../shared is absent): pose columns and summaries, the feature cache, ``--max-axis-angle``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from hardmatch.cli import main
from hardmatch.datasets.registry import detect_format, read_dataset
from hardmatch.datasets.strecha import read_strecha_pairs
from hardmatch.evaluation.evaluate import evaluate
from hardmatch.evaluation.feature_cache import FeatureCache, feature_key
from hardmatch.evaluation.runner import Runner
from hardmatch.evaluation.specs import Task, parse_pipeline_spec
from hardmatch.geometry.pose_metrics import pose_maa

from .conftest import need_shared

#: OpenCV SIFT descriptors at a small working size keep these tests quick; the code paths are those of any preset.
SIFT_E = "sift:max_side=640,nfeatures=2000,geometry=essential"
SIFT_F = "sift:max_side=640,nfeatures=2000"


@pytest.fixture(scope="module")
def scene():
    return need_shared("data/strecha/Herz-Jesus-P8")


@pytest.fixture(scope="module")
def three_pairs(scene):
    """Pairs 0000-0001, 0000-0002, 0001-0002: three images, each in two pairs."""
    wanted = {"0000-0001", "0000-0002", "0001-0002"}
    return [s for s in read_strecha_pairs(scene) if s.name in wanted]


def test_registry_detects_and_reads_strecha(scene):
    assert detect_format(scene) == "strecha" and detect_format(scene.parent) == "strecha"
    assert len(read_dataset(scene)) == 28


def test_features_are_extracted_once_per_image_and_feature_options(three_pairs):
    runner = Runner()
    specs = [parse_pipeline_spec(SIFT_E), parse_pipeline_spec(SIFT_F)]
    rows = [runner.run(Task("hj", spec, pair, spec.forced_geometry() or pair.geometry))
            for spec in specs for pair in three_pairs]
    # 3 images for the first pipeline; the second differs only in geometry and reuses them all
    assert (runner.features.misses, runner.features.hits) == (3, 9)
    assert all(r["matched"] and r["pose_err_deg"] < 5 for r in rows), rows
    # a hit carries no extraction time: only the row that extracted an image shows it
    assert "time_describe1" in rows[0] and "time_describe1" not in rows[3]


def test_feature_key_ignores_matching_options_only():
    base = parse_pipeline_spec(SIFT_F).config
    assert feature_key(base) == feature_key(base.with_options(geometry="essential", ratio=0.7, seed=3))
    assert feature_key(base) != feature_key(base.with_options(max_side=800))
    assert feature_key(base) != feature_key(base.with_options(nfeatures=1000))


def test_cache_capacity_bounds_the_entries(three_pairs):
    from hardmatch.twoview.pipeline import Pipeline

    cache = FeatureCache(capacity=1)
    pipeline = Pipeline(parse_pipeline_spec(SIFT_F).config)
    first = cache.features(pipeline, three_pairs[0].image1)
    cache.features(pipeline, three_pairs[0].image2)
    again = cache.features(pipeline, three_pairs[0].image1)  # evicted: extracted again
    assert (cache.hits, cache.misses) == (0, 3)
    assert np.array_equal(first.lafs, again.lafs)


def test_evaluate_writes_pose_columns_and_summary(three_pairs, tmp_path):
    rows = evaluate(three_pairs, [SIFT_E, SIFT_F], tmp_path, progress=False, dataset_name="hj")
    assert len(rows) == 6
    for row in rows:
        assert row["pose_reported"] and row["error_px"] is None
        assert row["pose_err_deg"] == max(row["rot_err_deg"], row["t_err_deg"])
    summary = json.loads((tmp_path / "summary.json").read_text())["pipelines"]
    for entry, label in zip(summary, [SIFT_E, SIFT_F]):
        errors = [r["pose_err_deg"] for r in rows if r["pipeline"] == label]
        assert entry["maa10"] == pytest.approx(pose_maa(errors, 10), abs=1e-4)
        assert entry["pose_pairs"] == 3 and entry["wrong_poses"] == 0
    table = (tmp_path / "summary.md").read_text()
    assert "pose mAA@5 / @10 / @20" in table and "| 0/3 |" in table


def test_cli_eval_with_max_axis_angle(scene, tmp_path):
    # within 5 degrees of optical axis: 0000-0001 (3.5) and 0005-0006 (3.9) only
    result = CliRunner().invoke(main, ["eval", str(scene), "--max-axis-angle", "5", "--pipeline", SIFT_E,
                                       "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "2 pairs x 1 pipeline(s)" in result.output and "wrong poses" in result.output
    csv = (tmp_path / "out" / "results.csv").read_text().splitlines()
    assert [line.split(",")[1] for line in csv[1:]] == ["0000-0001", "0005-0006"]
    assert "rot_err_deg" in csv[0] and "t_err_deg" in csv[0]
    bad = CliRunner().invoke(main, ["eval", str(scene), "--max-axis-angle", "0.1", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 5 and "no pair of views with optical axes 0 to 0.1 degrees apart" in bad.output
    # the other end: at least 3.7 degrees apart leaves out 0000-0001 (3.5)
    result = CliRunner().invoke(main, ["eval", str(scene), "--min-axis-angle", "3.7", "--max-axis-angle", "5",
                                       "--pipeline", SIFT_E, "--out", str(tmp_path / "out2")])
    assert result.exit_code == 0, result.output
    csv = (tmp_path / "out2" / "results.csv").read_text().splitlines()
    assert [line.split(",")[1] for line in csv[1:]] == ["0005-0006"]
