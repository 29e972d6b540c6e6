"""Block tasks and the Dask tree reduction (issue 3), on the NumPy backend.

References are brute-force NumPy computations in float64 written here, on the
full M x N x D array of formula values (small sizes).
"""

from __future__ import annotations

import itertools

import dask
import dask.array as da
import numpy as np
import pytest

from dredux import DtypeError, Genred, ShapeError

ALIASES = ["x = Vi(3)", "y = Vj(3)", "a = Vj(1)", "p = Pm(1)"]
SEED = "Square(p-a)*Exp(x+y)"
M, N = 37, 53  # neither is a multiple of any block size used below


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1234)
    return {
        "x": rng.uniform(-1, 1, (M, 3)), "y": rng.uniform(-1, 1, (N, 3)),
        "a": rng.uniform(-1, 1, (N, 1)), "p": rng.uniform(-1, 1, 1),
        "e": rng.uniform(-1, 1, (M, 3)),
    }


def seed_values(d):
    """F[i, j, :] of the seed formula, float64."""
    return np.square(d["p"] - d["a"])[None, :, :] * np.exp(d["x"][:, None] + d["y"][None])


def seed_grad_values(d):
    """F[i, j, :] of Grad(seed, y, e): e_i * F_ij componentwise."""
    return seed_values(d) * d["e"][:, None, :]


def scalar_values(d):
    return (-np.square(d["x"][:, None] - d["y"][None]).sum(-1) * d["p"][0])[..., None]


def reference(name, f, g=None, k=4):
    """Brute-force reduction of f (rows, cols, D) over axis 1."""
    if name == "Sum":
        return f.sum(1)
    if name in ("Max", "Min"):
        return f.max(1) if name == "Max" else f.min(1)
    if name in ("ArgMax", "ArgMin"):
        return f.argmax(1) if name == "ArgMax" else f.argmin(1)
    if name in ("Max_ArgMax", "Min_ArgMin"):
        best = f.max(1) if name == "Max_ArgMax" else f.min(1)
        return best, (f.argmax(1) if name == "Max_ArgMax" else f.argmin(1))
    if name in ("KMin", "ArgKMin", "KMin_ArgKMin"):
        order = np.argsort(f, axis=1, kind="stable")[:, :k]
        vals = np.take_along_axis(f, order, 1)
        vals, order = (vals[..., 0], order[..., 0]) if f.shape[2] == 1 else (vals, order)
        return {"KMin": vals, "ArgKMin": order, "KMin_ArgKMin": (vals, order)}[name]
    m = f.max(1)
    w = np.ones_like(f) if g is None else g
    s = (np.exp(f - m[:, None]) * w).sum(1)
    if name in ("LogSumExp", "LogSumExpWeight"):
        return m + np.log(s)
    if name == "SumSoftMaxWeight":
        return s / np.exp(f - m[:, None]).sum(1)
    return np.concatenate([m, s], axis=1)  # Max_SumShiftExp(Weight)


VECTOR_REDUCTIONS = ["Sum", "Max", "Min", "ArgMax", "ArgMin", "Max_ArgMax", "Min_ArgMin",
                     "KMin", "ArgKMin", "KMin_ArgKMin"]
LSE_REDUCTIONS = ["LogSumExp", "LogSumExpWeight", "SumSoftMaxWeight", "Max_SumShiftExp",
                  "Max_SumShiftExpWeight"]
CONFIGS = [dict(), dict(block_size=(1, 7), split_every=2), dict(block_size=(10, 16)),
           dict(block_size=(64, 5), split_every=3), dict(block_size=(8, 53))]


def routine_and_reference(name, axis, d):
    """A Genred for reduction ``name`` and its brute-force reference."""
    weighted = name in ("LogSumExpWeight", "SumSoftMaxWeight", "Max_SumShiftExpWeight")
    k = 4 if "KMin" in name else None
    if name in LSE_REDUCTIONS:
        formula, values = "-SqDist(x, y) * p", scalar_values(d)
    else:
        formula, values = SEED, seed_values(d)
    # positive weights, so that LogSumExpWeight takes the log of a positive sum
    g = np.broadcast_to(np.exp(d["y"])[None], (M, N, 3)) if weighted else None
    routine = Genred(formula, ALIASES, reduction_op=name, axis=axis, opt_arg=k,
                     formula2="Exp(y)" if weighted else None)
    if axis == 0:
        values = values.transpose(1, 0, 2)
        g = None if g is None else g.transpose(1, 0, 2)
    return routine, reference(name, values, g, k or 1)


