"""What every detector returns: :class:`Detections`, frames plus their detector strength."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ..core.lazytorch import is_tensor

if TYPE_CHECKING:
    import torch


@dataclass
class Detections:
    """Frames found in one image.

    lafs: (N, 2, 3) float32 frames (see :mod:`hardmatch.core.laf`); responses: (N,) float32 detector
    strength (comparable only within one detector); octaves: (N,) int octave code (OpenCV's for
    DoG, the scale-space octave for Hessian, 0 for MSER; kept for ``cv2.KeyPoint`` round trips).
    On the device path the three are torch tensors on one device (:meth:`to`, :meth:`numpy`).
    """

    lafs: np.ndarray
    responses: np.ndarray
    octaves: np.ndarray

    def __len__(self) -> int:
        return len(self.lafs)

    def subset(self, index: np.ndarray) -> "Detections":
        return Detections(self.lafs[index], self.responses[index], self.octaves[index])

    def with_lafs(self, lafs: np.ndarray) -> "Detections":
        return Detections(np.asarray(lafs, np.float32), self.responses, self.octaves)

    def to(self, device: torch.device | str) -> "Detections":
        """The same detections as tensors (float32 frames and responses, int64 octaves) on ``device``."""
        import torch

        return Detections(torch.as_tensor(self.lafs, dtype=torch.float32).to(device),
                          torch.as_tensor(self.responses, dtype=torch.float32).to(device),
                          torch.as_tensor(self.octaves, dtype=torch.int64).to(device))

    def numpy(self) -> "Detections":
        """The same detections as numpy arrays (a copy to the host when they are tensors)."""
        def host(a):
            return a.detach().cpu().numpy() if is_tensor(a) else a
        return Detections(host(self.lafs).astype(np.float32), host(self.responses).astype(np.float32),
                          host(self.octaves).astype(np.int64))

    @staticmethod
    def empty() -> "Detections":
        return Detections(np.zeros((0, 2, 3), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))

    @staticmethod
    def concat(parts: list["Detections"]) -> "Detections":
        if not parts:
            return Detections.empty()
        if is_tensor(parts[0].lafs):
            import torch

            return Detections(torch.cat([p.lafs for p in parts]), torch.cat([p.responses for p in parts]),
                              torch.cat([p.octaves for p in parts]))
        return Detections(np.concatenate([p.lafs for p in parts]).astype(np.float32),
                          np.concatenate([p.responses for p in parts]).astype(np.float32),
                          np.concatenate([p.octaves for p in parts]).astype(np.int64))


class Detector(Protocol):
    """A detector: uint8 (H, W) image (+ optional uint8 mask) -> :class:`Detections`, strongest first."""

    def __call__(self, image: np.ndarray, mask: np.ndarray | None = None) -> Detections: ...


def strongest(detections: Detections, nfeatures: int) -> Detections:
    """Sort by response, strongest first, and keep ``nfeatures`` (0: all)."""
    order = np.argsort(-detections.responses, kind="stable")
    if nfeatures > 0:
        order = order[:nfeatures]
    return detections.subset(order)


def apply_mask(detections: Detections, mask: np.ndarray | None) -> Detections:
    """Drop frames whose centre falls where ``mask`` (H, W) is zero."""
    if mask is None or len(detections) == 0:
        return detections
    h, w = mask.shape[:2]
    xy = np.rint(detections.lafs[:, :, 2]).astype(np.int64)
    x, y = np.clip(xy[:, 0], 0, w - 1), np.clip(xy[:, 1], 0, h - 1)
    return detections.subset(np.nonzero(mask[y, x] > 0)[0])
