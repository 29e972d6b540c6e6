"""The generated CUDA kernels, run on the CPU through tests/codegen/cuda_emulator.py.

The kernels' logic (tiles, states, column splits, merge rounds, argument
packing by CudaKernel) is checked here against NumPy references in float64
written in this file and in tests/codegen/cuda_cases.py, on sizes at the edges
of blocks, tiles and splits. Every op runs in the grouped formulas of the
catalogue (tests/op_cases.py), in float64 and float32, over j and over i,
each case against its reference and against the "numpy" backend. float16,
NVRTC and the device itself are left to tests/gpu.
"""

from __future__ import annotations

import re
import sys

import dask.array  # noqa: F401  (imported before the stand-in CuPy exists: dask looks for CuPy once)
import numpy as np
import pytest

import dredux.compile.cuda as cuda_backend
from dredux import Genred
from dredux.backends import make_kernel
from tests.codegen import cuda_emulator as emu
from tests.codegen.cuda_cases import ALIASES, OP_GROUPS, REDUCTION_CASES, inputs, reduction_ref
from tests.cpu.cpu_util import tolerances
from tests.helpers import gauss_reference
from tests.product_cases import PRODUCTS, check_product, product_routine

pytestmark = pytest.mark.skipif(emu.CXX is None, reason="g++ is not on PATH: the CUDA "
                                "kernels are emulated with a C++20 compiler")

GAUSS = ("Exp(-SqDist(x, y)) * b", ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)"])


@pytest.fixture
def cp(monkeypatch):
    """The stand-in CuPy; CudaKernel compiles its kernels with g++ in the emulator."""
    from dredux import backends

    fake = emu.fake_cupy()
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setattr(cuda_backend, "_COMPILED", {})
    # the process-wide GPU count is cached: never let it see the stand-in (later
    # tests would pick the GPU backend without a GPU)
    monkeypatch.setattr(backends, "_gpu_count", lambda: 1)
    return fake


# ---------------------------------------------------------------------------
# sizes on the edges of blocks (32/64/256 threads), tiles and splits
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("m", [0, 1, 31, 32, 33, 255, 256, 257])
@pytest.mark.parametrize("n", [0, 1, 255, 256, 257, 2047, 2048, 2049])
def test_block_edges(cp, m, n):
    rng = np.random.default_rng(m * 10_000 + n)
    x, y = rng.uniform(-1, 1, (m, 3)), rng.uniform(-1, 1, (n, 3))
    b = rng.uniform(0.5, 1.5, (n, 1))
    out = Genred(GAUSS[0], GAUSS[1], axis=1)(x, y, b, backend="gpu")
    assert isinstance(out, np.ndarray) and out.shape == (m, 1) and out.dtype == np.float64
    np.testing.assert_allclose(out[:, 0], gauss_reference(x, y, b)[:, 0], rtol=1e-12, atol=1e-12)
    if m == 0 or n == 0:
        assert cp.calls == []  # the identity, without a launch


def test_many_splits_and_two_merge_rounds(cp):
    # 3 rows cannot fill the (emulated, 2-SM) device: the columns are split
    # into more than MERGE_GROUP ranges, merged in two rounds
    rng = np.random.default_rng(1)
    x, y = rng.uniform(-1, 1, (3, 3)), rng.uniform(-1, 1, (70_000, 3))
    b = rng.uniform(0.5, 1.5, (70_000, 1))
    out = Genred(GAUSS[0], GAUSS[1], axis=1)(x, y, b, backend="gpu")
    np.testing.assert_allclose(out[:, 0], gauss_reference(x, y, b)[:, 0], rtol=1e-12)
    launches = [c for c in cp.calls if c[0] == "dredux_reduce"]
    merges = [c for c in cp.calls if c[0] == "dredux_merge"]
    assert launches[0][1][1] > cuda_backend.MERGE_GROUP
    assert len(merges) == 2


# ---------------------------------------------------------------------------
# every op (against the NumPy backend) and every reduction (against NumPy)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-11), (np.float32, 2e-5)])
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("group", sorted(OP_GROUPS))
def test_ops_agree_with_references_and_the_numpy_backend(cp, group, axis, dtype, rtol):
    """Every case of the catalogue against its float64 reference (of the inputs as
    cast), and against the "numpy" backend in the same dtype."""
    g = OP_GROUPS[group]
    routine = g.routine(axis)
    args = g.inputs(45, 2500, dtype, seed=3)
    out = routine(*args, backend="gpu")
    assert out.dtype == dtype and out.shape == ((45 if axis == 1 else 2500), g.width)
    g.check(out, args, axis, rtol)
    ref = routine(*args, backend="numpy")
    assert np.isfinite(ref).all()
    for member, got, want in zip(g.members, g.split(out), g.split(ref)):
        scale = max(1.0, float(np.abs(want).max()))
        atol = 1e-11 if dtype == np.float64 else rtol * scale
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=member.what)


