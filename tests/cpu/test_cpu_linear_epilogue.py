"""Sums whose linear maps run after the reduction (dredux.linear): the metric
Gaussian's gradients, a projection's gradient, an affine map, a matrix of the
output axis, a TensorDot, against float64 NumPy references of the formula as
written, on the NumPy and CPU backends, dask inputs, block-sparse ranges,
out=, batch axes and float16 (which runs the formula as written)."""

from __future__ import annotations

import warnings

import dask.array as da
import numpy as np
import pytest

from dredux import Genred
from dredux.codegen.products import matrix_vector
from dredux.ir import walk
from tests.cpu.cpu_util import tolerances
from tests.helpers import pair_mask, random_clusters, ranges_from_mask

D = 7
M, N = 53, 41
ALIASES = [f"x = Vi({D})", f"y = Vj({D})", f"s = Pm({D * D})", "e = Vi(1)", "b = Vj(1)",
           f"p = Pm({D})", f"a = Vj({D * D})"]


def _inputs(seed, dtype=np.float64, m=M, n=N):
    gen = np.random.default_rng(seed)
    x = gen.standard_normal((m, D)) * 0.3
    y = gen.standard_normal((n, D)) * 0.3
    root = gen.standard_normal((D, D)) * 0.3
    s = (root @ root.T + 0.5 * np.eye(D) + 0.2 * gen.standard_normal((D, D))).ravel()
    e = gen.standard_normal((m, 1))
    b = gen.random((n, 1)) + 0.5
    p = gen.standard_normal(D)
    a = gen.standard_normal((n, D * D)) * 0.4
    return [v.astype(dtype) for v in (x, y, s, e, b, p, a)]


def _metric(x, y, s):
    u = x[:, None] - y[None]
    sm = s.reshape(D, D)
    return u, sm, np.exp(-np.einsum("ijk,kl,ijl->ij", u, sm, u))[..., None]


def _grad_x(x, y, s, e, b, p, a):
    u, sm, k = _metric(x, y, s)
    return -e[:, None] * k * np.einsum("ijk,lk->ijl", u, sm + sm.T)


def _grad_y(x, y, s, e, b, p, a):
    return -_grad_x(x, y, s, e, b, p, a)


def _projection_grad(x, y, s, e, b, p, a):
    u = x[:, None] - y[None]
    sm = s.reshape(D, D)
    su = np.einsum("lk,ijk->ijl", sm, u)
    k = np.exp(-(su ** 2).sum(-1, keepdims=True)) * b[None]
    return e[:, None] * k * -2 * np.einsum("ijl,lk->ijk", su, sm)


def _affine(x, y, s, e, b, p, a):
    u = x[:, None] - y[None]
    return np.einsum("lk,ijk->ijl", s.reshape(D, D), u) + p


def _column_matrix(x, y, s, e, b, p, a):  # reduced over i: (j, i) pairs
    v = y[:, None] - x[None]
    k = np.exp(-(v ** 2).sum(-1, keepdims=True))
    return np.einsum("jlk,jik->jil", a.reshape(-1, D, D), v) * k


def _tensordot(x, y, s, e, b, p, a):
    u = x[:, None] - y[None]
    k = np.exp(-(u ** 2).sum(-1, keepdims=True))
    return np.einsum("lk,ijk->ijl", s.reshape(D, D), u) * k * e[:, None]


# name -> (formula, axis, float64 pair values (out rows, reduced, dim))
CASES = {
    "metric-grad-x": ("Grad(Exp(-WeightedSqDist(s, x, y)), x, e)", 1, _grad_x),
    "metric-grad-y": ("Grad(Exp(-WeightedSqDist(s, x, y)), y, e)", 1, _grad_y),
    "projection-grad": ("Grad(Exp(-SqNorm2(MatVecMult(s, x - y))) * b, x, e)", 1,
                        _projection_grad),
    "affine": ("MatVecMult(s, x - y) + p", 1, _affine),
    "column-matrix": ("MatVecMult(a, y - x) * Exp(-SqDist(x, y))", 0, _column_matrix),
    "tensordot": (f"TensorDot(s, x - y, [{D}, {D}], [{D}], [1], [0]) * Exp(-SqDist(x, y)) * e",
                  1, _tensordot),
}


def _routine(name):
    formula, axis, _ = CASES[name]
    g = Genred(formula, ALIASES, reduction_op="Sum", axis=axis)
    assert g.epilogue is not None, f"{name}: the linear maps stayed in the kernel"
    return g


def _reference(name, args, mask=None):
    _, axis, pairs = CASES[name]
    f = pairs(*(v.astype(np.float64) for v in args))
    if mask is not None:
        f = np.where(mask[:, :, None], f, 0)
    return f.sum(1)


