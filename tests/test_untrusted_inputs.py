"""Inputs that must not be trusted (issue 29, case 8): weights, checkpoints and pairs files.

- the hashes of the shipped weights live in the package; a replaced file with a matching ``.sha256``
  beside it is refused; a ``.sha256`` beside a user's file catches a corrupt copy;
- an ``.onnx`` given as ``--weights`` and a ``train --resume`` checkpoint holding pickled code are
  refused with one line (and the code does not run);
- pairs files: paths leaving the file's folder are refused unless allowed; a repeated pair counts once.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from hardmatch.core.errors import DatasetError, WeightsError
from hardmatch.datasets.registry import read_dataset
from hardmatch.nets import weights
from hardmatch.nets.hardnet import HardNet
from hardmatch.train import trainer

from .conftest import synthetic_texture, write_image, write_matrix

CLI = [sys.executable, "-m", "hardmatch.cli"]


def run(*args, cwd=None, env=None, timeout=300):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env={**os.environ, **(env or {})})


def one_error_line(proc) -> str:
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr
    assert lines[0].startswith("hardmatch: error:"), lines[0]
    return lines[0]


class Evil:
    """Pickled, it runs a shell command on load (what weights_only loading must refuse)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"echo pwned > {self.marker}",))


# ---- weights --------------------------------------------------------------------------------------


def test_shipped_hashes_are_kept_in_the_package_and_match_the_files():
    shipped = {spec.filename: spec for spec in weights.REGISTRY.values() if spec.url is None}
    assert set(shipped) == set(weights.SHIPPED_SHA256)
    for filename, spec in shipped.items():
        path = weights.MODELS_DIR / filename
        assert spec.sha256 == weights.SHIPPED_SHA256[filename] == weights.sha256_of(path), filename
        beside = path.with_suffix(".sha256").read_text().split()[0]  # for people and tools: the same hash
        assert beside == spec.sha256, filename


def tampered_models_dir(folder: Path) -> Path:
    """A copy of the shipped folder whose hardnet-synth.pth is altered, with a matching .sha256 beside it."""
    folder.mkdir()
    for source in weights.MODELS_DIR.iterdir():
        (folder / source.name).write_bytes(source.read_bytes())
    state = torch.load(folder / "hardnet-synth.pth", weights_only=True)
    state["features.0.weight"] = torch.zeros_like(state["features.0.weight"])
    torch.save(state, folder / "hardnet-synth.pth")
    digest = hashlib.sha256((folder / "hardnet-synth.pth").read_bytes()).hexdigest()
    (folder / "hardnet-synth.sha256").write_text(f"{digest}  hardnet-synth.pth\n")
    return folder


def test_replaced_shipped_weights_are_refused_despite_a_matching_sha256_beside_them(tmp_path, monkeypatch):
    folder = tampered_models_dir(tmp_path / "models")
    monkeypatch.setattr(weights, "MODELS_DIR", folder)
    with pytest.raises(WeightsError, match="does not match the registry's"):
        weights.load_hardnet("hardnet-synth")
    assert weights.load_hardnet("hardnet-synth-v2") is not None  # the untouched file still loads


def test_replaced_shipped_weights_through_the_cli(tmp_path):
    folder = tampered_models_dir(tmp_path / "models")
    write_image(tmp_path / "patches.png", synthetic_texture(65 * 2, 65, seed=1))
    proc = run("extract", "patches.png", "out.txt", "--weights", "hardnet-synth", cwd=tmp_path,
               env={"HARDMATCH_MODELS": str(folder)})
    assert proc.returncode == 4, proc.stderr
    assert "sha256" in one_error_line(proc) and not (tmp_path / "out.txt").exists()


def test_sha256_beside_a_user_file_catches_a_corrupt_copy(tmp_path):
    path = tmp_path / "mine.pth"
    torch.save(HardNet().state_dict(), path)
    (tmp_path / "mine.sha256").write_text(hashlib.sha256(path.read_bytes()).hexdigest() + "  mine.pth\n")
    assert weights.load_hardnet(path) is not None
    path.write_bytes(path.read_bytes()[:-100])  # truncated on the way
    with pytest.raises(WeightsError, match="corrupt or partial copy"):
        weights.load_state_dict(path)


def test_onnx_as_weights_is_one_line_exit_4(tmp_path):
    onnx = weights.MODELS_DIR / "hardnet-synth-v2-fp32.onnx"
    with pytest.raises(WeightsError, match=r"\.onnx is an exported model; --weights takes a \.pth state dict"):
        weights.load_state_dict(onnx)
    write_image(tmp_path / "a.png", synthetic_texture(100, 120))
    proc = run("pair", "a.png", "a.png", "--weights", onnx, "--backend", "torch", cwd=tmp_path)
    assert proc.returncode == 4 and ".onnx is an exported model" in one_error_line(proc)


