"""Stage 5: COLMAP's incremental mapper on the database -> ``OUT/sparse/N/`` (COLMAP binary) and ``OUT/points.ply``.

``pycolmap.incremental_mapping`` writes its models to a temporary folder (a unique name,
:func:`hardmatch.core.files.temporary_path`, removed on any exit) that replaces ``OUT/sparse`` only
when the mapper has finished, so a stopped job keeps the previous model. A two-image scene keeps
COLMAP's two-view tracks (all it has), so two overlapping photos give a model: their relative pose
and triangulated inliers.
Model 0 (COLMAP's order) is reported unless another registered more images; its points are
also written as ``OUT/points.ply``. The mapper runs with a fixed random seed.
"""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional

from ..core.errors import NoModelError
from ..core.files import temporary_path

SPARSE = "sparse"
PLY = "points.ply"


def mapper_options(num_images: int, fixed_intrinsics: bool, seed: int = 0):
    """``pycolmap.IncrementalPipelineOptions`` for a scene of ``num_images`` images."""
    import pycolmap

    options = pycolmap.IncrementalPipelineOptions()
    options.random_seed = seed
    # COLMAP keeps a model only with min_model_size images (10): small scenes need a smaller bound
    options.min_model_size = min(options.min_model_size, max(2, num_images // 2))
    if num_images == 2:  # every track of a two-image scene has two views: COLMAP ignores those by default
        options.triangulation.ignore_two_view_tracks = False
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
                progress: Optional[Callable] = None, quiet: bool = True,
                refine_principal_point: bool = False) -> tuple[dict, object]:
    """Map ``database`` into ``out/sparse/N`` (COLMAP binary); returns ``(stats, reconstruction)``.

    ``stats``: :func:`model_stats` of the reported model plus ``model`` (its folder), ``models``
    (how many) and ``principal_point`` (what :func:`~hardmatch.scene.camera_mode.refine_principal_points`
    did, when asked). :class:`NoModelError` when no model was made. The models are written to a
    temporary folder that replaces ``out/sparse`` only when complete. ``progress(n)`` is called once
    for the initial pair (2 images) and once per image registered next.
    """
    import pycolmap

    from .camera_mode import refine_principal_points

    out = Path(out)
    final = out / SPARSE
    with temporary_path(final) as temp:
        temp.mkdir(parents=True)
        with quiet_colmap(quiet):
            models = pycolmap.incremental_mapping(database, image_dir, temp, mapper_options(
                num_images, fixed_intrinsics), **_callbacks(progress))
            best = max(sorted(models), key=lambda i: models[i].num_reg_images()) if models else None
            note = None
            if best is not None and refine_principal_point and not fixed_intrinsics:
                models[best], note = refine_principal_points(models[best])
        if not models:
            raise NoModelError("no model: the mapper found no initial image pair with enough verified matches "
                               "and triangulation angle")
        for index, reconstruction in models.items():  # the mapper writes them already; make sure, in binary
            folder_i = temp / str(index)
            folder_i.mkdir(exist_ok=True)
            reconstruction.write_binary(str(folder_i))
        shutil.rmtree(final, ignore_errors=True)
        temp.rename(final)
    stats = {**model_stats(models[best]), "model": str(final / str(best)), "models": len(models)}
    if note is not None:
        stats["principal_point"] = note
    return stats, models[best]


def _callbacks(progress: Optional[Callable]) -> dict:
    """The mapper's callbacks calling ``progress(2)`` for the initial pair, ``progress(1)`` per next image."""
    if progress is None:
        return {}
    return {"initial_image_pair_callback": lambda: progress(2), "next_image_callback": lambda: progress(1)}


@contextmanager
def quiet_colmap(quiet: bool = True, level: int = 3) -> Iterator[None]:
    """COLMAP's log below ``level`` silenced while inside (``quiet``); the default 3 keeps fatal errors
    only: its INFO log is thousands of lines, and its ERROR line for a failed map ("Failed to create
    any sparse model") would come before hardmatch's own one-line message (2 keeps errors)."""
    import pycolmap

    previous = pycolmap.logging.minloglevel
    if quiet:
        pycolmap.logging.minloglevel = level
    try:
        yield
    finally:
        pycolmap.logging.minloglevel = previous


def replace_model(folder: Path, reconstruction) -> None:
    """Write ``reconstruction`` (COLMAP binary) in place of the model in ``folder``: written beside it
    under a unique temporary name first, so a failed write leaves the old model."""
    folder = Path(folder)
    with temporary_path(folder) as temp:
        temp.mkdir()
        reconstruction.write_binary(str(temp))
        shutil.rmtree(folder, ignore_errors=True)
        temp.rename(folder)


def publish_model(out: Path, stats: dict, reconstruction) -> dict:
    """Make the model in ``out/sparse`` the scene's: its points go to ``out/points.ply``. Returns ``stats``."""
    reconstruction.export_PLY(str(Path(out) / PLY))
    return stats
