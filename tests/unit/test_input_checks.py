"""Inputs that a sweep of hostile calls found reaching NumPy, Dask or Python
with a raw exception, or a message that misnames the value; and LogSumExp over
+inf. Each gets a dredux error naming the value and what was expected, or the
right result."""

from __future__ import annotations

import dask
import numpy as np
import pytest

from dredux import Genred, LazyTensor
from dredux.cluster import cluster_centroids, cluster_ranges
from dredux.errors import ConfigError, DtypeError, FormulaError, ShapeError

GAUSS = Genred("Exp(-SqDist(x, y)) * b", ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)"], axis=1)


def gauss_args(m=300, n=200):
    gen = np.random.default_rng(0)
    return gen.random((m, 3)), gen.random((n, 3)), gen.random((n, 1))


def reference(x, y, b):
    return (np.exp(-((x[:, None] - y[None]) ** 2).sum(-1)) @ b)


def test_num_workers_zero_means_one_thread_per_core():
    x, y, b = gauss_args()
    # several tasks, so that the call goes through Dask's threaded scheduler
    with dask.config.set({"num_workers": 0, "dredux.block-size": [64, 64]}):
        out = GAUSS(x, y, b, backend="numpy")
    np.testing.assert_allclose(out, reference(x, y, b), rtol=1e-12)


@pytest.mark.parametrize("key", ["task-seconds", "max-tasks-per-worker", "split-every"])
def test_an_integer_setting_beyond_the_float_range_is_a_config_error(key):
    x, y, b = gauss_args(20, 20)
    with dask.config.set({f"dredux.{key}": 10 ** 400}):
        with pytest.raises(ConfigError, match=f"dredux.{key}"):
            GAUSS(x, y, b, backend="numpy")


@pytest.mark.parametrize("dtype", [("f8", -1), ("f8", 10 ** 20), "int32", "complex64",
                                   np.dtype([("a", "f8")]), "bool"])
@pytest.mark.parametrize("name", ["dtype", "cuda_type"])
def test_genred_takes_float_dtypes_only(dtype, name):
    with pytest.raises(DtypeError, match=f"{name}=.*expected 'float16', 'float32' or"):
        Genred("x", ["x = Vi(1)"], axis=1, **{name: dtype})


def test_a_cache_dir_with_a_nul_character_is_a_config_error():
    x, y, b = gauss_args(5, 5)
    with dask.config.set({"dredux.cache-dir": "/tmp/a\0b"}):
        with pytest.raises(ConfigError, match="dredux.cache-dir.*NUL"):
            Genred("x * 3.25", ["x = Vi(1)"], axis=1)(np.ones((2, 1)), backend="cpu")


@pytest.mark.parametrize("call", [lambda lab: cluster_ranges(lab),
                                  lambda lab: cluster_centroids(np.ones((2, 1)), lab)])
def test_labels_far_beyond_the_points_are_refused_before_allocating(call):
    with pytest.raises(ShapeError, match="10000000000000.*clusters for 2 points"):
        call(np.array([0, 10 ** 13]))
    # sparse but sane labels still work: empty clusters in between
    assert np.array_equal(cluster_ranges(np.array([0, 3, 3])), [[0, 1], [1, 1], [1, 1], [1, 3]])


def test_a_ranges_index_beyond_int64_is_shown_as_given():
    big = np.array([[0, 2 ** 64 - 1]], np.uint64)
    ok = np.array([[0, 2]], np.int64)
    with pytest.raises(ShapeError, match=str(2 ** 64 - 1)):
        GAUSS(*gauss_args(2, 2), backend="numpy",
              ranges=(big, np.array([1]), ok, ok, np.array([1]), ok))


