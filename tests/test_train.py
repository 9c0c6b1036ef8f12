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

from hardmatch.train.augment import augment_pairs
from hardmatch.train.loss import hardnet_loss
from hardmatch.core import laf as laflib
from hardmatch.train.synthetic import (
    SyntheticPairs, WarpConfig, jpeg_roundtrip, occlude, photometric, shading_gain, source_options,
)
from hardmatch.train.trainer import TrainConfig, resolve_runtime, train
from hardmatch.train.validate import fpr_at_recall

from .conftest import need_shared, synthetic_texture


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


def _match_margin(a, p):
    """Median normalised correlation of matching pairs minus that of shuffled pairs."""

    def norm(x):
        x = x.reshape(len(x), -1).astype(np.float32)
        return (x - x.mean(1, keepdims=True)) / (x.std(1, keepdims=True) + 1e-3)

    na, npos = norm(a), norm(p)
    return np.median((na * npos).mean(1)) - np.median((na * np.roll(npos, 7, axis=0)).mean(1))


def test_synthetic_pairs_show_the_same_point(image_folder):
    source = SyntheticPairs([image_folder], seed=0, pairs_per_warp=32)
    a, p, labels = source.sample(96)
    assert a.shape == p.shape == (96, 1, 32, 32) and a.dtype == np.uint8 and labels.shape == (96,)
    assert _match_margin(a, p) > 0.2


# --- harder synthetic data (off by default), each on real photos ---------------------------------

NEUTRAL = dict(gamma=(1.0, 1.0), contrast=(1.0, 1.0), brightness=0.0, blur_prob=0.0, noise_prob=0.0)


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    """Three real photos (bsd100, 481x321) in a folder of their own."""
    bsd = need_shared("data/train-images/bsd100")
    folder = tmp_path_factory.mktemp("photos")
    for path in sorted(bsd.glob("*.png"))[:3]:
        (folder / path.name).symlink_to(path)
    return folder


def _photo(folder):
    return cv2.imread(str(sorted(folder.glob("*.png"))[0]), cv2.IMREAD_GRAYSCALE)


def _blockiness(image):
    """Mean |horizontal step| across 8-pixel block borders over the mean step elsewhere."""
    steps = np.abs(np.diff(image.astype(np.float32), axis=1))  # step between columns x and x+1
    border = (np.arange(steps.shape[1]) % 8) == 7
    return steps[:, border].mean() / steps[:, ~border].mean()


def test_jpeg_option_adds_block_artefacts(photo_folder):
    image = _photo(photo_folder)
    rng = np.random.default_rng(0)
    plain = photometric(image, rng, WarpConfig(**NEUTRAL))
    assert np.array_equal(plain, image)  # neutral settings leave the photo alone
    jpeg = photometric(image, rng, WarpConfig(**NEUTRAL, jpeg_prob=1.0, jpeg_quality=(15, 15)))
    assert np.array_equal(jpeg, jpeg_roundtrip(image, 15))
    assert _blockiness(jpeg) > 1.1 * _blockiness(image)
    assert np.abs(jpeg.astype(int) - image).mean() > 1.0


def test_shading_option_varies_illumination_smoothly(photo_folder):
    image = _photo(photo_folder)
    cfg = WarpConfig(**NEUTRAL, shading_prob=1.0, max_shading=2.0, shadow_prob=1.0)
    gain = shading_gain(image.shape, np.random.default_rng(3), cfg)
    assert gain.shape == image.shape and gain.min() > 0
    assert np.percentile(gain, 95) / np.percentile(gain, 5) > 1.3  # spatially varying, not a global gain
    assert np.abs(np.diff(np.log(gain), axis=1)).max() < 0.2  # smooth: no step between neighbouring pixels
    valid = (image > 40) & (image < 200)
    spreads = []
    for seed in range(5):  # the gradient's strength is random: the strongest of a few draws
        ratio = photometric(image, np.random.default_rng(seed), cfg).astype(np.float32)[valid] / image[valid]
        spreads.append(np.percentile(ratio, 95) / np.percentile(ratio, 5))
    assert max(spreads) > 1.3 and min(spreads) > 1.02  # photometric applies it, every time with prob 1


