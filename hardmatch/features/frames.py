"""Local affine frames of an image: detector(s) -> affine shape -> orientation, composed from names.

``FrameDetector("hessaff", affine="affnet", orientation="orinet")`` is HesAffNet;
``FrameDetector("dog+mser")`` unites DoG and MSER frames. Detector names:

- ``dog``: OpenCV SIFT's DoG extrema. With ``affine="none"`` and ``orientation="dominant"``
  it keeps SIFT's own orientations (several per blob where SIFT finds several);
- ``hessian``: determinant-of-Hessian blobs (:mod:`hardmatch.features.hessian`);
- ``hessaff``: Hessian-affine, i.e. ``hessian`` whose shape is adapted by Baumberg's iteration
  unless ``affine`` names another estimator;
- ``mser``: MSER regions, affine by construction (``affine`` is not applied to them).

Each detector keeps its ``nfeatures`` strongest frames; the union is returned in the order the
detectors are named. Shape and orientation estimation cut patches from one shared pyramid.

With ``fallback=True`` a learned estimator whose weights cannot be had (offline and not cached)
is replaced by its classical counterpart (:data:`LEARNED_FALLBACKS`: AffNet -> Baumberg,
OriNet -> dominant gradient) and :attr:`FrameDetector.fallbacks` says so; without it the
:class:`~hardmatch.core.errors.WeightsError` stops the run.

Device path (:meth:`FrameDetector.detect_torch`, tensors on the image's device): DoG, Hessian,
and the patches and filters/nets of Baumberg, AffNet, OriNet and the dominant-gradient
orientation run there (frames, N x 6 numbers, go through the host between those stages); MSER
still runs on the host (its frames are then uploaded).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..core.errors import WeightsError
from ..core.options import check_fields, option
from .detections import Detections
from .detector_constants import DEFAULT_MAGNIFICATION
from .dog import DoGDetector
from .hessian import HessianDetector
from .mser import MSERDetector
from .orientation import ORIENTATIONS, make_orienter
from .patches import build_pyramid
from .shape import SHAPES, make_shape_estimator

if TYPE_CHECKING:
    import torch

DETECTORS = ("dog", "hessian", "hessaff", "mser")

#: Learned estimator -> the classical one that stands in when its weights cannot be loaded.
LEARNED_FALLBACKS = {"affnet": "baumberg", "orinet": "dominant"}


class Fallback(NamedTuple):
    """A learned estimator replaced for want of weights: option (affine/orientation), asked, used, why."""

    option: str
    asked: str
    used: str
    reason: str

    def notice(self) -> str:
        """One line for the user."""
        return f"{self.option} {self.asked} unavailable, using {self.used} instead ({self.reason})"


class _Stage(NamedTuple):
    """One detector with what follows it: a shape estimator (or None) and whether to orient its frames."""

    name: str
    detector: object
    shape: object
    orient: bool


def parse_detector(name: str) -> list[str]:
    """``"dog+mser"`` -> ``["dog", "mser"]``; unknown or repeated names raise ``ValueError``."""
    parts = [p.strip().lower() for p in str(name).split("+")]
    unknown = [p for p in parts if p not in DETECTORS]
    if unknown or not parts:
        raise ValueError(f"unknown detector {unknown[0] if unknown else name!r}; known: {', '.join(DETECTORS)}, "
                         f"or several joined with '+' (e.g. dog+mser)")
    if len(set(parts)) != len(parts):
        raise ValueError(f"detector {name!r} names a detector twice")
    return parts


class FrameDetector:
    """Image -> :class:`~hardmatch.features.detections.Detections` with affine shape and orientation.

    ``nfeatures`` per detector (0: all); ``affine`` one of ``none|baumberg|affnet``;
    ``orientation`` one of ``dominant|orinet|upright``; ``fallback``: replace AffNet/OriNet by
    Baumberg/dominant when their weights cannot be loaded (recorded in :attr:`fallbacks`).
    """

    def __init__(self, detector: str = "dog", nfeatures: int = 8000, affine: str = "none",
                 orientation: str = "dominant", magnification: float = 6.0, contrast_threshold: float = 0.04,
                 fallback: bool = False, device: str = "cpu") -> None:
        if affine not in SHAPES:
            raise ValueError(f"unknown affine shape {affine!r}; known: {', '.join(SHAPES)}")
        self.device = device  # where AffNet/OriNet run (the torch path's device)
        self.fallback = fallback
        self.fallbacks: list[Fallback] = []
        self.orienter = self._load("orientation", orientation, make_orienter)  # ValueError for an unknown name
        self._shapes: dict[str, object] = {}
        self.stages: list[_Stage] = []
        for name in parse_detector(detector):
            shape_name = "none" if name == "mser" else ("baumberg" if name == "hessaff" and affine == "none" else affine)
            keeps_sift_orientation = name == "dog" and shape_name == "none" and orientation == "dominant"
            if name == "dog":
                det = DoGDetector(nfeatures, contrast_threshold=contrast_threshold,
                                  upright=not keeps_sift_orientation, magnification=magnification)
            elif name in ("hessian", "hessaff"):
                det = HessianDetector(nfeatures, magnification=magnification)
            else:
                det = MSERDetector(nfeatures)
            self.stages.append(_Stage(name, det, self._shape(shape_name), not keeps_sift_orientation))

    @classmethod
    def from_conf(cls, conf: "FramesConf", device: str = "cpu") -> "FrameDetector":
        """The frame detector of a frames configuration (:class:`FramesConf`), on ``device``."""
        return cls(conf.detector, nfeatures=conf.nfeatures, affine=conf.affine, orientation=conf.orientation,
                   magnification=conf.magnification, contrast_threshold=conf.contrast_threshold,
                   fallback=conf.offline_fallback, device=device)

    def _shape(self, name: str):
        if name not in self._shapes:
            self._shapes[name] = self._load("affine", name, make_shape_estimator)
        return self._shapes[name]

    def _load(self, option: str, name: str, make):
        """``make(name, device)``, or with ``fallback`` its classical stand-in when the learned one's weights fail."""
        try:
            return make(name, self.device)
        except WeightsError as exc:
            if not self.fallback or name not in LEARNED_FALLBACKS:
                raise
            used = LEARNED_FALLBACKS[name]
            self.fallbacks.append(Fallback(option, name, used, str(exc)))
            return make(used, self.device)

    @property
    def keypoint_detector(self) -> DoGDetector | None:
        """The DoG detector when it is the only one and frames are its own (OpenCV keypoint round trip)."""
        if len(self.stages) == 1 and self.stages[0].name == "dog" and not self.stages[0].orient:
            return self.stages[0].detector
        return None

    def __call__(self, image: np.ndarray, mask: np.ndarray | None = None,
                 pyramid: list[np.ndarray] | None = None) -> Detections:
        """Frames of a uint8 (H, W) image; pass the :func:`~hardmatch.features.patches.build_pyramid` of it to reuse one."""
        parts = []
        for _, detector, shape, orient in self.stages:
            detections = detector(image, mask)
            if len(detections) and (shape is not None or orient):
                pyramid = pyramid if pyramid is not None else build_pyramid(image)
                detections = self.finish(image, detections, shape, orient, pyramid)
            parts.append(detections)
        return Detections.concat(parts)

    def finish(self, image: np.ndarray, detections: Detections, shape, orient: bool,
               pyramid: list[np.ndarray]) -> Detections:
        """Shape, then orientation, of given detections."""
        lafs = detections.lafs
        if shape is not None:
            lafs, keep = shape(image, lafs, pyramid=pyramid)
            detections = Detections(lafs[keep], detections.responses[keep], detections.octaves[keep])
            lafs = detections.lafs
        if orient and self.orienter is not None and len(lafs):
            lafs = self.orienter(image, lafs, pyramid=pyramid)
        return detections.with_lafs(lafs)

    def detect_torch(self, image: torch.Tensor, gray: np.ndarray, mask: np.ndarray | None = None,
                     pyramid: list[torch.Tensor] | None = None) -> Detections:
        """Device path of :meth:`__call__`: image (H, W) tensor (and the same uint8 ``gray`` on the host)
        -> :class:`Detections` of tensors on ``image.device``. ``pyramid``: :func:`build_pyramid_torch` of it.

        DoG and Hessian run on the device. Shape and orientation estimators marked ``device_capable``
        (Baumberg, AffNet, OriNet, dominant gradient) cut their patches and filter them or run their
        nets there too, with the frames themselves (N x 6 numbers) on the host between stages; MSER
        runs on the host.
        """
        import torch

        device = image.device
        mask_t = None if mask is None else torch.as_tensor(mask).to(device)
        host_pyramid: list = []
        parts = []
        for name, detector, shape, orient in self.stages:
            on_device = name in ("dog", "hessian", "hessaff")
            detections = detector.detect_torch(image, mask_t, pyramid=pyramid) if on_device else detector(gray, mask)
            orient = orient and self.orienter is not None
            for estimator, is_shape in ((shape, True), (self.orienter if orient else None, False)):
                if estimator is None or len(detections) == 0:
                    continue
                if getattr(estimator, "device_capable", False):
                    on, levels = image, pyramid
                else:
                    if not host_pyramid:
                        host_pyramid.extend(build_pyramid(gray))
                    on, levels = gray, host_pyramid
                detections = self.finish(on, detections.numpy(), estimator if is_shape else None, not is_shape, levels)
            parts.append(detections.to(device))
        if not parts:
            return Detections.empty().to(device)
        return Detections.concat(parts)


