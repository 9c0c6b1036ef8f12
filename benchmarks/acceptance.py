"""Measure the model-acceptance checks (hardmatch/geometry/acceptance.py): the frame (LAF) errors of the inliers
of right models (dev pairs, judged by ground truth) against those of wrong models (non-matching
pairs, and dev pairs whose model misses the ground truth), and what the checks accept.

    python benchmarks/nonmatching_pairs.py                      # the non-matching pairs file
    nice python benchmarks/acceptance.py collect --out eval-out/acceptance     # RANSAC output, checks off
    python benchmarks/acceptance.py report --out eval-out/acceptance           # percentiles + verdicts

``collect`` runs each configuration with ``accept_checks=False`` (and ``min_inliers=4``, so that
the inliers of models below ``min_inliers`` are kept for the statistics, ``ransac_attempts=1``) and stores, per pair and
configuration, the RANSAC model and inliers with their frames (``OUT/NAME.npz``, resumable).
The configurations are the presets and, for ``wide``, each MODS step on the features
accumulated up to it (``wide/hessaff-affnet``, ``wide/views-dog``; ``wide/base`` is
``default``). ``report`` applies :func:`hardmatch.geometry.acceptance.accept` offline, so tolerances can be
swept without re-running anything (``--set MAX_ANGLE_ERROR=45``); ``--attempts N`` re-runs
DEGENSAC with seeds 1..N-1 on the stored tentative matches as the pipeline's ``ransac_attempts``
does (the accepted model with the most inliers wins), judged by the ground truth again.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hardmatch.geometry import acceptance as acc  # noqa: E402
from hardmatch.datasets.registry import read_dataset  # noqa: E402
from hardmatch.datasets.scoring import judge  # noqa: E402
from hardmatch.core.io import load_gray  # noqa: E402
from hardmatch.core.records import Features  # noqa: E402
from hardmatch.twoview.pipeline import Pipeline  # noqa: E402

SHARED = Path(os.environ.get("HARDMATCH_SHARED", REPO.parent / "shared"))
SETS = {"homogr": ("data/homogr", "cmp"), "kusvod2-dev": ("data/kusvod2-dev", "cmp"), "graf": ("data/oxford/graf", "oxford")}
PRESETS = ("default", "fast", "affine", "sift", "rootsift")
WIDE_STEPS = ("wide/hessaff-affnet", "wide/views-dog")


def pair_specs(nonmatching: Path, sets: list, negative_geometry: str) -> list:
    specs = [("nonmatching", s) for s in read_dataset(nonmatching, "pairs", negative_geometry, allow_outside_root=True)] if str(nonmatching) not in ("", ".") else []
    for name in sets:
        folder, fmt = SETS[name]
        specs += [(name, s) for s in read_dataset(SHARED / folder, fmt)]
    return specs


def _record(path: Path, result, spec, geometry: str) -> None:
    right = False
    if result.model is not None and not spec.negative:
        right, _ = judge(spec, result.model, geometry)
    pairs = result.matches
    f1, f2 = result.features1, result.features2
    np.savez_compressed(
        path, model=np.zeros((0, 3)) if result.model is None else result.model, inliers=result.inliers,
        pts1=result.points1, pts2=result.points2, lafs1=f1.lafs[pairs[:, 0]], lafs2=f2.lafs[pairs[:, 1]],
        right=right, negative=spec.negative, geometry=geometry)


def _path(out: Path, dataset: str, spec, config: str, geometry: str) -> Path:
    return out / f"{dataset}__{spec.name.replace('/', '_')}__{config.replace('/', '_')}__{geometry}.npz"


def _base_is_enough(path: Path, min_inliers: int, step_inliers: int) -> bool:
    """Whether wide's first step (= default) is accepted with step_inliers: then wide never runs the others."""
    d = _load(path)
    if d["model"].shape != (3, 3):
        return False
    v = acc.accept(str(d["geometry"]), d["model"], d["inliers"].astype(bool), d["pts1"], d["pts2"], d["lafs1"],
                   d["lafs2"], min_inliers)
    return v.accepted and v.inliers.sum() >= step_inliers


