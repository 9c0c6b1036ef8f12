"""Difference-of-Gaussians keypoints from OpenCV's SIFT detector, as local affine frames."""

from __future__ import annotations

import cv2
import numpy as np

from .. import laf as laflib
from .base import Detections

#: Frame radius = MAGNIFICATION * (OpenCV keypoint size / 2) = MAGNIFICATION * sigma: the patch
#: covers +-6 sigma of the blob, the convention of the official HardNet and of kornia (``mr_size``).
DEFAULT_MAGNIFICATION = 6.0


class DoGDetector:
    """OpenCV SIFT's scale-space extrema with its dominant-gradient orientations.

    ``nfeatures`` keeps the strongest responses (0: all). ``upright`` drops orientations (all
    frames point right, duplicates from multiple orientations are merged).
    """


    def __init__(self, nfeatures: int = 8000, contrast_threshold: float = 0.04, edge_threshold: float = 10.0,
                 upright: bool = False, magnification: float = DEFAULT_MAGNIFICATION) -> None:
        self.nfeatures = int(nfeatures)
        self.upright = upright
        self.magnification = float(magnification)
        self._sift = cv2.SIFT_create(nfeatures=self.nfeatures, contrastThreshold=contrast_threshold,
                                     edgeThreshold=edge_threshold)

    def detect_keypoints(self, image: np.ndarray, mask: np.ndarray | None = None) -> list[cv2.KeyPoint]:
        """OpenCV keypoints of a uint8 (H, W) image, strongest first."""
        keypoints = list(self._sift.detect(image, mask))
        if self.upright:
            keypoints = _unique_locations(keypoints)
        keypoints.sort(key=lambda kp: -kp.response)
        if self.nfeatures > 0:
            keypoints = keypoints[: self.nfeatures]
        return keypoints

    def __call__(self, image: np.ndarray, mask: np.ndarray | None = None) -> Detections:
        keypoints = self.detect_keypoints(image, mask)
        return detections_from_keypoints(keypoints, self.magnification, self.upright)


def detections_from_keypoints(keypoints: list[cv2.KeyPoint], magnification: float, upright: bool = False) -> Detections:
    """Wrap OpenCV keypoints (from any detector) as :class:`Detections`."""
    lafs = laflib.from_keypoints(keypoints, magnification, upright=upright)
    responses = np.array([kp.response for kp in keypoints], dtype=np.float32)
    octaves = np.array([kp.octave for kp in keypoints], dtype=np.int64)
    return Detections(lafs, responses, octaves)


def _unique_locations(keypoints: list[cv2.KeyPoint]) -> list[cv2.KeyPoint]:
    """Keep the strongest keypoint per (x, y, size): SIFT repeats a location once per orientation."""
    best: dict[tuple, cv2.KeyPoint] = {}
    for kp in keypoints:
        key = (round(kp.pt[0], 2), round(kp.pt[1], 2), round(kp.size, 2))
        if key not in best or kp.response > best[key].response:
            best[key] = kp
    return list(best.values())
