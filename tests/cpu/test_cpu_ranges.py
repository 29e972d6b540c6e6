"""Block-sparse reductions (``ranges=``) on the CPU and NumPy backends, against
dense float64 NumPy references restricted to the same block mask: every
reduction, both axes, patterns with empty row clusters, empty column clusters,
empty clusters and rows in no cluster, and the kernels' other loop shapes
(contractions with panels, streamed sums, Kahan and direct sums)."""

from __future__ import annotations

import numpy as np
import pytest

from dredux import Genred
from tests.cpu.cpu_util import as_tuple, tolerances
from tests.helpers import masked_reduction, pair_mask, random_clusters, ranges_from_mask

M, N = 61, 47
ALIASES = ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "g = Vj(2)"]


def _d2(x, y):
    return ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1, keepdims=True)


# name -> (formula, formula2, f(x, y, b), g(x, y, b, g) or None, K)
CASES = {
    "Sum": ("Exp(-SqDist(x, y)) * b", None, lambda x, y, b: np.exp(-_d2(x, y)) * b[None], None),
    "Max": ("x * y - b", None, lambda x, y, b: x[:, None] * y[None] - b[None], None),
    "Min": ("x * y - b", None, lambda x, y, b: x[:, None] * y[None] - b[None], None),
    "ArgMax": ("x * y - b", None, lambda x, y, b: x[:, None] * y[None] - b[None], None),
    "ArgMin": ("x * y - b", None, lambda x, y, b: x[:, None] * y[None] - b[None], None),
    "Max_ArgMax": ("x * y - b", None, lambda x, y, b: x[:, None] * y[None] - b[None], None),
    "Min_ArgMin": ("x * y - b", None, lambda x, y, b: x[:, None] * y[None] - b[None], None),
    "KMin": ("SqDist(x, y) + b", None, lambda x, y, b: _d2(x, y) + b[None], None),
    "ArgKMin": ("SqDist(x, y) + b", None, lambda x, y, b: _d2(x, y) + b[None], None),
    "KMin_ArgKMin": ("SqDist(x, y) + b", None, lambda x, y, b: _d2(x, y) + b[None], None),
    "LogSumExp": ("b - SqDist(x, y)", None, lambda x, y, b: b[None] - _d2(x, y), None),
    "Max_SumShiftExp": ("b - SqDist(x, y)", None, lambda x, y, b: b[None] - _d2(x, y), None),
    "LogSumExpWeight": ("-SqDist(x, y)", "g", lambda x, y, b: -_d2(x, y), True),
    "SumSoftMaxWeight": ("-SqDist(x, y)", "g", lambda x, y, b: -_d2(x, y), True),
    "Max_SumShiftExpWeight": ("-SqDist(x, y)", "g", lambda x, y, b: -_d2(x, y), True),
}
K = 3


def pattern(seed: int, m: int = M, n: int = N):
    """Random clusters on both axes and a random block mask with a row cluster
    and a column cluster kept nowhere, and an empty cluster on each axis."""
    gen = np.random.default_rng(seed)
    ri = random_clusters(gen, m, 7)
    rj = random_clusters(gen, n, 6)
    ri = np.insert(ri, 3, [ri[2, 1], ri[2, 1]], axis=0)  # an empty row cluster
    rj = np.insert(rj, 2, [rj[1, 1], rj[1, 1]], axis=0)
    keep = gen.random((len(ri), len(rj))) < 0.45
    keep[1, :] = False
    keep[:, 4] = False
    return ri, rj, keep


def inputs(seed: int, dtype, m: int = M, n: int = N):
    gen = np.random.default_rng(seed)
    x = gen.uniform(-1, 1, (m, 3))
    y = gen.uniform(-1, 1, (n, 3))
    b = gen.uniform(-0.5, 0.5, (n, 1))
    g = gen.uniform(0.5, 1.5, (n, 2))
    return [a.astype(dtype) for a in (x, y, b, g)]


def reference(name, x, y, b, g, mask, axis):
    formula, formula2, f, weighted = CASES[name]
    x, y, b, g = (a.astype(np.float64) for a in (x, y, b, g))
    vals = f(x, y, b)
    w = np.broadcast_to(g[None], (x.shape[0], y.shape[0], 2)) if weighted else None
    if axis == 0:
        vals = vals.transpose(1, 0, 2)
        w = None if w is None else w.transpose(1, 0, 2)
        mask = mask.T
    return as_tuple(masked_reduction(name, vals, mask, w, K))


def routine(name, axis, **kwargs):
    formula, formula2, _, _ = CASES[name]
    opts = {"opt_arg": K} if "KMin" in name else {}
    if formula2:
        opts["formula2"] = formula2
    return Genred(formula, ALIASES, reduction_op=name, axis=axis, **opts, **kwargs)


def check(out, ref, dtype, what):
    out = as_tuple(out)
    assert len(out) == len(ref), what
    for a, r in zip(out, ref):
        a = np.asarray(a)
        assert a.shape == r.shape, f"{what}: shape {a.shape}, expected {r.shape}"
        if r.dtype == np.int64:
            np.testing.assert_array_equal(a, r, err_msg=what)
        else:
            np.testing.assert_allclose(a.astype(np.float64), r, **tolerances(dtype),
                                       err_msg=what)


