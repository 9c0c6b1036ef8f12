"""int8 and bf16 vs fp32 HardNet on CPU, in one run: throughput, latency per image and per pair, descriptor
agreement.

    python benchmarks/precision.py --nfeatures 8000 --repeat 3

bf16 is timed only on a CPU with bf16 instructions (AMX or AVX-512 BF16; elsewhere it is refused).
Timings alternate the precisions in every repetition (medians reported), so load from other
processes hits all alike; ratios are the precision's time / fp32's time.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PAIR = (str(ROOT.parent / "shared" / "data" / "homogr" / "BostonA.jpg"),
                str(ROOT.parent / "shared" / "data" / "homogr" / "BostonB.jpg"))


def precisions() -> tuple[str, ...]:
    """fp32 (the reference), int8, and bf16 where this CPU has it."""
    from hardmatch.core.lazytorch import cpu_has_bf16

    return ("fp32", "int8") + (("bf16",) if cpu_has_bf16() else ())


def interleaved(functions: dict, repeat: int) -> dict[str, float]:
    """Median seconds of each zero-argument function, run alternately ``repeat`` times after one warm-up each."""
    for fn in functions.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeat):
        for name, fn in functions.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(values) for name, values in times.items()}


def precision_table(image1: str = DEFAULT_PAIR[0], image2: str = DEFAULT_PAIR[1], nfeatures: int = 8000,
                    repeat: int = 3, quantize_cost: bool = False) -> str:
    import hardmatch
    from hardmatch.features.describe import HardNetDescriptor
    from hardmatch.core.io import load_gray
    from hardmatch.matching.matchers import DEFAULT_RATIO
    from hardmatch.features.patches import extract_patches
    from hardmatch.nets.quantize import descriptor_agreement

    lines = []
    describers = {}
    compared = precisions()
    for precision in compared:
        t0 = time.perf_counter()
        describers[precision] = HardNetDescriptor(device="cpu", precision=precision)
        source = ("the torch network" if describers[precision].backend == "torch" else
                  "the shipped ONNX model" if describers[precision].runner._net is None else "export to ONNX in memory")
        lines.append(f"descriptor start-up, {precision}: {time.perf_counter() - t0:.2f} s ({source})")
    pipelines = {p: hardmatch.Pipeline("default", nfeatures=nfeatures, precision=p) for p in compared}
    fp32_features = [pipelines["fp32"].extract(image) for image in (image1, image2)]
    grays = [load_gray(image) for image in (image1, image2)]
    patches = [extract_patches(gray, f.lafs) for gray, f in zip(grays, fp32_features)]
    lines[:0] = [f"images {Path(image1).name} / {Path(image2).name}, nfeatures {nfeatures}, "
                 f"{len(patches[0])} + {len(patches[1])} patches, median of {repeat} interleaved runs"]

    if quantize_cost:
        from hardmatch.features.int8_calibration import calibration_images, calibration_patches
        from hardmatch.nets.quantize import calibration_method, onnx_model_bytes, quantize_int8
        from hardmatch.nets.weights import DEFAULT_DESCRIPTOR, load_hardnet

        t0 = time.perf_counter()
        quantize_int8(onnx_model_bytes(load_hardnet(DEFAULT_DESCRIPTOR)),
                      calibration_patches(calibration_images(ROOT.parent / "shared" / "data" / "train-images")),
                      calibration_method(DEFAULT_DESCRIPTOR))
        lines.append(f"quantising at run time instead (tools/quantize_hardnet.py's recipe): "
                     f"{time.perf_counter() - t0:.1f} s")

    batch_runs = {}
    for precision in compared:
        for batch in (256, 1024):
            describe = HardNetDescriptor(device="cpu", precision=precision, batch_size=batch)
            batch_runs[f"{precision} batch {batch}"] = (lambda d: lambda: d(patches[0]))(describe)
    seconds = interleaved(batch_runs, repeat)
    for name, value in seconds.items():
        lines.append(f"HardNet alone, {name}: {len(patches[0]) / value:.0f} patches/s "
                     f"({value / seconds['fp32 batch 256']:.2f}x fp32 batch 256's time)")

    per_image = interleaved({p: (lambda pl: lambda: pl.extract(image1))(pipelines[p]) for p in compared}, repeat)
    per_pair = interleaved({p: (lambda pl: lambda: pl.match_pair(image1, image2))(pipelines[p]) for p in compared},
                           repeat)
    lines.append(f"{'precision':10s} {'image s':>8s} {'pair s':>7s}  {'describe s/image':>16s}  pair result")
    for precision in compared:
        result = pipelines[precision].match_pair(image1, image2)
        lines.append(f"{precision:10s} {per_image[precision]:8.2f} {per_pair[precision]:7.2f}  "
                     f"{result.timings['describe1']:16.2f}  {result.num_inliers} inliers of {result.num_matches}")
    for precision in compared[1:]:
        lines.append(f"{precision}/fp32 time: image {per_image[precision] / per_image['fp32']:.2f}, "
                     f"pair {per_pair[precision] / per_pair['fp32']:.2f}")

    ref = [describers["fp32"](p) for p in patches]
    for precision in compared[1:]:
        new = [describers[precision](p) for p in patches]
        agreement = descriptor_agreement(ref[0], ref[1], new[0], new[1], DEFAULT_RATIO)
        lines.append(f"{precision} vs fp32 descriptors: " + "cosine min {cosine_min:.4f}, median {cosine_median:.4f}; "
                     "nearest neighbour agreement {nn_agreement:.3f}, over the {matches} fp32 ratio-test matches "
                     "{match_agreement:.3f}".format(**agreement))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image1", default=DEFAULT_PAIR[0])
    parser.add_argument("--image2", default=DEFAULT_PAIR[1])
    parser.add_argument("--nfeatures", type=int, default=8000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quantize-cost", action="store_true", help="also time quantising at run time (~30 s)")
    args = parser.parse_args()
    print(precision_table(args.image1, args.image2, args.nfeatures, args.repeat, args.quantize_cost))


if __name__ == "__main__":
    main()
