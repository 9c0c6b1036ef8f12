"""Stage 5: COLMAP's incremental mapper on the database -> ``OUT/sparse/N/`` (COLMAP binary) and ``OUT/points.ply``.

``pycolmap.incremental_mapping`` writes its models to a temporary folder that replaces
``OUT/sparse`` only when the mapper has finished, so a stopped job keeps the previous model.
Model 0 (COLMAP's order) is reported unless another registered more images; its points are
also written as ``OUT/points.ply``. The mapper runs with a fixed random seed.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable, Optional

from ..errors import NoModelError

SPARSE = "sparse"
PLY = "points.ply"


def mapper_options(num_images: int, fixed_intrinsics: bool, seed: int = 0):
    """``pycolmap.IncrementalPipelineOptions`` for a scene of ``num_images`` images."""
    import pycolmap

    options = pycolmap.IncrementalPipelineOptions()
    options.random_seed = seed
    # COLMAP keeps a model only with min_model_size images (10): small scenes need a smaller bound
    options.min_model_size = min(options.min_model_size, max(2, num_images // 2))
    if fixed_intrinsics:
        options.ba_refine_focal_length = False
        options.ba_refine_principal_point = False
        options.ba_refine_extra_params = False
    return options


def model_stats(reconstruction) -> dict:
    """Registered images, 3D points, mean track length, mean reprojection error (px) of a model."""
    return {
        "registered": int(reconstruction.num_reg_images()),
        "points3D": int(reconstruction.num_points3D()),
        "mean_track_length": round(float(reconstruction.compute_mean_track_length()), 3),
        "mean_reprojection_error": round(float(reconstruction.compute_mean_reprojection_error()), 4),
        "registered_images": sorted(image.name for image in reconstruction.images.values() if image.has_pose),
    }


def run_mapping(out: Path, image_dir: Path, database: Path, num_images: int, fixed_intrinsics: bool,
                progress: Optional[Callable] = None, quiet: bool = True) -> dict:
    """Map, write the models and the PLY; returns :func:`model_stats` of the reported model plus
    ``model`` (its folder) and ``models`` (how many). :class:`NoModelError` when none was made.

    ``progress(n)`` is called once for the initial pair (2 images) and once per image registered next.
    """
    import pycolmap

    out = Path(out)
    temp, final = out / (SPARSE + ".tmp"), out / SPARSE
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir(parents=True)
    options = mapper_options(num_images, fixed_intrinsics)
    callbacks = {}
    if progress is not None:
        callbacks = {"initial_image_pair_callback": lambda: progress(2), "next_image_callback": lambda: progress(1)}
    level = pycolmap.logging.minloglevel
    if quiet:
        pycolmap.logging.minloglevel = 2  # errors only: the mapper's INFO log is thousands of lines
    try:
        models = pycolmap.incremental_mapping(database, image_dir, temp, options, **callbacks)
    finally:
        pycolmap.logging.minloglevel = level
    if not models:
        shutil.rmtree(temp, ignore_errors=True)
        raise NoModelError("no model: the mapper found no initial image pair with enough verified matches "
                           "and triangulation angle")
    for index, reconstruction in models.items():  # the mapper writes them already; make sure, in binary
        folder = temp / str(index)
        folder.mkdir(exist_ok=True)
        reconstruction.write_binary(str(folder))
    best = max(sorted(models), key=lambda i: models[i].num_reg_images())
    shutil.rmtree(final, ignore_errors=True)
    temp.rename(final)
    models[best].export_PLY(str(out / PLY))
    return {**model_stats(models[best]), "model": str(final / str(best)), "models": len(models)}
