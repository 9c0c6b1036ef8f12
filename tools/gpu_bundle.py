"""Pack what a GPU training call needs into .gpu/ (ignored by git, carried by the device tool).

    python tools/gpu_bundle.py --shared ../shared            # -> .gpu/train/{urban100,sunhays80}, .gpu/val/bsd100

The training images (urban100 + sunhays80) and the held-out validation images (bsd100) are
re-encoded as grayscale JPEG (quality 90, longest side 1024 px: the synthetic source converts to
gray and downsizes to 1024 px anyway), so that everything fits the device tool's 64 MiB carry limit.
Prints the total size; exits non-zero when it would not fit.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2

SETS = {"train": ("urban100", "sunhays80"), "val": ("bsd100",)}
CARRY_LIMIT = 64 * 2 ** 20
SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".ppm", ".pgm", ".webp"}


def reencode(src: Path, dst: Path, max_side: int, quality: int) -> int:
    """Write ``src`` as a grayscale JPEG at ``dst`` (longest side <= max_side); returns its size in bytes."""
    image = cv2.imread(str(src), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise SystemExit(f"gpu_bundle: cannot read {src}")
    side = max(image.shape)
    if side > max_side:
        f = max_side / side
        image = cv2.resize(image, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    if not cv2.imwrite(str(dst), image, [cv2.IMWRITE_JPEG_QUALITY, quality]):
        raise SystemExit(f"gpu_bundle: cannot write {dst}")
    return dst.stat().st_size


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default="../shared", help="the shared data folder (holds data/train-images)")
    parser.add_argument("--out", default=".gpu", help="bundle folder inside the checkout (must be git-ignored)")
    parser.add_argument("--max-side", type=int, default=1024)
    parser.add_argument("--quality", type=int, default=90)
    args = parser.parse_args(argv)
    root = Path(args.shared) / "data" / "train-images"
    total = 0
    for role, names in SETS.items():
        for name in names:
            src_dir = root / name
            if not src_dir.is_dir():
                print(f"gpu_bundle: {src_dir} is missing", file=sys.stderr)
                return 5
            dst_dir = Path(args.out) / role / name
            dst_dir.mkdir(parents=True, exist_ok=True)
            files = sorted(p for p in src_dir.iterdir() if p.suffix.lower() in SUFFIXES)
            size = sum(reencode(p, dst_dir / (p.stem + ".jpg"), args.max_side, args.quality) for p in files)
            total += size
            print(f"{dst_dir}: {len(files)} images, {size / 2 ** 20:.1f} MiB")
    print(f"total {total / 2 ** 20:.1f} MiB (carry limit {CARRY_LIMIT / 2 ** 20:.0f} MiB for all carried paths)")
    return 0 if total < CARRY_LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
