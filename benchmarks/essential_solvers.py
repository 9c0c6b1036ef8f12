"""PoseLib LO-RANSAC vs OpenCV USAC MAGSAC++ for the relative pose, on the same tentative matches.

For every pair of a Strecha scene whose optical axes differ by at most ``--max-axis-angle`` degrees,
the tentative matches of a hardmatch preset (``default``: features at its working resolution,
ratio test, duplicates merged; points in ORIGINAL pixels) are handed to
:func:`hardmatch.geometry.essential.estimate_relative_pose` with the true K, for each estimator and inlier
threshold (Sampson distance in original pixels). Pose error = max(rotation error, angle between the
translation directions, sign-free) in degrees against the ground-truth cameras, and mAA@10, as in
:mod:`hardmatch.geometry.pose_metrics` (no pose: infinite error). No acceptance checks here: this compares
estimators.

    python benchmarks/essential_solvers.py                       # both dev scenes, thresholds 0.5 1 2 4
    python benchmarks/essential_solvers.py --scenes fountain-P11 --thresholds 1 --max-images 5

Tentative matches are cached per scene and preset (``--cache``, default /tmp/hardmatch-essential-cache).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hardmatch.datasets.strecha import optical_axis_angle_deg, read_strecha_views, relative_pose  # noqa: E402
from hardmatch.geometry.essential import METHODS, estimate_relative_pose  # noqa: E402
from hardmatch.geometry.pose_metrics import pose_error_deg, pose_maa  # noqa: E402


def scene_pairs(scene: Path, max_axis_angle: float, max_images: int = 0):
    """(image1, image2, K1, K2, R, t) of the pairs among the first ``max_images`` views (0: all) whose
    optical axes differ by at most ``max_axis_angle`` degrees; R, t the true pose 1 -> 2."""
    views = read_strecha_views(scene)[:max_images or None]
    for a, b in itertools.combinations(views, 2):
        if optical_axis_angle_deg(a, b) <= max_axis_angle:
            yield (a.image, b.image, a.K, b.K, *relative_pose(a, b))


def tentative_matches(scene: Path, pairs, preset: str, cache: Path) -> dict:
    """{(name1, name2): (pts1 (K, 2), pts2 (K, 2))} in original pixels, cached in ``cache``."""
    cache.mkdir(parents=True, exist_ok=True)
    file = cache / f"{scene.name}-{preset}.npz"
    if file.is_file():
        data = np.load(file)
        return {tuple(k.split("|")): (data[k][:, :2], data[k][:, 2:]) for k in data.files}
    from hardmatch.twoview.pipeline import Pipeline

    pipeline = Pipeline(preset, geometry="fundamental", ransac_attempts=1)
    features = {}
    out = {}
    for a, b, *_ in pairs:
        for p in (a, b):
            if p.name not in features:
                features[p.name] = pipeline.extract(p)
        result = pipeline.match_features(features[a.name], features[b.name])
        out[(a.name, b.name)] = (result.points1, result.points2)
    np.savez(file, **{f"{k[0]}|{k[1]}": np.concatenate(v, axis=1) for k, v in out.items()})
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "strecha")
    parser.add_argument("--scenes", nargs="+", default=["fountain-P11", "Herz-Jesus-P8"])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--thresholds", nargs="+", type=float, default=[0.5, 1.0, 2.0, 4.0])
    parser.add_argument("--max-axis-angle", type=float, default=60.0)
    parser.add_argument("--max-images", type=int, default=0, help="only the first N images of each scene (0: all)")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/hardmatch-essential-cache"))
    args = parser.parse_args(argv)
    import scipy.optimize  # noqa: F401  (imported once here, not inside the first timed magsac call)

    print("| scene (pairs) | estimator | threshold [px] | mAA@10 | median err [deg] | mean err, found [deg] "
          "| found > 10 deg | no pose | median inliers | ms / pair |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in args.scenes:
        scene = args.data / name
        pairs = list(scene_pairs(scene, args.max_axis_angle, args.max_images))
        matches = tentative_matches(scene, pairs, args.preset, args.cache / f"first{args.max_images or 'all'}")
        for method, threshold in itertools.product(args.methods, args.thresholds):
            errors, inliers, seconds, missing = [], [], 0.0, 0
            for a, b, k1, k2, r_true, t_true in pairs:
                pts1, pts2 = matches[(a.name, b.name)]
                t0 = time.perf_counter()
                pose = estimate_relative_pose(pts1, pts2, k1, k2, method, threshold)
                seconds += time.perf_counter() - t0
                missing += pose is None
                errors.append(pose_error_deg(*((pose.R, pose.t) if pose else (None, None)), r_true, t_true))
                inliers.append(pose.num_inliers if pose else 0)
            e = np.array(errors)
            found = e[np.isfinite(e)]
            print(f"| {name} ({len(pairs)}) | {method} | {threshold:g} | {pose_maa(e):.3f} | {np.median(e):.2f} | "
                  f"{found.mean() if len(found) else float('nan'):.2f} | {(found > 10).sum()} | {missing} | "
                  f"{np.median(inliers):.0f} | {1000 * seconds / len(pairs):.0f} |", flush=True)

if __name__ == "__main__":
    main()
