"""Block-sparse ``ranges=``: checks of the 6-tuple, the planner (no task for a
block without a kept pair, row blocks balanced by kept pairs), dask inputs and
LazyTensor.ranges, on the NumPy backend against masked float64 references."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest

from dredux import Genred, LazyTensor, Vi, Vj
from dredux.cluster import (
    cluster_ranges_centroids,
    from_matrix,
    grid_cluster,
    sort_clusters,
    swap_axes,
)
from dredux.errors import DtypeError, ShapeError
from dredux.plan import make_plan
from dredux.ranges import sparsity
from tests.helpers import masked_reduction, pair_mask, random_clusters, ranges_from_mask

ALIASES = ["x = Vi(2)", "y = Vj(2)", "b = Vj(1)"]


def gauss(x, y, b):
    d2 = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    return np.exp(-d2), b


def clustered(seed=0, m=300, n=250, eps=0.3, cutoff=0.5):
    """Two sorted point clouds, their grid clusters and the ranges keeping the
    cluster pairs whose centroids are closer than ``cutoff``."""
    gen = np.random.default_rng(seed)
    x = gen.uniform(0, 2, (m, 2))
    x, lx = sort_clusters(x, grid_cluster(x, eps))
    y = gen.uniform(0, 2, (n, 2))
    b = gen.uniform(-1, 1, (n, 1))
    (y, b), ly = sort_clusters((y, b), grid_cluster(y, eps))
    rx, cx, _ = cluster_ranges_centroids(x, lx)
    ry, cy, _ = cluster_ranges_centroids(y, ly)
    keep = ((cx[:, None, :] - cy[None, :, :]) ** 2).sum(-1) < cutoff ** 2
    return x, y, b, rx, ry, keep


def test_cluster_helpers_to_genred():
    """The KeOps workflow: grid_cluster, sort, centroids, a mask, from_matrix."""
    x, y, b, rx, ry, keep = clustered()
    ranges = from_matrix(rx, ry, keep)
    mask = pair_mask(rx, ry, keep, len(x), len(y))
    assert 0.05 < mask.mean() < 0.8
    k, _ = gauss(x, y, b)
    out = Genred("Exp(-SqDist(x, y)) * b", ALIASES, axis=1)(x, y, b, ranges=ranges,
                                                            backend="numpy")
    np.testing.assert_allclose(out, (k * mask) @ b, rtol=1e-12, atol=1e-12)
    # the same reduction written over i: x is now the j-variable, so the ranges
    # exchange their triples
    out0 = Genred("Exp(-SqDist(x, y)) * b", ["x = Vj(2)", "y = Vi(2)", "b = Vi(1)"],
                  axis=0)(x, y, b, ranges=swap_axes(ranges), backend="numpy")
    np.testing.assert_allclose(out0, (k * mask) @ b, rtol=1e-12, atol=1e-12)


def test_dask_inputs_stay_lazy_and_agree():
    x, y, b, rx, ry, keep = clustered(1)
    ranges = from_matrix(rx, ry, keep)
    mask = pair_mask(rx, ry, keep, len(x), len(y))
    k, _ = gauss(x, y, b)
    f = Genred("Exp(-SqDist(x, y)) * b", ALIASES, axis=1)
    out = f(da.from_array(x, chunks=(70, 2)), da.from_array(y, chunks=(60, 2)),
            da.from_array(b, chunks=(60, 1)), ranges=ranges, backend="numpy",
            block_size=(20, 30))
    assert isinstance(out, da.Array) and out.chunks[0] == (70, 70, 70, 70, 20)
    np.testing.assert_allclose(out.compute(scheduler="sync"), (k * mask) @ b,
                               rtol=1e-12, atol=1e-12)


def test_blocks_without_kept_pairs_are_not_tasks():
    """A block-diagonal pattern cut into 8 x 8 blocks: only the diagonal blocks
    are tasks; a row block with nothing kept is one task that reads no input."""
    m = n = 160
    ri = rj = np.array([[20 * k, 20 * k + 20] for k in range(8)], np.int32)
    keep = np.eye(8, dtype=bool)
    keep[5, 5] = False  # row block 5 keeps nothing
    ranges = ranges_from_mask(ri, rj, keep)
    pattern = sparsity(ranges, 1, m, n)
    plan = make_plan(m, n, 10.0, "numpy", 4, block_size=(20, 20), sparsity=pattern)
    assert len(plan.rows) == 8 and len(plan.cols) == 8
    assert [[c for c, _ in tasks] for tasks in plan.blocks] == [
        [0], [1], [2], [3], [4], [], [6], [7]]
    assert all(p is None for tasks in plan.blocks for _, p in tasks)  # whole blocks kept
    assert plan.n_tasks == 8 and plan.graph_size() == 8

    gen = np.random.default_rng(2)
    x, y, b = gen.random((m, 2)), gen.random((n, 2)), gen.random((n, 1))
    dx = da.from_array(x, chunks=(20, 2))
    out = Genred("Exp(-SqDist(x, y)) * b", ALIASES, axis=1)(
        dx, da.from_array(y, chunks=(20, 2)), da.from_array(b, chunks=(20, 1)),
        ranges=ranges, backend="numpy", block_size=(20, 20))
    graph = out.__dask_graph__()
    # the empty row block's output chunk depends on no input chunk
    layer = graph.layers[out.name]
    deps = layer[(out.name, 5, 0)]
    assert dx.name not in str(deps)
    mask = pair_mask(ri, rj, keep, m, n)
    k, _ = gauss(x, y, b)
    np.testing.assert_allclose(out.compute(scheduler="sync"), (k * mask) @ b, rtol=1e-12)


def test_row_blocks_balanced_by_kept_pairs():
    """Kept pairs concentrated in the first rows: the row blocks there are short,
    the ones over sparse rows long, each with about the same kept pairs."""
    m, n = 10_000, 10_000
    ri = np.array([[0, 1000], [1000, 10_000]], np.int32)
    red = np.array([[0, 10_000], [0, 100]], np.int32)
    # the second triple: column cluster [0, 100) is kept by every row, [100, n)
    # only by the first 1000 rows
    rj = np.array([[0, 100], [100, 10_000]], np.int32)
    ranges = (ri, np.array([1, 2], np.int32), red, rj, np.array([1, 2], np.int32),
              np.array([[0, 10_000], [0, 1000]], np.int32))
    pattern = sparsity(ranges, 1, m, n)
    assert pattern.kept == 1000 * 10_000 + 9000 * 100
    plan = make_plan(m, n, 10.0, "numpy", 4, sparsity=pattern)
    assert len(plan.rows) >= 4 and len(plan.cols) == 1
    starts = np.concatenate([[0], np.cumsum(plan.rows)])
    kept = [pattern.clip(int(a), int(b), 0, n).kept for a, b in zip(starts[:-1], starts[1:])]
    assert max(kept) <= 1.5 * min(kept), (plan.rows, kept)
    assert plan.rows[0] < 1000 < plan.rows[-1]


def test_lazytensor_ranges_and_reductions():
    x, y, b, rx, ry, keep = clustered(3)
    ranges = from_matrix(rx, ry, keep)
    mask = pair_mask(rx, ry, keep, len(x), len(y))
    d2 = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1, keepdims=True)
    K = (-Vi(x).sqdist(Vj(y))).exp() * Vj(b)
    K.ranges = ranges
    k, _ = gauss(x, y, b)
    np.testing.assert_allclose(K.sum(axis=1, backend="numpy"), (k * mask) @ b, rtol=1e-12)
    D = Vi(x).sqdist(Vj(y))
    D.ranges = ranges
    np.testing.assert_array_equal(D.argmin(axis=1, backend="numpy"),
                                  masked_reduction("ArgMin", d2, mask))
    np.testing.assert_array_equal(
        D.argmin(axis=0, backend="numpy"),
        masked_reduction("ArgMin", d2.transpose(1, 0, 2), mask.T))
    # a ranges= keyword of the reduction works too
    D2 = LazyTensor(x[:, None, :]).sqdist(LazyTensor(y[None, :, :]))
    np.testing.assert_allclose(D2.min(axis=1, ranges=ranges, backend="numpy"),
                               masked_reduction("Min", d2, mask), rtol=1e-12)



def test_lazytensor_transpose_transposes_its_ranges():
    # K.T (and rmatvec, and a reduction of K.T) keeps the pairs K keeps: (K * mask).T
    x, y, b, rx, ry, keep = clustered(4, m=120, n=90)
    ranges = from_matrix(rx, ry, keep)
    mask = pair_mask(rx, ry, keep, len(x), len(y))
    k, _ = gauss(x, y, b)
    K = (-Vi(x).sqdist(Vj(y))).exp()
    K.ranges = ranges
    K.backend = "numpy"
    u = np.random.default_rng(5).standard_normal((len(x), 2))
    expected = (k * mask).T @ u
    assert K.T.shape == (len(y), len(x))
    np.testing.assert_allclose(K.T @ u, expected, rtol=1e-12)
    np.testing.assert_allclose(K.rmatvec(u), expected, rtol=1e-12)
    np.testing.assert_allclose((K.T * Vj(u[:, :1])).sum(axis=1), expected[:, :1], rtol=1e-12)
    np.testing.assert_allclose(K.T.T @ b, (k * mask) @ b, rtol=1e-12)

def test_random_patterns_every_size():
    """Random clusters (some empty) and masks, sizes down to a single row."""
    f = Genred("SqDist(x, y) * b", ALIASES, reduction_op="Min_ArgMin", axis=1)
    for seed in range(12):
        gen = np.random.default_rng(seed)
        m, n = int(gen.integers(1, 40)), int(gen.integers(1, 40))
        ri = random_clusters(gen, m, int(gen.integers(1, 6)))
        rj = random_clusters(gen, n, int(gen.integers(1, 6)))
        keep = gen.random((len(ri), len(rj))) < 0.5
        x, y, b = gen.random((m, 2)), gen.random((n, 2)), gen.random((n, 1))
        mask = pair_mask(ri, rj, keep, m, n)
        vals = ((x[:, None] - y[None]) ** 2).sum(-1, keepdims=True) * b[None]
        ref = masked_reduction("Min_ArgMin", vals, mask)
        for bs in (None, (3, 4)):
            val, idx = f(x, y, b, ranges=ranges_from_mask(ri, rj, keep), backend="numpy",
                         block_size=bs, scheduler="sync" if bs else None)
            np.testing.assert_allclose(val, ref[0], rtol=1e-12)
            np.testing.assert_array_equal(idx, ref[1])


# ---------------------------------------------------------------------------
# bad ranges: a dredux error naming the array and what was expected
# ---------------------------------------------------------------------------

def _good():
    ri = np.array([[0, 5], [5, 10]], np.int32)
    rj = np.array([[0, 4], [4, 8]], np.int32)
    return ranges_from_mask(ri, rj, np.array([[1, 0], [1, 1]], bool))


def _with(k, value):
    r = list(_good())
    r[k] = value
    return tuple(r)


BAD = [
    ("a list of 3", lambda: _good()[:3], ShapeError, "6-tuple"),
    ("not a tuple", lambda: np.zeros((6, 2), np.int32), ShapeError, "6-tuple"),
    ("float ranges_i", lambda: _with(0, _good()[0].astype(float)), DtypeError,
     "ranges_i has dtype float64"),
    ("bool slices", lambda: _with(1, np.array([True, True])), DtypeError, "slices_i"),
    ("ranges_i shape", lambda: _with(0, np.array([0, 5, 5, 10], np.int32)), ShapeError,
     "ranges_i has shape (4,)"),
    ("slices_i length", lambda: _with(1, np.array([1], np.int32)), ShapeError,
     "slices_i has shape (1,)"),
    ("redranges_j shape", lambda: _with(2, np.array([0, 4, 0, 4, 4, 8], np.int32)),
     ShapeError, "redranges_j has shape (6,)"),
    ("out of bounds", lambda: _with(0, np.array([[0, 5], [5, 11]], np.int32)), ShapeError,
     "ranges_i[1] = [5, 11]"),
    ("negative", lambda: _with(2, np.array([[-1, 4], [0, 4], [4, 8]], np.int32)),
     ShapeError, "redranges_j[0] = [-1, 4]"),
    ("reversed", lambda: _with(2, np.array([[4, 0], [0, 4], [4, 8]], np.int32)),
     ShapeError, "redranges_j[0] = [4, 0]"),
    ("unsorted clusters", lambda: _with(0, np.array([[5, 10], [0, 5]], np.int32)),
     ShapeError, "ranges_i[1] = [0, 5] starts before"),
    ("overlapping clusters", lambda: _with(0, np.array([[0, 6], [5, 10]], np.int32)),
     ShapeError, "sorted, disjoint clusters"),
    ("overlapping column ranges", lambda: _with(2, np.array([[0, 4], [0, 4], [3, 8]],
                                                            np.int32)),
     ShapeError, "redranges_j[2] = [3, 8] starts before"),
    ("decreasing slices", lambda: _with(1, np.array([3, 1], np.int32)), ShapeError,
     "slices_i is not non-decreasing"),
    ("slices past redranges", lambda: _with(1, np.array([1, 4], np.int32)), ShapeError,
     "slices_i ends at 4 but redranges_j has 3 rows"),
    ("triples disagree", lambda: _with(5, np.array([[0, 5], [5, 10], [6, 10]], np.int32)),
     ShapeError, "keep 60 pairs but (ranges_j, slices_j, redranges_i) keep 56"),
    ("second triple out of bounds", lambda: _with(3, np.array([[0, 4], [4, 9]], np.int32)),
     ShapeError, "ranges_j[1] = [4, 9]"),
]


@pytest.mark.parametrize("what, make, error, text", BAD, ids=[b[0] for b in BAD])
def test_bad_ranges(what, make, error, text):
    gen = np.random.default_rng(0)
    x, y, b = gen.random((10, 2)), gen.random((8, 2)), gen.random((8, 1))
    f = Genred("SqDist(x, y) * b", ALIASES, axis=1)
    with pytest.raises(error) as info:
        f(x, y, b, ranges=make(), backend="numpy")
    assert text in str(info.value)
    assert "ranges" in str(info.value)


def test_good_ranges_pass_the_checks():
    gen = np.random.default_rng(0)
    x, y, b = gen.random((10, 2)), gen.random((8, 2)), gen.random((8, 1))
    f = Genred("SqDist(x, y) * b", ALIASES, axis=1)
    ri = np.array([[0, 5], [5, 10]])
    rj = np.array([[0, 4], [4, 8]])
    mask = pair_mask(ri, rj, np.array([[1, 0], [1, 1]], bool), 10, 8)
    vals = ((x[:, None] - y[None]) ** 2).sum(-1) * b[:, 0][None]
    with dask.config.set(scheduler="sync"):
        out = f(x, y, b, ranges=_good(), backend="numpy")
    np.testing.assert_allclose(out[:, 0], (vals * mask).sum(1), rtol=1e-12)
