"""The scene's view graph checked before mapping: loop consistency of relative rotations over triplets.

Each verified pair (an edge of the view graph) gives a relative rotation ``R_ab`` (camera a -> camera
b: ``x_b = R_ab x_a + t``). Around a triangle (a, b, c) of right edges the composed rotation
``R_ac^T R_bc R_ab`` is the identity; its angle is the triangle's *loop error* (Zach, Klopschitz,
Pollefeys, CVPR 2010, "Disambiguating visual relations using loop constraints"; Heinly et al. 2014).
A wrong pair model (repeated structure, a doppelganger facade) breaks every triangle it is in,
while its alternative paths a -> c -> b, one per third image c, still agree among themselves.

Rule (:func:`inconsistent_edges`), greedy: an edge is dropped when it lies in at least
:data:`MIN_TRIANGLES` triangles, more than half of them have a loop error above the threshold, and
more than half of its alternative paths agree with one another within the threshold (so the
edge, not its neighbours, is the odd one); the worst such edge is dropped first and the loops are
counted again. Edges in no triangle, or whose triangles fail without such an agreement, are kept
(the latter are reported as ``unresolved``).

Rotations come from the pair's verified inliers and the cameras' K: with geometry essential, the
stored E (:func:`relative_rotation`: of its four decompositions the one that puts most inliers in
front of both cameras); with F, the calibrated 5-point pose of the inliers (:func:`calibrated_rotation`;
F's own decomposition E = K_b^T F K_a only where that fails). K (:func:`scene_cameras`): ``--intrinsics``,
else EXIF, else, for a folder of one image size, one focal length self-calibrated from all pairs'
F (:func:`self_calibrated_focal`, Mendonca and Cipolla 1999: E = K^T F K has two equal singular
values), the principal point at the image centre; else COLMAP's prior.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..core.options import CommandConf, option

#: Loop error (degrees) above which a triangle fails. Dev scenes (docs/scenes.md): right pairs' loops
#: at most 0.66 deg, one weak real pair's 4.0-4.5 deg; wrong models are off by tens of degrees.
LOOP_THRESHOLD_DEG = 10.0
#: An edge is judged only from at least this many triangles (one triangle cannot say which edge is wrong).
MIN_TRIANGLES = 2
#: A pair's rotation is estimated from at most this many of its inliers (PoseLib's 5-point RANSAC).
MAX_POSE_POINTS = 400


@dataclass(frozen=True)
class ViewGraphConf(CommandConf):
    """Options of the view-graph check (``hardmatch reconstruct --loop-check/--no-loop-check``)."""

    loop_check: bool = option(True, "before mapping, drop verified pairs whose relative rotation breaks most of "
                                    "their triangles' loops while the other paths agree (docs/scenes.md); "
                                    "on by default")
    loop_threshold: float = option(LOOP_THRESHOLD_DEG, "loop error (degrees) above which a triangle of pairs "
                                                       "fails the loop check (default 10)", range="(0, 180)")


# --------------------------------------------------------------------------------------------
# Rotation maths
# --------------------------------------------------------------------------------------------


def rotation_angle_deg(R: np.ndarray) -> float:
    """Angle (degrees) of rotation ``R`` (3, 3)."""
    cos = (np.trace(np.asarray(R, np.float64)) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def _directed(rotations: dict, a: str, b: str) -> Optional[np.ndarray]:
    if (a, b) in rotations:
        return rotations[(a, b)]
    if (b, a) in rotations:
        return rotations[(b, a)].T
    return None


def _neighbours(edges) -> dict:
    found: dict = {}
    for a, b in edges:
        found.setdefault(a, set()).add(b)
        found.setdefault(b, set()).add(a)
    return found


def triangles(edges) -> list[tuple[str, str, str]]:
    """The triangles (a, b, c), each once (sorted names), of the undirected graph ``edges``."""
    around = _neighbours(edges)
    found = set()
    for a, b in edges:
        for c in around[a] & around[b]:
            found.add(tuple(sorted((a, b, c))))
    return sorted(found)


def loop_error_deg(rotations: dict, a: str, b: str, c: str) -> float:
    """Loop error (degrees) of triangle (a, b, c): the angle of R_ca R_bc R_ab."""
    return rotation_angle_deg(_directed(rotations, c, a) @ _directed(rotations, b, c) @ _directed(rotations, a, b))


def edge_evidence(rotations: dict, a: str, b: str, threshold: float) -> dict:
    """What the triangles of edge (a, b) say: ``triangles`` n, ``failing`` (loop error > ``threshold``),
    ``errors`` (deg, one per triangle), ``agreeing``: the largest number of alternative paths a -> c -> b
    within ``threshold`` of one of them."""
    around = _neighbours(rotations)
    r_ab = _directed(rotations, a, b)
    alternatives = [_directed(rotations, c, b) @ _directed(rotations, a, c) for c in sorted(around[a] & around[b])]
    errors = [rotation_angle_deg(r_ab.T @ alt) for alt in alternatives]
    agreeing = max((sum(rotation_angle_deg(x.T @ y) <= threshold for y in alternatives) for x in alternatives),
                   default=0)
    return {"triangles": len(alternatives), "failing": sum(e > threshold for e in errors), "errors": errors,
            "agreeing": agreeing}


def inconsistent_edges(rotations: dict, threshold: float = LOOP_THRESHOLD_DEG) -> list[dict]:
    """The edges to drop from ``rotations`` ({(a, b): R_ab}), in the order dropped (see the module rule):
    each ``{"pair": (a, b), "triangles": n, "failing": k, "median_loop_error_deg": e, "agreeing": m}``."""
    remaining = dict(rotations)
    dropped = []
    while True:
        worst = None
        for a, b in remaining:
            ev = edge_evidence(remaining, a, b, threshold)
            n = ev["triangles"]
            if n < MIN_TRIANGLES or 2 * ev["failing"] <= n or 2 * ev["agreeing"] <= n:
                continue
            key = (ev["failing"] / n, float(np.median(ev["errors"])))
            if worst is None or key > worst[0]:
                worst = (key, (a, b), ev)
        if worst is None:
            return dropped
        (_, median), pair, ev = worst
        del remaining[pair]
        dropped.append({"pair": pair, "triangles": ev["triangles"], "failing": ev["failing"],
                        "median_loop_error_deg": round(median, 2), "agreeing": ev["agreeing"]})


# --------------------------------------------------------------------------------------------
# Relative rotations from the stored pair models
# --------------------------------------------------------------------------------------------


def _homogeneous_normalized(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    p = np.concatenate([np.asarray(points, np.float64).reshape(-1, 2), np.ones((len(points), 1))], axis=1)
    return p @ np.linalg.inv(K).T


def relative_rotation(model: np.ndarray, geometry: str, K0: np.ndarray, K1: np.ndarray, pts0: np.ndarray,
                      pts1: np.ndarray) -> Optional[np.ndarray]:
    """R (3, 3) of camera 0 -> camera 1 from a pair's model (``x1^T F x0 = 0`` in pixels, or E in the
    cameras' normalized coordinates) and its inliers ``pts0``/``pts1`` (I, 2) pixels; None when the
    model is not a two-view geometry (a homography) or no decomposition puts a point in front."""
    import cv2

    from ..geometry.essential import in_front

    if geometry not in ("fundamental", "essential") or model is None or len(pts0) == 0:
        return None
    E = np.asarray(model, np.float64)
    if geometry == "fundamental":
        E = K1.T @ E @ K0
    x0, x1 = _homogeneous_normalized(pts0, K0), _homogeneous_normalized(pts1, K1)
    x0, x1 = x0[:, :2] / x0[:, 2:], x1[:, :2] / x1[:, 2:]
    Ra, Rb, t = cv2.decomposeEssentialMat(E)
    t = t.reshape(3)
    best, count = None, 0
    for R, s in ((Ra, t), (Ra, -t), (Rb, t), (Rb, -t)):
        n = int(in_front(R, s, x0, x1).sum())
        if n > count:
            best, count = R, n
    return best


def _singular_gap(F: np.ndarray, K: np.ndarray) -> float:
    s = np.linalg.svd(K.T @ F @ K, compute_uv=False)
    return float((s[0] - s[1]) / max(s[0] + s[1], 1e-300))


def self_calibrated_focal(models: list[np.ndarray], width: int, height: int) -> Optional[float]:
    """One focal length (pixels) for images of ``width`` x ``height`` with principal point at the centre that
    makes every F of ``models`` an essential matrix as nearly as possible (the median over pairs of
    (s1 - s2) / (s1 + s2) of K^T F K is least; Mendonca and Cipolla 1999); searched on a log grid of
    0.3-3 x the longest side and refined around its best point; None without a model."""
    if not models:
        return None
    centre = ((width - 1) / 2.0, (height - 1) / 2.0)
    longest = float(max(width, height))

    def cost(f: float) -> float:
        K = np.array([[f, 0.0, centre[0]], [0.0, f, centre[1]], [0.0, 0.0, 1.0]])
        return float(np.median([_singular_gap(F, K) for F in models]))

    grid = longest * np.exp(np.linspace(np.log(0.3), np.log(3.0), 61))
    best = min(grid, key=cost)
    fine = best * np.exp(np.linspace(-0.04, 0.04, 41))
    return float(min(fine, key=cost))


# --------------------------------------------------------------------------------------------
# The scene: cameras, rotations, the check and its report
# --------------------------------------------------------------------------------------------


def _read_pair_models(out: Path, pairs) -> dict:
    """{(a, b): (model, geometry, inliers (I, 2))} of the pairs of ``out/matches.h5`` with a model."""
    from .hloc_files import MATCHES_H5, read_inliers

    found = {}
    for a, b in pairs:
        inliers, model, geometry = read_inliers(Path(out) / MATCHES_H5, a, b)
        if model is not None and len(inliers):
            found[(a, b)] = (model, geometry, inliers)
    return found


def scene_cameras(image_dir: Path, names: list[str], sizes: dict, intrinsics: Optional[str],
                  fundamentals: list[np.ndarray]) -> tuple[dict, str]:
    """``({name: K}, source)``: the given ``intrinsics``, else EXIF per image; images with neither share a
    self-calibrated focal length (:func:`self_calibrated_focal`) when they are all one size, else the prior.
    ``sizes``: {name: (width, height)}."""
    from ..geometry.intrinsics import calibration_matrix, parse_intrinsics, resolve_camera

    given = parse_intrinsics(intrinsics)[0] if intrinsics else None
    cameras, sources, guessed = {}, set(), []
    for name in names:
        width, height = sizes[name]
        camera = resolve_camera(given, str(Path(image_dir) / name), (height, width))
        cameras[name] = camera.K
        if camera.source.startswith("prior"):
            guessed.append(name)
        sources.add(camera.source.split(" (")[0])
    shapes = {sizes[n] for n in guessed}
    if guessed and len(shapes) == 1 and fundamentals:
        width, height = shapes.pop()
        focal = self_calibrated_focal(fundamentals, width, height)
        for name in guessed:
            cameras[name] = calibration_matrix(focal, focal, (width - 1) / 2.0, (height - 1) / 2.0)
        sources = {s for s in sources if not s.startswith("prior")} | {f"self-calibrated focal {focal:.0f} px"}
    return cameras, ", ".join(sorted(sources))


def pair_rotations(out: Path, image_dir: Path, pairs, intrinsics: Optional[str]) -> tuple[dict, str]:
    """``({(a, b): R_ab}, camera source)`` for the verified pairs of ``out/matches.h5`` with an F or E."""
    from .hloc_files import FEATURES_H5, read_keypoints

    models = {p: m for p, m in _read_pair_models(out, pairs).items() if m[1] in ("fundamental", "essential")}
    used = sorted({n for p in models for n in p})
    keypoints, sizes = {}, {}
    for name in used:
        keypoints[name], sizes[name] = read_keypoints(Path(out) / FEATURES_H5, name)
    fundamentals = [m[0] for m in models.values() if m[1] == "fundamental"]
    cameras, source = scene_cameras(image_dir, used, sizes, intrinsics, fundamentals) if used else ({}, "")
    if any(m[1] == "essential" for m in models.values()):  # E was estimated in the pair stage's cameras
        from .pair_matching import cameras as pair_cameras

        source = "the pair stage's cameras" if not fundamentals else source
    rotations = {}
    for (a, b), (model, geometry, inliers) in models.items():
        K0, K1 = cameras[a], cameras[b]
        pts0, pts1 = keypoints[a][inliers[:, 0]], keypoints[b][inliers[:, 1]]
        if geometry == "essential":
            K0, K1 = (c.K for c in pair_cameras(str(image_dir), (a, b), (sizes[a][::-1], sizes[b][::-1]), intrinsics))
            R = relative_rotation(model, geometry, K0, K1, pts0, pts1)
        else:
            R = calibrated_rotation(model, K0, K1, pts0, pts1)
        if R is not None:
            rotations[(a, b)] = R
    return rotations, source


def calibrated_rotation(F: np.ndarray, K0: np.ndarray, K1: np.ndarray, pts0: np.ndarray, pts1: np.ndarray
                        ) -> Optional[np.ndarray]:
    """R of a pair verified with F: the calibrated relative pose of its inliers (PoseLib's 5-point RANSAC and
    refinement, :func:`hardmatch.geometry.essential.estimate_relative_pose`), else F's own decomposition.
    F's 7 degrees of freedom leave its rotation loose: on the dev scenes the decomposed rotations'
    loop errors reached 5.3 deg on right pairs (Herz-Jesus-P8), the 5-point ones 0.27 deg."""
    from ..geometry.essential import estimate_relative_pose

    if len(pts0) > MAX_POSE_POINTS:  # evenly spread over the inliers: the time stays small on big pairs
        keep = np.linspace(0, len(pts0) - 1, MAX_POSE_POINTS).round().astype(int)
        pts0, pts1 = pts0[keep], pts1[keep]
    pose = estimate_relative_pose(pts0, pts1, K0, K1, max_iters=1000)
    if pose is not None:
        return pose.R
    return relative_rotation(F, "fundamental", K0, K1, pts0, pts1)


def check_view_graph(out: Path, image_dir: Path, pairs, intrinsics: Optional[str],
                     conf: ViewGraphConf = ViewGraphConf()) -> tuple[list, dict]:
    """``(pairs to map, report)``: ``pairs`` less the edges :func:`inconsistent_edges` drops.

    Report: ``checked`` (verified pairs with a relative rotation), ``in_triangles`` (of those, in at
    least one triangle), ``triangles``, ``loop_error_deg`` (median, p95, max over the triangles before
    dropping), ``threshold_deg``, ``cameras`` (where K came from), ``dropped`` (each pair with its
    triangles, failing ones, median loop error and why), ``unresolved`` (failing triangles left after
    dropping), or ``{"enabled": False}`` when switched off."""
    if not conf.loop_check:
        return list(pairs), {"enabled": False}
    rotations, source = pair_rotations(out, image_dir, pairs, intrinsics)
    loops = triangles(rotations)
    errors = [loop_error_deg(rotations, *t) for t in loops]
    dropped = inconsistent_edges(rotations, conf.loop_threshold)
    gone = {d["pair"] for d in dropped}
    kept = {p: r for p, r in rotations.items() if p not in gone}
    unresolved = sum(loop_error_deg(kept, *t) > conf.loop_threshold for t in triangles(kept))
    in_triangles = {e for t in loops for e in ((t[0], t[1]), (t[1], t[2]), (t[0], t[2]))}
    report = {
        "enabled": True,
        "threshold_deg": conf.loop_threshold,
        "cameras": source,
        "checked": len(rotations),
        "in_triangles": sum(p in in_triangles or p[::-1] in in_triangles for p in rotations),
        "triangles": len(loops),
        "loop_error_deg": _distribution(errors),
        "dropped": [{"pair": list(d["pair"]), "triangles": d["triangles"], "failing": d["failing"],
                     "median_loop_error_deg": d["median_loop_error_deg"],
                     "why": (f"{d['failing']} of {d['triangles']} triangles have a loop error above "
                             f"{conf.loop_threshold:g} deg (median {d['median_loop_error_deg']:g}) while "
                             f"{d['agreeing']} of the other paths agree")} for d in dropped],
        "unresolved": int(unresolved),
    }
    return [p for p in pairs if tuple(p) not in gone], report


def _distribution(values: list[float]) -> dict:
    if not values:
        return {"median": None, "p95": None, "max": None}
    v = np.asarray(values)
    return {"median": round(float(np.median(v)), 3), "p95": round(float(np.percentile(v, 95)), 3),
            "max": round(float(v.max()), 3)}


def summary_text(report: dict) -> str:
    """A few words for the summary line: ``loop check: 12 pairs, 20 triangles, 0 dropped``."""
    if not report.get("enabled"):
        return "loop check off"
    return (f"loop check: {report['checked']} pairs, {report['triangles']} triangles, "
            f"{len(report['dropped'])} dropped")
