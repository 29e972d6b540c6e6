"""Reductions against brute-force NumPy, the merge law and KeOps's output layout.

The brute-force references below see the whole (M, N) matrix of formula
values at once; the code under test sees it block by block (partial states
merged), through :class:`~dredux.reductions.Reduction` directly and through
``Genred(..., backend="numpy")``.
"""

from __future__ import annotations

import numpy as np
import pytest

from dredux import Genred
from dredux.reductions import REDUCTIONS, make_reduction
from tests.helpers import EDGE_SIZES, assert_close, rng

KMIN = ("KMin", "ArgKMin", "KMin_ArgKMin")
WEIGHTED = ("LogSumExpWeight", "SumSoftMaxWeight", "Max_SumShiftExpWeight")
LSE = ("LogSumExp", "Max_SumShiftExp", *WEIGHTED)


# ---------------------------------------------------------------------------
# brute-force references on the full matrix: f (M, N, D), g (M, N, E) or None
# ---------------------------------------------------------------------------

def _kmin(f, k):
    m, n, d = f.shape
    order = np.argsort(f, axis=1, kind="stable")[:, :k]
    vals = np.take_along_axis(f, order, axis=1)
    if n < k:  # fewer columns than K: the missing ones are +inf with index -1
        vals = np.concatenate([vals, np.full((m, k - n, d), np.inf)], axis=1)
        order = np.concatenate([order, np.full((m, k - n, d), -1)], axis=1)
    if d == 1:  # KeOps squeezes the last axis when D == 1
        vals, order = vals[..., 0], order[..., 0]
    return vals, order.astype(np.int64)


def _arg(f, pick):
    if f.shape[1] == 0:
        fill = -np.inf if pick is np.argmax else np.inf
        return np.full((f.shape[0], f.shape[2]), fill), np.full((f.shape[0], f.shape[2]), -1)
    idx = pick(f, axis=1)  # NumPy returns the first (smallest) index on ties
    return np.take_along_axis(f, idx[:, None, :], axis=1)[:, 0, :], idx.astype(np.int64)


def _lse(f, g):
    """(max, sum exp(f - max) * g) of every row, written plainly."""
    m = f.max(axis=1) if f.shape[1] else np.full((f.shape[0], 1), -np.inf)
    shift = np.where(np.isfinite(m), m, 0)
    g = np.ones_like(f) if g is None else g
    return m, (np.exp(f - shift[:, None, :]) * g).sum(axis=1)


def reference(name, f, g=None, k=None):
    if name == "Sum":
        return f.sum(axis=1)
    if name in ("Max", "Min"):
        if f.shape[1] == 0:
            return np.full((f.shape[0], f.shape[2]), -np.inf if name == "Max" else np.inf)
        return f.max(axis=1) if name == "Max" else f.min(axis=1)
    if name in ("ArgMax", "ArgMin", "Max_ArgMax", "Min_ArgMin"):
        val, idx = _arg(f, np.argmax if "Max" in name else np.argmin)
        return idx if name.startswith("Arg") else (val, idx)
    if name in KMIN:
        val, idx = _kmin(f, k)
        return {"KMin": val, "ArgKMin": idx, "KMin_ArgKMin": (val, idx)}[name]
    m, s = _lse(f, g)
    if name in ("LogSumExp", "LogSumExpWeight"):
        with np.errstate(divide="ignore"):
            return m + np.log(s)
    if name == "SumSoftMaxWeight":
        m, total = _lse(f, None)
        return s / total
    return np.concatenate([m, s], axis=1)  # Max_SumShiftExp(Weight): raw (m, s)


def routine(name, d=1, e=2, k=None, axis=1, **kwargs):
    """A Genred whose formula values are an input: F = f (dim D), G = g (dim E)."""
    aliases = [f"x = Vi({d})", f"y = Vj({d})"]
    formula2 = None
    if name in WEIGHTED:
        aliases.append(f"w = Vj({e})")
        formula2 = "w"
    return Genred("x - y", aliases, reduction_op=name, axis=axis, opt_arg=k,
                  formula2=formula2, **kwargs)


def data(m, n, d, e=2, seed=0, integers=False):
    gen = rng(seed)
    if integers:  # many ties
        x = gen.integers(-2, 3, (m, d)).astype(np.float64)
        y = gen.integers(-2, 3, (n, d)).astype(np.float64)
    else:
        x, y = gen.normal(size=(m, d)), gen.normal(size=(n, d))
    w = gen.uniform(0.1, 1.0, (n, e))
    f = x[:, None, :] - y[None, :, :]
    g = np.broadcast_to(w[None], (m, n, e))
    return (x, y, w), f, g