def assert_output(out, ref, rtol, what):
    outs, refs = (out, ref) if isinstance(ref, tuple) else ((out,), (ref,))
    assert len(outs) == len(refs), what
    for a, r in zip(outs, refs):
        assert a.shape == r.shape, (what, a.shape, r.shape)
        if np.issubdtype(r.dtype, np.integer):
            assert a.dtype == np.int64, what
            np.testing.assert_array_equal(a, r, err_msg=what)
        else:
            np.testing.assert_allclose(a, r, rtol=rtol, atol=rtol, err_msg=what)


@pytest.mark.parametrize("name", sorted(REDUCTION_CASES))
def test_reductions_agree_with_numpy(cp, name):
    formula, formula2, k = REDUCTION_CASES[name]
    g = Genred(formula, ALIASES, reduction_op=name, axis=1, formula2=formula2, opt_arg=k)
    args = inputs(40, 3000, np.float64, seed=5)
    assert_output(g(*args, backend="gpu"), reduction_ref(name, args), 1e-12, name)
    # the state itself, with the buffers poisoned before the launch: every
    # row is written, in the layout of Reduction.fields()
    prog = g.program("float64")
    kernel = make_kernel(prog, "gpu", poison=True)
    by_pos = dict(enumerate(args))
    state = kernel(*([by_pos[v.params[0]] for v in group]
                     for group in (prog.row_vars, prog.col_vars, prog.param_vars)),
                   40, 3000, 10**12)
    assert [c[0] for c in cp.calls[-2:]] == ["dredux_reduce", "dredux_merge"]
    for array, (field, shape, kind) in zip(state, prog.reduction.fields()):
        assert array.shape == (40, *shape), field
        assert array.dtype == (np.int64 if kind == "idx" else np.float64), field
        if kind == "idx":  # global indices: the offset j0 is added
            assert ((array >= 10**12) & (array < 10**12 + 3000)).all(), field
        else:
            assert not np.isnan(array).any(), field
    assert_output(prog.reduction.finalize(state, np.float64),
                  _shift(reduction_ref(name, args), 10**12), 1e-12, name)


def _shift(out, j0):
    """Reference outputs with index arrays offset by ``j0``."""
    if isinstance(out, tuple):
        return tuple(_shift(o, j0) for o in out)
    return out + j0 if np.issubdtype(out.dtype, np.integer) else out


# ---------------------------------------------------------------------------
# the merge contract: ties, NaN, -inf, Kahan, states across tasks
# ---------------------------------------------------------------------------

def test_ties_go_to_the_smaller_index_across_tiles_and_splits(cp):
    rng = np.random.default_rng(7)
    n = 9000
    x = rng.integers(0, 3, (20, 1)).astype(np.float64)
    y = rng.integers(0, 3, (n, 1)).astype(np.float64)  # thousands of equal values
    aliases = ["x = Vi(1)", "y = Vj(1)"]
    f = -np.abs(x[:, None, 0] - y[None, :, 0])
    for name, k in (("ArgMax", None), ("Min_ArgMin", None), ("KMin_ArgKMin", 6)):
        g = Genred("-Abs(x - y)", aliases, reduction_op=name, axis=1, opt_arg=k)
        out = g(x, y, backend="gpu")
        if name == "ArgMax":
            np.testing.assert_array_equal(out[:, 0], f.argmax(1))
        elif name == "Min_ArgMin":
            np.testing.assert_array_equal(out[1][:, 0], f.argmin(1))
        else:
            order = np.argsort(f, axis=1, kind="stable")[:, :6]
            np.testing.assert_array_equal(out[1], order)
            np.testing.assert_array_equal(out[0], np.take_along_axis(f, order, 1))