@pytest.mark.parametrize("backend", ["cpu", "numpy"])
@pytest.mark.parametrize("axis", [1, 0])
@pytest.mark.parametrize("name", list(CASES))
def test_every_reduction_both_axes(name, axis, backend):
    ri, rj, keep = pattern(1)
    ranges = ranges_from_mask(ri, rj, keep)
    mask = pair_mask(ri, rj, keep, M, N)
    for dtype in (np.float64, np.float32):
        x, y, b, g = inputs(2, dtype)
        out = routine(name, axis)(x, y, b, g, ranges=ranges, backend=backend)
        check(out, reference(name, x, y, b, g, mask, axis), dtype, f"{name} axis={axis}")


@pytest.mark.parametrize("axis", [1, 0])
@pytest.mark.parametrize("name", list(CASES))
def test_every_reduction_on_dask_inputs(name, axis):
    """Dask inputs: the result is lazy, and right once computed."""
    ri, rj, keep = pattern(7)
    ranges = ranges_from_mask(ri, rj, keep)
    mask = pair_mask(ri, rj, keep, M, N)
    import dask
    import dask.array as da

    x, y, b, g = inputs(8, np.float64)
    lazy = routine(name, axis)(da.from_array(x, chunks=(20, 3)), da.from_array(y, chunks=(15, 3)),
                               da.from_array(b, chunks=(15, 1)), da.from_array(g, chunks=(15, 2)),
                               ranges=ranges, backend="cpu")
    assert all(isinstance(part, da.Array) for part in as_tuple(lazy))
    check(dask.compute(*as_tuple(lazy), scheduler="sync"),
          reference(name, x, y, b, g, mask, axis), np.float64, f"{name} axis={axis} dask")


@pytest.mark.parametrize("name", ["Sum", "ArgMin", "KMin_ArgKMin", "LogSumExp",
                                  "SumSoftMaxWeight"])
def test_many_tasks_skip_empty_blocks(name):
    """Blocks small enough that many (row block, column range) pairs hold no
    kept pair: those are not tasks, and the merged result is unchanged."""
    ri, rj, keep = pattern(3)
    ranges = ranges_from_mask(ri, rj, keep)
    mask = pair_mask(ri, rj, keep, M, N)
    x, y, b, g = inputs(4, np.float64)
    for axis in (1, 0):
        out = routine(name, axis)(x, y, b, g, ranges=ranges, backend="cpu",
                                  block_size=(5, 4), scheduler="sync")
        check(out, reference(name, x, y, b, g, mask, axis), np.float64, f"{name} {axis}")


def test_rows_in_no_cluster_get_the_identity():
    """Clusters that leave gaps: rows outside every cluster reduce over nothing."""
    ri = np.array([[3, 10], [10, 20], [31, 40], [50, 55]], np.int32)
    rj = np.array([[0, 12], [12, 30], [40, N]], np.int32)
    keep = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 1], [0, 0, 1]], bool)
    ranges = ranges_from_mask(ri, rj, keep)
    mask = pair_mask(ri, rj, keep, M, N)
    x, y, b, g = inputs(5, np.float64)
    for name in ("Sum", "Min_ArgMin", "LogSumExp"):
        for backend in ("cpu", "numpy"):
            out = routine(name, 1)(x, y, b, g, ranges=ranges, backend=backend)
            check(out, reference(name, x, y, b, g, mask, 1), np.float64, name)
            # and the transposed reduction reads the other triple
            out = routine(name, 0)(x, y, b, g, ranges=ranges, backend=backend)
            check(out, reference(name, x, y, b, g, mask, 0), np.float64, name)


def test_wide_kernels():
    """Kernels with contractions over D >= 16 (their column panels restart at
    each kept range; ranges longer than a panel), streamed wide sums, and the
    sum schemes, all against the masked reference."""
    gen = np.random.default_rng(6)
    m, n, d = 40, 700, 256
    x = gen.uniform(-1, 1, (m, d)) / 8
    y = gen.uniform(-1, 1, (n, d)) / 8
    v = gen.uniform(-1, 1, (n, 20))
    b = gen.uniform(-1, 1, (n, 1))
    ri = np.array([[0, 7], [7, 8], [8, 30], [30, 40]], np.int32)
    rj = np.array([[0, 300], [300, 310], [310, 650], [650, n]], np.int32)
    keep = np.array([[1, 0, 1, 1], [0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]], bool)
    ranges = ranges_from_mask(ri, rj, keep)
    mask = pair_mask(ri, rj, keep, m, n)
    k = np.exp(-((x[:, None] - y[None]) ** 2).sum(-1))
    aliases = [f"x = Vi({d})", f"y = Vj({d})", "b = Vj(1)"]
    for dtype in (np.float32, np.float64):
        xs, ys, bs = x.astype(dtype), y.astype(dtype), b.astype(dtype)
        for scheme in ("block_sum", "direct_sum", "kahan_scheme"):
            f = Genred("Exp(-SqDist(x, y)) * b", aliases, axis=1, sum_scheme=scheme)
            out = f(xs, ys, bs, ranges=ranges, backend="cpu")
            np.testing.assert_allclose(out, (k * mask) @ b, **tolerances(dtype),
                                       err_msg=scheme)
        f = Genred("SqDist(x, y)", aliases, reduction_op="ArgKMin", opt_arg=4, axis=1)
        d2 = ((x[:, None] - y[None]) ** 2).sum(-1, keepdims=True)
        ref = masked_reduction("ArgKMin", d2, mask, k=4)
        np.testing.assert_array_equal(f(xs, ys, bs, ranges=ranges, backend="cpu"), ref)
        fv = Genred("Exp(-SqDist(x, y)) * v", [*aliases, "v = Vj(20)"], axis=1)
        out = fv(xs, ys, bs, v.astype(dtype), ranges=ranges, backend="cpu")
        np.testing.assert_allclose(out, (k * mask) @ v, **tolerances(dtype))
