"""Synthesized views of an image (ASIFT-style tilt x in-plane rotation) and detection on them.

View (t, phi): rotate the image by ``phi`` degrees (OpenCV sense) about its centre onto a canvas
that holds all of it, blur along x with a Gaussian of sigma ``0.8 * sqrt(t^2 - 1)`` and
compress x by ``t``. ``A_view`` (2, 3) maps original pixels to view pixels. Frames found on a view
are mapped back to the original image as affine frames (:func:`detect_in_views`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..core import laf as laflib
from ..features.detections import Detections

#: ASIFT's angle step at tilt t is ANGLE_STEP / t degrees, over [0, 180).
ANGLE_STEP = 72.0


@dataclass(frozen=True)
class View:
    """One synthesized view: tilt ``t`` >= 1, in-plane angle ``phi`` in degrees, then a zoom by ``scale`` <= 1."""

    tilt: float = 1.0
    angle: float = 0.0
    scale: float = 1.0

    @property
    def is_identity(self) -> bool:
        return self.tilt == 1.0 and self.angle == 0.0 and self.scale == 1.0


def view_set(tilts=(1.0,), angle_step: float = ANGLE_STEP, scales=(1.0,)) -> list[View]:
    """ASIFT sampling: for each scale and tilt t, angles 0, s, 2s, ... < 180 with s = angle_step / t
    (one view at t = 1). MODS writes ``angle_step`` as the rotation density (360 gives one view at
    t <= 2, four at t = 8)."""
    views = []
    for scale in scales:
        for t in tilts:
            t = float(t)
            if t <= 1.0:
                views.append(View(1.0, 0.0, float(scale)))
                continue
            step = angle_step / t
            views += [View(t, float(a), float(scale)) for a in np.arange(0.0, 180.0 - 1e-6, step)]
    return views


def synthesize(image: np.ndarray, view: View) -> tuple[np.ndarray, np.ndarray]:
    """The view image and the affine map (2, 3) from original pixels to view pixels."""
    if view.is_identity:
        return image, np.array([[1.0, 0, 0], [0, 1.0, 0]])
    if view.tilt == 1.0 and view.angle == 0.0:
        return _zoom(image, np.array([[1.0, 0, 0], [0, 1.0, 0]]), view.scale)
    h, w = image.shape[:2]
    theta = np.deg2rad(view.angle)
    # image rotated by phi in the OpenCV sense (counter-clockwise on screen): y points down
    rot = np.array([[np.cos(theta), np.sin(theta)], [-np.sin(theta), np.cos(theta)]])
    corners = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]], np.float64) @ rot.T
    low, high = corners.min(0), corners.max(0)
    affine = np.concatenate([rot, -low[:, None]], axis=1)
    size = np.ceil(high - low + 1).astype(int)
    rotated = cv2.warpAffine(image, affine, (int(size[0]), int(size[1])), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if view.tilt > 1.0:
        sigma = 0.8 * np.sqrt(view.tilt ** 2 - 1.0)
        rotated = cv2.GaussianBlur(rotated, (0, 0), sigmaX=sigma, sigmaY=0.01)
        new_w = max(1, int(round(rotated.shape[1] / view.tilt)))
        rotated = cv2.resize(rotated, (new_w, rotated.shape[0]), interpolation=cv2.INTER_LINEAR)
        sx = new_w / size[0]
        # cv2.resize maps pixel centres: x' = (x + 0.5) * sx - 0.5
        squash = np.array([[sx, 0.0], [0.0, 1.0]])
        affine = np.concatenate([squash @ affine[:, :2], squash @ affine[:, 2:] + [[0.5 * sx - 0.5], [0.0]]], axis=1)
    return _zoom(rotated, affine, view.scale)


def _zoom(image: np.ndarray, affine: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """``image`` shrunk by ``scale`` <= 1 (area averaging) and ``affine`` (2, 3) composed with the shrink."""
    if scale >= 1.0:
        return image, affine
    h, w = image.shape[:2]
    new_w, new_h = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    small = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
    sx, sy = new_w / w, new_h / h
    shrink = np.diag([sx, sy])
    offset = np.array([[0.5 * sx - 0.5], [0.5 * sy - 0.5]])
    return small, np.concatenate([shrink @ affine[:, :2], shrink @ affine[:, 2:] + offset], axis=1)


def _as_homography(affine: np.ndarray) -> np.ndarray:
    return np.vstack([affine, [0.0, 0.0, 1.0]])


def views_of(image: np.ndarray, views: list[View]):
    """Yield (view image, affine (2, 3) original -> view, homography (3, 3) view -> original) per view."""
    for view in views:
        view_image, affine = synthesize(image, view)
        yield view_image, affine, np.linalg.inv(_as_homography(affine))


def inside_image(lafs: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape[:2]
    c = laflib.centers(lafs)
    return np.nonzero((c[:, 0] >= 0) & (c[:, 1] >= 0) & (c[:, 0] <= w - 1) & (c[:, 1] <= h - 1))[0]


def detect_in_views(detect, image: np.ndarray, views: list[View], per_view=None) -> Detections:
    """Frames of ``image`` found by ``detect`` (uint8 (H, W) -> Detections) on each view, in original pixels.

    ``per_view(view) -> detect`` picks the detector per view instead (a frame budget per view). Frames
    whose centre maps outside the original image are dropped; near-duplicates across views are merged
    (:func:`unique_frames`).
    """
    parts = []
    for view, (view_image, _, back) in zip(views, views_of(image, views)):
        detections = (detect if per_view is None else per_view(view))(view_image)
        if len(detections):
            detections = detections.with_lafs(laflib.transform(detections.lafs, back))
            parts.append(detections.subset(inside_image(detections.lafs, image.shape)))
    merged = Detections.concat(parts)
    return merged.subset(laflib.unique(merged.lafs))


