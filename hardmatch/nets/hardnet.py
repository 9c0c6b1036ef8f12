"""HardNet: the L2Net architecture trained with the hardest-in-batch triplet margin loss.

Mishchuk, Mishkin, Radenovic, Matas, "Working hard to know your neighbor's margins: local
descriptor learning loss", NeurIPS 2017. Seven convolutions with batch norm (no affine
parameters) and ReLU, no pooling (two stride-2 convolutions), dropout before the last 8x8
convolution, L2-normalised 128-D output.

Parameter names and shapes equal ``kornia.feature.HardNet`` (``features.0.weight`` ...
``features.20.running_var``), so the official HardNet++ / HardNetLib+ checkpoints load unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

DESCRIPTOR_DIM = 128
PATCH_SIZE = 32


def _conv_bn_relu(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(c_out, affine=False), nn.ReLU()]


def normalize_patches(patches: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Zero mean, unit standard deviation per patch: (N, 1, H, W) -> (N, 1, H, W)."""
    flat = patches.reshape(patches.shape[0], -1)
    std, mean = torch.std_mean(flat, dim=1)
    return (patches - mean[:, None, None, None]) / (std[:, None, None, None] + eps)


class HardNet(nn.Module):
    """Patches (N, 1, 32, 32), any intensity range -> unit-norm descriptors (N, 128).

    Each patch is normalised by its own mean and standard deviation inside ``forward`` (as in the
    paper), so exported models include that step.
    """

    def __init__(self, dropout: float = 0.1) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *_conv_bn_relu(1, 32),
            *_conv_bn_relu(32, 32),
            *_conv_bn_relu(32, 64, stride=2),
            *_conv_bn_relu(64, 64),
            *_conv_bn_relu(64, 128, stride=2),
            *_conv_bn_relu(128, 128),
            nn.Dropout(dropout),
            nn.Conv2d(128, DESCRIPTOR_DIM, 8, bias=False),
            nn.BatchNorm2d(DESCRIPTOR_DIM, affine=False),
        )

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        if patches.ndim != 4 or patches.shape[1:] != (1, PATCH_SIZE, PATCH_SIZE):
            raise ValueError(f"HardNet expects patches of shape (N, 1, {PATCH_SIZE}, {PATCH_SIZE}), got {tuple(patches.shape)}")
        x = self.features(normalize_patches(patches))
        return F.normalize(x.reshape(x.shape[0], -1), p=2, dim=1)
