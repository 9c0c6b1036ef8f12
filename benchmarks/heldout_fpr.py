"""Held-out patch verification of descriptors on the same synthetic pairs: FPR95 / FDR95 of HardNet
weights against OpenCV SIFT and RootSIFT (each at its best keypoint size).

    python benchmarks/heldout_fpr.py --images .gpu/val/bsd100 --pairs 20000 \
        --weights hardnet-synth --weights hardnet-synth-v2 --weights runs/x/model.pth [--int8]

The pairs are made by the trainer's own validation code (:func:`hardmatch.train.validate.make_validation_set`,
fixed seed) from images that no model was trained on (bsd100). With 4000 pairs (the trainer's
default) one false positive moves FPR95 by 0.05 points; the default here is 20000 pairs.
``--int8`` adds a row for each weights' shipped int8 model (ONNX Runtime on CPU), the descriptor
``--precision int8`` (or ``auto`` with ``AUTO_INT8``) runs.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HARDMATCH_SHARED", ROOT.parent / "shared"))


def heldout_table(images: list[str], weights: list[str], pairs: int, device: str = "cpu", int8: bool = False) -> str:
    """Markdown table: one row per weights name/path (and its int8 model with ``int8``), then SIFT and RootSIFT."""
    import torch

    from hardmatch.train.validate import evaluate_baselines, fpr_at_recall, hardnet_distances, make_validation_set
    from hardmatch.features.describe import HardNetDescriptor
    from hardmatch.nets.weights import int8_model_name, load_hardnet

    data = make_validation_set(images, num_pairs=pairs)
    p1, p2, is_match = data
    lines = [f"{int(is_match.sum())} matching + {int((~is_match).sum())} non-matching pairs from "
             f"{', '.join(Path(i).name for i in images)}", "",
             "| descriptor | FPR95 | FDR95 |", "|---|---|---|"]
    for name in weights:
        with torch.inference_mode():
            fpr, fdr = fpr_at_recall(hardnet_distances(load_hardnet(name).to(device), p1, p2, device=device), is_match)
        lines.append(f"| HardNet {name} | {100 * fpr:.2f}% | {100 * fdr:.2f}% |")
        if int8 and int8_model_name(name) is not None:
            describe = HardNetDescriptor(name, device="cpu", precision="int8")
            distances = np.linalg.norm(describe(p1) - describe(p2), axis=1)
            fpr, fdr = fpr_at_recall(distances, is_match)
            lines.append(f"| HardNet {name}, int8 (ONNX Runtime) | {100 * fpr:.2f}% | {100 * fdr:.2f}% |")
    for name, (fpr, fdr, size) in evaluate_baselines(data).items():
        label = {"sift": "OpenCV SIFT", "rootsift": "RootSIFT"}[name]
        lines.append(f"| {label} (keypoint size {size:g}) | {100 * fpr:.2f}% | {100 * fdr:.2f}% |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", action="append", help="held-out image folder(s); default shared bsd100")
    parser.add_argument("--weights", action="append", help="registry name or .pth path (repeatable)")
    parser.add_argument("--pairs", type=int, default=20000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--int8", action="store_true", help="also the shipped int8 model of each weights")
    args = parser.parse_args(argv)
    images = args.images or [str(SHARED / "data" / "train-images" / "bsd100")]
    print(heldout_table(images, args.weights or ["hardnet-synth"], args.pairs, args.device, args.int8))


if __name__ == "__main__":
    main()
