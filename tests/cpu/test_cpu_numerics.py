"""Summation schemes, accumulator dtypes, float16, NaN and ties on the CPU backend.

References are NumPy float64 brute force written here (``math.fsum`` where an
exactly rounded sum is needed).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from dredux import Genred
from tests.cpu.cpu_util import as_tuple, precompile, tolerances
from tests.unit.test_simplify import FOLDING_CASES, folding_inputs

SCHEMES = ("direct_sum", "block_sum", "kahan_scheme")
LSE_ALIASES = ["x = Vi(2)", "y = Vj(2)", "b = Vj(2)"]


def sum_routine(scheme, **kwargs):
    return Genred("y * x", ["x = Vi(1)", "y = Vj(1)"], reduction_op="Sum", axis=1,
                  sum_scheme=scheme, **kwargs)


def lse_routine(name, scheme, **kwargs):
    formula2 = "b" if name != "LogSumExp" else None
    aliases = LSE_ALIASES if formula2 else LSE_ALIASES[:2]
    return Genred("-SqDist(x, y)", aliases, reduction_op=name, axis=1,
                  formula2=formula2, sum_scheme=scheme, **kwargs)


SUMS = {s: sum_routine(s) for s in SCHEMES}
SUMS_F64ACC = {s: sum_routine(s, dtype_acc="float64") for s in SCHEMES}
LSES = {(name, s): lse_routine(name, s) for name in ("LogSumExp", "SumSoftMaxWeight")
        for s in SCHEMES}


@pytest.fixture(scope="module", autouse=True)
def compiled():
    pairs = [(r, np.float32) for r in (*SUMS.values(), *SUMS_F64ACC.values(), *LSES.values())]
    pairs += [(r, np.float64) for r in (*SUMS.values(), *LSES.values())]
    precompile(pairs)


def exact_sums(x, y):
    """sum_j y_j x_i for each i, exactly rounded (fsum) from the float64 products."""
    return np.array([[math.fsum((y[:, 0].astype(np.float64) * float(xi)).tolist())]
                     for xi in x[:, 0].astype(np.float64)])


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [0, 1, 17, 513, 1025])
def test_sum_schemes_match_exact_sums(scheme, dtype, n):
    gen = np.random.default_rng(n)
    x = gen.uniform(0.5, 1, (6, 1)).astype(dtype)
    y = gen.uniform(-1, 1, (n, 1)).astype(dtype)
    out = SUMS[scheme](x, y, backend="cpu")
    assert out.dtype == dtype
    # the products x_i y_j are rounded to dtype in the kernel, so compare with the
    # exact sum of the rounded products
    prods = (x[:, None, 0] * y[None, :, 0]).astype(np.float64)
    ref = np.array([[math.fsum(row.tolist())] for row in prods])
    scale = np.abs(prods).sum(1, keepdims=True) + 1e-30
    err = np.abs(out.astype(np.float64) - ref) / scale
    eps = np.finfo(dtype).eps
    bound = 2 * eps if scheme == "kahan_scheme" else 8 * eps
    assert err.max() <= bound, (scheme, err.max() / eps)


def test_kahan_beats_plain_sums_on_a_long_float32_sum():
    gen = np.random.default_rng(3)
    n = 1 << 20
    x = np.ones((2, 1), np.float32)
    y = (1 + gen.uniform(0, 1e-3, (n, 1))).astype(np.float32)
    ref = exact_sums(x, y)
    errors = {s: float(np.abs(SUMS[s](x, y, backend="cpu").astype(np.float64) - ref).max()
                       / ref.max()) for s in SCHEMES}
    assert errors["kahan_scheme"] <= 1.5 * np.finfo(np.float32).eps, errors
    assert errors["kahan_scheme"] <= errors["direct_sum"], errors
    assert errors["kahan_scheme"] <= errors["block_sum"], errors


@pytest.mark.parametrize("scheme", SCHEMES)
def test_float64_accumulation_of_float32_inputs(scheme):
    gen = np.random.default_rng(4)
    n = 1 << 18
    x = gen.uniform(0.5, 1, (3, 1)).astype(np.float32)
    y = (1 + gen.uniform(0, 1e-3, (n, 1))).astype(np.float32)
    routine = SUMS_F64ACC[scheme]
    assert routine.kernel("cpu", np.float32).layout.acc == np.float64
    out = routine(x, y, backend="cpu")
    assert out.dtype == np.float32
    prods = (x[:, None, 0] * y[None, :, 0]).astype(np.float64)
    ref = np.array([[math.fsum(row.tolist())] for row in prods])
    # only the final rounding to float32 remains
    np.testing.assert_allclose(out, ref, rtol=np.finfo(np.float32).eps, atol=0)
    state = routine.kernel("cpu", np.float32)([x], [y], [], 3, n, 0)
    assert all(s.dtype == np.float64 for s in state)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("name", ["LogSumExp", "SumSoftMaxWeight"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lse_schemes(name, scheme, dtype):
    gen = np.random.default_rng(5)
    for n in (0, 1, 16, 1100):
        x = gen.uniform(-1, 1, (7, 2)).astype(dtype)
        y = gen.uniform(-1, 1, (n, 2)).astype(dtype)
        b = gen.uniform(0.1, 1, (n, 2)).astype(dtype)
        args = (x, y, b) if name != "LogSumExp" else (x, y)
        out = LSES[(name, scheme)](*args, backend="cpu")
        f = -((x[:, None, :].astype(np.float64) - y[None].astype(np.float64)) ** 2).sum(-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            mx = f.max(1, keepdims=True) if n else np.full((7, 1), -np.inf)
            e = np.exp(f - np.where(np.isneginf(mx), 0, mx))
            if name == "LogSumExp":
                ref = mx + np.log(e.sum(1, keepdims=True))
            else:
                ref = (e[..., None] * b[None].astype(np.float64)).sum(1) / e.sum(1)[:, None]
        np.testing.assert_allclose(out, ref, err_msg=f"n={n}", **tolerances(dtype))


def test_float64_accumulation_applies_to_lse_and_kmin():
    gen = np.random.default_rng(6)
    x, y = gen.uniform(-1, 1, (5, 2)).astype(np.float32), gen.uniform(-1, 1, (300, 2)).astype(
        np.float32)
    lse = Genred("-SqDist(x, y)", LSE_ALIASES[:2], reduction_op="LogSumExp", axis=1,
                 dtype_acc="float64")
    kmin = Genred("SqDist(x, y)", LSE_ALIASES[:2], reduction_op="KMin_ArgKMin", opt_arg=3,
                  axis=1, dtype_acc="float64")
    f = ((x[:, None, :].astype(np.float64) - y[None]) ** 2).sum(-1)
    ref_lse = np.log(np.exp(-f).sum(1, keepdims=True))
    np.testing.assert_allclose(lse(x, y, backend="cpu"), ref_lse, rtol=2e-6)
    val, idx = kmin(x, y, backend="cpu")
    np.testing.assert_array_equal(idx, np.argsort(f, 1, kind="stable")[:, :3])
    np.testing.assert_allclose(val, np.sort(f, 1)[:, :3], rtol=2e-6)


@pytest.mark.parametrize("dtype_acc", ["auto", "float16", "float32"])
def test_float16_inputs_compute_in_float32(dtype_acc):
    gen = np.random.default_rng(7)
    x = gen.uniform(-1, 1, (9, 3)).astype(np.float16)
    y = gen.uniform(-1, 1, (40, 3)).astype(np.float16)
    g = Genred("Exp(-SqDist(x, y))", ["x = Vi(3)", "y = Vj(3)"], axis=1, dtype_acc=dtype_acc)
    kernel = g.kernel("cpu", np.float16)
    assert kernel.layout.compute == np.float32
    out = g(x, y, backend="cpu")
    assert out.dtype == np.float16
    ref = np.exp(-((x[:, None, :].astype(np.float64) - y[None]) ** 2).sum(-1)).sum(1)
    np.testing.assert_allclose(out[:, 0], ref, rtol=2e-3)
    state = kernel([x], [y], [], 9, 40, 0)
    want = np.float16 if dtype_acc == "float16" else np.float32
    assert state[0].dtype == want


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_float16_intermediates_past_the_float16_range_stay_finite(backend):
    # 1e5 and 1e5 * y overflow float16 but not float32: every backend computes in
    # float32 and rounds the result once
    x = np.array([[0.001], [1.0], [-2.0]], np.float16)
    y = np.array([[1.0], [0.5]], np.float16)
    g = Genred("x * 100000 * y / 100000", ["x = Vi(1)", "y = Vj(1)"], axis=1)
    out = g(x, y, backend=backend)
    assert out.dtype == np.float16
    ref = (x.astype(np.float64) * y.astype(np.float64).T).sum(1, keepdims=True)
    np.testing.assert_allclose(out, ref, rtol=2e-3)


# ---------------------------------------------------------------------------
# NaN never wins (Max/Min types) but propagates (Sum, LogSumExp); ties -> smaller index
# ---------------------------------------------------------------------------

NAN_ALIASES = ["x = Vi(1)", "y = Vj(1)"]


@pytest.mark.parametrize("name, low", [("Max_ArgMax", True), ("Min_ArgMin", False)])
def test_nan_never_wins(name, low):
    gen = np.random.default_rng(8)
    n = 70
    x = gen.uniform(0.5, 1, (4, 1))
    y = gen.uniform(-1, 1, (n, 1))
    y[[0, 3, 20, 40, 69]] = np.nan
    g = Genred("x * y", NAN_ALIASES, reduction_op=name, axis=1)
    val, idx = g(x, y, backend="cpu")
    clean = np.where(np.isnan(y[:, 0]), -np.inf if low else np.inf, y[:, 0])
    best = np.argmax(clean) if low else np.argmin(clean)
    np.testing.assert_array_equal(idx[:, 0], best)
    np.testing.assert_allclose(val[:, 0], x[:, 0] * y[best, 0])


def test_all_nan_rows_and_kmin_padding():
    y = np.full((3, 1), np.nan)
    x = np.ones((2, 1))
    val, idx = Genred("x * y", NAN_ALIASES, reduction_op="Max_ArgMax", axis=1)(
        x, y, backend="cpu")
    assert np.all(val == -np.inf) and np.all(idx == 0)  # NaN counts as -inf, first index
    kval, kidx = Genred("x * y", NAN_ALIASES, reduction_op="KMin_ArgKMin", opt_arg=5,
                        axis=1)(x, np.array([[2.0], [np.nan], [1.0]]), backend="cpu")
    np.testing.assert_array_equal(kidx, [[2, 0, 1, -1, -1]] * 2)
    np.testing.assert_array_equal(kval, [[1.0, 2.0, np.inf, np.inf, np.inf]] * 2)


def test_nan_propagates_through_sum_and_logsumexp():
    x = np.ones((3, 1))
    y = np.array([[1.0], [np.nan], [2.0]])
    assert np.isnan(Genred("x * y", NAN_ALIASES, axis=1)(x, y, backend="cpu")).all()
    lse = Genred("x * y", NAN_ALIASES, reduction_op="LogSumExp", axis=1)(x, y, backend="cpu")
    assert np.isnan(lse).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ties_go_to_the_smaller_index(dtype):
    """Equal values across lanes and tiles: the first column wins, as in NumPy."""
    gen = np.random.default_rng(9)
    n = 2100
    y = np.floor(gen.uniform(0, 4, (n, 1))).astype(dtype)  # values 0..3, many ties
    x = np.ones((5, 1), dtype)
    for name, low in (("Max_ArgMax", True), ("Min_ArgMin", False)):
        _, idx = Genred("x * y", NAN_ALIASES, reduction_op=name, axis=1)(x, y, backend="cpu")
        np.testing.assert_array_equal(idx[:, 0], np.argmax(y) if low else np.argmin(y))
    _, kidx = Genred("x * y", NAN_ALIASES, reduction_op="KMin_ArgKMin", opt_arg=7, axis=1)(
        x, y, backend="cpu")
    np.testing.assert_array_equal(kidx, np.tile(np.argsort(y[:, 0], kind="stable")[:7], (5, 1)))
    state = Genred("x * y", NAN_ALIASES, reduction_op="ArgMin", axis=1).kernel(
        "cpu", dtype)([x], [y], [], 5, n, 1000)
    assert np.all(as_tuple(state)[1] == 1000 + np.argmin(y))  # indices are global


def test_signed_zeros_tie_and_keep_the_first_value():
    """0.0 and -0.0 compare equal: the first column wins, with its own sign."""
    n = 1500  # a few tiles
    y = -np.linspace(1, 2, n).reshape(n, 1)
    y[5], y[700], y[1400] = -0.0, 0.0, -0.0
    x = np.ones((3, 1))
    val, idx = Genred("x * y", NAN_ALIASES, reduction_op="Max_ArgMax", axis=1)(
        x, y, backend="cpu")
    assert np.all(idx == 5) and np.all(np.signbit(val))
    assert np.argmax(y[:, 0]) == 5  # NumPy agrees on the index


@pytest.mark.parametrize("formula, reference", FOLDING_CASES)
def test_folded_constants_compile_and_agree_bitwise(formula, reference):
    """Constant folding never hands the C++ renderer inf, and its rewrites are exact:
    float64 results equal NumPy's to the last bit."""
    x = folding_inputs()
    out = Genred(formula, ["x = Vi(1)"], axis=1)(x, backend="cpu")
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(out, reference(x))
