"""Matching: ratio test, mutual NN, block processing."""

import numpy as np
import pytest

from hardmatch.matching.matchers import match, nearest_two


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def descriptors():
    rng = np.random.default_rng(0)
    d2 = _unit(rng.normal(size=(300, 128)))
    d1 = _unit(d2[:200] + 0.05 * rng.normal(size=(200, 128)))  # 200 true matches i -> i
    d1 = np.concatenate([d1, _unit(rng.normal(size=(100, 128)))])  # 100 without partner
    return d1, d2


def test_blocks_give_the_same_neighbours_as_brute_force(descriptors):
    d1, d2 = descriptors
    full = np.linalg.norm(d1[:, None] - d2[None], axis=2)
    order = np.argsort(full, axis=1)[:, :2]
    idx, dist = nearest_two(d1, d2, block_size=7)
    np.testing.assert_array_equal(idx, order)
    np.testing.assert_allclose(dist, np.take_along_axis(full, order, 1), atol=1e-4)


def test_block_rows_shrink_with_many_columns(descriptors, monkeypatch):
    """A block of the distance matrix stays within MATCH_BLOCK_BYTES however many columns: a wide-step
    pair with 200k features per image asked 4096 x 200k (3.3 GB) per block and was killed."""
    from hardmatch.matching import matchers as matchlib

    assert matchlib.bounded_block(4096, 2000) == 4096                 # the usual sizes are untouched
    assert matchlib.bounded_block(4096, 200_000) * 200_000 * 4 <= matchlib.MATCH_BLOCK_BYTES
    assert matchlib.bounded_block(4096, 10 ** 9) == 16
    d1, d2 = descriptors
    expected = nearest_two(d1, d2)
    monkeypatch.setattr(matchlib, "MATCH_BLOCK_BYTES", 300 * 4 * 20)  # 20 rows per block here
    assert matchlib.bounded_block(4096, len(d2)) == 20
    (index, distance), (want_index, want_distance) = nearest_two(d1, d2), expected
    np.testing.assert_array_equal(index, want_index)
    # the BLAS product may round the last bit differently for another block height (seen on an AMX Xeon)
    np.testing.assert_allclose(distance, want_distance, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(40, 10), (50, 300), (30, 5000)])
