"""Training and validation patches from PhotoTour (Brown) and HPatches, in their native layouts.

Both sources have the interface of :class:`~hardmatch.train.synthetic.SyntheticPairs`:
``sample(n)`` -> anchors (n, 1, 32, 32) uint8, positives (n, 1, 32, 32) uint8, labels (n,) int64,
with n distinct points per batch (labels are point ids), drawn from a ``numpy.random.Generator``
seeded by the ``seed`` argument.

PhotoTour folder (liberty, notredame, yosemite): ``patches0000.bmp, patches0001.bmp, ...``
(1024x1024 gray bitmaps, a 16x16 grid of 64x64 patches read row by row), ``info.txt`` (one line
per patch: ``3Dpoint_id unused``) and ``m50_*.txt`` test pairs
(``patchID1 3DpointID1 unused1 patchID2 3DpointID2 unused2``).

HPatches-release folder: one folder per sequence holding ``ref.png, e1..e5.png, h1..h5.png,
t1..t5.png``, each a column of N 65x65 patches; row i of every file of a sequence shows one point.

Patches are resized to 32x32 with ``cv2.INTER_AREA``. Resizing a whole bitmap (1024 -> 512) or a
whole column (65 -> 32 per patch) gives exactly the per-patch result, as patch borders fall on
output pixel borders, so it is done in one call.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np

from ..core.errors import DatasetError
from ..core.io import decode_file

PATCH = 32
_BMP_SIDE, _BMP_PATCH = 1024, 64
_PER_BMP = (_BMP_SIDE // _BMP_PATCH) ** 2  # 256 patches per bitmap
HPATCHES_KINDS = ("e", "h", "t")


def _decode_gray(path: Path) -> np.ndarray:
    """Read an image file as a 2-D uint8 gray array (H, W), or raise DatasetError."""
    return decode_file(path, cv2.IMREAD_GRAYSCALE, DatasetError)


def _pick_two(rng: np.random.Generator, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two different random indices in [0, counts[k]) for each k; counts (n,) all >= 2 -> (n,), (n,)."""
    first = rng.integers(counts)
    second = (first + 1 + rng.integers(counts - 1)) % counts
    return first, second


def _check_n(n: int, available: int, what: str) -> None:
    if n < 1 or n > available:
        raise DatasetError(f"cannot draw {n} distinct points from {available} {what}")


# --------------------------------------------------------------------------------------------
# PhotoTour


