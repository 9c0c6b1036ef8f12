"""Quantise a shipped HardNet to int8 for ONNX Runtime on CPU and write it with its sha256 beside it.

    python tools/quantize_hardnet.py --weights NAME         # NAME -> <models>/NAME-int8.onnx
    python tools/quantize_hardnet.py --check               # regenerate in memory, compare with the shipped file

Calibration uses real patches from ../shared/data/train-images (urban100, sunhays80; see
hardmatch/quantize.py for the seeded recipe). Same inputs, same onnxruntime version -> same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hardmatch.quantize import calibration_images, calibration_method, calibration_patches, onnx_model_bytes, quantize_int8  # noqa: E402
from hardmatch.weights import DEFAULT_DESCRIPTOR, INT8_MODELS, REGISTRY, load_hardnet, resolve  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default=DEFAULT_DESCRIPTOR, choices=sorted(INT8_MODELS))
    parser.add_argument("--train-images", default=str(ROOT.parent / "shared" / "data" / "train-images"))
    parser.add_argument("--check", action="store_true", help="only compare a regenerated model with the shipped one")
    args = parser.parse_args()
    images = calibration_images(Path(args.train_images))
    model = quantize_int8(onnx_model_bytes(load_hardnet(args.weights)), calibration_patches(images),
                          calibration_method(args.weights))
    digest = hashlib.sha256(model).hexdigest()
    spec = REGISTRY[INT8_MODELS[args.weights]]
    if args.check:
        shipped, _ = resolve(spec.name, download=False)
        same = hashlib.sha256(shipped.read_bytes()).hexdigest() == digest
        print(f"{shipped}: {'identical to' if same else 'DIFFERS from'} the regenerated model (sha256 {digest})")
        sys.exit(0 if same else 1)
    out = resolve(args.weights, download=False)[0].parent / spec.filename  # beside the fp32 weights
    out.write_bytes(model)
    out.with_suffix(".sha256").write_text(f"{digest}  {out.name}\n")
    print(f"{out}: {len(model)} bytes from {len(images)} calibration images, sha256 {digest}")


if __name__ == "__main__":
    main()
