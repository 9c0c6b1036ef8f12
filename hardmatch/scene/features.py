"""Stage 1: features of every image -> ``OUT/features.h5`` (hloc's layout, :mod:`hardmatch.scene.hloc_files`).

One task per image (``(config, path)``, run by an executor: :mod:`hardmatch.scene.executor`);
the client writes each image's group as soon as its result arrives, in image order, with the
identity of the image file (:mod:`hardmatch.scene.image_identity`). A re-run skips the images
already written from the same files, and refuses an ``OUT`` whose features are of other images. A corrupt or unreadable image is skipped with a warning (it
gets no group, so the next run tries it again).

With ``--preset wide`` the stored features are those of MODS' first step (the preset with
``on_demand`` off); the later steps' features are made per pair by the matching stage.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Optional

from ..core.errors import ImageError
from ..twoview.config import PipelineConfig
from . import hloc_files as store
from . import image_identity as identity

#: Configuration fields that change the features (the rest only change matching).
FEATURE_FIELDS = ("detector", "nfeatures", "contrast_threshold", "affine", "orientation", "magnification",
                  "descriptor", "weights", "precision", "max_side", "offline_fallback")


def feature_config(config: PipelineConfig) -> PipelineConfig:
    """The configuration that extracts the stored features (MODS' first step for ``on_demand``)."""
    return config.with_options(on_demand=False) if config.on_demand else config


def fingerprint(config: PipelineConfig) -> dict:
    """What identifies the stored features: the feature fields and the execution path (opencv/torch)."""
    from ..twoview.pipeline import execution_path

    values = asdict(config)
    return {**{k: values[k] for k in FEATURE_FIELDS}, "path": execution_path(config)}


def extract_task(task: tuple[PipelineConfig, str]) -> dict:
    """``(config, image path)`` -> ``{"record": features.h5 arrays, "seconds": s}``, or
    ``{"skipped": reason}`` for an image that cannot be used (module level: picklable for Dask)."""
    from ..twoview.pipeline import Pipeline

    config, path = task
    t0 = time.perf_counter()
    try:
        features = Pipeline(config).extract(path)
    except ImageError as exc:
        return {"skipped": str(exc)}
    return {"record": store.features_record(features), "seconds": time.perf_counter() - t0,
            "timings": dict(features.timings)}


def reusable_features(path: Path, image_dir: Path, names: list[str]) -> tuple[set, dict]:
    """The images of ``names`` whose stored features can be reused, and ``{name: identity}`` of all of
    them (:mod:`hardmatch.scene.image_identity`). A stored image that is now another file is refused
    (:class:`~hardmatch.core.errors.OutputError`, exit 5); one stored without its identity is redone."""
    stored = {name: identity.decode(text) for name, text in store.read_sources(path).items()}
    current = identity.current_identities(image_dir, names, stored)
    identity.check_same_images(path, image_dir, stored, current)
    return {name for name in names if stored.get(name) is not None}, current


def extract_features(image_dir: Path, names: list[str], out: Path, config: PipelineConfig, executor,
                     progress: Optional[Callable] = None, warn: Callable[[str], None] = print) -> dict:
    """Extract and write the features of ``names`` not yet in ``out/features.h5``.

    ``progress(n)`` is called once per finished image; ``warn(line)`` once per skipped image.
    Returns ``{"written": [...], "reused": [...], "skipped": {name: reason}}``.
    """
    config = feature_config(config)
    path = Path(out) / store.FEATURES_H5
    store.check_fingerprint(path, fingerprint(config))
    done, sources = reusable_features(path, Path(image_dir), names)
    todo = [n for n in names if n not in done]
    result = {"written": [], "reused": [n for n in names if n in done], "skipped": {}}
    tasks = [(config, str(Path(image_dir) / n)) for n in todo]
    for name, answer in zip(todo, executor.map_ordered(extract_task, tasks, names=[f"image {n}" for n in todo])):
        if "skipped" in answer:
            result["skipped"][name] = answer["skipped"]
            warn(f"hardmatch: warning: skipped {answer['skipped']}")
        else:
            store.write_features(path, name, answer["record"], identity.encode(sources[name]))
            result["written"].append(name)
        if progress is not None:
            progress(1)
    return result
