"""How close a reconstruction is to ground-truth cameras (a Strecha scene's ``cameras/``).

A structure-from-motion model is defined up to a similarity (scale, rotation, translation), so its
camera centres are first aligned to the ground-truth centres by the least-squares similarity of
Umeyama (1991), :func:`umeyama`. Reported, over the ground-truth views:

- registered share: views whose image the model registered (matched by image file name);
- rotation error per registered view: the angle between the aligned model rotation and the true
  one; position error: distance of the aligned centre from the true centre (ground-truth units,
  metres for Strecha); their median and max;
- pair mAA@10: for ALL pairs of views, the relative pose taken from the model (no alignment needed)
  against the true one (:func:`hardmatch.geometry.pose_metrics.pose_error_deg`); a pair with a view the
  model did not register counts as a failure.

Convention: a pose ``(R, t)`` is world-to-camera, ``x_cam = R @ X + t`` (COLMAP's ``cam_from_world``,
:class:`~hardmatch.datasets.strecha.CalibratedView`).
"""

from __future__ import annotations

from itertools import combinations
from typing import Optional, Sequence

import numpy as np

from ..datasets.strecha import CalibratedView, relative_pose
from ..geometry.pose_metrics import pose_error_deg, pose_maa, relative_pose_between, rotation_error_deg

#: Centres this close to a line (second singular value / first) leave the rotation about it undetermined.
_COLLINEAR = 1e-6


def umeyama(src: np.ndarray, dst: np.ndarray, with_scale: bool = True) -> tuple:
    """Least-squares similarity taking points ``src`` onto ``dst``: ``dst ~ s * R @ src + t``.

    Args:
        src, dst: float (N, D) corresponding points, N >= D (3 for 3-D points, not all on a line).
        with_scale: estimate ``s`` (else ``s = 1``, a rigid motion).

    Returns:
        ``(s, R, t)``: float scale, (D, D) rotation (det +1), (D,) translation.

    Raises:
        ValueError: shapes differ, too few points, or the points are degenerate (coincident or
            on a line), which leaves the similarity undetermined.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.ndim != 2 or src.shape != dst.shape:
        raise ValueError(f"umeyama: expected two (N, D) arrays of one shape, got {src.shape} and {dst.shape}")
    n, d = src.shape
    if n < d:
        raise ValueError(f"umeyama: {n} points cannot fix a similarity in {d}-D (need {d})")
    mu_src, mu_dst = src.mean(0), dst.mean(0)
    a, b = src - mu_src, dst - mu_dst
    var_src = float((a ** 2).sum() / n)
    cov = b.T @ a / n  # (D, D): sum of dst_i src_i^T
    u, sv, vt = np.linalg.svd(cov)
    if var_src <= 0 or sv[0] <= 0 or (d > 1 and sv[d - 2] <= _COLLINEAR * sv[0]):
        raise ValueError("umeyama: points are coincident or on a line; the similarity is undetermined")
    sign = np.ones(d)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # best orthogonal map is a reflection: flip the weakest axis
        sign[-1] = -1.0
    R = u @ np.diag(sign) @ vt
    s = float((sv * sign).sum() / var_src) if with_scale else 1.0
    t = mu_dst - s * R @ mu_src
    return s, R, t


def model_poses(reconstruction) -> dict:
    """``{image name: (R (3, 3), t (3,))}`` world-to-camera poses of the registered images of a
    ``pycolmap.Reconstruction``."""
    poses = {}
    for image in reconstruction.images.values():
        if not image.has_pose:
            continue
        pose = image.cam_from_world()
        poses[image.name] = (np.asarray(pose.rotation.matrix(), np.float64),
                             np.asarray(pose.translation, np.float64).reshape(3))
    return poses


def reconstruction_accuracy(poses: Optional[dict], views: Sequence[CalibratedView], max_threshold_deg: int = 10
                            ) -> dict:
    """Accuracy of model ``poses`` (:func:`model_poses`; None: no model) against ground-truth ``views``.

    Returns a dict: ``views``, ``registered`` (count), ``registered_share``, ``aligned`` (bool),
    ``scale`` (model-to-ground-truth), ``rotation_median_deg``, ``rotation_max_deg``,
    ``position_median``, ``position_max`` (ground-truth units; None without an alignment, which
    needs 3 registered views not on a line), ``pair_maa`` (mAA@``max_threshold_deg`` over all
    pairs), ``pairs``, ``pair_rotation_median_deg`` (median relative-rotation error over the pairs
    of registered views: needs no alignment, which with few views near a line leaves the rotation
    about that line loosely fixed), and ``per_view`` ``{name: {"rotation_deg", "position"}}``.
    """
    poses = poses or {}
    found = [v for v in views if v.image.name in poses]
    result = {"views": len(views), "registered": len(found),
              "registered_share": len(found) / len(views) if views else 0.0, "aligned": False, "scale": None,
              "rotation_median_deg": None, "rotation_max_deg": None, "position_median": None,
              "position_max": None, "per_view": {}}
    result.update(_aligned_errors(poses, found))
    errors, rotations = [], []
    for a, b in combinations(views, 2):
        if a.image.name in poses and b.image.name in poses:
            R_est, t_est = relative_pose_between(*poses[a.image.name], *poses[b.image.name])
            R_true, t_true = relative_pose(a, b)
            errors.append(pose_error_deg(R_est, t_est, R_true, t_true))
            rotations.append(rotation_error_deg(R_est, R_true))
        else:
            errors.append(float("inf"))
    result["pairs"] = len(errors)
    result["pair_maa"] = pose_maa(errors, max_threshold_deg) if errors else 0.0
    result["pair_rotation_median_deg"] = float(np.median(rotations)) if rotations else None
    return result


def _aligned_errors(poses: dict, found: Sequence[CalibratedView]) -> dict:
    """Umeyama-align the model centres of ``found`` to theirs; per-view rotation/position errors."""
    if len(found) < 3:
        return {}
    model_centres = np.array([-poses[v.image.name][0].T @ poses[v.image.name][1] for v in found])
    true_centres = np.array([v.center for v in found])
    try:
        s, R_align, t_align = umeyama(model_centres, true_centres)
    except ValueError:
        return {}
    per_view = {}
    for view, centre in zip(found, model_centres):
        R_model = poses[view.image.name][0]
        # X_model = R_align^T (X_gt - t_align) / s, so the camera rotation in ground-truth axes is R_model R_align^T
        rotation = rotation_error_deg(R_model @ R_align.T, view.R)
        position = float(np.linalg.norm(s * R_align @ centre + t_align - view.center))
        per_view[view.name] = {"rotation_deg": rotation, "position": position}
    rotations = np.array([e["rotation_deg"] for e in per_view.values()])
    positions = np.array([e["position"] for e in per_view.values()])
    return {"aligned": True, "scale": s, "rotation_median_deg": float(np.median(rotations)),
            "rotation_max_deg": float(rotations.max()), "position_median": float(np.median(positions)),
            "position_max": float(positions.max()), "per_view": per_view}
