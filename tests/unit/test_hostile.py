"""Hostile and careless formulas: a result or a dredux error, never a crash.

Every number that reaches generated code is range-checked, every size that
could exhaust memory is limited before anything is allocated, long formulas
do not hit Python's recursion limit, and bad argument types get typed errors
that name the argument. References are NumPy in float64.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from dredux import FormulaError, Genred, limits, reduce
from dredux.errors import DreduxError

X = ["x = Vi(1)"]
BIG = 2**64 + 3


@pytest.mark.parametrize("formula, aliases, literal", [
    (f"Pow(x, {BIG})", X, str(BIG)),
    (f"x**{BIG}", X, str(BIG)),
    (f"x**-{BIG}", X, f"-{BIG}"),
    (f"ClampInt(x, {2**64 + 1}, {2**64 + 2})", X, str(2**64 + 1)),
    (f"Pow(x, {limits.MAX_POW + 1})", X, str(limits.MAX_POW + 1)),
    ("Round(x, 400)", X, "400"),
    ("x * " + "9" * 400, X, "9" * 20),
    ("IntCst(" + "9" * 400 + ")", [], "9" * 20),
    ("IntInv(" + "9" * 400 + ")", [], "9" * 20),
    ("x", ["x = Vi(1000000000000, 3)"], "1000000000000"),
    ("Var(1000000000000, 3, 0)", [], "1000000000000"),
    ("x", ["x = Vi(10000000, 3)"], "10000000"),
    ("x", [f"x = Vi({limits.MAX_DIM + 1})"], str(limits.MAX_DIM + 1)),
    ("Exp(Zero(1000000000000))", [], "1000000000000"),
    ("ElemT(x, 1000000000000, 0)", X, "1000000000000"),
    ("SumT(x, 1000000000000)", X, "1000000000000"),
    ("OneHot(x, 1000000000000)", X, "1000000000000"),
    ("TensorProd(x, y)", ["x = Vi(300)", "y = Vj(300)"], "90000"),
    ("TensorDot(x, y, [1000000000000], [2], [], [])", ["x = Vi(2)", "y = Vj(2)"],
     "1000000000000"),
])
def test_numbers_past_the_limits_are_refused_with_the_literal(formula, aliases, literal):
    with pytest.raises(FormulaError) as info:
        Genred(formula, aliases, axis=1)
    message = str(info.value)
    assert literal in message and len(message) < 2000, message
    assert "limit" in message or "larger than any float" in message, message


def test_numbers_within_the_limits_compute_what_numpy_computes():
    """Big integers render exactly as NumPy rounds them; Pow's parity survives."""
    x = np.array([[-1.0], [-0.5], [1.0], [1.5]])
    p = limits.MAX_POW - 1  # odd
    out = Genred(f"Pow(x, {p})", X, axis=1)(x, backend="numpy")
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(out, x ** p)
    c = 2**53 - 1
    out = Genred(f"x * {c} + ClampInt(x, -{c}, {c})", X, axis=1)(x, backend="numpy")
    np.testing.assert_array_equal(out, x * float(c) + x)


@pytest.mark.parametrize("first", ["0", "0.0", "-0"])
def test_negative_zero_keeps_its_sign(first):
    """-0.0 is its own constant, even after a formula with 0 (equal as numbers)."""
    x = np.array([[-0.5], [2.0]])
    np.testing.assert_array_equal(Genred(f"Atan2({first}, x)", X, axis=1)(x, backend="numpy"),
                                  np.arctan2(0.0, x))
    out = Genred("Atan2(-0.0, x)", X, axis=1)(x, backend="numpy")
    np.testing.assert_array_equal(out, np.arctan2(-0.0, x))  # -pi for x < 0


def test_argument_positions_and_aliases_are_limited_before_allocating():
    many = ", ".join(f"Var({k}, 1, 0)" for k in (0, limits.MAX_ARGS - 1))
    with pytest.raises(FormulaError) as info:
        Genred(f"Concat({many})", [], axis=1)
    assert len(str(info.value)) < 2000 and "in all" in str(info.value)
    with pytest.raises(FormulaError, match="limit"):
        Genred("x", [f"x = Vi({limits.MAX_ARGS}, 3)"], axis=1)
    with pytest.raises(FormulaError, match="characters, more than the limit"):
        Genred("x" + " + x" * limits.MAX_FORMULA_CHARS, X, axis=1)


