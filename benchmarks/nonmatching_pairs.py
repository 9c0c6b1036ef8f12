"""Write a seeded list of NON-matching pairs (image A of one dev scene against image B of another)
as a ``pairs`` file that ``hardmatch eval --format pairs`` reads; every line ends in ``none``, so any
model a pipeline returns for it counts as a false accept (column "false accepts" of summary.md).

    python benchmarks/nonmatching_pairs.py --out benchmarks/results/nonmatching/pairs.txt
    nice hardmatch eval benchmarks/results/nonmatching/pairs.txt --format pairs --geometry homography \
        --pipeline default --pipeline fast --pipeline affine --pipeline wide --pipeline sift --pipeline rootsift \
        --workers 1 --out eval-out/nonmatching --allow-outside-root    # its paths lead to ../shared

Scenes: ../shared/data/homogr and kusvod2-dev (``NAMEA``/``NAMEB``) and oxford/graf (img1 / img2..img5).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hardmatch.datasets.files import IMAGE_EXTENSIONS  # noqa: E402


def scenes(shared: Path) -> dict:
    """scene name -> (list of 'A' images, list of 'B' images) over the dev sets."""
    found = {}
    for folder in ("data/homogr", "data/kusvod2-dev"):
        root = shared / folder
        for image in sorted(root.iterdir()):
            if image.suffix.lower() in IMAGE_EXTENSIONS and image.stem.endswith("A"):
                partners = [p for p in root.glob(image.stem[:-1] + "B.*") if p.suffix.lower() in IMAGE_EXTENSIONS]
                if partners:
                    found[f"{folder.split('/')[-1]}/{image.stem[:-1]}"] = ([image], partners)
    graf = shared / "data/oxford/graf"
    if graf.is_dir():
        found["oxford/graf"] = ([graf / "img1.png"], sorted(graf.glob("img[2-5].png")))
    return found


def scene_group(name: str) -> str:
    """Scenes that may show the same place share a group: the first 5 letters of the scene name
    (LePoint1..3, Boston/BostonLib, BruggeSquare/BruggeTower, homogr/graf and oxford/graf)."""
    return "".join(ch for ch in name.split("/")[-1].lower() if ch.isalpha())[:5]


def nonmatching_pairs(shared: Path, count: int, seed: int) -> list:
    """``count`` distinct (image A of scene X, image B of scene Y from another group) pairs, seeded."""
    rng = random.Random(seed)
    table = scenes(shared)
    names = sorted(table)
    if len(names) < 2:
        raise SystemExit(f"{shared}: fewer than two dev scenes found")
    pairs, seen = [], set()
    while len(pairs) < count and len(seen) < len(names) * (len(names) - 1):
        x, y = rng.sample(names, 2)
        if (x, y) in seen or scene_group(x) == scene_group(y):
            seen.add((x, y))
            continue
        seen.add((x, y))
        pairs.append((rng.choice(table[x][0]), rng.choice(table[y][1])))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=Path(os.environ.get("HARDMATCH_SHARED", REPO.parent / "shared")))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/nonmatching/pairs.txt")
    parser.add_argument("--count", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    base = args.out.parent.resolve()
    lines = [f"# {args.count} non-matching pairs, seed {args.seed}: python benchmarks/nonmatching_pairs.py "
             f"--count {args.count} --seed {args.seed}"]
    for a, b in nonmatching_pairs(args.shared, args.count, args.seed):
        lines.append(f"{os.path.relpath(a, base)} {os.path.relpath(b, base)} none")
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {len(lines) - 1} pairs to {args.out}")


if __name__ == "__main__":
    main()
