"""The two-view pipeline: detect -> patches -> HardNet -> match -> verify, in one pass.

Nothing here knows about files beyond :func:`hardmatch.io.load_working`, or about the CLI.
Matching on demand (MODS, :mod:`hardmatch.mods`) is built on this pipeline; the choice between
the two is made above both, in :mod:`hardmatch.matcher` (``build_matcher``, ``match_pair``).

Working resolution: images are detected and described at most ``max_side`` pixels on their
longest side (:class:`~hardmatch.io.WorkingImage`). :class:`Features` hold frames in ORIGINAL
image pixels plus the map to working pixels; matching and RANSAC run in working pixels (so
thresholds mean the same at any image size) and the model is mapped back:
``H = W2^-1 H_w W1``, ``F = W2^T F_w W1`` with ``W`` original -> working.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from . import laf as laflib
from .accept import accept, unique_correspondences
from .config import PipelineConfig, get_preset
from .describe import HardNetDescriptor
from .detect.base import Detections
from .essential import fundamental_from_essential
from .errors import HardmatchError
from .frames import FrameDetector
from .intrinsics import Camera, resolve_pair
from .io import ImageLike, WorkingImage, load_working
from .lazytorch import device_name, device_type, is_tensor
from .match import Matches, match
from .patches import build_pyramid, extract_patches
from .sift_describe import describe_sift
from .verify import verify

if TYPE_CHECKING:
    import torch


@dataclass
class Features:
    """Features of one image: frames (N, 2, 3), responses (N,), descriptors (N, 128) float32 unit-norm.

    ``lafs`` and ``image_shape`` are in the pixels of the image as given; ``to_working`` (3, 3) maps
    them to the working-resolution pixels the features were measured in (None: the same pixels).

    On the torch path ``descriptors`` is a tensor on the descriptor's device (matching reads it
    there); :attr:`descriptors_numpy` is always a host array.
    """

    lafs: np.ndarray
    responses: np.ndarray
    descriptors: np.ndarray
    image_shape: tuple[int, int]
    timings: dict = field(default_factory=dict)
    to_working: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.lafs)

    @property
    def points(self) -> np.ndarray:
        """Frame centres (N, 2)."""
        return laflib.centers(self.lafs)

    def working_lafs(self) -> np.ndarray:
        """Frames (N, 2, 3) in working-resolution pixels."""
        return self.lafs if self.to_working is None else laflib.transform(self.lafs, self.to_working)

    @property
    def descriptors_numpy(self) -> np.ndarray:
        """Descriptors (N, 128) float32 on the host (a copy from the device on the torch path)."""
        d = self.descriptors
        return d.detach().cpu().numpy() if is_tensor(d) else d

    def subset(self, index: np.ndarray) -> "Features":
        """The features at ``index`` (timings are not carried over)."""
        return Features(self.lafs[index], self.responses[index], self.descriptors[index], self.image_shape,
                        to_working=self.to_working)

    @staticmethod
    def concat(parts: list["Features"]) -> "Features":
        """Union of features of one image (timings are not carried over)."""
        if len(parts) == 1:
            return parts[0]
        descriptors = (_torch().cat([p.descriptors for p in parts]) if is_tensor(parts[0].descriptors)
                       else np.concatenate([p.descriptors for p in parts]))
        return Features(np.concatenate([p.lafs for p in parts]), np.concatenate([p.responses for p in parts]),
                        descriptors, parts[0].image_shape,
                        to_working=parts[0].to_working)

    def in_original(self, work: WorkingImage) -> "Features":
        """These features, measured on ``work.gray`` (frames in its pixels), in the original image's pixels."""
        if work.is_original:
            return self
        return Features(laflib.transform(self.lafs, work.to_original), self.responses, self.descriptors,
                        work.original_shape, self.timings, work.from_original)


def model_to_original(model: np.ndarray, geometry: str, to_working1: np.ndarray | None,
                      to_working2: np.ndarray | None) -> np.ndarray:
    """A model (3, 3) between working images -> between the original images (``W``: original -> working)."""
    w1 = np.eye(3) if to_working1 is None else to_working1
    w2 = np.eye(3) if to_working2 is None else to_working2
    if geometry == "homography":
        h = np.linalg.inv(w2) @ model @ w1
        return h / h[2, 2] if abs(h[2, 2]) > 1e-12 else h
    f = w2.T @ model @ w1
    return f / np.linalg.norm(f)


