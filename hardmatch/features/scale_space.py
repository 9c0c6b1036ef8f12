"""Gaussian scale space on the device: one octave's levels from one batched separable convolution.

Used by the device path of the detectors (:mod:`hardmatch.features.dog`). Tensors (1, 1, h, w)
float32 on any device; borders are reflected (reflect-101, OpenCV's default). Two ``conv2d``
launches per octave whatever the number of levels: the rows pass has one output channel per
level, the columns pass is grouped, so the levels never go through Python one by one.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_taps(sigma: float, radius: int) -> torch.Tensor:
    """Normalised 1-D Gaussian (2 * radius + 1,) float64; ``sigma <= 0`` gives a unit impulse."""
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    if sigma <= 0:
        return (x == 0).double()
    g = torch.exp(-0.5 * (x / sigma) ** 2)
    return g / g.sum()


def blur_stack(image: torch.Tensor, sigmas: list[float], truncate: float = 4.0) -> torch.Tensor:
    """``image`` (1, 1, h, w) blurred by each of ``sigmas`` (extra blur, px; 0: a copy) -> (1, S, h, w).

    Kernels are cut at ``truncate`` sigma (OpenCV's GaussianBlur uses 4 for float images); the
    radius is capped so that the reflected border stays inside the image.
    """
    h, w = image.shape[-2:]
    radius = max(1, int(math.ceil(truncate * max(sigmas))))
    radius = min(radius, h - 1, w - 1)
    taps = torch.stack([gaussian_taps(s, radius) for s in sigmas]).to(image.device, torch.float32)  # (S, K)
    padded = F.pad(image, (radius, radius, radius, radius), mode="reflect")
    rows = F.conv2d(padded, taps[:, None, None, :])  # (1, S, h + 2r, w)
    return F.conv2d(rows, taps[:, None, :, None], groups=len(sigmas))  # (1, S, h, w)
