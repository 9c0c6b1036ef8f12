"""Speed of hardmatch against OpenCV SIFT and kornia's HardNet pipelines, on one device, in one run.

    python benchmarks/speed.py --image ../shared/data/homogr/BostonA.jpg --nfeatures 2048 --repeat 3   # CPU
    python benchmarks/speed.py --device cuda --nfeatures 8000 --repeat 10 --write-results              # GPU

Per image, at the same number of features and on the same ``--device``:
- ``hardmatch DoG+HardNet`` vs ``kornia DoGHardNet`` and ``OpenCV SIFT`` (detectAndCompute, CPU);
- ``hardmatch HesAff+AffNet+HardNet`` (``--detector hessaff --affine affnet``, dominant-gradient
  orientation) vs ``kornia HesAffNetHardNet`` (Hessian, AffNet, dominant-gradient ``LAFOrienter``, HardNet).
Per pair (``--no-pairs`` skips them): hardmatch's ``default`` preset on ``--image``/``--image2``
and its ``affine`` preset on ``--graf1``/``--graf5``, both as homographies, against kornia's
features of both images + ``kornia.feature.match_snn`` on the device + the same DEGENSAC.
Then HardNet alone (patches/s) per batch size, and on CUDA in float16 autocast too (on a CPU with
bf16 instructions, torch in bf16 autocast too).
``--compare-paths`` adds hardmatch DoG+HardNet on its other execution path (opencv/torch) to the same run.

hardmatch runs on its ``--path`` (default ``auto``: the torch path on CUDA, the OpenCV path on
CPU). On CUDA every timed call ends with ``torch.cuda.synchronize()`` and each row reports its
peak GPU memory (``torch.cuda.max_memory_allocated``). ``--write-results`` puts the table into
benchmarks/RESULTS.md, between the markers ``speed-table:<device type>:<nfeatures>`` (a new
section when they are absent), with the machine it ran on.

kornia's modules load their weights from ``$TORCH_HOME/hub/checkpoints``; this script points
``TORCH_HOME`` at a temporary folder holding AffNet/OriNet from ``--weights-dir`` (shared/weights)
and hardmatch's shipped HardNet saved under the file name kornia looks for, so both sides run the
same descriptor weights offline. On CPU kornia's runs are slow (tens of seconds), so they are
timed ``--kornia-repeat`` times (default 1) without warm-up; on CUDA they get the warm-up and
``--repeat`` like every other row.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from hardmatch.core.lazytorch import cpu_has_bf16

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HARDMATCH_SHARED", ROOT.parent / "shared"))  # as the tests and other benchmarks
DATA = SHARED / "data"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, repeat: int, device: torch.device, warmup: bool = True) -> tuple[float, int, float | None]:
    """Median seconds of ``fn()`` over ``repeat`` calls, its last result, and the peak GPU memory (MiB) on CUDA."""
    if warmup:
        fn()
        sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times, out = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated(device) / 2 ** 20 if device.type == "cuda" else None
    return statistics.median(times), out, peak


def prepare_torch_home(weights_dir: Path) -> Path:
    """A temporary TORCH_HOME with AffNet/OriNet and hardmatch's HardNet under kornia's file names."""
    from hardmatch.nets.weights import load_state_dict

    home = Path(tempfile.mkdtemp(prefix="hardmatch-bench-"))
    checkpoints = home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    for name in ("AffNet.pth", "OriNet.pth"):
        shutil.copy(weights_dir / name, checkpoints / name)
    state, _, _ = load_state_dict("hardnet-synth")
    torch.save({"state_dict": state}, checkpoints / "checkpoint_liberty_with_aug.pth")
    return home


def read_gray(path: str, max_side: int | None) -> np.ndarray:
    gray = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if gray is None:
        raise SystemExit(f"cannot read {path}")
    if max_side and max(gray.shape) > max_side:
        f = max_side / max(gray.shape)
        gray = cv2.resize(gray, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    return gray


def hardmatch_pipeline(preset: str, nfeatures: int, device: str, path: str, **options):
    import hardmatch

    return hardmatch.Pipeline(preset, nfeatures=nfeatures, device=device, path=path, **options)


def hardmatch_extract(gray: np.ndarray, nfeatures: int, device: str, path: str, **options):
    pipeline = hardmatch_pipeline("default", nfeatures, device, path, **options)
    return lambda: len(pipeline.extract(gray))


def hardmatch_pair(gray1: np.ndarray, gray2: np.ndarray, preset: str, nfeatures: int, device: str, path: str):
    pipeline = hardmatch_pipeline(preset, nfeatures, device, path, geometry="homography")
    return lambda: pipeline.match_pair(gray1, gray2).num_inliers


def opencv_sift(gray: np.ndarray, nfeatures: int):
    sift = cv2.SIFT_create(nfeatures=nfeatures)
    return lambda: len(sift.detectAndCompute(gray, None)[0])


def kornia_module(name: str, nfeatures: int, device: torch.device):
    import kornia.feature as KF

    return getattr(KF, name)(num_features=nfeatures).to(device).eval()


def kornia_features(module, gray: np.ndarray, device: torch.device):
    image = torch.from_numpy(gray).to(device).float()[None, None] / 255.0
    with torch.inference_mode():
        lafs, _, descriptors = module(image)
    return lafs[0], descriptors[0]


def kornia_extract(gray: np.ndarray, nfeatures: int, name: str, device: torch.device):
    module = kornia_module(name, nfeatures, device)
    return lambda: int(kornia_features(module, gray, device)[1].shape[0])


def kornia_pair(gray1: np.ndarray, gray2: np.ndarray, nfeatures: int, name: str, device: torch.device,
                ratio: float = 0.9):
    """kornia features of both images, its SNN matcher on the device, then hardmatch's DEGENSAC (the same RANSAC)."""
    import kornia.feature as KF

    from hardmatch.geometry.ransac import verify

    module = kornia_module(name, nfeatures, device)

    def run():
        lafs1, desc1 = kornia_features(module, gray1, device)
        lafs2, desc2 = kornia_features(module, gray2, device)
        with torch.inference_mode():
            _, pairs = KF.match_snn(desc1, desc2, ratio)
        pairs = pairs.cpu().numpy()
        pts1 = lafs1[:, :, 2].cpu().numpy()[pairs[:, 0]].astype(np.float64)
        pts2 = lafs2[:, :, 2].cpu().numpy()[pairs[:, 1]].astype(np.float64)
        return verify(pts1, pts2, "homography", "degensac").num_inliers

    return run


