"""HardNet trainer: SGD with linear decay, augmentation, validation, atomic resumable checkpoints, DDP.

Recipe of the paper: SGD lr 0.1, momentum 0.9, weight decay 1e-4, learning rate decayed linearly
to 0 over the run, batches of n pairs with the hardest-in-batch loss. A *source* is any object with
``sample(n) -> (anchors (n,1,32,32) uint8, positives (n,1,32,32) uint8, labels (n,) int64)``:
:class:`~hardmatch.train.synthetic.SyntheticPairs`, PhotoTour or HPatches patch readers.

Speed: loader worker processes draw uint8 batches (pinned memory on CUDA) that are copied to the
training device without blocking; augmentation runs there (:mod:`hardmatch.train.augment`, one
``grid_sample`` per batch); bf16 autocast on CUDA by default; the loss is summed on the device and
read back only every ``log_every`` steps, so the host never waits for the GPU in between.

Schedule: the learning rate decays linearly to 0 over ``steps``, or, with ``minutes`` > 0, over
whichever of ``steps`` and ``minutes`` of training time runs out first (training stops there).

Logs: ``OUT/log.csv`` and, with ``tensorboard`` set, TensorBoard scalars at the same steps
(:mod:`hardmatch.train.runlog`).

Multi-process: run under ``torchrun --nproc_per_node K -m hardmatch.cli train ...``; each process
draws its own batches (seed + rank), gradients are averaged by DDP (gloo on CPU, NCCL on GPU),
rank 0 logs, validates and writes checkpoints.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..core.errors import OutputError, WeightsError
from ..core.files import check_writable, temporary_path
from ..nets.hardnet import HardNet
from ..nets.weights import load_tensors_only
from .augment import augment_pairs
from .loss import hardnet_loss
from .runlog import TrainingLog
from .validate import fpr_at_recall, hardnet_distances

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: most loader processes picked automatically on CUDA (more did not help the probe on 16 cores)
MAX_AUTO_WORKERS = 15
#: log interval picked automatically on CUDA (steps); every step on CPU, where a step takes seconds
AUTO_LOG_EVERY_CUDA = 20


@dataclass
class TrainConfig:
    out_dir: str = "runs/hardnet"
    steps: int = 1000
    batch_size: int = 512
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    dampening: float = 0.9  # as the official HardNet code: steady-state step = lr * gradient
    loss: str = "triplet_margin"
    sampling: str = "hardest"
    margin: float = 1.0
    augment: bool = True
    dropout: float = 0.1
    precision: str = "auto"  # auto (bf16 on CUDA, fp32 elsewhere) | fp32 | bf16 | fp16 (autocast)
    device: str = "auto"
    seed: int = 0
    val_every: int = 100
    checkpoint_every: int = 50
    workers: int | None = None  # None: min(cores - 1, 15) on CUDA, 1 elsewhere
    log_every: int | None = None  # None: every step on CPU, every 20 steps on CUDA
    minutes: float = 0.0  # > 0: training-time budget; the lr decays over it and training stops there
    init_weights: str | None = None
    tensorboard: str | None = None  # folder for TensorBoard event files (optional dependency); None: CSV only
    extra: dict = field(default_factory=dict)


def _dist_info() -> tuple[int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


class _BatchStream(torch.utils.data.IterableDataset):
    """Endless batches from a source, seeded per process and per loader worker."""

    def __init__(self, make_source, batch_size: int, seed: int) -> None:
        self.make_source = make_source
        self.batch_size = batch_size
        self.seed = seed

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker = info.id if info is not None else 0
        source = self.make_source(self.seed * 1000 + worker)
        while True:
            a, p, labels = source.sample(self.batch_size)
            yield torch.from_numpy(a), torch.from_numpy(p), torch.from_numpy(labels)


def _save_atomic(obj, path: Path) -> None:
    """``torch.save`` through a unique temporary beside ``path`` (removed on any error), then renamed."""
    try:
        with temporary_path(path) as temp:
            torch.save(obj, temp)
            os.replace(temp, path)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from None


def _load_checkpoint(path: Path) -> dict:
    """A checkpoint written by :func:`train` (``weights_only``: no pickled code runs); one-line
    :class:`WeightsError` for anything else (foreign, tampered or truncated files)."""
    state = load_tensors_only(path, "a checkpoint this trainer wrote", "; delete it or train into another --out")
    if not isinstance(state, dict) or not {"state_dict", "optimizer", "step"} <= set(state):
        raise WeightsError(f"{path}: not a checkpoint this trainer wrote (needs state_dict, optimizer and step); "
                           f"delete it or train into another --out")
    return state


def _make_out_dir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out_dir}: cannot create the output folder: {exc.strerror or exc}") from None
    check_writable(out_dir / "checkpoint.pth", "checkpoint")


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def resolve_runtime(cfg: TrainConfig, device: torch.device, world: int = 1) -> tuple[str, int, int]:
    """(precision, loader workers, log interval) for ``cfg`` on ``device``, ``auto``/None resolved."""
    if cfg.precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {cfg.precision!r}")
    cuda = device.type == "cuda"
    precision = ("bf16" if cuda else "fp32") if cfg.precision == "auto" else cfg.precision
    if cfg.workers is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        workers = max(1, min(cores // max(1, world) - 1, MAX_AUTO_WORKERS)) if cuda else 1
    else:
        workers = int(cfg.workers)
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    log_every = (AUTO_LOG_EVERY_CUDA if cuda else 1) if cfg.log_every is None else int(cfg.log_every)
    if log_every < 1:
        raise ValueError(f"log_every must be >= 1, got {log_every}")
    return precision, workers, log_every


def train(cfg: TrainConfig, make_source, validation=None, resume: bool = False) -> dict:
    """Run (or resume) training. ``make_source(seed)`` builds a batch source; ``validation`` is an
    optional ``(patches1, patches2, is_match)`` set evaluated every ``val_every`` steps.

    Returns a summary dict: final and smoothed loss, last FPR95, steps done, pairs seen, wall time,
    pairs/s of this run, and the resolved precision / workers / device.
    """
    rank, world = _dist_info()
    from ..nets.runner import cpu_memory_format, pick_device

    device = pick_device(cfg.device)
    if cfg.minutes > 0 and world > 1:
        raise ValueError("a time budget (minutes) needs a single process: give --steps under torchrun")
    if world > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
    precision, workers, log_every = resolve_runtime(cfg, device, world)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True  # fixed 32x32 input: pick the fastest kernels once
        torch.set_float32_matmul_precision("high")
        if os.environ.get("HARDMATCH_SYNC_DEBUG"):  # warn at every host-device synchronisation (tools/gpu_train.sh check)
            torch.cuda.set_sync_debug_mode("warn")
    torch.manual_seed(cfg.seed)
    out_dir = Path(cfg.out_dir)
    if rank == 0:
        _make_out_dir(out_dir)
    net = HardNet(dropout=cfg.dropout)
    if cfg.init_weights:
        from ..nets.weights import load_state_dict

        net.load_state_dict(load_state_dict(cfg.init_weights)[0])
    memory_format = cpu_memory_format(device)  # channels-last: 2x faster convolutions on CPU (measured)
    net.to(device, memory_format=memory_format)
    optimizer = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                                dampening=cfg.dampening)
    start_step, trained_s = 0, 0.0
    ckpt_path = out_dir / "checkpoint.pth"
    if resume and ckpt_path.is_file():
        state = _load_checkpoint(ckpt_path)
        try:
            net.load_state_dict(state["state_dict"])
            optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise WeightsError(f"{ckpt_path}: does not fit this network or optimiser "
                               f"({str(exc).splitlines()[0][:100]}); delete it or train into another --out") from None
        start_step = int(state["step"])
        trained_s = float(state.get("train_s", 0.0))
        if rank == 0:
            _log(f"resumed from {ckpt_path} at step {start_step}")
    # CSV (and TensorBoard) log of rank 0, opened before any data work: a missing tensorboard fails here
    log = TrainingLog(out_dir, resume, cfg.tensorboard, start_step) if rank == 0 else None
    model = net
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if cuda else None)
    prepare = getattr(make_source, "prepare", None)
    if prepare is not None and workers > 1:  # one shared keypoint pass instead of one per loader worker
        t_prepare = time.time()
        prepare(workers)
        if rank == 0:
            _log(f"keypoints of the training images detected in {time.time() - t_prepare:.1f} s ({workers} processes)")
    stream = _BatchStream(make_source, cfg.batch_size, cfg.seed + 7919 * (rank + 1) + start_step)
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=workers, pin_memory=cuda,
                                         persistent_workers=workers > 0, prefetch_factor=2 if workers > 0 else None)
    generator = torch.Generator(device=device).manual_seed(cfg.seed + 31 * rank + start_step)
    autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    budget_s = 60.0 * cfg.minutes
    if rank == 0:
        _log(f"training on {device} ({precision}), {workers} loader worker(s), batch {cfg.batch_size} x {world} "
             f"process(es), up to {cfg.steps} steps" + (f" or {cfg.minutes:g} min" if budget_s > 0 else ""))
    t0 = time.time()
    last_loss, last_fpr, loss_ema = float("nan"), None, None
    loss_sum = torch.zeros((), device=device)  # summed on the device, read back at log points only
    interval_steps, interval_t0, last_progress = 0, t0, 0.0
    data_iter = iter(loader)
    model.train()
    done = step = start_step
    with _progress_line_ended():  # Ctrl-C: the one-line message starts on its own line
        while step < cfg.steps:
            elapsed = trained_s + time.time() - t0
            fraction = max(step / cfg.steps, elapsed / budget_s if budget_s > 0 else 0.0)
            if fraction >= 1.0:
                break
            lr = cfg.lr * (1.0 - fraction)
            for group in optimizer.param_groups:
                group["lr"] = lr
            anchors, positives, labels = next(data_iter)
            anchors = anchors.to(device, non_blocking=True).float()
            positives = positives.to(device, non_blocking=True).float()
            labels = labels.to(device, non_blocking=True)
            if cfg.augment:
                anchors, positives = augment_pairs(anchors, positives, generator)
            batch = torch.cat([anchors, positives]).contiguous(memory_format=memory_format)
            with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                desc = model(batch)
            desc = desc.float()
            n = len(anchors)
            loss = hardnet_loss(desc[:n], desc[n:], margin=cfg.margin, loss=cfg.loss, sampling=cfg.sampling, labels=labels)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            loss_sum += loss.detach()
            interval_steps += 1
            step = done = step + 1
            if rank != 0:
                continue
            out_of_time = budget_s > 0 and trained_s + time.time() - t0 >= budget_s
            last = done >= cfg.steps or out_of_time
            validate = validation is not None and (done % cfg.val_every == 0 or last)
            if not (done % log_every == 0 or last or validate or done == start_step + 1):
                continue
            last_loss = float(loss_sum) / interval_steps  # the one host-device synchronisation of an interval
            loss_ema = last_loss if loss_ema is None else 0.95 ** interval_steps * loss_ema + (1 - 0.95 ** interval_steps) * last_loss
            now = time.time()
            rate = interval_steps * n * world / max(1e-9, now - interval_t0)
            loss_sum.zero_()
            interval_steps = 0
            fpr = fdr = None
            if validate:
                dists = hardnet_distances(net, validation[0], validation[1], device=device)
                fpr, fdr = fpr_at_recall(dists, validation[2])
                last_fpr = fpr
                _log(f"\nstep {done}: validation FPR95 {100 * fpr:.2f}%  FDR95 {100 * fdr:.2f}%")
            log.write(done, last_loss, lr, rate, trained_s + now - t0, fpr, fdr)
            if last or now - last_progress >= 10.0 or done % max(1, cfg.steps // 100) == 0:
                _progress(done, cfg.steps, loss_ema, lr, rate, trained_s + now - t0, budget_s)
                last_progress = now
            if done % cfg.checkpoint_every == 0 or last:
                _save_atomic({"state_dict": net.state_dict(), "optimizer": optimizer.state_dict(), "step": done,
                              "train_s": trained_s + time.time() - t0,
                              "config": {k: v for k, v in asdict(cfg).items() if k != "extra"}}, ckpt_path)
            interval_t0 = time.time()  # validation and checkpoints are not training time of the next interval
            if out_of_time:
                break
    if cuda:
        torch.cuda.synchronize(device)
    wall = time.time() - t0
    if rank == 0:
        _save_atomic(net.state_dict(), out_dir / "model.pth")
        log.close()
        _log("")
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
    if interval_steps:  # ranks > 0 never read their loss back in the loop
        last_loss = float(loss_sum) / interval_steps
    pairs_run = (done - start_step) * cfg.batch_size * world
    return {"final_loss": last_loss, "loss_ema": loss_ema, "fpr95": last_fpr, "steps": done,
            "pairs": done * cfg.batch_size * world, "pairs_per_s": pairs_run / max(1e-9, wall),
            "wall_s": wall, "train_s": trained_s + wall, "device": str(device), "precision": precision,
            "workers": workers, "batch_size": cfg.batch_size, "rank": rank, "world_size": world}


@contextlib.contextmanager
def _progress_line_ended():
    """End the progress bar's line when training stops by an exception (Ctrl-C, a write error)."""
    try:
        yield
    except BaseException:
        sys.stderr.write("\n")
        raise


def _progress(done: int, total: int, loss: float, lr: float, rate: float, elapsed: float, budget_s: float = 0.0) -> None:
    width = 30
    fraction = max(done / total, elapsed / budget_s if budget_s > 0 else 0.0)
    filled = int(width * min(1.0, fraction))
    eta = elapsed / max(1e-9, fraction) * (1.0 - fraction)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} loss {loss:.4f} lr {lr:.4f} "
                     f"{rate:.0f} pairs/s eta {eta / 60:.1f} min ")
    sys.stderr.flush()