def test_lazytensor_solve_checks_the_dimension_of_k_against_b():
    gen = np.random.default_rng(1)
    x = gen.random((8, 2))
    xi, xj = LazyTensor(x[:, None, :]), LazyTensor(x[None, :, :])
    with pytest.raises(ShapeError, match="K has dimension 2 but b has 1 columns"):
        (xi - xj).solve(gen.random((8, 1)), alpha=0.1)
    # a scalar kernel solves any number of columns (against numpy.linalg)
    b = gen.random((8, 3))
    a = (-((xi - xj) ** 2).sum()).exp().solve(b, alpha=0.1, eps=1e-12)
    k = np.exp(-((x[:, None] - x[None]) ** 2).sum(-1))
    np.testing.assert_allclose(a, np.linalg.solve(k + 0.1 * np.eye(8), b), rtol=1e-6)


def test_a_bad_backend_setting_names_the_setting():
    with dask.config.set({"dredux.backend": "cuda"}):
        with pytest.raises(ConfigError, match="dredux.backend is 'cuda'.*DREDUX_BACKEND"):
            GAUSS(*gauss_args(3, 3))


@pytest.mark.parametrize("formula, aliases, words", [
    ("IntInv(0) * x", ["x = Vi(1)"], "division by zero"),
    ("BSpline(s, x, -1)", ["x = Vi(1)", "s = Vj(4)"], "order >= 0"),
    ("Zero(0) + x", ["x = Vi(1)"], "dim >= 1"),
])
def test_an_invalid_argument_is_not_called_a_dimension_mismatch(formula, aliases, words):
    with pytest.raises(FormulaError, match=words) as info:
        Genred(formula, aliases, axis=1)
    assert "dimension mismatch" not in str(info.value)
    assert "aliases" not in str(info.value)


def test_weighted_sqdist_lists_each_allowed_dimension_once():
    with pytest.raises(FormulaError, match=r"needs s of dimension 1 for f of dimension 1, "
                                           r"got 3"):
        Genred("WeightedSqDist(y, s, s)", ["y = Vj(3)", "s = Vj(1)"], axis=1)


def test_complex_operands_are_counted_in_complex_components():
    a = LazyTensor(np.ones((6, 1, 2)) + 0j)
    b = LazyTensor(np.ones((1, 5, 3)) + 0j)
    with pytest.raises(ShapeError, match="2 and 3 complex components"):
        a * b


@pytest.mark.parametrize("call, words", [
    (lambda d, w: d.grad(LazyTensor(np.ones((6, 1, 1))), w), "gradin"),
    (lambda d, w: d.sumsoftmaxweight(w, axis=1), "weight"),
])
def test_an_array_given_for_a_lazytensor_argument_is_named(call, words):
    d = LazyTensor(np.ones((6, 1, 1))) - LazyTensor(np.ones((1, 5, 1)))
    with pytest.raises(ShapeError, match=words):
        call(d, np.ones((6, 1)))


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_logsumexp_over_plus_infinity_is_plus_infinity(backend):
    # log sum_j e^(y_j) with a +inf term is +inf (NaN before: e^(inf - inf));
    # -inf terms drop out, NaN stays NaN, with and without weights
    lse = Genred("y", ["x = Vi(1)", "y = Vj(1)"], reduction_op="LogSumExp", axis=1)
    x = np.ones((3, 1))
    for y, want in [([np.inf, 0.0], np.inf), ([0.0, np.inf, np.inf], np.inf),
                    ([-np.inf, 1.0, 2.0], np.log(np.e + np.e ** 2)), ([np.nan, np.inf], np.nan),
                    ([-np.inf, -np.inf], -np.inf)]:
        got = lse(x, np.array(y)[:, None], backend=backend)
        np.testing.assert_allclose(got, np.full((3, 1), want), rtol=1e-15)
    weighted = Genred("y", ["x = Vi(1)", "y = Vj(1)", "w = Vj(1)"], axis=1,
                      reduction_op="LogSumExp", formula2="w")
    got = weighted(x, np.array([[np.inf], [0.0]]), np.array([[2.0], [3.0]]), backend=backend)
    np.testing.assert_array_equal(got, np.full((3, 1), np.inf))
    # tiles of many columns: +inf in one tile, finite values in the others
    y = np.random.default_rng(2).random((5000, 1))
    y[3777] = np.inf
    assert np.all(lse(x, y, backend=backend) == np.inf)
