"""Training pairs from any folder of images, by synthetic warps.

For each source image: DoG frames (the pipeline's own detector), a random homography (in-plane
rotation, scale, affine tilt along a random direction, mild perspective), photometric changes
(gamma, contrast, brightness, blur, noise) on the warped image; the frame corresponding to each
source frame is computed exactly (local affine approximation of the homography at its centre),
then disturbed by detector-like noise (shift, scale, angle). Both patches are cut by
:func:`hardmatch.patches.extract_patches`, the extractor the pipeline uses.

Half of the corresponding frames (``affine_fraction``) keep the full affine image of the source
frame (what an affine-adapted detector would find); the rest keep only its similarity part
(centre, scale ``sqrt(det J)`` and the direction of the frame's first axis), which is what DoG
finds in the warped image: the network then learns the residual affine distortion.

Labels: each pair carries the id of its source keypoint (image index * 2**20 + keypoint index), so
the loss can mask pairs from the same point when two warps of one image meet in one batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .. import laf as laflib
from ..detect.dog import DoGDetector
from ..errors import DatasetError
from ..io import load_gray
from ..patches import build_pyramid, extract_patches

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".ppm", ".pgm", ".webp"}


def list_images(folders) -> list[Path]:
    """All image files under one or several folders, sorted (recursive)."""
    if isinstance(folders, (str, Path)):
        folders = [folders]
    files: list[Path] = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise DatasetError(f"{folder}: not a folder of images")
        files.extend(sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES))
    if not files:
        raise DatasetError(f"no images found under {', '.join(map(str, folders))}")
    return files


@dataclass
class WarpConfig:
    """Ranges of the random homographies and photometric changes."""

    max_rotation_deg: float = 180.0
    log2_scale: float = 1.0  # scale in 2**U(-x, x)
    max_tilt: float = 2.5  # affine tilt in U(1, max_tilt) along a random direction
    perspective: float = 0.1  # corner jitter as a fraction of the image side, after the affine part
    gamma: tuple[float, float] = (0.6, 1.6)
    contrast: tuple[float, float] = (0.6, 1.4)
    brightness: float = 25.0
    blur_prob: float = 0.3
    max_blur_sigma: float = 1.2
    noise_prob: float = 0.5
    max_noise_sigma: float = 6.0
    shift_noise: float = 0.03  # detector shift, as a fraction of the frame radius (std)
    scale_noise: float = 0.08  # log-scale std
    angle_noise_deg: float = 8.0  # orientation std
    affine_fraction: float = 0.5


def random_homography(rng: np.random.Generator, width: int, height: int, cfg: WarpConfig) -> np.ndarray:
    """A homography (3, 3) that keeps the image centre at the centre of a same-size output."""
    theta = math.radians(rng.uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg))
    phi = math.radians(rng.uniform(0.0, 180.0))
    scale = 2.0 ** rng.uniform(-cfg.log2_scale, cfg.log2_scale)
    tilt = rng.uniform(1.0, cfg.max_tilt)

    def rot(a: float) -> np.ndarray:
        return np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])

    affine = scale * rot(theta) @ rot(-phi) @ np.diag([1.0 / math.sqrt(tilt), math.sqrt(tilt)]) @ rot(phi)
    centre = np.array([(width - 1) / 2.0, (height - 1) / 2.0])
    h = np.eye(3)
    h[:2, :2] = affine
    h[:2, 2] = centre - affine @ centre
    if cfg.perspective > 0:
        corners = np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], np.float32)
        mapped = cv2.perspectiveTransform(corners[None], h)[0]
        jitter = rng.uniform(-cfg.perspective, cfg.perspective, (4, 2)) * np.array([width, height]) * scale
        h = cv2.getPerspectiveTransform(corners, (mapped + jitter).astype(np.float32)) if np.all(np.isfinite(jitter)) else h
    return h / h[2, 2]


def photometric(image: np.ndarray, rng: np.random.Generator, cfg: WarpConfig) -> np.ndarray:
    """Random gamma, contrast, brightness, blur and noise on a uint8 image -> uint8."""
    x = image.astype(np.float32) / 255.0
    x = np.power(x, rng.uniform(*cfg.gamma))
    x = x * rng.uniform(*cfg.contrast) + rng.uniform(-cfg.brightness, cfg.brightness) / 255.0
    x = x * 255.0
    if rng.random() < cfg.blur_prob:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.3, cfg.max_blur_sigma))
    if rng.random() < cfg.noise_prob:
        x = x + rng.normal(0.0, rng.uniform(0.5, cfg.max_noise_sigma), x.shape).astype(np.float32)
    return np.clip(x, 0, 255).astype(np.uint8)


def corresponding_frames(lafs: np.ndarray, homography: np.ndarray, rng: np.random.Generator,
                         cfg: WarpConfig) -> np.ndarray:
    """Frames (N, 2, 3) in the warped image matching ``lafs`` under ``homography``, with detector noise."""
    exact = laflib.transform(lafs, homography).astype(np.float64)
    n = len(exact)
    radii = laflib.radius(exact)
    similarity = rng.random(n) >= cfg.affine_fraction
    if similarity.any():
        first_axis = exact[similarity, :, 0]
        angle = np.rad2deg(np.arctan2(first_axis[:, 1], first_axis[:, 0]))
        exact[similarity] = laflib.from_center_radius_angle(exact[similarity, :, 2], radii[similarity], angle)
    # detector-like noise: rotate and scale the shape, shift the centre
    ang = np.deg2rad(rng.normal(0.0, cfg.angle_noise_deg, n))
    s = np.exp(rng.normal(0.0, cfg.scale_noise, n))
    rot = np.stack([np.stack([np.cos(ang), -np.sin(ang)], -1), np.stack([np.sin(ang), np.cos(ang)], -1)], 1)
    noisy = exact.copy()
    noisy[:, :, :2] = (exact[:, :, :2] @ rot) * s[:, None, None]
    noisy[:, :, 2] += rng.normal(0.0, 1.0, (n, 2)) * (cfg.shift_noise * radii)[:, None]
    return noisy.astype(np.float32)


class SyntheticPairs:
    """Endless source of (anchor, positive, label) patch batches from a folder of images.

    ``sample(n)`` -> anchors (n, 1, 32, 32) uint8, positives (n, 1, 32, 32) uint8, labels (n,) int64.
    Keypoints of each image are detected once and cached. ``max_side`` downsizes large images.
    """

    def __init__(self, folders, seed: int = 0, keypoints_per_image: int = 1500, pairs_per_warp: int = 64,
                 cfg: WarpConfig | None = None, max_side: int = 1024) -> None:
        self.files = list_images(folders)
        self.rng = np.random.default_rng(seed)
        self.cfg = cfg or WarpConfig()
        self.pairs_per_warp = pairs_per_warp
        self.max_side = max_side
        self.detector = DoGDetector(nfeatures=keypoints_per_image)
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _image(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if index not in self._cache:
            image = load_gray(self.files[index])
            side = max(image.shape)
            if side > self.max_side:
                f = self.max_side / side
                image = cv2.resize(image, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
            self._cache[index] = (image, self.detector(image).lafs)
        return self._cache[index]

    def warp_pairs(self, index: int, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Up to ``count`` pairs from one random warp of image ``index``."""
        image, lafs = self._image(index)
        height, width = image.shape
        if len(lafs) == 0:
            return _empty(), _empty(), np.zeros(0, np.int64)
        h = random_homography(self.rng, width, height, self.cfg)
        warped = cv2.warpPerspective(image, h, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        warped = photometric(warped, self.rng, self.cfg)
        mapped = laflib.transform(lafs, h)
        centre = mapped[:, :, 2]
        margin = 4.0
        inside = ((centre[:, 0] > margin) & (centre[:, 0] < width - 1 - margin) &
                  (centre[:, 1] > margin) & (centre[:, 1] < height - 1 - margin) &
                  (laflib.radius(mapped) > 2.0))
        candidates = np.nonzero(inside)[0]
        if len(candidates) == 0:
            return _empty(), _empty(), np.zeros(0, np.int64)
        chosen = self.rng.choice(candidates, size=min(count, len(candidates)), replace=False)
        frames2 = corresponding_frames(lafs[chosen], h, self.rng, self.cfg)
        anchors = extract_patches(image, lafs[chosen], pyramid=build_pyramid(image))
        positives = extract_patches(warped, frames2, pyramid=build_pyramid(warped))
        if self.rng.random() < 0.5:  # either image may be the anchor
            anchors, positives = positives, anchors
        labels = index * (1 << 20) + chosen.astype(np.int64)
        return _to_uint8(anchors), _to_uint8(positives), labels

    def sample(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A batch of n pairs from ceil(n / pairs_per_warp) random images, one warp each."""
        anchors, positives, labels = [], [], []
        total = 0
        while total < n:
            index = int(self.rng.integers(len(self.files)))
            a, p, lab = self.warp_pairs(index, min(self.pairs_per_warp, n - total))
            anchors.append(a)
            positives.append(p)
            labels.append(lab)
            total += len(lab)
        return np.concatenate(anchors), np.concatenate(positives), np.concatenate(labels)


def _empty() -> np.ndarray:
    return np.zeros((0, 1, 32, 32), np.uint8)


def _to_uint8(patches: np.ndarray) -> np.ndarray:
    return np.clip(np.round(patches), 0, 255).astype(np.uint8)
