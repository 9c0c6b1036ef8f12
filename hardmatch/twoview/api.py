"""The front of two-view matching: one-shot pipeline or matching on demand, chosen from the configuration.

This module sits above both :mod:`hardmatch.twoview.pipeline` (one detect-describe-match-verify pass) and
:mod:`hardmatch.twoview.on_demand` (MODS steps, each a pipeline), so neither has to know about the other's
caller: the CLI, the API (``hardmatch.match_pair``) and the evaluator ask :func:`build_matcher`
for "something that matches a pair" and get a :class:`~hardmatch.twoview.pipeline.Pipeline` or an
:class:`~hardmatch.twoview.on_demand.OnDemandMatcher`. Both offer ``config``, ``load(image)`` and
``match_pair(image1, image2) -> PairResult``.
"""

from __future__ import annotations

from typing import Union

from .config import PipelineConfig, get_preset
from ..core.io import ImageLike, WorkingImage
from ..geometry.intrinsics import Camera, format_intrinsics, resolve_pair
from .on_demand import OnDemandMatcher
from ..core.records import PairResult
from .pipeline import Pipeline

PairMatcher = Union[Pipeline, OnDemandMatcher]


def build_matcher(config: PipelineConfig | str = "default", **options) -> PairMatcher:
    """``Pipeline`` for a one-shot configuration, ``OnDemandMatcher`` when ``config.on_demand`` (``wide``).

    ``config`` is a preset name or a :class:`~hardmatch.config.PipelineConfig`; ``options`` override
    its fields (checked as everywhere). The matcher's first pipeline is built here, so a bad
    configuration (e.g. missing weights) fails now, before any image is read.
    """
    base = get_preset(config) if isinstance(config, str) else config
    resolved = base.with_options(**options)
    if not resolved.on_demand:
        return Pipeline(resolved)
    matcher = OnDemandMatcher(resolved)
    matcher.pipeline(matcher.steps[0])
    return matcher


def with_cameras(matcher: PairMatcher, images, shapes) -> tuple[PairMatcher, tuple[Camera, Camera]]:
    """Geometry essential for images loaded beforehand (e.g. at working resolution): both cameras
    (configured intrinsics, else the EXIF of the files ``images``, else the prior for ``shapes``,
    the original (H, W)) and a matcher configured with them (``matcher`` itself when all were given)."""
    cameras = resolve_pair(matcher.config.intrinsics, None, None, images, shapes)
    if all(c.source == "given" for c in cameras):
        return matcher, cameras
    return build_matcher(matcher.config, intrinsics=format_intrinsics([c.K for c in cameras])), cameras


def match_pair(image1: ImageLike | WorkingImage, image2: ImageLike | WorkingImage, geometry: str | None = None,
               preset: str = "default", **options) -> PairResult:
    """Match two images (paths or numpy arrays) with a preset plus option overrides.

    >>> result = match_pair("a.jpg", "b.jpg", geometry="homography")  # doctest: +SKIP
    >>> result.H, result.num_inliers  # doctest: +SKIP
    """
    if geometry is not None:
        options["geometry"] = geometry
    return build_matcher(preset, **options).match_pair(image1, image2)
