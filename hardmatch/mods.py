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
from .describe import bulk_precision
from .detect.base import Detections
from .extreme_accept import accept_extreme, repeated_pattern_problem
from .io import WorkingImage, load_working
from .patches import build_pyramid
from .frames import FrameDetector
from .pipeline import Features, Pipeline, frame_detector

#: ASIFT's angle step at tilt t is ANGLE_STEP / t degrees, over [0, 180).
ANGLE_STEP = 72.0


@dataclass(frozen=True)
class View:
    """One synthesized view: tilt ``t`` >= 1, in-plane angle ``phi`` in degrees, then a zoom by ``scale`` <= 1."""

    tilt: float = 1.0
    angle: float = 0.0
    scale: float = 1.0

    @property
    def is_identity(self) -> bool:
        return self.tilt == 1.0 and self.angle == 0.0 and self.scale == 1.0


def view_set(tilts=(1.0,), angle_step: float = ANGLE_STEP, scales=(1.0,)) -> list[View]:
    """ASIFT sampling: for each scale and tilt t, angles 0, s, 2s, ... < 180 with s = angle_step / t
    (one view at t = 1). MODS writes ``angle_step`` as the rotation density (360 gives one view at
    t <= 2, four at t = 8)."""
    views = []
    for scale in scales:
        for t in tilts:
            t = float(t)
            if t <= 1.0:
                views.append(View(1.0, 0.0, float(scale)))
                continue
            step = angle_step / t
            views += [View(t, float(a), float(scale)) for a in np.arange(0.0, 180.0 - 1e-6, step)]
    return views


def synthesize(image: np.ndarray, view: View) -> tuple[np.ndarray, np.ndarray]:
    """The view image and the affine map (2, 3) from original pixels to view pixels."""
    if view.is_identity:
        return image, np.array([[1.0, 0, 0], [0, 1.0, 0]])
    if view.tilt == 1.0 and view.angle == 0.0:
        return _zoom(image, np.array([[1.0, 0, 0], [0, 1.0, 0]]), view.scale)
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
    return _zoom(rotated, affine, view.scale)


def _zoom(image: np.ndarray, affine: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """``image`` shrunk by ``scale`` <= 1 (area averaging) and ``affine`` (2, 3) composed with the shrink."""
    if scale >= 1.0:
        return image, affine
    h, w = image.shape[:2]
    new_w, new_h = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    small = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
    sx, sy = new_w / w, new_h / h
    shrink = np.diag([sx, sy])
    offset = np.array([[0.5 * sx - 0.5], [0.5 * sy - 0.5]])
    return small, np.concatenate([shrink @ affine[:, :2], shrink @ affine[:, 2:] + offset], axis=1)


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


def detect_in_views(detect, image: np.ndarray, views: list[View], per_view=None) -> Detections:
    """Frames of ``image`` found by ``detect`` (uint8 (H, W) -> Detections) on each view, in original pixels.

    ``per_view(view) -> detect`` picks the detector per view instead (a frame budget per view). Frames
    whose centre maps outside the original image are dropped; near-duplicates across views are merged
    (:func:`unique_frames`).
    """
    parts = []
    for view, (view_image, _, back) in zip(views, views_of(image, views)):
        detections = (detect if per_view is None else per_view(view))(view_image)
        if len(detections):
            detections = detections.with_lafs(laflib.transform(detections.lafs, back))
            parts.append(detections.subset(_inside(detections.lafs, image.shape)))
    merged = Detections.concat(parts)
    return merged.subset(laflib.unique(merged.lafs))


#: FrameDetector options a :class:`Frames` group may set; everything else is a step (pipeline) option.
FRAME_OPTIONS = ("detector", "nfeatures", "affine", "orientation", "contrast_threshold")


@dataclass(frozen=True)
class Frames:
    """One detector setting of a step and the views it runs on.

    ``options``: :data:`FRAME_OPTIONS` overrides (``nfeatures`` counts per view);
    ``tilts``/``angle_step``/``scales`` give the views (:func:`view_set`). ``density`` > 0: frames per
    view by the area of the image the view shows instead (``density`` frames per 1000 px^2 of it,
    ``area * scale^2 / tilt``), at least ``nfeatures`` and at most :data:`MAX_VIEW_FEATURES`
    (:meth:`budget`), so untilted views keep what a detector finds on a whole image and steep ones less.
    """

    options: dict = field(default_factory=dict)
    tilts: tuple = (1.0,)
    angle_step: float = ANGLE_STEP
    scales: tuple = (1.0,)
    density: float = 0.0

    def budget(self, view: View, image_area: float) -> int:
        """Frames per detector on ``view`` of an image of ``image_area`` px^2 (multiples of 50)."""
        least = int(self.options.get("nfeatures", VIEW_FEATURES))
        if self.density <= 0:
            return least
        wanted = self.density * image_area * view.scale ** 2 / view.tilt / 1000.0
        return int(min(max(50 * round(wanted / 50.0), least), MAX_VIEW_FEATURES))

    def with_budget(self, nfeatures: int) -> "Frames":
        """This group with ``nfeatures`` per view (no density): the detector setting of one budget."""
        return Frames({**self.options, "nfeatures": int(nfeatures)}, self.tilts, self.angle_step, self.scales)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.options) - set(FRAME_OPTIONS))
        if unknown:
            raise ValueError(f"Frames options must be among {', '.join(FRAME_OPTIONS)}, got {', '.join(unknown)}")

    def views(self) -> list[View]:
        return view_set(self.tilts, self.angle_step, self.scales)


