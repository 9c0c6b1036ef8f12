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

Hard tier (``--tier hard``, seed 1, :func:`generate_hard`): photos with repeated structure (urban100
facades and windows; note that HardNet's training images included urban100), pair kinds in turn:
``tilt`` (transition tilt 12-45, both images strongly oblique), ``zoom`` (4-10x combined with a tilt
of 2-6) and ``overlap`` (tilt 5-15, 15-40 % of the photo region shared), every image with occluders
cut from other photos (bsd100) and an illumination change (a gradient of 0.4-1.6x and a gamma of
0.45-2.2). ``params.json`` records per pair the local tilt and scale of H over the overlap (min,
median, max) and the overlap. The easy tier (the default) is unchanged: same seed, same files.

    python benchmarks/make_evd_like.py --tier hard --out /tmp/evd-hard

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


def draw_pair(rng: np.random.Generator, tilt: float, share=(0.0, 0.5)) -> tuple[dict, dict]:
    """Two views whose transition tilt is ``tilt``: image 1 tilted by ``tilt ** u`` (u drawn from ``share``:
    up to sqrt(tilt)), image 2 by what makes up the rest, its tilt direction 45-90 degrees away (both
    images oblique, as in EVD)."""
    view1 = draw_view(rng, tilt ** rng.uniform(*share))
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


# --- hard tier -------------------------------------------------------------------------------------

#: Hard-tier pair kinds, in turn: strong tilt, zoom combined with tilt, small overlap.
HARD_KINDS = ("tilt", "zoom", "overlap")
HARD_SOURCE = SHARED / "data" / "train-images" / "urban100"


def _crop(h: np.ndarray, size: tuple[int, int], window: tuple[int, int], offset) -> tuple[np.ndarray, tuple[int, int]]:
    """``h`` followed by cutting the window (w, h) at ``offset`` (x, y) out of a canvas of ``size``."""
    w = (min(window[0], size[0]), min(window[1], size[1]))
    return _as_h(np.eye(2), (-float(offset[0]), -float(offset[1]))) @ h, (int(w[0]), int(w[1]))


def _full_canvas(view: dict, width: int, height: int, scale: float) -> tuple[np.ndarray, tuple[int, int]]:
    """The view of the whole photo at ``scale`` (no shrinking to a maximal side): H (3, 3), canvas size."""
    view = {**view, "scale": scale}
    return view_homography(view, width, height, max_side=10 ** 6)


def _visible(h: np.ndarray, size: tuple[int, int], width: int, height: int, cell: float) -> np.ndarray:
    """Bool mask over the photo (cells of ``cell`` px): which photo points land inside the canvas."""
    ys, xs = np.mgrid[0:height:cell, 0:width:cell]
    xy = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)
    p = _project(h, xy)
    inside = (p[:, 0] >= 0) & (p[:, 1] >= 0) & (p[:, 0] <= size[0] - 1) & (p[:, 1] <= size[1] - 1)
    return inside.reshape(xs.shape)


def overlap(h1, size1, h2, size2, width: int, height: int) -> float:
    """Intersection over union of the photo regions the two images show."""
    cell = max(width, height) / 200.0
    a, b = _visible(h1, size1, width, height, cell), _visible(h2, size2, width, height, cell)
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 0.0


def local_geometry(h: np.ndarray, size1: tuple[int, int], size2: tuple[int, int], step: float = 10.0) -> dict:
    """Local tilt (axis ratio of H's Jacobian) and scale (sqrt |det J|) over the image-1 grid points
    that H maps into image 2: min / median / max."""
    ys, xs = np.mgrid[0:size1[1]:step, 0:size1[0]:step]
    xy = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)
    p = _project(h, xy)
    keep = (p[:, 0] >= 0) & (p[:, 1] >= 0) & (p[:, 0] <= size2[0] - 1) & (p[:, 1] <= size2[1] - 1)
    xy = xy[keep]
    q = np.hstack([xy, np.ones((len(xy), 1))]) @ h.T
    w = q[:, 2]
    jac = (h[None, :2, :2] - (q[:, :2] / w[:, None])[:, :, None] * h[None, 2:3, :2]) / w[:, None, None]
    s = np.linalg.svd(jac, compute_uv=False)
    tilt, scale = s[:, 0] / s[:, 1], np.sqrt(s[:, 0] * s[:, 1])
    stats = lambda v: [round(float(v.min()), 2), round(float(np.median(v)), 2), round(float(v.max()), 2)]
    if not len(xy):
        return {"points": 0, "tilt": None, "scale": None}
    return {"points": int(len(xy)), "tilt": stats(tilt), "scale": stats(scale)}