def _assert_close(out, ref, dtype):
    tol = tolerances(dtype)
    scale = np.abs(ref).max()
    np.testing.assert_allclose(out, ref, rtol=tol["rtol"] * 10, atol=tol["atol"] * 10 * scale)


def _products(formula):
    return sum(1 for n in walk(formula) if matrix_vector(n) is not None)


def test_metric_gradient_reduces_one_vector_per_pair():
    """The metric gradient's two products by S move after the sum: the kernel
    sums the single vector c (x - y) (one product left per pair, inside c)."""
    g = _routine("metric-grad-x")
    (f,) = g.inner.formulas
    assert f.dim == D
    assert _products(g.formulas[0]) == 2 and _products(f) == 1
    assert g.inner._cost() < g._cost()
    assert g.epilogue.startswith("MatVecMult(s, z0)+VecMatMult(z0, s) with")


@pytest.mark.parametrize("formula, reduction", [
    ("Exp(-SqDist(x, y)) * b", "Sum"),  # nothing linear moves out
    ("e * Exp(-SqDist(x, y)) * (x - y)", "Sum"),
    ("MatVecMult(s, x - y)", "Max"),  # not a sum
    ("Exp(-SqDist(x, y))", "LogSumExp")])
def test_no_split_where_nothing_moves(formula, reduction):
    g = Genred(formula, ALIASES, reduction_op=reduction, axis=1)
    assert g.epilogue is None and g.inner is g


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(CASES))
def test_split_sums_match_reference(name, dtype, backend):
    g = _routine(name)
    args = _inputs(1, dtype)
    out = g(*args, backend=backend)
    assert out.dtype == dtype and out.shape == (N if CASES[name][1] == 0 else M, D)
    _assert_close(out, _reference(name, args), dtype)


@pytest.mark.parametrize("name", sorted(CASES))
def test_split_sums_under_ranges(name):
    """Block-sparse: the fixed terms (``+ p``) count the kept pairs of each row."""
    g = _routine(name)
    args = _inputs(2)
    axis = CASES[name][1]
    gen = np.random.default_rng(3)
    ri, rj = random_clusters(gen, M, 6), random_clusters(gen, N, 5)
    keep = gen.random((len(ri), len(rj))) < 0.5
    keep[2, :] = False
    ranges = ranges_from_mask(ri, rj, keep)
    mask = pair_mask(ri, rj, keep, M, N)
    out = g(*args, backend="cpu", ranges=ranges)
    _assert_close(out, _reference(name, args, mask if axis == 1 else mask.T), np.float64)


@pytest.mark.parametrize("name", ["metric-grad-x", "column-matrix"])
def test_split_sums_on_dask_inputs(name):
    g = _routine(name)
    args = _inputs(4)
    lazy = [da.from_array(v, chunks=(17, -1)) if v.ndim == 2 else da.from_array(v)
            for v in args]
    out = g(*lazy, backend="cpu", block_size=(17, 20))
    assert isinstance(out, da.Array)
    _assert_close(out.compute(), _reference(name, args), np.float64)
    mixed = [lazy[0], *args[1:]]  # NumPy and dask inputs together
    _assert_close(g(*mixed, backend="cpu").compute(), _reference(name, args), np.float64)


def test_split_sum_writes_out():
    g = _routine("metric-grad-x")
    args = _inputs(5)
    out = np.full((M, D), np.nan)
    assert g(*args, backend="cpu", out=out) is out
    _assert_close(out, _reference("metric-grad-x", args), np.float64)


def test_split_sum_with_batch_axes():
    """A matrix per batch item becomes a variable of the output axis: the
    epilogue multiplies each row by its own."""
    g = _routine("metric-grad-x")
    items = [_inputs(10 + k) for k in range(3)]
    stacked = [np.stack([it[k] for it in items]) for k in range(len(ALIASES))]
    out = g(*stacked, backend="cpu")
    for k, it in enumerate(items):
        _assert_close(out[k], _reference("metric-grad-x", it), np.float64)


def test_float16_runs_the_formula_as_written():
    g = _routine("metric-grad-x")
    args = _inputs(6, np.float16)
    out = g(*args, backend="cpu")
    assert out.dtype == np.float16
    ref = _reference("metric-grad-x", args)
    np.testing.assert_allclose(out, ref, rtol=2e-2, atol=2e-2 * np.abs(ref).max())


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_epilogue_overflow_gives_inf_without_warnings(backend):
    # the product by a huge constant runs in the epilogue: inf, like the kernels, and no
    # RuntimeWarning from dredux's own NumPy code
    x, y = np.full((3, 1), 2.0), np.ones((4, 1))
    f = Genred("(x + y) * 1.7976931348623157e308", ["x = Vi(1)", "y = Vj(1)"],
               reduction_op="Sum", axis=1)
    assert f._split is not None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = f(x, y, backend=backend)
    assert np.all(np.isposinf(out))
