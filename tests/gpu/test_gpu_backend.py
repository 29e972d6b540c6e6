"""The GPU backend on a CUDA device: results, dtypes, array types, Dask.

Every test here needs CuPy and a device and is skipped otherwise (marker
``gpu``). References: NumPy in float64 written in tests/codegen/cuda_cases.py
and below; every op runs in the grouped formulas of the catalogue
(tests/op_cases.py), each case against its float64 reference and against the
"numpy" backend.

Tolerances (relative to the largest magnitude of the compared block):
float64 1e-11; float32 2e-5 (summation order and a few ulp of the CUDA maths
library); float16 inputs 1e-3 (the float16 rounding of the output, 2^-11,
on top of float32 computation and accumulation).
"""

from __future__ import annotations

import numpy as np
import pytest

cp = pytest.importorskip("cupy")


def _device_count() -> int:
    try:
        return int(cp.cuda.runtime.getDeviceCount())
    except Exception:  # no driver
        return 0


if _device_count() < 1:
    pytest.skip("CuPy sees no CUDA device", allow_module_level=True)

import dask.array as da  # noqa: E402

import dredux.compile.cuda as cuda_backend  # noqa: E402
from dredux import BackendUnavailable, Genred  # noqa: E402
from dredux.backends import make_kernel  # noqa: E402
from dredux.reductions import IDX_NONE  # noqa: E402
from tests.codegen.cuda_cases import (  # noqa: E402
    ALIASES,
    OP_GROUPS,
    REDUCTION_CASES,
    inputs,
    pair_values,
    reduction_ref,
)
from tests.cpu.cpu_util import tolerances  # noqa: E402
from tests.helpers import gauss_reference  # noqa: E402
from tests.product_cases import PRODUCTS, check_product, product_routine  # noqa: E402

pytestmark = pytest.mark.gpu

RTOL = {"float16": 1e-3, "float32": 2e-5, "float64": 1e-11}
GAUSS = ("Exp(-SqDist(x, y)) * b", ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)"])
SEED = ("Square(p-a)*Exp(x+y)", ["x = Vi(3)", "y = Vj(3)", "a = Vj(1)", "p = Pm(1)"])


def close(out, ref, rtol, what=""):
    out = np.asarray(cp.asnumpy(out) if isinstance(out, cp.ndarray) else out, np.float64)
    ref = np.asarray(ref, np.float64)
    assert out.shape == ref.shape, (what, out.shape, ref.shape)
    scale = max(1.0, float(np.nanmax(np.abs(ref)))) if ref.size else 1.0
    np.testing.assert_allclose(out, ref, rtol=rtol, atol=rtol * scale, err_msg=what)


def seed_ref(x, y, a, p):
    x, y, a, p = (np.asarray(v, np.float64) for v in (x, y, a, p))
    return np.exp(x) * ((p - a) ** 2 * np.exp(y)).sum(0)


# ---------------------------------------------------------------------------
# every op, every reduction, both axes, float32 and float64
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("group", sorted(OP_GROUPS))
def test_ops_agree_with_references_and_the_numpy_backend(group, axis, dtype):
    """Every case of the catalogue against its float64 reference (of the inputs as
    cast to ``dtype``), and against the "numpy" backend in the same dtype."""
    g = OP_GROUPS[group]
    routine = g.routine(axis)
    args = g.inputs(45, 2500, dtype, seed=3)
    out = routine(*args, backend="gpu")
    ref = routine(*args, backend="numpy")
    assert isinstance(out, np.ndarray) and out.dtype == ref.dtype == np.dtype(dtype)
    assert out.shape == ref.shape == ((45 if axis == 1 else 2500), g.width)
    g.check(out, args, axis, RTOL[dtype])
    for member, got, want in zip(g.members, g.split(out), g.split(ref)):
        close(got, want, RTOL[dtype], member.what)


def _as_triple(indices, name):
    """Index outputs as (rows, K, D) for take_along_axis on (rows, N, D) values."""
    if "KMin" in name:  # (rows, K, D), or (rows, K) when D = 1
        return indices if indices.ndim == 3 else indices[:, :, None]
    return indices[:, None, :]  # ArgMax...: (rows, D)


