"""PhotoTour and HPatches patch readers, on tiny fixtures written in the native formats."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from hardmatch.datasets.patch_datasets import HPatchesPatches, PhotoTour, phototour_test_pairs, read_hpatches_file
from hardmatch.core.errors import DatasetError


def _texture(rng: np.random.Generator, side: int) -> np.ndarray:
    """A smooth random texture (side, side) float in 0..80."""
    coarse = rng.uniform(0, 80, (side // 4, side // 4)).astype(np.float32)
    return np.clip(cv2.resize(coarse, (side, side), interpolation=cv2.INTER_CUBIC), 0, 80)


def _resize(patches: np.ndarray, side: int = 32) -> np.ndarray:
    """(k, s, s) uint8 -> (k, side, side) uint8, one patch at a time."""
    return np.stack([cv2.resize(p, (side, side), interpolation=cv2.INTER_AREA) for p in patches])


def _nearest(patches: np.ndarray, bases: np.ndarray) -> np.ndarray:
    """Index of the most correlated base for each patch; (k, 1, 32, 32), (B, 32, 32) -> (k,)."""
    def norm(x):
        x = x.reshape(len(x), -1).astype(np.float64)
        x = x - x.mean(1, keepdims=True)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    return np.argmax(norm(patches) @ norm(bases).T, axis=1)


def _one_line(excinfo) -> None:
    message = str(excinfo.value)
    assert message and "\n" not in message


# ------------------------------------------------------------------------------ PhotoTour


@pytest.fixture(scope="module")
def phototour(tmp_path_factory):
    """280 patches in 2 bitmaps (the second partly empty): 90 points with 3 patches, 10 with 1."""
    root = tmp_path_factory.mktemp("liberty")
    rng = np.random.default_rng(1)
    point_ids = 1000 + 7 * np.arange(100)
    bases = np.stack([_texture(rng, 64) for _ in range(100)])  # (100, 64, 64)
    owner = np.concatenate([np.repeat(np.arange(90), 3), np.arange(90, 100)])
    rng.shuffle(owner)  # patches of one point are not neighbours
    patches = np.clip(bases[owner] + rng.normal(0, 3, (len(owner), 64, 64)), 0, 255).astype(np.uint8)
    grid = np.zeros((512, 64, 64), np.uint8)
    grid[: len(patches)] = patches
    bitmaps = grid.reshape(2, 16, 16, 64, 64).transpose(0, 1, 3, 2, 4).reshape(2, 1024, 1024)
    for b, bitmap in enumerate(bitmaps):
        cv2.imwrite(str(root / f"patches{b:04d}.bmp"), bitmap)
    (root / "info.txt").write_text("".join(f"{point_ids[o]} 0\n" for o in owner))
    pairs = [(i, j) for i in range(0, 280, 13) for j in (i + 1, (i * 7) % 280)]
    pairs += [(i, j) for i in range(280) for j in range(i + 1, 280) if owner[i] == owner[j]][:20]
    (root / "m50_100000_100000_0.txt").write_text(
        "".join(f"{i} {point_ids[owner[i]]} 0 {j} {point_ids[owner[j]]} 0\n" for i, j in pairs))
    return dict(root=root, point_ids=point_ids, bases=_resize(bases.astype(np.uint8)), owner=owner,
                patches=patches, pairs=np.array(pairs))


def test_phototour_reads_bitmaps_in_order(phototour):
    data = PhotoTour(phototour["root"])
    assert len(data) == 280 and data.num_points == 90
    got = data.patches(np.arange(280))
    assert got.shape == (280, 1, 32, 32) and got.dtype == np.uint8
    np.testing.assert_array_equal(got[:, 0], _resize(phototour["patches"]))


def test_phototour_sample(phototour):
    data = PhotoTour(phototour["root"], seed=3)
    anchors, positives, labels = data.sample(64)
    assert anchors.shape == positives.shape == (64, 1, 32, 32)
    assert anchors.dtype == positives.dtype == np.uint8 and labels.dtype == np.int64 and labels.shape == (64,)
    assert len(np.unique(labels)) == 64
    point_ids = phototour["point_ids"]
    expected = np.searchsorted(point_ids, labels)
    assert np.array_equal(point_ids[expected], labels)  # labels are 3D point ids
    assert np.all(expected < 90)  # single-patch points are never drawn
    assert np.array_equal(_nearest(anchors, phototour["bases"]), expected)
    assert np.array_equal(_nearest(positives, phototour["bases"]), expected)
    assert all(not np.array_equal(a, p) for a, p in zip(anchors, positives))  # two different patches
    again = PhotoTour(phototour["root"], seed=3).sample(64)
    assert np.array_equal(again[2], labels) and np.array_equal(again[0], anchors)
    with pytest.raises(DatasetError):
        data.sample(91)


def test_phototour_test_pairs(phototour):
    p1, p2, is_match = phototour_test_pairs(phototour["root"])
    pairs, owner = phototour["pairs"], phototour["owner"]
    assert p1.shape == p2.shape == (len(pairs), 1, 32, 32) and p1.dtype == np.uint8
    assert is_match.dtype == np.bool_
    assert np.array_equal(is_match, owner[pairs[:, 0]] == owner[pairs[:, 1]])
    assert 0 < is_match.sum() < len(is_match)
    small = _resize(phototour["patches"])
    assert np.array_equal(p1[:, 0], small[pairs[:, 0]]) and np.array_equal(p2[:, 0], small[pairs[:, 1]])


def test_phototour_layout_errors(phototour, tmp_path):
    src = phototour["root"]
    cases = {}
    cases["missing"] = tmp_path / "nope"
    no_info = tmp_path / "no_info"
    no_info.mkdir()
    (no_info / "patches0000.bmp").write_bytes((src / "patches0000.bmp").read_bytes())
    cases["no_info"] = no_info
    no_bmp = tmp_path / "no_bmp"
    no_bmp.mkdir()
    (no_bmp / "info.txt").write_text("1 0\n1 0\n")
    cases["no_bmp"] = no_bmp
    too_few = tmp_path / "too_few"
    too_few.mkdir()
    (too_few / "patches0000.bmp").write_bytes((src / "patches0000.bmp").read_bytes())
    (too_few / "info.txt").write_text("1 0\n" * 300)
    cases["too_few"] = too_few
    bad_info = tmp_path / "bad_info"
    bad_info.mkdir()
    (bad_info / "patches0000.bmp").write_bytes((src / "patches0000.bmp").read_bytes())
    (bad_info / "info.txt").write_text("1 0\nabc 0\n")
    cases["bad_info"] = bad_info
    for name, root in cases.items():
        with pytest.raises(DatasetError) as excinfo:
            PhotoTour(root)
        _one_line(excinfo)
    # a bitmap of the wrong size is reported when it is first read
    wrong = tmp_path / "wrong_size"
    wrong.mkdir()
    cv2.imwrite(str(wrong / "patches0000.bmp"), np.zeros((512, 512), np.uint8))
    (wrong / "info.txt").write_text("1 0\n1 0\n")
    with pytest.raises(DatasetError) as excinfo:
        PhotoTour(wrong).sample(1)
    _one_line(excinfo)
    with pytest.raises(DatasetError) as excinfo:
        phototour_test_pairs(src, "m50_missing.txt")
    _one_line(excinfo)


# ------------------------------------------------------------------------------ HPatches

_OFFSET = {"ref": 0, "e": 10, "h": 100, "t": 170}  # h/t patches are bright, ref/e dark


@pytest.fixture(scope="module")
def hpatches(tmp_path_factory):
    """Sequences i_a (3 rows) and v_b (4 rows), files ref, e1, e2, h1, t1; a stray folder."""
    root = tmp_path_factory.mktemp("hpatches")
    rng = np.random.default_rng(2)
    bases = []
    for name, rows in (("i_a", 3), ("v_b", 4)):
        seq = root / name
        seq.mkdir()
        base = np.stack([_texture(rng, 64) for _ in range(rows)])
        base = np.stack([cv2.resize(b, (65, 65), interpolation=cv2.INTER_LINEAR) for b in base])
        bases.append(base)
        for file in ("ref", "e1", "e2", "h1", "t1"):
            noisy = base + _OFFSET[file[0] if file != "ref" else "ref"] + rng.normal(0, 3, base.shape)
            cv2.imwrite(str(seq / f"{file}.png"), np.clip(noisy, 0, 255).astype(np.uint8).reshape(rows * 65, 65))
    (root / "stray").mkdir()
    (root / "README.txt").write_text("not a sequence\n")
    return dict(root=root, bases=_resize(np.concatenate(bases).astype(np.uint8)))


def test_hpatches_sample(hpatches):
    data = HPatchesPatches(hpatches["root"], seed=5)
    assert data.num_points == 7 and [s.name for s in data.sequences] == ["i_a", "v_b"]
    anchors, positives, labels = data.sample(7)
    assert anchors.shape == positives.shape == (7, 1, 32, 32)
    assert anchors.dtype == positives.dtype == np.uint8 and labels.dtype == np.int64
    assert sorted(labels.tolist()) == list(range(7))  # unique id per (sequence, row)
    assert np.array_equal(_nearest(anchors, hpatches["bases"]), labels)
    assert np.array_equal(_nearest(positives, hpatches["bases"]), labels)
    assert all(not np.array_equal(a, p) for a, p in zip(anchors, positives))  # two different files
    bright = [np.concatenate([a.mean((1, 2, 3)), p.mean((1, 2, 3))]) > 90 for a, p, _ in
              (data.sample(7) for _ in range(5))]
    assert np.any(bright)  # h/t files are used
    with pytest.raises(DatasetError):
        data.sample(8)


def test_hpatches_kinds(hpatches):
    data = HPatchesPatches(hpatches["root"], seed=0, kinds=("e",))
    for _ in range(5):
        anchors, positives, labels = data.sample(5)
        assert len(np.unique(labels)) == 5
        assert anchors.mean() < 90 and positives.mean() < 90  # only ref and e files
    with pytest.raises(DatasetError) as excinfo:
        HPatchesPatches(hpatches["root"], kinds=("x",))
    _one_line(excinfo)


def test_hpatches_layout_errors(tmp_path):
    empty = tmp_path / "empty"
    (empty / "not_a_sequence").mkdir(parents=True)
    for root in (tmp_path / "missing", empty):
        with pytest.raises(DatasetError) as excinfo:
            HPatchesPatches(root)
        _one_line(excinfo)
    only_ref = tmp_path / "only_ref" / "i_x"
    only_ref.mkdir(parents=True)
    cv2.imwrite(str(only_ref / "ref.png"), np.zeros((130, 65), np.uint8))
    with pytest.raises(DatasetError) as excinfo:
        HPatchesPatches(only_ref.parent)
    _one_line(excinfo)
    mismatch = tmp_path / "mismatch" / "i_y"
    mismatch.mkdir(parents=True)
    cv2.imwrite(str(mismatch / "ref.png"), np.zeros((130, 65), np.uint8))
    cv2.imwrite(str(mismatch / "e1.png"), np.zeros((195, 65), np.uint8))
    with pytest.raises(DatasetError) as excinfo:
        HPatchesPatches(mismatch.parent, kinds=("e",)).sample(2)
    _one_line(excinfo)


def test_read_hpatches_file(tmp_path):
    rng = np.random.default_rng(4)
    column = rng.integers(0, 256, (5 * 65, 65), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "w65.png"), column)
    got = read_hpatches_file(tmp_path / "w65.png")
    assert got.shape == (5, 1, 32, 32) and got.dtype == np.uint8
    np.testing.assert_array_equal(got[:, 0], _resize(column.reshape(5, 65, 65)))
    assert np.array_equal(read_hpatches_file(tmp_path / "w65.png", patch_size=65)[:, 0], column.reshape(5, 65, 65))
    small = rng.integers(0, 256, (3 * 32, 32), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "w32.png"), small)
    assert np.array_equal(read_hpatches_file(tmp_path / "w32.png")[:, 0], small.reshape(3, 32, 32))
    colour = np.repeat(small[:, :, None], 3, axis=2)
    cv2.imwrite(str(tmp_path / "colour.png"), colour)
    assert np.array_equal(read_hpatches_file(tmp_path / "colour.png")[:, 0], small.reshape(3, 32, 32))


def test_read_hpatches_file_errors(tmp_path):
    (tmp_path / "text.png").write_text("not an image\n")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "folder.png").mkdir()
    cv2.imwrite(str(tmp_path / "wide.png"), np.zeros((80, 40), np.uint8))
    cv2.imwrite(str(tmp_path / "ragged.png"), np.zeros((100, 65), np.uint8))
    for name in ("missing.png", "text.png", "empty.png", "folder.png", "wide.png", "ragged.png"):
        with pytest.raises(DatasetError) as excinfo:
            read_hpatches_file(tmp_path / name)
        _one_line(excinfo)
        assert name in str(excinfo.value)


def test_read_real_hpatches_ref():
    shared = Path(os.environ.get("HARDMATCH_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")
    path = shared / "data" / "hpatches-sample" / "ref.png"
    if not path.is_file():
        pytest.skip(f"real HPatches sample not available at {path}")
    patches = read_hpatches_file(path)
    assert patches.shape == (1123, 1, 32, 32) and patches.dtype == np.uint8
    assert patches.std() > 5  # real texture, not an empty image