@pytest.mark.parametrize("k,d", [(1, 1), (10, 1), (16, 2), (32, 1), (11, 3), (40, 1)])
def test_kmin_lists_in_registers_and_in_memory(cp, k, d):
    """K-min lists of K * D <= 32 entries take the unrolled, predicated insertion
    (registers), longer ones the loop: both give the K smallest, ties to the
    smaller index, with equal values and NaN among the candidates."""
    rng = np.random.default_rng(k * 10 + d)
    n = 700
    x = rng.integers(0, 4, (37, d)).astype(np.float64)
    y = rng.integers(0, 4, (n, d)).astype(np.float64)
    y[rng.random((n, d)) < 0.05] = np.nan
    aliases = [f"x = Vi({d})", f"y = Vj({d})"]
    values, index = Genred("Abs(x - y)", aliases, reduction_op="KMin_ArgKMin", axis=1,
                           opt_arg=k)(x, y, backend="gpu")
    f = np.abs(x[:, None, :] - y[None, :, :])  # (M, N, D)
    f = np.where(np.isnan(f), np.inf, f)
    order = np.argsort(f, axis=1, kind="stable")[:, :k, :]  # (M, K, D)
    want = np.take_along_axis(f, order, 1)
    np.testing.assert_array_equal(index.reshape(37, k, d), order)
    np.testing.assert_array_equal(values.reshape(37, k, d), want)


def test_launches_read_device_attributes_once(cp, monkeypatch):
    """The kernel's thread limit is read when it is compiled and the CUDA device
    is checked once, not at every launch."""
    reads = {"threads": 0, "devices": 0}

    def threads(self):
        reads["threads"] += 1
        return 256

    def devices():
        reads["devices"] += 1
        return 1

    monkeypatch.setattr(emu._Kernel, "max_threads_per_block", property(threads))
    monkeypatch.setattr(cp.cuda.runtime, "getDeviceCount", devices)
    rng = np.random.default_rng(3)
    x, y, b = rng.uniform(-1, 1, (40, 3)), rng.uniform(-1, 1, (50, 3)), rng.uniform(0, 1, (50, 1))
    g = Genred(GAUSS[0], GAUSS[1], axis=1)
    for _ in range(4):
        out = g(x, y, b, backend="gpu")
    np.testing.assert_allclose(out[:, 0], gauss_reference(x, y, b)[:, 0], rtol=1e-12)
    assert len(cp.calls) >= 4  # four launches
    assert reads == {"threads": 1, "devices": 1}


def test_nan_never_wins_and_propagates_in_sums(cp):
    rng = np.random.default_rng(8)
    x, y = rng.uniform(0.5, 1, (10, 1)), rng.uniform(-1, 1, (5000, 1))
    aliases = ["x = Vi(1)", "y = Vj(1)"]
    f = x[:, None, 0] * np.log(np.where(y[None, :, 0] > 0, y[None, :, 0], np.nan))
    clean_max = np.where(np.isnan(f), -np.inf, f)
    clean_min = np.where(np.isnan(f), np.inf, f)
    run = {name: Genred("x * Log(y)", aliases, reduction_op=name, axis=1,
                        opt_arg=3)(x, y, backend="gpu")
           for name in ("Max", "ArgMax", "Min_ArgMin", "KMin", "Sum", "LogSumExp")}
    np.testing.assert_allclose(run["Max"][:, 0], clean_max.max(1), rtol=1e-12)
    np.testing.assert_array_equal(run["ArgMax"][:, 0], clean_max.argmax(1))
    np.testing.assert_array_equal(run["Min_ArgMin"][1][:, 0], clean_min.argmin(1))
    np.testing.assert_allclose(run["KMin"], np.sort(clean_min, 1)[:, :3], rtol=1e-12)
    assert np.isnan(run["Sum"]).all() and np.isnan(run["LogSumExp"]).all()


def test_lse_with_empty_partials_never_makes_nan(cp):
    # f = -inf on most columns: whole splits see only -inf (empty partials)
    rng = np.random.default_rng(9)
    n = 20_000
    x = rng.uniform(-1, 1, (4, 1))
    y = rng.uniform(-1, 1, (n, 1))
    y[: n - 50] += 10.0  # Log(Step(5 - y)) = -inf there
    aliases = ["x = Vi(1)", "y = Vj(1)"]
    formula = "Log(Step(5 - y)) + x * y"
    f = np.where(y[None, :, 0] < 5, x * y[None, :, 0], -np.inf)
    m = f.max(1, keepdims=True)
    ref = m[:, 0] + np.log(np.exp(f - m).sum(1))
    out = Genred(formula, aliases, reduction_op="LogSumExp", axis=1)(x, y, backend="gpu")
    np.testing.assert_allclose(out[:, 0], ref, rtol=1e-12)
    none = Genred("Log(Step(y - 50)) + x", aliases, reduction_op="LogSumExp",
                  axis=1)(x, y, backend="gpu")
    assert np.all(none == -np.inf)  # nothing at all: -inf, not NaN


