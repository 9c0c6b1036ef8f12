"""Speed of detect+describe on one image: hardmatch vs OpenCV SIFT vs kornia's HardNet pipelines, in one run.

    python benchmarks/speed.py --image ../shared/data/homogr/BostonA.jpg --nfeatures 2048 --repeat 3

Pairs compared at the same number of features:
- ``hardmatch DoG+HardNet`` vs ``kornia DoGHardNet`` and ``OpenCV SIFT`` (detectAndCompute);
- ``hardmatch HesAff+AffNet+HardNet`` (``--detector hessaff --affine affnet``, dominant-gradient
  orientation) vs ``kornia HesAffNetHardNet`` (Hessian, AffNet, dominant-gradient ``LAFOrienter``, HardNet).

kornia's modules load their weights from ``$TORCH_HOME/hub/checkpoints``; this script points
``TORCH_HOME`` at a temporary folder holding AffNet/OriNet from ``--weights-dir`` (shared/weights)
and hardmatch's shipped HardNet saved under the file name kornia looks for, so both sides run the
same descriptor weights offline. Reports median latency per image, throughput and each method's
time as a ratio to its hardmatch counterpart; also HardNet inference alone (patches/s) per batch size.
kornia's runs are slow (tens of seconds), so they are timed ``--kornia-repeat`` times (default 1) without warm-up.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def timed(fn, repeat: int, warmup: bool = True) -> tuple[float, int]:
    if warmup:
        fn()
    times, out = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def prepare_torch_home(weights_dir: Path) -> Path:
    """A temporary TORCH_HOME with AffNet/OriNet and hardmatch's HardNet under kornia's file names."""
    from hardmatch.weights import load_state_dict

    home = Path(tempfile.mkdtemp(prefix="hardmatch-bench-"))
    checkpoints = home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    for name in ("AffNet.pth", "OriNet.pth"):
        shutil.copy(weights_dir / name, checkpoints / name)
    state, _, _ = load_state_dict("hardnet-synth")
    torch.save({"state_dict": state}, checkpoints / "checkpoint_liberty_with_aug.pth")
    return home


def hardmatch_extract(gray: np.ndarray, nfeatures: int, **options):
    import hardmatch

    pipeline = hardmatch.Pipeline("default", nfeatures=nfeatures, **options)
    return lambda: len(pipeline.extract(gray))


def opencv_sift(gray: np.ndarray, nfeatures: int):
    sift = cv2.SIFT_create(nfeatures=nfeatures)
    return lambda: len(sift.detectAndCompute(gray, None)[0])


def kornia_feature(gray: np.ndarray, nfeatures: int, name: str):
    import kornia.feature as KF

    module = getattr(KF, name)(num_features=nfeatures).eval()
    image = torch.from_numpy(gray).float()[None, None] / 255.0

    def run():
        with torch.inference_mode():
            lafs, _, descriptors = module(image)
        return int(descriptors.shape[1])

    return run


def hardnet_only(batch: int, backend: str, precision: str = "fp32"):
    from hardmatch.describe import HardNetDescriptor

    describe = HardNetDescriptor(batch_size=batch, backend=backend, precision=precision)
    patches = np.random.default_rng(0).uniform(0, 255, (2048, 1, 32, 32)).astype(np.float32)
    return lambda: len(describe(patches))


def speed_table(image: str, weights_dir: str, nfeatures: int = 2048, repeat: int = 3, kornia_repeat: int = 1,
                kornia: bool = True) -> str:
    """The speed comparison as text (one run, so the ratios compare like with like)."""
    gray = cv2.imread(image, cv2.IMREAD_GRAYSCALE)
    if gray is None:
        raise SystemExit(f"cannot read {image}")
    os.environ["TORCH_HOME"] = str(prepare_torch_home(Path(weights_dir)))
    lines = [f"image {image} {gray.shape[1]}x{gray.shape[0]}, nfeatures {nfeatures}, "
             f"torch threads {torch.get_num_threads()}, device cpu"]
    n = nfeatures
    rows = [  # (name, factory, baseline row name for the ratio, is kornia)
        ("hardmatch DoG+HardNet", lambda: hardmatch_extract(gray, n), None, False),
        ("  same, --precision int8", lambda: hardmatch_extract(gray, n, precision="int8"),
         "hardmatch DoG+HardNet", False),
        ("OpenCV SIFT", lambda: opencv_sift(gray, n), "hardmatch DoG+HardNet", False),
        ("kornia DoGHardNet", lambda: kornia_feature(gray, n, "DoGHardNet"), "hardmatch DoG+HardNet", True),
        ("hardmatch HesAff+AffNet+HardNet",
         lambda: hardmatch_extract(gray, n, detector="hessaff", affine="affnet"), None, False),
        ("  same, --backend torch",
         lambda: hardmatch_extract(gray, n, detector="hessaff", affine="affnet", backend="torch"),
         "hardmatch HesAff+AffNet+HardNet", False),
        ("kornia HesAffNetHardNet", lambda: kornia_feature(gray, n, "HesAffNetHardNet"),
         "hardmatch HesAff+AffNet+HardNet", True),
    ]
    results = {}
    for name, factory, _, is_kornia in rows:
        if is_kornia and not kornia:
            continue
        results[name] = timed(factory(), kornia_repeat if is_kornia else repeat, warmup=not is_kornia)
    lines.append("hardmatch rows use the default backend and precision (onnxruntime when installed, fp32 unless "
                 "said; see hardmatch/describe.py)")
    lines.append(f"{'method':34s} {'features':>8s} {'latency s':>10s} {'features/s':>11s}  time ratio")
    for name, _, baseline, _ in rows:
        if name not in results:
            continue
        seconds, count = results[name]
        ratio = f"{seconds / results[baseline][0]:.2f}x {baseline}" if baseline else "(reference)"
        lines.append(f"{name:34s} {count:8d} {seconds:10.3f} {count / seconds:11.0f}  {ratio}")
    for backend, precision in (("torch", "fp32"), ("onnxruntime", "fp32"), ("onnxruntime", "int8")):
        for batch in (256, 1024):
            seconds, count = timed(hardnet_only(batch, backend, precision), repeat)
            lines.append(f"HardNet inference alone, {backend} {precision}, batch {batch}: {count / seconds:.0f} patches/s")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", default=str(ROOT.parent / "shared" / "data" / "homogr" / "BostonA.jpg"))
    parser.add_argument("--weights-dir", default=str(ROOT.parent / "shared" / "weights"),
                        help="folder with AffNet.pth and OriNet.pth")
    parser.add_argument("--nfeatures", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--kornia-repeat", type=int, default=1)
    parser.add_argument("--no-kornia", action="store_true")
    args = parser.parse_args()
    print(speed_table(args.image, args.weights_dir, args.nfeatures, args.repeat, args.kornia_repeat,
                      not args.no_kornia))


if __name__ == "__main__":
    main()