class PhotoTour:
    """Pairs of patches of the same 3D point from a PhotoTour (Brown) dataset folder.

    ``sample(n)`` -> anchors (n, 1, 32, 32) uint8, positives (n, 1, 32, 32) uint8, labels (n,) int64:
    n distinct 3D points having at least 2 patches, two different patches of each; labels are the
    3D point ids. Bitmaps are decoded on first use and kept as (256, 32, 32) arrays.
    """

    def __init__(self, root, seed: int = 0) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: not a PhotoTour folder (no such directory)")
        self.point_ids = _read_info(self.root / "info.txt")  # (P,) int64, 3D point of each patch
        self.bitmaps = sorted(self.root.glob("patches[0-9]*.bmp"))
        if not self.bitmaps:
            raise DatasetError(f"{self.root}: no patches*.bmp bitmaps (not a PhotoTour folder)")
        needed = -(-len(self.point_ids) // _PER_BMP)
        if len(self.bitmaps) < needed:
            raise DatasetError(f"{self.root}: info.txt lists {len(self.point_ids)} patches, which need "
                               f"{needed} bitmaps, but only {len(self.bitmaps)} were found")
        self.rng = np.random.default_rng(seed)
        self._cache: dict[int, np.ndarray] = {}
        # patches grouped by 3D point: patch indices sorted by point id, and each point's run
        order = np.argsort(self.point_ids, kind="stable")
        ids, starts, counts = np.unique(self.point_ids[order], return_index=True, return_counts=True)
        keep = counts >= 2
        self._order = order
        self._ids, self._starts, self._counts = ids[keep], starts[keep], counts[keep]

    def __len__(self) -> int:
        """Number of patches."""
        return len(self.point_ids)

    @property
    def num_points(self) -> int:
        """Number of 3D points with at least 2 patches (those ``sample`` draws from)."""
        return len(self._ids)

    def _bitmap(self, index: int) -> np.ndarray:
        """Patches of bitmap ``index`` as (256, 32, 32) uint8."""
        if index not in self._cache:
            path = self.bitmaps[index]
            image = _decode_gray(path)
            if image.shape != (_BMP_SIDE, _BMP_SIDE):
                raise DatasetError(f"{path}: expected a {_BMP_SIDE}x{_BMP_SIDE} bitmap, got "
                                   f"{image.shape[1]}x{image.shape[0]}")
            small = cv2.resize(image, (_BMP_SIDE // 2, _BMP_SIDE // 2), interpolation=cv2.INTER_AREA)
            grid = _BMP_SIDE // _BMP_PATCH
            self._cache[index] = np.ascontiguousarray(
                small.reshape(grid, PATCH, grid, PATCH).transpose(0, 2, 1, 3).reshape(_PER_BMP, PATCH, PATCH))
        return self._cache[index]

    def patches(self, indices) -> np.ndarray:
        """Patches by index (k,) -> (k, 1, 32, 32) uint8."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise DatasetError(f"{self.root}: patch index out of range 0..{len(self) - 1}")
        out = np.empty((len(indices), 1, PATCH, PATCH), np.uint8)
        which, within = np.divmod(indices, _PER_BMP)
        for b in np.unique(which):
            sel = which == b
            out[sel, 0] = self._bitmap(int(b))[within[sel]]
        return out

    def sample(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """n pairs of distinct 3D points -> (n, 1, 32, 32) uint8, (n, 1, 32, 32) uint8, (n,) int64."""
        _check_n(n, self.num_points, "3D points with >= 2 patches")
        points = self.rng.choice(self.num_points, size=n, replace=False)
        first, second = _pick_two(self.rng, self._counts[points])
        starts = self._starts[points]
        anchors = self.patches(self._order[starts + first])
        positives = self.patches(self._order[starts + second])
        return anchors, positives, self._ids[points].astype(np.int64)


def _read_info(path: Path) -> np.ndarray:
    """3D point id of each patch from ``info.txt`` -> (P,) int64."""
    if not path.is_file():
        raise DatasetError(f"{path}: missing (not a PhotoTour folder)")
    ids = []
    with open(path, encoding="ascii", errors="replace") as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            try:
                ids.append(int(fields[0]))
            except ValueError:
                raise DatasetError(f"{path}:{number}: expected '3Dpoint_id unused', got {line.strip()[:60]!r}") from None
    if not ids:
        raise DatasetError(f"{path}: no patches listed")
    return np.asarray(ids, dtype=np.int64)


def phototour_test_pairs(root, filename: str = "m50_100000_100000_0.txt") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Test pairs of a PhotoTour folder -> patches1 (m, 1, 32, 32) uint8, patches2 (m, 1, 32, 32)
    uint8, is_match (m,) bool (True where both patches show the same 3D point)."""
    dataset = PhotoTour(root)
    path = dataset.root / filename
    if not path.is_file():
        raise DatasetError(f"{path}: missing test-pair file")
    rows = []
    with open(path, encoding="ascii", errors="replace") as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            try:
                if len(fields) < 5:
                    raise ValueError
                rows.append((int(fields[0]), int(fields[1]), int(fields[3]), int(fields[4])))
            except ValueError:
                raise DatasetError(f"{path}:{number}: expected 'patch1 point1 unused patch2 point2 unused', "
                                   f"got {line.strip()[:60]!r}") from None
    if not rows:
        raise DatasetError(f"{path}: no test pairs")
    table = np.asarray(rows, dtype=np.int64)
    return dataset.patches(table[:, 0]), dataset.patches(table[:, 2]), table[:, 1] == table[:, 3]


# --------------------------------------------------------------------------------------------
# HPatches


def read_hpatches_file(path, patch_size: int = PATCH) -> np.ndarray:
    """An HPatches patch file (a column of N square patches, width 65 or 32, height N * width)
    -> (N, 1, patch_size, patch_size) uint8, resized with INTER_AREA when the width differs.
    Colour files are converted to gray. Raises DatasetError with a one-line message."""
    path = Path(path)
    image = _decode_gray(path)
    height, width = image.shape
    if width not in (65, 32):
        raise DatasetError(f"{path}: expected an HPatches patch column of width 65 or 32, got width {width}")
    if height % width:
        raise DatasetError(f"{path}: height {height} is not a multiple of the patch width {width}")
    count = height // width
    if width != patch_size:
        image = cv2.resize(image, (patch_size, count * patch_size), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(image.reshape(count, 1, patch_size, patch_size))


class HPatchesPatches:
    """Pairs of patches of the same point from an HPatches-release folder.

    ``sample(n)`` -> anchors (n, 1, 32, 32) uint8, positives (n, 1, 32, 32) uint8, labels (n,) int64:
    n distinct (sequence, row) points; anchor and positive come from two different files of the
    point among ``ref.png`` and the files of the chosen ``kinds`` (e: easy, h: hard, t: tough).
    Label = offset of the sequence (rows of the sequences before it, sorted by name) + row.
    Files that are absent from a sequence are left out; each sequence needs ref.png and at least
    one file of the chosen kinds. Decoded files are kept in an LRU cache of ``cache_mb`` MB.
    """

    def __init__(self, root, seed: int = 0, kinds=HPATCHES_KINDS, cache_mb: float = 2048.0) -> None:
        self.root = Path(root)
        kinds = tuple(kinds)
        if not kinds or any(k not in HPATCHES_KINDS for k in kinds):
            raise DatasetError(f"HPatches kinds must be among e, h, t; got {','.join(map(str, kinds)) or 'none'}")
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: not an HPatches folder (no such directory)")
        self.sequences = sorted(p for p in self.root.iterdir() if (p / "ref.png").is_file())
        if not self.sequences:
            raise DatasetError(f"{self.root}: no HPatches sequence folders (subfolders with ref.png)")
        names = ["ref"] + [f"{k}{i}" for k in kinds for i in range(1, 6)]
        self.files: list[list[Path]] = []
        refs = []
        for seq in self.sequences:
            files = [seq / f"{name}.png" for name in names if (seq / f"{name}.png").is_file()]
            if len(files) < 2:
                raise DatasetError(f"{seq}: no {'/'.join(kinds)}*.png files besides ref.png")
            self.files.append(files)
            refs.append(read_hpatches_file(files[0]))  # ref.png sets the number of rows
        self.rows = np.asarray([len(r) for r in refs], dtype=np.int64)  # (S,) points per sequence
        self.offsets = np.concatenate([[0], np.cumsum(self.rows)])  # (S + 1,) label offsets
        self._num_files = np.asarray([len(f) for f in self.files], dtype=np.int64)  # (S,)
        self.rng = np.random.default_rng(seed)
        self._cache: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._cache_bytes, self._cache_limit = 0, int(cache_mb * 2**20)
        for seq, ref in enumerate(refs):
            self._store((seq, 0), ref)

    @property
    def num_points(self) -> int:
        """Number of (sequence, row) points."""
        return int(self.offsets[-1])

    def _file(self, seq: int, index: int) -> np.ndarray:
        """Patches of file ``index`` of sequence ``seq`` -> (N, 1, 32, 32) uint8 (LRU-cached)."""
        key = (seq, index)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        path = self.files[seq][index]
        patches = read_hpatches_file(path)
        if len(patches) != self.rows[seq]:
            raise DatasetError(f"{path}: {len(patches)} patches, but ref.png of the sequence has {self.rows[seq]}")
        self._store(key, patches)
        return patches

    def _store(self, key: tuple[int, int], patches: np.ndarray) -> None:
        self._cache[key] = patches
        self._cache_bytes += patches.nbytes
        while self._cache_bytes > self._cache_limit and len(self._cache) > 1:
            self._cache_bytes -= self._cache.popitem(last=False)[1].nbytes

    def _gather(self, seqs: np.ndarray, files: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Patches at (sequence, file, row) triples, each (k,) -> (k, 1, 32, 32) uint8."""
        out = np.empty((len(seqs), 1, PATCH, PATCH), np.uint8)
        keys = seqs * 64 + files
        for key in np.unique(keys):
            sel = keys == key
            out[sel] = self._file(int(key // 64), int(key % 64))[rows[sel]]
        return out

    def sample(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """n pairs of distinct points -> (n, 1, 32, 32) uint8, (n, 1, 32, 32) uint8, (n,) int64."""
        _check_n(n, self.num_points, "HPatches points")
        labels = self.rng.choice(self.num_points, size=n, replace=False).astype(np.int64)
        seqs = np.searchsorted(self.offsets, labels, side="right") - 1
        rows = labels - self.offsets[seqs]
        first, second = _pick_two(self.rng, self._num_files[seqs])
        return self._gather(seqs, first, rows), self._gather(seqs, second, rows), labels