def hardnet_only(batch: int, backend: str, device: str, half: bool, precision: str = "fp32"):
    from hardmatch.features.describe import HardNetDescriptor

    describe = HardNetDescriptor(device=device, batch_size=batch, backend=backend, precision=precision)
    count = max(2048, batch)
    patches = np.random.default_rng(0).uniform(0, 255, (count, 1, 32, 32)).astype(np.float32)
    if describe.device.type == "cuda":
        on_device = torch.from_numpy(patches).to(describe.device)
        return lambda: len(describe.describe_tensor(on_device, half=half, batch_size=batch))
    return lambda: len(describe(patches))


def machine(device: torch.device) -> str:
    cpu = f"{os.cpu_count()} CPU cores, torch {torch.__version__}, torch threads {torch.get_num_threads()}"
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, {cpu}"
    return f"{platform.processor() or platform.machine()}, {cpu}"


def write_results(markdown: str, key: str, results_md: Path) -> None:
    """Replace the block between the ``speed-table:KEY`` markers (or append a section holding it)."""
    start, end = f"<!-- speed-table:{key} -->", f"<!-- /speed-table:{key} -->"
    block = f"{start}\n{markdown}\n{end}"
    text = results_md.read_text() if results_md.exists() else "# Results\n"
    if start in text and end in text:
        text = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + f"\n\n## Speed: {key}\n\n{block}\n"
    results_md.write_text(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", default=str(DATA / "homogr" / "BostonA.jpg"))
    parser.add_argument("--image2", default=str(DATA / "homogr" / "BostonB.jpg"),
                        help="second image of the default pair")
    parser.add_argument("--graf1", default=str(DATA / "oxford" / "graf" / "img1.png"))
    parser.add_argument("--graf5", default=str(DATA / "oxford" / "graf" / "img5.png"))
    parser.add_argument("--weights-dir", default=str(SHARED / "weights"),
                        help="folder with AffNet.pth and OriNet.pth")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (hardmatch and kornia both run there)")
    parser.add_argument("--path", default="auto", choices=("auto", "opencv", "torch"),
                        help="hardmatch's execution path")
    parser.add_argument("--nfeatures", type=int, default=2048)
    parser.add_argument("--max-side", type=int, default=None, help="downsize the images to this longest side")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--kornia-repeat", type=int, default=1, help="on CPU: kornia's repeats (no warm-up)")
    parser.add_argument("--no-kornia", action="store_true")
    parser.add_argument("--no-pairs", action="store_true")
    parser.add_argument("--no-warmup", action="store_true", help="time first calls too (quick checks only)")
    parser.add_argument("--compare-paths", action="store_true",
                        help="also time hardmatch DoG+HardNet on its other execution path, in the same run")
    parser.add_argument("--hardnet-batches", default=None, help="comma-separated batch sizes for HardNet alone "
                                                                "(default 256,1024 on CPU; 1024,8192,32768 on CUDA)")
    parser.add_argument("--write-results", nargs="?", const=str(ROOT / "benchmarks" / "RESULTS.md"), default=None,
                        metavar="RESULTS_MD",
                        help="write the table into this markdown file (default benchmarks/RESULTS.md)")
    return parser


def speed_table(argv: list[str] | None = None) -> str:
    """The speed comparison (one run, so the ratios compare like with like) as markdown; ``argv``: this
    script's command-line options (``python -m benchmarks`` passes its own)."""
    args = build_parser().parse_args(argv)
    device = torch.device(args.device)
    on_cuda = device.type == "cuda"
    gray = read_gray(args.image, args.max_side)
    os.environ["TORCH_HOME"] = str(prepare_torch_home(Path(args.weights_dir)))
    header = (f"image {Path(args.image).name} {gray.shape[1]}x{gray.shape[0]}, nfeatures {args.nfeatures}, "
              f"device {device}, hardmatch path {args.path}; {machine(device)}")
    print(header)
    from hardmatch.twoview.config import PipelineConfig
    from hardmatch.twoview.pipeline import execution_path

    n, dev, path = args.nfeatures, str(device), args.path
    rows = [  # (name, factory, baseline row name for the ratio, is kornia, unit)
        ("hardmatch DoG+HardNet", lambda: hardmatch_extract(gray, n, dev, path), None, False, "image"),
        ("OpenCV SIFT (CPU)", lambda: opencv_sift(gray, n), "hardmatch DoG+HardNet", False, "image"),
        ("kornia DoGHardNet", lambda: kornia_extract(gray, n, "DoGHardNet", device), "hardmatch DoG+HardNet",
         True, "image"),
        ("hardmatch HesAff+AffNet+HardNet",
         lambda: hardmatch_extract(gray, n, dev, path, detector="hessaff", affine="affnet"), None, False, "image"),
        ("kornia HesAffNetHardNet", lambda: kornia_extract(gray, n, "HesAffNetHardNet", device),
         "hardmatch HesAff+AffNet+HardNet", True, "image"),
    ]
    if args.compare_paths:
        other = "opencv" if execution_path(PipelineConfig(device=dev, path=path)) == "torch" else "torch"
        rows.insert(1, (f"  same, --path {other}", lambda: hardmatch_extract(gray, n, dev, other),
                        "hardmatch DoG+HardNet", False, "image"))
    if not on_cuda:  # int8 exists on the opencv path only (ONNX Runtime)
        on_torch = execution_path(PipelineConfig(device=dev, path=path)) == "torch"
        rows.insert(1, ("  same, --precision int8" + (" --path opencv" if on_torch else ""),
                        lambda: hardmatch_extract(gray, n, dev, "opencv", precision="int8"),
                        "hardmatch DoG+HardNet", False, "image"))
        rows.insert(len(rows) - 1, ("  same, --backend torch",
                        lambda: hardmatch_extract(gray, n, dev, path, detector="hessaff", affine="affnet",
                                                  backend="torch"),
                        "hardmatch HesAff+AffNet+HardNet", False, "image"))
    if not args.no_pairs:
        gray2 = read_gray(args.image2, args.max_side)
        graf1, graf5 = read_gray(args.graf1, args.max_side), read_gray(args.graf5, args.max_side)
        rows += [
            ("pair: hardmatch default", lambda: hardmatch_pair(gray, gray2, "default", n, dev, path), None, False,
             "pair"),
            ("pair: kornia DoGHardNet+SNN+DEGENSAC", lambda: kornia_pair(gray, gray2, n, "DoGHardNet", device),
             "pair: hardmatch default", True, "pair"),
            ("pair graf1-5: hardmatch affine", lambda: hardmatch_pair(graf1, graf5, "affine", n, dev, path), None,
             False, "pair"),
            ("pair graf1-5: kornia HesAffNetHardNet+SNN+DEGENSAC",
             lambda: kornia_pair(graf1, graf5, n, "HesAffNetHardNet", device), "pair graf1-5: hardmatch affine",
             True, "pair"),
        ]
    results = {}
    for name, factory, _, is_kornia, _ in rows:
        if is_kornia and args.no_kornia:
            continue
        slow = is_kornia and not on_cuda
        results[name] = timed(factory(), args.kornia_repeat if slow else args.repeat, device,
                              warmup=not (slow or args.no_warmup))
        print(f"  timed {name}: {results[name][0]:.3f} s", flush=True)
    lines = [f"Measured on: {machine(device)}; device {device}; hardmatch path {path}; image "
             f"{Path(args.image).name} {gray.shape[1]}x{gray.shape[0]}; {n} features; median of {args.repeat}.", "",
             "| method | latency | count | per second | ratio | peak GPU MiB |", "|---|---|---|---|---|---|"]
    for name, _, baseline, _, unit in rows:
        if name not in results:
            continue
        seconds, count, peak = results[name]
        ratio = f"{seconds / results[baseline][0]:.2f}x {baseline}" if baseline in results else "reference"
        what = "inliers" if unit == "pair" else "features"
        rate = f"{1 / seconds:.1f} pairs/s" if unit == "pair" else f"{count / seconds:.0f} features/s"
        lines.append(f"| {name} | {seconds * 1000:.0f} ms | {count} {what} | {rate} | {ratio} | "
                     f"{'-' if peak is None else f'{peak:.0f}'} |")
    batches = [int(b) for b in (args.hardnet_batches or ("1024,8192,32768" if on_cuda else "256,1024")).split(",")]
    lines.append("")
    backends = ([("torch", False, "fp32"), ("torch", True, "fp32")] if on_cuda else
                [("torch", False, "fp32"), ("onnxruntime", False, "fp32"), ("onnxruntime", False, "int8")]
                + ([("torch", False, "bf16")] if cpu_has_bf16() else []))
    for backend, half, precision in backends:
        for batch in batches:
            seconds, count, peak = timed(hardnet_only(batch, backend, dev, half, precision), args.repeat, device,
                                         warmup=not args.no_warmup)
            label = "fp16 autocast" if half else precision
            memory = f", peak {peak:.0f} MiB" if peak is not None else ""
            lines.append(f"- HardNet alone, {backend} {label}, batch {batch}: "
                         f"{count / seconds:.0f} patches/s{memory}")
    markdown = "\n".join(lines)
    if args.write_results:
        write_results(markdown, f"{device.type}:{n}", Path(args.write_results))
        print(f"wrote the table into {args.write_results}")
    return markdown


def main() -> None:
    print(speed_table())


if __name__ == "__main__":
    main()