@dataclass
class PairResult:
    """Result of matching two images.

    ``model`` (3, 3) or None: H maps image1 -> image2; F satisfies ``x2^T F x1 = 0``; E (geometry
    essential, :mod:`hardmatch.essential`) satisfies ``x2n^T E x1n = 0`` for ``xn = K^-1 x``, with
    the pose ``R`` (3, 3), unit ``t`` (3,) (camera 1 -> camera 2: ``X2 = R X1 + t``), the cameras
    ``K1``/``K2`` (3, 3) and ``intrinsics_source`` (per image: given, EXIF ..., prior ...).
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
    fallbacks: list = field(default_factory=list)  # learned estimators replaced for want of weights (frames.Fallback)
    R: np.ndarray | None = None  # essential: rotation camera 1 -> camera 2
    t: np.ndarray | None = None  # essential: unit translation direction
    K1: np.ndarray | None = None  # essential: the cameras used
    K2: np.ndarray | None = None
    intrinsics_source: tuple = ()  # essential: where K1, K2 came from

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
        """The fundamental matrix: the model, or ``K2^-T E K1^-1`` for geometry essential."""
        if self.geometry == "essential" and self.model is not None:
            return fundamental_from_essential(self.model, self.K1, self.K2)
        return self.model if self.geometry == "fundamental" else None

    @property
    def E(self) -> np.ndarray | None:
        return self.model if self.geometry == "essential" else None

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
            "fallbacks": {f.option: f.used for f in self.fallbacks},  # e.g. {"affine": "baumberg"} instead of affnet
            "config": asdict(self.config),
            **(self._pose_dict() if self.geometry == "essential" else {}),
        }

    def _pose_dict(self) -> dict:
        """Essential: R, t, F (None without a model) and the cameras K1, K2 with their sources."""
        pose = {"R": self.R, "t": self.t, "F": self.F} if self.model is not None else dict.fromkeys("RtF")
        return {**{k: None if v is None else np.asarray(v).tolist() for k, v in {**pose, "K1": self.K1,
                                                                                "K2": self.K2}.items()},
                "intrinsics_source": list(self.intrinsics_source)}


@lru_cache(maxsize=4)
def _hardnet(weights: str, device: str, batch_size: int, backend: str, precision: str) -> HardNetDescriptor:
    return HardNetDescriptor(weights, device=device, batch_size=batch_size, backend=backend, precision=precision)


class _OpenCVSIFTDescriptor:
    """OpenCV SIFT (or RootSIFT) descriptors of the same frames, for baselines: image + frames -> (N, 128),
    frames with an affine shape described on their full affine patch (:func:`hardmatch.sift_describe.describe_sift`;
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
    c = config
    return FrameDetector(c.detector, nfeatures=c.nfeatures, affine=c.affine, orientation=c.orientation,
                         magnification=c.magnification, contrast_threshold=c.contrast_threshold,
                         fallback=c.offline_fallback,
                         device=device_name(c.device) if execution_path(c) == "torch" else "cpu")


def _torch():
    """The torch module, imported on the torch path only (:mod:`hardmatch.lazytorch`)."""
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
            from .patches_torch import build_pyramid_torch, image_tensor

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
        from .patches_torch import extract_patches_torch

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
        from .patches_torch import build_pyramid_torch, image_tensor

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

    def match_features(self, f1: Features, f2: Features, cameras: tuple[Camera, Camera] | None = None) -> PairResult:
        """Match and verify two described images.

        Geometry essential: ``cameras`` (default: the configured ``intrinsics``, else the prior for
        the images' shapes) give K1, K2; the pose is estimated from the ORIGINAL-pixel points and
        accepted through its F in working pixels, ``(W2 K2)^-T E (W1 K1)^-1``.

        Every preset merges duplicate correspondences before RANSAC (``duplicate_radius``; ``matches``
        are then the de-duplicated tentative matches) and, with ``accept_checks``, accepts the
        model only when it passes :func:`hardmatch.accept.accept` (LAF consistency, homography
        sanity, ``min_inliers`` distinct inliers); ``inliers`` are then those that pass the LAF check.
        RANSAC runs ``ransac_attempts`` times (seeds ``seed``, ``seed + 1``, ...): the accepted model
        with the most inliers wins; when none is accepted, the first run's reason is reported.
        """
        c = self.config
        lafs1, lafs2 = f1.working_lafs(), f2.working_lafs()  # matching and RANSAC in working pixels
        t0 = time.perf_counter()
        tentative: Matches = match(f1.descriptors, f2.descriptors, c.matcher, c.ratio,
                                   points2=laflib.centers(lafs2), fginn_radius=c.fginn_radius)
        if c.duplicate_radius > 0:  # duplicates are judged in original-image pixels
            tentative = tentative.subset(unique_correspondences(f1.points[tentative.pairs[:, 0]],
                                                                f2.points[tentative.pairs[:, 1]], tentative.ratios,
                                                                c.duplicate_radius))
        t1 = time.perf_counter()
        index1, index2 = tentative.pairs[:, 0], tentative.pairs[:, 1]
        pts1 = f1.points[index1].astype(np.float64)  # reported in original pixels
        pts2 = f2.points[index2].astype(np.float64)
        lafs1, lafs2 = lafs1[index1], lafs2[index2]  # RANSAC and acceptance in working pixels
        work1, work2 = laflib.centers(lafs1).astype(np.float64), laflib.centers(lafs2).astype(np.float64)
        model, inliers, reason = None, np.zeros(len(tentative), dtype=bool), ""
        if len(f1) == 0 or len(f2) == 0:
            reason = f"no features found (image1: {len(f1)}, image2: {len(f2)})"
        essential = c.geometry == "essential"
        if essential:  # pose from original pixels and cameras; acceptance through F in working pixels
            cameras = cameras or resolve_pair(c.intrinsics, None, None, (None, None), (f1.image_shape, f2.image_shape))
            w1, w2 = (np.eye(3) if f.to_working is None else f.to_working for f in (f1, f2))
            given = {"K1": cameras[0].K, "K2": cameras[1].K}
        pose = (None, None)
        for attempt in range(max(1, c.ransac_attempts) if not reason else 0):
            result = verify(pts1 if essential else work1, pts2 if essential else work2, c.geometry, c.ransac,
                            c.threshold, c.max_iters, c.confidence, c.seed + attempt, lafs1=lafs1, lafs2=lafs2,
                            laf_check=c.laf_check, magnification=c.magnification, **(given if essential else {}))
            found, kept, why = result.model, result.inliers, ""
            if found is None:
                why = f"no {c.geometry} found from {len(tentative)} tentative matches"
            elif c.accept_checks:
                checked = fundamental_from_essential(found, w1 @ given["K1"], w2 @ given["K2"]) if essential else found
                verdict = accept(c.geometry, checked, kept, work1, work2, lafs1, lafs2, c.min_inliers,
                                 max(c.duplicate_radius, 0.0))
                kept, why = verdict.inliers, verdict.reason
            elif result.num_inliers < c.min_inliers:
                why = f"only {result.num_inliers} inliers (< min_inliers {c.min_inliers})"
            if not why and (model is None or kept.sum() > inliers.sum()):
                model, inliers, reason, pose = found, kept, "", (result.R, result.t)
            elif model is None and (not reason or attempt == 0):
                reason = why
        t2 = time.perf_counter()
        if reason:
            model, pose = None, (None, None)
            inliers = np.zeros(len(tentative), dtype=bool)
        elif not essential and (f1.to_working is not None or f2.to_working is not None):
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
        return result

    def match_pair(self, image1: ImageLike | WorkingImage, image2: ImageLike | WorkingImage) -> PairResult:
        """Full pipeline on two images (paths or arrays), one pass.

        An ``on_demand`` configuration (``wide``) runs MODS steps, which live above this class:
        use :func:`hardmatch.matcher.build_matcher` (or ``hardmatch.match_pair``) for it."""
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
