"""A seeded generator of EVD-like extreme-view pairs with known homographies.

    python benchmarks/make_evd_like.py --out out/evd-like            # 12 pairs + 12 non-matching
    hardmatch eval out/evd-like --format evd --pipeline wide          # judged by the evaluator
    hardmatch eval out/evd-like/nonmatching.txt --format pairs ...    # any model there is a false accept

Images come from ``../shared/data/train-images/bsd100`` (never used to train the shipped
descriptor, which saw urban100 and sunhays80). Pair ``i`` shows one photo (a planar scene) in two
oblique views, each

    H_k = shift * P * s * R(psi) * diag(sqrt(t), 1 / sqrt(t)) * R(phi) * centre

with a random tilt direction ``phi``, in-plane rotation ``psi``, scale ``s`` and a small
projective part ``P`` (the tilt varies across the image, as in a real oblique view), then a
photometric change (gamma, gain, offset, blur, noise). The transition tilt between the two views
(ratio of the singular values of A2 A1^-1) is stratified over ``--tilts`` (default 3..10): image 1
takes up to sqrt of it, image 2 the rest, tilted 45-90 degrees away, so both images are oblique
as in EVD. H = H_2 H_1^-1. Images are rendered by supersampling (warp at K times the size, then
area-averaging), so the compressed direction is anti-aliased like a camera integrating light. The
canvas holds the whole warped photo (at most ``--max-side`` px, the scale shrinks otherwise); the
rest is the photo's mean gray.

Layout (what ``hardmatch eval --format evd`` reads): ``1/NAME.png``, ``2/NAME.png``,
``h/NAME.txt`` (H maps image 1 to image 2), plus ``params.json`` (the drawn parameters per pair)
and ``nonmatching.txt`` (``pairs`` format: image 1 of pair i with image 2 of pair i+1, no ground
truth). Same seed, same files.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import cv2
import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DEFAULT_SOURCE = SHARED / "data" / "train-images" / "bsd100"


def _rotation(degrees: float) -> np.ndarray:
    a = math.radians(degrees)
    return np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])


def _as_h(linear: np.ndarray, shift=(0.0, 0.0)) -> np.ndarray:
    h = np.eye(3)
    h[:2, :2] = linear
    h[:2, 2] = shift
    return h


def _project(h: np.ndarray, xy: np.ndarray) -> np.ndarray:
    p = np.hstack([xy, np.ones((len(xy), 1))]) @ h.T
    return p[:, :2] / p[:, 2:]


def draw_view(rng: np.random.Generator, tilt: float) -> dict:
    """Random parameters of one oblique view at a given absolute tilt (direction, rotation, scale, ...)."""
    return {
        "tilt": float(tilt),
        "tilt_direction": float(rng.uniform(0.0, 180.0)),
        "rotation": float(rng.uniform(-180.0, 180.0)),
        "scale": float(rng.uniform(0.8, 1.25)),
        "perspective": float(rng.uniform(0.1, 0.3)),  # relative change of the depth across the image
        "perspective_direction": float(rng.uniform(0.0, 360.0)),
        "gamma": float(math.exp(rng.uniform(math.log(0.6), math.log(1.6)))),
        "gain": float(rng.uniform(0.6, 1.2)),
        "offset": float(rng.uniform(-25.0, 25.0)),
        "blur": float(rng.uniform(0.0, 1.0)),
        "noise": float(rng.uniform(1.0, 4.0)),
    }


def _linear(view: dict) -> np.ndarray:
    """The affine part (2, 2) of a view: s * R(psi) * diag(sqrt(t), 1 / sqrt(t)) * R(phi)."""
    t = view["tilt"]
    return view["scale"] * _rotation(view["rotation"]) @ np.diag([math.sqrt(t), 1 / math.sqrt(t)]) \
        @ _rotation(view["tilt_direction"])


def transition_tilt(view1: dict, view2: dict) -> float:
    """Tilt between two views of the same plane: ratio of the singular values of A2 A1^-1."""
    s = np.linalg.svd(_linear(view2) @ np.linalg.inv(_linear(view1)), compute_uv=False)
    return float(s[0] / s[1])


def draw_pair(rng: np.random.Generator, tilt: float) -> tuple[dict, dict]:
    """Two views whose transition tilt is ``tilt``: image 1 tilted by up to sqrt(tilt), image 2 by what
    makes up the rest, its tilt direction 45-90 degrees away (both images oblique, as in EVD)."""
    view1 = draw_view(rng, tilt ** rng.uniform(0.0, 0.5))
    view2 = draw_view(rng, 1.0)
    view2["tilt_direction"] = view1["tilt_direction"] + float(rng.choice([-1, 1]) * rng.uniform(45.0, 90.0))
    lo, hi = 0.0, math.log(100.0)
    for _ in range(60):  # bisection on log t2: the transition tilt grows with t2 here
        mid = 0.5 * (lo + hi)
        view2["tilt"] = math.exp(mid)
        if transition_tilt(view1, view2) < tilt:
            lo = mid
        else:
            hi = mid
    return view1, view2


def view_homography(view: dict, width: int, height: int, max_side: int) -> tuple[np.ndarray, tuple[int, int]]:
    """H (3, 3) mapping the photo (width x height) into a canvas (w, h) that holds all of it."""
    centre = _as_h(np.eye(2), (-(width - 1) / 2.0, -(height - 1) / 2.0))
    h = _as_h(_linear(view)) @ centre
    # projective part: w = 1 + p . x, with |p| * (half-diagonal of the warped photo) = perspective
    corners = np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], np.float64)
    radius = np.linalg.norm(_project(h, corners), axis=1).max()
    a = math.radians(view["perspective_direction"])
    p = np.eye(3)
    p[2, :2] = view["perspective"] / radius * np.array([math.cos(a), math.sin(a)])
    h = p @ h
    warped = _project(h, corners)
    low, high = warped.min(0), warped.max(0)
    shrink = min(1.0, max_side / float((high - low).max()))
    h = _as_h(shrink * np.eye(2), -shrink * low + 2.0) @ h
    size = np.ceil(shrink * (high - low) + 4.0).astype(int)
    return h / h[2, 2], (int(size[0]), int(size[1]))


def render(photo: np.ndarray, h: np.ndarray, size: tuple[int, int], view: dict, rng: np.random.Generator,
           supersample: int = 4) -> np.ndarray:
    """The photo (uint8 (H, W)) warped by ``h`` into ``size``, anti-aliased, photometrically changed."""
    k = supersample
    up = _as_h(k * np.eye(2), ((k - 1) / 2.0, (k - 1) / 2.0))  # pixel centres of the fine grid
    fill = float(photo.mean())
    fine = cv2.warpPerspective(photo.astype(np.float32), up @ h, (size[0] * k, size[1] * k), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=fill)
    image = cv2.resize(fine, size, interpolation=cv2.INTER_AREA)
    if view["blur"] > 0.3:
        image = cv2.GaussianBlur(image, (0, 0), view["blur"])
    image = 255.0 * (np.clip(image, 0, 255) / 255.0) ** view["gamma"]
    image = view["gain"] * image + view["offset"] + rng.normal(0.0, view["noise"], image.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def generate(source: Path, out: Path, count: int = 12, seed: int = 0, tilts=(3.0, 10.0), max_side: int = 1000) -> list:
    """Write ``count`` pairs (EVD layout) and ``nonmatching.txt`` under ``out``; returns the parameters per pair."""
    photos = sorted(p for p in source.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if len(photos) < count:
        raise SystemExit(f"{source}: need {count} images, found {len(photos)}")
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(photos), size=count, replace=False).tolist())
    # tilts stratified over the range so every part of it is represented, in random order
    strata = (np.arange(count) + rng.uniform(0, 1, count)) / count
    pair_tilts = tilts[0] + (tilts[1] - tilts[0]) * rng.permutation(strata)
    for sub in ("1", "2", "h"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    records = []
    for index, tilt in zip(chosen, pair_tilts):
        name = photos[index].stem
        photo = cv2.imread(str(photos[index]), cv2.IMREAD_GRAYSCALE)
        view1, view2 = draw_pair(rng, tilt)
        h1, size1 = view_homography(view1, photo.shape[1], photo.shape[0], max_side)
        h2, size2 = view_homography(view2, photo.shape[1], photo.shape[0], max_side)
        cv2.imwrite(str(out / "1" / f"{name}.png"), render(photo, h1, size1, view1, rng))
        cv2.imwrite(str(out / "2" / f"{name}.png"), render(photo, h2, size2, view2, rng))
        h = h2 @ np.linalg.inv(h1)
        np.savetxt(out / "h" / f"{name}.txt", h / h[2, 2], fmt="%.12g")
        records.append({"name": name, "source": photos[index].name, "transition_tilt": float(tilt),
                        "size1": list(size1), "size2": list(size2), "view1": view1, "view2": view2})
    names = [r["name"] for r in records]
    lines = [f"1/{a}.png 2/{b}.png" for a, b in zip(names, names[1:] + names[:1])]
    (out / "nonmatching.txt").write_text("# image 1 of one scene, image 2 of another: no model is right\n"
                                         + "\n".join(lines) + "\n")
    (out / "params.json").write_text(json.dumps({"seed": seed, "source": str(source), "pairs": records}, indent=1))
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=str(DEFAULT_SOURCE), help="folder of photos (default: shared bsd100)")
    parser.add_argument("--out", default="out/evd-like", help="output folder (EVD layout; out/ is git-ignored)")
    parser.add_argument("--count", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tilts", default="3,10", help="tilt range lo,hi")
    parser.add_argument("--max-side", type=int, default=1000)
    args = parser.parse_args()
    source = Path(args.source)
    if not source.is_dir():
        raise SystemExit(f"{source}: not a folder (shared data absent?)")
    lo, hi = (float(v) for v in args.tilts.split(","))
    records = generate(source, Path(args.out), args.count, args.seed, (lo, hi), args.max_side)
    for r in records:
        print(f"{r['name']}: transition tilt {r['transition_tilt']:.2f} (tilts {r['view1']['tilt']:.2f}, "
              f"{r['view2']['tilt']:.2f}) sizes {r['size1']} {r['size2']}")


if __name__ == "__main__":
    main()
