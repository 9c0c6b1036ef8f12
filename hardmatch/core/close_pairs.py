"""All pairs of 2-D points within a radius, in pure numpy.

Exists so that the matching path (duplicate filters in :mod:`hardmatch.geometry.acceptance` and
:func:`hardmatch.core.laf.unique`) does not import ``scipy.spatial``: that import alone costs
0.2-0.45 s per process, which the ``hardmatch pair`` CLI pays on every run. :func:`close_pairs`
gives the same set of pairs as ``scipy.spatial.cKDTree(points).query_pairs(r=radius,
output_type="ndarray")`` (Euclidean distance <= radius), with rows sorted.

Method: a uniform grid hash with cells at least ``radius`` wide, so a point's partners lie in its
own cell or one of the 8 around it. Each point is compared with the later points of its own cell
and with the points of 4 "forward" neighbour cells, which produces every unordered pair once;
everything is vectorised (argsort + searchsorted + repeat), with no Python loop over points.
"""

from __future__ import annotations

import numpy as np

__all__ = ["close_pairs"]

#: Cells are this much wider than ``radius``, so rounding in the cell computation can never put
#: two points within ``radius`` more than one cell apart.
_CELL_MARGIN = 1e-6

#: At most this many cells along an axis (cells grow when the points' span needs it), which keeps
#: the int64 cell key far from overflow and rounding well below the margin.
_MAX_CELLS = 2 ** 28

#: Neighbour cells (dx, dy) searched besides the point's own cell: each unordered pair of
#: adjacent cells is visited from exactly one side.
_FORWARD = ((1, 0), (-1, 1), (0, 1), (1, 1))

_EMPTY = np.empty((0, 2), np.int64)


def close_pairs(points: np.ndarray, radius: float) -> np.ndarray:
    """Index pairs (P, 2) int64 of the points (N, 2) that are at most ``radius`` apart.

    Every row is ``(i, j)`` with ``i < j`` and ``||points[i] - points[j]|| <= radius``
    (Euclidean), the rows sorted by ``i`` then ``j``. Same pairs as
    ``cKDTree(points).query_pairs(r=radius)``. Points are compared in float64 (float32 input is
    converted). Points with a NaN or infinite coordinate are never paired. ``N < 2`` or
    ``radius <= 0`` (or NaN) gives an empty (0, 2) array. Identical points are all paired with
    each other, so the output can hold up to N (N - 1) / 2 rows.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        pts = pts.reshape(-1, 2)
    radius = float(radius)
    if len(pts) < 2 or not radius > 0:
        return _EMPTY.copy()
    finite = np.isfinite(pts).all(axis=1)
    index = np.nonzero(finite)[0]
    if len(index) < 2:
        return _EMPTY.copy()
    pts = pts[index]
    if radius == np.inf:
        i, j = np.triu_indices(len(index), k=1)
        return np.stack([index[i], index[j]], axis=1).astype(np.int64)

    # The grid works on halved coordinates (exact scaling) so the span cannot overflow to inf.
    half = pts * 0.5
    shifted = half - half.min(axis=0)
    cell = max(radius * 0.5 * (1.0 + _CELL_MARGIN), float(shifted.max()) / _MAX_CELLS)
    cells = np.floor(shifted / cell).astype(np.int64)  # >= 0, at most ~_MAX_CELLS
    # Column indices max+1.. are empty, so the (dx, dy) offsets never wrap into an occupied cell.
    width = int(cells[:, 0].max()) + 3
    key = cells[:, 1] * width + cells[:, 0]

    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    positions = np.arange(len(key))

    # Own cell: the points after this one in sorted order, up to the cell's end.
    starts = [positions + 1]
    ends = [np.searchsorted(sorted_key, sorted_key, side="right")]
    for dx, dy in _FORWARD:
        target = sorted_key + (dy * width + dx)
        starts.append(np.searchsorted(sorted_key, target, side="left"))
        ends.append(np.searchsorted(sorted_key, target, side="right"))
    start = np.concatenate(starts)
    count = np.concatenate(ends) - start
    first = np.tile(positions, len(starts))
    keep = count > 0
    start, count, first = start[keep], count[keep], first[keep]
    total = int(count.sum())
    if total == 0:
        return _EMPTY.copy()

    # Candidate pairs (a, b), positions in sorted order: a repeated count times, b = start..end-1.
    a = np.repeat(first, count)
    offset = np.arange(total) - np.repeat(np.cumsum(count) - count, count)
    b = np.repeat(start, count) + offset
    a, b = order[a], order[b]
    diff = pts[a] - pts[b]
    close = diff[:, 0] * diff[:, 0] + diff[:, 1] * diff[:, 1] <= radius * radius
    a, b = index[a[close]], index[b[close]]

    i = np.minimum(a, b)
    j = np.maximum(a, b)
    rows = np.argsort(i * np.int64(len(finite)) + j, kind="stable")
    return np.stack([i[rows], j[rows]], axis=1).astype(np.int64, copy=False)
