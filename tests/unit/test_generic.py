"""generic_sum, generic_logsumexp, generic_argmin and generic_argkmin: the axis and K
read from the output alias, results against NumPy float64 references, and the
errors for bad output aliases and options."""

from __future__ import annotations

import numpy as np
import pytest

import dredux
import dredux.numpy as dnp
from dredux import (
    ArgumentError,
    FormulaError,
    Genred,
    generic_argkmin,
    generic_argmin,
    generic_logsumexp,
    generic_sum,
)
from dredux.limits import MAX_K
from tests.helpers import assert_close, rng

BACKENDS = ["numpy", "cpu"]
M, N = 37, 53


def inputs(seed=0):
    gen = rng(seed)
    return gen.random((M, 3)), gen.random((N, 3)), gen.uniform(0.5, 1.5, (N, 1))


def sqdist(x, y):
    return ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)


def log_sum_exp(f, axis):
    top = f.max(axis=axis, keepdims=True)
    return top + np.log(np.exp(f - top).sum(axis=axis, keepdims=True))


def test_the_names_are_exported_by_dredux_and_dredux_numpy():
    for name in ("generic_sum", "generic_logsumexp", "generic_argmin", "generic_argkmin"):
        # (compared by name: pytest's doctest collection may import dredux.generic twice)
        ours, keops = getattr(dredux, name), getattr(dnp, name)
        assert ours.__module__ == keops.__module__ == "dredux.generic"
        assert ours.__qualname__ == keops.__qualname__ == name
        assert name in dredux.__all__ and name in dnp.__all__


@pytest.mark.parametrize("backend", BACKENDS)
def test_generic_sum_over_j_for_a_vi_output(backend):
    x, y, b = inputs()
    routine = generic_sum("Exp(-SqDist(x, y)) * b", "out = Vi(1)",
                          "x = Vi(3)", "y = Vj(3)", "b = Vj(1)")
    assert isinstance(routine, Genred) and routine.axis == 1
    out = routine(x, y, b, backend=backend)
    assert out.shape == (M, 1) and out.dtype == np.float64
    assert_close(out, np.exp(-sqdist(x, y)) @ b)


@pytest.mark.parametrize("backend", BACKENDS)
def test_generic_sum_over_i_for_a_vj_output_of_a_vector_formula(backend):
    x, y, _ = inputs(1)
    routine = generic_sum("Exp(-SqDist(x, y)) * x", "out = Vj(3)", "x = Vi(3)", "y = Vj(3)")
    assert routine.axis == 0
    out = routine(x, y, backend=backend)
    assert out.shape == (N, 3)
    assert_close(out, np.exp(-sqdist(x, y)).T @ x)


def test_the_output_alias_may_be_unnamed_or_positioned():
    x, y, _ = inputs(2)
    ref = np.exp(-sqdist(x, y)).sum(1, keepdims=True)
    for output in ("Vi(1)", "out = Vi(7, 1)", "out=Vx(1)", "out = Var(0, 1, 0)"):
        routine = generic_sum("Exp(-SqDist(x, y))", output, "x = Vi(3)", "y = Vj(3)")
        assert_close(routine(x, y, backend="numpy"), ref, what=output)