def check_reduction(name, out, args, axis, rtol):
    """``out`` against reduction_ref; indices are checked by the values they
    point at (float32 may order near-ties differently from float64)."""
    ref = reduction_ref(name, args, axis)
    outs = out if isinstance(out, tuple) else (out,)
    refs = ref if isinstance(ref, tuple) else (ref,)
    assert len(outs) == len(refs)
    f = pair_values(REDUCTION_CASES[name][0], args)
    f = f.transpose(1, 0, 2) if axis == 0 else f
    for o, r in zip(outs, refs):
        o = cp.asnumpy(o) if isinstance(o, cp.ndarray) else o
        if np.issubdtype(r.dtype, np.integer):
            assert o.dtype == np.int64 and o.shape == r.shape, name
            assert (o >= 0).all() and (o < f.shape[1]).all(), name
            picked = np.take_along_axis(f, _as_triple(o, name), 1)
            best = np.take_along_axis(f, _as_triple(r, name), 1)
            close(picked, best, rtol, f"{name}: values at the indices")
        else:
            close(o, r, rtol, name)


@pytest.mark.parametrize("dtype, axis", [("float64", 1), ("float32", 1), ("float32", 0)])
@pytest.mark.parametrize("name", sorted(REDUCTION_CASES))
def test_reductions_agree_with_numpy(name, dtype, axis):
    formula, formula2, k = REDUCTION_CASES[name]
    g = Genred(formula, ALIASES, reduction_op=name, axis=axis, formula2=formula2, opt_arg=k)
    m, n = (300, 4000) if axis == 1 else (4000, 300)
    args = inputs(m, n, dtype, seed=5)
    out = g(*args, backend="gpu")
    check_reduction(name, out, args, axis, RTOL[dtype])
    if dtype == "float64" and axis == 1:  # exact indices in float64
        ref = reduction_ref(name, args)
        for o, r in zip(out if isinstance(out, tuple) else (out,),
                        ref if isinstance(ref, tuple) else (ref,)):
            if np.issubdtype(r.dtype, np.integer):
                np.testing.assert_array_equal(o, r, err_msg=name)


# ---------------------------------------------------------------------------
# sizes on the edges of blocks, tiles and column splits
# ---------------------------------------------------------------------------

EDGES = [(m, n) for m in (0, 1, 255, 256, 257)
         for n in (0, 1, 255, 256, 257, 65535, 65536, 65537)]
EDGES += [(m, 257) for m in (4095, 4096, 4097, 65535, 65536, 65537)]


@pytest.mark.parametrize("m, n", EDGES)
def test_block_edges(m, n):
    rng = np.random.default_rng(m * 100_003 + n)
    x = rng.uniform(-1, 1, (m, 3)).astype(np.float32)
    y = rng.uniform(-1, 1, (n, 3)).astype(np.float32)
    b = rng.uniform(0.5, 1.5, (n, 1)).astype(np.float32)
    out = Genred(*GAUSS, axis=1)(x, y, b, backend="gpu")
    assert out.shape == (m, 1) and out.dtype == np.float32
    close(out[:, 0], gauss_reference(x, y, b)[:, 0], RTOL["float32"])