def test_kahan_scheme_carries_the_rounding_errors(cp):
    rng = np.random.default_rng(10)
    n = 50_000
    x = rng.uniform(0.5, 1.5, (6, 1)).astype(np.float32)
    y = (1 + rng.uniform(0, 1e-3, (n, 1))).astype(np.float32)
    exact = (x.astype(np.float64) * y.astype(np.float64).T).sum(1)
    errors = {}
    for scheme in ("direct_sum", "block_sum", "kahan_scheme"):
        g = Genred("x * y", ["x = Vi(1)", "y = Vj(1)"], axis=1, sum_scheme=scheme)
        out = g(x, y, backend="gpu")[:, 0].astype(np.float64)
        errors[scheme] = np.abs(out / exact - 1).max()
    assert errors["kahan_scheme"] < 2e-7, errors  # a few float32 roundings, not n of them
    assert errors["direct_sum"] > errors["kahan_scheme"], errors


def test_states_merge_across_tasks_like_one_task(cp):
    for name in ("Sum", "Min_ArgMin", "KMin_ArgKMin", "SumSoftMaxWeight"):
        formula, formula2, k = REDUCTION_CASES[name]
        g = Genred(formula, ALIASES, reduction_op=name, axis=1, formula2=formula2, opt_arg=k)
        args = inputs(50, 3100, np.float64, seed=11)
        whole = g(*args, backend="gpu")
        tasks = g(*args, backend="gpu", block_size=(17, 700), scheduler="sync")
        assert_output(tasks, whole, 1e-12, name)


# ---------------------------------------------------------------------------
# shapes of formulas and options
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("d", [64, 256])
def test_wide_variables(cp, d):
    rng = np.random.default_rng(d)
    x, y = rng.uniform(-1, 1, (40, d)) / np.sqrt(d), rng.uniform(-1, 1, (700, d)) / np.sqrt(d)
    b = rng.uniform(0.5, 1.5, (700, 1))
    aliases = [f"x = Vi({d})", f"y = Vj({d})", "b = Vj(1)"]
    out = Genred(GAUSS[0], aliases, axis=1)(x, y, b, backend="gpu")
    np.testing.assert_allclose(out[:, 0], gauss_reference(x, y, b)[:, 0], rtol=1e-12)


def test_wide_fused_chains_agree_with_the_numpy_backend(cp):
    aliases = ["x = Vi(40)", "y = Vj(40)", "v = Vj(1)", "p = Pm(40)"]
    formula = ("Sum(Clamp(x - y, -v, v) * Exp(x * y) + IfElse(x - p, Square(x - y), p))"
               " * (x | (y - p))")
    rng = np.random.default_rng(17)
    args = [rng.uniform(-1, 1, (30, 40)), rng.uniform(-1, 1, (1100, 40)),
            rng.uniform(0.2, 0.9, (1100, 1)), rng.uniform(-1, 1, (40,))]
    g = Genred(formula, aliases, axis=1)
    src = g.source("gpu", "float64")
    pair = src[src.index("_st.begin_tile();"):src.index("_st.end_tile();")]
    # x - y is read twice: stored once; every other wide intermediate is fused
    assert pair.count("[40];") == 1
    np.testing.assert_allclose(g(*args, backend="gpu"), g(*args, backend="numpy"),
                               rtol=1e-12)


def test_wide_output_and_hoisted_row_terms(cp):
    rng = np.random.default_rng(12)
    x, y = rng.uniform(-1, 1, (30, 20)), rng.uniform(-1, 1, (900, 20))
    aliases = ["x = Vi(20)", "y = Vj(20)"]
    g = Genred("Exp(-Sum(x * x)) * (x - y)", aliases, reduction_op="Max_ArgMax", axis=1)
    val, idx = g(x, y, backend="gpu")
    f = np.exp(-(x * x).sum(1))[:, None, None] * (x[:, None, :] - y[None, :, :])
    np.testing.assert_allclose(val, f.max(1), rtol=1e-12)
    np.testing.assert_array_equal(idx, f.argmax(1))


