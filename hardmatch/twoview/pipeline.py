"""The two-view pipeline: detect -> patches -> HardNet -> match -> verify, in one pass.

Nothing here knows about files beyond :func:`hardmatch.core.io.load_working`, or about the CLI.
Matching on demand (MODS, :mod:`hardmatch.twoview.on_demand`) is built on this pipeline; the choice between
the two is made above both, in :mod:`hardmatch.twoview.api` (``build_matcher``, ``match_pair``).

Working resolution: images are detected and described at most ``max_side`` pixels on their
longest side (:class:`~hardmatch.core.io.WorkingImage`). :class:`Features` hold frames in ORIGINAL
image pixels plus the map to working pixels; matching and RANSAC run in working pixels (so
thresholds mean the same at any image size) and the model is mapped back:
``H = W2^-1 H_w W1``, ``F = W2^T F_w W1`` with ``W`` original -> working.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from ..core import laf as laflib
from ..core.errors import HardmatchError
from ..core.io import ImageLike, WorkingImage, load_working
from ..core.lazytorch import device_name, device_type
from ..core.model_maps import model_to_original
from ..core.records import Features, PairResult
from ..features.describe import HardNetDescriptor
from ..features.detections import Detections
from ..features.frames import FrameDetector, FramesConf
from ..features.patches import build_pyramid, extract_patches
from ..features.sift_describe import describe_sift
from ..geometry.acceptance import AcceptanceConf, unique_correspondences
from ..geometry.intrinsics import Camera, resolve_pair
from ..geometry.model_accuracy import result_accuracy
from ..geometry.model_search import SearchedModel, search_model
from ..geometry.ransac import RansacConf
from ..matching.matchers import Matches, match
from .config import PipelineConfig, get_preset

if TYPE_CHECKING:
    import torch


@lru_cache(maxsize=4)
def _hardnet(weights: str, device: str, batch_size: int, backend: str, precision: str) -> HardNetDescriptor:
    return HardNetDescriptor(weights, device=device, batch_size=batch_size, backend=backend, precision=precision)


class _OpenCVSIFTDescriptor:
    """OpenCV SIFT (or RootSIFT) descriptors of the same frames, for baselines: image + frames -> (N, 128),
    frames with an affine shape described on their full affine patch (:func:`hardmatch.features.sift_describe.describe_sift`;
    a ``cv2.KeyPoint`` would drop the shape), round ones through keypoints as before."""

    def __init__(self, magnification: float, root: bool) -> None:
        import cv2

        self.magnification = magnification
        self.root = root
        self.sift = cv2.SIFT_create()

    def __call__(self, image: np.ndarray, lafs: np.ndarray) -> np.ndarray:
        return describe_sift(image, lafs, self.magnification, self.root, sift=self.sift)


def execution_path(config: PipelineConfig) -> str:
    """``opencv`` or ``torch``: the configured ``path``, ``auto`` meaning torch when the descriptor runs on CUDA.

    The torch path needs the HardNet descriptor (the sift/rootsift baselines are OpenCV's).
    """
    if config.path == "opencv":
        return "opencv"
    if config.descriptor != "hardnet":
        if config.path == "torch":
            raise ValueError(f"path torch needs the hardnet descriptor, not {config.descriptor!r}")
        return "opencv"
    if config.path == "torch":
        return "torch"
    return "torch" if device_type(device_name(config.device)) == "cuda" else "opencv"


def frame_detector(config: PipelineConfig) -> FrameDetector:
    """The frames ``config`` asks for (detector, count, affine shape, orientation), detected on the
    descriptor's device on the torch path (:func:`execution_path`), else on the CPU."""
    device = device_name(config.device) if execution_path(config) == "torch" else "cpu"
    return FrameDetector.from_conf(config.stage(FramesConf), device=device)


def _torch():
    """The torch module, imported on the torch path only (:mod:`hardmatch.core.lazytorch`)."""
    import torch

    return torch


def _sync(device: torch.device) -> None:
    """Wait for queued device work (so that per-stage timings are real on CUDA)."""
    if device.type == "cuda":
        _torch().cuda.synchronize(device)


class Pipeline:
    """A configured two-view pipeline. ``Pipeline("fast", nfeatures=4000)`` or ``Pipeline(config)``.

    Two execution paths (:func:`execution_path`, chosen once here): ``opencv`` (numpy stages,
    OpenCV detection and patches) and ``torch`` (the image uploaded once; detection, patches,
    HardNet and matching on the descriptor's device; only RANSAC and the result see numpy).
    """

    def __init__(self, config: PipelineConfig | str = "default", **options) -> None:
        base = get_preset(config) if isinstance(config, str) else config
        self.config = base.with_options(**options)
        c = self.config
        self.path = execution_path(c)
        self.frames = frame_detector(c)
        if c.descriptor == "hardnet":
            # the torch path runs the torch network (describe_tensor), so precision resolves for that backend
            backend = "torch" if self.path == "torch" else c.backend
            self.descriptor = _hardnet(str(c.weights), c.device, c.batch_size, backend, c.precision)
        else:  # sift / rootsift (PipelineConfig rejects other names)
            self.descriptor = _OpenCVSIFTDescriptor(c.magnification, root=c.descriptor == "rootsift")

    def describe_frames(self, image: np.ndarray, detections: Detections,
                        pyramid: list[np.ndarray] | None = None) -> Features:
        """Patches and descriptors for given frames of a uint8 (H, W) image (``pyramid``: its reusable pyramid)."""
        if self.path == "torch":
            from ..features.patches_torch import build_pyramid_torch, image_tensor

            device = self.descriptor.device
            image_t = image_tensor(image, device)
            return self._describe_torch(image_t, detections.to(device), image.shape[:2], build_pyramid_torch(image_t))
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

    def _describe_torch(self, image: torch.Tensor, detections: Detections, shape: tuple[int, int],
                        pyramid: list[torch.Tensor]) -> Features:
        """Torch path: patches and HardNet on the device; descriptors stay there, frames go to the host."""
        from ..features.patches_torch import extract_patches_torch

        device = image.device
        _sync(device)
        t0 = time.perf_counter()
        patches = extract_patches_torch(image, detections.lafs, pyramid=pyramid)
        _sync(device)
        t1 = time.perf_counter()
        descriptors = self.descriptor.describe_tensor(patches)
        host = detections.numpy()
        t2 = time.perf_counter()
        return Features(host.lafs, host.responses, descriptors, shape, {"patches": t1 - t0, "describe": t2 - t1})

    def _extract_torch(self, gray: np.ndarray, mask: np.ndarray | None) -> Features:
        """Torch path of :meth:`extract` after loading: upload once, detect and describe on the device."""
        from ..features.patches_torch import build_pyramid_torch, image_tensor

        device = self.descriptor.device
        t0 = time.perf_counter()
        image = image_tensor(gray, device)
        pyramid = build_pyramid_torch(image)
        detections = self.frames.detect_torch(image, gray, mask, pyramid)
        _sync(device)
        t1 = time.perf_counter()
        features = self._describe_torch(image, detections, gray.shape[:2], pyramid)
        features.timings = {"detect": t1 - t0, **features.timings}
        return features

    def load(self, image: ImageLike | WorkingImage) -> WorkingImage:
        """The image (path, array or already loaded) at this pipeline's working resolution (``max_side``)."""
        return load_working(image, self.config.max_side)

    def extract(self, image: ImageLike | WorkingImage, mask: np.ndarray | None = None) -> Features:
        """Detect and describe: image (path, array or :class:`WorkingImage`) -> :class:`Features`.

        ``mask`` (H, W) of the original image (nonzero: detect there)."""
        t0 = time.perf_counter()
        work = self.load(image)
        gray = work.gray
        t1 = time.perf_counter()
        if self.path == "torch":
            features = self._extract_torch(gray, work.mask(mask)).in_original(work)
            features.timings = {"load": t1 - t0, **features.timings}
            return features
        pyramid = build_pyramid(gray)
        detections = self.frames(gray, work.mask(mask), pyramid=pyramid)
        t2 = time.perf_counter()
        features = self.describe_frames(gray, detections, pyramid=pyramid).in_original(work)
        features.timings = {"load": t1 - t0, "detect": t2 - t1, **features.timings}
        return features

    def tentatives(self, f1: Features, f2: Features) -> Matches:
        """Tentative correspondences of two described images: the configured matcher (FGINN's radius in
        image 2's working pixels), then duplicates merged (``duplicate_radius``, in original pixels)."""
        c = self.config
        tentative: Matches = match(f1.descriptors, f2.descriptors, c.matcher, c.ratio,
                                   points2=laflib.centers(f2.working_lafs()), fginn_radius=c.fginn_radius)
        if c.duplicate_radius > 0:
            tentative = tentative.subset(unique_correspondences(f1.points[tentative.pairs[:, 0]],
                                                                f2.points[tentative.pairs[:, 1]], tentative.ratios,
                                                                c.duplicate_radius))
        return tentative

    def match_features(self, f1: Features, f2: Features, cameras: tuple[Camera, Camera] | None = None) -> PairResult:
        """Match and verify two described images.

        Geometry essential: ``cameras`` (default: the configured ``intrinsics``, else the prior for
        the images' shapes) give K1, K2; the pose is estimated from the ORIGINAL-pixel points and
        accepted through its F in working pixels, ``(W2 K2)^-T E (W1 K1)^-1``.

        Every preset merges duplicate correspondences before RANSAC (``duplicate_radius``; ``matches``
        are then the de-duplicated tentative matches) and, with ``accept_checks``, accepts the
        model only when it passes :func:`hardmatch.geometry.acceptance.accept` (LAF consistency, homography
        sanity, ``min_inliers`` distinct inliers); ``inliers`` are then those that pass the LAF check.
        RANSAC runs ``ransac_attempts`` times (seeds ``seed``, ``seed + 1``, ...): the accepted model
        with the most inliers wins; when none is accepted, the first run's reason is reported.
        """
        c = self.config
        lafs1, lafs2 = f1.working_lafs(), f2.working_lafs()  # matching and RANSAC in working pixels
        t0 = time.perf_counter()
        tentative = self.tentatives(f1, f2)
        t1 = time.perf_counter()
        index1, index2 = tentative.pairs[:, 0], tentative.pairs[:, 1]
        pts1 = f1.points[index1].astype(np.float64)  # reported in original pixels
        pts2 = f2.points[index2].astype(np.float64)
        lafs1, lafs2 = lafs1[index1], lafs2[index2]  # RANSAC and acceptance in working pixels
        work1, work2 = laflib.centers(lafs1).astype(np.float64), laflib.centers(lafs2).astype(np.float64)
        reason = "" if len(f1) and len(f2) else f"no features found (image1: {len(f1)}, image2: {len(f2)})"
        essential = c.geometry == "essential"
        extra = {}
        if essential:  # pose from original pixels and cameras; acceptance through F in working pixels
            cameras = cameras or resolve_pair(c.intrinsics, None, None, (None, None), (f1.image_shape, f2.image_shape))
            extra = {"pts1": pts1, "pts2": pts2, "cameras": (cameras[0].K, cameras[1].K),
                     "to_working": tuple(np.eye(3) if f.to_working is None else f.to_working for f in (f1, f2))}
        found = (SearchedModel(None, np.zeros(len(tentative), dtype=bool), reason) if reason else
                 search_model(work1, work2, lafs1, lafs2, c.stage(RansacConf), c.stage(AcceptanceConf),
                              c.magnification, **extra))
        model, inliers, reason, pose = found.model, found.inliers, found.reason, (found.R, found.t)
        t2 = time.perf_counter()
        if model is not None and not essential and (f1.to_working is not None or f2.to_working is not None):
            model = model_to_original(model, c.geometry, f1.to_working, f2.to_working)
        timings = {}
        for name, features in (("1", f1), ("2", f2)):
            for stage, seconds in features.timings.items():
                timings[f"{stage}{name}"] = seconds
        timings.update({"match": t1 - t0, "verify": t2 - t1})
        result = PairResult(c.geometry, model, tentative.pairs, pts1, pts2, inliers, (len(f1), len(f2)), timings, c,
                            f1, f2, reason, fallbacks=list(self.frames.fallbacks))
        if essential:
            result.R, result.t = pose
            result.K1, result.K2 = cameras[0].K, cameras[1].K
            result.intrinsics_source = (cameras[0].source, cameras[1].source)
        result.accuracy = result_accuracy(result)
        return result

    def match_pair(self, image1: ImageLike | WorkingImage, image2: ImageLike | WorkingImage) -> PairResult:
        """Full pipeline on two images (paths or arrays), one pass.

        An ``on_demand`` configuration (``wide``) runs MODS steps, which live above this class:
        use :func:`hardmatch.twoview.api.build_matcher` (or ``hardmatch.match_pair``) for it."""
        if self.config.on_demand:
            raise HardmatchError("on_demand (MODS) configurations match through hardmatch.build_matcher(config)"
                                 ".match_pair or hardmatch.match_pair, not Pipeline.match_pair")
        t0 = time.perf_counter()
        f1 = self.extract(image1)
        f2 = self.extract(image2)
        cameras = None
        if self.config.geometry == "essential":  # given intrinsics, else EXIF of image files, else the prior
            cameras = resolve_pair(self.config.intrinsics, None, None, (image1, image2),
                                   (f1.image_shape, f2.image_shape))
        result = self.match_features(f1, f2, cameras)  # features, points and model in original pixels
        result.timings["total"] = time.perf_counter() - t0
        return result
