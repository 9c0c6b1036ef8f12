"""Stage 3: match and verify each pair with hardmatch's own pipeline -> ``OUT/matches.h5`` (hloc's layout).

One task per pair (``(config, features.h5 path, name0, name1, ...)``): the two images' stored
features are read (a small per-process cache) and :meth:`Pipeline.match_features` runs the
preset's matcher, duplicate merging, RANSAC attempts and acceptance checks, exactly as ``hardmatch
pair`` does on the same features. The client writes each pair's record in pair order; a re-run
skips the pairs already written.

Record (see :mod:`hardmatch.scene.hloc_files`): ``matches0`` / ``matching_scores0`` hold the tentative
matches (score in [0, 1]: hloc's ``(1 + cos) / 2`` of the descriptors, :func:`~hardmatch.scene.hloc_files.hloc_score`), ``inliers`` (I, 2) the verified ones (empty when no model was
accepted), ``model`` the accepted F (or E with ``--geometry essential``: each image's camera from
``--intrinsics``, EXIF or the prior) between the original images, ``reason`` why not.

``--preset wide``: :class:`~hardmatch.twoview.on_demand.OnDemandMatcher` semantics on stored features are
not available (its later steps need the images), so a pair is matched with MODS' first step only
(the ``default`` matcher) -- see :func:`matching_config`.
"""

from __future__ import annotations

from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..twoview.config import PipelineConfig
from . import hloc_files as store
from .features import feature_config

#: Configuration fields that only change how stored features are matched and verified.
MATCH_FIELDS = ("matcher", "ratio", "fginn_radius", "geometry", "ransac", "threshold", "max_iters", "confidence",
                "seed", "min_inliers", "ransac_attempts", "duplicate_radius", "accept_checks", "laf_check")


def matching_config(config: PipelineConfig) -> PipelineConfig:
    """The configuration that matches stored features (``on_demand`` off: see the module note)."""
    return feature_config(config)


def fingerprint(config: PipelineConfig, features_fingerprint: dict) -> dict:
    values = asdict(config)
    return {**features_fingerprint, **{k: values[k] for k in MATCH_FIELDS if k in values},
            "scores": store.SCORE_CONVENTION}


@lru_cache(maxsize=16)
def _features(path: str, name: str, mtime: float):
    return store.read_features(Path(path), name)


def _load(path: str, name: str):
    return _features(path, name, Path(path).stat().st_mtime)


def match_record(result, f0, f1) -> dict:
    """A :class:`~hardmatch.core.records.PairResult` of features ``f0``, ``f1`` -> the arrays of one matches.h5
    group (score of a match: :func:`~hardmatch.scene.hloc_files.hloc_score` of the cosine similarity of
    its two unit-norm descriptors, in [0, 1])."""
    matches0 = np.full(len(f0), -1, dtype=np.int32)
    scores0 = np.zeros(len(f0), dtype=np.float32)
    pairs = np.asarray(result.matches, dtype=np.int64).reshape(-1, 2)
    if len(pairs):
        d0, d1 = f0.descriptors_numpy[pairs[:, 0]], f1.descriptors_numpy[pairs[:, 1]]
        similarity = (d0 * d1).sum(1).astype(np.float32)
        order = np.argsort(similarity, kind="stable")  # the most similar, written last, wins a shared index
        matches0[pairs[order, 0]] = pairs[order, 1]
        scores0[pairs[order, 0]] = store.hloc_score(similarity[order])
    inliers = pairs[np.asarray(result.inliers, dtype=bool)] if result.success else np.zeros((0, 2), np.int64)
    return {"matches0": matches0, "matching_scores0": scores0, "inliers": inliers.astype(np.int32),
            "model": None if result.model is None else np.asarray(result.model, np.float64),
            "geometry": result.geometry, "reason": result.reason}


def cameras(image_dir: str, names: tuple[str, str], shapes, intrinsics: Optional[str]):
    """Geometry essential: each image's camera (``intrinsics`` fx,fy,cx,cy for all, else its EXIF focal
    length, else the prior), as the database stage makes them (:func:`hardmatch.geometry.intrinsics.resolve_camera`)."""
    from ..geometry.intrinsics import parse_intrinsics, resolve_camera

    given = parse_intrinsics(intrinsics)[0] if intrinsics else None
    return tuple(resolve_camera(given, str(Path(image_dir) / n), shape) for n, shape in zip(names, shapes))


def match_pair_task(task: tuple) -> dict:
    """``(config, features.h5 path, name0, name1, image folder, intrinsics text or None)`` -> one
    matches.h5 record (module level: picklable for Dask)."""
    from ..twoview.pipeline import Pipeline

    config, path, name0, name1, image_dir, intrinsics = task
    f0, f1 = _load(path, name0), _load(path, name1)
    given = None
    if config.geometry == "essential":
        given = cameras(image_dir, (name0, name1), (f0.image_shape, f1.image_shape), intrinsics)
    result = Pipeline(config).match_features(f0, f1, cameras=given)
    record = match_record(result, f0, f1)
    record["seconds"] = sum(result.timings.get(k, 0.0) for k in ("match", "verify"))
    return record


def match_pairs(pairs: list[tuple[str, str]], out: Path, config: PipelineConfig, executor,
                progress: Optional[Callable] = None, image_dir: Path = Path("."),
                intrinsics: Optional[str] = None) -> dict:
    """Match and write the ``pairs`` not yet in ``out/matches.h5`` (``image_dir``, ``intrinsics``: the
    cameras of geometry essential, see :func:`cameras`).

    ``progress(n)`` once per finished pair. Returns ``{"written": n, "reused": n}``.
    """
    from .features import fingerprint as features_fingerprint

    config = matching_config(config)
    path = Path(out) / store.MATCHES_H5
    features_path = Path(out) / store.FEATURES_H5
    stamp = fingerprint(config, features_fingerprint(config))
    if config.geometry == "essential":
        stamp["cameras"] = intrinsics or "exif or prior"
    store.check_fingerprint(path, stamp)
    done = store.written_groups(path)
    todo = [p for p in pairs if store.pair_key(*p) not in done]
    tasks = [(config, str(features_path), a, b, str(image_dir), intrinsics) for a, b in todo]
    names = [f"pair {a} {b}" for a, b in todo]
    for (a, b), record in zip(todo, executor.map_ordered(match_pair_task, tasks, names=names)):
        store.write_matches(path, a, b, record)
        if progress is not None:
            progress(1)
    return {"written": len(todo), "reused": len(pairs) - len(todo)}
