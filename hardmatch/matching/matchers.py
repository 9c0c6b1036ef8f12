"""Descriptor matching: ratio test (SNN), mutual nearest neighbour, both, and FGINN.

Descriptors are unit-norm float32 (N, D); distances are L2. The nearest neighbours are found in
blocks of rows (``block_size``, fewer when M is large: :func:`bounded_block`) so that memory stays
O(block_size * M) instead of O(N * M), and a block within :data:`MATCH_BLOCK_BYTES`.

Two backends find the k nearest neighbours, one per execution path: numpy arrays with numpy's
BLAS on the host (no torch import on the CPU path: :mod:`hardmatch.core.lazytorch`), torch tensors on
their own device (matrix products + top-k there). The tests that follow (ratio, mutual, FGINN)
run once, in numpy, on the (N, k) neighbour lists, so both paths give the same matches.

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
from typing import TYPE_CHECKING

import numpy as np

from ..core.lazytorch import is_tensor
from ..core.options import check_fields, option

if TYPE_CHECKING:
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


def _nearest_k_numpy(d1: np.ndarray, d2: np.ndarray, k: int, block_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Blocked squared-distance matrix products + k smallest per row, numpy: idx (N, k) int64, dist (N, k) float32.

    A block holds ``|b|^2 - 2 a.b`` (the row's ``|a|^2`` does not change the order; it is added to
    the k picked values only), written into one buffer reused by every block instead of a fresh
    product per block.
    """
    d1 = np.ascontiguousarray(d1, dtype=np.float32)
    d2 = np.ascontiguousarray(d2, dtype=np.float32)
    n, m = len(d1), len(d2)
    idx = np.full((n, k), -1, dtype=np.int64)
    dist = np.full((n, k), np.inf, dtype=np.float32)
    if n == 0 or m == 0:
        return idx, dist
    kk = min(k, m)
    sq2 = np.einsum("ij,ij->i", d2, d2)
    minus_two_d2t = (-2.0 * d2).T
    buffer = np.empty((min(block_size, n), m), dtype=np.float32)
    for start in range(0, n, block_size):
        block = d1[start:start + block_size]
        rows = np.arange(len(block))
        sq = np.matmul(block, minus_two_d2t, out=buffer[:len(block)])  # (b, M)
        sq += sq2[None, :]
        if kk <= 3:  # repeated argmin: about 2x faster than a selection for the usual k = 2
            for column in range(kk):
                nearest = sq.argmin(axis=1)
                idx[start + rows, column] = nearest
                dist[start + rows, column] = sq[rows, nearest]
                sq[rows, nearest] = np.inf
        else:
            idx[start + rows, :kk], dist[start + rows, :kk] = smallest_k(sq, kk)
        dist[start + rows, :kk] += np.einsum("ij,ij->i", block, block)[:, None]
    found = idx >= 0
    dist[found] = np.sqrt(np.maximum(dist[found], 0.0))
    return idx, dist


