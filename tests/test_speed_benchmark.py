"""benchmarks/speed.py runs end to end (tiny settings, CPU, the torch path) and writes its table."""

import os
import subprocess
import sys

import pytest

from .conftest import REPO, need_shared


@pytest.mark.slow  # a benchmark, optional: 98 s on 2 cores at load 30 (not measured idle; mostly model set-up)
def test_speed_benchmark_runs_on_cpu_and_writes_its_table(tmp_path):
    need_shared("data/homogr/BostonA.jpg")
    need_shared("weights/AffNet.pth")
    results_md = tmp_path / "RESULTS.md"
    results_md.write_text("# Results\n\nkept\n\n<!-- speed-table:cpu:100 -->\nold\n<!-- /speed-table:cpu:100 -->\n\ntail\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "speed.py"), "--device", "cpu", "--path", "torch",
         "--max-side", "160", "--nfeatures", "100", "--repeat", "1", "--no-warmup", "--no-kornia", "--compare-paths",
         "--hardnet-batches", "64",
         "--write-results", str(results_md)],
        capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    text = results_md.read_text()
    assert text.startswith("# Results\n\nkept\n") and text.endswith("\n\ntail\n") and "old" not in text
    for row in ("| hardmatch DoG+HardNet |", "|   same, --path opencv |", "| OpenCV SIFT (CPU) |",
                "| pair: hardmatch default |",
                "| pair graf1-5: hardmatch affine |", "HardNet alone, torch fp32, batch 64"):
        assert row in text, row
    assert "device cpu; hardmatch path torch" in text