@pytest.mark.parametrize("m, n", [(1, 1), (257, 65537), (3, 3_000_000)])
@pytest.mark.parametrize("name", ["Sum", "Min_ArgMin", "KMin_ArgKMin", "LogSumExp"])
def test_every_row_of_the_state_is_written(name, m, n):
    # poisoned buffers (NaN, index -7) before the launch; (3, 3e6) splits the
    # columns into more than 32 ranges: two rounds of merges on the device
    formula, formula2, k = REDUCTION_CASES[name]
    g = Genred(formula, ALIASES, reduction_op=name, axis=1, formula2=formula2, opt_arg=k)
    prog = g.program("float64")
    kernel = make_kernel(prog, "gpu", poison=True)
    args = [cp.asarray(a) for a in inputs(m, n, np.float64, seed=m + n)]
    by_pos = dict(enumerate(args))
    groups = [[by_pos[v.params[0]] for v in vs]
              for vs in (prog.row_vars, prog.col_vars, prog.param_vars)]
    state = kernel(*groups, m, n, 5)
    for array, (field, shape, kind) in zip(state, prog.reduction.fields()):
        assert isinstance(array, cp.ndarray) and array.shape == (m, *shape), field
        host = cp.asnumpy(array)
        if kind == "idx":  # global indices, or "none" past the n columns of KMin
            seen = (host >= 5) & (host < 5 + n)
            assert (seen | (host == IDX_NONE)).all(), field
            assert seen.all() or n < (k or 1), field
        else:
            assert not np.isnan(host).any(), field
    out = prog.reduction.finalize(state, np.float64, cp)
    outs = out if isinstance(out, tuple) else (out,)
    refs = reduction_ref(name, [cp.asnumpy(a) for a in args])
    refs = refs if isinstance(refs, tuple) else (refs,)
    for o, r in zip(outs, refs):
        o = cp.asnumpy(o)
        if k and n < k:  # KMin with fewer columns than K: padding after the n found
            pad = o[:, n:]
            assert (pad == -1).all() if o.dtype == np.int64 else (pad == np.inf).all()
            o = o[:, :n]
        if np.issubdtype(r.dtype, np.integer):
            np.testing.assert_array_equal(o, r + 5)
        else:
            close(o, r, 1e-10, name)


# ---------------------------------------------------------------------------
# float16, wide variables, fast maths
# ---------------------------------------------------------------------------

def test_float16_against_a_float64_reference():
    rng = np.random.default_rng(20)
    m, n = 1000, 3000
    x = rng.uniform(-1, 1, (m, 3)).astype(np.float16)
    y = rng.uniform(-1, 1, (n, 3)).astype(np.float16)
    b = rng.uniform(0.5, 1.5, (n, 1)).astype(np.float16)
    out = Genred(*GAUSS, axis=1)(x, y, b, backend="gpu")
    assert out.dtype == np.float16
    close(out[:, 0], gauss_reference(x, y, b)[:, 0], RTOL["float16"], "gauss float16")
    a = rng.uniform(0, 1, (n, 1)).astype(np.float16)
    p = rng.uniform(0, 1, (1,)).astype(np.float16)
    out = Genred(*SEED, axis=1)(x, y, a, p, backend="gpu")
    close(out, seed_ref(x, y, a, p), RTOL["float16"], "seed float16")
    args16 = inputs(500, 2000, np.float16, seed=21)
    for name in ("Min_ArgMin", "LogSumExp", "SumSoftMaxWeight", "ArgKMin"):
        formula, formula2, k = REDUCTION_CASES[name]
        g = Genred(formula, ALIASES, reduction_op=name, axis=1, formula2=formula2,
                   opt_arg=k)
        check_reduction(name, g(*args16, backend="gpu"), args16, 1, RTOL["float16"])


@pytest.mark.parametrize("d", [64, 256])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_wide_variables(d, dtype):
    rng = np.random.default_rng(d)
    x = (rng.uniform(-1, 1, (2000, d)) / np.sqrt(d)).astype(dtype)
    y = (rng.uniform(-1, 1, (3000, d)) / np.sqrt(d)).astype(dtype)
    b = rng.uniform(0.5, 1.5, (3000, 1)).astype(dtype)
    aliases = [f"x = Vi({d})", f"y = Vj({d})", "b = Vj(1)"]
    out = Genred(GAUSS[0], aliases, axis=1)(x, y, b, backend="gpu")
    close(out[:, 0], gauss_reference(x, y, b)[:, 0], RTOL[dtype])