def collect(args) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    configs = list(args.configs)
    for dataset, spec in pair_specs(args.nonmatching, args.sets, args.negative_geometry):
        if args.only and spec.name not in args.only:
            continue
        geometry = spec.geometry
        gray = None
        _STEP_FEATURES.clear()
        for config in configs:
            path = _path(args.out, dataset, spec, config, geometry)
            if path.exists():
                continue
            base = _path(args.out, dataset, spec, "default", geometry)
            if config in WIDE_STEPS and base.exists() and _base_is_enough(base, args.min_inliers, 15):
                continue
            if gray is None:
                gray = load_gray(spec.image1), load_gray(spec.image2)
            t0 = time.perf_counter()
            if config in WIDE_STEPS or config == "default":  # default = wide's first step, features shared
                result = _wide_step("wide/base" if config == "default" else config, geometry, *gray)
            else:
                result = Pipeline(config, geometry=geometry, accept_checks=False, min_inliers=4,
                                  ransac_attempts=1).match_pair(*gray)
            _record(path, result, spec, geometry)
            print(f"{dataset} {spec.name} {config}: {result.num_inliers} inliers, {time.perf_counter() - t0:.1f} s",
                  flush=True)


_WIDE = {}
_STEP_FEATURES: dict = {}


def _wide_step(config: str, geometry: str, gray1, gray2):
    """The RANSAC output of a wide step on the features of all steps up to it (checks off)."""
    from hardmatch.twoview.on_demand import OnDemandMatcher

    if geometry not in _WIDE:
        _WIDE[geometry] = OnDemandMatcher(Pipeline("wide", geometry=geometry, accept_checks=False,
                                                   min_inliers=4, ransac_attempts=1).config)
    matcher = _WIDE[geometry]
    last = [s.name for s in matcher.steps].index(config.split("/")[1])
    for step in matcher.steps[:last + 1]:
        for i, gray in ((1, gray1), (2, gray2)):
            if (i, step.name) not in _STEP_FEATURES:
                _STEP_FEATURES[i, step.name] = matcher.features(step, gray)
    parts1 = [_STEP_FEATURES[1, step.name] for step in matcher.steps[:last + 1]]
    parts2 = [_STEP_FEATURES[2, step.name] for step in matcher.steps[:last + 1]]
    return matcher.pipeline(matcher.steps[last]).match_features(Features.concat(parts1), Features.concat(parts2))


def _load(path: Path) -> dict:
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def _ground_truth_h() -> dict:
    table = {}
    for name in ("homogr", "graf"):
        folder, fmt = SETS[name]
        for spec in read_dataset(SHARED / folder, fmt):
            if spec.H is not None:
                table[name, spec.name.replace("/", "_")] = spec.H
    return table


def _outlier_models(rows: list) -> list:
    """More wrong models from real data: DEGENSAC (as the pipeline runs it) on the tentative
    matches of a homography dev pair that the ground truth H puts more than 10 px off, i.e. a
    pair's real outliers alone; its model and "inliers" are those of a wrong model."""
    from hardmatch.geometry.ransac import verify

    truth = _ground_truth_h()
    extra = []
    for dataset, pair, config, g, d in rows:
        if g != "homography" or (dataset, pair) not in truth or len(d["pts1"]) < 8:
            continue
        q = np.c_[d["pts1"], np.ones(len(d["pts1"]))] @ truth[dataset, pair].T
        off = np.linalg.norm(q[:, :2] / q[:, 2:] - d["pts2"], axis=1) > 10.0
        index = np.nonzero(off)[0]
        if len(index) < 8:
            continue
        v = verify(d["pts1"][index], d["pts2"][index], "homography")
        if v.model is None:
            continue
        inliers = np.zeros(len(d["pts1"]), bool)
        inliers[index[v.inliers]] = True
        extra.append(("outliers-of-" + dataset, pair, config, g, {**d, "model": v.model, "inliers": inliers,
                                                                  "right": np.bool_(False)}))
    return extra


