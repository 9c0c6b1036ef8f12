"""Features computed once per image and feature configuration during an evaluation.

A dataset of views (a Strecha scene: 11 images, 41 pairs) uses each image in many pairs, and
pipelines that differ only in matching or verification (``sift`` and ``sift:geometry=essential``)
describe an image identically. :class:`FeatureCache` keeps the :class:`~hardmatch.core.records.Features`
of the most recently used (image, feature options) keys, so a runner extracts each image once per
feature configuration instead of once per pair.

The key is the image's resolved path and every :class:`~hardmatch.config.PipelineConfig` field
except those of matching and verification (:data:`MATCH_FIELDS`): a field missing from that list
only makes the cache miss, never reuse features of another configuration.

A hit returns the features with empty ``timings``, so a row's per-stage times show the work done
for that row (the extraction is timed in the row that computed it).
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from dataclasses import asdict, replace
from pathlib import Path

from ..geometry.intrinsics import resolve_pair

#: Fields that act after extraction (matching, geometry, RANSAC, acceptance, MODS steps).
MATCH_FIELDS = frozenset({
    "matcher", "ratio", "fginn_radius", "geometry", "intrinsics", "ransac", "threshold", "max_iters", "confidence",
    "seed", "min_inliers", "ransac_attempts", "duplicate_radius", "accept_checks", "laf_check",
})

#: Images kept by default; features of 8000 frames take about 5 MB, so this bounds the cache to ~0.3 GB.
DEFAULT_CAPACITY = 64


def feature_key(config) -> tuple:
    """``((field, value), ...)`` of the configuration's fields that can change extracted features."""
    return tuple((name, value) for name, value in sorted(asdict(config).items()) if name not in MATCH_FIELDS)


class FeatureCache:
    """Least-recently-used features by (image path, :func:`feature_key`); ``capacity`` entries at most."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = max(0, int(capacity))
        self._entries: OrderedDict = OrderedDict()
        self.hits = 0
        self.misses = 0

    def features(self, pipeline, image: os.PathLike):
        """The features of ``image`` (a path) under ``pipeline`` (a :class:`~hardmatch.twoview.pipeline.Pipeline`)."""
        key = (str(Path(image).resolve()), feature_key(pipeline.config))
        cached = self._entries.get(key)
        if cached is not None:
            self._entries.move_to_end(key)
            self.hits += 1
            return replace(cached, timings={})
        self.misses += 1
        features = pipeline.extract(image)
        if self.capacity:
            self._entries[key] = features
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        return features


def match_with_cache(matcher, pair, cache: FeatureCache):
    """Match ``pair`` (a :class:`~hardmatch.datasets.spec.PairSpec`) with ``matcher`` -> ``PairResult``.

    A one-shot :class:`~hardmatch.twoview.pipeline.Pipeline` takes both images' features from ``cache``;
    geometry ``essential`` gets the pair's true cameras when it is calibrated (else the configured
    intrinsics, EXIF or the prior, as ``Pipeline.match_pair``). Matching on demand (``wide``)
    runs its own steps uncached. ``timings["total"]`` is the wall time of this call.
    """
    if matcher.config.on_demand:
        return matcher.match_pair(pair.image1, pair.image2)
    t0 = time.perf_counter()
    f1, f2 = cache.features(matcher, pair.image1), cache.features(matcher, pair.image2)
    cameras = None
    if matcher.config.geometry == "essential":
        cameras = resolve_pair(matcher.config.intrinsics, pair.K1, pair.K2, (pair.image1, pair.image2),
                               (f1.image_shape, f2.image_shape))
    result = matcher.match_features(f1, f2, cameras)
    result.timings["total"] = time.perf_counter() - t0
    return result
