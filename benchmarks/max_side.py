"""Working resolution sweep: matched dev pairs and time against ``max_side``.

    python benchmarks/max_side.py --values 1280,1600,2048,0 [--preset default] [--out FILE.json]

Only pairs with an image larger than a value are affected by it; every other pair gives exactly
the result of ``max_side=0`` (the working image is then the image itself and the pipeline is
deterministic), so it is computed once and counted for every value; with ``--baseline DIR``
(``hardmatch eval`` output folders per set, e.g. benchmarks/results/eval) pairs that no value
affects are read from DIR/<set>/results.jsonl (rows of the same preset) instead of recomputed. Affected pairs are run with
every value in turn (interleaved), so their time ratios come from the same stretch of machine load.
A pair counts as matched by the rule of ``hardmatch eval`` (shared/README.md).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from hardmatch.datasets.registry import read_dataset
from hardmatch.datasets.scoring import judge
from hardmatch.twoview.api import build_matcher

SETS = {"homogr": ("data/homogr", "cmp"), "kusvod2-dev": ("data/kusvod2-dev", "cmp"), "graf": ("data/oxford/graf", "oxford")}


def _max_side(path: Path) -> int:
    return max(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).shape)


def _baseline_rows(folder: Path | None, set_name: str, preset: str) -> dict:
    if folder is None or not (folder / set_name / "results.jsonl").is_file():
        return {}
    rows = [json.loads(line) for line in (folder / set_name / "results.jsonl").read_text().splitlines() if line]
    return {r["pair"]: {"matched": r["matched"], "inliers": r["inliers"], "seconds": r["time_total"],
                        "error": r["error_px"], "from": str(folder)} for r in rows if r["pipeline"] == preset}


def sweep(shared: Path, values: list[int], preset: str = "default", baseline: Path | None = None) -> list[dict]:
    rows = []
    for set_name, (folder, fmt) in SETS.items():
        known = _baseline_rows(baseline, set_name, preset)
        for spec in read_dataset(shared / folder, fmt):
            side = max(_max_side(spec.image1), _max_side(spec.image2))
            distinct = sorted({v if 0 < v < side else 0 for v in values})  # values that change this pair
            results = {}
            if distinct == [0] and spec.name in known:
                results[0] = known[spec.name]
                distinct = []
            for value in distinct:
                pipeline = build_matcher(preset, max_side=value, geometry=spec.geometry)
                t0 = time.perf_counter()
                result = pipeline.match_pair(spec.image1, spec.image2)
                seconds = time.perf_counter() - t0
                matched, error = judge(spec, result.model, spec.geometry)
                results[value] = {"matched": bool(matched), "inliers": result.num_inliers, "seconds": seconds,
                                  "error": None if not np.isfinite(error) else round(float(error), 2)}
            for value in values:
                key = value if 0 < value < side else 0
                rows.append({"set": set_name, "pair": spec.name, "max_side": value, "image_side": side,
                             "affected": key != 0, **results[key]})
                r = rows[-1]
                print(f"{set_name:12s} {spec.name:16s} side {side:5d} max_side {value:5d} "
                      f"{'OK ' if r['matched'] else 'no '} inl {r['inliers']:5d} {r['seconds']:6.1f} s", flush=True)
    return rows


def markdown(rows: list[dict], values: list[int]) -> str:
    sets = list(SETS)
    off = {(r["set"], r["pair"]): r for r in rows if r["max_side"] == 0}
    lines = ["| max_side | " + " | ".join(sets) + " | all | mean inliers (matched) | time on pairs it shrinks "
             "[s] | same pairs at 0 (off) [s] |", "|---|" + "---|" * (len(sets) + 4)]
    for value in values:
        mine = [r for r in rows if r["max_side"] == value]
        cells = []
        for s in sets:
            in_set = [r for r in mine if r["set"] == s]
            cells.append(f"{sum(r['matched'] for r in in_set)}/{len(in_set)}")
        inliers = [r["inliers"] for r in mine if r["matched"]]
        affected = [r for r in mine if r["affected"]]
        t = sum(r["seconds"] for r in affected)
        t_off = sum(off[(r["set"], r["pair"])]["seconds"] for r in affected)
        label = "0 (off)" if value == 0 else str(value)
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {sum(r['matched'] for r in mine)}/{len(mine)} | "
                     f"{np.mean(inliers):.1f} | {t:.1f} ({len(affected)} pairs) | {t_off:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default=str(Path(__file__).resolve().parents[1].parent / "shared"))
    parser.add_argument("--values", default="1280,1600,2048,0", help="max_side values, comma-separated (0: off)")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--baseline", help="eval output folder per set: read pairs no value affects from there")
    parser.add_argument("--out", help="write the rows as JSON here")
    args = parser.parse_args()
    values = [int(v) for v in args.values.split(",")]
    if 0 not in values:
        values.append(0)
    rows = sweep(Path(args.shared), values, args.preset, Path(args.baseline) if args.baseline else None)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))
    print(markdown(rows, values))


if __name__ == "__main__":
    main()