@dataclass(frozen=True)
class Step:
    """One matching step: pipeline option overrides and the frames to detect.

    ``options`` override the base configuration (matcher, ratio, ... and, for the frames of a step
    without ``frames``, detector, nfeatures per view, affine, orientation). ``frames`` lists several
    detector settings, each on its own views (MODS: MSER on tilts 1, 3, 6, 9 at three scales with
    Hessian-affine on tilts 1, 2, 4, 6, 8 in one step); without it, one group on the views given by
    ``tilts``/``angle_step``. All groups' patches are described in one batched call per image.
    """

    name: str
    options: dict = field(default_factory=dict)
    tilts: tuple = (1.0,)
    angle_step: float = ANGLE_STEP
    frames: tuple = ()

    def groups(self) -> tuple[Frames, ...]:
        if self.frames:
            return tuple(self.frames)
        frame_options = {k: v for k, v in self.options.items() if k in FRAME_OPTIONS}
        return (Frames(frame_options, self.tilts, self.angle_step),)

    def views(self) -> list[View]:
        """All views of the step (the union over its groups, in order)."""
        views = []
        for group in self.groups():
            views += [v for v in group.views() if v not in views]
        return views

    @property
    def is_plain(self) -> bool:
        """One group on the original image only: the step is its pipeline's own ``extract``."""
        groups = self.groups()
        return len(groups) == 1 and not self.frames and all(v.is_identity for v in groups[0].views())