def _occlude(image: np.ndarray, rng: np.random.Generator, texture: np.ndarray, share: float) -> np.ndarray:
    """Paste 1-3 polygons cut from ``texture`` (another photo) over about ``share`` of ``image``."""
    h, w = image.shape
    out = image.copy()
    tex = cv2.resize(texture, (w, h), interpolation=cv2.INTER_AREA)
    for _ in range(int(rng.integers(1, 4))):
        r = math.sqrt(share * w * h / math.pi / 2.0)
        centre = rng.uniform([0, 0], [w, h])
        angles = np.sort(rng.uniform(0, 2 * math.pi, 7))
        radii = r * rng.uniform(0.6, 1.4, 7)
        poly = np.stack([centre[0] + radii * np.cos(angles), centre[1] + radii * np.sin(angles)], 1)
        mask = np.zeros_like(image)
        cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 255)
        out = np.where(mask > 0, tex, out)
    return out


def _shade(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Illumination change: a smooth multiplicative gradient (0.4-1.6x across the image) and a strong gamma."""
    h, w = image.shape
    a = rng.uniform(0, 2 * math.pi)
    ys, xs = np.mgrid[0:h, 0:w]
    ramp = ((xs - w / 2) * math.cos(a) + (ys - h / 2) * math.sin(a)) / max(w, h)
    gain = np.exp(rng.uniform(0.5, 1.4) * ramp)
    gamma = math.exp(rng.uniform(math.log(0.45), math.log(2.2)))
    shaded = 255.0 * (np.clip(image.astype(np.float64) * gain, 0, 255) / 255.0) ** gamma
    return np.clip(np.round(shaded), 0, 255).astype(np.uint8)


def _hard_views(rng, kind: str, value: float, width: int, height: int, max_side: int, min_side: int):
    """Views, homographies and canvases of one hard pair. ``value``: transition tilt (tilt/overlap) or
    zoom. Returns (view1, view2, (h1, size1), (h2, size2), tilt)."""
    tilt = value if kind != "zoom" else float(rng.uniform(2.0, 6.0))
    view1, view2 = draw_pair(rng, tilt, share=(0.4, 0.5))  # both images strongly oblique
    if rng.uniform() < 0.5:
        view1, view2 = view2, view1
    canvases = []
    for view in (view1, view2):
        # the compressed direction along a side of the image (the camera frames the oblique plane)
        view["rotation"] = float(rng.choice([0.0, 90.0]) + rng.uniform(-12.0, 12.0))
        _, size = _full_canvas(view, width, height, 1.0)
        # at least min_side on the short side (a close oblique camera), at most 3x upsampling
        sv = max(math.sqrt(view["tilt"]), 1.0)
        canvases.append(float(np.clip(min_side / min(size), 0.35, 3.0 / sv)))
    if kind == "zoom":  # one image sees the whole plane small, the other a part of it ``value`` times larger
        small = int(rng.integers(0, 2))
        _, size = _full_canvas((view1, view2)[small], width, height, 1.0)
        canvases[small] = min(canvases[small], 0.6 * max_side / max(size))
        canvases[1 - small] = canvases[small] * value
    out = []
    for view, scale in zip((view1, view2), canvases):
        view["scale"] = scale
        out.append(_full_canvas(view, width, height, scale))
    best, best_score = None, -np.inf
    for _ in range(400):  # crop offsets: mostly photo in each crop; overlap 15-40 % for an overlap pair
        crops = []
        for h, size in out:
            part = rng.uniform(0.5, 0.7) if kind == "overlap" else 1.0  # an overlap pair crops part of each view
            window = (min(int(part * size[0]), max_side), min(int(part * size[1]), max_side))
            span = (size[0] - window[0], size[1] - window[1])
            crops.append(_crop(h, size, window, rng.uniform([0, 0], [span[0] + 1e-9, span[1] + 1e-9])))
        share = overlap(*crops[0], *crops[1], width, height)
        filled = min(_coverage(h, size, width, height) for h, size in crops)
        if kind == "overlap":
            score = filled if 0.15 <= share <= 0.40 else -abs(share - 0.275)
        else:  # as much of the smaller view's region shared as the crops allow
            score = min(filled, 0.7) + share
        if score > best_score:
            best, best_score = crops, score
        if (kind == "overlap" and score >= 0.6) or (kind != "overlap" and filled >= 0.6 and share >= 0.3):
            break
    return view1, view2, best[0], best[1], tilt


def _coverage(h: np.ndarray, size: tuple[int, int], width: int, height: int) -> float:
    """Share of the canvas that shows the photo (not the fill)."""
    ys, xs = np.mgrid[0:size[1]:8.0, 0:size[0]:8.0]
    p = _project(np.linalg.inv(h), np.stack([xs.ravel(), ys.ravel()], 1))
    return float(((p[:, 0] >= 0) & (p[:, 1] >= 0) & (p[:, 0] <= width - 1) & (p[:, 1] <= height - 1)).mean())


def generate_hard(source: Path, out: Path, count: int = 12, seed: int = 1, tilts=(12.0, 45.0), zooms=(4.0, 10.0),
                  max_side: int = 1000, min_side: int = 420, texture_source: Path = DEFAULT_SOURCE) -> list:
    """The hard tier (EVD layout under ``out``): kinds in turn (:data:`HARD_KINDS`) ``tilt``
    (transition tilt stratified over ``tilts``), ``zoom`` (zoom stratified over ``zooms``, with a tilt
    of 2-6) and ``overlap`` (tilt 5-15, 15-40 % of the photo region shared), all with occluders cut
    from other photos (``texture_source``) and a strong illumination change (gradient and gamma), on
    photos with repeated structure (urban100 facades). Each image is cropped to ``max_side``."""
    photos = sorted(p for p in source.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    textures = sorted(p for p in texture_source.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if len(photos) < count or not textures:
        raise SystemExit(f"{source}: need {count} images, found {len(photos)}")
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(photos), size=count, replace=False).tolist()
    kinds = [HARD_KINDS[i % len(HARD_KINDS)] for i in range(count)]
    strata = {}
    for k in HARD_KINDS:  # values stratified over each kind's range, in random order
        n = kinds.count(k)
        strata[k] = rng.permutation((np.arange(n) + rng.uniform(0, 1, n)) / max(n, 1))
    ranges = {"tilt": tilts, "zoom": zooms, "overlap": (5.0, 15.0)}
    for sub in ("1", "2", "h"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    records, used = [], {k: 0 for k in HARD_KINDS}
    for number, (index, kind) in enumerate(zip(chosen, kinds)):
        lo, hi = ranges[kind]
        value = float(lo * (hi / lo) ** strata[kind][used[kind]])  # log-uniform strata
        used[kind] += 1
        name = f"hard_{number:02d}_{kind}"
        photo = cv2.imread(str(photos[index]), cv2.IMREAD_GRAYSCALE)
        height, width = photo.shape
        view1, view2, (h1, size1), (h2, size2), tilt = _hard_views(rng, kind, value, width, height, max_side, min_side)
        images = []
        for view, h, size in ((view1, h1, size1), (view2, h2, size2)):
            image = render(photo, h, size, view, rng)
            texture = cv2.imread(str(textures[int(rng.integers(len(textures)))]), cv2.IMREAD_GRAYSCALE)
            image = _occlude(image, rng, texture, float(rng.uniform(0.05, 0.2)))
            images.append(_shade(image, rng))
        cv2.imwrite(str(out / "1" / f"{name}.png"), images[0])
        cv2.imwrite(str(out / "2" / f"{name}.png"), images[1])
        h = h2 @ np.linalg.inv(h1)
        h = h / h[2, 2]
        np.savetxt(out / "h" / f"{name}.txt", h, fmt="%.12g")
        records.append({"name": name, "kind": kind, "source": photos[index].name, "transition_tilt": tilt,
                        "zoom": value if kind == "zoom" else None,
                        "overlap": round(overlap(h1, size1, h2, size2, width, height), 3),
                        "local": local_geometry(h, size1, size2), "size1": list(size1), "size2": list(size2),
                        "view1": view1, "view2": view2})
    names = [r["name"] for r in records]
    lines = [f"1/{a}.png 2/{b}.png" for a, b in zip(names, names[1:] + names[:1])]
    (out / "nonmatching.txt").write_text("# image 1 of one scene, image 2 of another: no model is right\n"
                                         + "\n".join(lines) + "\n")
    (out / "params.json").write_text(json.dumps({"seed": seed, "tier": "hard", "source": str(source),
                                                 "pairs": records}, indent=1))
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=str(DEFAULT_SOURCE), help="folder of photos (default: shared bsd100)")
    parser.add_argument("--out", default="out/evd-like", help="output folder (EVD layout; out/ is git-ignored)")
    parser.add_argument("--count", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tilts", default="3,10", help="tilt range lo,hi")
    parser.add_argument("--max-side", type=int, default=1000)
    parser.add_argument("--tier", choices=("easy", "hard"), default="easy",
                        help="hard: urban100 facades, tilts 12-45, zoom 4-10 with tilt, overlaps 15-40 %%, occluders, "
                             "illumination (--source defaults to urban100, --seed to 1, --tilts to 12,45)")
    args = parser.parse_args()
    if args.tier == "hard":
        source = Path(args.source) if args.source != str(DEFAULT_SOURCE) else HARD_SOURCE
        tilts = tuple(float(v) for v in args.tilts.split(",")) if args.tilts != "3,10" else (12.0, 45.0)
        if not source.is_dir():
            raise SystemExit(f"{source}: not a folder (shared data absent?)")
        seed = args.seed if args.seed != 0 else 1
        for r in generate_hard(source, Path(args.out), args.count, seed, tilts, max_side=args.max_side):
            print(f"{r['name']}: {r['source']} transition tilt {r['transition_tilt']:.1f} zoom {r['zoom']} "
                  f"overlap {r['overlap']:.2f} local tilt {r['local']['tilt']} scale {r['local']['scale']} "
                  f"sizes {r['size1']} {r['size2']}")
        return
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
