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

import numpy as np

from ..core import laf as laflib
from ..core.io import WorkingImage, load_working
from ..core.records import Features
from ..features.describe import bulk_precision
from ..features.detections import Detections
from ..features.frames import FrameDetector
from ..features.patches import build_pyramid
from ..geometry.a_contrario import EPSILON, NO_MODEL, Validation, result_validation
from ..geometry.extreme_acceptance import (
    accept_extreme,
    precision_problem,
    refine_accepted,
    repeated_pattern_problem,
)
from ..geometry.model_accuracy import result_accuracy
from .pipeline import Pipeline, frame_detector
from .steps import (
    DEFAULT_H_THRESHOLD,
    SHAPELESS_STEP_INLIERS,
    Frames,
    Step,
    default_steps,
    has_shape,
    max_view_tilt,
)
from .views import View, detect_in_views, inside_image, views_of


class OnDemandMatcher:
    """Run :class:`Step` s in order until one verifies ``min_inliers`` inliers (a step without affine
    shape, :func:`has_shape`: at least :data:`SHAPELESS_STEP_INLIERS`).

    ``config`` is the base :class:`~hardmatch.config.PipelineConfig` (its geometry, descriptor,
    verification settings hold for every step; each step overrides what it names). Steps other than
    a plain first one describe with :func:`~hardmatch.features.describe.bulk_precision` (bf16 on CPUs that
    have it, when ``config.precision`` is auto). Every accepted
    model must also pass :func:`~hardmatch.geometry.extreme_acceptance.repeated_pattern_problem`; a homography of a
    step on tilted views is accepted by :func:`~hardmatch.geometry.extreme_acceptance.accept_extreme` (Sampson
    inliers and refit, axis-ratio limit of the views' tilts, precision) instead of the pipeline's checks.
    Every step's model must also be real a contrario (:mod:`hardmatch.geometry.a_contrario`: NFA over the
    step's distinct tentatives < ``nfa_epsilon``); ``min_inliers`` and ``step_inliers`` stay as floors.

    The model reported is the accepted one with the lowest NFA, the later step's on a tie: the step whose
    evidence ended the search reports its model unless an earlier step's is strictly better, never an
    earlier, weaker one (an equal inlier count does not make it better).
    """

    def __init__(self, config, steps: tuple[Step, ...] | None = None, min_inliers: int | None = None,
                 patches_from: str = "original", nfa_epsilon: float = EPSILON) -> None:
        if patches_from not in ("original", "view"):
            raise ValueError(f"patches_from must be 'original' or 'view', got {patches_from!r}")
        if not nfa_epsilon > 0:
            raise ValueError(f"nfa_epsilon must be > 0, got {nfa_epsilon!r}")
        self.nfa_epsilon = float(nfa_epsilon)
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
            parts.append(features.subset(inside_image(features.lafs, gray.shape)))
        merged = Features.concat(parts)
        return merged.subset(laflib.unique(merged.lafs))

    def _own_acceptance(self, step: Step) -> bool:
        """Steps on tilted views of a homography are accepted here (:meth:`_accept_views`), not by the pipeline."""
        return self.config.geometry == "homography" and max_view_tilt(step) > 1.0

    def _check(self, step: Step, result, works: tuple[WorkingImage, WorkingImage]) -> tuple[object, Validation]:
        """The step's result after the extreme-geometry checks (:mod:`hardmatch.geometry.extreme_acceptance`) and the
        a-contrario test of the model in hand (the refitted one on view steps), with that test's
        :class:`~hardmatch.geometry.a_contrario.Validation` (also of a model refused by the other checks); a refused
        model becomes "no model" with the reason."""
        if not result.success:
            return result, NO_MODEL
        sizes = tuple((w.original_shape[1], w.original_shape[0]) for w in works)
        if self._own_acceptance(step):
            why = self._accept_views(step, result)
        else:
            why = repeated_pattern_problem(*result.inlier_points, *sizes, self.config.min_inliers)
            if not why and result.geometry == "homography":  # the view steps' precision: Sampson refit, LO
                lafs1, lafs2 = _matched_lafs(result)
                result.model, result.inliers = refine_accepted(
                    result.model, result.inliers, result.points1, result.points2, lafs1, lafs2,
                    self.config.threshold or DEFAULT_H_THRESHOLD)
                # the refit's inliers pass the check too: a refit never accepts what the model alone could not;
                # and, as on view steps, they must pin the homography down over the overlap (a near miss is no answer)
                why = (repeated_pattern_problem(*result.inlier_points, *sizes, self.config.min_inliers)
                       or precision_problem(result.model, *result.inlier_points, sizes))
        validation = result_validation(result)
        if not why and not validation.real(self.nfa_epsilon):
            why = (f"the consensus could be chance: log10 NFA {validation.log10_nfa:.1f} >= "
                   f"{np.log10(self.nfa_epsilon):g} (at best {validation.k} of {validation.n} tentatives within "
                   f"{validation.radius:.2f} px in image {validation.image})")
        if why:
            result.model, result.reason = None, why
            result.inliers = np.zeros(len(result.matches), bool)
        return result, validation

    def _accept_views(self, step: Step, result) -> str:
        """Accept a homography of a view step (:func:`~hardmatch.geometry.extreme_acceptance.accept_extreme`); reason "" when
        accepted, ``result`` then holds the refitted model and its inliers."""
        lafs1, lafs2 = _matched_lafs(result)
        sizes = tuple((f.image_shape[1], f.image_shape[0]) for f in (result.features1, result.features2))
        result.model, result.inliers, why = accept_extreme(
            result.model, result.points1, result.points2, lafs1, lafs2, sizes, self.config.min_inliers,
            self.config.threshold or DEFAULT_H_THRESHOLD, max_view_tilt(step))
        return why

    def load(self, image) -> WorkingImage:
        """The image (path, array or already loaded) at the working resolution (``max_side``), as :meth:`Pipeline.load`."""
        return load_working(image, self.config.max_side)

    def match_pair(self, image1, image2, deadline: float | None = None):
        """Match two images (paths or arrays) -> :class:`~hardmatch.core.records.PairResult` with ``step`` and ``steps``.

        ``deadline`` (a ``time.perf_counter()`` value): no step after the first starts past it (the reason says so)."""
        t_start = time.perf_counter()
        # views are synthesized from the working images; features come back in original pixels
        work1, work2 = load_working(image1, self.config.max_side), load_working(image2, self.config.max_side)
        pyramids = {}
        so_far1, so_far2 = [], []
        tried = []
        best, best_nfa = None, float("inf")
        stopped = None
        for step in self.steps:
            t0 = time.perf_counter()
            if deadline is not None and tried and t0 >= deadline:
                stopped = step.name
                break
            if not step.is_plain and not pyramids:
                pyramids = {1: build_pyramid(work1.gray), 2: build_pyramid(work2.gray)}
            so_far1.append(self.features(step, work1, pyramids.get(1)))
            so_far2.append(self.features(step, work2, pyramids.get(2)))
            result = self.pipeline(step).match_features(Features.concat(so_far1), Features.concat(so_far2))
            result, validation = self._check(step, result, (work1, work2))
            seconds = time.perf_counter() - t0
            tried.append({"step": step.name, "features": list(result.num_features), "matches": result.num_matches,
                          "inliers": result.num_inliers, "seconds": round(seconds, 3), "reason": result.reason,
                          **validation.to_dict()})
            if best is None or (result.success and (not best.success or validation.log10_nfa <= best_nfa)):
                best, best_step, best_nfa = result, step.name, validation.log10_nfa  # a tie: the later step
            enough = self.min_inliers if has_shape(step, self.config) else max(self.min_inliers,
                                                                                 SHAPELESS_STEP_INLIERS)
            if result.success and result.num_inliers >= enough:
                break
        best.step = best_step if best.success else None
        best.accuracy = result_accuracy(best)  # of the model reported, after any refit of its step
        if not best.success:  # every step rejected: say why each was
            best.reason = "; ".join(f"{t['step']}: {t['reason']}" for t in tried)
            if stopped:
                best.reason += f"; time budget spent before step {stopped}"
        best.steps = tried
        used = [f for step in self.steps[:len(tried)]
                for detector in [self.pipeline(step).frames, *(self.frames(step, g) for g in step.groups())]
                for f in detector.fallbacks]
        best.fallbacks = list({(f.option, f.asked, f.used): f for f in used}.values())  # one notice per stand-in
        best.config = self.config
        best.timings = {**{f"step {t['step']}": t["seconds"] for t in tried}, "total": time.perf_counter() - t_start}
        return best


def _matched_lafs(result) -> tuple[np.ndarray, np.ndarray]:
    """The frames (K, 2, 3) of a result's K tentative matches in image 1 and in image 2."""
    return result.features1.lafs[result.matches[:, 0]], result.features2.lafs[result.matches[:, 1]]