def test_float32_inputs_with_float64_accumulators(cp):
    rng = np.random.default_rng(13)
    x, y = rng.uniform(-1, 1, (33, 3)).astype(np.float32), \
        rng.uniform(-1, 1, (4000, 3)).astype(np.float32)
    b = rng.uniform(0.5, 1.5, (4000, 1)).astype(np.float32)
    g = Genred(GAUSS[0], GAUSS[1], axis=1, dtype_acc="float64")
    out = g(x, y, b, backend="gpu")
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[:, 0], gauss_reference(x, y, b)[:, 0], rtol=2e-6)


def test_formulas_without_rows_columns_or_both(cp):
    rng = np.random.default_rng(14)
    x, y = rng.uniform(0.5, 1, (9, 2)), rng.uniform(0.5, 1, (1300, 2))
    p = rng.uniform(0.5, 1, (1,))
    aliases = ["x = Vi(2)", "y = Vj(2)", "p = Pm(1)"]
    cases = {"Exp(x) * p": np.exp(x) * p * 1300,
             "Log(y) + p": np.log(y).sum(0) + 1300 * p,
             "p * 2": np.full((9, 1), 2 * p[0] * 1300)}
    for formula, ref in cases.items():
        out = Genred(formula, aliases, axis=1)(x, y, p, backend="gpu")
        np.testing.assert_allclose(out, np.broadcast_to(ref, out.shape), rtol=1e-12,
                                   err_msg=formula)


def test_gradient_formula(cp):
    aliases = ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "e = Vi(1)"]
    g = Genred("Grad(Exp(-SqDist(x, y)) * b, x, e)", aliases, axis=1)
    rng = np.random.default_rng(15)
    x, y = rng.uniform(-1, 1, (20, 3)), rng.uniform(-1, 1, (1500, 3))
    b, e = rng.uniform(0.5, 1.5, (1500, 1)), rng.uniform(0.5, 1.5, (20, 1))
    d = x[:, None, :] - y[None, :, :]
    k = np.exp(-(d ** 2).sum(-1)) * b[None, :, 0]
    ref = (-2 * k[..., None] * d).sum(1) * e
    np.testing.assert_allclose(g(x, y, b, e, backend="gpu"), ref, rtol=1e-11, atol=1e-12)


def test_fast_math_runs(cp):
    x, y = np.random.default_rng(16).uniform(-1, 1, (2, 20, 3)).astype(np.float32)
    b = np.ones((20, 1), np.float32)
    g = Genred(GAUSS[0], GAUSS[1], axis=1, use_fast_math=True)
    np.testing.assert_allclose(g(x, y, b, backend="gpu")[:, 0], gauss_reference(x, y, b)[:, 0],
                               rtol=1e-5)


# ---------------------------------------------------------------------------
# contractions (SqDist, Scalprod... at D >= 16): register-blocked chunk loops
# ---------------------------------------------------------------------------

def _sqdist(x, y):
    return ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)


CONTRACTIONS = {
    "gaussian": ("Exp(-SqDist(x, y)) * b", "Sum", None,
                 lambda x, y, b, w: np.exp(-_sqdist(x, y)) @ b),
    "weighted": ("Exp(-WeightedSqDist(w, x, y)) * b", "Sum", None,
                 lambda x, y, b, w: np.exp(-(w * (x[:, None] - y[None]) ** 2).sum(-1)) @ b),
    "narrow-y": ("Sum(b * (x * y))", "Sum", None,
                 lambda x, y, b, w: ((x @ y.T) * b[:, 0]).sum(1, keepdims=True)),
    "min": ("SqDist(x, y)", "Min", None, lambda x, y, b, w: _sqdist(x, y).min(1)[:, None]),
    "logsumexp": ("-SqDist(x, y) + (x | w)", "LogSumExp", None,
                  lambda x, y, b, w: _logsumexp(-_sqdist(x, y) + (x @ w)[:, None])),
    "argkmin": ("SqDist(x, y)", "ArgKMin", 5, None),
    "grad-x": ("Grad(Exp(-SqDist(x, y)) * b, x, e)", "Sum", None,
               lambda x, y, b, w: _grad_x(x, y, b)),
}


def _logsumexp(a):
    top = a.max(1, keepdims=True)
    return top + np.log(np.exp(a - top).sum(1, keepdims=True))


def _grad_x(x, y, b):
    k = np.exp(-_sqdist(x, y)) * b[:, 0][None]
    return -2 * (k.sum(1)[:, None] * x - k @ y)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-11), (np.float32, 2e-5)])