def test_occlusion_option_hides_regions_and_drops_hidden_points(photo_folder):
    image = _photo(photo_folder)
    cfg = WarpConfig(occlusion_prob=1.0, max_occluders=3, max_occluder_size=0.4)
    out, covered = occlude(image, np.random.default_rng(1), cfg)
    assert 0.002 < covered.mean() < 0.5
    assert np.array_equal(out[~covered], image[~covered])  # untouched outside the occluders
    assert (out[covered] != image[covered]).mean() > 0.5 and out[covered].std() > 5  # texture, not a flat fill
    source = SyntheticPairs([photo_folder], seed=2, pairs_per_warp=32, cfg=cfg)
    a, p, _ = source.sample(128)
    assert len(a) == 128 and _match_margin(a, p) > 0.2  # still matching pairs: hidden points were dropped


def test_occluded_points_are_not_paired(photo_folder, monkeypatch):
    import hardmatch.train.synthetic as synthetic

    def cover_left_half(image, rng, cfg):
        covered = np.zeros(image.shape, bool)
        covered[:, : image.shape[1] // 2] = True
        return image, covered

    monkeypatch.setattr(synthetic, "occlude", cover_left_half)
    identity = WarpConfig(max_rotation_deg=0.0, log2_scale=0.0, max_tilt=1.0, perspective=0.0, occlusion_prob=1.0)
    source = SyntheticPairs([photo_folder], seed=0, pairs_per_warp=64, cfg=identity)
    _, _, labels = source.sample(256)
    for label in labels[:64]:
        entry, keypoint = divmod(int(label), 1 << 20)
        image, lafs = source._image(entry)
        assert lafs[keypoint, 0, 2] >= image.shape[1] // 2 - 1  # warped = source position: right half only


def test_hessian_affine_keypoints_and_several_scales(photo_folder):
    source = SyntheticPairs([photo_folder], seed=0, pairs_per_warp=32, detector="hessaff", scales=(1.0, 0.5))
    assert source.num_entries == 6
    full, lafs = source._image(0)
    half, _ = source._image(1)
    assert abs(half.shape[0] - full.shape[0] / 2) <= 1 and abs(half.shape[1] - full.shape[1] / 2) <= 1
    assert len(lafs) > 100 and np.mean(laflib.anisotropy(lafs) > 1.1) > 0.3  # affine-adapted frames
    a, p, labels = source.sample(192)
    assert _match_margin(a, p) > 0.2
    entries = set((labels >> 20).tolist())
    assert any(e % 2 == 0 for e in entries) and any(e % 2 == 1 for e in entries)  # both scales were drawn
    dog = SyntheticPairs([photo_folder], seed=0)
    assert not np.allclose(dog._image(0)[1][:50, :, 2].mean(0), lafs[:50, :, 2].mean(0))  # another detector


def test_keypoints_detected_once_in_a_pool_equal_per_image_detection(photo_folder):
    """The trainer's shared pre-detection (several processes) gives each entry the same image and
    frames as lazy detection, and a source built from it samples without detecting again."""
    lazy = SyntheticPairs([photo_folder], seed=0, scales=(1.0, 0.5))
    entries = SyntheticPairs([photo_folder], seed=0, scales=(1.0, 0.5)).detect_all(processes=2)
    assert len(entries) == lazy.num_entries >= 2
    for index, (image, lafs) in enumerate(entries):
        ref_image, ref_lafs = lazy._image(index)
        assert np.array_equal(image, ref_image) and np.allclose(lafs, ref_lafs)
    shared = SyntheticPairs([photo_folder], seed=3, scales=(1.0, 0.5), entries=entries)
    shared.detector = None  # any detection now would fail
    a, p, labels = shared.sample(64)
    assert len(a) == len(p) == len(labels) == 64
    with pytest.raises(ValueError, match="entries"):
        SyntheticPairs([photo_folder], entries=entries[:1])


def test_photometric_table_keeps_grey_level_order_and_range():
    """Gamma, contrast and brightness go through one 256-entry table: monotone, in 0..255."""
    ramp = np.tile(np.arange(256, dtype=np.uint8), (4, 1))
    cfg = WarpConfig(blur_prob=0.0, noise_prob=0.0)
    for seed in range(5):
        out = photometric(ramp, np.random.default_rng(seed), cfg)
        assert out.dtype == np.uint8 and out.shape == ramp.shape
        assert np.all(np.diff(out[0].astype(int)) >= 0) and out[0, -1] > out[0, 0]


def test_source_options_parse_and_reject():
    opts = source_options(["jpeg_prob=0.3", "jpeg_quality=30,90", "scales=1,0.5,0.25", "detector=dog+hessaff"])
    assert opts["cfg"].jpeg_prob == 0.3 and opts["cfg"].jpeg_quality == (30, 90)
    assert opts["scales"] == (1.0, 0.5, 0.25) and opts["detector"] == "dog+hessaff"
    assert source_options([])["cfg"] == WarpConfig()
    for bad in ("nope=1", "jpeg_prob=x", "jpeg_quality=5", "detector=sift", "gamma"):
        with pytest.raises(ValueError):
            source_options([bad])


class _FixedBatches:
    def __init__(self, folder):
        self.batch = SyntheticPairs([folder], seed=3, pairs_per_warp=32).sample(64)

    def sample(self, n):
        return self.batch


def test_short_run_loss_goes_down(image_folder, tmp_path):
    batch_source = _FixedBatches(image_folder)
    cfg = TrainConfig(out_dir=str(tmp_path / "run"), steps=20, batch_size=64, workers=0, augment=False,
                      checkpoint_every=10, dropout=0.0, device="cpu")
    summary = train(cfg, lambda seed: batch_source)
    losses = np.loadtxt(tmp_path / "run" / "log.csv", delimiter=",", skiprows=1, usecols=1)
    assert len(losses) == 20
    assert losses[-3:].mean() < 0.7 * losses[:3].mean()
    assert (tmp_path / "run" / "model.pth").is_file() and summary["steps"] == 20
    assert summary["pairs"] == 20 * 64 and summary["pairs_per_s"] > 0 and summary["precision"] == "fp32"


def test_log_interval_and_time_budget(image_folder, tmp_path):
    batch_source = _FixedBatches(image_folder)
    cfg = TrainConfig(out_dir=str(tmp_path / "run"), steps=10, batch_size=64, workers=0, log_every=4, device="cpu")
    train(cfg, lambda seed: batch_source)
    rows = np.loadtxt(tmp_path / "run" / "log.csv", delimiter=",", skiprows=1, usecols=(0, 3))
    assert list(rows[:, 0]) == [1, 4, 8, 10]  # first step, every 4th, last
    assert np.all(rows[:, 1] > 0)  # pairs/s of each interval
    # a time budget far shorter than the steps: stops when it is spent, the lr decaying with the time used
    cfg = TrainConfig(out_dir=str(tmp_path / "timed"), steps=100000, batch_size=8, workers=0, device="cpu",
                      minutes=3.0 / 60, checkpoint_every=10 ** 6)
    summary = train(cfg, lambda seed: batch_source)
    assert 1 <= summary["steps"] < 100000 and summary["train_s"] >= 3.0
    log = np.atleast_2d(np.loadtxt(tmp_path / "timed" / "log.csv", delimiter=",", skiprows=1, usecols=(0, 2, 4)))
    steps, lrs, elapsed = log.T
    assert steps[-1] == summary["steps"] and np.all(np.diff(lrs) <= 0) and lrs[0] <= cfg.lr
    # lr of a step = lr0 * (1 - time before it / budget) <= lr0 * (1 - time logged after the previous step / budget)
    assert np.all(lrs[1:] <= cfg.lr * (1 - (elapsed[:-1] - 0.05) / 3.0) + 1e-5)  # elapsed is logged to 0.1 s
    assert (tmp_path / "timed" / "model.pth").is_file()


def test_runtime_defaults_per_device():
    assert resolve_runtime(TrainConfig(), torch.device("cpu")) == ("fp32", 1, 1)
    precision, workers, log_every = resolve_runtime(TrainConfig(), torch.device("cuda"))
    assert precision == "bf16" and 1 <= workers <= 15 and log_every == 20
    assert resolve_runtime(TrainConfig(precision="fp16", workers=3, log_every=7), torch.device("cuda")) == ("fp16", 3, 7)
    with pytest.raises(ValueError):
        resolve_runtime(TrainConfig(precision="fp8"), torch.device("cpu"))


def _reference_augment(anchors, positives, flip, turns, angle, shift):
    """The augmentation one pair at a time: flip, rot90 on both, then turn/shift the positive (degrees, pixels)."""
    out_a, out_p = [], []
    size = anchors.shape[-1]
    for i in range(len(anchors)):
        a, p = anchors[i:i + 1], positives[i:i + 1]
        if flip[i]:
            a, p = a.flip(-1), p.flip(-1)
        a, p = torch.rot90(a, int(turns[i]), dims=(-2, -1)), torch.rot90(p, int(turns[i]), dims=(-2, -1))
        c, s = np.cos(np.deg2rad(angle[i])), np.sin(np.deg2rad(angle[i]))
        theta = torch.tensor([[[c, -s, 2 * shift[i][0] / size], [s, c, 2 * shift[i][1] / size]]], dtype=torch.float32)
        grid = torch.nn.functional.affine_grid(theta, list(p.shape), align_corners=False)
        p = torch.nn.functional.grid_sample(p, grid, mode="bilinear", padding_mode="border", align_corners=False)
        out_a.append(a)
        out_p.append(p)
    return torch.cat(out_a), torch.cat(out_p)


def test_augmentation_exact_flips_and_turns_when_random_motion_is_zero():
    torch.manual_seed(0)
    a, p = torch.rand(64, 1, 32, 32) * 255, torch.rand(64, 1, 32, 32) * 255
    out_a, out_p = augment_pairs(a, p, torch.Generator().manual_seed(3), max_rotation_deg=0.0, max_shift_px=0.0)
    replay = torch.Generator().manual_seed(3)
    flip = torch.rand(64, generator=replay) < 0.5
    turns = torch.randint(0, 4, (64,), generator=replay)
    assert len(set(zip(flip.tolist(), turns.tolist()))) == 8  # all eight flip/turn groups occur
    ref_a, ref_p = _reference_augment(a, p, flip, turns, np.zeros(64), np.zeros((64, 2)))
    assert torch.equal(out_a, ref_a) and torch.equal(out_p, ref_p)  # bit-exact: no interpolation


def test_augmentation_matches_per_pair_reference():
    torch.manual_seed(1)
    a, p = torch.rand(48, 1, 32, 32) * 255, torch.rand(48, 1, 32, 32) * 255
    out_a, out_p = augment_pairs(a, p, torch.Generator().manual_seed(4), max_rotation_deg=10.0, max_shift_px=1.0)
    replay = torch.Generator().manual_seed(4)
    flip = torch.rand(48, generator=replay) < 0.5
    turns = torch.randint(0, 4, (48,), generator=replay)
    angle = ((torch.rand(48, generator=replay) * 2 - 1) * 10.0).double().numpy()
    shift = ((torch.rand(48, 2, generator=replay) * 2 - 1) * 1.0).double().numpy()
    assert np.abs(angle).max() > 5 and np.abs(shift).max() > 0.5
    ref_a, ref_p = _reference_augment(a, p, flip, turns, angle, shift)
    assert torch.equal(out_a, ref_a)
    assert (out_p - ref_p).abs().max() < 0.05  # same motion, same sampling: float rounding only
    assert (out_p - out_a).abs().mean() > 1.0  # the positive did move


def _train_cmd(folder, out, steps, extra=()):
    return [sys.executable, "-m", "hardmatch.cli", "train", "--images", str(folder), "--out", str(out),
            "--steps", str(steps), "--batch-size", "16", "--checkpoint-every", "2", "--workers", "0",
            "--val-every", "1000", "--device", "cpu", *extra]


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
    """Two processes on the CPU (gloo), also where CUDA is present: auto would pick NCCL on one GPU."""
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           "-m", "hardmatch.cli", "train", "--images", str(image_folder), "--out", str(out), "--steps", "3",
           "--batch-size", "8", "--workers", "0", "--no-baselines", "--device", "cpu"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (out / "model.pth").is_file()
    rows = np.loadtxt(out / "log.csv", delimiter=",", skiprows=1, usecols=0)
    assert list(np.atleast_1d(rows)) == [1, 2, 3]


def test_cli_rejects_bad_synthetic_option_in_one_line(image_folder, tmp_path):
    from click.testing import CliRunner

    from hardmatch.cli import main

    result = CliRunner().invoke(main, ["train", "--images", str(image_folder), "--out", str(tmp_path / "run"),
                                       "--synth", "jpeg_prob=lots", "--device", "cpu"])
    assert result.exit_code == 2
    assert "jpeg_prob=lots" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run" / "log.csv").exists()


# --- TensorBoard (optional dependency) -------------------------------------------------------------

def _tensorboard_scalars(folder):
    """{tag: [(step, value), ...]} read back from the event files in ``folder``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})  # 0: keep every event
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def _csv_log(path):
    """The rows of log.csv as dicts of floats (None for empty validation cells)."""
    import csv

    with open(path, newline="") as f:
        return [{k: float(v) if v else None for k, v in row.items()} for row in csv.DictReader(f)]


def test_tensorboard_logs_the_csv_steps(image_folder, tmp_path):
    """``hardmatch train --tensorboard DIR``: a short real run whose event files hold loss, lr, pairs/s
    and validation FPR95/FDR95 at exactly the CSV's steps, with the CSV's values."""
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (extra hardmatch[tensorboard])")
    from click.testing import CliRunner

    from hardmatch.cli import main

    out, board = tmp_path / "run", tmp_path / "board"
    args = ["train", "--images", str(image_folder), "--val-images", str(image_folder), "--val-pairs", "200",
            "--out", str(out), "--tensorboard", str(board), "--steps", "6", "--batch-size", "16", "--workers", "0",
            "--log-every", "2", "--val-every", "3", "--no-baselines", "--device", "cpu"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    rows = _csv_log(out / "log.csv")
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 6]  # first step, every 2nd, validations (3, 6), last
    scalars = _tensorboard_scalars(board)
    assert set(scalars) == {"train/loss", "train/lr", "train/pairs_per_s", "val/fpr95", "val/fdr95"}
    # the CSV rounds loss and lr to 5 decimals, pairs/s to 1
    for tag, column, atol in (("train/loss", "loss", 6e-6), ("train/lr", "lr", 6e-6),
                              ("train/pairs_per_s", "pairs_per_s", 0.051)):
        assert [s for s, _ in scalars[tag]] == [r["step"] for r in rows], tag
        np.testing.assert_allclose([v for _, v in scalars[tag]], [r[column] for r in rows], rtol=1e-6, atol=atol)
    validated = [r for r in rows if r["fpr95"] is not None]
    assert [s for s, _ in scalars["val/fpr95"]] == [r["step"] for r in validated] == [3, 6]
    np.testing.assert_allclose([v for _, v in scalars["val/fpr95"]], [r["fpr95"] for r in validated], atol=1e-5)
    lrs = [v for _, v in scalars["train/lr"]]
    assert lrs[0] > lrs[-1] > 0 and all(v > 0 for _, v in scalars["train/pairs_per_s"])


def test_tensorboard_resume_replaces_steps_after_the_checkpoint(image_folder, tmp_path):
    """A run interrupted after its checkpoint logged steps the resumed run logs again: the event
    files show each step once (the resumed run's), like a run that was never interrupted."""
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (extra hardmatch[tensorboard])")
    batch_source = _FixedBatches(image_folder)
    out, board = tmp_path / "run", tmp_path / "board"
    cfg = TrainConfig(out_dir=str(out), steps=6, batch_size=16, workers=0, device="cpu", tensorboard=str(board))
    train(cfg, lambda seed: batch_source)
    ckpt = out / "checkpoint.pth"
    state = torch.load(ckpt, weights_only=True)
    state["step"] = 4  # as if killed after logging steps 5 and 6 but before their checkpoint
    torch.save(state, ckpt)
    first = dict(_tensorboard_scalars(board)["train/lr"])
    assert sorted(first) == list(range(1, 7))
    cfg.steps = 8
    train(cfg, lambda seed: batch_source, resume=True)
    scalars = _tensorboard_scalars(board)
    for tag in ("train/loss", "train/lr", "train/pairs_per_s"):
        assert [s for s, _ in scalars[tag]] == list(range(1, 9)), tag
    lr = dict(scalars["train/lr"])
    assert [lr[s] for s in range(1, 5)] == [first[s] for s in range(1, 5)]  # kept from the first run
    # steps 5 and 6 are the resumed run's: lr decays over 8 steps now (0.1 * (1 - 4/8) at step 5, not 1 - 4/6)
    np.testing.assert_allclose([lr[5], lr[6]], [0.1 * (1 - 4 / 8), 0.1 * (1 - 5 / 8)], rtol=1e-5)


def test_tensorboard_missing_is_one_line_before_training(image_folder, tmp_path, monkeypatch):
    """Without the tensorboard package, --tensorboard stops with one line and exit 2, nothing trained."""
    from click.testing import CliRunner

    from hardmatch.cli import main

    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed: importing it fails
    result = CliRunner().invoke(main, ["train", "--images", str(image_folder), "--out", str(tmp_path / "run"),
                                       "--tensorboard", str(tmp_path / "board"), "--steps", "2", "--device", "cpu"])
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and "tensorboard" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists() and not (tmp_path / "board").exists()
