"""COLMAP's own SIFT pipeline through pycolmap: the baseline reconstructions are compared with.

``pycolmap.extract_features`` (SIFT, COLMAP's defaults) + ``pycolmap.match_exhaustive`` (ratio 0.8,
cross-check, COLMAP's two-view verification) + ``pycolmap.incremental_mapping``, on the CPU by
default, in a working folder of its own (``database.db``, ``sparse/N``). The largest model
(most registered images) is returned with the seconds each stage took.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

from ..core.errors import HardmatchError
from .images import list_images
from .mapping import quiet_colmap

PathLike = Union[str, os.PathLike]


@dataclass
class ColmapSiftResult:
    """A COLMAP SIFT run: ``reconstruction`` (``pycolmap.Reconstruction`` or None when the mapper
    made no model), the ``seconds`` of the whole run and per stage (``extract``, ``match``, ``map``)."""

    reconstruction: Optional[object]
    seconds: float
    stage_seconds: dict = field(default_factory=dict)
    workdir: Optional[Path] = None

    @property
    def registered(self) -> int:
        return 0 if self.reconstruction is None else self.reconstruction.num_reg_images()


def run_colmap_sift(image_dir: PathLike, workdir: PathLike, image_names: Optional[Sequence[str]] = None,
                    device: str = "cpu", single_camera: bool = False, seed: int = 0,
                    max_image_size: Optional[int] = None, quiet: bool = True) -> ColmapSiftResult:
    """Reconstruct the images of ``image_dir`` with COLMAP's SIFT pipeline.

    Args:
        image_dir: folder of the images.
        workdir: folder for ``database.db`` and ``sparse/``; an earlier run's files there are
            replaced (the baseline always starts fresh).
        image_names: file names relative to ``image_dir`` (default: its image files,
            :func:`~hardmatch.scene.images.list_images`; other files such as ``K.txt`` are left out).
        device: ``cpu`` (default), ``cuda`` or ``auto`` for SIFT extraction and matching.
        single_camera: one camera shared by all images (default: one per image, COLMAP's own
            default), model SIMPLE_RADIAL with the focal length from EXIF or 1.2 x the larger side.
        seed: the mapper's random seed (a fixed seed: repeatable models).
        max_image_size: SIFT works on images downscaled to this longer side (default: COLMAP's).
        quiet: COLMAP logs errors only (its INFO log is thousands of lines).
    """
    import pycolmap

    image_dir = Path(image_dir)
    names = list(image_names) if image_names is not None else list_images(image_dir)
    if len(names) < 2:
        raise HardmatchError(f"{image_dir}: COLMAP SIFT needs at least two images, found {len(names)}")
    workdir = Path(workdir)
    database = workdir / "database.db"
    sparse = workdir / "sparse"
    workdir.mkdir(parents=True, exist_ok=True)
    database.unlink(missing_ok=True)
    shutil.rmtree(sparse, ignore_errors=True)
    sparse.mkdir()
    if device not in ("auto", "cpu", "cuda"):
        raise HardmatchError(f"COLMAP SIFT device: expected auto, cpu or cuda, got {device!r}")
    dev = getattr(pycolmap.Device, device)
    extraction = pycolmap.FeatureExtractionOptions()
    if max_image_size is not None:
        extraction.max_image_size = int(max_image_size)
    mapping = pycolmap.IncrementalPipelineOptions()
    mapping.random_seed = int(seed)
    camera_mode = pycolmap.CameraMode.SINGLE if single_camera else pycolmap.CameraMode.AUTO
    stages = {}
    start = time.perf_counter()
    with quiet_colmap(quiet, level=2):  # errors only
        pycolmap.extract_features(database, image_dir, image_names=names, camera_mode=camera_mode,
                                  extraction_options=extraction, device=dev)
        stages["extract"] = time.perf_counter() - start
        pycolmap.match_exhaustive(database, device=dev)
        stages["match"] = time.perf_counter() - start - stages["extract"]
        models = pycolmap.incremental_mapping(database, image_dir, sparse, options=mapping)
    seconds = time.perf_counter() - start
    stages["map"] = seconds - stages["extract"] - stages["match"]
    best = max(models.values(), key=lambda r: r.num_reg_images(), default=None)
    return ColmapSiftResult(best, seconds, stages, workdir)

