"""Extreme-view dev set: matched pairs, false accepts and time per pair for hardmatch pipelines and
OpenCV's ASIFT (``cv2.AffineFeature`` over SIFT, ratio 0.8 + DEGENSAC), interleaved in one run.

    nice python benchmarks/extreme_views.py          # default, wide-previous, wide, asift on every set
    nice python benchmarks/extreme_views.py --method wide --method wide:view_tilts=2/4/6 --set generated

Sets: ``generated`` (the seeded EVD-like pairs of ``make_evd_like.py``, made under ``--data`` when
absent), ``nonmatching`` (image 1 of one generated scene with image 2 of another: every returned
model is a false accept), ``homogr`` (LePoint1-3, ExtremeZoom), ``graf`` (graf 1-4, 1-5), the hard
tier ``hard`` / ``hard-nonmatching`` (``make_evd_like.py --tier hard``, folder ``--hard``), and
``lepoint-cross`` (homogr's six LePoint photos crossed: 12 real pairs, ``make_lepoint_cross.py``). A pair
is matched when the ground-truth points reproject within 5 px under the returned H (shared/README
rule); a model returned on a matching pair that is not right is counted as a false accept too.
Nothing is judged by inlier count.

``--method`` is ``asift``, ``wide-previous`` (the steps ``wide`` had before: base, Hessian-affine
+ AffNet, DoG on tilts 2 and 4) or a pipeline spec as ``hardmatch eval`` takes it (``wide``,
``wide:view_tilts=2/4/6``). Pairs are run method by method in turn (same pair, then the next), so
the time ratios between methods hold on a shared machine. Every method first runs once on a small
non-matching pair (start-up: imports, model loading; printed, not timed; ``--no-warm-up`` times it
with the first pair). Rows go to ``OUT/rows.jsonl`` as they finish (a re-run resumes; ``step_seconds``
and ``steps`` (tentatives, inliers, log10 NFA of the step's model, reason) per step of an on-demand
pipeline; ``--nfa-epsilon`` sets its a-contrario threshold), the table to ``OUT/table.md``.
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
from hardmatch.evaluation.specs import parse_pipeline_spec
from hardmatch.core.io import load_gray
from hardmatch.twoview.on_demand import OnDemandMatcher
from hardmatch.twoview.steps import Step
from hardmatch.twoview.api import build_matcher
from hardmatch.geometry.ransac import verify

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared"


def _generator(name: str = "make_evd_like"):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_sets(shared: Path, data: Path, seed: int, count: int, nonmatching: int, hard: Path | None = None,
              lepoint: Path | None = None) -> dict:
    """name -> list of PairSpec (nonmatching pairs carry no ground truth; the first ``nonmatching`` of them).

    ``hard``: the hard tier's folder (``make_evd_like.py --tier hard``, made there with its defaults when
    absent): sets ``hard`` and ``hard-nonmatching``. ``lepoint``: the folder of ``make_lepoint_cross.py`` (made
    there when absent): set ``lepoint-cross``."""
    if not (data / "h").is_dir():
        gen = _generator()
        gen.generate(shared / "data" / "train-images" / "bsd100", data, count=count, seed=seed)
    tiers = {}
    if hard is not None:
        if not (hard / "h").is_dir():
            gen = _generator()
            gen.generate_hard(gen.HARD_SOURCE, hard)
        tiers = {"hard": read_dataset(hard, "evd"),
                 "hard-nonmatching": read_dataset(hard / "nonmatching.txt", "pairs")[:nonmatching]}
    if lepoint is not None:
        if not (lepoint / "pairs.json").is_file():
            _generator("make_lepoint_cross").make(shared, lepoint, log=lambda line: None)
        tiers["lepoint-cross"] = read_dataset(lepoint, "cmp")
    homogr = {s.name: s for s in read_dataset(shared / "data" / "homogr", "cmp")}
    graf = {s.name: s for s in read_dataset(shared / "data" / "oxford" / "graf", "oxford")}
    return {
        "generated": read_dataset(data, "evd"),
        "nonmatching": read_dataset(data / "nonmatching.txt", "pairs")[:nonmatching],
        "homogr": [homogr[n] for n in ("LePoint1", "LePoint2", "LePoint3", "ExtremeZoom")],
        "graf": [graf[n] for n in ("graf/1-4", "graf/1-5")],
        **tiers,
    }


class ASIFT:
    """OpenCV ASIFT (cv2.AffineFeature over SIFT, its default tilts/angles), ratio 0.8, DEGENSAC 3 px."""

    def __init__(self, ratio: float = 0.8) -> None:
        self.ratio = ratio
        self.features = cv2.AffineFeature_create(cv2.SIFT_create())
        self.matcher = cv2.BFMatcher(cv2.NORM_L2)

    def __call__(self, image1: np.ndarray, image2: np.ndarray):
        k1, d1 = self.features.detectAndCompute(image1, None)
        k2, d2 = self.features.detectAndCompute(image2, None)
        if d1 is None or d2 is None or len(k1) < 2 or len(k2) < 2:
            return None, 0
        pairs = [m[0] for m in self.matcher.knnMatch(d1, d2, k=2)
                 if len(m) == 2 and m[0].distance < self.ratio * m[1].distance]
        pts1 = np.float64([k1[m.queryIdx].pt for m in pairs]).reshape(-1, 2)
        pts2 = np.float64([k2[m.trainIdx].pt for m in pairs]).reshape(-1, 2)
        result = verify(pts1, pts2, "homography", "degensac")
        if result.model is None or result.num_inliers < 10:  # hardmatch's default min_inliers
            return None, result.num_inliers
        return result.model, result.num_inliers


def previous_wide_steps() -> tuple:
    """The steps of ``wide`` before the extreme-view steps: base, Hessian-affine + AffNet, DoG on
    ASIFT views of tilts 2 and 4 at 72/t degrees (600 frames per view)."""
    return (
        Step("base"),
        Step("hessaff-affnet", {"detector": "hessaff", "affine": "affnet", "nfeatures": 4000, "matcher": "fginn"}),
        Step("views-dog", {"detector": "dog", "nfeatures": 600, "matcher": "fginn"}, tilts=(2.0, 4.0), angle_step=72.0),
    )


#: What a row keeps of each step of an on-demand pipeline (``steps``).
STEP_KEYS = ("step", "matches", "inliers", "seconds", "log10_nfa", "nfa_k", "nfa_radius_px", "reason")


def make_method(label: str, nfa_epsilon: float | None = None):
    """label -> callable(gray1, gray2) -> (H or None, inliers, step, [per-step dicts] or None).

    ``asift``; ``wide-previous`` (the wide preset's earlier steps, for time ratios); or a pipeline spec.
    ``nfa_epsilon``: the a-contrario threshold of an on-demand matcher (default its own, 1)."""
    if label == "asift":
        asift = ASIFT()
        return lambda g1, g2: (*asift(g1, g2), None, None)
    if label.startswith("wide-density="):  # the label of stop 21's runs: wide:view_density=D[,options]
        value, _, rest = label[len("wide-density="):].partition(":")
        label = f"wide:view_density={value}" + ("," + rest if rest else "")
    if label.startswith("wide-previous"):  # options as for wide: wide-previous:step_inliers=...
        config = parse_pipeline_spec("wide" + label[len("wide-previous"):]).config
        matcher = OnDemandMatcher(config.with_options(geometry="homography"), previous_wide_steps())
    else:
        matcher = build_matcher(parse_pipeline_spec(label).config.with_options(geometry="homography"))
    if nfa_epsilon is not None and isinstance(matcher, OnDemandMatcher):
        matcher.nfa_epsilon = float(nfa_epsilon)

    def run(g1, g2):
        result = matcher.match_pair(g1, g2)
        steps = [{k: t.get(k) for k in STEP_KEYS} for t in getattr(result, "steps", None) or []]
        return result.model, result.num_inliers, result.step, steps or None
    return run


def run_pair(label: str, method, set_name: str, spec) -> dict:
    g1, g2 = load_gray(spec.image1), load_gray(spec.image2)
    t0 = time.perf_counter()
    model, inliers, step, steps = method(g1, g2)
    seconds = time.perf_counter() - t0
    row = {"method": label, "set": set_name, "pair": spec.name, "seconds": round(seconds, 2), "inliers": int(inliers),
           "model": model is not None, "step": step}
    if steps:
        row["step_seconds"] = {t["step"]: t["seconds"] for t in steps}
        row["steps"] = steps  # per step: tentatives, inliers, log10 NFA of its model, reason
    if set_name.endswith("nonmatching"):
        row.update(matched=False, error=None, false_accept=model is not None)
    else:
        sizes = ((g1.shape[1], g1.shape[0]), (g2.shape[1], g2.shape[0]))
        matched, error = judge(spec, model, "homography", sizes)
        row.update(matched=matched, error=None if not np.isfinite(error) else round(error, 2),
                   false_accept=model is not None and not matched)
    return row


def warm_up(runners: dict, sets: dict, set_names: list) -> dict:
    """Run every method once on a small pair that does not match (image 1 of one pair, image 2 of the next,
    at most 320 px), so that start-up (imports, model loading, first allocations) is not timed as part of
    the first pair: method -> seconds of that run."""
    specs = [spec for name in set_names for spec in sets[name] if not name.endswith("nonmatching")]
    specs = specs or [spec for name in set_names for spec in sets[name]]
    if len(specs) < 2:
        return {}
    small = []
    for path in (specs[0].image1, specs[1].image2):
        gray = load_gray(path)
        scale = min(1.0, 320.0 / max(gray.shape))
        small.append(cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))
    seconds = {}
    for label, method in runners.items():
        t0 = time.perf_counter()
        method(*small)
        seconds[label] = round(time.perf_counter() - t0, 2)
    return seconds


def table(rows: list, methods: list, sets: list) -> str:
    head = "| method | " + " | ".join(f"{s}: false acc. / s per pair" if s.endswith("nonmatching") else
                                       f"{s}: matched / wrong models / s per pair" for s in sets)
    head += " | time, all pairs | slowest pair |"
    lines = [head, "|---" * (len(sets) + 3) + "|"]
    reference = "asift" if "asift" in methods else methods[0]
    # time ratios over the pairs every method ran (same pairs, interleaved)
    keys = {m: {(r["set"], r["pair"]) for r in rows if r["method"] == m} for m in methods}
    common = set.intersection(*keys.values()) if keys else set()
    total = {m: sum(r["seconds"] for r in rows if r["method"] == m and (r["set"], r["pair"]) in common)
             for m in methods}
    for m in methods:
        cells = []
        for s in sets:
            rs = [r for r in rows if r["method"] == m and r["set"] == s]
            if not rs:
                cells.append("-")
                continue
            fa = sum(r["false_accept"] for r in rs)
            sec = np.mean([r["seconds"] for r in rs])
            if s.endswith("nonmatching"):
                cells.append(f"{fa}/{len(rs)}, {sec:.1f} s")
            else:
                cells.append(f"{sum(r['matched'] for r in rs)}/{len(rs)}, {fa}, {sec:.1f} s")
        ratio = total[m] / total[reference] if total[reference] else float("nan")
        cells.append(f"{total[m]:.0f} s ({ratio:.2f}x {reference})")
        slowest = max((r for r in rows if r["method"] == m), key=lambda r: r["seconds"], default=None)
        cells.append("-" if slowest is None else f"{slowest['seconds']:.1f} s ({slowest['pair']})")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default=str(SHARED))
    parser.add_argument("--data", default=str(HERE.parent / "out" / "evd-like"), help="generated set (made if absent)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--count", type=int, default=12, help="generated pairs (when the set is made)")
    parser.add_argument("--nonmatching", type=int, default=6, help="non-matching pairs to run")
    parser.add_argument("--method", action="append", help="asift, wide-previous or a pipeline spec (default: default, wide-previous, wide, asift)")
    parser.add_argument("--set", action="append",
                        choices=("generated", "nonmatching", "homogr", "graf", "hard", "hard-nonmatching",
                                 "lepoint-cross"))
    parser.add_argument("--hard", default=str(HERE.parent / "out" / "evd-hard"),
                        help="hard tier folder for the sets hard and hard-nonmatching (made if absent)")
    parser.add_argument("--lepoint", default=str(HERE.parent / "out" / "lepoint-cross"),
                        help="folder of the set lepoint-cross (make_lepoint_cross.py; made if absent)")
    parser.add_argument("--pair", action="append", help="only these pair names")
    parser.add_argument("--out", default=str(HERE.parent / "out" / "extreme_views"))
    parser.add_argument("--nfa-epsilon", type=float, default=None,
                        help="a-contrario threshold of the on-demand methods (default 1: log10 NFA < 0)")
    parser.add_argument("--no-warm-up", action="store_true",
                        help="time the first pair with the start-up (by default every method runs once first on a "
                             "small non-matching pair, reported as start-up)")
    args = parser.parse_args()
    shared = Path(args.shared)
    if not (shared / "data").is_dir():
        raise SystemExit(f"{shared}/data is absent: pass --shared")
    methods = args.method or ["default", "wide-previous", "wide", "asift"]
    set_names = args.set or ["generated", "nonmatching", "homogr", "graf"]
    wants_hard = any(s.startswith("hard") for s in set_names)
    sets = load_sets(shared, Path(args.data), args.seed, args.count, args.nonmatching,
                     Path(args.hard) if wants_hard else None,
                     Path(args.lepoint) if "lepoint-cross" in set_names else None)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows_path = out / "rows.jsonl"
    done = {}
    if rows_path.is_file():
        for line in rows_path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                done[(r["method"], r["set"], r["pair"])] = r
    runners = {m: make_method(m, args.nfa_epsilon) for m in methods}
    if not args.no_warm_up:
        for label, seconds in warm_up(runners, sets, set_names).items():
            print(f"start-up {label}: {seconds} s (a small non-matching pair, not timed below)", flush=True)
    rows = []
    with rows_path.open("a") as sink:
        for set_name in set_names:
            for spec in sets[set_name]:
                if args.pair and spec.name not in args.pair:
                    continue
                for m in methods:  # interleaved: every method on this pair before the next pair
                    key = (m, set_name, spec.name)
                    if key not in done:
                        done[key] = run_pair(m, runners[m], set_name, spec)
                        sink.write(json.dumps(done[key]) + "\n")
                        sink.flush()
                    r = done[key]
                    rows.append(r)
                    print(f"{set_name:11s} {spec.name:18s} {m:28s} {'OK ' if r['matched'] else 'no '}"
                          f"{'FALSE-ACCEPT ' if r['false_accept'] else ''}inl {r['inliers']:5d} "
                          f"err {r['error']} step {r['step']} {r['seconds']:6.1f} s", flush=True)
    text = table(rows, methods, set_names)
    (out / "table.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