def assert_same(out, ref, exact_index=True, rtol=1e-12):
    if isinstance(ref, tuple):
        assert isinstance(out, tuple) and len(out) == len(ref)
        for o, r in zip(out, ref):
            assert_same(o, r, exact_index, rtol)
        return
    assert out.shape == ref.shape, (out.shape, ref.shape)
    if np.issubdtype(ref.dtype, np.integer):
        assert out.dtype == np.int64
        np.testing.assert_array_equal(out, ref)
    else:
        np.testing.assert_allclose(out, ref, rtol=rtol, atol=1e-13)


@pytest.mark.parametrize("name", VECTOR_REDUCTIONS + LSE_REDUCTIONS)
@pytest.mark.parametrize("axis", [0, 1])
def test_every_reduction_any_blocks(name, axis, data):
    routine, ref = routine_and_reference(name, axis, data)
    args = [data[k] for k in "xyap"]
    for options in CONFIGS:
        assert_same(routine(*args, backend="numpy", **options), ref)


@pytest.mark.parametrize("axis", [0, 1])
def test_gradient_any_blocks(axis, data):
    g = Genred(f"Grad({SEED}, y, e)", ALIASES + ["e = Vi(3)"], reduction_op="Sum", axis=axis)
    values = seed_grad_values(data)
    ref = values.sum(0) if axis == 0 else values.sum(1)
    args = [data[k] for k in "xyape"]
    for options in CONFIGS:
        np.testing.assert_allclose(g(*args, backend="numpy", **options), ref, rtol=1e-12)


def test_block_and_split_choices_agree_to_rounding(data):
    f = Genred(SEED, ALIASES, reduction_op="Sum", axis=1)
    args = [data[k] for k in "xyap"]
    outs = [f(*args, backend="numpy", block_size=(bm, bn), split_every=s)
            for bm, bn, s in itertools.product((1, 5, 37), (1, 4, 53), (2, 3, 8))]
    for out in outs[1:]:
        np.testing.assert_allclose(out, outs[0], rtol=1e-13)


def test_sizes_zero_and_one():
    rng = np.random.default_rng(5)
    f = Genred(SEED, ALIASES, reduction_op="Sum", axis=1)
    for m, n in [(1, 1), (1, 9), (9, 1), (0, 5), (5, 0)]:
        d = {"x": rng.random((m, 3)), "y": rng.random((n, 3)), "a": rng.random((n, 1)),
             "p": rng.random(1)}
        out = f(*[d[k] for k in "xyap"], backend="numpy", block_size=(2, 3))
        assert out.shape == (m, 3)
        np.testing.assert_allclose(out, seed_values(d).sum(1), rtol=1e-12)


# --------------------------------------------------------------------------- dask


def test_dask_inputs_give_lazy_output_with_input_chunks(data):
    f = Genred(SEED, ALIASES, reduction_op="Sum", axis=1)
    x = da.from_array(data["x"], chunks=(10, 3))
    y = da.from_array(data["y"], chunks=(20, 3))
    out = f(x, y, data["a"], data["p"], backend="numpy")
    assert isinstance(out, da.Array)
    assert out.chunks == ((10, 10, 10, 7), (3,))
    assert out.dtype == np.float64 and out.shape == (M, 3)
    assert isinstance(out._meta, np.ndarray)
    np.testing.assert_allclose(out.compute(), seed_values(data).sum(1), rtol=1e-12)


def kernel_tasks(array) -> list:
    """Keys of the graph's tasks that run a kernel (block tasks)."""
    from dredux.graph import run_block

    return [k for k, v in dict(array.__dask_graph__()).items()
            if isinstance(v, tuple) and v and v[0] is run_block]


def test_one_chunk_input_is_cut_into_tasks(data):
    """A dask input in one chunk still gives several block tasks (rows and columns
    cut by the planner), merged back into the single output chunk."""
    f = Genred(SEED, ALIASES, reduction_op="Sum", axis=1)
    x = da.from_array(data["x"], chunks=-1)
    y = da.from_array(data["y"], chunks=-1)
    args = (x, y, data["a"], data["p"])
    out = f(*args, backend="numpy", block_size=(8, 16))
    assert out.chunks == ((M,), (3,))
    assert len(kernel_tasks(out)) == 5 * 4  # ceil(37 / 8) row blocks x ceil(53 / 16) column ranges
    np.testing.assert_allclose(out.compute(), seed_values(data).sum(1), rtol=1e-12)
    for name in ("ArgKMin", "Min_ArgMin"):
        g = Genred(SEED, ALIASES, reduction_op=name, axis=1, opt_arg=4)
        lazy = g(*args, backend="numpy", block_size=(8, 16))
        want = g(*[np.asarray(a) for a in args], backend="numpy")
        for got, ref in zip(dask.compute(lazy)[0], want):
            np.testing.assert_array_equal(got, ref)


