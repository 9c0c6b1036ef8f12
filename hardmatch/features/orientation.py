"""Orientation of frames: dominant gradient direction or OriNet, on the frame's own patch.

Each estimator takes frames (N, 2, 3) (any shape; upright after shape estimation) and returns
them turned by the estimated angle (:func:`hardmatch.core.laf.rotate`), so that the patch's x axis
follows the image content: patches of a rotated image then agree (tested).
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from ..core import laf as laflib
from ..core.lazytorch import is_tensor
from .patches import extract_patches, gaussian_window

ORIENTATIONS = ("dominant", "orinet", "upright")
_BINS = 36


def dominant_gradient_angles(patches: np.ndarray, window_sigma: float | None = None) -> np.ndarray:
    """Angle (N,) in degrees, OpenCV sense, of the dominant gradient in each patch (N, 1, P, P).

    A 36-bin histogram of gradient directions, weighted by magnitude and a centred Gaussian
    (sigma P/6), circularly smoothed; the peak is refined by a parabola through its neighbours.
    """
    n, _, p, _ = patches.shape
    if n == 0:
        return np.zeros(0, np.float32)
    flat = patches.reshape(n * p, p).astype(np.float32)
    gx = cv2.Sobel(flat, cv2.CV_32F, 1, 0, ksize=3).reshape(n, p * p)
    gy = cv2.Sobel(flat, cv2.CV_32F, 0, 1, ksize=3).reshape(n, p * p)
    window = gaussian_window(p, window_sigma or p / 6.0).reshape(-1)
    window_border = np.ones((p, p), np.float32)  # Sobel rows at patch seams mix two patches
    window_border[[0, -1], :] = 0
    window_border[:, [0, -1]] = 0
    weight = np.hypot(gx, gy) * (window * window_border.reshape(-1))[None]
    position = (np.arctan2(gy, gx) % (2 * np.pi)) * (_BINS / (2 * np.pi))
    low = np.floor(position).astype(np.int64)
    frac = (position - low).astype(np.float32)
    rows = np.arange(n)[:, None] * _BINS
    hist = np.bincount((rows + low % _BINS).ravel(), (weight * (1 - frac)).ravel(), n * _BINS)
    hist += np.bincount((rows + (low + 1) % _BINS).ravel(), (weight * frac).ravel(), n * _BINS)
    hist = hist.reshape(n, _BINS)
    for _ in range(2):  # [1, 2, 1] twice
        hist = 0.25 * np.roll(hist, 1, 1) + 0.5 * hist + 0.25 * np.roll(hist, -1, 1)
    peak = np.argmax(hist, axis=1)
    left = hist[np.arange(n), (peak - 1) % _BINS]
    centre = hist[np.arange(n), peak]
    right = hist[np.arange(n), (peak + 1) % _BINS]
    denom = left - 2 * centre + right
    shift = np.where(np.abs(denom) > 1e-12, 0.5 * (left - right) / np.where(denom == 0, 1, denom), 0.0)
    # image y points down, so atan2(gy, gx) is already the OpenCV-sense angle of the patch direction
    return ((peak + shift) * (360.0 / _BINS)).astype(np.float32)


class DominantGradientOrientation:
    """Turn frames to their patch's dominant gradient direction (SIFT's rule, one peak per frame).

    Numpy frames in and out; with a torch ``image`` (and pyramid) the patches and the histogram
    are computed on its device (:func:`gradient_orientation_peaks_torch`)."""

    device_capable = True

    def __call__(self, image, lafs: np.ndarray, pyramid=None) -> np.ndarray:
        patches = extract_patches(image, lafs, pyramid=pyramid)
        if is_tensor(patches):
            return laflib.rotate(lafs, gradient_orientation_peaks_torch(patches)[1].cpu().numpy())
        return laflib.rotate(lafs, dominant_gradient_angles(patches))


class OriNetOrientation:
    """Turn frames by OriNet's angle for their patch (net on ``device``; patches from a torch image there)."""

    device_capable = True

    def __init__(self, weights: str | os.PathLike = "orinet", device: str = "cpu") -> None:
        from ..nets.affnet import OriNet

        self.net = OriNet(weights, device=device)

    def __call__(self, image: np.ndarray, lafs: np.ndarray, pyramid=None) -> np.ndarray:
        return laflib.rotate(lafs, self.net(extract_patches(image, lafs, pyramid=pyramid)))


