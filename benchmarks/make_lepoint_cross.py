"""Real extreme-view pairs with hand-checked ground truth: the LePoint photos of homogr, crossed.

homogr's LePoint1, LePoint2 and LePoint3 are six photos of one planar magazine from six
viewpoints (frontal and upright, turned, flat on a table from above, oblique, grazing). Each pair's
``NAME_vpts.mat`` holds 8 hand-annotated points, and they are the SAME 8 landmarks of the magazine
in all six photos (its corners and four inner marks, in one order). So every pair of the six photos
has hand-checked ground truth, not only the three homogr pairs: the 12 cross pairs are real pairs at
up to grazing angles, judged by the 8 points as homogr is (mean reprojection error <= 5 px).

Writes a CMP-layout folder (``NAMEA.png``, ``NAMEB.png``, ``NAME_vpts.mat``, ``NAME_model.txt``: the
homography least-squares fitted to the 8 points, whose fit residual is printed and written to
``pairs.json``), readable by ``hardmatch eval OUT``::

    python benchmarks/make_lepoint_cross.py --out /tmp/lepoint-cross
    hardmatch eval /tmp/lepoint-cross --pipeline default --pipeline affine --pipeline wide --workers 1
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
from pathlib import Path

import numpy as np

DEFAULT_SHARED = Path(os.environ.get("HARDMATCH_SHARED", Path(__file__).resolve().parents[1] / ".." / "shared"))
GROUPS = ("LePoint1", "LePoint2", "LePoint3")


def landmarks(homogr: Path) -> dict:
    """``{photo name: (8, 2) pixels}`` of the six LePoint photos, from homogr's ``_vpts.mat`` files."""
    from scipy.io import loadmat

    found = {}
    for group in GROUPS:
        pts = loadmat(homogr / f"{group}_vpts.mat", squeeze_me=True, struct_as_record=False)["validation"].pts
        pts = np.asarray(pts, np.float64)
        found[f"{group}A"] = (pts[0:2] / pts[2]).T
        found[f"{group}B"] = (pts[3:5] / pts[5]).T
    return found


def fit_homography(points1: np.ndarray, points2: np.ndarray) -> tuple[np.ndarray, float]:
    """The least-squares homography through the correspondences and its mean transfer error (px)."""
    import cv2

    h, _ = cv2.findHomography(points1, points2, 0)
    mapped = np.c_[points1, np.ones(len(points1))] @ h.T
    error = float(np.linalg.norm(mapped[:, :2] / mapped[:, 2:] - points2, axis=1).mean())
    return h / h[2, 2], error


def write_pair(out: Path, name: str, image1: Path, image2: Path, points1: np.ndarray, points2: np.ndarray) -> float:
    """One CMP pair ``name`` in ``out``; returns the fit residual of its homography (px)."""
    from scipy.io import savemat

    shutil.copy(image1, out / f"{name}A{image1.suffix}")
    shutil.copy(image2, out / f"{name}B{image2.suffix}")
    ones = np.ones((1, len(points1)))
    pts = np.vstack([points1.T, ones, points2.T, ones])
    savemat(out / f"{name}_vpts.mat", {"validation": {"pts": pts}})
    h, residual = fit_homography(points1, points2)
    np.savetxt(out / f"{name}_model.txt", h)
    return residual


def make(shared: Path, out: Path, log=print) -> list[dict]:
    """Write the 12 cross pairs into ``out``; returns their rows (pair, fit residual)."""
    homogr = shared / "data" / "homogr"
    if not (homogr / "LePoint1_vpts.mat").is_file():
        raise SystemExit(f"make_lepoint_cross: {homogr} has no LePoint pairs")
    points = landmarks(homogr)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for first, second in itertools.combinations(sorted(points), 2):
        if first[:-1] == second[:-1]:
            continue  # a homogr pair itself
        name = f"{first}-{second}"
        residual = write_pair(out, name, homogr / f"{first}.png", homogr / f"{second}.png",
                              points[first], points[second])
        rows.append({"pair": name, "fit_residual_px": round(residual, 2)})
        log(f"{name}: 8 hand-checked points, homography fit residual {residual:.2f} px")
    (out / "pairs.json").write_text(json.dumps(rows, indent=1))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    rows = make(args.shared, args.out)
    print(f"{len(rows)} pairs in {args.out}")


if __name__ == "__main__":
    main()
