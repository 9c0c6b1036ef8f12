"""Descriptor matching: ratio test (SNN), mutual nearest neighbour, both, and FGINN.

Descriptors are unit-norm float32 (N, D); distances are L2. Everything runs in blocks of rows
(``block_size``) so that memory stays O(block_size * M) instead of O(N * M).

One implementation serves both execution paths: numpy descriptors are wrapped as CPU tensors,
torch tensors are matched on their own device (matrix products + top-k + the tests there); only
the kept matches are copied back, as numpy, for RANSAC.

Each matcher returns ``Matches``: ``pairs`` (K, 2) int64 indices into (desc1, desc2),
``distances`` (K,) float32 L2 distance of each match, ``ratios`` (K,) float32 first-to-second
nearest-neighbour distance ratio (1.0 where undefined).

FGINN (first geometrically inconsistent nearest neighbour, Mishkin et al. 2015): the ratio's
denominator is the nearest neighbour whose keypoint lies farther than ``radius`` pixels from
the first neighbour's, so that near-duplicate frames (several orientations of one blob, frames
from several synthesized views) do not make a good match look ambiguous.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

METHODS = ("snn", "mnn", "smnn", "fginn")

#: FGINN: neighbours closer than this (pixels, in image 2) to the first one count as the same point.
DEFAULT_FGINN_RADIUS = 10.0

#: Default SNN ratio threshold for HardNet descriptors (hardnet-synth-v2), chosen by matched pairs
#: (ground truth, never inlier counts) on homogr and confirmed on kusvod2-dev, graf and the
#: non-matching pairs: benchmarks/RESULTS.md, "Ratio threshold of the default".
DEFAULT_RATIO = 0.85


@dataclass
class Matches:
    pairs: np.ndarray
    distances: np.ndarray
    ratios: np.ndarray

    def __len__(self) -> int:
        return len(self.pairs)

    def subset(self, keep: np.ndarray) -> "Matches":
        return Matches(self.pairs[keep], self.distances[keep], self.ratios[keep])


def _as_tensor(desc: np.ndarray | torch.Tensor, device: torch.device | None = None) -> torch.Tensor:
    if isinstance(desc, np.ndarray):
        desc = torch.from_numpy(np.ascontiguousarray(desc))
    return desc.to(device=device, dtype=torch.float32)


def _device_of(*arrays) -> torch.device:
    """The device of the first tensor among ``arrays``; CPU when all are numpy."""
    for a in arrays:
        if isinstance(a, torch.Tensor):
            return a.device
    return torch.device("cpu")


def _nearest_k_tensor(d1: torch.Tensor, d2: torch.Tensor, k: int, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Blocked squared-distance matrix products + top-k on the tensors' device: idx (N, k) int64, dist (N, k)."""
    n, m = d1.shape[0], d2.shape[0]
    idx = torch.full((n, k), -1, dtype=torch.int64, device=d1.device)
    dist = torch.full((n, k), float("inf"), dtype=torch.float32, device=d1.device)
    if n == 0 or m == 0:
        return idx, dist
    kk = min(k, m)
    sq2 = (d2 * d2).sum(1)
    for start in range(0, n, block_size):
        block = d1[start:start + block_size]
        sq = (block * block).sum(1, keepdim=True) + sq2[None, :] - 2.0 * block @ d2.T
        values, indices = torch.topk(sq, kk, dim=1, largest=False)
        idx[start:start + len(block), :kk] = indices
        dist[start:start + len(block), :kk] = values.clamp_min(0).sqrt()
    return idx, dist


def nearest_k(desc1, desc2, k: int = 2, block_size: int = 4096):
    """For each row of desc1 (N, D): indices (N, k) and L2 distances (N, k) of its k nearest rows of desc2 (M, D).

    Columns beyond M are reported at index -1 and distance inf. numpy in -> numpy out; torch
    tensors in -> tensors out, computed on their device.
    """
    device = _device_of(desc1, desc2)
    idx, dist = _nearest_k_tensor(_as_tensor(desc1, device), _as_tensor(desc2, device), k, block_size)
    if isinstance(desc1, torch.Tensor) or isinstance(desc2, torch.Tensor):
        return idx, dist
    return idx.numpy(), dist.numpy()


def nearest_two(desc1, desc2, block_size: int = 4096):
    """:func:`nearest_k` with k = 2: indices (N, 2), distances (N, 2)."""
    return nearest_k(desc1, desc2, 2, block_size)


def match_snn(desc1, desc2, ratio: float = DEFAULT_RATIO, block_size: int = 4096) -> Matches:
    """Lowe's ratio test: keep i -> nn(i) when d1 / d2 < ``ratio``."""
    return _match(desc1, desc2, ratio, mutual=False, block_size=block_size)