def make_orienter(name: str, device: str = "cpu"):
    """``dominant`` / ``orinet`` -> an estimator; ``upright`` -> None (frames stay upright)."""
    if name == "upright":
        return None
    if name == "dominant":
        return DominantGradientOrientation()
    if name == "orinet":
        return OriNetOrientation(device=device)
    raise ValueError(f"unknown orientation {name!r}; known: {', '.join(ORIENTATIONS)}")


def gradient_orientation_peaks_torch(patches, peak_ratio: float = 1.0, window_sigma: float | None = None):
    """Device twin of :func:`dominant_gradient_angles`, optionally with SIFT's secondary peaks.

    ``patches`` (N, 1, P, P) tensor -> (frame index (M,) int64, angle (M,) float32 degrees, OpenCV
    sense), on the patches' device. Same histogram as the CPU function (3x3 Sobel gradients of the
    patch interior, Gaussian window sigma P/6, 36 bins, [1, 2, 1] smoothing twice, parabolic peak).
    ``peak_ratio`` 1.0 gives exactly one angle per frame (the CPU function's); below 1, every local
    maximum of the histogram above ``peak_ratio`` times the highest adds a frame (SIFT: 0.8).
    """
    import torch
    import torch.nn.functional as F

    n, _, p, _ = patches.shape
    device = patches.device
    if n == 0:
        return torch.zeros(0, dtype=torch.int64, device=device), torch.zeros(0, device=device)
    sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=device)
    kernels = torch.stack([sobel, sobel.T])[:, None]  # (2, 1, 3, 3): d/dx, d/dy (cross-correlation, as cv2)
    grad = F.conv2d(patches.float(), kernels)  # (N, 2, P-2, P-2): the interior, as the CPU path's weights
    gx, gy = grad[:, 0].reshape(n, -1), grad[:, 1].reshape(n, -1)
    window = torch.from_numpy(gaussian_window(p, window_sigma or p / 6.0)[1:-1, 1:-1]).to(device).reshape(-1)
    weight = torch.hypot(gx, gy) * window[None]
    position = torch.remainder(torch.atan2(gy, gx), 2 * np.pi) * (_BINS / (2 * np.pi))
    low = torch.floor(position)
    frac = position - low
    low = low.long() % _BINS
    rows = torch.arange(n, device=device)[:, None] * _BINS
    hist = torch.zeros(n * _BINS, dtype=torch.float64, device=device)
    hist.index_add_(0, (rows + low).reshape(-1), (weight * (1 - frac)).reshape(-1).double())
    hist.index_add_(0, (rows + (low + 1) % _BINS).reshape(-1), (weight * frac).reshape(-1).double())
    hist = hist.reshape(n, _BINS)
    for _ in range(2):
        hist = 0.25 * torch.roll(hist, 1, 1) + 0.5 * hist + 0.25 * torch.roll(hist, -1, 1)
    left, right = torch.roll(hist, 1, 1), torch.roll(hist, -1, 1)
    if peak_ratio >= 1.0:
        frame = torch.arange(n, device=device)
        peak = hist.argmax(1)
    else:
        top = hist.max(1, keepdim=True).values
        is_peak = (hist > left) & (hist >= right) & (hist >= peak_ratio * top)
        is_peak[torch.arange(n, device=device), hist.argmax(1)] = True  # the highest bin always counts
        frame, peak = torch.nonzero(is_peak, as_tuple=True)
    l, c, r = left[frame, peak], hist[frame, peak], right[frame, peak]
    denom = l - 2 * c + r
    shift = torch.where(denom.abs() > 1e-12, 0.5 * (l - r) / torch.where(denom == 0, torch.ones_like(denom), denom),
                        torch.zeros_like(denom))
    return frame, ((peak + shift) * (360.0 / _BINS)).float()
