"""The two-view pipeline: detect -> patches -> HardNet -> match -> verify, and ``match_pair``.

Nothing here knows about files beyond :func:`hardmatch.io.load_gray`, or about the CLI.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import numpy as np

from . import laf as laflib
from .config import PipelineConfig, get_preset
from .describe import HardNetDescriptor
from .detect.base import Detections
from .frames import FrameDetector
from .io import ImageLike, load_gray
from .match import Matches, match
from .patches import build_pyramid, extract_patches
from .verify import verify


@dataclass
class Features:
    """Features of one image: frames (N, 2, 3), responses (N,), descriptors (N, 128) float32 unit-norm."""

    lafs: np.ndarray
    responses: np.ndarray
    descriptors: np.ndarray
    image_shape: tuple[int, int]
    timings: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.lafs)

    @property
    def points(self) -> np.ndarray:
        """Frame centres (N, 2)."""
        return laflib.centers(self.lafs)

    def subset(self, index: np.ndarray) -> "Features":
        """The features at ``index`` (timings are not carried over)."""
        return Features(self.lafs[index], self.responses[index], self.descriptors[index], self.image_shape)

    @staticmethod
    def concat(parts: list["Features"]) -> "Features":
        """Union of features of one image (timings are not carried over)."""
        if len(parts) == 1:
            return parts[0]
        return Features(np.concatenate([p.lafs for p in parts]), np.concatenate([p.responses for p in parts]),
                        np.concatenate([p.descriptors for p in parts]), parts[0].image_shape)


@dataclass
class PairResult:
    """Result of matching two images.

    ``model`` (3, 3) or None: H maps image1 -> image2; F satisfies ``x2^T F x1 = 0``.
    ``matches`` (K, 2) tentative correspondences (indices into features1/2), ``points1``/``points2``
    (K, 2) their pixel coordinates, ``inliers`` (K,) bool mask of the verified ones.
    ``timings``: seconds per stage.
    """

    geometry: str
    model: np.ndarray | None
    matches: np.ndarray
    points1: np.ndarray
    points2: np.ndarray
    inliers: np.ndarray
    num_features: tuple[int, int]
    timings: dict
    config: PipelineConfig
    features1: Features | None = None
    features2: Features | None = None
    reason: str = ""
    step: str | None = None  # on-demand matching: the step that succeeded
    steps: list = field(default_factory=list)  # on-demand matching: one dict per step tried

    @property
    def num_inliers(self) -> int:
        return int(self.inliers.sum())

    @property
    def num_matches(self) -> int:
        return len(self.matches)

    @property
    def success(self) -> bool:
        return self.model is not None

    @property
    def H(self) -> np.ndarray | None:
        return self.model if self.geometry == "homography" else None

    @property
    def F(self) -> np.ndarray | None:
        return self.model if self.geometry == "fundamental" else None

    @property
    def inlier_points(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (I, 2), (I, 2) of the verified correspondences."""
        return self.points1[self.inliers], self.points2[self.inliers]

    def to_dict(self) -> dict:
        """JSON-ready summary (model as a 3x3 list, inlier point pairs, timings, configuration)."""
        p1, p2 = self.inlier_points
        return {
            "success": self.success,
            "reason": self.reason,
            "geometry": self.geometry,
            self.geometry[0].upper(): None if self.model is None else self.model.tolist(),
            "num_features": list(self.num_features),
            "num_matches": self.num_matches,
            "num_inliers": self.num_inliers,
            "inliers": np.concatenate([p1, p2], axis=1).round(3).tolist(),
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "step": self.step,
            "steps": self.steps,
            "config": asdict(self.config),
        }


@lru_cache(maxsize=4)
def _hardnet(weights: str, device: str, batch_size: int, backend: str, precision: str) -> HardNetDescriptor:
    return HardNetDescriptor(weights, device=device, batch_size=batch_size, backend=backend, precision=precision)


class _OpenCVSIFTDescriptor:
    """OpenCV SIFT (or RootSIFT) descriptors of the same frames, for baselines: image + frames -> (N, 128)."""

    def __init__(self, magnification: float, root: bool) -> None:
        import cv2

        self.magnification = magnification
        self.root = root
        self.sift = cv2.SIFT_create()

    def __call__(self, image: np.ndarray, lafs: np.ndarray) -> np.ndarray:
        from .train.validate import rootsift

        keypoints = laflib.to_keypoints(lafs, self.magnification)
        if not keypoints:
            return np.zeros((0, 128), np.float32)
        _, desc = self.sift.compute(image, keypoints)
        desc = np.asarray(desc, np.float32)
        return rootsift(desc) if self.root else desc / (np.linalg.norm(desc, axis=1, keepdims=True) + 1e-7)