def compare(out, ref, what=""):
    if isinstance(ref, tuple):
        assert isinstance(out, tuple) and len(out) == len(ref), what
        for a, b in zip(out, ref):
            compare(a, b, what)
        return
    assert out.shape == ref.shape, f"{what}: shape {out.shape}, expected {ref.shape}"
    if np.issubdtype(np.asarray(ref).dtype, np.integer):
        assert out.dtype == np.int64, f"{what}: indices of dtype {out.dtype}"
        np.testing.assert_array_equal(out, ref, err_msg=what)
    else:
        np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12, err_msg=what)


ALL = list(REDUCTIONS)


def test_reduction_table_is_the_keops_list():
    expected = {"Sum", "Max", "Min", "ArgMax", "ArgMin", "Max_ArgMax", "Min_ArgMin", "KMin",
                "ArgKMin", "KMin_ArgKMin", "LogSumExp", "LogSumExpWeight",
                "SumSoftMaxWeight", "Max_SumShiftExp"}
    assert expected <= set(REDUCTIONS)


def _cases():
    for name in ALL:
        d = 1 if name in LSE else 2
        for k in ((1, 3, 10) if name in KMIN else (None,)):
            yield name, d, k
        if name in KMIN:
            yield name, 1, 3  # D == 1: squeezed outputs


CASES = list(_cases())


@pytest.mark.parametrize("name, d, k", CASES)
@pytest.mark.parametrize("m, n", [(7, 9), (8, 1), (1, 8), (3, 0), (0, 5), (1, 1)])
def test_genred_matches_brute_force(name, d, k, m, n):
    args, f, g = data(m, n, d, seed=m * 10 + n)
    out = routine(name, d, k=k)(*(args if name in WEIGHTED else args[:2]), backend="numpy")
    with np.errstate(invalid="ignore"):  # SumSoftMaxWeight of no column is 0 / 0
        ref = reference(name, f, g if name in WEIGHTED else None, k)
    compare(out, ref, f"{name} M={m} N={n} K={k}")


@pytest.mark.parametrize("name", ["ArgMin", "ArgMax", "Min_ArgMin", "Max_ArgMax", *KMIN])
def test_ties_go_to_the_smallest_index(name):
    k = 4 if name in KMIN else None
    args, f, g = data(6, 40, 2, integers=True, seed=3)
    out = routine(name, 2, k=k)(*args[:2], backend="numpy", block_size=(3, 7))
    compare(out, reference(name, f, None, k), name)


def test_logsumexp_with_formula2():
    """LogSumExp with weights: log sum_j exp(f_ij) g_ij, one value per weight."""
    gen = rng(4)
    x, y, w = gen.normal(size=(5, 1)), gen.normal(size=(6, 1)), gen.uniform(0.1, 1, (6, 3))
    out = Genred("x - y", ["x = Vi(1)", "y = Vj(1)", "w = Vj(3)"], reduction_op="LogSumExp",
                 axis=1, formula2="w")(x, y, w, backend="numpy")
    f = x[:, None, :] - y[None, :, :]
    ref = np.log((np.exp(f) * w[None]).sum(1))
    assert_close(out, ref)


def test_logsumexp_does_not_overflow():
    x = np.array([[800.0], [-800.0]])
    y = np.array([[0.0], [1.0], [2.0]])
    out = routine("LogSumExp")(x, y, backend="numpy")
    ref = x[:, 0] + np.log(np.exp(-y[:, 0]).sum())
    assert_close(out[:, 0], ref)


@pytest.mark.parametrize("name", ALL)
def test_axis_0_reduces_over_i(name):
    d = 1 if name in LSE else 2
    k = 3 if name in KMIN else None
    gen = rng(9)
    x, y, w = gen.normal(size=(6, d)), gen.normal(size=(4, d)), gen.uniform(0.1, 1, (6, 2))
    aliases = [f"x = Vi({d})", f"y = Vj({d})"] + (["w = Vi(2)"] if name in WEIGHTED else [])
    r = Genred("y - x", aliases, reduction_op=name, axis=0, opt_arg=k,
               formula2="w" if name in WEIGHTED else None)
    out = r(x, y, *([w] if name in WEIGHTED else []), backend="numpy")
    f = (y[:, None, :] - x[None, :, :])  # (N, M, d): rows are j now
    g = np.broadcast_to(w[None], (4, 6, 2))
    compare(out, reference(name, f, g if name in WEIGHTED else None, k), name)


