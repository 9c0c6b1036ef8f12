"""Which COLMAP cameras a scene gets, decided by the evidence of a first model.

COLMAP's default gives every image its own camera with the principal point fixed at the image
centre, because a principal point estimated from one image is ill-posed. Real principal points sit
some pixels off the centre (Strecha's camera: 15 px and 17 px), and that offset bends every pose
the mapper reports by a fraction of a degree. One camera shared by many images constrains it well.

``--camera-mode auto`` (the default) therefore maps twice when the first model suggests one camera:

1. per-image cameras (COLMAP's default): model A;
2. if A's registered images are all the same size and their focal lengths, refined independently,
   agree within :data:`FOCAL_SPREAD` (:func:`shared_camera_evidence`), the images are mapped again
   with one shared camera whose principal point is refined in a final bundle adjustment
   (:func:`refine_principal_points`; kept only within :data:`MAX_PRINCIPAL_SHIFT` of the centre):
   model B;
3. B replaces A only if it registers as many images and its mean reprojection error is at most
   :data:`REPROJECTION_SLACK` times A's (:func:`prefer_shared`).

Measured on the Strecha dev scenes (one camera; docs/scenes.md): per-image focal lengths, refined
independently, spread 1.0 % (fountain-P11), 0.4 % (Herz-Jesus-P8), 0.8 % and 0.6 % (every third and
every second image), hence the 3 % bound; the prefilter only saves a second map, the reprojection
test is what refuses a wrong merge. The shared camera found the principal point within 4 px of the
truth on the full scenes (within 8 px on the 4-image subsets), at a reprojection error lower than
(full scenes) or equal to (subsets) the per-image model's. With per-image cameras, refining the
principal point on 4 views moved it 235 px off: so it is refined only for a camera shared by at
least :data:`MIN_VIEWS_FOR_PRINCIPAL_POINT` images.
"""

from __future__ import annotations

from typing import Optional

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
    options = pycolmap.BundleAdjustmentOptions()
    options.refine_principal_point = True
    options.print_summary = False
    config = pycolmap.BundleAdjustmentConfig()
    for image_id in refined.reg_image_ids():
        config.add_image(image_id)
    config.fix_gauge(pycolmap.BundleAdjustmentGauge.TWO_CAMS_FROM_WORLD)
    # the adjuster itself, not pycolmap.bundle_adjustment, which logs to stderr whatever the log level
    pycolmap.create_default_bundle_adjuster(options, config, refined).solve()
    refined.update_point_3d_errors()  # the adjuster leaves the points' cached errors as they were
    shift = principal_point_shift(refined)
    if shift > MAX_PRINCIPAL_SHIFT:
        return reconstruction, (f"principal point kept at the centre: refining moved it {100 * shift:.1f} % "
                                f"of the image side (> {100 * MAX_PRINCIPAL_SHIFT:g} %)")
    return refined, f"principal point refined ({100 * shift:.2f} % of the image side from the centre)"


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
