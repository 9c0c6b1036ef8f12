"""Compare training speed of two checkouts of hardmatch, interleaved in one run (fair on a shared CPU).

    git archive <old-commit> hardmatch | (mkdir -p /tmp/hm_old && tar -x -C /tmp/hm_old)
    python tools/train_speed.py --tree old=/tmp/hm_old --tree new=. --images /tmp/bsd3 \
        --device cpu --steps 8 --batch-size 128 --rounds 3

/tmp/bsd3 holds three bsd100 photos (so that keypoint detection, done once per image, stays out
of the timing): ``mkdir -p /tmp/bsd3 && ln -s $(ls $PWD/../shared/data/train-images/bsd100/*.png | head -3) /tmp/bsd3/``.

Each round runs ``python -m hardmatch.cli train`` once per tree (same data, seed and settings,
``--workers 1``), and reads steps/s from its log.csv, leaving out the first ``--skip`` steps
(start-up, first detections). Prints steps/s per run, the median per tree, and each tree's
median relative to the first tree.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def run_once(tree: Path, args, out: Path) -> float:
    """steps/s of one short training run of the hardmatch package under ``tree``."""
    cmd = [sys.executable, "-m", "hardmatch.cli", "train", "--out", str(out), "--steps", str(args.steps),
           "--batch-size", str(args.batch_size), "--workers", "1", "--device", args.device, "--no-baselines",
           "--checkpoint-every", "1000", "--val-every", "100000", "--seed", "0"]
    for folder in args.images:
        cmd += ["--images", folder]
    env = dict(os.environ, PYTHONPATH=str(tree.resolve()))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"train_speed: {tree}: training failed:\n{done.stderr[-2000:]}")
    log = np.loadtxt(out / "log.csv", delimiter=",", skiprows=1, usecols=(0, 4), ndmin=2)
    first = log[log[:, 0] == args.skip][0]
    last = log[-1]
    return float((last[0] - first[0]) / max(1e-9, last[1] - first[1]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", required=True, help="NAME=PATH of a folder holding hardmatch/")
    parser.add_argument("--images", action="append", required=True, help="training image folder (repeatable)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--skip", type=int, default=2, help="steps left out at the start")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    trees = [(t.split("=", 1)[0], Path(t.split("=", 1)[1])) for t in args.tree]
    rates: dict[str, list[float]] = {name: [] for name, _ in trees}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for name, tree in (trees if r % 2 == 0 else trees[::-1]):  # alternate the order too
                rate = run_once(tree, args, Path(tmp) / f"{name}-{r}")
                rates[name].append(rate)
                print(f"round {r + 1} {name}: {rate:.3f} steps/s ({rate * args.batch_size:.0f} pairs/s)", flush=True)
    ref = statistics.median(rates[trees[0][0]])
    for name, _ in trees:
        med = statistics.median(rates[name])
        print(f"{name}: median {med:.3f} steps/s, {med / ref:.2f}x {trees[0][0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