class Pipeline:
    """A configured two-view pipeline. ``Pipeline("fast", nfeatures=4000)`` or ``Pipeline(config)``."""

    def __init__(self, config: PipelineConfig | str = "default", **options) -> None:
        base = get_preset(config) if isinstance(config, str) else config
        self.config = base.with_options(**options)
        c = self.config
        self.frames = FrameDetector(c.detector, nfeatures=c.nfeatures, affine=c.affine, orientation=c.orientation,
                                    magnification=c.magnification, contrast_threshold=c.contrast_threshold)
        if c.descriptor == "hardnet":
            self.descriptor = _hardnet(str(c.weights), c.device, c.batch_size, c.backend, c.precision)
        else:  # sift / rootsift (PipelineConfig rejects other names)
            self.descriptor = _OpenCVSIFTDescriptor(c.magnification, root=c.descriptor == "rootsift")
        self._on_demand = None  # OnDemandMatcher, built on first use; keeps the steps' pipelines across pairs

    def describe_frames(self, image: np.ndarray, detections: Detections,
                        pyramid: list[np.ndarray] | None = None) -> Features:
        """Patches and descriptors for given frames of a uint8 (H, W) image (``pyramid``: its reusable pyramid)."""
        t0 = time.perf_counter()
        if isinstance(self.descriptor, HardNetDescriptor):
            patches = extract_patches(image, detections.lafs, pyramid=pyramid)
            t1 = time.perf_counter()
            descriptors = self.descriptor(patches)
        else:
            t1 = time.perf_counter()
            descriptors = self.descriptor(image, detections.lafs)
        t2 = time.perf_counter()
        return Features(detections.lafs, detections.responses, descriptors, image.shape[:2],
                        {"patches": t1 - t0, "describe": t2 - t1})

    def extract(self, image: ImageLike, mask: np.ndarray | None = None) -> Features:
        """Detect and describe: image (path or array) -> :class:`Features`."""
        t0 = time.perf_counter()
        gray = load_gray(image)
        t1 = time.perf_counter()
        pyramid = build_pyramid(gray)
        detections = self.frames(gray, mask, pyramid=pyramid)
        t2 = time.perf_counter()
        features = self.describe_frames(gray, detections, pyramid=pyramid)
        features.timings = {"load": t1 - t0, "detect": t2 - t1, **features.timings}
        return features

    def match_features(self, f1: Features, f2: Features) -> PairResult:
        """Match and verify two described images."""
        c = self.config
        t0 = time.perf_counter()
        tentative: Matches = match(f1.descriptors, f2.descriptors, c.matcher, c.ratio, points2=f2.points,
                                   fginn_radius=c.fginn_radius)
        t1 = time.perf_counter()
        pts1 = f1.points[tentative.pairs[:, 0]].astype(np.float64)
        pts2 = f2.points[tentative.pairs[:, 1]].astype(np.float64)
        result = verify(pts1, pts2, c.geometry, c.ransac, c.threshold, c.max_iters, c.confidence, c.seed,
                        lafs1=f1.lafs[tentative.pairs[:, 0]], lafs2=f2.lafs[tentative.pairs[:, 1]],
                        laf_check=c.laf_check, magnification=c.magnification)
        t2 = time.perf_counter()
        model, inliers, reason = result.model, result.inliers, ""
        if len(f1) == 0 or len(f2) == 0:
            reason = f"no features found (image1: {len(f1)}, image2: {len(f2)})"
        elif model is None:
            reason = f"no {c.geometry} found from {len(tentative)} tentative matches"
        elif result.num_inliers < c.min_inliers:
            reason = f"only {result.num_inliers} inliers (< min_inliers {c.min_inliers})"
        if reason:
            model = None
            inliers = np.zeros(len(tentative), dtype=bool)
        timings = {}
        for name, features in (("1", f1), ("2", f2)):
            for stage, seconds in features.timings.items():
                timings[f"{stage}{name}"] = seconds
        timings.update({"match": t1 - t0, "verify": t2 - t1})
        return PairResult(c.geometry, model, tentative.pairs, pts1, pts2, inliers, (len(f1), len(f2)), timings, c,
                          f1, f2, reason)

    def match_pair(self, image1: ImageLike, image2: ImageLike) -> PairResult:
        """Full pipeline on two images (paths or arrays); MODS steps when the configuration is ``on_demand``."""
        if self.config.on_demand:
            from .mods import OnDemandMatcher

            if self._on_demand is None:
                self._on_demand = OnDemandMatcher(self.config)
            return self._on_demand.match_pair(image1, image2)
        t0 = time.perf_counter()
        f1 = self.extract(image1)
        f2 = self.extract(image2)
        result = self.match_features(f1, f2)
        result.timings["total"] = time.perf_counter() - t0
        return result


def match_pair(image1: ImageLike, image2: ImageLike, geometry: str | None = None, preset: str = "default",
               **options) -> PairResult:
    """Match two images (paths or numpy arrays) with a preset plus option overrides.

    >>> result = match_pair("a.jpg", "b.jpg", geometry="homography")  # doctest: +SKIP
    >>> result.H, result.num_inliers  # doctest: +SKIP
    """
    if geometry is not None:
        options["geometry"] = geometry
    return Pipeline(preset, **options).match_pair(image1, image2)
