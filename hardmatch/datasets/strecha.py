"""Strecha multi-view scenes: calibrated views (``images/`` + ``cameras/``) and their relative poses.

Layout of a scene folder (Strecha et al., "On Benchmarking Camera Calibration and Multi-View
Stereo for High Resolution Imagery", CVPR 2008, as redistributed by openMVG)::

    images/NAME.jpg            the photos (``images/K.txt`` and other non-camera files are ignored)
    cameras/NAME.jpg.camera    one text file per photo: 9 lines of numbers
                               K (3 rows), radial distortion (3 numbers, must be 0),
                               R camera-to-world (3 rows), camera centre C (3 numbers),
                               image width and height

A world point X is seen by the camera as ``x_cam = R^T (X - C)``. :class:`CalibratedView`
stores the world-to-camera form ``x_cam = R_wc X + t_wc`` (``R_wc = R^T``, ``t_wc = -R^T C``).

Every camera file defines one view; its image is ``images/`` + the camera file name without
``.camera``. Camera coordinates follow OpenCV: x right, y down, z along the optical axis.

As a two-view dataset (``--format strecha``, :data:`LAYOUT`): every pair of views ``a < b``
(by name) whose optical axes differ by at most ``max_axis_angle_deg`` (default
:data:`MAX_AXIS_ANGLE_DEG`) is a fundamental pair named ``NAMEA-NAMEB`` with calibrated ground
truth (``K1 = a.K``, ``K2 = b.K``, ``R, t = relative_pose(a, b)``). A folder of scene folders
is read too, its pairs named ``SCENE/NAMEA-NAMEB`` (pairs never cross scenes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple, Union

import numpy as np

from ..core.errors import DatasetError
from ..geometry.pose_metrics import relative_pose_between
from .calibration_checks import axis_angle_deg, check_intrinsics, check_rotation
from .files import subdirs
from .spec import Layout, PairSpec

PathLike = Union[str, os.PathLike]

_CAMERA_SUFFIX = ".camera"

#: Default largest angle (degrees) between the optical axes of a pair listed from a scene.
MAX_AXIS_ANGLE_DEG = 60.0


@dataclass
class CalibratedView:
    """One photo with its ground-truth camera.

    Attributes:
        name: identifier of the view, the image file name without extension (e.g. ``"0000"``).
        image: path of the image.
        K: float64 (3, 3) intrinsics (pixels).
        R: float64 (3, 3) world-to-camera rotation (the file's rotation made exactly orthonormal).
        t: float64 (3,) world-to-camera translation: ``x_cam = R @ X + t``.
        size: ``(width, height)`` of the image in pixels, from the camera file.
    """

    name: str
    image: Path
    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    size: Tuple[int, int]

    @property
    def center(self) -> np.ndarray:
        """float64 (3,) camera centre in world coordinates, ``-R^T t``."""
        return -self.R.T @ self.t

    @property
    def axis(self) -> np.ndarray:
        """float64 (3,) unit optical axis (camera +z) in world coordinates, ``R^T [0, 0, 1]``."""
        return self.R[2] / np.linalg.norm(self.R[2])


def read_strecha_views(scene_dir: PathLike) -> List[CalibratedView]:
    """Read the calibrated views of a Strecha scene folder, sorted by name.

    Args:
        scene_dir: folder holding ``images/`` and ``cameras/``.

    Returns:
        one :class:`CalibratedView` per ``cameras/*.camera`` file (at least two).

    Raises:
        DatasetError: the folder, ``images/`` or ``cameras/`` is missing, a camera file is
            malformed (wrong count of numbers, non-finite values, singular K, R not a rotation,
            non-zero distortion, non-positive size), its image is missing, or fewer than two
            views are found.
    """
    root = Path(scene_dir)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such scene folder (expected images/ and cameras/)")
    images, cameras = root / "images", root / "cameras"
    for folder in (images, cameras):
        if not folder.is_dir():
            raise DatasetError(f"{root}: not a Strecha scene, no {folder.name}/ folder")
    camera_files = sorted(p for p in cameras.iterdir() if p.name.endswith(_CAMERA_SUFFIX) and p.is_file())
    views = []
    for path in camera_files:
        image = images / path.name[: -len(_CAMERA_SUFFIX)]
        if not image.is_file():
            raise DatasetError(f"{path}: no image {image.name} in {images}")
        views.append(_read_camera(path, image))
    if len(views) < 2:
        raise DatasetError(f"{cameras}: found {len(views)} *.camera files, need at least two views")
    views.sort(key=lambda view: view.name)
    names = [view.name for view in views]
    if len(set(names)) != len(names):
        raise DatasetError(f"{cameras}: two images share a name without extension")
    return views


def _read_camera(path: Path, image: Path) -> CalibratedView:
    """Parse one Strecha ``.camera`` file (see the module docstring) into a view."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read camera file ({exc})") from None
    try:
        values = np.array([float(v) for v in text.split()], dtype=np.float64)
    except ValueError:
        raise DatasetError(f"{path}: not a Strecha camera file (non-numeric value)") from None
    if values.size != 26:
        raise DatasetError(
            f"{path}: expected 26 numbers (K 9, distortion 3, R 9, C 3, width height), got {values.size}"
        )
    if not np.all(np.isfinite(values)):
        raise DatasetError(f"{path}: camera contains NaN or infinite values")
    K, distortion = values[0:9].reshape(3, 3), values[9:12]
    R_cw, C = values[12:21].reshape(3, 3), values[21:24]
    width, height = values[24], values[25]
    if np.any(distortion != 0):
        raise DatasetError(f"{path}: non-zero lens distortion {distortion.tolist()} is not supported")
    K = check_intrinsics(K, str(path))
    R = check_rotation(R_cw, str(path)).T.copy()
    if width <= 0 or height <= 0 or width != int(width) or height != int(height):
        raise DatasetError(f"{path}: image size must be two positive integers, got {width:g} {height:g}")
    return CalibratedView(
        name=image.stem, image=image, K=K, R=R, t=-R @ C, size=(int(width), int(height))
    )


def relative_pose(a: CalibratedView, b: CalibratedView) -> Tuple[np.ndarray, np.ndarray]:
    """Relative pose taking camera-``a`` coordinates to camera-``b`` coordinates.

    Returns:
        ``(R_ab, t_ab)``: float64 (3, 3) rotation and (3,) translation with
        ``x_b = R_ab @ x_a + t_ab`` (``t_ab`` in the world's units, not normalised).
    """
    return relative_pose_between(a.R, a.t, b.R, b.t)


def optical_axis_angle_deg(a: CalibratedView, b: CalibratedView) -> float:
    """Angle in degrees (0..180) between the optical axes of two views."""
    return axis_angle_deg(relative_pose(a, b)[0])


def read_strecha_pairs(
    root: Path, geometry: Optional[str] = None, max_axis_angle_deg: float = MAX_AXIS_ANGLE_DEG,
    min_axis_angle_deg: float = 0.0,
) -> list:
    """The calibrated pairs of a Strecha scene folder, or of a folder of scene folders.

    Args:
        root: a scene folder (``images/`` + ``cameras/``) or a folder of such folders.
        geometry: ignored (the pairs are fundamental; the registry refuses another override).
        max_axis_angle_deg: pairs whose optical axes differ by more are left out (0..180).
        min_axis_angle_deg: pairs whose optical axes differ by less are left out (the extreme
            non-planar pairs of issue 18: 60..100).

    Returns:
        ``list[PairSpec]`` sorted by name; raises DatasetError when no pair is left.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such scene folder (expected images/ and cameras/, or scene folders)")
    if not 0 <= min_axis_angle_deg <= max_axis_angle_deg <= 180:
        raise DatasetError(f"axis angles must satisfy 0 <= min <= max <= 180 degrees, got min "
                           f"{min_axis_angle_deg:g} and max {max_axis_angle_deg:g}")
    scenes = [root] if is_strecha(root) else [d for d in subdirs(root) if is_strecha(d)]
    if not scenes:
        raise DatasetError(f"{root}: not a Strecha scene (no images/ and cameras/) nor a folder of scenes")
    specs = []
    for scene in scenes:
        prefix = "" if scene == root else f"{scene.name}/"
        views = read_strecha_views(scene)
        for i, a in enumerate(views):
            for b in views[i + 1:]:
                R, t = relative_pose(a, b)
                if min_axis_angle_deg <= axis_angle_deg(R) <= max_axis_angle_deg:
                    specs.append(PairSpec(
                        f"{prefix}{a.name}-{b.name}", a.image, b.image, "fundamental", K1=a.K, K2=b.K, R=R, t=t
                    ))
    if not specs:
        raise DatasetError(f"{root}: no pair of views with optical axes {min_axis_angle_deg:g} to "
                           f"{max_axis_angle_deg:g} degrees apart")
    specs.sort(key=lambda spec: spec.name)
    return specs


def is_strecha(root: Path) -> bool:
    """Whether ``root`` holds ``images/`` and ``cameras/`` folders."""
    return (root / "images").is_dir() and (root / "cameras").is_dir()


def is_strecha_collection(root: Path) -> bool:
    """Whether a folder below ``root`` is a Strecha scene."""
    return any(is_strecha(d) for d in subdirs(root))


LAYOUT = Layout(
    "strecha", read_strecha_pairs, is_strecha, is_strecha_collection, geometry="fundamental"
)
