"""Training: the loss and its variants, synthetic pairs, a short run that learns, resume after kill, DDP."""

import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import torch

from hardmatch.train.loss import hardnet_loss
from hardmatch.train.synthetic import SyntheticPairs
from hardmatch.train.trainer import TrainConfig, train
from hardmatch.train.validate import fpr_at_recall

from .conftest import synthetic_texture


def _unit(x):
    return torch.nn.functional.normalize(x, dim=1)


def test_hardest_in_batch_loss_equals_brute_force():
    torch.manual_seed(0)
    a, p = _unit(torch.randn(12, 8)), _unit(torch.randn(12, 8))
    d = torch.cdist(a, p)
    expected = []
    for i in range(12):
        row = min(d[i, j] for j in range(12) if j != i)
        col = min(d[k, i] for k in range(12) if k != i)
        expected.append(max(0.0, 1.0 + d[i, i] - min(row, col)))
    assert torch.isclose(hardnet_loss(a, p), torch.tensor(expected).mean(), atol=1e-5)


def test_variants_and_labels():
    torch.manual_seed(1)
    a, p = _unit(torch.randn(16, 8)), _unit(torch.randn(16, 8))
    for loss in ("triplet_margin", "softmin", "contrastive"):
        for sampling in ("hardest", "random"):
            value = hardnet_loss(a, p, loss=loss, sampling=sampling)
            assert torch.isfinite(value) and value >= 0
    # identical descriptors for matching pairs: zero distance; duplicate point ids are masked out
    same = _unit(torch.randn(4, 8))
    twins = torch.cat([same, same])
    labels = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    assert hardnet_loss(twins, twins) >= 1.0 - 1e-4  # a duplicate point looks like a negative at distance 0
    assert hardnet_loss(twins, twins, labels=labels) < 1.0
    with pytest.raises(ValueError):
        hardnet_loss(a, p, loss="nope")


def test_fpr95():
    d = np.array([0.1, 0.2, 0.3, 0.4, 0.15, 0.5, 0.9])
    m = np.array([1, 1, 1, 1, 0, 0, 0], bool)
    fpr, fdr = fpr_at_recall(d, m, recall=0.95)
    # threshold = 95% quantile of matching distances (0.385): accepts 0.1, 0.2, 0.3 and the 0.15 negative
    assert np.isclose(fpr, 1 / 3) and np.isclose(fdr, 1 / 4)


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    for seed in range(3):
        cv2.imwrite(str(folder / f"img{seed}.png"), synthetic_texture(240, 320, seed=seed))
    return folder


def test_synthetic_pairs_show_the_same_point(image_folder):
    source = SyntheticPairs([image_folder], seed=0, pairs_per_warp=32)
    a, p, labels = source.sample(96)
    assert a.shape == p.shape == (96, 1, 32, 32) and a.dtype == np.uint8 and labels.shape == (96,)

    def norm(x):
        x = x.reshape(len(x), -1).astype(np.float32)
        return (x - x.mean(1, keepdims=True)) / (x.std(1, keepdims=True) + 1e-3)

    na, npos = norm(a), norm(p)
    matching = (na * npos).mean(1)
    shuffled = (na * np.roll(npos, 7, axis=0)).mean(1)
    assert np.median(matching) > np.median(shuffled) + 0.2


class _FixedBatches:
    def __init__(self, folder):
        self.batch = SyntheticPairs([folder], seed=3, pairs_per_warp=32).sample(64)

    def sample(self, n):
        return self.batch


def test_short_run_loss_goes_down(image_folder, tmp_path):
    batch_source = _FixedBatches(image_folder)
    cfg = TrainConfig(out_dir=str(tmp_path / "run"), steps=20, batch_size=64, workers=0, augment=False,
                      checkpoint_every=10, dropout=0.0)
    summary = train(cfg, lambda seed: batch_source)
    losses = np.loadtxt(tmp_path / "run" / "log.csv", delimiter=",", skiprows=1, usecols=1)
    assert len(losses) == 20
    assert losses[-3:].mean() < 0.7 * losses[:3].mean()
    assert (tmp_path / "run" / "model.pth").is_file() and summary["steps"] == 20


def _train_cmd(folder, out, steps, extra=()):
    return [sys.executable, "-m", "hardmatch.cli", "train", "--images", str(folder), "--out", str(out),
            "--steps", str(steps), "--batch-size", "16", "--checkpoint-every", "2", "--workers", "0",
            "--val-every", "1000", *extra]


def test_resume_after_kill(image_folder, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(_train_cmd(image_folder, out, 400), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = out / "checkpoint.pth"
    deadline = time.time() + 300
    while time.time() < deadline and not (ckpt.is_file() and torch.load(ckpt, weights_only=True)["step"] >= 4):
        time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    step = torch.load(ckpt, weights_only=True)["step"]
    assert 4 <= step < 400
    done = subprocess.run(_train_cmd(image_folder, out, step + 3, ["--resume", "--no-baselines"]),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"resumed from {ckpt} at step {step}" in done.stderr
    assert torch.load(ckpt, weights_only=True)["step"] == step + 3
    steps_logged = np.loadtxt(out / "log.csv", delimiter=",", skiprows=1, usecols=0)
    assert steps_logged[-1] == step + 3 and (out / "model.pth").is_file()


def test_ddp_two_cpu_processes(image_folder, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           "-m", "hardmatch.cli", "train", "--images", str(image_folder), "--out", str(out), "--steps", "3",
           "--batch-size", "8", "--workers", "0", "--no-baselines"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (out / "model.pth").is_file()
    rows = np.loadtxt(out / "log.csv", delimiter=",", skiprows=1, usecols=0)
    assert list(np.atleast_1d(rows)) == [1, 2, 3]
