"""Descriptor matching: ratio test (SNN), mutual nearest neighbour, both, and FGINN.

Descriptors are unit-norm float32 (N, D); distances are L2. Everything runs in blocks of rows
(``block_size``) so that memory stays O(block_size * M) instead of O(N * M).

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

#: Default SNN ratio threshold for HardNet descriptors, measured on the dev sets (benchmarks/RESULTS.md):
#: 0.8, 0.85 and 0.9 match the same pairs; 0.9 keeps the most inliers.
DEFAULT_RATIO = 0.9


@dataclass
class Matches:
    pairs: np.ndarray
    distances: np.ndarray
    ratios: np.ndarray

    def __len__(self) -> int:
        return len(self.pairs)

    def subset(self, keep: np.ndarray) -> "Matches":
        return Matches(self.pairs[keep], self.distances[keep], self.ratios[keep])


def _as_tensor(desc: np.ndarray | torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(desc) if isinstance(desc, np.ndarray) else desc, dtype=torch.float32)


def nearest_k(desc1, desc2, k: int = 2, block_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """For each row of desc1 (N, D): indices (N, k) and L2 distances (N, k) of its k nearest rows of desc2 (M, D).

    Columns beyond M are reported at index -1 and distance inf.
    """
    d1, d2 = _as_tensor(desc1), _as_tensor(desc2)
    n, m = d1.shape[0], d2.shape[0]
    idx = np.full((n, k), -1, dtype=np.int64)
    dist = np.full((n, k), np.inf, dtype=np.float32)
    if n == 0 or m == 0:
        return idx, dist
    kk = min(k, m)
    sq2 = (d2 * d2).sum(1)
    for start in range(0, n, block_size):
        block = d1[start:start + block_size]
        sq = (block * block).sum(1, keepdim=True) + sq2[None, :] - 2.0 * block @ d2.T
        values, indices = torch.topk(sq, kk, dim=1, largest=False)
        idx[start:start + len(block), :kk] = indices.numpy()
        dist[start:start + len(block), :kk] = values.clamp_min(0).sqrt().numpy()
    return idx, dist


def nearest_two(desc1, desc2, block_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """:func:`nearest_k` with k = 2: indices (N, 2), distances (N, 2)."""
    return nearest_k(desc1, desc2, 2, block_size)


def match_snn(desc1, desc2, ratio: float = DEFAULT_RATIO, block_size: int = 4096) -> Matches:
    """Lowe's ratio test: keep i -> nn(i) when d1 / d2 < ``ratio``."""
    idx, dist = nearest_two(desc1, desc2, block_size)
    return _select(idx, dist, ratio, mutual_with=None)


def match_mnn(desc1, desc2, block_size: int = 4096) -> Matches:
    """Mutual nearest neighbours: i -> j when j is i's nearest and i is j's nearest."""
    idx, dist = nearest_two(desc1, desc2, block_size)
    back, _ = nearest_two(desc2, desc1, block_size)
    return _select(idx, dist, None, mutual_with=back[:, 0])


def match_smnn(desc1, desc2, ratio: float = DEFAULT_RATIO, block_size: int = 4096) -> Matches:
    """Mutual nearest neighbours that also pass the ratio test."""
    idx, dist = nearest_two(desc1, desc2, block_size)
    back, _ = nearest_two(desc2, desc1, block_size)
    return _select(idx, dist, ratio, mutual_with=back[:, 0])


def _select(idx: np.ndarray, dist: np.ndarray, ratio: float | None, mutual_with: np.ndarray | None) -> Matches:
    valid = idx[:, 0] >= 0
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(np.isfinite(dist[:, 1]) & (dist[:, 1] > 0), dist[:, 0] / dist[:, 1], 1.0).astype(np.float32)
    keep = valid.copy()
    if ratio is not None:
        keep &= ratios < ratio
    if mutual_with is not None:
        rows = np.arange(len(idx))
        keep &= valid & (mutual_with[np.clip(idx[:, 0], 0, None)] == rows)
    rows = np.nonzero(keep)[0]
    pairs = np.stack([rows, idx[rows, 0]], axis=1).astype(np.int64)
    return Matches(pairs, dist[rows, 0].astype(np.float32), ratios[rows])


def match_fginn(desc1, desc2, points2: np.ndarray, ratio: float = DEFAULT_RATIO,
                radius: float = DEFAULT_FGINN_RADIUS, k: int = 10, mutual: bool = False,
                block_size: int = 4096) -> Matches:
    """FGINN ratio test: ``d(nn) / d(first neighbour farther than radius px from nn's keypoint)`` < ``ratio``.

    ``points2`` (M, 2) keypoint positions of desc2. Among the ``k`` nearest neighbours; when all
    of them lie within ``radius`` the k-th distance is the denominator. ``mutual`` also requires
    mutual nearest neighbours.
    """
    idx, dist = nearest_k(desc1, desc2, k, block_size)
    if len(idx) and idx.shape[1] > 1:
        points2 = np.asarray(points2, dtype=np.float32).reshape(-1, 2)
        valid = idx >= 0
        near = points2[np.clip(idx, 0, None)]  # (N, k, 2)
        far = (np.linalg.norm(near - near[:, :1], axis=2) > radius) & valid
        far[:, 0] = False
        has_far = far.any(1)
        column = np.where(has_far, far.argmax(1), valid.sum(1) - 1)
        second = dist[np.arange(len(idx)), column]
        second = np.where(column > 0, second, np.inf)
        idx, dist = idx[:, :2].copy(), np.stack([dist[:, 0], second], axis=1)
    back = nearest_two(desc2, desc1, block_size)[0][:, 0] if mutual else None
    return _select(idx[:, :2], dist[:, :2], ratio, mutual_with=back)


def match(desc1, desc2, method: str = "snn", ratio: float = DEFAULT_RATIO, block_size: int = 4096,
          points2: np.ndarray | None = None, fginn_radius: float = DEFAULT_FGINN_RADIUS) -> Matches:
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
