"""1-D arrays for the Vi(1) and Vj(1) arguments of a Genred call: read as (L, 1)
columns, as KeOps reads them (NumPy, dask, batched and block-sparse calls), the
result keeping its (M, 1) shape; every other shape rule unchanged."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

import dredux
from dredux import Genred, ShapeError
from dredux.cluster import from_matrix
from tests.helpers import assert_close, rng

BACKENDS = ["numpy", "cpu"]
M, N = 23, 31
GAUSS = ("Exp(-SqDist(x, y)) * b", ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)"])


def inputs(seed=0):
    gen = rng(seed)
    return gen.random((M, 3)), gen.random((N, 3)), gen.uniform(-1, 1, N)


def kernel(x, y):
    return np.exp(-((x[:, None, :] - y[None, :, :]) ** 2).sum(-1))


@pytest.fixture(scope="module")
def gauss():
    return Genred(*GAUSS, reduction_op="Sum", axis=1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_1d_array_for_a_vj1_variable_is_a_column(gauss, backend):
    x, y, b = inputs()
    out = gauss(x, y, b, backend=backend)
    assert out.shape == (M, 1) and out.dtype == np.float64
    assert_close(out, kernel(x, y) @ b[:, None])
    np.testing.assert_array_equal(out, gauss(x, y, b[:, None], backend=backend))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_1d_array_for_a_vi1_variable_reduced_over_i(backend):
    x, y, _ = inputs(1)
    a = rng(2).uniform(-1, 1, M)
    routine = Genred("Exp(-SqDist(x, y)) * a", ["x = Vi(3)", "y = Vj(3)", "a = Vi(1)"],
                     reduction_op="Sum", axis=0)
    out = routine(x, y, a, backend=backend)
    assert out.shape == (N, 1)
    assert_close(out, kernel(x, y).T @ a[:, None])


@pytest.mark.parametrize("backend", BACKENDS)
def test_strided_and_float32_1d_arrays(gauss, backend):
    x, y, _ = inputs(3)
    wide = rng(4).uniform(-1, 1, 3 * N)
    for b in (wide[::3], wide[::-1][:N], wide.reshape(N, 3)[:, 1]):
        assert_close(gauss(x, y, b, backend=backend), kernel(x, y) @ b[:, None])
    cast = [v.astype(np.float32) for v in (x, y, wide[::3])]
    out = gauss(*cast, backend=backend)
    assert out.dtype == np.float32
    assert_close(out, kernel(x, y) @ wide[::3, None], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_dimension_1_variable_may_be_1d_in_one_call(backend):
    gen = rng(5)
    a, b = gen.uniform(-1, 1, M), gen.uniform(-1, 1, N)
    routine = Genred("Exp(-Square(a - b)) * b", ["a = Vi(1)", "b = Vj(1)"],
                     reduction_op="Sum", axis=1)
    out = routine(a, b, backend=backend)
    assert out.shape == (M, 1)
    assert_close(out[:, 0], (np.exp(-(a[:, None] - b[None, :]) ** 2) * b).sum(1))


@pytest.mark.parametrize("backend", BACKENDS)
def test_index_reductions_of_1d_arrays_keep_their_2d_shape(backend):
    gen = rng(6)
    a, b = gen.random(M), gen.random(N)
    argmin = Genred("Square(a - b)", ["a = Vi(1)", "b = Vj(1)"], reduction_op="ArgMin", axis=1)
    out = argmin(a, b, backend=backend)
    assert out.shape == (M, 1) and out.dtype == np.int64
    np.testing.assert_array_equal(out[:, 0], np.abs(a[:, None] - b[None, :]).argmin(1))
    argkmin = Genred("Square(a - b)", ["a = Vi(1)", "b = Vj(1)"], reduction_op="ArgKMin",
                     axis=1, opt_arg=3)
    np.testing.assert_array_equal(argkmin(a, b, backend=backend),
                                  np.argsort((a[:, None] - b[None, :]) ** 2, axis=1,
                                             kind="stable")[:, :3])


@pytest.mark.parametrize("backend", BACKENDS)
def test_dask_1d_arrays_stay_lazy(gauss, backend):
    x, y, b = inputs(7)
    out = gauss(da.from_array(x, chunks=(8, 3)), da.from_array(y, chunks=(10, 3)),
                da.from_array(b, chunks=10), backend=backend)
    assert isinstance(out, da.Array) and out.shape == (M, 1)
    assert_close(out.compute(scheduler="sync"), kernel(x, y) @ b[:, None])
    mixed = gauss(x, y, da.from_array(b, chunks=7), backend=backend)
    assert isinstance(mixed, da.Array)
    assert_close(mixed.compute(scheduler="sync"), kernel(x, y) @ b[:, None])


def test_a_dask_1d_array_of_unknown_length_is_still_refused(gauss):
    x, y, b = inputs(8)
    lazy = da.from_array(np.concatenate([b, [np.inf]]), chunks=10)
    known = gauss(x, y, lazy[:N], backend="numpy")
    assert_close(known.compute(scheduler="sync"), kernel(x, y) @ b[:, None])
    unknown = lazy[da.isfinite(lazy)]  # N rows, not known before computing
    with pytest.raises(ShapeError, match="compute_chunk_sizes"):
        gauss(x, y, unknown, backend="numpy")


def test_the_call_cache_keeps_1d_and_2d_calls_apart(gauss):
    x, y, b = inputs(9)
    ref = kernel(x, y) @ b[:, None]
    for arg in (b, b[:, None], b, b[:, None].copy()):
        assert_close(gauss(x, y, arg, backend="numpy"), ref)
    short = b[:N - 4]
    assert_close(gauss(x, y[:N - 4], short, backend="numpy"),
                 kernel(x, y[:N - 4]) @ short[:, None])


def test_out_is_the_2d_result(gauss):
    x, y, b = inputs(10)
    out = np.full((M, 1), np.nan)
    assert gauss(x, y, b, backend="numpy", out=out) is out
    assert_close(out, kernel(x, y) @ b[:, None])
    with pytest.raises(ShapeError, match=r"out has shape \(23,\); expected \(23, 1\)"):
        gauss(x, y, b, backend="numpy", out=np.empty(M))


@pytest.mark.parametrize("backend", BACKENDS)
def test_batched_calls_broadcast_a_1d_array_over_the_batch(gauss, backend):
    x, y, b = inputs(11)
    xb = rng(12).random((2, M, 3))
    yb = rng(13).random((2, N, 3))
    shared = gauss(xb, y, b, backend=backend)  # y and b shared by both items
    each = gauss(xb, yb, b, backend=backend)  # b broadcast over the items
    assert shared.shape == each.shape == (2, M, 1)
    for k in range(2):
        assert_close(shared[k], kernel(xb[k], y) @ b[:, None])
        assert_close(each[k], kernel(xb[k], yb[k]) @ b[:, None])


def test_block_sparse_calls_take_1d_arrays(gauss):
    x, y, b = inputs(14)
    ranges_i = np.array([[0, 10], [10, M]], dtype=np.int32)
    ranges_j = np.array([[0, 15], [15, N]], dtype=np.int32)
    keep = np.array([[True, False], [True, True]])
    ranges = from_matrix(ranges_i, ranges_j, keep)
    mask = np.zeros((M, N), dtype=bool)
    mask[:10, :15] = mask[10:, :] = True
    out = gauss(x, y, b, backend="numpy", ranges=ranges)
    assert_close(out, (kernel(x, y) * mask) @ b[:, None])


def test_reduce_takes_1d_arrays():
    x, y, b = inputs(15)
    out = dredux.reduce(*GAUSS, x, y, b, backend="numpy")
    assert_close(out, kernel(x, y) @ b[:, None])


# ---------------------------------------------- the other shape rules unchanged

def test_a_1d_array_for_a_wider_variable_is_still_a_shape_error(gauss):
    x, y, b = inputs(16)
    with pytest.raises(ShapeError) as info:
        gauss(x[:, 0].copy(), y, b, backend="numpy")
    for word in ("argument 0", "'x' = Vi(3)", "(23,)", "(M, 3)", "dimension 1"):
        assert word in str(info.value), f"{word!r} not in: {info.value}"


def test_a_1d_array_of_the_wrong_length_names_both_lengths(gauss):
    x, y, b = inputs(17)
    with pytest.raises(ShapeError, match="Vj arguments must have the same number of rows: "
                       "'y' has 31, 'b' has 5"):
        gauss(x, y, b[:5], backend="numpy")


@pytest.mark.parametrize("b", [np.ones(()), np.ones((1, N)), np.ones((N, 2))])
def test_other_shapes_for_a_vj1_variable_are_still_shape_errors(b):
    # a, a 1-D array for Vi(1), passes: the error is b's
    a = rng(18).random(M)
    routine = Genred("Exp(-Square(a - b))", ["a = Vi(1)", "b = Vj(1)"], axis=1)
    with pytest.raises(ShapeError, match=r"argument 1 \('b' = Vj\(1\)\)"):
        routine(a, b, backend="numpy")


def test_parameters_are_unaffected():
    x, y, b = inputs(19)
    routine = Genred("Exp(-p * SqDist(x, y)) * b", [*GAUSS[1], "p = Pm(1)"],
                     reduction_op="Sum", axis=1)
    assert_close(routine(x, y, b, np.array([0.5]), backend="numpy"),
                 np.exp(-0.5 * ((x[:, None] - y[None]) ** 2).sum(-1)) @ b[:, None])
    # b, 1-D, passes; the parameter's rules are unchanged
    with pytest.raises(ShapeError, match=r"'p' = Pm\(1\)\) has shape \(3,\)"):
        routine(x, y, b, np.ones(3), backend="numpy")
    with pytest.raises(ShapeError, match=r"'p' = Pm\(1\)\) has shape \(1, 1\)"):
        routine(x, y, b, np.ones((1, 1)), backend="numpy")
