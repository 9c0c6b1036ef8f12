"""Dev-set table: matched pairs and mean inliers per set, for presets and option sweeps, in one run.

    python benchmarks/dev_table.py --shared ../shared --preset default --preset sift --preset rootsift \
        --sweep ratio=0.8,0.85,0.9 --out benchmarks/results/dev_table.json

A pair counts as matched by the rule of shared/README.md (H: mean reprojection error of the
ground-truth points <= 5 px; F: mean symmetric epipolar distance <= 3 px). Mean inliers are
averaged over matched pairs. Features are computed once per image and preset, and reused by every
value of a sweep over matching/verification options (ratio, matcher, ransac, threshold); a sweep
over a detection/description option (magnification, nfeatures, ...) recomputes them.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from hardmatch.twoview.config import get_preset
from hardmatch.datasets.registry import read_dataset
from hardmatch.datasets.scoring import judge
from hardmatch.evaluation.specs import parse_pipeline_spec
from hardmatch.core.io import load_gray
from hardmatch.twoview.pipeline import Pipeline

SETS = {"homogr": ("data/homogr", "cmp"), "kusvod2-dev": ("data/kusvod2-dev", "cmp"), "graf": ("data/oxford/graf", "oxford")}
MATCH_OPTIONS = {"ratio", "matcher", "fginn_radius", "ransac", "threshold", "max_iters", "confidence", "seed",
                 "min_inliers", "laf_check", "ransac_attempts", "duplicate_radius", "accept_checks"}


def parse_sweep(text: str | None) -> tuple[str | None, list]:
    """``name=v1,v2,...`` -> (name, values cast by the option's type, as ``hardmatch eval`` casts them)."""
    if not text:
        return None, [None]
    name, values = text.split("=", 1)
    return name, [dict(parse_pipeline_spec(f"default:{name}={v}").options)[name] for v in values.split(",")]


def evaluate(preset: str, sets: dict, sweep_name: str | None, sweep_values: list, options: dict) -> list[dict]:
    rows = []
    base_options = dict(options)
    feature_cache: dict = {}
    for value in sweep_values:
        opts = dict(base_options)
        if sweep_name is not None:
            opts[sweep_name] = value
        describe_opts = {k: v for k, v in opts.items() if k not in MATCH_OPTIONS}
        pipeline = Pipeline(preset, **opts)
        for set_name, specs in sets.items():
            for spec in specs:
                feats = []
                for path in (spec.image1, spec.image2):
                    key = (str(path), tuple(sorted(describe_opts.items())))
                    if key not in feature_cache:
                        feature_cache[key] = pipeline.extract(load_gray(path))
                    feats.append(feature_cache[key])
                geometry_pipeline = Pipeline(pipeline.config.with_options(geometry=spec.geometry))
                t0 = time.perf_counter()
                result = geometry_pipeline.match_features(*feats)
                match_time = time.perf_counter() - t0
                sizes = tuple((f.image_shape[1], f.image_shape[0]) for f in feats)
                matched, error = judge(spec, result.model, spec.geometry, image_sizes=sizes)
                rows.append({"preset": preset, "sweep": sweep_name, "value": value, "set": set_name, "pair": spec.name,
                             "matched": bool(matched), "inliers": result.num_inliers, "tentatives": result.num_matches,
                             "error": None if not np.isfinite(error) else round(float(error), 3),
                             "features": list(result.num_features),
                             "describe_s": round(sum(f.timings.get("describe", 0) + f.timings.get("patches", 0) for f in feats), 3),
                             "match_verify_s": round(match_time, 3)})
                print(f"{preset:10s} {sweep_name or '':10s} {str(value):6s} {set_name:12s} {spec.name:18s} "
                      f"{'OK ' if matched else 'no '} inl {result.num_inliers:5d} err {error:8.2f}", flush=True)
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    table = {}
    for r in rows:
        key = (r["preset"], r["sweep"], r["value"], r["set"])
        t = table.setdefault(key, {"pairs": 0, "matched": 0, "inliers": []})
        t["pairs"] += 1
        if r["matched"]:
            t["matched"] += 1
            t["inliers"].append(r["inliers"])
    out = []
    for (preset, sweep, value, set_name), t in table.items():
        out.append({"preset": preset, "sweep": sweep, "value": value, "set": set_name,
                    "matched": f"{t['matched']}/{t['pairs']}",
                    "mean_inliers": round(float(np.mean(t["inliers"])), 1) if t["inliers"] else 0.0})
    return out


def markdown(summary: list[dict]) -> str:
    sets = list(dict.fromkeys(s["set"] for s in summary))
    lines = ["| pipeline | " + " | ".join(f"{s} matched | {s} mean inliers" for s in sets) + " |",
             "|---|" + "---|---|" * len(sets)]
    keys = list(dict.fromkeys((s["preset"], s["sweep"], s["value"]) for s in summary))
    for key in keys:
        name = key[0] + (f" {key[1]}={key[2]}" if key[1] else "")
        cells = []
        for set_name in sets:
            s = next(x for x in summary if (x["preset"], x["sweep"], x["value"], x["set"]) == (*key, set_name))
            cells += [s["matched"], str(s["mean_inliers"])]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default=str(Path(__file__).resolve().parents[1].parent / "shared"))
    parser.add_argument("--preset", action="append", help="preset(s) to evaluate (repeatable); default: default")
    parser.add_argument("--sweep", help="one option and its values, e.g. ratio=0.8,0.85,0.9")
    parser.add_argument("--set", action="append", choices=sorted(SETS), help="restrict to these sets")
    parser.add_argument("--option", action="append", default=[], help="fixed option NAME=VALUE for every preset")
    parser.add_argument("--out", help="write rows and summary as JSON here")
    args = parser.parse_args()
    shared = Path(args.shared)
    sets = {name: read_dataset(shared / SETS[name][0], SETS[name][1]) for name in (args.set or SETS)}
    sweep_name, sweep_values = parse_sweep(args.sweep)
    fixed = {}
    for item in args.option:
        name, value = item.split("=", 1)
        fixed[name] = parse_sweep(f"{name}={value}")[1][0]
    rows = []
    t0 = time.time()
    for preset in args.preset or ["default"]:
        get_preset(preset)
        rows += evaluate(preset, sets, sweep_name, sweep_values, fixed)
    summary = summarise(rows)
    print()
    print(markdown(summary))
    print(f"\ntotal {time.time() - t0:.0f} s")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"summary": summary, "rows": rows, "options": fixed}, indent=1))


if __name__ == "__main__":
    main()