@pytest.mark.parametrize("d", [64, 100])
@pytest.mark.parametrize("name", sorted(CONTRACTIONS))
def test_contractions_in_chunks(cp, name, d, dtype, rtol):
    """Columns not a multiple of the 32-column tile, D not a multiple of the
    32-component chunk (100: chunks of 4), rows not a multiple of a warp."""
    formula, reduction, k, reference = CONTRACTIONS[name]
    aliases = [f"x = Vi({d})", f"y = Vj({d})", "b = Vj(1)", f"w = Pm({d})", "e = Vi(1)"]
    g = Genred(formula, aliases, reduction_op=reduction, opt_arg=k, axis=1)
    assert "_ac0[_jj]" in g.source("gpu", dtype), "not the chunked contraction path"
    rng = np.random.default_rng(d)
    x, y = (rng.standard_normal((s, d)) / np.sqrt(d) for s in (45, 1100))
    b, w = rng.uniform(0.5, 1.5, (1100, 1)), rng.uniform(0.5, 1.5, d)
    e = np.ones((45, 1))
    out = g(*(a.astype(dtype) for a in (x, y, b, w, e)), backend="gpu")
    if name == "argkmin":
        dist = _sqdist(x, y)
        got = np.take_along_axis(dist, out.astype(np.int64), 1)
        np.testing.assert_allclose(got, np.sort(dist, 1)[:, :k], rtol=rtol * 10)
        return
    ref = reference(x, y, b, w)
    np.testing.assert_allclose(out, ref, rtol=rtol * 10, atol=rtol * np.abs(ref).max())


# ---------------------------------------------------------------------------
# streamed wide sums: the pair loop's scalar weights, then one sum per tile and
# output component in registers (the output loop of codegen/cuda.py)
# ---------------------------------------------------------------------------

def _kernel(x, y):
    return np.exp(-_sqdist(x, y))


# name: (formula, reference(x, y, v, b, p, a, x3, y3))
STREAMED = {
    "gaussian-conv": ("Exp(-SqDist(x, y)) * v",
                      lambda x, y, v, b, p, a, x3, y3: _kernel(x, y) @ v),
    "narrow-input": ("Exp(-SqDist(x3, y3)) * v",
                     lambda x, y, v, b, p, a, x3, y3: _kernel(x3, y3) @ v),
    "column-scalar-outside": ("(Exp(-SqDist(x, y)) * v) * b",
                              lambda x, y, v, b, p, a, x3, y3: _kernel(x, y) @ (v * b)),
    "row-terms": ("Exp(-SqDist(x, y)) * (Sum(x * x) * v + 2 * x - p)",
                  lambda x, y, v, b, p, a, x3, y3: _kernel(x, y) @ v
                  * (x * x).sum(1, keepdims=True)
                  + _kernel(x, y).sum(1, keepdims=True) * (2 * x - p)),
    "row-matvec": ("Exp(-SqDist(x, y)) * (MatVecMult(a, x) - y)",
                   lambda x, y, v, b, p, a, x3, y3: _kernel(x, y).sum(1, keepdims=True)
                   * (x @ a.reshape(len(p), len(p)).T) - _kernel(x, y) @ y),
    "gradient": ("Grad(Exp(-SqDist(x, y)) * b, x, e)",
                 lambda x, y, v, b, p, a, x3, y3: _grad_x(x, y, b)),
}


_STREAMED_RUNS = [(name, d, dtype, rtol, {}) for name in sorted(STREAMED) for d in (20, 64)
                  for dtype, rtol in ((np.float64, 1e-11), (np.float32, 2e-5))] + [
    (name, 64, dtype, rtol, options) for name in ("gaussian-conv", "gradient")
    for dtype, rtol, options in ((np.float32, 2e-6, {"dtype_acc": "float64"}),
                                 (np.float64, 1e-11, {"sum_scheme": "direct_sum"}))]


