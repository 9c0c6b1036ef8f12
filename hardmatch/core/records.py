"""The records that pass between the stages and the orchestrators: one image's features, one pair's result.

:class:`Features` holds frames in ORIGINAL image pixels plus the map to working pixels (matching and
RANSAC run in working pixels, :class:`~hardmatch.core.io.WorkingImage`); :class:`PairResult` is what
:func:`hardmatch.match_pair`, :class:`~hardmatch.twoview.pipeline.Pipeline` and
:class:`~hardmatch.twoview.on_demand.OnDemandMatcher` return. Both are plain data: nothing here runs
a stage.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from . import laf as laflib
from .io import WorkingImage
from .lazytorch import is_tensor
from .model_maps import fundamental_from_essential


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
        if is_tensor(parts[0].descriptors):
            import torch

            descriptors = torch.cat([p.descriptors for p in parts])
        else:
            descriptors = np.concatenate([p.descriptors for p in parts])
        return Features(np.concatenate([p.lafs for p in parts]), np.concatenate([p.responses for p in parts]),
                        descriptors, parts[0].image_shape,
                        to_working=parts[0].to_working)

    def in_original(self, work: WorkingImage) -> "Features":
        """These features, measured on ``work.gray`` (frames in its pixels), in the original image's pixels."""
        if work.is_original:
            return self
        return Features(laflib.transform(self.lafs, work.to_original), self.responses, self.descriptors,
                        work.original_shape, self.timings, work.from_original)



@dataclass
class PairResult:
    """Result of matching two images.

    ``model`` (3, 3) or None: H maps image1 -> image2; F satisfies ``x2^T F x1 = 0``; E (geometry
    essential, :mod:`hardmatch.geometry.essential`) satisfies ``x2n^T E x1n = 0`` for ``xn = K^-1 x``, with
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
    config: object  # the PipelineConfig (hardmatch.twoview.config) that produced it
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
    accuracy: dict | None = None  # the model's precision from its inliers (hardmatch.geometry.model_accuracy)

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
            "accuracy": self.accuracy,
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