def test_pickled_weights_warn_nothing_and_run_nothing(tmp_path):
    with open(tmp_path / "evil.pth", "wb") as handle:
        pickle.dump(Evil(tmp_path / "pwned"), handle, protocol=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's pickle-protocol warning would be a second stderr line
        with pytest.raises(WeightsError, match="pickled objects other than tensors; nothing in it was run"):
            weights.load_state_dict(tmp_path / "evil.pth")
    assert not (tmp_path / "pwned").exists()


# ---- training checkpoints ---------------------------------------------------------------------------


def test_malicious_resume_checkpoint_is_refused_with_one_line(tmp_path):
    write_image(tmp_path / "images" / "t.png", synthetic_texture(240, 320, seed=5))
    checkpoint = tmp_path / "run" / "checkpoint.pth"
    checkpoint.parent.mkdir()
    with open(checkpoint, "wb") as handle:
        pickle.dump(Evil(tmp_path / "pwned"), handle, protocol=4)
    before = checkpoint.read_bytes()
    proc = run("train", "--images", "images", "--out", "run", "--steps", "1", "--batch-size", "8", "--resume",
               "--no-baselines", cwd=tmp_path)
    assert proc.returncode == 4, proc.stderr
    line = one_error_line(proc)
    assert "checkpoint.pth: refused, not a checkpoint this trainer wrote" in line and "nothing in it was run" in line
    assert not (tmp_path / "pwned").exists()
    assert checkpoint.read_bytes() == before  # left for the user to look at, not overwritten


def test_foreign_checkpoint_without_training_keys_is_refused(tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "checkpoint.pth")
    with pytest.raises(WeightsError, match="needs state_dict, optimizer and step"):
        trainer._load_checkpoint(tmp_path / "checkpoint.pth")


def test_checkpoint_saves_through_a_unique_temporary(tmp_path):
    someone_elses = tmp_path / "checkpoint.pth.tmp"  # the old fixed name, e.g. another run's
    someone_elses.write_text("not mine")
    for step in (1, 2):
        trainer._save_atomic({"step": step}, tmp_path / "checkpoint.pth")
    assert torch.load(tmp_path / "checkpoint.pth", weights_only=True) == {"step": 2}
    assert someone_elses.read_text() == "not mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pth", "checkpoint.pth.tmp"]


# ---- pairs files ----------------------------------------------------------------------------------


@pytest.fixture
def dataset(tmp_path) -> Path:
    """``tmp/data/`` holding a.png, b.png, c.png, H.txt and sub/; ``tmp/outside.png`` and ``tmp/H.txt`` beside it."""
    for name in ("a", "b", "c"):
        write_image(tmp_path / "data" / f"{name}.png", synthetic_texture(120, 160, seed=ord(name)))
    write_image(tmp_path / "outside.png", synthetic_texture(120, 160, seed=9))
    write_matrix(tmp_path / "data" / "H.txt", np.eye(3))
    write_matrix(tmp_path / "H.txt", np.eye(3))
    (tmp_path / "data" / "sub").mkdir()
    return tmp_path / "data"


@pytest.mark.parametrize("line", ["../outside.png b.png none", "a.png {root}/outside.png none",
                                  "a.png b.png ../H.txt", "sub/../../outside.png b.png none"])
def test_pairs_file_paths_outside_its_folder_are_refused(dataset, line):
    listing = dataset / "pairs.txt"
    listing.write_text("a.png c.png none\n" + line.format(root=dataset.parent) + "\n")
    with pytest.raises(DatasetError, match=r"pairs.txt:2: .* is outside the dataset folder .*--allow-outside-root"):
        read_dataset(listing)
    assert len(read_dataset(listing, allow_outside_root=True)) == 2


def test_paths_that_stay_inside_are_read(dataset):
    (dataset / "sub" / "link.png").symlink_to(dataset.parent / "outside.png")  # a link inside is followed
    (dataset / "pairs.txt").write_text("sub/../a.png ./b.png H.txt\nsub/link.png c.png none\n")
    specs = read_dataset(dataset / "pairs.txt")
    assert [s.name for s in specs] == ["a-b", "link-c"] and np.allclose(specs[0].H, np.eye(3))


def test_calibrated_pairs_outside_the_folder_are_refused(dataset):
    numbers = " ".join(["0", "0"] + ["100 0 80 0 100 60 0 0 1"] * 2 + ["1 0 0 1 0 1 0 0 0 0 1 0 0 0 0 1"])
    (dataset / "pairs.txt").write_text(f"a.png ../outside.png {numbers}\n")
    with pytest.raises(DatasetError, match="outside the dataset folder"):
        read_dataset(dataset / "pairs.txt", "calibrated-pairs")
    assert read_dataset(dataset / "pairs.txt", "calibrated-pairs", allow_outside_root=True)[0].calibrated


def test_eval_refuses_outside_paths_with_one_line_and_the_option_allows_them(dataset):
    (dataset / "pairs.txt").write_text("a.png ../outside.png none\n")
    proc = run("eval", "data/pairs.txt", "--out", "out", "--pipeline", "sift", cwd=dataset.parent)
    assert proc.returncode == 5, proc.stderr
    assert "outside the dataset folder" in one_error_line(proc) and not (dataset.parent / "out").exists()
    allowed = run("eval", "data/pairs.txt", "--out", "out", "--pipeline", "sift", cwd=dataset.parent,
                  env={"HARDMATCH_ALLOW_OUTSIDE_ROOT": "1"})
    assert allowed.returncode == 0, allowed.stderr
    assert "| sift | 0/1 |" in allowed.stdout  # read, matched, and its non-match counted


def test_duplicate_pairs_are_counted_once_with_one_warning(dataset):
    (dataset / "pairs.txt").write_text("a.png b.png none\nb.png c.png none\n./a.png b.png none\n"
                                       "b.png a.png none\na.png b.png none\n")
    seen = []
    specs = read_dataset(dataset / "pairs.txt", warn=seen.append)
    assert [s.name for s in specs] == ["a-b", "b-c", "b-a"]  # the reversed pair is another pair
    assert len(seen) == 1 and "2 duplicate pair(s) counted once: a-b (x3)" in seen[0]
    with pytest.warns(UserWarning, match="duplicate"):
        read_dataset(dataset / "pairs.txt")
    proc = run("eval", "data/pairs.txt", "--out", "out", "--pipeline", "sift", cwd=dataset.parent)
    assert proc.returncode == 0, proc.stderr
    warnings_ = [line for line in proc.stderr.splitlines() if line.startswith("hardmatch: warning:")]
    assert len(warnings_) == 1 and "counted once" in warnings_[0]
    assert "| sift | 0/3 |" in proc.stdout