@pytest.mark.parametrize("name, d, dtype, rtol, options", _STREAMED_RUNS)
def test_streamed_wide_sums(cp, name, d, dtype, rtol, options):
    """Outputs of D > 16 components: columns not a multiple of the 32-column tile
    (the guarded copy of the output loop), D not a multiple of the 32-component
    chunk (20: chunks of 4), rows not a multiple of a warp."""
    formula, reference = STREAMED[name]
    aliases = [f"x = Vi({d})", f"y = Vj({d})", f"v = Vj({d})", "b = Vj(1)", f"p = Pm({d})",
               f"a = Pm({d * d})", "x3 = Vi(3)", "y3 = Vj(3)", "e = Vi(1)"]
    g = Genred(formula, aliases, axis=1, **options)
    assert "_st.add(" in g.source("gpu", dtype), "not the streamed output loop"
    rng = np.random.default_rng(d)
    x, y = (rng.standard_normal((s, d)) / np.sqrt(d) for s in (45, 1100))
    v, b = rng.standard_normal((1100, d)), rng.uniform(0.5, 1.5, (1100, 1))
    p, a = rng.standard_normal(d), rng.standard_normal(d * d) / d
    x3, y3 = (rng.standard_normal((s, 3)) for s in (45, 1100))
    args = (x, y, v, b, p, a, x3, y3)
    out = g(*(t.astype(dtype) for t in args + (np.ones((45, 1)),)), backend="gpu")
    if dtype == np.float32:  # the reference of the float32 inputs the kernel read
        args = tuple(t.astype(np.float32).astype(np.float64) for t in args)
    ref = reference(*args)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=rtol * 10, atol=rtol * np.abs(ref).max())


# ---------------------------------------------------------------------------
# matrix products: MatVecMult and VecMatMult with a matrix variable, one
# contraction per output component (dredux/codegen/products.py), narrower tiles
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("d", [16, 24])
@pytest.mark.parametrize("name", sorted(PRODUCTS))
def test_matrix_products(cp, name, d, dtype):
    """Every case of tests/product_cases.py on the GPU kernels: the
    matrix-vector and vector-matrix products (TensorDots included) of a
    parameter or row matrix are
    contractions (the matrix read in place), on tiles of
    fewer than 32 columns and blocks of at most 128 threads where their
    partial sums need it, and the results match float64."""
    from dredux.codegen.cuda import lowered, sum_passes
    from dredux.codegen.products import matrix_vector
    from dredux.codegen.render import contractions, levels
    from dredux.ir import walk

    g = product_routine(name, d)
    program = lowered(g.program(dtype))
    level = levels(program.formulas)
    assert not any(matrix_vector(n) for f in program.formulas for n in walk(f)
                   if level[n] == "pair")
    contracted = contractions(program.formulas, level)
    count = len(contracted)
    code = cuda_backend.CudaKernel(g.program(dtype)).code
    if count * np.dtype(dtype).itemsize > 16:  # more partial sums than a 32-column tile's
        assert code.tile < 32 and re.search(r"__launch_bounds__\(128[,)]", code.source), (
            count, code.tile)
    # more contractions than one pass's (16, 8 in float64) read through one sum
    # (the quadratic form, SqNorm2 of the product): in passes, on tiles of 4
    passes = sum_passes(program.formulas, contracted, level,
                        "double" if dtype == np.float64 else "float")
    if name in ("weighted-full", "weighted-argkmin", "weighted-min-near", "tensordot-matvec",
                "weighted-plus-terms"):
        assert (passes is not None) == (count * np.dtype(dtype).itemsize > 64), (name, count)
    if passes is not None:
        assert code.tile == 4 and code.source.count("_qs[_jj] = ") == 1, (name, code.tile)
        assert [c for reads in passes.contractions for c in reads] == list(range(count))
        # a parameter matrix read by tiles of 2 to 16 columns: staged in shared memory
        staged = "_sp0[" in code.source
        assert staged == (code.tile > 1 and bool(program.param_vars)), (name, code.tile)
    check_product(g, name, d, dtype, "gpu", tolerances(dtype))


def test_matrix_products_with_ranges(cp):
    """A product kernel's narrow tiles and 128-thread blocks under block-sparse
    ranges (the launches per kept block use the kernel's thread limit)."""
    from tests.helpers import pair_mask, random_clusters, ranges_from_mask

    gen = np.random.default_rng(3)
    m, n, d = 300, 90, 16
    ri = np.concatenate([random_clusters(gen, 100, 6), [[100, 300]]]).astype(np.int32)
    rj = random_clusters(gen, n, 4)
    keep = gen.random((7, 4)) < 0.5
    mask = pair_mask(ri, rj, keep, m, n)
    x, y = gen.standard_normal((m, d)) / 4, gen.standard_normal((n, d)) / 4
    b = gen.random((n, 1))
    q = gen.standard_normal((d, d)) / d
    s = q @ q.T + np.eye(d) / d
    g = Genred("Exp(-WeightedSqDist(s, x, y)) * b",
               [f"x = Vi({d})", f"y = Vj({d})", "b = Vj(1)", f"s = Pm({d * d})"], axis=1)
    out = g(x, y, b, s.ravel(), backend="gpu", ranges=ranges_from_mask(ri, rj, keep))
    assert 0 < g.kernel("gpu", "float64").code.tile < 32  # a narrow fixed tile
    u = x[:, None] - y[None]
    ref = (np.exp(-np.einsum("ijk,kl,ijl->ij", u, s, u)) * mask) @ b
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------
# block-sparse ranges and batch axes: the GPU kernel's launches per kept block
# ---------------------------------------------------------------------------

