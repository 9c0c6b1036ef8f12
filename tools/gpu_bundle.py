"""Re-encode the training images for a GPU training call (run by ``bash tools/gpu.sh prepare train``).

    python tools/gpu_bundle.py --shared ../shared --out .gpu/shared/data/train-images
        # -> OUT/urban100, OUT/sunhays80 (training), OUT/bsd100 (held-out validation)

The images are re-encoded as grayscale JPEG (quality 90, longest side 1024 px: the synthetic source
converts to gray and downsizes to 1024 px anyway), so that they fit the device tool's 64 MiB carry
limit (about 40 MiB). The output mirrors ``shared/data/train-images``, so the device can point
HARDMATCH_SHARED at ``.gpu/shared`` (docs/gpu.md). Prints the total size; exits 1 when it would not
fit, 5 when a source folder is missing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2

NAMES = ("urban100", "sunhays80", "bsd100")  # training, training, held-out validation
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
    parser.add_argument("--out", default=".gpu/shared/data/train-images",
                        help="output folder inside the checkout (must be git-ignored)")
    parser.add_argument("--max-side", type=int, default=1024)
    parser.add_argument("--quality", type=int, default=90)
    args = parser.parse_args(argv)
    root = Path(args.shared) / "data" / "train-images"
    total = 0
    for name in NAMES:
        src_dir = root / name
        if not src_dir.is_dir():
            print(f"gpu_bundle: {src_dir} is missing", file=sys.stderr)
            return 5
        dst_dir = Path(args.out) / name
        dst_dir.mkdir(parents=True, exist_ok=True)
        files = sorted(p for p in src_dir.iterdir() if p.suffix.lower() in SUFFIXES)
        size = sum(reencode(p, dst_dir / (p.stem + ".jpg"), args.max_side, args.quality) for p in files)
        total += size
        print(f"{dst_dir}: {len(files)} images, {size / 2 ** 20:.1f} MiB")
    print(f"total {total / 2 ** 20:.1f} MiB (carry limit {CARRY_LIMIT / 2 ** 20:.0f} MiB for all carried paths)")
    return 0 if total < CARRY_LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
