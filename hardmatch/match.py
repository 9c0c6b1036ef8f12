"""Descriptor matching: second-nearest-neighbour ratio test, mutual nearest neighbour, both.

Descriptors are unit-norm float32 (N, D); distances are L2. Everything runs in blocks of rows
(``block_size``) so that memory stays O(block_size * M) instead of O(N * M).

Each matcher returns ``Matches``: ``pairs`` (K, 2) int64 indices into (desc1, desc2),
``distances`` (K,) float32 L2 distance of each match, ``ratios`` (K,) float32 first-to-second
nearest-neighbour distance ratio (1.0 where undefined).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

METHODS = ("snn", "mnn", "smnn")

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


def nearest_two(desc1, desc2, block_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """For each row of desc1 (N, D): indices (N, 2) and distances (N, 2) of its two nearest rows of desc2 (M, D).

    With M == 1 the second neighbour is reported at index -1 and distance inf.
    """
    d1, d2 = _as_tensor(desc1), _as_tensor(desc2)
    n, m = d1.shape[0], d2.shape[0]
    idx = np.full((n, 2), -1, dtype=np.int64)
    dist = np.full((n, 2), np.inf, dtype=np.float32)
    if n == 0 or m == 0:
        return idx, dist
    k = min(2, m)
    sq2 = (d2 * d2).sum(1)
    for start in range(0, n, block_size):
        block = d1[start:start + block_size]
        sq = (block * block).sum(1, keepdim=True) + sq2[None, :] - 2.0 * block @ d2.T
        values, indices = torch.topk(sq, k, dim=1, largest=False)
        idx[start:start + len(block), :k] = indices.numpy()
        dist[start:start + len(block), :k] = values.clamp_min(0).sqrt().numpy()
    return idx, dist


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


def match(desc1, desc2, method: str = "snn", ratio: float = DEFAULT_RATIO, block_size: int = 4096) -> Matches:
    """Dispatch by name: ``snn`` (ratio test), ``mnn`` (mutual NN), ``smnn`` (both)."""
    if method == "snn":
        return match_snn(desc1, desc2, ratio, block_size)
    if method == "mnn":
        return match_mnn(desc1, desc2, block_size)
    if method == "smnn":
        return match_smnn(desc1, desc2, ratio, block_size)
    raise ValueError(f"matcher must be one of {METHODS}, got {method!r}")
