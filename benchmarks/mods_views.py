"""The view-synthesis step of ``--preset wide`` alone on hard pairs: patches cut from the original image
(the default) vs described on the synthesized view, plus worst-case timing of the whole on-demand loop.

    python benchmarks/mods_views.py                      # patches_from comparison on graf 1-4/1-5, LePoint2/3
    python benchmarks/mods_views.py --all-steps Boston   # every step forced (step_inliers huge): worst-case time
    python benchmarks/mods_views.py --tilts 2 --tilts 2,4 --tilts 2,4,6   # the views step alone per tilt set

Prints, per pair: matched (shared/README rule), error px, inliers, features per image, tentatives, seconds.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from hardmatch.twoview.config import get_preset
from hardmatch.datasets.registry import read_dataset
from hardmatch.datasets.scoring import judge
from hardmatch.core.io import load_gray
from hardmatch.twoview.on_demand import OnDemandMatcher

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def load_specs(shared: Path) -> dict:
    specs = {s.name: s for s in read_dataset(shared / "data" / "oxford" / "graf", "oxford")}
    specs.update({s.name: s for s in read_dataset(shared / "data" / "homogr", "cmp")})
    specs.update({s.name: s for s in read_dataset(shared / "data" / "kusvod2-dev", "cmp")})
    return specs


def views_step(config):
    """The first view-synthesis step of ``wide`` (``hardmatch.twoview.on_demand.default_steps``)."""
    return next(step for step in OnDemandMatcher(config).steps if step.name == "views")


def run(spec, matcher: OnDemandMatcher) -> str:
    t0 = time.perf_counter()
    result = matcher.match_pair(spec.image1, spec.image2)
    seconds = time.perf_counter() - t0
    g1, g2 = load_gray(spec.image1), load_gray(spec.image2)
    matched, error = judge(spec, result.model, spec.geometry, ((g1.shape[1], g1.shape[0]), (g2.shape[1], g2.shape[0])))
    steps = " ".join(f"{s['step']}:{s['inliers']}/{s['seconds']:.1f}s" for s in result.steps)
    return (f"{'OK' if matched else 'no'} err {error:6.2f} inliers {result.num_inliers:5d} "
            f"features {result.num_features} tentatives {result.num_matches:5d} {seconds:6.1f} s  [{steps}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default=str(SHARED))
    parser.add_argument("--all-steps", nargs="*", help="pairs to run through every step (worst-case time)")
    parser.add_argument("--tilts", action="append", help="view tilt sets to compare (views step alone, patches from the original)")
    args = parser.parse_args()
    specs = load_specs(Path(args.shared))
    if args.all_steps:
        for name in args.all_steps:
            config = get_preset("wide").with_options(geometry=specs[name].geometry, step_inliers=10 ** 9)
            print(f"{name:10s} all steps  {run(specs[name], OnDemandMatcher(config))}", flush=True)
        return
    if args.tilts:
        for tilts in args.tilts:
            for name in ("graf/1-5", "LePoint2", "LePoint3"):
                config = get_preset("wide").with_options(geometry=specs[name].geometry, view_tilts=tilts)
                matcher = OnDemandMatcher(config, steps=(views_step(config),))
                print(f"tilts {tilts:8s} {name:10s}  {run(specs[name], matcher)}", flush=True)
        return
    for name in ("graf/1-4", "graf/1-5", "LePoint2", "LePoint3"):
        config = get_preset("wide").with_options(geometry=specs[name].geometry)
        for patches_from in ("original", "view"):
            matcher = OnDemandMatcher(config, steps=(views_step(config),), patches_from=patches_from)
            print(f"{name:10s} {patches_from:8s}  {run(specs[name], matcher)}", flush=True)


if __name__ == "__main__":
    main()
