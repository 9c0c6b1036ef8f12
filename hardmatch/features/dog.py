"""Difference-of-Gaussians keypoints as local affine frames: OpenCV's SIFT detector (numpy images),
or the same detector in plain torch on any device (:func:`hardmatch.features.dog_torch.detect_dog_torch`,
tensor images).

The torch detector agrees with OpenCV's (``tests/test_detect.py``): on real images about 97 % of
its frames have an OpenCV frame within 1.5 px and a factor 1.3 in scale, the rest differ by ties
at the thresholds, the Gaussian kernels' truncation and the orientation histogram (on the patch
here, on the Gaussian level in OpenCV).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from ..core import laf as laflib
from .detections import Detections
from .detector_constants import DEFAULT_MAGNIFICATION

if TYPE_CHECKING:
    import torch


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
        self.contrast_threshold, self.edge_threshold = float(contrast_threshold), float(edge_threshold)
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

    def __call__(self, image: np.ndarray, mask=None, pyramid=None) -> Detections:
        """uint8 (H, W) numpy image -> numpy :class:`Detections` (OpenCV SIFT's DoG); ``pyramid`` unused
        (the same signature as the other detectors). The device path is :meth:`detect_torch`."""
        keypoints = self.detect_keypoints(image, mask)
        return detections_from_keypoints(keypoints, self.magnification, self.upright)


    def detect_torch(self, image: torch.Tensor, mask=None, pyramid=None) -> Detections:
        """Device path: a (H, W) tensor -> tensor :class:`Detections` on its device (:func:`detect_dog_torch`;
        ``mask`` a (H, W) tensor, ``pyramid`` the image's torch pyramid for the orientation patches)."""
        from .dog_torch import detect_dog_torch

        return detect_dog_torch(image, self.nfeatures, self.contrast_threshold, self.edge_threshold,
                                self.magnification, oriented=not self.upright, pyramid=pyramid, mask=mask)

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