def report(args) -> None:
    for item in args.set or []:
        name, value = item.split("=")
        setattr(acc, name, float(value))
    rows = []
    for path in sorted(args.out.glob("*.npz")):
        dataset, pair, config, geometry = path.stem.split("__")
        d = _load(path)
        rows.append((dataset, pair, config, str(geometry), d))
    if args.outlier_models:
        rows += _outlier_models(rows)
    # non-matching pairs also under F: same features and tentative matches, only RANSAC's model differs
    from hardmatch.geometry.ransac import verify

    for dataset, pair, config, g, d in list(rows):
        if dataset == "nonmatching" and g == "homography":
            v = verify(d["pts1"], d["pts2"], "fundamental")
            rows.append((dataset, pair, config, "fundamental",
                         {**d, "model": np.zeros((0, 3)) if v.model is None else v.model, "inliers": v.inliers}))
    # error distributions of the inliers of right vs wrong models (RANSAC inliers, before the checks)
    for geometry in ("homography", "fundamental"):
        groups = {"right": [], "wrong": []}
        for dataset, pair, config, g, d in rows:
            if g != geometry or d["model"].shape != (3, 3) or d["inliers"].sum() < 4:
                continue
            k = d["inliers"].astype(bool)
            if geometry == "homography":
                e = acc.laf_errors_homography(d["model"], d["lafs1"][k], d["lafs2"][k])
                e = np.stack([e["scale"], e["angle"], e["shape"]], axis=1)
            else:
                e = acc.laf_errors_fundamental(d["model"], d["lafs1"][k], d["lafs2"][k])[:, None]
            groups["right" if d["right"] else "wrong"].append(e)
        names = ("scale [oct]", "angle [deg]", "shape [log2]") if geometry == "homography" else ("axis epi [rel]",)
        for label, parts in groups.items():
            if not parts:
                continue
            e = np.concatenate(parts)
            print(f"{geometry} {label} models ({len(parts)}), {len(e)} RANSAC inliers: percentiles 50/90/95/99")
            for j, name in enumerate(names):
                col = e[:, j][np.isfinite(e[:, j])]
                print(f"  {name:14s} " + " ".join(f"{np.percentile(col, q):7.3f}" for q in (50, 90, 95, 99))
                      + f"   (inf: {np.sum(~np.isfinite(e[:, j]))})")
    # verdicts: before (RANSAC >= min_inliers) and after the checks
    verdicts = {}
    specs = _specs() if args.attempts > 1 else {}
    for dataset, pair, config, g, d in rows:
        verdicts[dataset, pair, config, g] = _verdict(d, g, args.min_inliers, args.attempts,
                                                      specs.get((dataset, pair)))
    for (dataset, pair, _, g) in list(verdicts):
        if (dataset, pair, "wide", g) not in verdicts and (dataset, pair, "default", g) in verdicts:
            verdicts[dataset, pair, "wide", g] = _wide_verdict(verdicts, dataset, pair, g)
    print("\nper preset and geometry: dev pairs matched (ground truth) before -> after; wrong models accepted "
          "before -> after on dev pairs; false accepts before -> after on non-matching pairs")
    table: dict = {}
    for (dataset, pair, config, g), v in sorted(verdicts.items()):
        t = table.setdefault((config, g), {"dev": 0, "matched_before": 0, "matched_after": 0, "wrong_before": 0,
                                           "wrong_after": 0, "negatives": 0, "false_before": 0, "false_after": 0})
        if dataset == "nonmatching":
            t["negatives"] += 1
            t["false_before"] += v["before"]
            t["false_after"] += v["after"]
            if v["after"] and args.verbose:
                print(f"  FALSE ACCEPT {pair} {config} {g}: {v['count']} inliers")
            continue
        t["dev"] += 1
        t["matched_before"] += v["right_before"]
        t["matched_after"] += v["right_after"]
        t["wrong_before"] += v["before"] and not v["right_before"]
        t["wrong_after"] += v["after"] and not v["right_after"]
        if args.verbose and v["right_before"] != v["right_after"]:
            print(f"  {'LOST' if v['right_before'] else 'GAINED'} {dataset} {pair} {config}: {v['reason']}")
        if args.verbose and v["after"] and not v["right_after"]:
            print(f"  WRONG ACCEPTED {dataset} {pair} {config} {g}: {v['count']} inliers")
    for (config, g), t in sorted(table.items()):
        print(f"  {config:22s} {g:12s} dev matched {t['matched_before']} -> {t['matched_after']} of {t['dev']}; "
              f"wrong accepted {t['wrong_before']} -> {t['wrong_after']}; false accepts {t['false_before']} -> "
              f"{t['false_after']} of {t['negatives']}")
    if args.json:
        Path(args.json).write_text(json.dumps({f"{c} {g}": t for (c, g), t in table.items()}, indent=1))


