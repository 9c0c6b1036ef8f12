"""Training pairs from any folder of images, by synthetic warps.

For each source image: DoG frames (the pipeline's own detector), a random homography (in-plane
rotation, scale, affine tilt along a random direction, mild perspective), photometric changes
(gamma, contrast, brightness, blur, noise) on the warped image; the frame corresponding to each
source frame is computed exactly (local affine approximation of the homography at its centre),
then disturbed by detector-like noise (shift, scale, angle). Both patches are cut by
:func:`hardmatch.features.patches.extract_patches`, the extractor the pipeline uses.

Half of the corresponding frames (``affine_fraction``) keep the full affine image of the source
frame (what an affine-adapted detector would find); the rest keep only its similarity part
(centre, scale ``sqrt(det J)`` and the direction of the frame's first axis), which is what DoG
finds in the warped image: the network then learns the residual affine distortion.

Labels: each pair carries the id of its source keypoint (image index * 2**20 + keypoint index), so
the loss can mask pairs from the same point when two warps of one image meet in one batch.

Harder data, all off by default (not yet measured on matched pairs; ``tools/gpu_train.sh`` holds
the ablation that measures them):

- ``WarpConfig.shading_prob``: spatially varying illumination on the warped image, a smooth
  gain gradient across the image (up to ``max_shading`` stops from one side to the other) and,
  with ``shadow_prob``, a few soft-edged shadows (each darkening by up to ``max_shadow_depth``);
- ``WarpConfig.jpeg_prob``: JPEG re-encoding of the warped image at a quality in ``jpeg_quality``;
- ``WarpConfig.occlusion_prob``: up to ``max_occluders`` rectangles of texture from elsewhere in
  the image pasted over the warped image (each up to ``max_occluder_size`` of the image side);
  pairs whose warped centre is covered are dropped, partly covered patches stay;
- ``SyntheticPairs(detector=...)``: frames from any detector of :mod:`hardmatch.features.frames`
  (``dog``, ``hessian``, ``hessaff``, or several joined by ``+``) instead of DoG alone;
- ``SyntheticPairs(scales=...)``: each image used at several scales (each a downsized copy with
  its own keypoints), more distinct pairs per image. Ids differ per scale.

:func:`source_options` turns ``NAME=VALUE`` strings (the CLI's ``--synth``) into these options.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path

import cv2
import numpy as np

from ..core import laf as laflib
from ..core.errors import DatasetError
from ..features.frames import FrameDetector, parse_detector
from ..core.io import load_gray
from ..features.patches import build_pyramid, extract_patches

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
    shading_prob: float = 0.0  # probability of spatially varying illumination (gradient, shadows)
    max_shading: float = 1.5  # gain gradient up to 2**this from one side of the image to the other
    shadow_prob: float = 0.5  # given shading: probability of 1-3 soft shadows as well
    max_shadow_depth: float = 0.6  # a shadow multiplies intensities by 1 - U(0.2, 1) * this
    jpeg_prob: float = 0.0  # probability of re-encoding the warped image as JPEG
    jpeg_quality: tuple[int, int] = (20, 80)
    occlusion_prob: float = 0.0  # probability of pasting occluders over the warped image
    max_occluders: int = 3
    max_occluder_size: float = 0.3  # occluder side, as a fraction of the image side


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
    """Random gamma, contrast, brightness, shading, blur, noise and JPEG on a uint8 image -> uint8."""
    # gamma, contrast and brightness act on each grey level alike: one 256-entry table (5x faster than per pixel)
    levels = np.arange(256, dtype=np.float32) / 255.0
    levels = np.power(levels, rng.uniform(*cfg.gamma))
    levels = (levels * rng.uniform(*cfg.contrast) + rng.uniform(-cfg.brightness, cfg.brightness) / 255.0) * 255.0
    x = levels[image]
    if cfg.shading_prob > 0 and rng.random() < cfg.shading_prob:
        x = x * shading_gain(x.shape, rng, cfg)
    if rng.random() < cfg.blur_prob:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.3, cfg.max_blur_sigma))
    if rng.random() < cfg.noise_prob:
        x = x + rng.standard_normal(x.shape, dtype=np.float32) * np.float32(rng.uniform(0.5, cfg.max_noise_sigma))
    out = np.clip(x, 0, 255).astype(np.uint8)
    if cfg.jpeg_prob > 0 and rng.random() < cfg.jpeg_prob:
        out = jpeg_roundtrip(out, int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)))
    return out


def shading_gain(shape: tuple[int, int], rng: np.random.Generator, cfg: WarpConfig) -> np.ndarray:
    """A smooth multiplicative illumination field (H, W) float32: a gain gradient along a random
    direction (2**U(-max_shading, max_shading) from one side to the other, mean gain 1 at the
    centre) and, with ``shadow_prob``, 1-3 soft-edged elliptical shadows."""
    height, width = shape
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    direction = rng.uniform(0.0, 2 * math.pi)
    # position along the direction, -0.5..0.5 across the image
    t = ((xx - width / 2) * math.cos(direction) + (yy - height / 2) * math.sin(direction)) / max(height, width)
    log2_gain = np.float32(rng.uniform(-cfg.max_shading, cfg.max_shading)) * t
    gain = np.exp2(log2_gain).astype(np.float32)
    if rng.random() < cfg.shadow_prob:
        shadow = np.zeros(shape, np.float32)
        side = max(height, width)
        for _ in range(int(rng.integers(1, 4))):
            centre = (float(rng.uniform(0, width)), float(rng.uniform(0, height)))
            axes = (max(2, int(rng.uniform(0.05, 0.3) * side)), max(2, int(rng.uniform(0.05, 0.3) * side)))
            blob = np.zeros(shape, np.float32)
            cv2.ellipse(blob, (int(centre[0]), int(centre[1])), axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
            depth = rng.uniform(0.2, 1.0) * cfg.max_shadow_depth
            shadow = np.maximum(shadow, blob * np.float32(depth))
        # soft penumbra, a few percent of the image side wide
        shadow = cv2.GaussianBlur(shadow, (0, 0), max(1.0, rng.uniform(0.005, 0.03) * side))
        gain = gain * (1.0 - shadow)
    return gain


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode a uint8 (H, W) image as JPEG at ``quality`` (1-100) and decode it back."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)


def occlude(image: np.ndarray, rng: np.random.Generator, cfg: WarpConfig) -> tuple[np.ndarray, np.ndarray]:
    """Paste 1..max_occluders rectangles of texture copied from random places of the same image.

    uint8 (H, W) -> (occluded uint8 (H, W), covered (H, W) bool).
    """
    height, width = image.shape
    out = image.copy()
    covered = np.zeros(image.shape, bool)
    for _ in range(int(rng.integers(1, cfg.max_occluders + 1))):
        h = max(4, int(rng.uniform(0.05, cfg.max_occluder_size) * height))
        w = max(4, int(rng.uniform(0.05, cfg.max_occluder_size) * width))
        h, w = min(h, height), min(w, width)
        y, x = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
        sy, sx = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
        out[y:y + h, x:x + w] = image[sy:sy + h, sx:sx + w]
        covered[y:y + h, x:x + w] = True
    return out, covered


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
    ``detector``: frame detector name(s) of :class:`~hardmatch.features.frames.FrameDetector`
    (``keypoints_per_image`` each); ``scales``: the image is used at each of these scales (<= 1,
    relative to the ``max_side``-limited image), each scale a separate entry with its own keypoints.
    ``entries``: the list :meth:`detect_all` returns, so that loader workers share one detection pass
    instead of each detecting every image again (the slow start of a many-worker GPU run).
    """

    def __init__(self, folders, seed: int = 0, keypoints_per_image: int = 1500, pairs_per_warp: int = 64,
                 cfg: WarpConfig | None = None, max_side: int = 1024, detector: str = "dog",
                 scales: tuple[float, ...] = (1.0,), entries=None) -> None:
        self.files = list_images(folders)
        self.rng = np.random.default_rng(seed)
        self.cfg = cfg or WarpConfig()
        self.pairs_per_warp = pairs_per_warp
        self.max_side = max_side
        self.scales = tuple(float(f) for f in scales)
        if not self.scales or not all(0.0 < f <= 1.0 for f in self.scales):
            raise ValueError(f"scales must be in (0, 1], got {scales!r}")
        parse_detector(detector)  # a clear error for an unknown name, before any image is read
        self.detector_name = detector
        self.keypoints_per_image = keypoints_per_image
        self.detector = FrameDetector(detector, nfeatures=keypoints_per_image)
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = dict(enumerate(entries)) if entries else {}
        if entries is not None and len(entries) != self.num_entries:
            raise ValueError(f"entries: expected {self.num_entries} (images x scales), got {len(entries)}")

    @property
    def num_entries(self) -> int:
        """Images times scales: the index range of :meth:`warp_pairs`."""
        return len(self.files) * len(self.scales)

    def _image(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(uint8 (H, W) image, frames (N, 2, 3)) of entry ``index`` = file * len(scales) + scale."""
        if index not in self._cache:
            self._cache[index] = self._detect_entry(index)
        return self._cache[index]

    def _entry_spec(self, index: int) -> tuple[str, float, int, str, int]:
        file_index, scale_index = divmod(index, len(self.scales))
        return (str(self.files[file_index]), self.scales[scale_index], self.max_side, self.detector_name,
                self.keypoints_per_image)

    def _detect_entry(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return _load_and_detect(self._entry_spec(index), self.detector)

    def detect_all(self, processes: int = 1) -> list[tuple[np.ndarray, np.ndarray]]:
        """(image, frames) of every entry, detected by ``processes`` worker processes (1: here)."""
        indices = range(self.num_entries)
        if processes > 1 and self.num_entries > 1:
            import multiprocessing

            # spawn, not fork: a forked child of a process whose OpenCV / OpenMP thread pools are running
            # can deadlock on its first parallel call (seen in the test suite)
            context = multiprocessing.get_context("spawn")
            with context.Pool(min(processes, self.num_entries)) as pool:
                entries = pool.map(_load_and_detect, [self._entry_spec(i) for i in indices], chunksize=1)
            self._cache = dict(enumerate(entries))
        return [self._image(i) for i in indices]

    def warp_pairs(self, index: int, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Up to ``count`` pairs from one random warp of image ``index``."""
        image, lafs = self._image(index)
        height, width = image.shape
        if len(lafs) == 0:
            return _empty(), _empty(), np.zeros(0, np.int64)
        h = random_homography(self.rng, width, height, self.cfg)
        warped = cv2.warpPerspective(image, h, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        covered = None
        if self.cfg.occlusion_prob > 0 and self.rng.random() < self.cfg.occlusion_prob:
            warped, covered = occlude(warped, self.rng, self.cfg)
        warped = photometric(warped, self.rng, self.cfg)
        mapped = laflib.transform(lafs, h)
        centre = mapped[:, :, 2]
        margin = 4.0
        inside = ((centre[:, 0] > margin) & (centre[:, 0] < width - 1 - margin) &
                  (centre[:, 1] > margin) & (centre[:, 1] < height - 1 - margin) &
                  (laflib.radius(mapped) > 2.0))
        if covered is not None:  # the point itself hidden: not a matching pair
            cx = np.clip(np.round(centre[:, 0]), 0, width - 1).astype(int)
            cy = np.clip(np.round(centre[:, 1]), 0, height - 1).astype(int)
            inside &= ~covered[cy, cx]
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
            index = int(self.rng.integers(self.num_entries))
            a, p, lab = self.warp_pairs(index, min(self.pairs_per_warp, n - total))
            anchors.append(a)
            positives.append(p)
            labels.append(lab)
            total += len(lab)
        return np.concatenate(anchors), np.concatenate(positives), np.concatenate(labels)


_PROCESS_DETECTORS: dict[tuple[str, int], FrameDetector] = {}


def _load_and_detect(spec: tuple[str, float, int, str, int], detector: FrameDetector | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 image, frames (N, 2, 3)) for ``spec`` = (file, scale, max_side, detector name, keypoints):
    the image limited to ``max_side``, then scaled. Module-level so that a process pool can run it."""
    path, scale, max_side, name, nfeatures = spec
    if detector is None:
        cv2.setNumThreads(1)
        detector = _PROCESS_DETECTORS.get((name, nfeatures))
        if detector is None:
            detector = _PROCESS_DETECTORS[(name, nfeatures)] = FrameDetector(name, nfeatures=nfeatures)
    image = load_gray(path)
    f = min(1.0, max_side / max(image.shape)) * scale
    if f < 1.0:
        image = cv2.resize(image, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    return image, detector(image).lafs


def _empty() -> np.ndarray:
    return np.zeros((0, 1, 32, 32), np.uint8)


def _to_uint8(patches: np.ndarray) -> np.ndarray:
    return np.clip(np.round(patches), 0, 255).astype(np.uint8)


#: options of :class:`SyntheticPairs` itself that :func:`source_options` accepts, with their defaults
SOURCE_OPTIONS = {"detector": "dog", "scales": (1.0,), "keypoints_per_image": 1500, "pairs_per_warp": 64,
                  "max_side": 1024}


def source_options(specs) -> dict:
    """``["jpeg_prob=0.3", "scales=1,0.5", ...]`` -> keyword arguments of :class:`SyntheticPairs`
    (``cfg`` a :class:`WarpConfig` with the named fields changed). Names are WarpConfig fields or
    :data:`SOURCE_OPTIONS`; values are cast to the default's type (tuples: comma-separated).
    Raises ValueError naming the bad item."""
    defaults = {f.name: getattr(WarpConfig(), f.name) for f in fields(WarpConfig)}
    warp: dict = {}
    source: dict = {}
    for spec in specs:
        name, sep, text = str(spec).partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not text.strip():
            raise ValueError(f"synthetic option {spec!r}: expected NAME=VALUE")
        if name in defaults:
            target, default = warp, defaults[name]
        elif name in SOURCE_OPTIONS:
            target, default = source, SOURCE_OPTIONS[name]
        else:
            known = ", ".join(sorted([*defaults, *SOURCE_OPTIONS]))
            raise ValueError(f"unknown synthetic option {name!r}; known: {known}")
        try:
            target[name] = _cast_like(default, text.strip(), is_range=name != "scales")
        except ValueError:
            raise ValueError(f"synthetic option {spec!r}: cannot read {text!r} as {type(default).__name__}") from None
    if "detector" in source:
        parse_detector(source["detector"])
    return {**source, "cfg": WarpConfig(**warp)}


def _cast_like(default, text: str, is_range: bool = True):
    """``text`` as the type of ``default``; tuples from comma lists (ranges: exactly two values, low <= high)."""
    if isinstance(default, tuple):
        kind = type(default[0])
        values = tuple(kind(float(p)) if kind is int else kind(p) for p in text.split(",") if p.strip())
        if not values or (is_range and (len(values) != 2 or values[0] > values[1])):
            raise ValueError(text)
        return values
    if isinstance(default, bool):
        return text.lower() in ("1", "true", "yes")
    if isinstance(default, int):
        return int(float(text))
    if isinstance(default, float):
        return float(text)
    return text
