"""Which COLMAP cameras a scene gets, decided by the evidence of a first model.

COLMAP's default gives every image its own camera with the principal point fixed at the image
centre, because a principal point estimated from one image is ill-posed. Real principal points sit
some pixels off the centre (Strecha's camera: 15 px and 17 px), and that offset bends every pose
the mapper reports by a fraction of a degree. One camera shared by many images constrains it well.

``--camera-mode auto`` (the default) therefore maps once, with per-image cameras, and then:

1. if the registered images are all the same size and their focal lengths, refined independently,
   agree within :data:`FOCAL_SPREAD` (:func:`shared_camera_evidence`), the same model is re-expressed
   with one camera shared by all its images (:func:`one_shared_camera`: the cameras' median
   parameters), bundle-adjusted with that camera's focal length and distortion free, then with its
   principal point free too (:func:`refine_principal_points`; kept only within
   :data:`MAX_PRINCIPAL_SHIFT` of the centre): model B (:func:`shared_camera_model`);
2. B replaces the per-image model A only if it registers as many images and its mean reprojection
   error is at most :data:`REPROJECTION_SLACK` times A's (:func:`prefer_shared`).

Re-adjusting A costs one bundle adjustment where a second incremental map cost as much as the first
(fountain-P11, 2 cores: 2.2 s against 15 s) and lands on the same cameras (benchmarks/RESULTS.md,
"Reconstruction").

Measured on the Strecha dev scenes (one camera; docs/scenes.md): per-image focal lengths, refined
independently, spread 1.0 % (fountain-P11), 0.4 % (Herz-Jesus-P8), 0.8 % and 0.6 % (every third and
every second image), hence the 3 % bound; the prefilter only saves the adjustment, the reprojection
test is what refuses a wrong merge. The shared camera found the principal point within 4 px of the
truth on the full scenes (within 8 px on the 4-image subsets), at a reprojection error lower than
(full scenes) or equal to (subsets) the per-image model's. With per-image cameras, refining the
principal point on 4 views moved it 235 px off: so it is refined only for a camera shared by at
least :data:`MIN_VIEWS_FOR_PRINCIPAL_POINT` images.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Optional

import numpy as np

#: Largest relative spread (max / min - 1) of per-image focal lengths still read as one camera.
FOCAL_SPREAD = 0.03
#: A principal point is refined only for a camera seen by at least this many registered images.
MIN_VIEWS_FOR_PRINCIPAL_POINT = 4
#: Largest refined principal-point offset from the image centre, as a share of width / height.
MAX_PRINCIPAL_SHIFT = 0.05
#: The shared-camera model may have at most this times the per-image model's reprojection error.
REPROJECTION_SLACK = 1.05


def registered_cameras(reconstruction) -> dict[int, int]:
    """``{camera_id: number of registered images using it}`` of a ``pycolmap.Reconstruction``."""
    counts: dict[int, int] = {}
    for image in reconstruction.images.values():
        if image.has_pose:
            counts[image.camera_id] = counts.get(image.camera_id, 0) + 1
    return counts


def shared_camera_evidence(reconstruction) -> Optional[str]:
    """None when the registered images look like one camera, else the reason they do not."""
    counts = registered_cameras(reconstruction)
    if sum(counts.values()) < MIN_VIEWS_FOR_PRINCIPAL_POINT:
        return f"{sum(counts.values())} registered images, fewer than {MIN_VIEWS_FOR_PRINCIPAL_POINT}"
    cameras = [reconstruction.cameras[i] for i in counts]
    sizes = {(c.width, c.height) for c in cameras}
    if len(sizes) > 1:
        return f"images of {len(sizes)} sizes"
    focals = [float(c.mean_focal_length()) for c in cameras]
    spread = max(focals) / min(focals) - 1.0
    if spread > FOCAL_SPREAD:
        return f"focal lengths differ by {100 * spread:.1f} % (> {100 * FOCAL_SPREAD:g} %)"
    return None


def principal_point_shift(reconstruction) -> float:
    """Largest principal-point offset from the image centre over the cameras, as a share of the side."""
    shift = 0.0
    for camera in reconstruction.cameras.values():
        dx = abs(camera.principal_point_x - camera.width / 2.0) / camera.width
        dy = abs(camera.principal_point_y - camera.height / 2.0) / camera.height
        shift = max(shift, dx, dy)
    return shift


def bundle_adjust(reconstruction, refine_principal_point: bool) -> None:
    """Bundle-adjust ``reconstruction`` in place: every registered image, the cameras' focal length and
    distortion free (and the principal point with ``refine_principal_point``); the gauge fixed by two
    cameras' poses. The points' cached reprojection errors are brought up to date."""
    import pycolmap

    options = pycolmap.BundleAdjustmentOptions()
    options.refine_principal_point = refine_principal_point
    options.print_summary = False
    config = pycolmap.BundleAdjustmentConfig()
    for image_id in reconstruction.reg_image_ids():
        config.add_image(image_id)
    config.fix_gauge(pycolmap.BundleAdjustmentGauge.TWO_CAMS_FROM_WORLD)
    # the adjuster itself, not pycolmap.bundle_adjustment, which logs to stderr whatever the log level
    pycolmap.create_default_bundle_adjuster(options, config, reconstruction).solve()
    reconstruction.update_point_3d_errors()  # the adjuster leaves the points' cached errors as they were


def refine_principal_points(reconstruction) -> tuple[object, str]:
    """A copy of ``reconstruction`` bundle-adjusted with principal points free, or the original.

    Returns ``(model, note)``: the refined copy when every camera is seen by at least
    :data:`MIN_VIEWS_FOR_PRINCIPAL_POINT` registered images and no principal point moves more than
    :data:`MAX_PRINCIPAL_SHIFT` from the centre; otherwise the input and the reason it was kept.
    """
    import pycolmap

    counts = registered_cameras(reconstruction)
    if not counts or min(counts.values()) < MIN_VIEWS_FOR_PRINCIPAL_POINT:
        return reconstruction, (f"principal point kept at the centre: a camera has fewer than "
                                f"{MIN_VIEWS_FOR_PRINCIPAL_POINT} registered images")
    refined = pycolmap.Reconstruction(reconstruction)
    bundle_adjust(refined, refine_principal_point=True)
    shift = principal_point_shift(refined)
    if shift > MAX_PRINCIPAL_SHIFT:
        return reconstruction, (f"principal point kept at the centre: refining moved it {100 * shift:.1f} % "
                                f"of the image side (> {100 * MAX_PRINCIPAL_SHIFT:g} %)")
    return refined, f"principal point refined ({100 * shift:.2f} % of the image side from the centre)"


def _data_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def one_shared_camera(reconstruction):
    """A copy of ``reconstruction`` whose images all use one camera (id 1, on rig 1): the cameras'
    model and size, with the median of their parameters; poses, points and tracks unchanged.

    The images must share a size (see :func:`shared_camera_evidence`) and sit on one-camera rigs, as
    hardmatch's databases make them; :class:`ValueError` otherwise. Built through COLMAP's text
    format (cameras, rigs, frames and image lines re-pointed to camera 1) in a temporary folder.
    """
    import pycolmap

    cameras = list(reconstruction.cameras.values())
    first = cameras[0]
    if any((c.width, c.height, c.model) != (first.width, first.height, first.model) for c in cameras):
        raise ValueError("the cameras differ in size or model")
    params = np.median(np.array([c.params for c in cameras], dtype=np.float64), axis=0)
    with tempfile.TemporaryDirectory(prefix="hardmatch-camera-") as folder:
        folder = Path(folder)
        reconstruction.write_text(str(folder))
        (folder / "cameras.txt").write_text(f"1 {first.model.name} {first.width} {first.height} "
                                            + " ".join(repr(float(v)) for v in params) + "\n")
        (folder / "rigs.txt").write_text("1 1 CAMERA 1\n")
        frames = []  # FRAME_ID RIG_ID QW QX QY QZ TX TY TZ NUM_DATA_IDS (SENSOR_TYPE SENSOR_ID DATA_ID)...
        for line in _data_lines(folder / "frames.txt"):
            parts = line.split()
            if parts[9] != "1" or parts[10] != "CAMERA":
                raise ValueError("a frame holds more than one camera (a rig)")
            parts[1], parts[11] = "1", "1"
            frames.append(" ".join(parts))
        (folder / "frames.txt").write_text("\n".join(frames) + "\n")
        # IMAGE_ID QW..TZ CAMERA_ID NAME, then its points line (empty for an image without points)
        images = [line for line in (folder / "images.txt").read_text().splitlines() if not line.startswith("#")]
        for i in range(0, len(images), 2):
            parts = images[i].split(" ", 9)
            parts[8] = "1"
            images[i] = " ".join(parts)
        (folder / "images.txt").write_text("\n".join(images) + "\n")
        shared = pycolmap.Reconstruction()
        shared.read_text(str(folder))
    return shared


def shared_camera_model(reconstruction) -> tuple[object, str]:
    """Model B of ``--camera-mode auto``: :func:`one_shared_camera` of the per-image model,
    bundle-adjusted (focal length and distortion free), then :func:`refine_principal_points`.
    Returns ``(model, note on the principal point)``."""
    shared = one_shared_camera(reconstruction)
    bundle_adjust(shared, refine_principal_point=False)
    return refine_principal_points(shared)


def prefer_shared(per_image: dict, shared: dict) -> tuple[bool, str]:
    """Whether the shared-camera model (``shared``) replaces the per-image one; both are
    :func:`hardmatch.scene.mapping.model_stats` dicts. Returns ``(keep_shared, reason)``."""
    if shared["registered"] < per_image["registered"]:
        return False, f"shared camera registered {shared['registered']} images, per-image {per_image['registered']}"
    limit = REPROJECTION_SLACK * per_image["mean_reprojection_error"]
    if shared["mean_reprojection_error"] > limit:
        return False, (f"shared camera's reprojection error {shared['mean_reprojection_error']:.3f} px > "
                       f"{REPROJECTION_SLACK:g} x per-image {per_image['mean_reprojection_error']:.3f} px")
    return True, (f"one shared camera: reprojection error {shared['mean_reprojection_error']:.3f} px "
                  f"(per-image {per_image['mean_reprojection_error']:.3f} px)")