def match_mnn(desc1, desc2, block_size: int = 4096) -> Matches:
    """Mutual nearest neighbours: i -> j when j is i's nearest and i is j's nearest."""
    return _match(desc1, desc2, None, mutual=True, block_size=block_size)


def match_smnn(desc1, desc2, ratio: float = DEFAULT_RATIO, block_size: int = 4096) -> Matches:
    """Mutual nearest neighbours that also pass the ratio test."""
    return _match(desc1, desc2, ratio, mutual=True, block_size=block_size)


def _match(desc1, desc2, ratio: float | None, mutual: bool, block_size: int) -> Matches:
    device = _device_of(desc1, desc2)
    d1, d2 = _as_tensor(desc1, device), _as_tensor(desc2, device)
    idx, dist = _nearest_k_tensor(d1, d2, 2, block_size)
    back = _nearest_k_tensor(d2, d1, 1, block_size)[0][:, 0] if mutual else None
    return _select(idx, dist, ratio, mutual_with=back)


def _select(idx: torch.Tensor, dist: torch.Tensor, ratio: float | None, mutual_with: torch.Tensor | None) -> Matches:
    """Ratio and/or mutual test on the device; only the kept matches come back to the host as numpy."""
    valid = idx[:, 0] >= 0
    defined = torch.isfinite(dist[:, 1]) & (dist[:, 1] > 0)
    ratios = torch.where(defined, dist[:, 0] / torch.where(defined, dist[:, 1], torch.ones_like(dist[:, 1])),
                         torch.ones_like(dist[:, 0]))
    keep = valid.clone()
    if ratio is not None:
        keep &= ratios < ratio
    if mutual_with is not None:
        rows = torch.arange(len(idx), device=idx.device)
        keep &= valid & (mutual_with[idx[:, 0].clamp_min(0)] == rows)
    rows = torch.nonzero(keep).squeeze(1)
    pairs = torch.stack([rows, idx[rows, 0]], dim=1)
    return Matches(pairs.cpu().numpy().astype(np.int64), dist[rows, 0].cpu().numpy().astype(np.float32),
                   ratios[rows].cpu().numpy().astype(np.float32))


def match_fginn(desc1, desc2, points2, ratio: float = DEFAULT_RATIO,
                radius: float = DEFAULT_FGINN_RADIUS, k: int = 10, mutual: bool = False,
                block_size: int = 4096) -> Matches:
    """FGINN ratio test: ``d(nn) / d(first neighbour farther than radius px from nn's keypoint)`` < ``ratio``.

    ``points2`` (M, 2) keypoint positions of desc2. Among the ``k`` nearest neighbours; when all
    of them lie within ``radius`` the k-th distance is the denominator. ``mutual`` also requires
    mutual nearest neighbours.
    """
    device = _device_of(desc1, desc2)
    d1, d2 = _as_tensor(desc1, device), _as_tensor(desc2, device)
    idx, dist = _nearest_k_tensor(d1, d2, k, block_size)
    if len(idx) and idx.shape[1] > 1:
        points2 = _as_tensor(points2, device).reshape(-1, 2)
        valid = idx >= 0
        near = points2[idx.clamp_min(0)]  # (N, k, 2)
        far = ((near - near[:, :1]).norm(dim=2) > radius) & valid
        far[:, 0] = False
        has_far = far.any(1)
        column = torch.where(has_far, far.int().argmax(1), valid.sum(1) - 1)
        second = dist.gather(1, column[:, None])[:, 0]
        second = torch.where(column > 0, second, torch.full_like(second, float("inf")))
        idx, dist = idx[:, :2], torch.stack([dist[:, 0], second], dim=1)
    back = _nearest_k_tensor(d2, d1, 1, block_size)[0][:, 0] if mutual else None
    return _select(idx[:, :2], dist[:, :2], ratio, mutual_with=back)


def match(desc1, desc2, method: str = "snn", ratio: float = DEFAULT_RATIO, block_size: int = 4096,
          points2: np.ndarray | torch.Tensor | None = None, fginn_radius: float = DEFAULT_FGINN_RADIUS) -> Matches:
    """Dispatch by name: ``snn`` (ratio test), ``mnn`` (mutual NN), ``smnn`` (both), ``fginn`` (needs ``points2``)."""
    if method == "snn":
        return match_snn(desc1, desc2, ratio, block_size)
    if method == "mnn":
        return match_mnn(desc1, desc2, block_size)
    if method == "smnn":
        return match_smnn(desc1, desc2, ratio, block_size)
    if method == "fginn":
        if points2 is None:
            raise ValueError("the fginn matcher needs the keypoint positions of the second image (points2)")
        return match_fginn(desc1, desc2, points2, ratio, fginn_radius, block_size=block_size)
    raise ValueError(f"matcher must be one of {METHODS}, got {method!r}")
