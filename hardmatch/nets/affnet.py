"""AffNet (affine shape) and OriNet (orientation) networks with the official weights.

The architectures are kornia's (``kornia.feature.LAFAffNetShapeEstimator.features`` and
``kornia.feature.OriNet``), whose state_dicts the official files fit; weights come through
:mod:`hardmatch.nets.weights` (cached under ``$TORCH_HOME/hub/checkpoints``, ``weights_only=True``,
sha256-checked). Both take 32x32 patches, normalise each by its own mean and std, and run on
CPU in float32 batches through :class:`~hardmatch.nets.runner.PatchNetRunner` (ONNX Runtime when installed),
or on ``device`` (the torch path: patch tensors there in, numpy out).
"""

from __future__ import annotations

import os

import numpy as np
import torch

from ..core.errors import WeightsError
from .hardnet import normalize_patches
from .runner import PatchNetRunner
from .weights import load_state_dict


def _load_into(net: torch.nn.Module, name_or_path: str | os.PathLike, arch: str) -> torch.nn.Module:
    state, spec, path = load_state_dict(name_or_path)
    if spec is not None and spec.arch != arch:
        raise WeightsError(f"weights '{spec.name}' are for {spec.arch}, not {arch}")
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise WeightsError(f"{path}: not {arch} weights (missing {len(missing)} keys, unexpected {len(unexpected)})")
    return net.eval()


class _PatchNet(torch.nn.Sequential):
    """Per-patch mean/std normalisation (HardNet's) followed by the network body."""

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        return super().forward(normalize_patches(patches))


def _patch_net(body: torch.nn.Module, backend: str, batch_size: int, device: str = "cpu") -> PatchNetRunner:
    return PatchNetRunner(_PatchNet(*body), device=device, backend=backend, batch_size=batch_size)


class AffNet:
    """Patches (N, 1, 32, 32) -> upright shape matrices (N, 2, 2) ``[[1 + a, 0], [b, 1 + c]]``.

    The patch must be sampled through the upright frame ``U``; the new region is ``U @ S``.
    """

    def __init__(self, weights: str | os.PathLike = "affnet", batch_size: int = 256, backend: str = "auto",
                 device: str = "cpu") -> None:
        from kornia.feature import LAFAffNetShapeEstimator

        body = _load_into(LAFAffNetShapeEstimator(pretrained=False), weights, "affnet").features
        self.net = _patch_net(body, backend, batch_size, device)

    def __call__(self, patches: np.ndarray) -> np.ndarray:
        out = np.zeros((len(patches), 2, 2), np.float32)
        if len(patches):
            abc = self.net(patches).reshape(-1, 3)
            out[:, 0, 0] = 1.0 + abc[:, 0]
            out[:, 1, 0] = abc[:, 1]
            out[:, 1, 1] = 1.0 + abc[:, 2]
        return out


class OriNet:
    """Patches (N, 1, 32, 32) -> angle (N,) in degrees, OpenCV sense, of the patch's canonical x axis.

    Turning the frame by this angle (:func:`hardmatch.core.laf.rotate`) gives the oriented frame.
    """

    def __init__(self, weights: str | os.PathLike = "orinet", batch_size: int = 256, backend: str = "auto",
                 device: str = "cpu") -> None:
        from kornia.feature import OriNet as KorniaOriNet

        body = _load_into(KorniaOriNet(pretrained=False), weights, "orinet").features
        self.net = _patch_net(body, backend, batch_size, device)

    def __call__(self, patches: np.ndarray) -> np.ndarray:
        if len(patches) == 0:
            return np.zeros(0, np.float32)
        xy = self.net(patches).reshape(-1, 2)
        # kornia reads atan2(xy0, xy1) as its orientation, which is the negative of ours
        return -np.rad2deg(np.arctan2(xy[:, 0], xy[:, 1])).astype(np.float32)
