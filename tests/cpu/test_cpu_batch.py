"""Batch axes: (B..., M, D) i-variables, (B..., N, D) j-variables, (B..., D)
parameters, with size-1 batch axes broadcast, on the CPU and NumPy backends;
every reduction over both axes against a loop over the batch of float64 NumPy
references (tests/helpers.masked_reduction with every pair kept)."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from dredux import Genred
from dredux.errors import ShapeError
from tests.cpu.cpu_util import as_tuple
from tests.cpu.test_cpu_ranges import CASES, K, check
from tests.helpers import masked_reduction, pair_mask, ranges_from_mask

ALIASES = ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "g = Vj(2)", "p = Pm(1)"]


def _items(bshape, m, n, seed, dtype):
    gen = np.random.default_rng(seed)
    x = gen.uniform(-1, 1, (*bshape, m, 3))
    y = gen.uniform(-1, 1, (bshape[0], 1, n, 3)) if len(bshape) == 2 else \
        gen.uniform(-1, 1, (*bshape, n, 3))
    b = gen.uniform(-0.5, 0.5, (1, n, 1)) if len(bshape) == 1 else \
        gen.uniform(-0.5, 0.5, (*bshape, n, 1))
    g = gen.uniform(0.5, 1.5, (*bshape, n, 2))
    p = gen.uniform(0.5, 2.0, (*bshape, 1))
    return [a.astype(dtype) for a in (x, y, b, g, p)]


def _reference(name, x, y, b, g, p, axis, bshape):
    """Loop over the batch items: the (p-scaled) formula of the case, every pair kept."""
    _, _, f, weighted = CASES[name]
    full = np.broadcast_shapes(x.shape[:-2], y.shape[:-2], b.shape[:-2], g.shape[:-2],
                               p.shape[:-1])
    assert full == bshape
    outs = []
    for idx in np.ndindex(*bshape):
        xi, yi, bi, gi, pi = (np.broadcast_to(a, (*bshape, *a.shape[a.ndim - t:]))[idx]
                              .astype(np.float64)
                              for a, t in ((x, 2), (y, 2), (b, 2), (g, 2), (p, 1)))
        vals = f(xi, yi, bi) * pi[0]
        w = np.broadcast_to(gi[None], (len(xi), len(yi), 2)) if weighted else None
        if axis == 0:
            vals = vals.transpose(1, 0, 2)
            w = None if w is None else w.transpose(1, 0, 2)
        mask = np.ones(vals.shape[:2], bool)
        outs.append(as_tuple(masked_reduction(name, vals, mask, w, K)))
    return tuple(np.stack(parts).reshape(*bshape, *parts[0].shape) for parts in zip(*outs))


def _routine(name, axis):
    formula, formula2, _, _ = CASES[name]
    opts = {"opt_arg": K} if "KMin" in name else {}
    if formula2:
        opts["formula2"] = formula2
    return Genred(f"({formula}) * p", ALIASES, reduction_op=name, axis=axis, **opts)


@pytest.mark.parametrize("backend", ["cpu", "numpy"])
@pytest.mark.parametrize("axis", [1, 0])
@pytest.mark.parametrize("name", list(CASES))
def test_every_reduction_both_axes(name, axis, backend):
    """Batch (3,) with a shared j-variable b (batch axis 1) and a parameter that
    varies over the batch; batch (2, 3) with y shared along the second axis."""
    for bshape, dtype in (((3,), np.float64), ((2, 3), np.float32)):
        args = _items(bshape, 13, 9, 7, dtype)
        out = _routine(name, axis)(*args, backend=backend)
        check(out, _reference(name, *args, axis, bshape), dtype, f"{name} {bshape}")


def test_many_small_items_are_few_tasks():
    """1000 items of 20 x 30: a handful of block tasks, not one per item."""
    gen = np.random.default_rng(1)
    x, y = gen.random((1000, 20, 3)), gen.random((1000, 30, 3))
    b = gen.random((1000, 30, 1))
    f = Genred("Exp(-SqDist(x, y)) * b", ALIASES[:3], axis=1)
    lazy = f(da.from_array(x, chunks=(100, 20, 3)), da.from_array(y, chunks=(100, 30, 3)),
             da.from_array(b, chunks=(100, 30, 1)), backend="cpu")
    assert isinstance(lazy, da.Array) and lazy.shape == (1000, 20, 1)
    from dredux.graph import run_block

    tasks = sum(1 for layer in lazy.__dask_graph__().layers.values()
                for t in dict(layer).values() if isinstance(t, tuple) and t[:1] == (run_block,))
    assert 1 <= tasks <= 64, tasks
    ref = np.einsum("bij,bjk->bik",
                    np.exp(-((x[:, :, None] - y[:, None]) ** 2).sum(-1)), b)
    np.testing.assert_allclose(lazy.compute(), ref, rtol=1e-12)
    np.testing.assert_allclose(f(x, y, b, backend="cpu"), ref, rtol=1e-12)


def test_out_and_bad_batch_shapes():
    gen = np.random.default_rng(2)
    x, y, b = gen.random((4, 5, 3)), gen.random((4, 6, 3)), gen.random((4, 6, 1))
    f = Genred("SqDist(x, y) * b", ALIASES[:3], axis=1)
    out = np.empty((4, 5, 1))
    assert f(x, y, b, out=out, backend="cpu") is out
    ref = np.einsum("bij,bjk->bik", ((x[:, :, None] - y[:, None]) ** 2).sum(-1), b)
    np.testing.assert_allclose(out, ref, rtol=1e-12)
    with pytest.raises(ShapeError, match=r"out has shape \(4, 5\); expected \(4, 5, 1\)"):
        f(x, y, b, out=np.empty((4, 5)), backend="cpu")
    with pytest.raises(ShapeError) as info:
        f(x, gen.random((3, 6, 3)), b, backend="cpu")
    assert "(4, 5, 3)" in str(info.value) and "(3, 6, 3)" in str(info.value)


@pytest.mark.parametrize("backend", ["cpu", "numpy"])
def test_ranges_with_batch_axes(backend):
    """As in KeOps, ranges of a batched call index the flattened rows and columns
    (item b: rows [b M, (b + 1) M)); a block that crosses items is refused."""
    gen = np.random.default_rng(4)
    count, m, n = 3, 10, 8
    x, y = gen.random((count, m, 3)), gen.random((count, n, 3))
    ri = np.array([[k * 5, k * 5 + 5] for k in range(2 * count)])
    rj = np.array([[k * 4, k * 4 + 4] for k in range(2 * count)])
    keep = np.zeros((2 * count, 2 * count), bool)
    for item in range(count):  # random blocks inside each item
        keep[2 * item:2 * item + 2, 2 * item:2 * item + 2] = gen.random((2, 2)) < 0.6
    keep[1] = False
    mask = pair_mask(ri, rj, keep, count * m, count * n)
    f = Genred("SqDist(x, y)", ["x = Vi(3)", "y = Vj(3)"], reduction_op="Min_ArgMin", axis=1)
    val, idx = f(x, y, ranges=ranges_from_mask(ri, rj, keep), backend=backend)
    d2 = ((x.reshape(-1, 3)[:, None] - y.reshape(-1, 3)[None]) ** 2).sum(-1, keepdims=True)
    ref_val, ref_idx = masked_reduction("Min_ArgMin", d2, mask)
    shift = np.repeat(np.arange(count) * n, m)[:, None]
    ref_idx = np.where(ref_idx >= 0, ref_idx - shift, -1)
    np.testing.assert_allclose(val, ref_val.reshape(count, m, 1), rtol=1e-12)
    np.testing.assert_array_equal(idx, ref_idx.reshape(count, m, 1))
    keep[0, 2] = True  # item 0's rows against item 1's columns
    with pytest.raises(ShapeError, match="each block lies in one item"):
        f(x, y, ranges=ranges_from_mask(ri, rj, keep), backend=backend)


@pytest.mark.parametrize("backend", ["cpu", "numpy"])
def test_shared_reduced_axis_is_not_copied(backend):
    """Items sharing the reduced axis's variables (a 2-D y, a (1, N, 1) b): the
    flat call takes them once (its column count is N, not B N) and indices need
    no shift; with ranges= they are laid out per item as KeOps indexes them."""
    gen = np.random.default_rng(5)
    count, m, n = 5, 12, 9
    x, y, b = gen.random((count, m, 3)), gen.random((n, 3)), gen.random((1, n, 1))
    d2 = ((x[:, :, None] - y[None, None]) ** 2).sum(-1)  # (count, m, n)
    f = Genred("SqDist(x, y) * b", ALIASES[:3], reduction_op="Min_ArgMin", axis=1)
    val, idx = f(x, y, b, backend=backend)
    vals = d2 * b[0, :, 0]
    np.testing.assert_allclose(val[..., 0], vals.min(-1), rtol=1e-12)
    np.testing.assert_array_equal(idx[..., 0], vals.argmin(-1))
    from dredux.batch import flatten

    flat, _, _, shared = flatten(f.signature, [x, y, b], (count,), 1)
    assert shared and flat[1].shape == (n, 3) and flat[0].shape == (count * m, 3)
    ri = np.array([[k * 6, k * 6 + 6] for k in range(2 * count)])
    rj = np.array([[k * n, k * n + n] for k in range(count)])
    keep = np.zeros((2 * count, count), bool)
    keep[np.arange(2 * count), np.arange(2 * count) // 2] = True
    keep[3] = False  # item 1's second half of rows keeps nothing
    val, idx = f(x, y, b, backend=backend, ranges=ranges_from_mask(ri, rj, keep))
    expect_val, expect_idx = vals.min(-1), vals.argmin(-1)
    expect_val[1, 6:], expect_idx[1, 6:] = np.inf, -1
    np.testing.assert_allclose(val[..., 0], expect_val, rtol=1e-12)
    np.testing.assert_array_equal(idx[..., 0], expect_idx)
