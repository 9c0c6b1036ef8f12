"""Training speed of an older hardmatch against this checkout, in ONE process, alternating runs.

Steadier than tools/train_speed.py on a shared CPU (no process start-up in the measurement):

    mkdir -p /tmp/hm_oldpkg && git archive <old-commit> hardmatch | tar -x -C /tmp/hm_oldpkg \
        && mv /tmp/hm_oldpkg/hardmatch /tmp/hm_oldpkg/hardmatch_old      # relative imports: renaming works
    PYTHONPATH=$PWD python tools/train_speed_inprocess.py --old /tmp/hm_oldpkg \
        --images /tmp/bsd3 --steps 8 --batch-size 128 --rounds 4

/tmp/bsd3 holds three bsd100 photos (so that keypoint detection, done once per image, stays out
of the timing): ``mkdir -p /tmp/bsd3 && ln -s $(ls $PWD/../shared/data/train-images/bsd100/*.png | head -3) /tmp/bsd3/``.

Each run trains ``--steps`` steps on the CPU with the real synthetic source in the main process
(workers 0, so data preparation is timed too) and reports steps/s from its log.csv, leaving
out the first step.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import tempfile

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="folder holding the old package renamed hardmatch_old/")
    parser.add_argument("--images", action="append", required=True)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args(argv)
    sys.path.insert(0, args.old)
    trees = {name: (importlib.import_module(f"{pkg}.train.trainer"), importlib.import_module(f"{pkg}.train.sources"))
             for name, pkg in (("old", "hardmatch_old"), ("new", "hardmatch"))}
    rates: dict[str, list[float]] = {name: [] for name in trees}
    for r in range(args.rounds):
        for name in (["old", "new"] if r % 2 == 0 else ["new", "old"]):
            trainer, sources = trees[name]
            with tempfile.TemporaryDirectory() as out:
                cfg = trainer.TrainConfig(out_dir=out, steps=args.steps, batch_size=args.batch_size, workers=0,
                                          checkpoint_every=10 ** 6, device="cpu")
                trainer.train(cfg, sources.make_source_factory(images=args.images))
                log = np.loadtxt(f"{out}/log.csv", delimiter=",", skiprows=1, usecols=(0, 4), ndmin=2)
            rate = float((log[-1, 0] - log[1, 0]) / max(1e-9, log[-1, 1] - log[1, 1]))
            rates[name].append(rate)
            print(f"round {r + 1} {name}: {rate:.3f} steps/s", flush=True)
    for name, values in rates.items():
        print(f"{name}: median {statistics.median(values):.3f} steps/s ({', '.join(f'{v:.3f}' for v in values)})")
    print(f"new/old: {statistics.median(rates['new']) / statistics.median(rates['old']):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
