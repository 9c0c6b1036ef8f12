"""Checks of calibrated ground truth read by the dataset readers: intrinsics and rotations.

Both raise :class:`~hardmatch.core.errors.DatasetError` with a one-line message that starts with
``where`` (a file path, ``path:line``), and return the checked value as float64.
"""

from __future__ import annotations

import numpy as np

from ..core.errors import DatasetError

#: Largest deviation from orthonormality (max abs entry of R R^T - I) accepted for a rotation;
#: ground-truth files give 6 significant digits or so.
ROTATION_TOLERANCE = 1e-3


def check_intrinsics(K, where: str) -> np.ndarray:
    """``K`` as float64 (3, 3) when it is a camera matrix ``[fx s cx; 0 fy cy; 0 0 1]`` with fx, fy > 0."""
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3) or not np.all(np.isfinite(K)):
        raise DatasetError(f"{where}: intrinsics must be a finite 3x3 matrix")
    if K[0, 0] <= 0 or K[1, 1] <= 0 or np.any(K[[1, 2, 2], [0, 0, 1]] != 0) or K[2, 2] != 1:
        raise DatasetError(f"{where}: intrinsics are not a camera matrix [fx s cx; 0 fy cy; 0 0 1] with fx, fy > 0")
    return K


def check_rotation(R, where: str) -> np.ndarray:
    """The nearest exact rotation to ``R`` (float64 (3, 3)) when ``R`` is a rotation within
    :data:`ROTATION_TOLERANCE` (orthonormal, determinant +1)."""
    R = np.asarray(R, dtype=np.float64)
    if R.shape != (3, 3) or not np.all(np.isfinite(R)):
        raise DatasetError(f"{where}: rotation must be a finite 3x3 matrix")
    if np.max(np.abs(R @ R.T - np.eye(3))) > ROTATION_TOLERANCE or np.linalg.det(R) < 0:
        raise DatasetError(f"{where}: R is not a rotation matrix (orthonormal with determinant +1)")
    U, _, Vt = np.linalg.svd(R)
    return U @ Vt


def axis_angle_deg(R) -> float:
    """Angle in degrees (0..180) between the optical axes (camera +z) of two cameras whose
    relative rotation (camera 1 -> camera 2 coordinates) is the (3, 3) ``R``: ``arccos(R[2, 2])``."""
    return float(np.degrees(np.arccos(np.clip(np.asarray(R, dtype=np.float64)[2, 2], -1.0, 1.0))))
