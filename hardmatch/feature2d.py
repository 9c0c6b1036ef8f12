"""OpenCV Feature2D-style API: swap ``cv2.SIFT_create()`` for ``hardmatch.HardNet_create()``.

``detect``, ``compute`` and ``detectAndCompute(image, mask)`` take what OpenCV's take (uint8
grayscale or BGR images, optional uint8 mask) and return a list of ``cv2.KeyPoint`` and an
``np.float32`` (N, 128) array (unit-norm HardNet descriptors) that ``cv2.BFMatcher(cv2.NORM_L2)``
and ``cv2.FlannBasedMatcher`` accept. ``compute`` describes keypoints from any OpenCV detector
(their ``size`` and ``angle`` define the patch). ``detectAndComputeFrames`` also returns the
local affine frames (N, 2, 3), which keypoints cannot carry.
"""

from __future__ import annotations

import cv2
import numpy as np

from . import laf as laflib
from .config import PipelineConfig
from .detect.dog import detections_from_keypoints
from .io import load_gray
from .pipeline import Pipeline


class HardNetFeature2D:
    """Any hardmatch detector (DoG by default) + HardNet descriptor with OpenCV's Feature2D interface."""

    def __init__(self, config: PipelineConfig | str = "default", **options) -> None:
        self._pipeline = Pipeline(config, **options)

    @property
    def config(self) -> PipelineConfig:
        return self._pipeline.config

    def getDefaultName(self) -> str:  # noqa: N802 (OpenCV naming)
        return "Feature2D.HardNet"

    def descriptorSize(self) -> int:  # noqa: N802
        return 128

    def descriptorType(self) -> int:  # noqa: N802
        return cv2.CV_32F

    def defaultNorm(self) -> int:  # noqa: N802
        return cv2.NORM_L2

    def detect(self, image, mask=None) -> list[cv2.KeyPoint]:
        gray = load_gray(image)
        sift = self._pipeline.frames.keypoint_detector
        if sift is not None:
            return sift.detect_keypoints(gray, _mask(mask, gray))
        detections = self._pipeline.frames(gray, _mask(mask, gray))
        return laflib.to_keypoints(detections.lafs, self.config.magnification, detections.responses, detections.octaves)

    def compute(self, image, keypoints) -> tuple[list[cv2.KeyPoint], np.ndarray]:
        gray = load_gray(image)
        keypoints = list(keypoints)
        c = self.config
        detections = detections_from_keypoints(keypoints, c.magnification, upright=c.orientation == "upright")
        features = self._pipeline.describe_frames(gray, detections)
        return keypoints, features.descriptors_numpy

    def detectAndCompute(self, image, mask=None, descriptors=None, useProvidedKeypoints=False):  # noqa: N802
        """(keypoints list, descriptors (N, 128) float32). ``descriptors`` is ignored (OpenCV's out-arg)."""
        keypoints, descriptors, _ = self.detectAndComputeFrames(image, mask)
        return keypoints, descriptors

    def detectAndComputeFrames(self, image, mask=None):  # noqa: N802
        """(keypoints, descriptors (N, 128) float32, frames (N, 2, 3) float32).

        The keypoints carry centre, scale and orientation; the frames also carry the affine shape."""
        gray = load_gray(image)
        c = self.config
        sift = self._pipeline.frames.keypoint_detector
        if sift is not None:  # keep OpenCV's own keypoints (octave codes, responses) untouched
            keypoints = sift.detect_keypoints(gray, _mask(mask, gray))
            detections = detections_from_keypoints(keypoints, c.magnification)
            features = self._pipeline.describe_frames(gray, detections)
            return keypoints, features.descriptors_numpy, features.lafs
        features = self._pipeline.extract(gray, _mask(mask, gray))
        keypoints = laflib.to_keypoints(features.lafs, c.magnification, features.responses)
        return keypoints, features.descriptors_numpy, features.lafs


def _mask(mask, gray: np.ndarray):
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.shape[:2] != gray.shape:
        raise ValueError(f"mask shape {mask.shape[:2]} differs from image shape {gray.shape}")
    return (mask.reshape(gray.shape) > 0).astype(np.uint8) * 255


def HardNet_create(nfeatures: int = 8000, **options) -> HardNetFeature2D:  # noqa: N802 (mirrors cv2.SIFT_create)
    """Like ``cv2.SIFT_create(nfeatures=...)``; other options as in :class:`~hardmatch.config.PipelineConfig`."""
    return HardNetFeature2D("default", nfeatures=nfeatures, **options)