def _check_detector(value: str) -> None:
    parse_detector(value)  # ValueError naming the bad part


@dataclass(frozen=True)
class FramesConf:
    """The frames stage: detector(s), how many, affine shape, orientation, patch scale."""

    detector: str = option("dog", "detector(s): dog, hessian, hessaff (Hessian-affine), mser, or several joined "
                                "with '+' (e.g. dog+mser)", check=_check_detector)
    nfeatures: int = option(8000, "keep at most this many strongest features per detector and image (0: all)",
                          range="[0, inf)")
    contrast_threshold: float = option(0.03, "DoG contrast threshold (lower: more, weaker features)", range="(0, 1)")
    affine: str = option("none", "affine shape: none, baumberg (second-moment iteration) or affnet "
                               "(hessaff uses baumberg unless told otherwise; MSER regions are affine already)",
                       SHAPES)
    orientation: str = option("dominant", "orientation: dominant gradient (DoG keeps SIFT's own), orinet, or upright "
                                        "(for images without in-plane rotation)", ORIENTATIONS)
    magnification: float = option(DEFAULT_MAGNIFICATION, "patch radius = magnification * keypoint size / 2",
                                range="(0, inf)")
    offline_fallback: bool = option(False, "when AffNet/OriNet weights cannot be had (offline, not cached) use Baumberg "
                                         "shape / dominant orientation instead, with a notice (on in the affine and "
                                         "wide presets; off whenever --affine affnet or --orientation orinet is given)")

    def __post_init__(self) -> None:
        check_fields(self)