# ---------------------------------------------------------------------------
# output layout as KeOps's postprocess returns it
# ---------------------------------------------------------------------------

LAYOUT = {
    # name: (shapes of the outputs for M=5, D=2 (1 for lse), K=3, E=4)
    "Sum": [(5, 2)], "Max": [(5, 2)], "Min": [(5, 2)],
    "ArgMax": [(5, 2)], "ArgMin": [(5, 2)],
    "Max_ArgMax": [(5, 2), (5, 2)], "Min_ArgMin": [(5, 2), (5, 2)],
    "KMin": [(5, 3, 2)], "ArgKMin": [(5, 3, 2)], "KMin_ArgKMin": [(5, 3, 2), (5, 3, 2)],
    "LogSumExp": [(5, 1)], "LogSumExpWeight": [(5, 4)], "SumSoftMaxWeight": [(5, 4)],
    "Max_SumShiftExp": [(5, 2)], "Max_SumShiftExpWeight": [(5, 5)],
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ALL)
def test_output_layout(name, dtype):
    d = 1 if name in LSE else 2
    k = 3 if name in KMIN else None
    args, _, _ = data(5, 6, d, e=4)
    args = [a.astype(dtype) for a in args]
    out = routine(name, d, e=4, k=k)(*(args if name in WEIGHTED else args[:2]),
                                     backend="numpy")
    outs = out if isinstance(out, tuple) else (out,)
    assert isinstance(out, tuple) == (len(LAYOUT[name]) == 2), name
    assert [o.shape for o in outs] == LAYOUT[name]
    for o in outs:
        is_index = name.startswith("Arg") or (o is outs[-1] and "_Arg" in name)
        assert o.dtype == (np.int64 if is_index else dtype), (name, o.dtype)


@pytest.mark.parametrize("name", KMIN)
def test_kmin_squeezes_when_d_is_1(name):
    args, _, _ = data(5, 6, 1)
    out = routine(name, 1, k=3)(*args[:2], backend="numpy")
    for o in (out if isinstance(out, tuple) else (out,)):
        assert o.shape == (5, 3)


# ---------------------------------------------------------------------------
# partial states: merge law, split independence, empty partials
# ---------------------------------------------------------------------------

def reduction(name, d, k=None, e=2, sum_scheme="auto"):
    return make_reduction(name, d, e if name in WEIGHTED else 0, k, sum_scheme)


def finalized(red, state):
    return red.finalize(state, np.float64, np)


STATE_CASES = [(name, d, k, scheme) for name, d, k in CASES
               for scheme in (("auto", "kahan_scheme") if name in ("Sum", *LSE) else ("auto",))]


@pytest.mark.parametrize("name, d, k, scheme", STATE_CASES)
def test_merge_of_two_blocks_is_the_block_of_both(name, d, k, scheme):
    red = reduction(name, d, k, sum_scheme=scheme)
    _, f, g = data(6, 11, d, seed=1)
    g = g if name in WEIGHTED else None
    whole = red.block_state(f, g, 0, np.float64)
    for c in (0, 1, 4, 10, 11):
        a = red.block_state(f[:, :c], None if g is None else g[:, :c], 0, np.float64)
        b = red.block_state(f[:, c:], None if g is None else g[:, c:], c, np.float64)
        for merged in (red.merge(a, b), red.merge(b, a)):
            for got, want in zip(merged, whole):
                assert got.shape == want.shape and got.dtype == want.dtype
                if np.issubdtype(want.dtype, np.integer):
                    np.testing.assert_array_equal(got, want)
                else:
                    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
            compare(finalized(red, merged), finalized(red, whole), f"{name} split at {c}")