def test_one_chunk_input_uses_every_worker(data):
    f = Genred("Exp(-SqDist(x, y)) * a", ALIASES[:3], reduction_op="Sum", axis=1)
    rng = np.random.default_rng(0)
    x = da.from_array(rng.random((200_000, 3), dtype=np.float32), chunks=-1)
    y = da.from_array(rng.random((200_000, 3), dtype=np.float32), chunks=-1)
    a = da.from_array(rng.random((200_000, 1), dtype=np.float32), chunks=-1)
    for workers in (2, 8):
        with dask.config.set(num_workers=workers):
            out = f(x, y, a, backend="cpu")
        assert out.chunks[0] == (200_000,)
        assert len(kernel_tasks(out)) >= workers


def test_axis0_output_follows_j_chunks(data):
    f = Genred(SEED, ALIASES, reduction_op="Sum", axis=0)
    y = da.from_array(data["y"], chunks=(25, 3))
    a = da.from_array(data["a"], chunks=(11, 1))  # different chunks are aligned
    out = f(data["x"], y, a, data["p"], backend="numpy")
    assert out.chunks[0] == (25, 25, 3)
    np.testing.assert_allclose(out.compute(), seed_values(data).sum(0), rtol=1e-12)


def test_nothing_runs_before_compute(data):
    calls = []

    def record(block):
        calls.append(block.shape)
        return block

    x = da.from_array(data["x"], chunks=(10, 3)).map_blocks(record, meta=np.empty((0, 0)))
    f = Genred(SEED, ALIASES, reduction_op="Sum", axis=1)
    out = f(x, data["y"], data["a"], data["p"], backend="numpy")
    total = (out * 2).sum()
    assert calls == []
    value = total.compute(scheduler="sync")
    assert len(calls) == 4
    np.testing.assert_allclose(value, 2 * seed_values(data).sum(), rtol=1e-12)


def test_composes_with_dask_operations(data):
    f = Genred("Exp(-SqDist(x, y)) * b", ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)"],
               reduction_op="Sum", axis=1)
    x = da.from_array(data["x"], chunks=(16, 3))
    y = da.from_array(data["y"], chunks=(16, 3))
    b = da.from_array(data["a"], chunks=(16, 1))
    got = (f(x, y, b, backend="numpy") * 2).sum().compute()
    k = np.exp(-np.square(data["x"][:, None] - data["y"][None]).sum(-1))
    np.testing.assert_allclose(got, 2 * (k @ data["a"]).sum(), rtol=1e-12)


def test_keys_are_deterministic(data):
    f = Genred(SEED, ALIASES, reduction_op="Sum", axis=1)
    x = da.from_array(data["x"], chunks=(10, 3))
    first = f(x, data["y"], data["a"], data["p"], backend="numpy")
    again = Genred(SEED, ALIASES, reduction_op="Sum", axis=1)(
        x, data["y"], data["a"], data["p"], backend="numpy")
    assert first.name == again.name
    assert set(dict(first.__dask_graph__())) == set(dict(again.__dask_graph__()))
    other = f(x, data["y"], data["a"], data["p"] + 1, backend="numpy")
    assert other.name != first.name
    finer = f(x, data["y"], data["a"], data["p"], backend="numpy", block_size=(10, 7))
    assert finer.name != first.name


# (backend, routine options, changed options): each change alters what a kernel
# computes and must give other graph keys
KERNEL_OPTIONS = [
    ("gpu", {}, {"use_fast_math": True}),
    ("numpy", {}, {"dtype_acc": "float64"}),
    ("numpy", {}, {"sum_scheme": "kahan_scheme"}),
    ("numpy", {}, {"sum_scheme": "direct_sum"}),
    ("numpy", {"reduction_op": "ArgKMin", "opt_arg": 3}, {"opt_arg": 4}),
    ("numpy", {"reduction_op": "LogSumExp"}, {"formula2": "a"}),
]


@pytest.mark.parametrize("backend, routine, option", KERNEL_OPTIONS,
                         ids=[",".join(f"{k}={v}" for k, v in o.items())
                              for _, _, o in KERNEL_OPTIONS])
def test_kernel_options_change_the_keys(backend, routine, option, data):
    """A scheduler holding the result of one call must never hand it to a call that
    computes something else (Dask's same_keys discipline, both ways)."""
    formula = "Sum(x * y) - a" if "reduction_op" in routine else SEED
    x = da.from_array(data["x"].astype(np.float32), chunks=(10, 3))
    args = [x, *(data[k].astype(np.float32) for k in "yap")]

    def call(**kw):
        return Genred(formula, ALIASES, axis=1, **{**routine, **kw})(*args, backend=backend)

    def own_keys(out):
        return {k for k in dict(out.__dask_graph__()) if str(k).find("dredux-") >= 0}

    plain = call()
    assert call().name == plain.name
    changed = call(**option)
    assert changed.name != plain.name
    assert not own_keys(changed) & own_keys(plain)
    assert call(**option).name == changed.name


