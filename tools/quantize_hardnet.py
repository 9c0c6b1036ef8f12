"""Make the ONNX models of a shipped HardNet: fp32 (the network exported as is) and int8 (quantised),
and write each with its sha256 beside the weights.

    python tools/quantize_hardnet.py --weights NAME   # NAME -> <models>/NAME-fp32.onnx and <models>/NAME-int8.onnx
    python tools/quantize_hardnet.py --check          # regenerate both in memory, compare with the shipped files

The fp32 model lets the CPU path run HardNet in ONNX Runtime without importing torch or exporting
at start-up (hardmatch/features/describe.py). int8 calibration uses real patches from
../shared/data/train-images (urban100, sunhays80; see hardmatch/features/int8_calibration.py for the seeded recipe).
Same inputs, same torch and onnxruntime versions -> same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hardmatch.features.int8_calibration import calibration_images, calibration_patches  # noqa: E402
from hardmatch.nets.quantize import calibration_method, onnx_model_bytes, quantize_int8  # noqa: E402
from hardmatch.nets.weights import (
    DEFAULT_DESCRIPTOR, FP32_ONNX_MODELS, INT8_MODELS, REGISTRY, load_hardnet, resolve,
)  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default=DEFAULT_DESCRIPTOR, choices=sorted(INT8_MODELS))
    parser.add_argument("--train-images", default=str(ROOT.parent / "shared" / "data" / "train-images"))
    parser.add_argument("--check", action="store_true", help="only compare regenerated models with the shipped ones")
    parser.add_argument("--fp32-only", action="store_true", help="make (or check) the fp32 model only (no calibration)")
    args = parser.parse_args()
    fp32 = onnx_model_bytes(load_hardnet(args.weights))
    models = {}
    if args.weights in FP32_ONNX_MODELS:  # shipped for the default weights only
        models[FP32_ONNX_MODELS[args.weights]] = (fp32, "exported from the .pth")
    if not args.fp32_only:
        images = calibration_images(Path(args.train_images))
        int8 = quantize_int8(fp32, calibration_patches(images), calibration_method(args.weights))
        models[INT8_MODELS[args.weights]] = (int8, f"{len(images)} calibration images")
    all_same = True
    for name, (model, origin) in models.items():
        spec = REGISTRY[name]
        digest = hashlib.sha256(model).hexdigest()
        if args.check:
            shipped, _ = resolve(spec.name, download=False)
            same = hashlib.sha256(shipped.read_bytes()).hexdigest() == digest
            all_same &= same
            print(f"{shipped}: {'identical to' if same else 'DIFFERS from'} the regenerated model (sha256 {digest})")
            continue
        out = resolve(args.weights, download=False)[0].parent / spec.filename  # beside the .pth weights
        out.write_bytes(model)
        out.with_suffix(".sha256").write_text(f"{digest}  {out.name}\n")
        print(f"{out}: {len(model)} bytes ({origin}), sha256 {digest}")
    sys.exit(0 if all_same else 1)


if __name__ == "__main__":
    main()