def test_smallest_k_per_row_is_a_stable_sort_prefix(shape):
    """The bounded selection (the k-th smallest of the run minima bounds the k-th value) against a
    full stable sort, with tied values; a row whose bound is NaN is sorted in full."""
    from hardmatch.matching.matchers import smallest_k

    rng = np.random.default_rng(3)
    values = rng.random(shape).astype(np.float32)
    values[:, 1::3] = values[:, ::3][:, :values[:, 1::3].shape[1]]  # many ties
    k = min(10, shape[1])
    idx, got = smallest_k(values, k)
    order = np.argsort(values, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(idx, order)
    np.testing.assert_array_equal(got, np.take_along_axis(values, order, 1))
    values[0, :] = np.nan
    values[0, -k:] = np.arange(k, dtype=np.float32)  # only k finite entries, all outside the sample
    idx, got = smallest_k(values, k)
    np.testing.assert_array_equal(got[0], np.arange(k, dtype=np.float32))
    np.testing.assert_array_equal(idx[1:], order[1:])


@pytest.mark.parametrize("k", [1, 3, 5, 10])
def test_k_nearest_in_blocks_match_brute_force(descriptors, k):
    from hardmatch.matching.matchers import nearest_k

    d1, d2 = descriptors
    full = np.linalg.norm(d1[:, None] - d2[None], axis=2)
    order = np.argsort(full, axis=1, kind="stable")[:, :k]
    idx, dist = nearest_k(d1, d2, k, block_size=7)
    np.testing.assert_array_equal(idx, order)
    np.testing.assert_allclose(dist, np.take_along_axis(full, order, 1), atol=1e-4)
    idx, dist = nearest_k(d1, d2[:2], k)  # fewer rows than k: the rest is -1 / inf
    assert (idx[:, 2:] == -1).all() and np.isinf(dist[:, 2:]).all() and (idx[:, :min(k, 2)] >= 0).all()


@pytest.mark.parametrize("method", ["snn", "mnn", "smnn"])
def test_true_matches_are_found_and_unpartnered_mostly_rejected(descriptors, method):
    d1, d2 = descriptors
    m = match(d1, d2, method, ratio=0.8, block_size=64)
    correct = m.pairs[:, 0] == m.pairs[:, 1]
    assert correct.sum() >= 195
    assert (~correct).sum() <= 10 if method != "mnn" else True
    assert m.pairs.dtype == np.int64 and m.distances.shape == m.ratios.shape == (len(m),)
    if method in ("snn", "smnn"):
        assert (m.ratios < 0.8).all()


def test_mutual_is_symmetric(descriptors):
    d1, d2 = descriptors
    a = match(d1, d2, "mnn").pairs
    b = match(d2, d1, "mnn").pairs[:, ::-1]
    assert {tuple(p) for p in a} == {tuple(p) for p in b}


def test_degenerate_sizes():
    one = _unit(np.ones((1, 128)))
    assert len(match(one, one, "snn")) == 0  # no second neighbour: the ratio is undefined (1.0) and fails
    assert len(match(one, one, "mnn")) == 1
    assert len(match(np.zeros((0, 128), np.float32), one, "smnn")) == 0
    with pytest.raises(ValueError, match="matcher"):
        match(one, one, "bogus")


def test_fginn_ignores_near_duplicates_but_not_distant_lookalikes(descriptors):
    d1, d2 = descriptors
    rng = np.random.default_rng(1)
    points2 = rng.uniform(0, 1000, (len(d2), 2)).astype(np.float32)
    # every true partner gets a near-identical twin: the plain ratio test then rejects them all
    twins = _unit(d2[:200] + 0.01 * rng.normal(size=(200, 128)))
    d2x = np.concatenate([d2, twins])
    near = np.concatenate([points2, points2[:200] + 2.0])  # twins 2.8 px away: the same point
    far = np.concatenate([points2, points2[:200] + 300.0])  # twins elsewhere: truly ambiguous
    assert len(match(d1, d2x, "snn", 0.9)) < 20
    kept = match(d1, d2x, "fginn", 0.9, points2=near)
    assert len(kept) > 180 and np.isin(kept.pairs[:, 1] % 300, np.arange(200)).all()
    assert np.all((kept.pairs[:, 1] == kept.pairs[:, 0]) | (kept.pairs[:, 1] == kept.pairs[:, 0] + 300))
    assert len(match(d1, d2x, "fginn", 0.9, points2=far)) < 20
    with pytest.raises(ValueError, match="points2"):
        match(d1, d2x, "fginn", 0.9)


DEVICES = ["cpu"] + (["cuda"] if __import__("torch").cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("method", ["snn", "mnn", "smnn", "fginn"])
def test_device_tensors_give_the_numpy_matches(descriptors, method, device):
    """The device path (tensors in, matched where they live) returns the CPU path's numpy matches."""
    import torch

    d1, d2 = descriptors
    points2 = np.random.default_rng(2).uniform(0, 50, (len(d2), 2)).astype(np.float32)  # dense: fginn matters
    expected = match(d1, d2, method, 0.85, block_size=64, points2=points2)
    got = match(torch.from_numpy(d1).to(device), torch.from_numpy(d2).to(device), method, 0.85, block_size=64,
                points2=torch.from_numpy(points2).to(device))
    assert isinstance(got.pairs, np.ndarray) and got.pairs.dtype == np.int64 and got.ratios.dtype == np.float32
    # numpy's BLAS (host path) and torch (device path) sum in other orders: a match at the ratio
    # threshold may flip; the others agree to float rounding
    common = {tuple(p) for p in got.pairs} & {tuple(p) for p in expected.pairs}
    assert len(common) >= 0.99 * max(len(got), len(expected))
    ratio_of = {tuple(p): r for p, r in zip(expected.pairs, expected.ratios)}
    got_ratio = {tuple(p): r for p, r in zip(got.pairs, got.ratios)}
    np.testing.assert_allclose([got_ratio[p] for p in common], [ratio_of[p] for p in common], atol=1e-5)