@pytest.mark.parametrize("formula, reference", [
    (" + ".join(["x"] * 600), lambda x: 600 * x),
    ("-" * 600 + "x", lambda x: x),
    ("-" * 601 + "x", lambda x: -x),
    (" * ".join(f"Exp(x * {k})" for k in range(300)), lambda x: np.exp(x * 44850)),
    (" - ".join(["x"] * 300) + " < " + " + ".join(["x"] * 300),
     lambda x: (-298 * x < 300 * x).astype(np.float64)),
])
def test_long_formulas_parse_compute_and_pickle(formula, reference):
    """Long operator chains are built without deep recursion, and the routine's
    programs pickle (they travel to Dask workers) whatever their depth."""
    x = np.array([[0.0025], [-0.005]])
    g = Genred(formula, X, axis=1)
    program = pickle.loads(pickle.dumps(g.program("float64")))
    assert program == g.program("float64") and program.key == g.program("float64").key
    np.testing.assert_allclose(g(x, backend="numpy"), reference(x), rtol=1e-9)


def test_chains_too_deep_for_the_parser_are_refused():
    with pytest.raises(FormulaError, match="nests too deeply"):
        Genred("+".join(["x"] * 20_000), X, axis=1)


def test_too_many_operations_are_refused():
    groups = ("(" + "+".join(f"x*{k}" for k in range(j, j + 100)) + ")"
              for j in range(2, limits.MAX_NODES // 2, 100))
    terms = "+".join(groups)
    with pytest.raises(FormulaError,
                       match=r"operations \(after differentiation\), more than the limit"):
        Genred(terms, X, axis=1)


@pytest.mark.parametrize("aliases", [None, "x = Vi(3)", 3, {"x": "Vi(3)"}, [b"x = Vi(3)"]])
def test_bad_alias_arguments_get_typed_errors(aliases):
    with pytest.raises(FormulaError, match="aliases must be a list|alias number 0"):
        Genred("x", aliases, axis=1)
    with pytest.raises(FormulaError, match="aliases must be a list|alias number 0"):
        reduce("x", aliases, np.ones((2, 3)))


def test_bad_formula_arguments_get_typed_errors():
    for formula in (None, 3, ["x"], b"x"):
        with pytest.raises(FormulaError, match="formula must be a string"):
            Genred(formula, X, axis=1)
        with pytest.raises(FormulaError, match="formula must be a string"):
            reduce(formula, X, np.ones((2, 1)))


def test_every_error_above_is_a_dredux_error():
    assert issubclass(FormulaError, DreduxError) and issubclass(FormulaError, ValueError)


@pytest.mark.parametrize("k", [limits.MAX_K + 1, 2**31, 2**64 + 3])
def test_k_past_the_limit_is_refused(k):
    with pytest.raises(FormulaError, match=f"K = {k} is more than the limit of"):
        Genred("SqDist(x, y)", ["x = Vi(1)", "y = Vj(1)"], reduction_op="ArgKMin",
               axis=1, opt_arg=k)


def test_formulas_too_wide_for_one_pair_are_refused():
    """A thousand 65,536-wide terms would hold 0.5 GB per pair in the NumPy backend."""
    terms = " + ".join(f"Sum(SumT(x, 65536) * {k})" for k in range(1, 300))
    with pytest.raises(FormulaError, match="components in all .*more than the limit"):
        Genred(terms, X, axis=1)
    x = np.array([[0.5], [2.0]])
    few = " + ".join(f"Sum(SumT(x, 65536) * {k})" for k in range(1, 4))
    np.testing.assert_allclose(Genred(few, X, axis=1)(x, backend="numpy"), 6 * 65536 * x)


@pytest.mark.parametrize("option", ["use_double_acc", "use_fast_math"])
def test_on_off_options_take_booleans_only(option):
    """They went through bool(): 'no', 'False' or [True] switched the option on
    silently. Booleans (NumPy's too), 0, 1 and None (off) are still taken."""
    for value in ("no", "False", 2, 0.5, [True]):
        with pytest.raises(FormulaError) as err:
            Genred("x", X, reduction_op="Sum", axis=1, **{option: value})
        for word in (option, repr(value), "True or False"):
            assert word in str(err.value), str(err.value)
    x = np.arange(3.0).reshape(3, 1)
    for value in (True, False, np.True_, 1, 0, None):
        routine = Genred("x", X, reduction_op="Sum", axis=1, **{option: value})
        assert getattr(routine, option) is bool(value)
        np.testing.assert_allclose(routine(x, backend="numpy"), x)
