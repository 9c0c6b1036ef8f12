"""Stage 4: a COLMAP database (``OUT/database.db``) from features.h5 and matches.h5, through ``pycolmap.Database``.

Written afresh on every run (it is cheap and derived from the two h5 files), to a temporary file
with a unique name (:func:`hardmatch.core.files.temporary_path`, removed with its ``-wal``/``-shm``
on any exit) that is checkpointed out of WAL mode and replaces the old one only when complete. Per image: a camera (one per image for
``--camera-mode per-image``, COLMAP's default, and for the first map of ``auto``; or one ``single``
camera shared by all, see :mod:`hardmatch.scene.camera_mode`), a rig holding that camera, a frame and
the image; keypoints in COLMAP's pixel convention (first pixel's centre at 0.5, i.e. hardmatch's
+ 0.5). Per pair: the tentative matches, and for a pair with an accepted model its verified
matches as a two-view geometry with its configuration (UNCALIBRATED with F, PLANAR_OR_PANORAMIC
with H, CALIBRATED with E; pycolmap 4.2 ignores geometries left UNDEFINED).

Cameras (:mod:`hardmatch.geometry.intrinsics`): ``--intrinsics fx,fy,cx,cy`` (hardmatch's pixel convention,
centres at integers) gives a PINHOLE camera the mapper keeps fixed; otherwise COLMAP's default, a
SIMPLE_RADIAL camera with the EXIF focal length (marked as a prior) or 1.2 x the longest side.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import HardmatchError
from ..core.files import SQLITE_SIDECARS, temporary_path
from . import hloc_files as store

DATABASE = "database.db"
CAMERA_MODES = ("auto", "per-image", "single")

#: Shifts hardmatch pixels (centres at integers) to COLMAP's (centres at +0.5): x_colmap = T x.
_TO_COLMAP = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class CameraChoice:
    """How cameras are made: ``mode`` (auto | per-image | single) and ``intrinsics`` K (3, 3) or None."""

    mode: str = "auto"
    intrinsics: np.ndarray | None = None

    @property
    def fixed(self) -> bool:
        """True when the intrinsics are given: bundle adjustment keeps them."""
        return self.intrinsics is not None


def camera_choice(mode: str, intrinsics: str | None) -> CameraChoice:
    """Parse ``--camera-mode`` and ``--intrinsics`` (one set fx,fy,cx,cy); :class:`HardmatchError` (exit 2)."""
    from ..geometry.intrinsics import parse_intrinsics

    if mode not in CAMERA_MODES:
        raise HardmatchError(f"--camera-mode: expected one of {', '.join(CAMERA_MODES)}, got {mode!r}")
    if intrinsics is None:
        return CameraChoice(mode)
    try:
        matrices = parse_intrinsics(intrinsics)
    except ValueError as exc:
        raise HardmatchError(f"--intrinsics: {exc}") from None
    if len(matrices) != 1:
        raise HardmatchError("--intrinsics: give one set fx,fy,cx,cy for every image of a scene")
    return CameraChoice(mode, matrices[0])


def colmap_camera(choice: CameraChoice, image_path: Path, width: int, height: int):
    """A ``pycolmap.Camera`` for an image of ``width`` x ``height`` pixels (COLMAP's pixel convention)."""
    import pycolmap

    from ..geometry.intrinsics import resolve_camera

    if choice.intrinsics is not None:
        fx, fy, cx, cy = (float(v) for v in (choice.intrinsics[0, 0], choice.intrinsics[1, 1],
                                              choice.intrinsics[0, 2], choice.intrinsics[1, 2]))
        if not (0 <= cx < width and 0 <= cy < height):
            raise HardmatchError(f"--intrinsics: principal point ({cx:g}, {cy:g}) lies outside "
                                 f"{image_path.name} ({width}x{height}); intrinsics of another camera?")
        camera = pycolmap.Camera.create_from_model_name(0, "PINHOLE", fx, width, height)
        camera.params = [fx, fy, cx + 0.5, cy + 0.5]
        camera.has_prior_focal_length = True
        return camera
    found = resolve_camera(None, os.fspath(image_path), (height, width))
    k = found.K
    camera = pycolmap.Camera.create_from_model_name(0, "SIMPLE_RADIAL", float(k[0, 0]), width, height)
    camera.params = [float(k[0, 0]), float(k[0, 2]) + 0.5, float(k[1, 2]) + 0.5, 0.0]
    camera.has_prior_focal_length = found.source.startswith("EXIF")
    return camera


def _two_view_geometry(inliers: np.ndarray, model: np.ndarray, geometry: str):
    import pycolmap

    tvg = pycolmap.TwoViewGeometry()
    config = pycolmap.TwoViewGeometryConfiguration
    t, t_inv = _TO_COLMAP, np.linalg.inv(_TO_COLMAP)
    if geometry == "homography":
        tvg.config = config.PLANAR_OR_PANORAMIC
        tvg.H = t @ model @ t_inv
    elif geometry == "essential":
        tvg.config = config.CALIBRATED
        tvg.E = model
    else:
        tvg.config = config.UNCALIBRATED
        tvg.F = t_inv.T @ model @ t_inv
    tvg.inlier_matches = np.ascontiguousarray(inliers, dtype=np.uint32)
    return tvg


def write_database(out: Path, image_dir: Path, names: list[str], pairs: list[tuple[str, str]],
                   choice: CameraChoice, filename: str = DATABASE) -> dict:
    """Write ``out/filename`` for ``names`` (images with features) and ``pairs`` (matched).

    Cameras: one shared by all for ``choice.mode == "single"``, else one per image.
    Returns ``{"path": ..., "image_ids": {name: id}, "verified_pairs": n}``. Raises
    :class:`HardmatchError` (exit 2) for ``single`` with images of different sizes.
    """
    out = Path(out)
    final = out / filename
    with temporary_path(final) as temp:
        found = _fill_database(temp, out, image_dir, names, pairs, choice)
        _without_journal(temp)
        for suffix in SQLITE_SIDECARS:  # a killed mapper's journal of the old database is not this one's
            Path(str(final) + suffix).unlink(missing_ok=True)
        os.replace(temp, final)
    return {"path": final, **found}


def _without_journal(path: Path) -> None:
    """Checkpoint the SQLite database at ``path`` into its file and leave it in DELETE journal mode,
    so that no ``-wal``/``-shm`` sidecar belongs to it when it is renamed."""
    import sqlite3

    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA journal_mode=DELETE")
    finally:
        connection.close()


def _fill_database(temp: Path, out: Path, image_dir: Path, names: list[str], pairs: list[tuple[str, str]],
                   choice: CameraChoice) -> dict:
    """Write the cameras, images, keypoints and matches into a new database at ``temp`` (closed on
    return); returns ``{"image_ids": {name: id}, "verified_pairs": n}``."""
    import h5py
    import pycolmap

    features_path, matches_path = out / store.FEATURES_H5, out / store.MATCHES_H5
    image_ids: dict[str, int] = {}
    verified = 0
    db = pycolmap.Database.open(temp)
    try:
        shared = None
        for name in names:
            keypoints, (width, height) = store.read_keypoints(features_path, name)
            if choice.mode == "single" and shared is not None:
                if (shared[1], shared[2]) != (width, height):
                    raise HardmatchError(f"--camera-mode single: {name} is {width}x{height} but {shared[3]} is "
                                         f"{shared[1]}x{shared[2]}; use --camera-mode per-image")
                camera_id, sensor, rig_id = shared[0], shared[4], shared[5]
            else:
                camera_id = db.write_camera(colmap_camera(choice, Path(image_dir) / name, width, height))
                rig = pycolmap.Rig()
                sensor = pycolmap.sensor_t(type=pycolmap.SensorType.CAMERA, id=camera_id)
                rig.add_ref_sensor(sensor)
                rig_id = db.write_rig(rig)
                shared = (camera_id, width, height, name, sensor, rig_id)
            image_id = db.write_image(pycolmap.Image(name=name, camera_id=camera_id))
            frame = pycolmap.Frame()
            frame.rig_id = rig_id
            frame.add_data_id(pycolmap.data_t(sensor_id=sensor, id=image_id))
            db.write_frame(frame)
            db.write_keypoints(image_id, (keypoints + 0.5).astype(np.float32))
            image_ids[name] = image_id
        with h5py.File(matches_path, "r") as f:
            for a, b in pairs:
                g = f[store.pair_key(a, b)]
                matches0 = g["matches0"][()]
                index = np.flatnonzero(matches0 >= 0)
                tentative = np.stack([index, matches0[index]], 1).astype(np.uint32)
                db.write_matches(image_ids[a], image_ids[b], tentative)
                if "model" in g and len(g["inliers"]):
                    tvg = _two_view_geometry(g["inliers"][()], g["model"][()], str(g.attrs["geometry"]))
                    db.write_two_view_geometry(image_ids[a], image_ids[b], tvg)
                    verified += 1
    finally:
        db.close()
    return {"image_ids": image_ids, "verified_pairs": verified}
