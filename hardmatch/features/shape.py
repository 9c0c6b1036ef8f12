"""Affine shape estimation: turn frames into ellipses that follow the local affine deformation.

Both estimators take frames (N, 2, 3) and return upright frames (orientation 0, see
:func:`hardmatch.core.laf.make_upright`) with the same centres and radii, plus a keep mask; an
orientation estimator runs afterwards. Patches are cut with :func:`hardmatch.features.patches.extract_patches`
from a shared pyramid.

- :class:`BaumbergShape`: the classical iteration (Baumberg 2000; Mikolajczyk & Schmid 2004):
  measure the second-moment matrix ``M`` of the gradients in the normalised patch, update
  ``U <- U M^{-1/2}``, repeat until ``M`` is isotropic.
- :class:`AffNetShape`: one pass of AffNet (Mishkin et al. 2018) on the patch of the upright frame.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ..core import laf as laflib
from ..core.lazytorch import is_tensor
from .patches import extract_patches, gaussian_window

if TYPE_CHECKING:
    import torch

#: Frames more elongated than this are dropped (degenerate, edge-like regions).
MAX_ANISOTROPY = 6.0
SHAPES = ("none", "baumberg", "affnet")


def second_moments(patches, window_sigma: float | None = None) -> np.ndarray:
    """Gaussian-weighted second-moment matrices (N, 2, 2) of patch gradients, patches (N, 1, P, P).

    Patch tensors (the device path) are filtered on their device; the (N, 2, 2) result is numpy."""
    if is_tensor(patches):
        return _second_moments_torch(patches, window_sigma)
    n, _, p, _ = patches.shape
    if n == 0:
        return np.zeros((0, 2, 2), np.float32)
    window = gaussian_window(p, window_sigma or p / 6.0)
    window /= window.sum()
    flat = patches.reshape(n * p, p)  # stack patches vertically: one filter call for all of them
    smooth = cv2.GaussianBlur(flat, (0, 0), 1.0)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3, scale=0.125).reshape(n, p, p)
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3, scale=0.125).reshape(n, p, p)
    # rows at patch seams mix neighbours; the window's weight there is ~0
    mxx = np.einsum("nij,ij->n", gx * gx, window)
    mxy = np.einsum("nij,ij->n", gx * gy, window)
    myy = np.einsum("nij,ij->n", gy * gy, window)
    return np.stack([np.stack([mxx, mxy], -1), np.stack([mxy, myy], -1)], -2)


def _second_moments_torch(patches: torch.Tensor, window_sigma: float | None = None) -> np.ndarray:
    """:func:`second_moments` on the patches' device: the same blur (sigma 1, 9 taps), Sobel and window."""
    import torch
    import torch.nn.functional as F

    from .scale_space import gaussian_taps

    n, _, p, _ = patches.shape
    if n == 0:
        return np.zeros((0, 2, 2), np.float32)
    device = patches.device
    window = torch.from_numpy(gaussian_window(p, window_sigma or p / 6.0)).to(device)
    window = window / window.sum()
    g = gaussian_taps(1.0, 4).to(device, torch.float32)
    smooth = F.pad(patches.float(), (4, 4, 4, 4), mode="reflect")
    smooth = F.conv2d(F.conv2d(smooth, g.view(1, 1, 1, 9)), g.view(1, 1, 9, 1))
    ramp = torch.tensor([-1.0, 0.0, 1.0], device=device)
    tri = torch.tensor([1.0, 2.0, 1.0], device=device)
    sobel = torch.stack([torch.outer(tri, ramp), torch.outer(ramp, tri)])[:, None] * 0.125  # d/dx, d/dy
    grad = F.conv2d(F.pad(smooth, (1, 1, 1, 1), mode="reflect"), sobel)  # (N, 2, P, P)
    gx, gy = grad[:, 0], grad[:, 1]
    moments = torch.stack([(gx * gx * window).sum((1, 2)), (gx * gy * window).sum((1, 2)),
                           (gy * gy * window).sum((1, 2))], 1).cpu().numpy()
    mxx, mxy, myy = moments[:, 0], moments[:, 1], moments[:, 2]
    return np.stack([np.stack([mxx, mxy], -1), np.stack([mxy, myy], -1)], -2)


