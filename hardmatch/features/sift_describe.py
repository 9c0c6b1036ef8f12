"""SIFT / RootSIFT descriptors of local affine frames on their full affine patch (the baselines).

Handing a frame to ``cv2.SIFT.compute`` as a ``cv2.KeyPoint`` keeps its centre, scale and angle
and drops its affine shape, so on Hessian-affine, AffNet or view frames the baseline describes a
round region where HardNet describes the frame's ellipse (issue 18: RootSIFT scored about zero on
view frames that way). Here each frame's patch is cut from the image through the whole affine map
(:func:`hardmatch.features.patches.extract_patches`, the same sampler HardNet's patches come from), over the
region SIFT's own descriptor window would cover for the round frame of that radius, and SIFT
describes the patch's centre on an upright keypoint whose window is exactly the patch. Patches
are laid out on a mosaic, ``CHUNK`` at a time, with replicated borders so SIFT's smoothing does not
reach a neighbour.

``describe_affine_sift(image (H, W) uint8, lafs (N, 2, 3), magnification, root) -> (N, 128) float32``,
unit L2 norm (RootSIFT: L1-normalised, square-rooted). :func:`describe_sift` (the ``sift`` /
``rootsift`` descriptors of a pipeline) keeps the keypoint route for round frames (axis ratio below
:data:`ROUND`: a keypoint loses nothing of them, and the presets' DoG frames are described exactly as
before) and takes the affine patch for the others.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..core import laf as laflib
from .patches import extract_patches

#: Patch side (pixels) the descriptor is computed on.
PATCH = 41
#: Border (pixels) replicated around each patch on the mosaic.
PAD = 4
#: Patches per mosaic.
CHUNK = 1024
#: OpenCV SIFT: the descriptor window's radius is 3 * sqrt(2) * (4 + 1) / 2 half-sizes of the keypoint.
WINDOW_PER_SIZE = 3.0 * math.sqrt(2.0) * 5.0 / 4.0


#: Frames whose axis ratio is below this are round: described through a cv2.KeyPoint.
ROUND = 1.05


def _unit(desc: np.ndarray, root: bool) -> np.ndarray:
    desc = np.asarray(desc, np.float32)
    if root:  # RootSIFT (Arandjelovic & Zisserman 2012)
        return np.sqrt(desc / (np.abs(desc).sum(axis=1, keepdims=True) + 1e-7))
    return desc / (np.linalg.norm(desc, axis=1, keepdims=True) + 1e-7)


def describe_affine_sift(image: np.ndarray, lafs: np.ndarray, magnification: float, root: bool = False,
                         pyramid: list[np.ndarray] | None = None, sift=None) -> np.ndarray:
    """SIFT (``root``: RootSIFT) descriptors (N, 128) float32 of frames (N, 2, 3) on their affine patches.

    A frame of radius r (``sqrt |det A|``) is a keypoint of size ``2 r / magnification`` for SIFT
    (:func:`hardmatch.core.laf.to_keypoints`), whose window reaches ``WINDOW_PER_SIZE * size``: the patch
    covers that much of the frame's canonical square, so a round frame is described over the
    region the keypoint route would use."""
    lafs = np.asarray(lafs, np.float64).reshape(-1, 2, 3)
    if len(lafs) == 0:
        return np.zeros((0, 128), np.float32)
    sift = sift or cv2.SIFT_create()
    grow = 2.0 * WINDOW_PER_SIZE / magnification  # window radius / frame radius
    wide = lafs.copy()
    wide[:, :, :2] *= grow
    out = []
    tile = PATCH + 2 * PAD
    size = PATCH / (2.0 * WINDOW_PER_SIZE)  # the keypoint whose window is the patch
    for start in range(0, len(wide), CHUNK):
        patches = extract_patches(image, wide[start:start + CHUNK], PATCH, pyramid=pyramid)[:, 0]
        n = len(patches)
        cols = int(math.ceil(math.sqrt(n)))
        rows = int(math.ceil(n / cols))
        mosaic = np.zeros((rows * tile, cols * tile), np.uint8)
        keypoints = []
        for k, patch in enumerate(np.clip(np.round(patches), 0, 255).astype(np.uint8)):
            r, c = divmod(k, cols)
            mosaic[r * tile:(r + 1) * tile, c * tile:(c + 1) * tile] = cv2.copyMakeBorder(
                patch, PAD, PAD, PAD, PAD, cv2.BORDER_REPLICATE)
            centre = PAD + (PATCH - 1) / 2.0
            keypoints.append(cv2.KeyPoint(c * tile + centre, r * tile + centre, size, 0.0, 0.0, 0))
        found, desc = sift.compute(mosaic, keypoints)
        if desc is None or len(found) != n:
            raise RuntimeError(f"SIFT described {0 if desc is None else len(found)} of {n} patches")
        out.append(desc)
    return _unit(np.concatenate(out), root)


def describe_keypoint_sift(image: np.ndarray, lafs: np.ndarray, magnification: float, root: bool = False,
                           sift=None) -> np.ndarray:
    """SIFT (``root``: RootSIFT) descriptors (N, 128) float32 of frames (N, 2, 3) handed to OpenCV as keypoints
    (centre, size ``2 r / magnification``, angle; the affine shape is dropped)."""
    keypoints = laflib.to_keypoints(np.asarray(lafs, np.float64).reshape(-1, 2, 3), magnification)
    if not keypoints:
        return np.zeros((0, 128), np.float32)
    _, desc = (sift or cv2.SIFT_create()).compute(image, keypoints)
    return _unit(desc, root)


def describe_sift(image: np.ndarray, lafs: np.ndarray, magnification: float, root: bool = False,
                  sift=None) -> np.ndarray:
    """Descriptors (N, 128) float32 of frames (N, 2, 3): round frames through keypoints
    (:func:`describe_keypoint_sift`), the others on their affine patches (:func:`describe_affine_sift`)."""
    lafs = np.asarray(lafs, np.float64).reshape(-1, 2, 3)
    sift = sift or cv2.SIFT_create()
    singular = np.linalg.svd(lafs[:, :, :2], compute_uv=False) if len(lafs) else np.ones((0, 2))
    round_ = singular[:, 0] <= ROUND * singular[:, 1]
    out = np.zeros((len(lafs), 128), np.float32)
    if round_.any():
        out[round_] = describe_keypoint_sift(image, lafs[round_], magnification, root, sift)
    if (~round_).any():
        out[~round_] = describe_affine_sift(image, lafs[~round_], magnification, root, sift=sift)
    return out
