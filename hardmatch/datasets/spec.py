"""Records shared by the two-view dataset readers: :class:`PairSpec` (one pair with its ground
truth) and :class:`Layout` (one on-disk layout in the registry, :mod:`hardmatch.datasets.registry`).

Conventions: point arrays are float64 of shape (N, 4) with columns ``x1, y1, x2, y2`` (pixels,
image 1 then image 2); homographies are float64 (3, 3) and map image 1 to image 2; image sizes
are ``(width, height)``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np

PathLike = Union[str, os.PathLike]

#: The models a pair can be judged with (:func:`hardmatch.datasets.scoring.judge`).
GEOMETRIES = ("homography", "fundamental")

#: Calibrated ground truth of a pair: name -> shape. All four are given together or none.
CALIBRATION_SHAPES = (("K1", (3, 3)), ("K2", (3, 3)), ("R", (3, 3)), ("t", (3,)))


@dataclass
class PairSpec:
    """One image pair of a two-view dataset with its ground truth.

    Attributes:
        name: identifier of the pair, unique within the dataset (e.g. ``"Boston"``, ``"graf/1-3"``).
        image1: path of the first image.
        image2: path of the second image.
        geometry: ``"homography"`` or ``"fundamental"``: the model the pair is judged with.
        H: float64 (3, 3) ground-truth homography mapping image 1 to image 2, or None.
        points: float64 (N, 4) ground-truth correspondences ``x1, y1, x2, y2``, or None.
        negative: the images do not match (a ``none`` line of a pairs file); any model is wrong.
        K1, K2: float64 (3, 3) intrinsics of camera 1 / camera 2 in pixels of ``image1`` /
            ``image2`` as stored on disk, or None (uncalibrated layouts).
        R: float64 (3, 3) rotation and ``t`` float64 (3,) translation of the relative pose
            taking camera-1 coordinates to camera-2 coordinates, ``X2 = R @ X1 + t``; or None.
            ``K1``, ``K2``, ``R`` and ``t`` are given together or not at all
            (:attr:`calibrated`); a bad shape or a non-finite value raises ValueError.
    """

    name: str
    image1: Path
    image2: Path
    geometry: str
    H: Optional[np.ndarray] = None
    points: Optional[np.ndarray] = None
    negative: bool = False
    K1: Optional[np.ndarray] = None
    K2: Optional[np.ndarray] = None
    R: Optional[np.ndarray] = None
    t: Optional[np.ndarray] = None

    def __post_init__(self) -> None:
        given = [name for name, _ in CALIBRATION_SHAPES if getattr(self, name) is not None]
        if not given:
            return
        if len(given) != len(CALIBRATION_SHAPES):
            missing = [name for name, _ in CALIBRATION_SHAPES if name not in given]
            raise ValueError(
                f"pair {self.name}: calibrated ground truth needs K1, K2, R and t; missing {', '.join(missing)}"
            )
        for name, shape in CALIBRATION_SHAPES:
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.shape != shape:
                raise ValueError(f"pair {self.name}: {name} must have shape {shape}, got {value.shape}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"pair {self.name}: {name} contains NaN or infinite values")
            setattr(self, name, value)

    @property
    def calibrated(self) -> bool:
        """Whether the pair carries calibrated ground truth (``K1``, ``K2``, ``R``, ``t``)."""
        return self.R is not None


@dataclass(frozen=True)
class Layout:
    """One dataset layout of the registry.

    Attributes:
        name: the ``--format`` name (``"cmp"``, ``"oxford"``, ...).
        read: ``read(root, geometry) -> list[PairSpec]``; ``geometry`` is None or a forced
            geometry (for layouts with a fixed :attr:`geometry` the registry has already checked
            that it agrees, and readers may ignore it). Raises DatasetError on a broken layout.
        detect: ``detect(root) -> bool``, whether ``root`` itself is in this layout (cheap: file
            names only).
        detect_nested: ``detect_nested(root) -> bool``, whether ``root`` is a folder of datasets
            in this layout; tried only when no layout's :attr:`detect` holds. None: no such form.
        geometry: the geometry of every pair of the layout, or None when the reader decides
            (and accepts a forced one).
        hint: the file names that give the layout away, for the "cannot detect" message ("" none).
        takes_file: the dataset is a file, not a folder.
        lists_paths: the dataset file lists image paths; its reader takes ``allow_outside_root``
            (paths that leave the file's folder are refused unless it is true).
    """

    name: str
    read: Callable[[Path, Optional[str]], list]
    detect: Callable[[Path], bool]
    detect_nested: Optional[Callable[[Path], bool]] = None
    geometry: Optional[str] = None
    hint: str = ""
    takes_file: bool = False
    lists_paths: bool = False
