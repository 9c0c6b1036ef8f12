"""The device path of :mod:`hardmatch.features.hessian`: the same detector in plain torch
(:func:`detect_hessian_torch`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..core import laf as laflib
from .detections import Detections
from .detector_constants import (
    DEFAULT_HESSIAN_THRESHOLD,
    DEFAULT_MAGNIFICATION,
    HESSIAN_BORDER,
)


def _doh_torch(levels: torch.Tensor, sigmas: list[float]) -> torch.Tensor:
    """:func:`_doh` of a stack (S, 1, h, w) with one 3x3 ``conv2d`` (cv2.Sobel's kernels, reflect-101) -> (S, h, w)."""
    smooth = torch.tensor([1.0, 2.0, 1.0], device=levels.device)
    second = torch.tensor([1.0, -2.0, 1.0], device=levels.device)
    first = torch.tensor([-1.0, 0.0, 1.0], device=levels.device)
    kernels = torch.stack([torch.outer(smooth, second), torch.outer(second, smooth), torch.outer(first, first)]) * 0.25
    d = F.conv2d(F.pad(levels, (1, 1, 1, 1), mode="reflect"), kernels[:, None])  # (S, 3, h, w): Lxx, Lyy, Lxy
    scale = torch.tensor(sigmas, device=levels.device, dtype=torch.float32) ** 4
    return scale[:, None, None] * (d[:, 0] * d[:, 1] - d[:, 2] * d[:, 2])


def _refine_torch(dets: torch.Tensor, layer: torch.Tensor, y: torch.Tensor, x: torch.Tensor):
    """:func:`_refine` on tensors: one Newton step -> offsets (K, 3) (x, y, level) float64, responses (K,)."""
    d = lambda dl, dy, dx: dets[layer + dl, y + dy, x + dx].double()  # noqa: E731
    c = d(0, 0, 0)
    grad = torch.stack([0.5 * (d(0, 0, 1) - d(0, 0, -1)), 0.5 * (d(0, 1, 0) - d(0, -1, 0)),
                        0.5 * (d(1, 0, 0) - d(-1, 0, 0))], 1)
    hxx, hyy, hss = (d(0, 0, 1) + d(0, 0, -1) - 2 * c, d(0, 1, 0) + d(0, -1, 0) - 2 * c,
                     d(1, 0, 0) + d(-1, 0, 0) - 2 * c)
    hxy = 0.25 * (d(0, 1, 1) - d(0, 1, -1) - d(0, -1, 1) + d(0, -1, -1))
    hxs = 0.25 * (d(1, 0, 1) - d(1, 0, -1) - d(-1, 0, 1) + d(-1, 0, -1))
    hys = 0.25 * (d(1, 1, 0) - d(1, -1, 0) - d(-1, 1, 0) + d(-1, -1, 0))
    hess = torch.stack([torch.stack([hxx, hxy, hxs], -1), torch.stack([hxy, hyy, hys], -1),
                        torch.stack([hxs, hys, hss], -1)], -2)
    solvable = torch.linalg.det(hess).abs() > 1e-12
    safe = torch.where(solvable[:, None, None], hess, torch.eye(3, dtype=hess.dtype, device=hess.device))
    offset = -torch.linalg.solve(safe, grad[..., None])[..., 0]
    offset = torch.where(solvable[:, None] & torch.isfinite(offset), offset, torch.zeros_like(offset))
    return offset, c + 0.5 * (grad * offset).sum(1)


def detect_hessian_torch(image: torch.Tensor, nfeatures: int = 8000, threshold: float = DEFAULT_HESSIAN_THRESHOLD,
                         levels_per_octave: int = 3, sigma0: float = 1.6, min_side: int = 32,
                         magnification: float = DEFAULT_MAGNIFICATION, mask=None) -> Detections:
    """:class:`HessianDetector` on a gray image tensor (H, W) (0..255): :class:`Detections` of tensors on its device.

    Per octave: one batched separable blur for all levels, one 3x3 convolution for the Hessians,
    3x3x3 maxima from separable maxima (no per-blob Python), one Newton step.
    """
    from .dog_torch import _neighbourhood_max
    from .scale_space import blur_stack

    device = image.device
    s = int(levels_per_octave)
    sigmas = [sigma0 * 2.0 ** (i / s) for i in range(s + 2)]
    extra = [0.0] + [(sig ** 2 - sigma0 ** 2) ** 0.5 for sig in sigmas[1:]]
    base = blur_stack(image.float().reshape(1, 1, *image.shape[-2:]) / 255.0, [(sigma0 ** 2 - 0.25) ** 0.5])
    centers, radii, responses, octaves = [], [], [], []
    octave = 0
    while min(base.shape[-2:]) >= min_side:
        blurred = blur_stack(base, extra)  # (1, S+2, h, w)
        dets = _doh_torch(blurred[0][:, None], sigmas)  # (S+2, h, w)
        h, w = dets.shape[-2:]
        b = HESSIAN_BORDER
        window = (slice(None), slice(b - 1, h - b - 1), slice(b - 1, w - b - 1))
        inner = dets[1:-1, b:h - b, b:w - b]
        is_max = (inner >= _neighbourhood_max(dets)[window]) & (inner > threshold)
        layer, y, x = torch.nonzero(is_max, as_tuple=True)
        layer, y, x = layer + 1, y + b, x + b
        if len(x):
            offset, value = _refine_torch(dets, layer, y, x)
            keep = (offset.abs() <= 0.75).all(1)
            factor = 2.0 ** octave  # octaves subsample even pixels: octave pixel x is input pixel x * 2**octave
            xy = torch.stack([x + offset[:, 0], y + offset[:, 1]], 1)[keep] * factor
            centers.append(xy.float())
            radii.append((magnification * sigma0 * 2.0 ** ((layer + offset[:, 2])[keep] / s) * factor).float())
            responses.append(value[keep].float())
            octaves.append(torch.full((int(keep.sum()),), octave, dtype=torch.int64, device=device))
        base = blurred[:, s:s + 1, ::2, ::2]
        octave += 1
    if not centers:
        return Detections.empty().to(device)
    centers, radii = torch.cat(centers), torch.cat(radii)
    responses, octaves = torch.cat(responses), torch.cat(octaves)
    if mask is not None:
        mh, mw = mask.shape[-2:]
        on = mask.reshape(mh, mw)[torch.round(centers[:, 1]).long().clamp(0, mh - 1),
                                  torch.round(centers[:, 0]).long().clamp(0, mw - 1)] > 0
        centers, radii, responses, octaves = centers[on], radii[on], responses[on], octaves[on]
    order = torch.argsort(responses, descending=True, stable=True)
    if nfeatures > 0:
        order = order[:nfeatures]
    return Detections(laflib.upright_torch(centers[order], radii[order]), responses[order], octaves[order])
