"""Every reduction on the CPU backend, against NumPy float64 references written here.

Each case is a formula, a reduction and a brute-force reference of the
reduction over the (M, N, D) array of formula values. Every case runs in
float32 and float64, for both axes, at sizes on the edges of the kernel's
lanes (16 floats / 8 doubles) and tiles (512 columns), with M or N = 0 and 1,
and is also compared with the "numpy" backend. Index outputs must match
exactly (the data has no ties unless a test makes them on purpose).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from dredux import Genred
from tests.cpu.cpu_util import as_tuple, precompile, tolerances

ALIASES = ["x = Vi(3)", "y = Vj(3)", "b = Vj(2)", "p = Pm(1)"]
K = 5
SIZES = [(9, 0), (9, 1), (9, 15), (9, 16), (9, 17), (3, 511), (3, 512), (3, 513), (2, 1025),
         (0, 33), (1, 33), (8, 33)]


# ---------------------------------------------------------------------------
# references: f (M, N, D) float64 [, g (M, N, E)] -> outputs, reduced over axis 1
# ---------------------------------------------------------------------------

def _clean(f, low):
    return np.where(np.isnan(f), -np.inf if low else np.inf, f)


def ref_best(low: bool, layout: str):
    """Max/Min-type reductions: NaN never wins, ties go to the first index."""
    def ref(f, g):
        c = _clean(f, low)
        m, n, d = c.shape
        if n == 0:
            val = np.full((m, d), -np.inf if low else np.inf)
            idx = np.full((m, d), -1)
        else:
            idx = c.argmax(1) if low else c.argmin(1)
            val = np.take_along_axis(c, idx[:, None, :], 1)[:, 0, :]
        return {"val": (val,), "idx": (idx,), "val_idx": (val, idx)}[layout]
    return ref


def ref_kmin(layout):
    def ref(f, g):
        c = _clean(f, False)
        m, n, d = c.shape
        order = np.argsort(c, axis=1, kind="stable")[:, :K, :]
        val = np.take_along_axis(c, order, 1)
        idx = order.astype(np.int64)
        if n < K:
            val = np.concatenate([val, np.full((m, K - n, d), np.inf)], 1)
            idx = np.concatenate([idx, np.full((m, K - n, d), -1)], 1)
        if d == 1:
            val, idx = val[..., 0], idx[..., 0]
        return {"val": (val,), "idx": (idx,), "val_idx": (val, idx)}[layout]
    return ref


def ref_lse(layout, weights):
    def ref(f, g):
        m_, n, _ = f.shape
        if weights == "softmax":
            w = np.concatenate([np.ones((m_, n, 1)), g], 2)
        else:
            w = g if weights == "g" else np.ones((m_, n, 1))
        mx = f.max(1) if n else np.full((m_, 1), -np.inf)
        shift = np.where(np.isneginf(mx), 0, mx)
        s = (np.exp(f - shift[:, None, :]) * w).sum(1)
        with np.errstate(divide="ignore", invalid="ignore"):
            if layout == "log":
                return (mx + np.log(s),)
            if layout == "softmax":
                return (s[:, 1:] / s[:, :1],)
        return (np.concatenate([mx, s], 1),)
    return ref


@dataclass
class Case:
    reduction: str
    formula: str
    ref: Callable
    formula2: str | None = None
    opt_arg: int | None = None


GAUSS = "Exp(-p * SqDist(x, y)) * b"
CASES = {
    "Sum": Case("Sum", GAUSS, lambda f, g: (f.sum(1),)),
    "Max": Case("Max", "x * y", ref_best(True, "val")),
    "Min": Case("Min", "x * y", ref_best(False, "val")),
    "ArgMax": Case("ArgMax", "x * y", ref_best(True, "idx")),
    "ArgMin": Case("ArgMin", "x - y", ref_best(False, "idx")),
    "Max_ArgMax": Case("Max_ArgMax", "x * y", ref_best(True, "val_idx")),
    "Min_ArgMin": Case("Min_ArgMin", "x + y", ref_best(False, "val_idx")),
    "KMin": Case("KMin", "SqDist(x, y)", ref_kmin("val"), opt_arg=K),
    "ArgKMin": Case("ArgKMin", "SqDist(x, y)", ref_kmin("idx"), opt_arg=K),
    "KMin_ArgKMin": Case("KMin_ArgKMin", "Square(x - y)", ref_kmin("val_idx"), opt_arg=K),
    "LogSumExp": Case("LogSumExp", "-p * SqDist(x, y)", ref_lse("log", None)),
    "LogSumExp_g": Case("LogSumExp", "-p * SqDist(x, y)", ref_lse("log", "g"), "b"),
    "LogSumExpWeight": Case("LogSumExpWeight", "-p * SqDist(x, y)", ref_lse("log", "g"), "b"),
    "SumSoftMaxWeight": Case("SumSoftMaxWeight", "-p * SqDist(x, y)",
                             ref_lse("softmax", "softmax"), "b"),
    "Max_SumShiftExp": Case("Max_SumShiftExp", "-p * SqDist(x, y)", ref_lse("raw", None)),
    "Max_SumShiftExpWeight": Case("Max_SumShiftExpWeight", "-p * SqDist(x, y)",
                                  ref_lse("raw", "g"), "b"),
}
DTYPES = (np.float32, np.float64)


def routine(name: str, axis: int, **kwargs) -> Genred:
    case = CASES[name]
    return Genred(case.formula, ALIASES, reduction_op=case.reduction, axis=axis,
                  opt_arg=case.opt_arg, formula2=case.formula2, **kwargs)


ROUTINES = {(name, axis): routine(name, axis) for name in CASES for axis in (0, 1)}


@pytest.fixture(scope="module", autouse=True)
def compiled():
    precompile((r, d) for r in ROUTINES.values() for d in DTYPES)


def test_every_reduction_has_a_case():
    from dredux.reductions import REDUCTIONS

    assert {c.reduction for c in CASES.values()} == set(REDUCTIONS)


# ---------------------------------------------------------------------------
# inputs and the brute-force evaluation of the formulas
# ---------------------------------------------------------------------------

def inputs(m_i, n_j, dtype, seed):
    gen = np.random.default_rng(seed)
    x = gen.uniform(-1, 1, (m_i, 3))
    y = gen.uniform(-1, 1, (n_j, 3))
    b = gen.uniform(0.1, 1, (n_j, 2))
    p = np.array([gen.uniform(0.5, 2)])
    return [a.astype(dtype) for a in (x, y, b, p)]


def formula_values(name, x, y, b, p):
    """(F, G) of the case as (M_i, N_j, D) float64 arrays, written with NumPy."""
    x, y, b, p = (a.astype(np.float64) for a in (x, y, b, p))
    xi, yj, bj = x[:, None, :], y[None, :, :], b[None, :, :]
    sq = ((xi - yj) ** 2).sum(-1, keepdims=True)
    formula = CASES[name].formula
    if formula == GAUSS:
        f = np.exp(-p * sq) * bj
    elif formula == "x * y":
        f = xi * yj
    elif formula == "x - y":
        f = xi - yj
    elif formula == "x + y":
        f = xi + yj
    elif formula == "SqDist(x, y)":
        f = sq
    elif formula == "Square(x - y)":
        f = (xi - yj) ** 2
    else:
        assert formula == "-p * SqDist(x, y)", formula
        f = -p * sq
    shape = (x.shape[0], y.shape[0])
    f = np.broadcast_to(f, shape + f.shape[-1:])
    g = np.broadcast_to(bj, shape + (2,)) if CASES[name].formula2 else None
    return f, g


def reference(name, axis, args):
    """The outputs of case ``name`` for ``axis``, from the float64 brute force."""
    f, g = formula_values(name, *args)
    if axis == 0:  # reduce over i: put the reduced axis second
        f = f.transpose(1, 0, 2)
        g = None if g is None else g.transpose(1, 0, 2)
    return CASES[name].ref(f, g)


def check(out, ref, dtype, what):
    out = as_tuple(out)
    assert len(out) == len(ref), what
    tol = tolerances(dtype)
    for got, want in zip(out, ref):
        assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
        if want.dtype.kind == "i":
            assert got.dtype == np.int64, what
            np.testing.assert_array_equal(got, want, err_msg=what)
        else:
            assert got.dtype == np.dtype(dtype), what
            np.testing.assert_allclose(got.astype(np.float64), want, err_msg=what, **tol)


# ---------------------------------------------------------------------------
# the tests
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("axis", [1, 0])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(CASES))
def test_reduction_matches_reference_on_block_edges(name, dtype, axis):
    g = ROUTINES[(name, axis)]
    for k, (m, n) in enumerate(SIZES):
        # the output axis has m rows, the reduced axis n
        m_i, n_j = (m, n) if axis == 1 else (n, m)
        args = inputs(m_i, n_j, dtype, seed=k)
        what = f"{name} axis={axis} {np.dtype(dtype).name} M={m_i} N={n_j}"
        out = g(*args, backend="cpu")
        check(out, reference(name, axis, args), dtype, what)
        numpy_out = as_tuple(g(*args, backend="numpy"))
        for got, want in zip(as_tuple(out), numpy_out):
            if want.dtype.kind == "i":
                np.testing.assert_array_equal(got, want, err_msg=what + " vs numpy")
            else:
                np.testing.assert_allclose(got, want, err_msg=what + " vs numpy",
                                           **tolerances(dtype))


@pytest.mark.parametrize("name", ["Sum", "LogSumExp_g", "SumSoftMaxWeight", "ArgKMin",
                                  "Max_ArgMax"])
def test_many_blocks_merge_like_one(name):
    """A graph of many block tasks (tree merge of kernel states) gives the one-task result."""
    g = ROUTINES[(name, 1)]
    args = inputs(37, 301, np.float64, seed=5)
    whole = as_tuple(g(*args, backend="cpu"))
    split = as_tuple(g(*args, backend="cpu", block_size=(8, 40), split_every=3))
    check(split, reference(name, 1, args), np.float64, name)
    for a, b in zip(whole, split):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)