def smallest_k(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` smallest entries of each row of ``values`` (n, m), m >= k, in ascending order:
    column indices (n, k) int64 and values (n, k); ties go to the lower column.

    Split a row into 4k runs of columns: the k-th smallest of the run minima is at least the row's
    k-th smallest value, so only the entries up to it (about 30 per row of 28k distances) are sorted.
    ``np.argpartition`` along rows took 4.0 s for a 2048 x 28k block of a dense-view pair, this 0.25 s.
    """
    n, m = values.shape
    runs = min(m, 4 * k)
    starts = np.linspace(0, m, runs + 1)[:-1].astype(np.intp)
    bound = np.partition(np.minimum.reduceat(values, starts, axis=1), k - 1, axis=1)[:, k - 1]
    # a flat index and divmod: np.nonzero on the 2-D mask was 14x slower (35 ms for 75 x 222k)
    rows, cols = np.divmod(np.flatnonzero(values <= bound[:, None]), m)
    picked = values[rows, cols]
    order = np.lexsort((cols, picked, rows))  # by row, then value, then column
    rows, cols, picked = rows[order], cols[order], picked[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows, np.arange(n))[rows]
    keep = rank < k
    short = np.bincount(rows[keep], minlength=n) < k  # a row with NaN entries may lack candidates
    keep &= ~short[rows]
    idx = np.empty((n, k), np.int64)
    out = np.empty((n, k), values.dtype)
    idx[~short], out[~short] = cols[keep].reshape(-1, k), picked[keep].reshape(-1, k)
    if short.any():  # those rows in full (NaN sorts last)
        idx[short] = np.argsort(values[short], axis=1, kind="stable")[:, :k]
        out[short] = np.take_along_axis(values[short], idx[short], axis=1)
    return idx, out


def _nearest_k_tensor(d1: torch.Tensor, d2: torch.Tensor, k: int, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Blocked squared-distance matrix products + top-k on the tensors' device: idx (N, k) int64, dist (N, k)."""
    import torch

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


def _as_tensor(desc, device) -> torch.Tensor:
    import torch

    if isinstance(desc, np.ndarray):
        desc = torch.from_numpy(np.ascontiguousarray(desc))
    return desc.to(device=device, dtype=torch.float32)


def _host(values) -> np.ndarray:
    return values.detach().cpu().numpy() if is_tensor(values) else np.asarray(values)


def nearest_k(desc1, desc2, k: int = 2, block_size: int = 4096):
    """For each row of desc1 (N, D): indices (N, k) and L2 distances (N, k) of its k nearest rows of desc2 (M, D).

    Columns beyond M are reported at index -1 and distance inf. numpy in -> numpy out (numpy's
    BLAS); torch tensors in (either one) -> tensors out, computed on the tensor's device.
    """
    block_size = bounded_block(block_size, len(desc2))
    for d in (desc1, desc2):
        if is_tensor(d):
            return _nearest_k_tensor(_as_tensor(desc1, d.device), _as_tensor(desc2, d.device), k, block_size)
    return _nearest_k_numpy(desc1, desc2, k, block_size)


#: Bytes of one block of the (rows, M) distance matrix at most: a block and its temporaries stay
#: within a few times this. MODS's dense view steps match 100-300k features per image; 4096 rows
#: against 200k columns was a 3.3 GB block (a 15 GB process, killed, on a 24 GB machine). 64 MB
#: blocks find the 10 nearest of a 10k x 28k dense-view pair as fast as 256 MB ones (1.1 s) with a
#: quarter of the memory, and a process's first touch of fresh memory is slow on some virtual
#: machines (4-7 s per GB on the 2-core dev machine).
MATCH_BLOCK_BYTES = 64 * 2 ** 20


def bounded_block(block_size: int, num_columns: int) -> int:
    """``block_size`` rows, fewer when a block of ``num_columns`` float32 distances would pass
    :data:`MATCH_BLOCK_BYTES` (at least 16 rows). The neighbours found do not depend on it."""
    return int(max(16, min(block_size, MATCH_BLOCK_BYTES // (4 * max(1, num_columns)))))


def nearest_two(desc1, desc2, block_size: int = 4096):
    """:func:`nearest_k` with k = 2: indices (N, 2), distances (N, 2)."""
    return nearest_k(desc1, desc2, 2, block_size)


def _nearest_on_host(desc1, desc2, k: int, block_size: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`nearest_k` wherever the descriptors live, the (N, k) result as numpy."""
    idx, dist = nearest_k(desc1, desc2, k, block_size)
    return _host(idx), _host(dist)


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
    idx, dist = _nearest_on_host(desc1, desc2, 2, block_size)
    back = _nearest_on_host(desc2, desc1, 1, block_size)[0][:, 0] if mutual else None
    return _select(idx, dist, ratio, mutual_with=back)


def _select(idx: np.ndarray, dist: np.ndarray, ratio: float | None, mutual_with: np.ndarray | None) -> Matches:
    """Ratio and/or mutual test on (N, 2) neighbour indices and distances -> the kept :class:`Matches`."""
    valid = idx[:, 0] >= 0
    defined = np.isfinite(dist[:, 1]) & (dist[:, 1] > 0)
    ratios = np.where(defined, dist[:, 0] / np.where(defined, dist[:, 1], np.float32(1.0)), np.float32(1.0))
    keep = valid.copy()
    if ratio is not None:
        keep &= ratios < ratio
    if mutual_with is not None:
        keep &= valid & (mutual_with[np.maximum(idx[:, 0], 0)] == np.arange(len(idx)))
    rows = np.nonzero(keep)[0]
    pairs = np.stack([rows, idx[rows, 0]], axis=1).astype(np.int64).reshape(-1, 2)
    return Matches(pairs, dist[rows, 0].astype(np.float32), ratios[rows].astype(np.float32))


def match_fginn(desc1, desc2, points2, ratio: float = DEFAULT_RATIO,
                radius: float = DEFAULT_FGINN_RADIUS, k: int = 10, mutual: bool = False,
                block_size: int = 4096) -> Matches:
    """FGINN ratio test: ``d(nn) / d(first neighbour farther than radius px from nn's keypoint)`` < ``ratio``.

    ``points2`` (M, 2) keypoint positions of desc2. Among the ``k`` nearest neighbours; when all
    of them lie within ``radius`` the k-th distance is the denominator. ``mutual`` also requires
    mutual nearest neighbours.
    """
    idx, dist = _nearest_on_host(desc1, desc2, k, block_size)
    if len(idx) and idx.shape[1] > 1:
        points2 = _host(points2).reshape(-1, 2)
        valid = idx >= 0
        near = points2[np.maximum(idx, 0)]  # (N, k, 2)
        far = (np.linalg.norm(near - near[:, :1], axis=2) > radius) & valid
        far[:, 0] = False
        has_far = far.any(1)
        column = np.where(has_far, far.argmax(1), valid.sum(1) - 1)
        second = np.take_along_axis(dist, column[:, None], axis=1)[:, 0]
        second = np.where(column > 0, second, np.float32(np.inf))
        idx, dist = idx[:, :2], np.stack([dist[:, 0], second], axis=1)
    back = _nearest_on_host(desc2, desc1, 1, block_size)[0][:, 0] if mutual else None
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


@dataclass(frozen=True)
class MatchingConf:
    """The matching stage: nearest-neighbour rule and its thresholds."""

    matcher: str = option("snn", "snn: ratio test, mnn: mutual nearest neighbour, smnn: both, fginn: ratio against "
                               "the first neighbour farther than fginn_radius px", METHODS)
    ratio: float = option(DEFAULT_RATIO, "ratio-test threshold (snn, smnn, fginn)", range="(0, 1]")
    fginn_radius: float = option(DEFAULT_FGINN_RADIUS, "fginn: neighbours closer than this (px) to the first are the "
                                                     "same point", range="[0, inf)")

    def __post_init__(self) -> None:
        check_fields(self)
