"""hardmatch/core/close_pairs.py close_pairs: same pairs as scipy's cKDTree.query_pairs, and the duplicate
filters built on it (accept.unique_correspondences, accept.distinct_count, laf.unique) unchanged."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree

from hardmatch.geometry import acceptance as acc
from hardmatch.core import laf
from hardmatch.core.close_pairs import close_pairs

ROOT = Path(__file__).resolve().parents[1]


def _kdtree_pairs(points, radius):
    pairs = cKDTree(np.asarray(points, np.float64)).query_pairs(r=radius, output_type="ndarray")
    pairs = pairs.reshape(-1, 2).astype(np.int64)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]


def _check(points, radius):
    got = close_pairs(points, radius)
    assert got.dtype == np.int64 and got.ndim == 2 and got.shape[1] == 2
    expected = _kdtree_pairs(points, radius)
    np.testing.assert_array_equal(got, expected)  # same pairs, same (sorted) order
    return got


@pytest.mark.parametrize("n, box, radius", [(2, (10, 10), 20.0), (50, (10, 10), 1.0), (500, (50, 40), 1.5),
                                            (2500, (1600, 1300), 1.5), (3000, (100, 100), 3.0),
                                            (400, (5, 5), 0.8), (1000, (1600, 1300), 60.0)])
@pytest.mark.parametrize("seed", [0, 1])
def test_uniform_points_match_kdtree(n, box, radius, seed):
    rng = np.random.default_rng(seed)
    points = rng.uniform(0, 1, (n, 2)) * box - np.array(box) / 3  # negative coordinates too
    _check(points, radius)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clustered_points_with_exact_duplicates_match_kdtree(seed):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-200, 800, (40, 2))
    points = centres[rng.integers(0, 40, 1500)] + rng.normal(0, 1.0, (1500, 2))
    points[:1400:7] = points[3:1400:7]  # exact duplicates
    points = np.concatenate([points, points[:100]])  # more duplicates, far apart in index
    pairs = _check(points, 2.0)
    assert len(pairs) > len(points)  # dense: the test exercises many pairs


@pytest.mark.parametrize("radius", [1.0, 2.0, np.sqrt(2.0), 0.5])
def test_integer_grid_pairs_at_exactly_the_radius_are_included(radius):
    xs, ys = np.meshgrid(np.arange(-6, 7), np.arange(-4, 9))
    points = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)
    pairs = _check(points, radius)
    if radius == 1.0:  # exactly the 4-neighbours, at distance == radius
        assert len(pairs) == 12 * 13 + 13 * 12
        d = np.linalg.norm(points[pairs[:, 0]] - points[pairs[:, 1]], axis=1)
        assert (d == 1.0).all()


def test_float32_input_and_large_coordinates():
    rng = np.random.default_rng(3)
    points = rng.uniform(-1e5, 1e5, (3000, 2))
    points[1000:1300] = points[:300] + rng.uniform(-0.4, 0.4, (300, 2))  # close partners far in index
    pairs = _check(points, 0.5)
    assert len(pairs) >= 200
    p32 = points[:2000].astype(np.float32)
    _check(p32, 0.5)
    _check(p32.astype(np.float64) * 1e3, 0.5)  # 1e8 coordinates, tiny radius: many cells per axis


def test_all_identical_points_pair_with_each_other():
    points = np.full((60, 2), 3.25)
    pairs = _check(points, 1.0)
    assert len(pairs) == 60 * 59 // 2
    assert len(close_pairs(np.zeros((5, 2)), 1e-9)) == 10


@pytest.mark.parametrize("points", [np.zeros((0, 2)), np.zeros((1, 2)), np.array([[1.0, 2.0]])])
def test_fewer_than_two_points_give_no_pairs(points):
    pairs = close_pairs(points, 1.0)
    assert pairs.shape == (0, 2) and pairs.dtype == np.int64


@pytest.mark.parametrize("radius", [0.0, -1.0, float("nan")])
def test_non_positive_radius_gives_no_pairs(radius):
    pairs = close_pairs(np.zeros((4, 2)), radius)
    assert pairs.shape == (0, 2) and pairs.dtype == np.int64


def test_far_apart_points_give_no_pairs():
    pairs = close_pairs(np.array([[0.0, 0.0], [10.0, 0.0], [0.0, -10.0]]), 1.0)
    assert pairs.shape == (0, 2) and pairs.dtype == np.int64


def test_non_finite_points_are_never_paired():
    points = np.array([[0.0, 0.0], [np.nan, 0.0], [0.5, 0.0], [np.inf, np.inf], [0.2, np.nan], [np.inf, np.inf],
                       [0.0, 0.5], [-np.inf, 0.0]])
    assert close_pairs(points, 1.0).tolist() == [[0, 2], [0, 6], [2, 6]]
    assert close_pairs(points[[1, 3, 5]], 1.0).shape == (0, 2)


def test_infinite_radius_pairs_every_finite_point():
    points = np.array([[0.0, 0.0], [1e300, -1e300], [np.nan, 1.0], [-5.0, 7.0]])
    assert close_pairs(points, np.inf).tolist() == [[0, 1], [0, 3], [1, 3]]


# The duplicate filters: "before" = the cKDTree implementations these replaced, verbatim in logic.

def _unique_correspondences_before(pts1, pts2, ratios, radius=acc.DUPLICATE_RADIUS):
    k = len(pts1)
    if k < 2 or radius <= 0:
        return np.arange(k)
    pts1 = np.asarray(pts1, np.float64).reshape(-1, 2)
    pts2 = np.asarray(pts2, np.float64).reshape(-1, 2)
    pairs = cKDTree(pts1).query_pairs(r=radius, output_type="ndarray")
    if len(pairs) == 0:
        return np.arange(k)
    pairs = pairs[np.linalg.norm(pts2[pairs[:, 0]] - pts2[pairs[:, 1]], axis=1) < radius]
    order = np.lexsort((np.arange(k), np.asarray(ratios, np.float64)))
    rank = np.empty(k, np.int64)
    rank[order] = np.arange(k)
    neighbours = {}
    for i, j in pairs:
        neighbours.setdefault(int(i), []).append(int(j))
        neighbours.setdefault(int(j), []).append(int(i))
    drop = np.zeros(k, bool)
    for i in order:
        if drop[i] or i not in neighbours:
            continue
        for j in neighbours[i]:
            if rank[j] > rank[i]:
                drop[j] = True
    return np.nonzero(~drop)[0]


def _distinct_points_before(points, radius):
    points = np.asarray(points, np.float64).reshape(-1, 2)
    if radius <= 0 or len(points) < 2:
        return len(points)
    pairs = cKDTree(points).query_pairs(r=radius, output_type="ndarray")
    drop = np.zeros(len(points), bool)
    for i, j in pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))] if len(pairs) else []:
        if not drop[i]:
            drop[j] = True
    return int((~drop).sum())


def _laf_unique_before(lafs, tolerance=0.1):
    if len(lafs) < 2:
        return np.arange(len(lafs))
    lafs = np.asarray(lafs, dtype=np.float64)
    radii = laf.radius(lafs)
    shape = lafs[:, :, :2] @ np.transpose(lafs[:, :, :2], (0, 2, 1)) / (radii ** 2)[:, None, None]
    drop = np.zeros(len(lafs), bool)
    pairs = cKDTree(lafs[:, :, 2]).query_pairs(r=float(tolerance * np.median(radii)), output_type="ndarray")
    for i, j in pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))] if len(pairs) else []:
        if drop[i] or drop[j]:
            continue
        same = (abs(np.log(radii[i] / radii[j])) < tolerance and np.abs(shape[i] - shape[j]).max() < tolerance
                and np.linalg.norm(lafs[i, :, 2] - lafs[j, :, 2]) < tolerance * radii[i])
        if same:
            drop[max(i, j)] = True
    return np.nonzero(~drop)[0]


def _duplicated_correspondences(seed, k=1200):
    rng = np.random.default_rng(seed)
    pts1 = rng.uniform(0, 300, (k, 2))
    pts2 = pts1 @ np.array([[0.9, 0.1], [-0.1, 1.1]]) + 15.0
    dup = rng.integers(0, k, k // 3)
    target = rng.integers(0, k, k // 3)
    pts1[target] = pts1[dup] + rng.normal(0, 0.8, (len(dup), 2))
    pts2[target] = pts2[dup] + rng.normal(0, 0.8, (len(dup), 2))
    ratios = rng.uniform(0.3, 0.9, k)
    ratios[::11] = 0.5  # ties, broken by index
    return pts1, pts2, ratios


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("radius", [acc.DUPLICATE_RADIUS, 4.0])
def test_unique_correspondences_unchanged(seed, radius):
    pts1, pts2, ratios = _duplicated_correspondences(seed)
    got = acc.unique_correspondences(pts1, pts2, ratios, radius)
    expected = _unique_correspondences_before(pts1, pts2, ratios, radius)
    np.testing.assert_array_equal(got, expected)
    assert 0 < len(got) < len(pts1) * 0.95  # duplicates were actually dropped


@pytest.mark.parametrize("seed", [0, 1])
def test_distinct_count_unchanged(seed):
    pts1, pts2, _ = _duplicated_correspondences(seed)
    for radius in (acc.DUPLICATE_RADIUS, 5.0):
        expected = min(_distinct_points_before(pts1, radius), _distinct_points_before(pts2, radius))
        got = acc.distinct_count(pts1, pts2, radius)
        assert got == expected
        assert got < len(pts1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_laf_unique_unchanged(seed):
    rng = np.random.default_rng(seed)
    n = 1500
    centres = rng.uniform(0, 400, (n, 2))
    radii = rng.uniform(8, 30, n)
    angles = rng.uniform(0, 360, n)
    src = rng.integers(0, n, n // 2)
    dst = rng.integers(0, n, n // 2)
    centres[dst] = centres[src] + rng.normal(0, 0.6, (len(src), 2))  # near-duplicate frames
    radii[dst] = radii[src] * np.exp(rng.normal(0, 0.04, len(src)))
    angles[dst] = angles[src]
    frames = laf.from_center_radius_angle(centres, radii, angles)
    frames[dst[::3], :, :2] *= 1.5  # some with the same centre but another size: kept
    got = laf.unique(frames)
    np.testing.assert_array_equal(got, _laf_unique_before(frames))
    assert 0 < len(got) < n * 0.95


def test_duplicate_filters_do_not_import_scipy_spatial():
    code = ("import sys, numpy as np\n"
            "from hardmatch.geometry.acceptance import unique_correspondences, distinct_count\n"
            "from hardmatch.core.laf import from_center_radius_angle, unique\n"
            "rng = np.random.default_rng(0)\n"
            "p = rng.uniform(0, 50, (300, 2))\n"
            "keep = unique_correspondences(p, p + 1.0, rng.uniform(0, 1, 300))\n"
            "n = distinct_count(p, p)\n"
            "u = unique(from_center_radius_angle(p, np.full(300, 10.0), np.zeros(300)))\n"
            "assert 0 < len(keep) < 300 and 0 < n < 300 and 0 < len(u) < 300\n"
            "print('scipy.spatial' in sys.modules)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
