"""The device path of :mod:`hardmatch.features.patches`: the same pyramid, level choice and long-axis taps
with torch tensors on any device (``F.conv2d`` for ``pyrDown``'s kernel, ``F.grid_sample`` for the
bilinear samples); agrees with the OpenCV path to float rounding (``tests/test_patches.py``)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .patch_geometry import PATCH_SIZE, patch_grid

_PYRDOWN_TAPS = (1.0, 4.0, 6.0, 4.0, 1.0)


def image_tensor(image: np.ndarray | torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """A gray image (H, W) (numpy or tensor, any dtype) as a float32 tensor (H, W) on ``device``, 0..255 kept."""
    if isinstance(image, np.ndarray):
        image = torch.from_numpy(np.ascontiguousarray(image))
    return image.to(device=device, non_blocking=True).float()


def pyr_down_torch(level: torch.Tensor) -> torch.Tensor:
    """``cv2.pyrDown`` of a (1, 1, H, W) float tensor: 5-tap binomial blur, reflect-101 border, even pixels.

    -> (1, 1, ceil(H/2), ceil(W/2)).
    """
    kernel = torch.tensor(_PYRDOWN_TAPS, dtype=level.dtype, device=level.device) / 16.0
    padded = F.pad(level, (2, 2, 2, 2), mode="reflect")
    blurred = F.conv2d(F.conv2d(padded, kernel.view(1, 1, 1, 5)), kernel.view(1, 1, 5, 1))
    return blurred[:, :, ::2, ::2]


def build_pyramid_torch(image: torch.Tensor, min_side: int = 16) -> list[torch.Tensor]:
    """:func:`build_pyramid` on the device: image (H, W) tensor -> levels (1, 1, h_l, w_l) float32."""
    level = image.float().reshape(1, 1, *image.shape[-2:])
    pyramid = [level]
    while min(level.shape[-2:]) >= 2 * min_side:
        level = pyr_down_torch(level)
        pyramid.append(level)
    return pyramid


def frame_axes_torch(lafs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Singular values of each frame's 2x2 shape in closed form: (s_max (N,), s_min (N,), long axis (N, 2) unit).

    Computed in float64 (as the CPU path's SVD) so that level and tap choices agree.
    """
    a = lafs[:, :, :2].double()
    p = (a[:, 0] * a[:, 0]).sum(1)  # A A^T = [[p, q], [q, r]]
    r = (a[:, 1] * a[:, 1]).sum(1)
    q = (a[:, 0] * a[:, 1]).sum(1)
    half_gap = torch.sqrt(0.25 * (p - r) ** 2 + q * q)
    big = 0.5 * (p + r) + half_gap
    small = (0.5 * (p + r) - half_gap).clamp_min(0)
    # eigenvector of the larger eigenvalue: (q, big - p) or (big - r, q), whichever is longer
    v1 = torch.stack([q, big - p], 1)
    v2 = torch.stack([big - r, q], 1)
    axis = torch.where((v1.norm(dim=1) >= v2.norm(dim=1))[:, None], v1, v2)
    axis = torch.where(axis.norm(dim=1, keepdim=True) > 0, axis, torch.tensor([1.0, 0.0], dtype=axis.dtype,
                                                                              device=axis.device))
    return big.sqrt(), small.sqrt(), axis / axis.norm(dim=1, keepdim=True)


def select_levels_torch(lafs: torch.Tensor, num_levels: int, patch_size: int = PATCH_SIZE) -> torch.Tensor:
    """:func:`select_levels` on the device: frames (N, 2, 3) -> level (N,) int64."""
    _, s_min, _ = frame_axes_torch(lafs)
    spacing = 2.0 * s_min / patch_size
    return torch.floor(torch.log2(spacing.clamp_min(1e-6)) + 0.5).long().clamp(0, num_levels - 1)


def extract_patches_torch(image: torch.Tensor, lafs: torch.Tensor, patch_size: int = PATCH_SIZE,
                          pyramid: list[torch.Tensor] | None = None, anisotropic: bool = True,
                          max_taps: int = 7) -> torch.Tensor:
    """:func:`extract_patches` on the device. ``image`` (H, W) tensor, ``lafs`` (N, 2, 3) -> (N, 1, P, P) float32.

    Everything stays on ``image``'s device; ``pyramid`` from :func:`build_pyramid_torch` may be reused.
    One ``grid_sample`` per (pyramid level, tap count) group present.
    """
    device = image.device
    lafs = lafs.to(device=device, dtype=torch.float32).reshape(-1, 2, 3)
    n = lafs.shape[0]
    out = torch.zeros((n, 1, patch_size, patch_size), dtype=torch.float32, device=device)
    if n == 0:
        return out
    if pyramid is None:
        pyramid = build_pyramid_torch(image)
    s_max, s_min, long_axis = frame_axes_torch(lafs)
    levels = torch.floor(torch.log2((2.0 * s_min / patch_size).clamp_min(1e-6)) + 0.5).long()
    levels = levels.clamp(0, len(pyramid) - 1)
    if anisotropic and max_taps > 1:
        taps = torch.ceil(s_max / s_min.clamp_min(1e-9) - 0.25).clamp(1, max_taps).long()
    else:
        taps = torch.ones_like(levels)
    step = ((2.0 / patch_size) * s_max[:, None] * long_axis).float()  # (N, 2): one patch pixel, long axis
    grid = torch.from_numpy(patch_grid(patch_size)).to(device)  # (P, P, 2)
    groups = torch.unique(levels * (max_taps + 1) + taps).tolist()  # one host sync
    for code in groups:
        level, num_taps = divmod(int(code), max_taps + 1)
        idx = torch.nonzero((levels == level) & (taps == num_taps)).squeeze(1)
        frames = lafs[idx] / (2.0 ** level)
        out[idx] = _sample_torch(pyramid[level], frames, grid, num_taps, step[idx] / (2.0 ** level))
    return out


def _sample_torch(level_image: torch.Tensor, frames: torch.Tensor, grid: torch.Tensor, num_taps: int,
                  step: torch.Tensor) -> torch.Tensor:
    """Bilinear (border-replicated) samples of a (1, 1, h, w) level for frames (n, 2, 3) in level pixels.

    ``step`` (n, 2): one patch-pixel step along each frame's long axis, in level pixels; ``num_taps``
    samples spread across it are averaged. -> (n, 1, P, P).
    """
    n, p = frames.shape[0], grid.shape[0]
    h, w = level_image.shape[-2:]
    points = torch.einsum("nij,abj->naib", frames[:, :, :2], grid) + frames[:, None, :, 2, None]  # (n, P, 2, P)
    points = points.permute(0, 1, 3, 2)  # (n, P, P, 2) x, y in level pixels
    fractions = (torch.arange(num_taps, device=frames.device, dtype=torch.float32) + 0.5) / num_taps - 0.5
    offsets = fractions[:, None, None] * step[None, :, :]  # (T, n, 2)
    taps = points[None] + offsets[:, :, None, None, :]  # (T, n, P, P, 2)
    scale = torch.tensor([2.0 / w, 2.0 / h], device=frames.device)
    normalised = (taps + 0.5) * scale - 1.0  # align_corners=False: pixel x has centre (2x + 1) / w - 1
    samples = F.grid_sample(level_image, normalised.reshape(1, num_taps * n * p, p, 2), mode="bilinear",
                            padding_mode="border", align_corners=False)  # (1, 1, T*n*P, P)
    return samples.reshape(num_taps, n, 1, p, p).mean(0)
