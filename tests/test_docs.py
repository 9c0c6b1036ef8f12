"""The README front page, the docs/ pages and tools/gpu.sh: what they promise holds.

The README's two set-up commands are what CI runs (.ci/run), its Python example runs as written,
every relative link of README.md, docs/*.md and benchmarks/RESULTS.md names a file that exists, and
the GPU script parses, refuses bad usage with one line and prints its plan with --dry-run.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

from .conftest import REPO, need_shared, shared_dir

README = REPO / "README.md"
GPU_SH = REPO / "tools" / "gpu.sh"
PAGES = [README, REPO / "benchmarks" / "RESULTS.md", *sorted((REPO / "docs").glob("*.md"))]


def test_readme_is_a_front_page_with_the_two_commands_ci_runs():
    text = README.read_text()
    assert len(text.splitlines()) <= 120
    ci = (REPO / ".ci" / "run").read_text()
    for command in ('pip install torch==2.13.0 -e ".[test]"', "python -m pytest -q"):
        assert f"\n{command}\n" in text, command
        assert command.replace("pip install", "") in ci, command  # CI may say python -m pip


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_name_files_that_exist(page):
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text())
    local = [link for link in links if not re.match(r"[a-z]+:", link)]
    missing = [link for link in local if not (page.parent / link).exists()]
    assert not missing, f"{page.name}: {missing}"


def test_results_keeps_the_blocks_the_benchmarks_rewrite():
    from benchmarks.__main__ import BEGIN, END

    text = (REPO / "benchmarks" / "RESULTS.md").read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    for key in ("cuda:8000", "cuda:2048"):
        assert text.count(f"<!-- speed-table:{key} -->") == 1 and text.count(f"<!-- /speed-table:{key} -->") == 1


def test_readme_python_example_runs_as_written():
    need_shared("data/homogr/BostonA.jpg")
    block = re.search(r"## Python API\n\n```python\n(.*?)```", README.read_text(), re.S).group(1)
    assert len(block.strip().splitlines()) <= 12
    scope: dict = {}
    exec(compile(block.replace("../shared", str(shared_dir())), "README.md", "exec"), scope)  # noqa: S102
    result = scope["result"]
    assert result.success and result.H.shape == (3, 3) and result.num_inliers >= 100
    assert scope["p1"].shape == scope["p2"].shape == (result.num_inliers, 2)
    assert scope["d1"].dtype == np.float32 and scope["d1"].shape == (len(scope["kp1"]), 128)
    assert sum(len(m) == 2 for m in scope["matches"]) > 100


def _gpu_sh(*args, env=None):
    return subprocess.run(["bash", str(GPU_SH), *args], cwd=REPO, capture_output=True, text=True, env=env,
                          timeout=60)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_gpu_script_parses_and_refuses_bad_usage_in_one_line():
    assert subprocess.run(["bash", "-n", str(GPU_SH)], capture_output=True).returncode == 0
    done = _gpu_sh("nonsense")
    assert done.returncode == 2 and "gpu.sh prepare" in done.stderr
    done = _gpu_sh("ablation", "nosuch")
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0 and "nosuch" in done.stderr
    done = _gpu_sh("prepare", "everything")
    assert done.returncode == 2 and done.stderr.startswith("gpu.sh: usage")


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_gpu_script_dry_run_plans_a_prepare_without_touching_the_checkout(tmp_path):
    import os

    shared = need_shared("data/homogr/BostonA.jpg").parents[2]
    env = dict(os.environ, HARDMATCH_SHARED=str(shared), GPU_DIR=str(tmp_path / "gpu"))
    done = _gpu_sh("--dry-run", "prepare", "bench", env=env)
    assert done.returncode == 0, done.stderr
    assert "BostonA.jpg" in done.stdout and 'gpu.sh bench' in done.stdout
    assert not (tmp_path / "gpu").exists()  # a dry run only prints
