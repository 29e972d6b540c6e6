"""Genred end to end on the "numpy" backend: the seed example, arguments, memory."""

from __future__ import annotations

import numpy as np
import pytest

import dredux
from dredux import Genred, ShapeError
from dredux.errors import DtypeError
from dredux.numpy_eval import NumpyKernel
from tests.helpers import assert_close, rng

ALIASES = ["x = Vi(3)", "y = Vj(3)", "a = Vj(1)", "p = Pm(1)"]


def seed_inputs(m, n, seed=0):
    gen = rng(seed)
    return (gen.random((m, 3)), gen.random((n, 3)), gen.random((n, 1)), gen.random(1),
            gen.random((m, 3)))


def seed_forward(x, y, a, p):
    """sum_j (p - a_j)^2 exp(x_i + y_j) = exp(x_i) * sum_j (p - a_j)^2 exp(y_j)."""
    return np.exp(x) * ((p - a) ** 2 * np.exp(y)).sum(0)


def seed_gradient(x, y, a, p, e):
    """d/dy_j of sum_i <F_ij, e_i> = (p - a_j)^2 exp(y_j) * sum_i exp(x_i) e_i."""
    return (p - a) ** 2 * np.exp(y) * (np.exp(x) * e).sum(0)


def rel_err(out, ref):
    return float(np.abs(out.astype(np.float64) - ref).max() / np.abs(ref).max())


@pytest.mark.parametrize("m, n", [(30, 50), (3000, 5000)])
def test_seed_formula_and_gradient_in_float32(m, n):
    x, y, a, p, e = seed_inputs(m, n)
    forward = Genred("Square(p-a)*Exp(x+y)", ALIASES, reduction_op="Sum", axis=1)
    gradient = Genred("Grad(Square(p-a)*Exp(x+y), y, e)", ALIASES + ["e = Vi(3)"],
                      reduction_op="Sum", axis=0)
    cast = [v.astype(np.float32) for v in (x, y, a, p, e)]
    c = forward(*cast[:4], backend="numpy")
    g = gradient(*cast, backend="numpy")
    assert c.dtype == np.float32 and c.shape == (m, 3)
    assert g.dtype == np.float32 and g.shape == (n, 3)
    assert rel_err(c, seed_forward(x, y, a, p)) < 1e-5
    assert rel_err(g, seed_gradient(x, y, a, p, e)) < 1e-5
    c64 = forward(x, y, a, p, backend="numpy")
    assert rel_err(c64, seed_forward(x, y, a, p)) < 1e-12


def test_out_argument_is_filled():
    x, y, a, p, _ = seed_inputs(7, 9)
    out = np.full((7, 3), np.nan)  # poisoned: every row must be written
    r = Genred("Square(p-a)*Exp(x+y)", ALIASES, axis=1)
    result = r(x, y, a, p, backend="numpy", out=out)
    assert result is out
    assert_close(out, seed_forward(x, y, a, p))


def test_float16_inputs_accumulate_in_float32():
    gen = rng(1)
    x = gen.random((4, 1)).astype(np.float16)
    y = gen.random((3000, 1)).astype(np.float16)
    out = Genred("x * y", ["x = Vi(1)", "y = Vj(1)"], axis=1)(x, y, backend="numpy")
    ref = (x.astype(np.float64) * y.astype(np.float64).sum())
    assert out.dtype == np.float16
    assert rel_err(out, ref) < 2e-3  # float16 output rounding only