def _inverse_sqrt(m: np.ndarray) -> np.ndarray:
    """``M^{-1/2}`` (N, 2, 2) of symmetric positive matrices, scaled to determinant 1."""
    vals, vecs = np.linalg.eigh(m.astype(np.float64))
    vals = np.maximum(vals, 1e-12)
    inv_sqrt = vecs @ (vecs.transpose(0, 2, 1) / np.sqrt(vals)[:, :, None])
    return inv_sqrt / np.sqrt(np.abs(np.linalg.det(inv_sqrt)))[:, None, None]


class BaumbergShape:
    """Iterative second-moment shape adaptation, vectorised over frames.

    ``max_iters`` updates at most; a frame stops when its ``M`` eigenvalue ratio is below
    ``1 + tolerance``. Frames whose ellipse grows more elongated than :data:`MAX_ANISOTROPY` are dropped.
    """

    #: patches may come from the device path (a torch image and pyramid); frames stay numpy
    device_capable = True

    def __init__(self, max_iters: int = 8, tolerance: float = 0.05) -> None:
        self.max_iters = max_iters
        self.tolerance = tolerance

    def __call__(self, image: np.ndarray, lafs: np.ndarray, pyramid=None) -> tuple[np.ndarray, np.ndarray]:
        """Frames (N, 2, 3) -> (upright adapted frames (N, 2, 3), keep mask (N,) bool)."""
        radii = laflib.radius(lafs)
        current = laflib.make_upright(lafs).astype(np.float64)
        active = np.arange(len(lafs))
        keep = np.ones(len(lafs), bool)
        for _ in range(self.max_iters):
            if len(active) == 0:
                break
            patches = extract_patches(image, current[active].astype(np.float32), pyramid=pyramid)
            m = second_moments(patches)
            vals = np.linalg.eigvalsh(m.astype(np.float64))
            converged = vals[:, 1] <= (1.0 + self.tolerance) * np.maximum(vals[:, 0], 1e-12)
            flat = vals[:, 1] <= 1e-10
            update = ~converged & ~flat
            idx = active[update]
            current[idx, :, :2] = current[idx, :, :2] @ _inverse_sqrt(m[update])
            current[idx] = laflib.make_upright(laflib.set_radius(current[idx], radii[idx]))
            elongated = laflib.anisotropy(current[idx]) > MAX_ANISOTROPY
            keep[idx[elongated]] = False
            active = idx[~elongated]
        return current.astype(np.float32), keep


class AffNetShape:
    """AffNet shape of each frame (one pass, as in the AffNet paper's HesAffNet)."""

    #: patches may come from the device path (a torch image and pyramid); frames stay numpy
    device_capable = True

    def __init__(self, weights: str | os.PathLike = "affnet", device: str = "cpu") -> None:
        from ..nets.affnet import AffNet

        self.net = AffNet(weights, device=device)

    def __call__(self, image: np.ndarray, lafs: np.ndarray, pyramid=None) -> tuple[np.ndarray, np.ndarray]:
        """Frames (N, 2, 3) -> (upright frames (N, 2, 3) with AffNet's shape, keep mask (N,) bool)."""
        radii = laflib.radius(lafs)
        upright = laflib.make_upright(lafs)
        shapes = self.net(extract_patches(image, upright, pyramid=pyramid))
        out = upright.astype(np.float64)
        out[:, :, :2] = out[:, :, :2] @ shapes
        ok = np.isfinite(out).all(axis=(1, 2)) & (np.linalg.det(out[:, :, :2]) > 1e-9)
        out[~ok] = upright[~ok]
        out = laflib.make_upright(laflib.set_radius(out.astype(np.float32), radii))
        keep = laflib.anisotropy(out) <= MAX_ANISOTROPY
        return out, keep


def make_shape_estimator(name: str, device: str = "cpu"):
    """``none`` -> None, ``baumberg`` -> :class:`BaumbergShape`, ``affnet`` -> :class:`AffNetShape` (its net on
    ``device``)."""
    if name == "none":
        return None
    if name == "baumberg":
        return BaumbergShape()
    if name == "affnet":
        return AffNetShape(device=device)
    raise ValueError(f"unknown affine shape {name!r}; known: {', '.join(SHAPES)}")
