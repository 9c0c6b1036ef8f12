"""MODS-style matching on demand (Mishkin, Matas, Perdoch, CVIU 2015): view synthesis when needed.

A pair is matched by a list of :class:`Step` s, cheapest first, until the verified inliers reach
``min_inliers``. A step describes its frames on a set of synthesized views of both images
(ASIFT-style: tilt ``t`` and in-plane angle ``phi``); frames found on a view are mapped back to
the original image as affine frames and their patches are cut from the original image
(``patches_from="view"`` describes them on the view instead; measured in benchmarks/RESULTS.md).
Features accumulate over the steps: step k matches the union of the features of steps 1..k with
FGINN, so near-duplicates from neighbouring views do not kill the ratio test.

View (t, phi): rotate the image by ``phi`` degrees (OpenCV sense) about its centre onto a canvas
that holds all of it, blur along x with a Gaussian of sigma ``0.8 * sqrt(t^2 - 1)`` and
compress x by ``t``. ``A_view`` (2, 3) maps original pixels to view pixels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from . import laf as laflib
from .detect.base import Detections
from .io import load_gray
from .pipeline import Features, Pipeline

#: ASIFT's angle step at tilt t is ANGLE_STEP / t degrees, over [0, 180).
ANGLE_STEP = 72.0


@dataclass(frozen=True)
class View:
    """One synthesized view: tilt ``t`` >= 1 and in-plane angle ``phi`` in degrees."""

    tilt: float = 1.0
    angle: float = 0.0

    @property
    def is_identity(self) -> bool:
        return self.tilt == 1.0 and self.angle == 0.0


def view_set(tilts=(1.0,), angle_step: float = ANGLE_STEP) -> list[View]:
    """ASIFT sampling: for each tilt t, angles 0, s, 2s, ... < 180 with s = angle_step / t (one view at t = 1)."""
    views = []
    for t in tilts:
        t = float(t)
        if t <= 1.0:
            views.append(View(1.0, 0.0))
            continue
        step = angle_step / t
        views += [View(t, float(a)) for a in np.arange(0.0, 180.0 - 1e-6, step)]
    return views


def synthesize(image: np.ndarray, view: View) -> tuple[np.ndarray, np.ndarray]:
    """The view image and the affine map (2, 3) from original pixels to view pixels."""
    if view.is_identity:
        return image, np.array([[1.0, 0, 0], [0, 1.0, 0]])
    h, w = image.shape[:2]
    theta = np.deg2rad(view.angle)
    # image rotated by phi in the OpenCV sense (counter-clockwise on screen): y points down
    rot = np.array([[np.cos(theta), np.sin(theta)], [-np.sin(theta), np.cos(theta)]])
    corners = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]], np.float64) @ rot.T
    low, high = corners.min(0), corners.max(0)
    affine = np.concatenate([rot, -low[:, None]], axis=1)
    size = np.ceil(high - low + 1).astype(int)
    rotated = cv2.warpAffine(image, affine, (int(size[0]), int(size[1])), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if view.tilt > 1.0:
        sigma = 0.8 * np.sqrt(view.tilt ** 2 - 1.0)
        rotated = cv2.GaussianBlur(rotated, (0, 0), sigmaX=sigma, sigmaY=0.01)
        new_w = max(1, int(round(rotated.shape[1] / view.tilt)))
        rotated = cv2.resize(rotated, (new_w, rotated.shape[0]), interpolation=cv2.INTER_LINEAR)
        sx = new_w / size[0]
        # cv2.resize maps pixel centres: x' = (x + 0.5) * sx - 0.5
        squash = np.array([[sx, 0.0], [0.0, 1.0]])
        affine = np.concatenate([squash @ affine[:, :2], squash @ affine[:, 2:] + [[0.5 * sx - 0.5], [0.0]]], axis=1)
    return rotated, affine


def _as_homography(affine: np.ndarray) -> np.ndarray:
    return np.vstack([affine, [0.0, 0.0, 1.0]])


def views_of(image: np.ndarray, views: list[View]):
    """Yield (view image, affine (2, 3) original -> view, homography (3, 3) view -> original) per view."""
    for view in views:
        view_image, affine = synthesize(image, view)
        yield view_image, affine, np.linalg.inv(_as_homography(affine))


def _inside(lafs: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape[:2]
    c = laflib.centers(lafs)
    return np.nonzero((c[:, 0] >= 0) & (c[:, 1] >= 0) & (c[:, 0] <= w - 1) & (c[:, 1] <= h - 1))[0]


def detect_in_views(detect, image: np.ndarray, views: list[View]) -> Detections:
    """Frames of ``image`` found by ``detect`` (uint8 (H, W) -> Detections) on each view, in original pixels.

    Frames whose centre maps outside the original image are dropped; near-duplicates across
    views are merged (:func:`unique_frames`).
    """
    parts = []
    for view_image, _, back in views_of(image, views):
        detections = detect(view_image)
        if len(detections):
            detections = detections.with_lafs(laflib.transform(detections.lafs, back))
            parts.append(detections.subset(_inside(detections.lafs, image.shape)))
    merged = Detections.concat(parts)
    return merged.subset(laflib.unique(merged.lafs))


@dataclass(frozen=True)
class Step:
    """One matching step: pipeline option overrides and the views to synthesize.

    ``options`` override the base configuration (detector, nfeatures per view, affine,
    orientation, ...); ``tilts``/``angle_step`` give the views (:func:`view_set`).
    """

    name: str
    options: dict = field(default_factory=dict)
    tilts: tuple = (1.0,)
    angle_step: float = ANGLE_STEP

    def views(self) -> list[View]:
        return view_set(self.tilts, self.angle_step)


def default_steps(config) -> tuple[Step, ...]:
    """The steps of ``--preset wide``: the base configuration first (so pairs it matches cost
    nothing more), then Hessian-affine + AffNet frames on the originals, then DoG on the ASIFT
    views given by ``config.view_tilts`` / ``config.view_angle_step`` (600 frames per view)."""
    return (
        Step("base"),
        Step("hessaff-affnet", {"detector": "hessaff", "affine": "affnet", "nfeatures": 4000, "matcher": "fginn"}),
        Step("views-dog", {"detector": "dog", "nfeatures": 600, "matcher": "fginn"},
             tilts=config.tilts(), angle_step=config.view_angle_step),
    )


class OnDemandMatcher:
    """Run :class:`Step` s in order until one verifies ``min_inliers`` inliers.

    ``config`` is the base :class:`~hardmatch.config.PipelineConfig` (its geometry, descriptor,
    verification settings hold for every step; each step overrides what it names).
    """

    def __init__(self, config, steps: tuple[Step, ...] | None = None, min_inliers: int | None = None,
                 patches_from: str = "original") -> None:
        if patches_from not in ("original", "view"):
            raise ValueError(f"patches_from must be 'original' or 'view', got {patches_from!r}")
        self.config = config
        self.patches_from = patches_from
        self.steps = default_steps(config) if steps is None else tuple(steps)
        self.min_inliers = config.step_inliers if min_inliers is None else int(min_inliers)
        self._pipelines: dict[str, object] = {}

    def pipeline(self, step: Step) -> Pipeline:
        if step.name not in self._pipelines:
            self._pipelines[step.name] = Pipeline(self.config.with_options(on_demand=False, **step.options))
        return self._pipelines[step.name]

    def features(self, step: Step, gray: np.ndarray) -> Features:
        """Features of one image for one step (views synthesized when the step has tilts)."""
        pipeline = self.pipeline(step)
        views = step.views()
        if len(views) == 1 and views[0].is_identity:
            return pipeline.extract(gray)
        if self.patches_from == "view":
            return self._features_described_on_views(pipeline, gray, views)
        t0 = time.perf_counter()
        detections = detect_in_views(pipeline.frames, gray, views)
        t1 = time.perf_counter()
        features = pipeline.describe_frames(gray, detections)
        features.timings = {"detect": t1 - t0, **features.timings}
        return features

    @staticmethod
    def _features_described_on_views(pipeline: Pipeline, gray: np.ndarray, views: list[View]) -> Features:
        """The alternative of describing each view's patches on the view itself (for comparison)."""
        parts = []
        for view_image, _, back in views_of(gray, views):
            features = pipeline.extract(view_image)
            features = Features(laflib.transform(features.lafs, back), features.responses, features.descriptors,
                                gray.shape[:2])
            parts.append(features.subset(_inside(features.lafs, gray.shape)))
        merged = Features.concat(parts)
        return merged.subset(laflib.unique(merged.lafs))

    def match_pair(self, image1, image2):
        """Match two images (paths or arrays) -> :class:`~hardmatch.pipeline.PairResult` with ``step`` and ``steps``."""
        t_start = time.perf_counter()
        gray1, gray2 = load_gray(image1), load_gray(image2)
        so_far1, so_far2 = [], []
        tried = []
        best = None
        for step in self.steps:
            t0 = time.perf_counter()
            so_far1.append(self.features(step, gray1))
            so_far2.append(self.features(step, gray2))
            result = self.pipeline(step).match_features(Features.concat(so_far1), Features.concat(so_far2))
            seconds = time.perf_counter() - t0
            tried.append({"step": step.name, "features": list(result.num_features), "matches": result.num_matches,
                          "inliers": result.num_inliers, "seconds": round(seconds, 3), "reason": result.reason})
            if best is None or result.num_inliers > best.num_inliers:
                best, best_step = result, step.name
            if result.success and result.num_inliers >= self.min_inliers:
                break
        best.step = best_step if best.success else None
        if not best.success:  # every step rejected: say why each was
            best.reason = "; ".join(f"{t['step']}: {t['reason']}" for t in tried)
        best.steps = tried
        best.config = self.config
        best.timings = {**{f"step {t['step']}": t["seconds"] for t in tried}, "total": time.perf_counter() - t_start}
        return best