def default_steps(config) -> tuple[Step, ...]:
    """The steps of ``--preset wide``, MODS's order (cheapest first, denser views later):

    1. ``base``: the base configuration itself (so pairs it matches cost what it costs);
    2. ``affine``: Hessian-affine + AffNet frames and MSER at scales 1, 1/4, 1/8 on the originals;
    3. ``views``: DoG and Hessian-affine (Baumberg) on views tilted by ``config.view_tilts`` at
       rotation density ``config.view_angle_step`` (MODS's 360: one view per 360/t degrees over
       [0, 180)), plus MSER on tilts 1, 3, 6, 9 (up to the largest view tilt + 1) at the same density;
    4. ``views-dense``: DoG and Hessian-affine on the same tilts at a three times denser rotation
       sampling (MODS's 120);
    5. ``views-denser``: the same at a five times denser sampling (MODS's 72).

    Matching is FGINN at ratio 0.8 over the union of the features of the steps so far.
    ``config.view_density`` (6): the view steps keep frames per view by the area the view shows
    (:attr:`Frames.density`, frames per 1000 px^2; ``views-dense`` a third of it, which with three
    times the views costs about what ``views`` costs); 0 keeps a fixed count per view
    (:data:`VIEW_FEATURES`, a third and a fifth of it in the denser steps). 6 took the hard tier of
    the extreme-view dev set from 6 to 9 of 12 pairs, ``views-denser`` to 10 (RESULTS "Extreme views:
    hard tier").
    """
    tilts = tuple(t for t in config.tilts() if t > 1.0) or (1.0,)
    mser_tilts = (1.0,) + tuple(t for t in MSER_TILTS if t <= max(tilts) + 1.0)
    density, per_area = config.view_angle_step, float(config.view_density)
    fginn = {"matcher": "fginn", "ratio": 0.8}

    def dog_and_hessaff(nfeatures: int, angle_step: float, frames_per_area: float) -> tuple[Frames, Frames]:
        return (Frames({"detector": "dog", "nfeatures": nfeatures}, tilts, angle_step, density=frames_per_area),
                Frames({"detector": "hessaff", "affine": "baumberg", "nfeatures": nfeatures}, tilts, angle_step,
                       density=frames_per_area))

    return (
        Step("base"),
        Step("affine", fginn, frames=(
            Frames({"detector": "hessaff", "affine": "affnet", "nfeatures": 4000}),
            Frames({"detector": "mser", "nfeatures": 2000}, scales=MSER_SCALES),
        )),
        Step("views", fginn, frames=dog_and_hessaff(VIEW_FEATURES, density, per_area) + (
            Frames({"detector": "mser", "nfeatures": VIEW_FEATURES}, mser_tilts, density, density=per_area),
        )),
        Step("views-dense", fginn, frames=dog_and_hessaff(VIEW_FEATURES // 3, density / 3.0, per_area / 3.0)),
        Step("views-denser", fginn, frames=dog_and_hessaff(VIEW_FEATURES // 5, density / 5.0, per_area)),
    )


#: MODS's MSER sampling: tilts (up to the largest view tilt) and scales.
MSER_TILTS = (3.0, 6.0, 9.0)
MSER_SCALES = (1.0, 0.25, 0.125)
#: frames per detector and view in the first view step (a third of it in the dense step, which has
#: about three times the views, so both steps cost about the same)
VIEW_FEATURES = 150
#: Frames per detector and view at most when a group sets a density (:meth:`Frames.budget`).
MAX_VIEW_FEATURES = 2000
#: A step whose frames carry no affine shape (round DoG frames on the originals: the frame check
#: cannot bind) ends the search only with this many inliers; fewer lets the next steps try and the
#: best accepted model wins. A repeated pattern gave such a step a wrong model with 21 (issue 18).
SHAPELESS_STEP_INLIERS = 30
#: Inlier threshold (pixels) of steps on views when the configuration gives none (DEGENSAC's symmetric one).
DEFAULT_H_THRESHOLD = 3.0


def has_shape(step: Step, config) -> bool:
    """Whether the step's frames carry an affine shape: an affine estimator, MSER, or tilted views."""
    for group in step.groups():
        options = {**step.options, **group.options}
        if options.get("affine", config.affine) != "none" or "mser" in str(options.get("detector", config.detector)):
            return True
        if any(v.tilt > 1.0 for v in group.views()):
            return True
    return False


def max_view_tilt(step: Step) -> float:
    """The largest tilt of the step's views (1 for a step on the originals)."""
    return max((v.tilt for v in step.views()), default=1.0)


class OnDemandMatcher:
    """Run :class:`Step` s in order until one verifies ``min_inliers`` inliers (a step without affine
    shape, :func:`has_shape`: at least :data:`SHAPELESS_STEP_INLIERS`).

    ``config`` is the base :class:`~hardmatch.config.PipelineConfig` (its geometry, descriptor,
    verification settings hold for every step; each step overrides what it names). Steps other than
    a plain first one describe with :func:`~hardmatch.describe.bulk_precision` (bf16 on CPUs that
    have it, when ``config.precision`` is auto). Every accepted
    model must also pass :func:`~hardmatch.extreme_accept.repeated_pattern_problem`; a homography of a
    step on tilted views is accepted by :func:`~hardmatch.extreme_accept.accept_extreme` (Sampson
    inliers and refit, axis-ratio limit of the views' tilts, precision) instead of the pipeline's checks.
    """

    def __init__(self, config, steps: tuple[Step, ...] | None = None, min_inliers: int | None = None,
                 patches_from: str = "original") -> None:
        if patches_from not in ("original", "view"):
            raise ValueError(f"patches_from must be 'original' or 'view', got {patches_from!r}")
        self.config = config
        self.patches_from = patches_from
        self.steps = default_steps(config) if steps is None else tuple(steps)
        self.min_inliers = config.step_inliers if min_inliers is None else int(min_inliers)
        self._pipelines: dict[tuple, Pipeline] = {}
        self._frame_detectors: dict[tuple, FrameDetector] = {}

    def _step_config(self, step: Step, group: Frames | None = None):
        """The configuration of a step, or of one of its frame groups (the step's options, then the group's)."""
        options = {**step.options, **({} if group is None else group.options)}
        if group is None and self._own_acceptance(step):  # the RANSAC model; accepted by _accept_views
            options = {**options, "accept_checks": False, "min_inliers": 4}
        if not step.is_plain:  # 10^4-10^6 patches per image: bf16 where the CPU has it
            options = {"precision": bulk_precision(self.config.precision, self.config.backend,
                                                   self.config.device), **options}
        # the step's AffNet is the preset's choice: the base configuration says whether it may fall back
        return self.config.with_options(
            **{"on_demand": False, "offline_fallback": self.config.offline_fallback, **options})

    def pipeline(self, step: Step, group: Frames | None = None) -> Pipeline:
        """The step's pipeline (matching, verification, descriptor), or that of one of its frame groups."""
        key = (step.name, None if group is None else repr(group))
        if key not in self._pipelines:
            self._pipelines[key] = Pipeline(self._step_config(step, group))
        return self._pipelines[key]

    def frames(self, step: Step, group: Frames) -> FrameDetector:
        """The frame detector of one of the step's groups: the group's frames only (the step's pipeline
        describes them), so no descriptor is loaded per group and frame budget."""
        key = (step.name, repr(group))
        if key not in self._frame_detectors:
            self._frame_detectors[key] = frame_detector(self._step_config(step, group))
        return self._frame_detectors[key]

    def features(self, step: Step, work: WorkingImage | np.ndarray, pyramid: list[np.ndarray] | None = None) -> Features:
        """Features of one image (at working resolution, ``pyramid`` its reusable pyramid) for one step: every
        group's frames on its views, mapped back to the working image, merged, and described in one batched call
        (patches cut from the working image); returned in the original image's pixels."""
        pipeline = self.pipeline(step)
        work = load_working(work, self.config.max_side)  # arrays and paths too
        if step.is_plain:
            return pipeline.extract(work)
        gray = work.gray
        if self.patches_from == "view":
            return Features.concat([self._features_described_on_views(self.pipeline(step, g), gray, g.views())
                                    for g in step.groups()]).in_original(work)
        t0 = time.perf_counter()
        parts = []
        for group in step.groups():
            frames = self.frames(step, group)
            views = group.views()
            if len(views) == 1 and views[0].is_identity:
                parts.append(frames(gray, pyramid=pyramid))
            elif group.density > 0:  # a detector per frame budget
                area = float(gray.shape[0] * gray.shape[1])
                parts.append(detect_in_views(frames, gray, views, lambda v, g=group: self.frames(
                    step, g.with_budget(g.budget(v, area)))))
            else:
                parts.append(detect_in_views(frames, gray, views))
        detections = Detections.concat(parts)
        detections = detections.subset(laflib.unique(detections.lafs))
        t1 = time.perf_counter()
        features = pipeline.describe_frames(gray, detections, pyramid=pyramid)
        features.timings = {"detect": t1 - t0, **features.timings}
        return features.in_original(work)

    @staticmethod
    def _features_described_on_views(pipeline: Pipeline, gray: np.ndarray, views: list[View]) -> Features:
        """The alternative of describing each view's patches on the view itself (for comparison)."""
        parts = []
        for view_image, _, back in views_of(gray, views):
            features = pipeline.extract(WorkingImage.as_is(view_image))  # a view is not resampled again
            features = Features(laflib.transform(features.lafs, back), features.responses, features.descriptors,
                                gray.shape[:2])
            parts.append(features.subset(_inside(features.lafs, gray.shape)))
        merged = Features.concat(parts)
        return merged.subset(laflib.unique(merged.lafs))

    def _own_acceptance(self, step: Step) -> bool:
        """Steps on tilted views of a homography are accepted here (:meth:`_accept_views`), not by the pipeline."""
        return self.config.geometry == "homography" and max_view_tilt(step) > 1.0

    def _check(self, step: Step, result, works: tuple[WorkingImage, WorkingImage]):
        """The step's result after the extreme-geometry checks (:mod:`hardmatch.extreme_accept`): a refused
        model becomes "no model" with the reason."""
        if not result.success:
            return result
        sizes = tuple((w.original_shape[1], w.original_shape[0]) for w in works)
        if self._own_acceptance(step):
            why = self._accept_views(step, result)
        else:
            why = repeated_pattern_problem(*result.inlier_points, *sizes, self.config.min_inliers)
        if why:
            result.model, result.reason = None, why
            result.inliers = np.zeros(len(result.matches), bool)
        return result

    def _accept_views(self, step: Step, result) -> str:
        """Accept a homography of a view step (:func:`~hardmatch.extreme_accept.accept_extreme`); reason "" when
        accepted, ``result`` then holds the refitted model and its inliers."""
        lafs1, lafs2 = result.features1.lafs[result.matches[:, 0]], result.features2.lafs[result.matches[:, 1]]
        sizes = tuple((f.image_shape[1], f.image_shape[0]) for f in (result.features1, result.features2))
        result.model, result.inliers, why = accept_extreme(
            result.model, result.points1, result.points2, lafs1, lafs2, sizes, self.config.min_inliers,
            self.config.threshold or DEFAULT_H_THRESHOLD, max_view_tilt(step))
        return why

    def load(self, image) -> WorkingImage:
        """The image (path, array or already loaded) at the working resolution (``max_side``), as :meth:`Pipeline.load`."""
        return load_working(image, self.config.max_side)

    def match_pair(self, image1, image2):
        """Match two images (paths or arrays) -> :class:`~hardmatch.pipeline.PairResult` with ``step`` and ``steps``."""
        t_start = time.perf_counter()
        # views are synthesized from the working images; features come back in original pixels
        work1, work2 = load_working(image1, self.config.max_side), load_working(image2, self.config.max_side)
        pyramids = {}
        so_far1, so_far2 = [], []
        tried = []
        best = None
        for step in self.steps:
            t0 = time.perf_counter()
            if not step.is_plain and not pyramids:
                pyramids = {1: build_pyramid(work1.gray), 2: build_pyramid(work2.gray)}
            so_far1.append(self.features(step, work1, pyramids.get(1)))
            so_far2.append(self.features(step, work2, pyramids.get(2)))
            result = self.pipeline(step).match_features(Features.concat(so_far1), Features.concat(so_far2))
            result = self._check(step, result, (work1, work2))
            seconds = time.perf_counter() - t0
            tried.append({"step": step.name, "features": list(result.num_features), "matches": result.num_matches,
                          "inliers": result.num_inliers, "seconds": round(seconds, 3), "reason": result.reason})
            if best is None or result.num_inliers > best.num_inliers:
                best, best_step = result, step.name
            enough = self.min_inliers if has_shape(step, self.config) else max(self.min_inliers,
                                                                                 SHAPELESS_STEP_INLIERS)
            if result.success and result.num_inliers >= enough:
                break
        best.step = best_step if best.success else None
        if not best.success:  # every step rejected: say why each was
            best.reason = "; ".join(f"{t['step']}: {t['reason']}" for t in tried)
        best.steps = tried
        used = [f for step in self.steps[:len(tried)]
                for detector in [self.pipeline(step).frames, *(self.frames(step, g) for g in step.groups())]
                for f in detector.fallbacks]
        best.fallbacks = list({(f.option, f.asked, f.used): f for f in used}.values())  # one notice per stand-in
        best.config = self.config
        best.timings = {**{f"step {t['step']}": t["seconds"] for t in tried}, "total": time.perf_counter() - t_start}
        return best