@pytest.mark.parametrize("name, d, k", CASES)
def test_result_does_not_depend_on_the_split(name, d, k):
    """Random column splits, merged left to right or as a balanced tree."""
    red = reduction(name, d, k)
    _, f, g = data(5, 40, d, seed=2)
    g = g if name in WEIGHTED else None
    expected = reference(name, f, g, k)
    gen = rng(3)
    for _ in range(5):
        cuts = np.sort(gen.integers(0, 41, gen.integers(1, 6)))
        bounds = [0, *cuts.tolist(), 40]
        states = [red.block_state(f[:, a:b], None if g is None else g[:, a:b], a, np.float64)
                  for a, b in zip(bounds[:-1], bounds[1:])]
        left = states[0]
        for s in states[1:]:
            left = red.merge(left, s)
        compare(finalized(red, left), expected, f"{name} sequential {bounds}")
        while len(states) > 1:  # a tree, pairing neighbours, in reverse order
            states = [red.merge(states[i + 1], states[i]) if i + 1 < len(states)
                      else states[i] for i in range(0, len(states), 2)][::-1]
        compare(finalized(red, states[0]), expected, f"{name} tree {bounds}")


@pytest.mark.parametrize("name, d, k", CASES)
def test_identity_is_neutral(name, d, k):
    red = reduction(name, d, k)
    _, f, g = data(4, 6, d, seed=4)
    state = red.block_state(f, g if name in WEIGHTED else None, 0, np.float64)
    empty = red.identity(4, np.float64)
    for merged in (red.merge(empty, state), red.merge(state, empty)):
        for got, want in zip(merged, state):
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", LSE)
def test_empty_partials_merge_without_nan(name):
    red = reduction(name, 1)
    empty = red.identity(3, np.float64)
    e = 3 if name == "SumSoftMaxWeight" else 2
    no_cols = red.block_state(np.zeros((3, 0, 1)), np.zeros((3, 0, e)) if name in WEIGHTED
                              else None, 7, np.float64)
    with np.errstate(all="raise"):  # not even a warning
        both = red.merge(empty, no_cols)
        both = red.merge(both, red.identity(3, np.float64))
    for part in both:
        assert not np.isnan(part).any()
    _, f, g = data(3, 4, 1, seed=5)
    full = red.block_state(f, g if name in WEIGHTED else None, 0, np.float64)
    with np.errstate(all="raise"):
        merged = red.merge(both, full)
    compare(finalized(red, merged), finalized(red, full), name)
    if name == "LogSumExp":
        assert np.all(finalized(red, both) == -np.inf)


def test_merged_max_with_negative_infinity_values():
    """A block whose values are all -inf merges as a block that saw them."""
    red = reduction("Max_ArgMax", 1)
    f = np.full((2, 3, 1), -np.inf)
    a = red.block_state(f, None, 0, np.float64)
    b = red.identity(2, np.float64)
    val, idx = finalized(red, red.merge(b, a))
    assert np.all(val == -np.inf) and np.all(idx == 0)


@pytest.mark.parametrize("block_size", [(3, 4), (8, 1), (1, 16), (5, 7)])
@pytest.mark.parametrize("name, d, k", [c for c in CASES if c[2] in (None, 3)])
def test_genred_does_not_depend_on_block_size(name, d, k, block_size):
    args, f, g = data(9, 17, d, seed=6)
    r = routine(name, d, k=k)
    call_args = args if name in WEIGHTED else args[:2]
    out = r(*call_args, backend="numpy", block_size=block_size, split_every=2,
            scheduler="sync")
    compare(out, reference(name, f, g if name in WEIGHTED else None, k), f"{name} {block_size}")


def test_kahan_scheme_is_more_accurate():
    """kahan_scheme sums many float32 terms with less error than the plain sum."""
    gen = rng(8)
    x = np.ones((2, 1), dtype=np.float32)
    y = gen.uniform(0, 1, (200_000, 1)).astype(np.float32)
    ref = (x.astype(np.float64)[:, None, :] * y.astype(np.float64)[None]).sum(1)
    errs = {}
    for scheme in ("direct_sum", "kahan_scheme"):
        r = Genred("x * y", ["x = Vi(1)", "y = Vj(1)"], axis=1, sum_scheme=scheme)
        out = r(x, y, backend="numpy", block_size=(2, 1000), scheduler="sync")
        errs[scheme] = float(np.abs(out - ref).max() / np.abs(ref).max())
    assert errs["kahan_scheme"] < 1e-6
    assert errs["kahan_scheme"] <= errs["direct_sum"]


@pytest.mark.parametrize("m", EDGE_SIZES)
@pytest.mark.parametrize("n", EDGE_SIZES)
def test_sum_on_edge_sizes(m, n):
    args, f, _ = data(m, n, 3, seed=m + 17 * n)
    out = routine("Sum", 3)(*args[:2], backend="numpy", block_size=(4, 4))
    compare(out, f.sum(1), f"M={m} N={n}")