def test_dtype_argument_is_silent_when_it_agrees_and_warns_when_not():
    import warnings

    x = rng(2).random((3, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # KeOps's tutorials pass dtype=: no noise
        r = Genred("x", ["x = Vi(2)"], axis=1, dtype="float64")
        assert r(x, backend="numpy").dtype == np.float64
        Genred("x", ["x = Vi(2)"], axis=1, cuda_type="float32")(
            x.astype(np.float32), backend="numpy")
    r32 = Genred("x", ["x = Vi(2)"], axis=1, dtype="float32")
    with pytest.warns(UserWarning, match="dtype='float32' but is called on float64"):
        assert r32(x, backend="numpy").dtype == np.float64
    with pytest.raises(DtypeError, match="dtype='floatish' is not a dtype"):
        Genred("x", ["x = Vi(2)"], axis=1, dtype="floatish")


def test_dtype_warning_names_the_callers_line_on_every_call_path():
    x = rng(2).random((3, 2)).astype(np.float32)
    y = rng(3).random((4, 2)).astype(np.float32)
    plain = Genred("x * y", ["x = Vi(2)", "y = Vj(2)"], axis=1, dtype="float64")
    split = Genred("MatVecMult(s, x - y)", ["s = Pm(4)", "x = Vi(2)", "y = Vj(2)"], axis=1,
                   dtype="float64")
    assert split.epilogue is not None  # the linear map runs after the sum
    calls = {"plain": lambda: plain(x, y, backend="numpy"),
             "batched": lambda: plain(x[None].repeat(2, 0), y[None], backend="numpy"),
             "split": lambda: split(np.ones(4, np.float32), x, y, backend="numpy")}
    for name, call in calls.items():
        with pytest.warns(UserWarning, match="dtype='float64' but is called on float32") \
                as record:
            call()
        assert [w.filename for w in record] == [__file__], name


def test_dask_inputs_give_a_lazy_result():
    da = pytest.importorskip("dask.array")
    x, y, a, p, _ = seed_inputs(20, 30)
    r = Genred("Square(p-a)*Exp(x+y)", ALIASES, axis=1)
    lazy = r(da.from_array(x, chunks=(7, 3)), y, a, p, backend="numpy")
    assert isinstance(lazy, da.Array) and lazy.shape == (20, 3)
    assert_close(lazy.compute(scheduler="sync"), seed_forward(x, y, a, p))


def test_reduce_one_shot():
    x, y = rng(3).random((4, 2)), rng(4).random((5, 2))
    out = dredux.reduce("SqDist(x, y)", ["x = Vi(2)", "y = Vj(2)"], x, y, backend="numpy")
    assert_close(out, ((x[:, None] - y[None]) ** 2).sum(-1).sum(1, keepdims=True))


def test_keops_argument_order_and_count():
    r = Genred("Square(p-a)*Exp(x+y)", ALIASES, axis=1)
    assert r.nargs == 4
    assert [s.name for s in r.signature.args] == ["x", "y", "a", "p"]


def test_block_budget_bounds_the_intermediates():
    """The numpy kernel evaluates sub-blocks whose intermediates fit its budget."""
    r = Genred("Exp(-SqDist(x, y)) * y", ["x = Vi(3)", "y = Vj(3)"], axis=1)
    program = r.program("float64")
    budget = 16 << 10
    kernel = NumpyKernel(program, budget=budget)
    seen = []
    values = kernel.values

    def recording(rows, cols, params, i0, i1, j0, j1, xp):
        seen.append((i1 - i0) * (j1 - j0))
        return values(rows, cols, params, i0, i1, j0, j1, xp)

    kernel.values = recording
    gen = rng(5)
    x, y = gen.random((300, 3)), gen.random((400, 3))
    state = kernel([x], [y], [], 300, 400, 0)
    out = program.reduction.finalize(state, np.float64)
    ref = (np.exp(-((x[:, None] - y[None]) ** 2).sum(-1))[..., None] * y[None]).sum(1)
    assert_close(out, ref)
    assert len(seen) > 1 and sum(seen) == 300 * 400
    assert max(seen) * kernel._pair_bytes() <= budget


def test_repeated_calls_reuse_their_checks_but_follow_what_changes():
    """A call like an earlier one (shapes, dtypes, options, configuration) skips its
    checks and planning; anything that changes the plan or the kernel is seen."""
    import dask

    from dredux.numpy_eval import NumpyKernel

    f = Genred("Exp(-SqDist(x, y)) * b", ["x = Vi(2)", "y = Vj(2)", "b = Vj(1)"], axis=1)
    gen = np.random.default_rng(4)
    x, y, b = gen.random((6, 2)), gen.random((5, 2)), gen.random((5, 1))

    def ref(x, y, b):
        return (np.exp(-((x[:, None] - y[None]) ** 2).sum(-1)) @ b)

    for _ in range(3):
        np.testing.assert_allclose(f(x, y, b, backend="numpy"), ref(x, y, b), rtol=1e-13)
    x2 = gen.random((9, 2))  # new shapes, new values: never an earlier result
    np.testing.assert_allclose(f(x2, y, b, backend="numpy"), ref(x2, y, b), rtol=1e-13)
    y2 = gen.random((5, 2))
    np.testing.assert_allclose(f(x, y2, b, backend="numpy"), ref(x, y2, b), rtol=1e-13)
    with pytest.raises(ShapeError):  # a bad call is checked every time
        f(x, y, b[:3], backend="numpy")
    with pytest.raises(ShapeError):
        f(x, y, b[:3], backend="numpy")
    calls = []
    original = NumpyKernel.__call__

    def counting(self, *args, **kwargs):
        calls.append(self.budget)
        return original(self, *args, **kwargs)

    NumpyKernel.__call__ = counting
    try:
        with dask.config.set({"dredux.backend": "numpy"}):
            f(x, y, b)
        with dask.config.set({"dredux.backend": "numpy", "dredux.block-size": [2, 2]}):
            np.testing.assert_allclose(f(x, y, b, scheduler="sync"), ref(x, y, b),
                                       rtol=1e-13)
            np.testing.assert_allclose(f(x, y, b), ref(x, y, b), rtol=1e-13)
    finally:
        NumpyKernel.__call__ = original
    # one task, then 3 x 3 blocks twice (the configuration changed the plan)
    assert len(calls) == 1 + 9 + 9