def test_kernels_tokenize_by_what_they_compute():
    from dask.base import tokenize

    g = Genred(SEED, ALIASES, reduction_op="Sum", axis=1)
    for backend, options in (("cpu", ({"rows_per_pass": 1}, {"rows_per_pass": 4})),
                             ("gpu", ({"fast_math": True}, {"fast_math": False})),
                             ("numpy", ({"budget": 1 << 20}, {"budget": 1 << 26}))):
        one, other = (g.kernel(backend, "float32", **o) for o in options)
        assert tokenize(one) != tokenize(other), backend
        assert tokenize(one) == tokenize(g.kernel(backend, "float32", **options[0]))
        assert tokenize(one) != tokenize(g.kernel(backend, "float64", **options[0]))


def test_inputs_and_parameters_enter_graph_once(data):
    f = Genred(SEED, ALIASES, reduction_op="Sum", axis=1)
    x = da.from_array(data["x"], chunks=(10, 3))
    out = f(x, data["y"], data["a"], data["p"], backend="numpy", block_size=(10, 9))
    graph = dict(out.__dask_graph__())
    holding_p = [k for k, v in graph.items()
                 if isinstance(v, np.ndarray) and v is data["p"]]
    assert len(holding_p) == 1
    blocks = [k for k in graph if isinstance(k, tuple) and "-block-" in k[0]]
    assert len(blocks) == 4 * 6  # 4 row blocks x ceil(53 / 9) column ranges
    # every block task refers to the parameter and its input chunks by key
    for key in blocks:
        deps = dask.core.get_dependencies(graph, key)
        assert holding_p[0] in deps
        assert (x.name, key[1], 0) in deps


def test_mixed_noncontiguous_and_fortran_inputs(data):
    f = Genred(SEED, ALIASES, reduction_op="Sum", axis=1)
    x_fortran = np.asfortranarray(data["x"])
    assert not x_fortran.flags["C_CONTIGUOUS"]
    y_strided = np.repeat(data["y"], 2, axis=0)[::2]  # a non-contiguous view equal to y
    assert not y_strided.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(y_strided, data["y"])
    a_strided = np.repeat(data["a"], 3, axis=1)[:, 1:2]
    ref = seed_values(data).sum(1)
    out = f(x_fortran, y_strided, a_strided, data["p"], backend="numpy", block_size=(8, 8))
    np.testing.assert_allclose(out, ref, rtol=1e-12)
    lazy = f(x_fortran, da.from_array(y_strided, chunks=(17, 3)), a_strided, data["p"],
             backend="numpy")
    np.testing.assert_allclose(lazy.compute(), ref, rtol=1e-12)


def test_out_argument(data):
    f = Genred(SEED, ALIASES, reduction_op="Sum", axis=1)
    out = np.full((M, 3), np.nan)
    got = f(*[data[k] for k in "xyap"], backend="numpy", out=out, block_size=(8, 8))
    assert got is out
    np.testing.assert_allclose(out, seed_values(data).sum(1), rtol=1e-12)
    with pytest.raises(ShapeError, match=r"out has shape \(3, 3\)"):
        f(*[data[k] for k in "xyap"], backend="numpy", out=np.empty((3, 3)))


def test_errors_before_any_task_runs(data):
    calls = []

    def record(block):
        calls.append(1)
        return block

    f = Genred(SEED, ALIASES, reduction_op="Sum", axis=1)
    meta = np.empty((0, 0))
    bad_y = da.from_array(np.ones((N, 2)), chunks=(10, 2)).map_blocks(record, meta=meta)
    with pytest.raises(ShapeError, match=r"'y' = Vj\(3\).*shape \(53, 2\).*\(N, 3\)"):
        f(data["x"], bad_y, data["a"], data["p"], backend="numpy")
    f32_y = da.from_array(data["y"].astype(np.float32), chunks=10).map_blocks(
        record, meta=meta.astype(np.float32))
    with pytest.raises(DtypeError, match="'y' is float32"):
        f(data["x"], f32_y, data["a"], data["p"], backend="numpy")
    assert calls == []


def test_scheduler_option(data):
    f = Genred(SEED, ALIASES, reduction_op="ArgKMin", axis=1, opt_arg=3)
    args = [data[k] for k in "xyap"]
    threaded = f(*args, backend="numpy", block_size=(9, 9))
    sync = f(*args, backend="numpy", block_size=(9, 9), scheduler="sync")
    np.testing.assert_array_equal(threaded, sync)
    with dask.config.set({"dredux.block-size": [9, 9]}):
        np.testing.assert_array_equal(f(*args, backend="numpy"), threaded)


def test_unknown_call_option(data):
    f = Genred(SEED, ALIASES, reduction_op="Sum", axis=1)
    with pytest.raises(TypeError, match="blocksize"):
        f(*[data[k] for k in "xyap"], blocksize=3)
