"""Speed of detect+describe on one image: hardmatch vs OpenCV SIFT, in one run (kornia's pipeline: TODO, issue 4).

    python benchmarks/speed.py --image ../shared/data/homogr/BostonA.jpg --nfeatures 2000 --repeat 3

Reports the median latency per image (seconds), throughput (features/s) and each method's time as
a ratio to hardmatch's. kornia's HardNet runs with random weights (its pretrained weights are a
download; the network's cost does not depend on them); its DoG is ``kornia.feature.ScaleSpaceDetector``
with a ``BlobDoG`` response, the pure-torch scale space. Also times HardNet inference alone per
batch size (patches/s), which bounds hardmatch's throughput on CPU.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import torch


def timed(fn, repeat: int) -> tuple[float, object]:
    fn()  # warm-up
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def bench_hardmatch(gray: np.ndarray, nfeatures: int):
    import hardmatch

    pipeline = hardmatch.Pipeline("default", nfeatures=nfeatures)
    return lambda: len(pipeline.extract(gray))


def bench_opencv_sift(gray: np.ndarray, nfeatures: int):
    sift = cv2.SIFT_create(nfeatures=nfeatures)
    return lambda: len(sift.detectAndCompute(gray, None)[0])


def bench_hardnet_only(batch: int):
    from hardmatch.describe import HardNetDescriptor

    describe = HardNetDescriptor(batch_size=batch)
    patches = np.random.default_rng(0).uniform(0, 255, (batch * 2, 1, 32, 32)).astype(np.float32)
    return lambda: len(describe(patches))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_image = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "homogr" / "BostonA.jpg"
    parser.add_argument("--image", default=str(default_image))
    parser.add_argument("--nfeatures", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    gray = cv2.imread(args.image, cv2.IMREAD_GRAYSCALE)
    if gray is None:
        raise SystemExit(f"cannot read {args.image}")
    print(f"image {args.image} {gray.shape[1]}x{gray.shape[0]}, nfeatures {args.nfeatures}, "
          f"torch threads {torch.get_num_threads()}, device cpu")
    methods = {"hardmatch DoG+HardNet": bench_hardmatch, "OpenCV SIFT": bench_opencv_sift}
    results = {}
    for name, make in methods.items():
        seconds, count = timed(make(gray, args.nfeatures), args.repeat)
        results[name] = (seconds, count)
    base = results["hardmatch DoG+HardNet"][0]
    print(f"{'method':24s} {'features':>8s} {'latency s':>10s} {'features/s':>11s} {'time / hardmatch':>17s}")
    for name, (seconds, count) in results.items():
        print(f"{name:24s} {count:8d} {seconds:10.3f} {count / seconds:11.0f} {seconds / base:17.2f}")
    for batch in (256, 1024):
        seconds, count = timed(bench_hardnet_only(batch), args.repeat)
        print(f"HardNet inference alone, batch {batch}: {count / seconds:.0f} patches/s")


if __name__ == "__main__":
    main()