def _specs() -> dict:
    return {(name, spec.name.replace("/", "_")): spec for name, (folder, fmt) in SETS.items()
            for spec in read_dataset(SHARED / folder, fmt)}


def _verdict(d: dict, geometry: str, min_inliers: int, attempts: int = 1, spec=None) -> dict:
    """Before: RANSAC (seed 0) found >= min_inliers; after: :func:`hardmatch.geometry.acceptance.accept` passes
    (best of ``attempts`` seeds; a recomputed model is judged against ``spec``, none: negative)."""
    from hardmatch.geometry.ransac import verify

    has = d["model"].shape == (3, 3)
    before = bool(has and d["inliers"].sum() >= min_inliers)
    after, reason, count, right_after = False, "no model", 0, False
    for seed in range(attempts):
        if seed == 0:
            model, inliers = (d["model"], d["inliers"].astype(bool)) if has else (None, None)
        else:
            r = verify(d["pts1"], d["pts2"], geometry, seed=seed)
            model, inliers = r.model, r.inliers
        if model is None:
            continue
        v = acc.accept(geometry, model, inliers, d["pts1"], d["pts2"], d["lafs1"], d["lafs2"], min_inliers)
        if v.accepted and v.inliers.sum() > count:
            right = bool(d["right"]) if seed == 0 else (spec is not None and judge(spec, model, geometry)[0])
            after, reason, count, right_after = True, "", int(v.inliers.sum()), right
        elif not after and seed == 0:
            reason = v.reason
    return {"before": before, "after": after, "reason": reason, "count": count,
            "before_count": int(d["inliers"].sum()) if before else 0,
            "right_before": before and bool(d["right"]), "right_after": right_after}


def _wide_verdict(verdicts: dict, dataset: str, pair: str, g: str, step_inliers: int = 15) -> dict:
    """``wide`` simulated from its steps: stop at the first step with step_inliers; best accepted wins."""
    steps = [verdicts.get((dataset, pair, name, g)) for name in ("default", "wide_hessaff-affnet", "wide_views-dog")]
    out = {}
    for when, count in (("before", "before_count"), ("after", "count")):
        best = None
        for v in steps:
            if v is None:
                break
            if v[when] and (best is None or v[count] > best[count]):
                best = v
            if v[when] and v[count] >= step_inliers:
                break
        out[when] = best is not None
        out[f"right_{when}"] = best is not None and best[f"right_{when}"]
        out["count" if when == "after" else "before_count"] = best[count] if best else 0
        out["reason"] = "" if best else "every step rejected"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("collect", "report"))
    parser.add_argument("--out", type=Path, default=REPO / "eval-out/acceptance")
    parser.add_argument("--nonmatching", type=Path, default=REPO / "benchmarks/results/nonmatching/pairs.txt",
                        help="the non-matching pairs file ('' for none)")
    parser.add_argument("--sets", nargs="*", default=list(SETS))
    parser.add_argument("--configs", nargs="*", default=list(PRESETS) + list(WIDE_STEPS))
    parser.add_argument("--negative-geometry", default="homography")
    parser.add_argument("--only", nargs="*", help="collect: only these pair names")
    parser.add_argument("--min-inliers", type=int, default=10)
    parser.add_argument("--attempts", type=int, default=3, help="report: RANSAC attempts (the pipeline's ransac_attempts)")
    parser.add_argument("--set", action="append", help="report: NAME=VALUE overrides a tolerance of hardmatch.geometry.acceptance")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--outlier-models", action="store_true",
                        help="report: add wrong models fitted to each dev pair's ground-truth outliers")
    parser.add_argument("--json")
    args = parser.parse_args()
    collect(args) if args.command == "collect" else report(args)


if __name__ == "__main__":
    main()