def test_genred_options_are_passed_on():
    x, y, b = inputs(3)
    routine = generic_sum("Exp(-SqDist(x, y)) * b", "out = Vi(1)", "x = Vi(3)",
                          "y = Vj(3)", "b = Vj(1)", dtype="float32", sum_scheme="kahan_scheme")
    assert routine.reduction.sum_scheme == "kahan_scheme"
    with pytest.warns(UserWarning, match="dtype='float32'"):
        routine(x, y, b, backend="numpy")
    cast = [v.astype(np.float32) for v in (x, y, b)]
    out = routine(*cast, backend="numpy")
    assert out.dtype == np.float32
    assert_close(out, np.exp(-sqdist(x, y)) @ b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_generic_logsumexp_of_a_gaussian_mixture(backend):
    x, y, b = inputs(4)
    g = np.array([0.5])
    routine = generic_logsumexp("-(g * SqNorm2(x - y)) + b", "a = Vi(1)",
                                "x = Vi(3)", "y = Vj(3)", "g = Pm(1)", "b = Vj(1)")
    assert routine.axis == 1
    out = routine(x, y, g, np.log(b), backend=backend)
    assert out.shape == (M, 1)
    assert_close(out, log_sum_exp(-0.5 * sqdist(x, y) + np.log(b[:, 0]), axis=1))


@pytest.mark.parametrize("backend", BACKENDS)
def test_generic_logsumexp_over_i_with_weights(backend):
    x, y, _ = inputs(5)
    w = rng(6).uniform(0.5, 1.5, (M, 2))
    routine = generic_logsumexp("-SqDist(x, y)", "a = Vj(2)", "x = Vi(3)", "y = Vj(3)",
                                "w = Vi(2)", formula2="w")
    assert routine.axis == 0
    out = routine(x, y, w, backend=backend)
    assert out.shape == (N, 2)
    assert_close(out, np.log(np.exp(-sqdist(x, y)).T @ w))


@pytest.mark.parametrize("backend", BACKENDS)
def test_generic_argmin_finds_the_nearest_neighbours(backend):
    x, y, _ = inputs(7)
    d = sqdist(x, y)
    over_j = generic_argmin("SqDist(x, y)", "a = Vi(1)", "x = Vi(3)", "y = Vj(3)")
    over_i = generic_argmin("SqDist(x, y)", "a = Vj(1)", "x = Vi(3)", "y = Vj(3)")
    out = over_j(x, y, backend=backend)
    assert out.shape == (M, 1) and out.dtype == np.int64
    np.testing.assert_array_equal(out[:, 0], d.argmin(1))
    np.testing.assert_array_equal(over_i(x, y, backend=backend)[:, 0], d.argmin(0))


@pytest.mark.parametrize("backend", BACKENDS)
def test_generic_argmin_of_a_vector_formula_is_per_component(backend):
    x, y, _ = inputs(8)
    routine = generic_argmin("x - y", "a = Vi(3)", "x = Vi(3)", "y = Vj(3)")
    out = routine(x, y, backend=backend)
    np.testing.assert_array_equal(out, (x[:, None, :] - y[None, :, :]).argmin(1))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("k", [1, 4])
def test_generic_argkmin_takes_k_from_the_output_alias(backend, k):
    x, y, _ = inputs(9)
    d = sqdist(x, y)
    routine = generic_argkmin("SqDist(x, y)", f"a = Vi({k})", "x = Vi(3)", "y = Vj(3)")
    assert routine.opt_arg == k and routine.axis == 1
    out = routine(x, y, backend=backend)
    assert out.shape == (M, k) and out.dtype == np.int64
    np.testing.assert_array_equal(out, np.argsort(d, axis=1, kind="stable")[:, :k])
    over_i = generic_argkmin("SqDist(x, y)", f"a = Vj({k})", "x = Vi(3)", "y = Vj(3)")
    np.testing.assert_array_equal(over_i(x, y, backend=backend),
                                  np.argsort(d, axis=0, kind="stable")[:k].T)


def test_generic_argkmin_accepts_an_opt_arg_equal_to_k():
    routine = generic_argkmin("SqDist(x, y)", "a = Vi(3)", "x = Vi(3)", "y = Vj(3)",
                              opt_arg=3)
    assert routine.opt_arg == 3


# ---------------------------------------------------------------------- errors

def raises(error, words, call):
    with pytest.raises(error) as info:
        call()
    for word in words:
        assert word in str(info.value), f"{word!r} not in: {info.value}"
    return info.value


XY = ("x = Vi(3)", "y = Vj(3)")


@pytest.mark.parametrize("output, words", [
    ("out = Vi(1", ["generic_sum", "output alias", "'out = Vi(1'"]),
    ("out = Vz(1)", ["generic_sum", "output alias", "Vz"]),
    ("out = Vi(0)", ["output alias", "dimension must be >= 1"]),
    ("out = Vi(a)", ["output alias"]),
    ("out", ["output alias"]),
    ("", ["output alias"]),
])
def test_a_malformed_output_alias_is_a_formula_error_naming_it(output, words):
    raises(FormulaError, words, lambda: generic_sum("SqDist(x, y)", output, *XY))


@pytest.mark.parametrize("output", ["out = Pm(1)", "out = Var(0, 1, 2)"])
def test_a_parameter_output_is_a_formula_error(output):
    error = raises(FormulaError, [repr(output), "parameter (Pm)", "Vi(1)", "Vj(1)"],
                   lambda: generic_sum("SqDist(x, y)", output, *XY))
    assert error.text == output


@pytest.mark.parametrize("output", [None, 1, ["out = Vi(1)"]])
def test_an_output_alias_that_is_not_a_string_is_a_formula_error(output):
    raises(FormulaError, ["output alias must be a string", "out = Vi(1)"],
           lambda: generic_argmin("SqDist(x, y)", output, *XY))


@pytest.mark.parametrize("function, formula, output, expected", [
    (generic_sum, "SqDist(x, y)", "out = Vi(3)", "1"),
    (generic_sum, "x - y", "out = Vj(1)", "3"),
    (generic_argmin, "x - y", "out = Vi(1)", "3"),
    (generic_argmin, "SqDist(x, y)", "out = Vi(2)", "1"),
    (generic_logsumexp, "-SqDist(x, y)", "out = Vi(2)", "1"),
])
def test_an_output_dimension_that_differs_from_the_result_is_a_formula_error(
        function, formula, output, expected):
    word = output.split("=")[1].strip()[:2]
    raises(FormulaError, [function.__name__, repr(output), f"out = {word}({expected})"],
           lambda: function(formula, output, *XY))


def test_generic_logsumexp_needs_a_scalar_formula():
    raises(FormulaError, ["scalar formula"],
           lambda: generic_logsumexp("x - y", "out = Vi(3)", *XY))


def test_argkmin_k_beyond_the_limit_names_the_output_alias():
    output = f"a = Vi({MAX_K + 1})"
    raises(FormulaError, ["generic_argkmin", repr(output), f"limit of {MAX_K}"],
           lambda: generic_argkmin("SqDist(x, y)", output, *XY))


def test_argkmin_opt_arg_other_than_k_is_an_argument_error():
    raises(ArgumentError, ["opt_arg=5", "K = 3"],
           lambda: generic_argkmin("SqDist(x, y)", "a = Vi(3)", *XY, opt_arg=5))


@pytest.mark.parametrize("options, words", [
    ({"axis": 0}, ["axis=", "output alias sets the axis"]),
    ({"reduction_op": "Max"}, ["reduction_op=", "Genred"]),
    ({"backend": "cpu"}, ["backend", "option of the call"]),
    ({"nonsense": 1}, ["unexpected keyword", "nonsense", "dtype_acc"]),
])
def test_options_the_function_does_not_take_are_argument_errors(options, words):
    raises(ArgumentError, words, lambda: generic_sum("SqDist(x, y)", "out = Vi(1)", *XY,
                                                     **options))


def test_aliases_given_as_one_list_are_an_argument_error():
    raises(ArgumentError, ["argument 2", "separate strings", "*aliases"],
           lambda: generic_sum("SqDist(x, y)", "out = Vi(1)", list(XY)))


def test_formula_errors_are_genred_s():
    raises(FormulaError, ["z"], lambda: generic_sum("SqDist(x, z)", "out = Vi(1)", *XY))