def test_ranges_and_batch_axes(cp):
    from tests.helpers import masked_reduction, pair_mask, random_clusters, ranges_from_mask

    gen = np.random.default_rng(11)
    m, n = 300, 90
    # small clusters (one thread block each, mostly) and a big one (several blocks)
    ri = np.concatenate([random_clusters(gen, 100, 6), [[100, 300]]]).astype(np.int32)
    rj = random_clusters(gen, n, 4)
    keep = gen.random((7, 4)) < 0.5
    keep[2] = False
    keep[6, ::2] = True
    mask = pair_mask(ri, rj, keep, m, n)
    x, y, b = gen.uniform(-1, 1, (m, 3)), gen.uniform(-1, 1, (n, 3)), gen.random((n, 1))
    d2 = ((x[:, None] - y[None]) ** 2).sum(-1, keepdims=True)
    ranges = ranges_from_mask(ri, rj, keep)
    out = Genred(*GAUSS, axis=1)(x, y, b, backend="gpu", ranges=ranges)
    np.testing.assert_allclose(out, (np.exp(-d2[..., 0]) * mask) @ b, rtol=1e-12, atol=1e-12)
    g = Genred("SqDist(x, y)", GAUSS[1][:2], reduction_op="ArgKMin", opt_arg=3, axis=1)
    np.testing.assert_array_equal(g(x, y, backend="gpu", ranges=ranges),
                                  masked_reduction("ArgKMin", d2, mask, k=3))
    lse = Genred("-SqDist(x, y)", GAUSS[1][:2], reduction_op="LogSumExp", axis=0)
    np.testing.assert_allclose(lse(x, y, backend="gpu", ranges=ranges),
                               masked_reduction("LogSumExp", -d2.transpose(1, 0, 2), mask.T),
                               rtol=1e-12)
    from dredux.compile.cuda import block_table
    from dredux.ranges import sparsity

    table, threads = block_table(sparsity(ranges, 1, m, n), 256)
    assert threads == 32 and len(table) > 7  # the big cluster takes several blocks
    xb, yb = gen.uniform(-1, 1, (3, 20, 3)), gen.uniform(-1, 1, (3, 30, 3))
    ref = np.stack([((xb[k][:, None] - yb[k][None]) ** 2).sum(-1).argsort(1)[:, :3]
                    for k in range(3)])
    np.testing.assert_array_equal(g(xb, yb, backend="gpu"), ref)


def test_local_gpus_get_one_task_stream_each(cp, monkeypatch):
    """On local threads, a GPU kernel without device_id plans one worker per GPU
    and spreads the row blocks over the GPUs round robin (a kernel per device in
    the graph); the result is the same."""
    import dask.array as da

    from dredux import backends, execute
    from dredux.graph import run_block

    monkeypatch.setattr(cp.cuda.runtime, "getDeviceCount", lambda: 2)
    monkeypatch.setattr(backends, "_gpu_count", lambda: 2)
    assert execute.worker_count(None, "gpu") == 2
    rng = np.random.default_rng(3)
    x, y = rng.uniform(-1, 1, (400, 3)), rng.uniform(-1, 1, (300, 3))
    b = rng.uniform(0.5, 1.5, (300, 1))
    g = Genred(*GAUSS, axis=1)
    lazy = g(da.from_array(x, chunks=(100, 3)), y, b, backend="gpu", block_size=(100, 300))
    kernel_keys = [t[1] for layer in lazy.__dask_graph__().layers.values()
                   for t in dict(layer).values() if isinstance(t, tuple) and t[:1] == (run_block,)]
    # (inputs, 0) is device 0's kernel, (inputs, "device", 1) device 1's
    assert sorted({key[-1] if len(key) == 3 else 0 for key in kernel_keys}) == [0, 1]
    np.testing.assert_allclose(lazy.compute(), gauss_reference(x, y, b), rtol=1e-12)
    np.testing.assert_allclose(g(x, y, b, backend="gpu", block_size=(100, 300)),
                               gauss_reference(x, y, b), rtol=1e-12)