@pytest.mark.parametrize("d, dtype", [(16, "float32"), (24, "float64")])
@pytest.mark.parametrize("name", sorted(PRODUCTS))
def test_matrix_products(name, d, dtype):
    """The matrix products of tests/product_cases.py (one contraction per output
    component, tiles of fewer columns, blocks of 128 threads, a parameter
    matrix staged in shared memory) on the device; two of the emulator's four
    sizes and dtypes, to keep the device run within its time."""
    check_product(product_routine(name, d), name, d, np.dtype(dtype), "gpu",
                  tolerances(dtype))


def test_fast_math_stays_close():
    rng = np.random.default_rng(22)
    x = rng.uniform(-1, 1, (3000, 3)).astype(np.float32)
    y = rng.uniform(-1, 1, (4000, 3)).astype(np.float32)
    b = rng.uniform(0.5, 1.5, (4000, 1)).astype(np.float32)
    out = Genred(*GAUSS, axis=1, use_fast_math=True)(x, y, b, backend="gpu")
    close(out[:, 0], gauss_reference(x, y, b)[:, 0], 1e-4)


# ---------------------------------------------------------------------------
# array types in and out
# ---------------------------------------------------------------------------

def test_cupy_in_cupy_out_numpy_in_numpy_out():
    args = inputs(200, 700, np.float32, seed=23)
    for name in ("Sum", "Max_ArgMax", "LogSumExpWeight"):
        formula, formula2, k = REDUCTION_CASES[name]
        g = Genred(formula, ALIASES, reduction_op=name, axis=1, formula2=formula2,
                   opt_arg=k)
        host = g(*args, backend="gpu")
        device = g(*[cp.asarray(a) for a in args])  # backend "auto": CuPy picks the GPU
        hosts = host if isinstance(host, tuple) else (host,)
        devices = device if isinstance(device, tuple) else (device,)
        for h, d in zip(hosts, devices):
            assert isinstance(h, np.ndarray) and isinstance(d, cp.ndarray), name
            assert h.dtype == d.dtype and h.shape == d.shape
            if name == "LogSumExpWeight":
                # the final m + log(s) runs NumPy's log on one side and CUDA's logf on
                # the other: both within an ulp or two, not bitwise equal
                np.testing.assert_allclose(h, cp.asnumpy(d), rtol=1e-6)
            else:
                np.testing.assert_array_equal(h, cp.asnumpy(d))
        check_reduction(name, host, args, 1, RTOL["float32"])


def test_strided_and_fortran_inputs():
    rng = np.random.default_rng(24)
    big_x = rng.uniform(-1, 1, (600, 7))
    big_y = rng.uniform(-1, 1, (900, 7))
    b = np.asfortranarray(rng.uniform(0.5, 1.5, (450, 2)))[:, :1]
    x, y = big_x[::2, 1:7:2], np.asfortranarray(big_y)[::2, 2:5]
    ref = gauss_reference(x, y, b)[:, 0]
    g = Genred(*GAUSS, axis=1)
    close(g(x, y, b, backend="gpu")[:, 0], ref, RTOL["float64"], "numpy views")
    cx, cy = cp.asarray(big_x)[::2, 1:7:2], cp.asfortranarray(cp.asarray(big_y))[::2, 2:5]
    close(g(cx, cy, cp.asarray(b), backend="gpu")[:, 0], ref, RTOL["float64"], "cupy views")


