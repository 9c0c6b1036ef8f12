"""OpenCV Feature2D-style API: swap ``cv2.SIFT_create()`` for ``hardmatch.HardNet_create()``.

``detect``, ``compute`` and ``detectAndCompute(image, mask)`` take what OpenCV's take (uint8
grayscale or BGR images, optional uint8 mask) and return a list of ``cv2.KeyPoint`` and an
``np.float32`` (N, 128) array (unit-norm HardNet descriptors) that ``cv2.BFMatcher(cv2.NORM_L2)``
and ``cv2.FlannBasedMatcher`` accept. ``compute`` describes keypoints from any OpenCV detector
(their ``size`` and ``angle`` define the patch). ``detectAndComputeFrames`` also returns the
local affine frames (N, 2, 3), which keypoints cannot carry.

Images larger than ``max_side`` are measured at working resolution; keypoints and frames in and
out are always in the pixels of the image as given.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..core import laf as laflib
from ..core.io import WorkingImage
from ..features.dog import detections_from_keypoints
from .config import PipelineConfig
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
        work = self._pipeline.load(image)
        sift = self._pipeline.frames.keypoint_detector
        if sift is not None:
            return _keypoints_in_original(sift.detect_keypoints(work.gray, work.mask(_mask(mask, work))), work)
        detections = self._pipeline.frames(work.gray, work.mask(_mask(mask, work)))
        lafs = laflib.transform(detections.lafs, work.to_original) if not work.is_original else detections.lafs
        return laflib.to_keypoints(lafs, self.config.magnification, detections.responses, detections.octaves)

    def compute(self, image, keypoints) -> tuple[list[cv2.KeyPoint], np.ndarray]:
        work = self._pipeline.load(image)
        keypoints = list(keypoints)
        c = self.config
        detections = detections_from_keypoints(keypoints, c.magnification, upright=c.orientation == "upright")
        if not work.is_original and len(detections):
            detections = detections.with_lafs(laflib.transform(detections.lafs, work.from_original))
        features = self._pipeline.describe_frames(work.gray, detections)
        return keypoints, features.descriptors_numpy

    def detectAndCompute(self, image, mask=None, descriptors=None, useProvidedKeypoints=False):  # noqa: N802
        """(keypoints list, descriptors (N, 128) float32). ``descriptors`` is ignored (OpenCV's out-arg)."""
        keypoints, descriptors, _ = self.detectAndComputeFrames(image, mask)
        return keypoints, descriptors

    def detectAndComputeFrames(self, image, mask=None):  # noqa: N802
        """(keypoints, descriptors (N, 128) float32, frames (N, 2, 3) float32).

        The keypoints carry centre, scale and orientation; the frames also carry the affine shape."""
        work = self._pipeline.load(image)
        c = self.config
        sift = self._pipeline.frames.keypoint_detector
        if sift is not None:  # keep OpenCV's own keypoints (octave codes, responses) untouched
            keypoints = sift.detect_keypoints(work.gray, work.mask(_mask(mask, work)))
            detections = detections_from_keypoints(keypoints, c.magnification)
            features = self._pipeline.describe_frames(work.gray, detections).in_original(work)
            return _keypoints_in_original(keypoints, work), features.descriptors_numpy, features.lafs
        features = self._pipeline.extract(work, _mask(mask, work))
        keypoints = laflib.to_keypoints(features.lafs, c.magnification, features.responses)
        return keypoints, features.descriptors_numpy, features.lafs


def _keypoints_in_original(keypoints: list[cv2.KeyPoint], work: WorkingImage) -> list[cv2.KeyPoint]:
    """Keypoints found on the working image, moved and scaled into the original image (angle, response,
    octave kept)."""
    if work.is_original:
        return keypoints
    sx, sy = work.scale
    return [cv2.KeyPoint(x=sx * (kp.pt[0] + 0.5) - 0.5, y=sy * (kp.pt[1] + 0.5) - 0.5, size=kp.size * (sx * sy) ** 0.5,
                         angle=kp.angle, response=kp.response, octave=kp.octave, class_id=kp.class_id)
            for kp in keypoints]


def _mask(mask, work: WorkingImage):
    """OpenCV-style mask (H, W) of the original image -> uint8 0/255 mask (H, W), or None."""
    if mask is None:
        return None
    mask = np.asarray(mask)
    shape = tuple(work.original_shape)
    if mask.shape[:2] != shape:
        raise ValueError(f"mask shape {mask.shape[:2]} differs from image shape {shape}")
    return (mask.reshape(shape) > 0).astype(np.uint8) * 255


def HardNet_create(nfeatures: int = 8000, **options) -> HardNetFeature2D:  # noqa: N802 (mirrors cv2.SIFT_create)
    """Like ``cv2.SIFT_create(nfeatures=...)``; other options as in :class:`~hardmatch.config.PipelineConfig`."""
    return HardNetFeature2D("default", nfeatures=nfeatures, **options)