def test_dask_with_cupy_chunks_is_lazy_and_cupy_backed():
    # a formula used nowhere else: its kernel is not compiled before compute()
    formula = "Exp(-SqDist(x, y) * 1.25) * b"
    rng = np.random.default_rng(25)
    x, y = rng.uniform(-1, 1, (1000, 3)), rng.uniform(-1, 1, (1500, 3))
    b = rng.uniform(0.5, 1.5, (1500, 1))
    dx = da.from_array(cp.asarray(x), chunks=(300, 3), asarray=False)
    dy = da.from_array(cp.asarray(y), chunks=(400, 3), asarray=False)
    db = da.from_array(cp.asarray(b), chunks=(400, 1), asarray=False)
    g = Genred(formula, GAUSS[1], axis=1)
    out = g(dx, dy, db, backend="gpu", block_size=(300, 400))
    assert isinstance(out, da.Array) and isinstance(out._meta, cp.ndarray)
    assert out.chunks[0] == (300, 300, 300, 100)
    key = g.kernel("gpu", "float64").key
    assert not any(k[0] == key for k in cuda_backend._COMPILED)  # nothing ran yet
    value = out.compute()
    assert isinstance(value, cp.ndarray)
    ref = gauss_reference(x * np.sqrt(1.25), y * np.sqrt(1.25), b)[:, 0]
    close(value[:, 0], ref, RTOL["float64"])
    # tree merges of CuPy states, including the sorted lists of KMin
    kmin = Genred("SqDist(x, y)", GAUSS[1][:2], reduction_op="KMin_ArgKMin", opt_arg=4,
                  axis=1)
    lazy = kmin(dx, dy, backend="gpu", block_size=(300, 400), split_every=2)
    assert isinstance(lazy, tuple) and all(isinstance(a, da.Array) for a in lazy)
    val, idx = da.compute(*lazy)
    d2 = ((x[:, None, :] - y[None]) ** 2).sum(-1)
    order = np.argsort(d2, axis=1, kind="stable")[:, :4]
    np.testing.assert_array_equal(cp.asnumpy(idx), order)
    close(val, np.take_along_axis(d2, order, 1), RTOL["float64"])


def test_dask_with_numpy_chunks_gives_numpy_chunks():
    rng = np.random.default_rng(26)
    x, y = rng.uniform(-1, 1, (700, 3)), rng.uniform(-1, 1, (900, 3))
    b = rng.uniform(0.5, 1.5, (900, 1))
    dx, dy, db = (da.from_array(a, chunks=(250, a.shape[1])) for a in (x, y, b))
    out = Genred(*GAUSS, axis=1)(dx, dy, db, backend="gpu", block_size=(250, 300))
    assert isinstance(out, da.Array) and isinstance(out._meta, np.ndarray)
    value = out.compute()
    assert isinstance(value, np.ndarray)
    close(value[:, 0], gauss_reference(x, y, b)[:, 0], RTOL["float64"])


# ---------------------------------------------------------------------------
# devices and compilation
# ---------------------------------------------------------------------------

def test_device_id_and_a_missing_device():
    args = inputs(50, 60, np.float32, seed=27)
    g = Genred("x * y + v", ALIASES, axis=1)
    close(g(*args, backend="gpu", device_id=0), g(*args, backend="numpy"), RTOL["float32"])
    count = _device_count()
    with pytest.raises(BackendUnavailable, match=f"device_id={count}"):
        g(*args, backend="gpu", device_id=count)


def test_compiled_once_per_process_and_device():
    g = Genred("Exp(x - y) * 0.75", ["x = Vi(2)", "y = Vj(2)"], axis=1)
    x, y = np.random.default_rng(28).uniform(-1, 1, (2, 100, 2))
    for _ in range(3):
        g(x, y, backend="gpu")
    key = g.kernel("gpu", "float64").key
    assert [k for k in cuda_backend._COMPILED if k[0] == key] == [(key, 0)]


def test_dask_cuda_workers_run_on_their_gpu():
    dask_cuda = pytest.importorskip("dask_cuda")
    distributed = pytest.importorskip("distributed")
    rng = np.random.default_rng(29)
    x, y = rng.uniform(-1, 1, (3000, 3)), rng.uniform(-1, 1, (4000, 3))
    b = rng.uniform(0.5, 1.5, (4000, 1))
    g = Genred(*GAUSS, axis=1)
    with dask_cuda.LocalCUDACluster(dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        for _ in range(2):
            out = g(x, y, b, backend="gpu", block_size=(1000, 1000), scheduler=client)
            close(out[:, 0], gauss_reference(x, y, b)[:, 0], RTOL["float64"])

        def compiled():
            import dredux.compile.cuda as backend

            return len(backend._COMPILED)

        assert set(client.run(compiled).values()) == {1}  # one kernel, compiled once
