"""Bad input gets a FormulaError / ShapeError / DtypeError that shows what and where.

Formula errors show the formula with a caret line under the offending token
(the column is checked) and say what was expected; argument errors name the
argument, what it got and what was expected.
"""

from __future__ import annotations

import numpy as np
import pytest

from dredux import Genred
from dredux.errors import DtypeError, FormulaError, ShapeError
from dredux.parse import parse_aliases, parse_formula
from tests.helpers import assert_caret_under, caret_span, rng

ALIASES = ["x = Vi(3)", "y = Vj(3)", "z = Vj(2)", "p = Pm(1)"]


def formula_error(formula: str, aliases=ALIASES) -> FormulaError:
    names, signature = parse_aliases(aliases)
    with pytest.raises(FormulaError) as info:
        parse_formula(formula, names, signature)
    return info.value


def alias_error(aliases) -> FormulaError:
    with pytest.raises(FormulaError) as info:
        parse_aliases(aliases)
    return info.value


def test_formula_error_is_a_value_error():
    assert issubclass(FormulaError, ValueError)
    with pytest.raises(ValueError):
        Genred("Exq(x)", ["x = Vi(3)"])


# (formula, offending token, its occurrence, words the message must contain)
FORMULA_CASES = [
    # unknown function, with a suggestion
    ("Exp(x) + Exq(y)", "Exq", 0, ["unknown function 'Exq'", "Exp"]),
    ("SqDst(x, y)", "SqDst", 0, ["unknown function 'SqDst'", "SqDist"]),
    # wrong arity
    ("x * Exp(x, y)", "Exp(x, y)", 0, ["Exp takes 1 argument, got 2", "Usage"]),
    ("Exp()", "Exp()", 0, ["Exp takes 1 argument, got 0"]),
    ("SqDist(x) + x", "SqDist(x)", 0, ["SqDist takes 2 arguments, got 1"]),
    ("Round(x)", "Round(x)", 0, ["Round takes 2 arguments, got 1", "Round(f, decimals)"]),
    ("Grad(x)", "Grad(x)", 0, ["Grad takes 2 or 3 arguments, got 1", "Grad(F, v, e)"]),
    # dimension mismatch: names the subexpression and both dims
    ("Exp(x) + (x + z)", "x + z", 0, ["'x + z'", "3", "2", "dimension"]),
    ("SqDist(x, z) * p", "SqDist(x, z)", 0, ["'SqDist(x, z)'", "3 and 2"]),
    ("Exp(x | z)", "x | z", 0, ["'x | z'", "3 and 2"]),
    ("Log(y) + MatVecMult(x, z)", "MatVecMult(x, z)", 0,
     ["'MatVecMult(x, z)'", "dimension 3", "dimension 2"]),
    ("Elem(x, 3)", "Elem(x, 3)", 0, ["index 3", "dimension 3", "expected 0 <= index < 3"]),
    ("Grad(Exp(x), x, z)", "Grad(Exp(x), x, z)", 0, ["dimension of F (3)", "dimension 2"]),
    ("IfElse(x, z, p)", "IfElse(x, z, p)", 0, ["3 and 2"]),
    # unknown variable
    ("Exp(w) + x", "w", 0, ["unknown variable 'w'", "Declared variables: p, x, y, z",
                            "w = Vi("]),
    ("x + xx", "xx", 0, ["unknown variable 'xx'", "Did you mean 'x'"]),
    ("Exp * x", "Exp", 0, ["unknown variable 'Exp'", "is an operation"]),
    # nothing that is not whitelisted
    ("x.shape", "x.shape", 0, ["attribute lookups are not allowed"]),
    ("Exp(x).real + 1", "Exp(x).real", 0, ["attribute"]),
    ("x[0] + y", "x[0]", 0, ["subscript"]),
    ("(lambda: x)", "lambda: x", 0, ["lambda"]),
    ("x + 'abc'", "'abc'", 0, ["str", "not allowed", "numbers"]),
    ("x * b'1'", "b'1'", 0, ["bytes", "not allowed"]),
    ("__import__('os')", "__import__", 0, ["unknown function '__import__'"]),
    ("__import__('os').system('true')", "__import__('os').system", 0,
     ["not an operation name"]),
    ("x + __builtins__", "__builtins__", 0, ["unknown variable '__builtins__'"]),
    ("x if p else y", "x if p else y", 0, ["conditional"]),
    ("[x, y]", "[x, y]", 0, ["lists are not allowed"]),
    ("x and y", "x and y", 0, ["and/or"]),
    ("~x", "~x", 0, ["unary"]),
    ("True * x", "True", 0, ["bool"]),
    ("x @ y", "x @ y", 0, ["'@'", "Allowed operators"]),
    ("x % y", "x % y", 0, ["'%'", "Mod(f, n, d)"]),
    ("x // y", "x // y", 0, ["'//'"]),
    ("x < y < p", "x < y < p", 0, ["chained comparison"]),
    ("Sum(x, axis=1)", "1", 0, ["keyword"]),
    ("(x for x in y)", "(x for x in y)", 0, ["comprehension"]),
    ("f'{x}'", "f'{x}'", 0, ["f-string"]),
    # exponents and integer parameters
    ("x ** 1.5", "1.5", 0, ["exponent '1.5' is not an integer", "Powf"]),
    ("x ** y", "y", 0, ["exponent 'y' is not an integer"]),
    ("Round(x, 1.5)", "1.5", 0, ["integer", "'1.5'"]),
    ("Pow(x, y)", "y", 0, ["integer", "'y'"]),
    ("ElemT(p, 3, x)", "x", 0, ["integer"]),
    ("TensorDot(x, y, 3, [3], [0], [0])", "3", 0, ["list of integers"]),
    # autodiff forms
    ("Grad(Exp(x), 2 * x, x)", "2 * x", 0, ["variable", "'2 * x'"]),
    ("Grad(Exp(-p * x), p)", "Grad(Exp(-p * x), p)", 0, ["gradient input"]),
    ("Laplacian(x, x)", "Laplacian(x, x)", 0, ["scalar F", "dimension 3"]),
    ("Diff(Exp(x), x, z)", "Diff(Exp(x), x, z)", 0, ["dimension of v (3)", "dimension 2"]),
    # inline variables
    ("x + Var(0, 2, 0)", "Var(0, 2, 0)", 0, ["position 0", "'x' = Vi(3)"]),
    ("x + Var(5, 3, 4)", "Var(5, 3, 4)", 0, ["category must be 0 (Vi), 1 (Vj) or 2 (Pm)"]),
    ("x + Var(5, 3)", "Var(5, 3)", 0, ["3 arguments"]),
    ("x + Vi(7, 0)", "Vi(7, 0)", 0, ["dimension must be >= 1"]),
    # syntax errors point at the position Python reports
    ("Exp(x))", ")", 1, ["syntax error", "unmatched ')'"]),
]


@pytest.mark.parametrize("formula, token, occurrence, words", FORMULA_CASES,
                         ids=[c[0] for c in FORMULA_CASES])
def test_formula_errors(formula, token, occurrence, words):
    err = formula_error(formula)
    message = str(err)
    assert token in message
    for word in words:
        assert word in message, f"{word!r} not in:\n{message}"
    assert_caret_under(message, formula, token, occurrence)
    if token != ")":
        col, width = caret_span(message, formula)
        assert formula[col:col + width] == token, message


def test_caret_width_covers_the_token():
    err = formula_error("Exp(x) + Exq(y)")
    assert caret_span(str(err), "Exp(x) + Exq(y)") == (9, 3)
    assert (err.start, err.end) == (9, 12)


def test_caret_columns_count_characters_not_bytes():
    aliases = ["é = Vi(3)", "y = Vj(3)"]
    formula = "Exp(é) + Exq(y)"
    err = formula_error(formula, aliases)
    assert_caret_under(str(err), formula, "Exq")


def test_caret_on_the_right_line_of_a_multiline_formula():
    formula = "(Exp(x)\n + Exq(y))"
    message = str(formula_error(formula))
    lines = message.splitlines()
    k = next(k for k, line in enumerate(lines) if line.strip() == "+ Exq(y))")
    assert lines[k + 1].index("^") == lines[k].index("Exq")


def test_formula_that_is_not_a_string():
    with pytest.raises(FormulaError, match="must be a string, got int"):
        Genred(3, ["x = Vi(3)"])
    with pytest.raises(FormulaError, match="empty"):
        Genred("  ", ["x = Vi(3)"])


def test_nothing_is_evaluated(tmp_path):
    """A malicious formula is rejected before anything runs."""
    marker = tmp_path / "ran"
    for formula in (f"__import__('os').system('touch {marker}')",
                    f"open('{marker}', 'w')", f"exec(\"open('{marker}', 'w')\")"):
        with pytest.raises(FormulaError):
            Genred(formula, ["x = Vi(3)"])
    assert not marker.exists()


# ---------------------------------------------------------------------------
# aliases
# ---------------------------------------------------------------------------

ALIAS_CASES = [
    # duplicate alias
    (["x = Vi(3)", "x = Vj(3)"], "x = Vj(3)", "x", ["duplicate alias 'x'"]),
    (["x = Vi(0, 3)", "y = Vj(0, 3)"], "y = Vj(0, 3)", "y = Vj(0, 3)",
     ["position 0", "already used by 'x'"]),
    # bad alias syntax
    (["x == Vi(3)"], "x == Vi(3)", "x == Vi(3)", ["bad alias", "x = Vi(3)"]),
    (["x = Foo(3)"], "x = Foo(3)", "Foo(3)", ["bad alias", "Vi(...)"]),
    (["x = Vi(a)"], "x = Vi(a)", "a", ["integer"]),
    (["x = Vi(2.5)"], "x = Vi(2.5)", "2.5", ["integer", "'2.5'"]),
    (["x = Vi(1, 2, 3)"], "x = Vi(1, 2, 3)", "Vi(1, 2, 3)", ["1 or 2", "Vi(pos, dim)"]),
    (["x = Var(0, 3)"], "x = Var(0, 3)", "Var(0, 3)", ["3 arguments", "Var(0, 3, 0)"]),
    (["x = Var(0, 3, 7)"], "x = Var(0, 3, 7)", "Var(0, 3, 7)", ["category"]),
    (["x = Vi(0)"], "x = Vi(0)", "Vi(0)", ["dimension must be >= 1, got 0"]),
    (["x = Vi(-1, 3)"], "x = Vi(-1, 3)", "Vi(-1, 3)", ["position must be >= 0, got -1"]),
    (["x, y = Vi(3)"], "x, y = Vi(3)", "x, y = Vi(3)", ["bad alias", "name = Vi(dim)"]),
    (["x.a = Vi(3)"], "x.a = Vi(3)", "x.a = Vi(3)", ["bad alias"]),
    (["Exp = Vi(3)"], "Exp = Vi(3)", "Exp", ["'Exp' is the name of an operation"]),
    (["x = Vi(3, dim=2)"], "x = Vi(3, dim=2)", "Vi(3, dim=2)", ["keyword"]),
    (["x = Vi(3"], "x = Vi(3", "(", ["syntax error"]),
]


@pytest.mark.parametrize("aliases, shown, token, words", ALIAS_CASES,
                         ids=[str(c[0]) for c in ALIAS_CASES])
def test_alias_errors(aliases, shown, token, words):
    message = str(alias_error(aliases))
    for word in words:
        assert word in message, f"{word!r} not in:\n{message}"
    assert_caret_under(message, shown, token)


def test_aliases_given_as_one_string():
    message = str(alias_error("x = Vi(3)"))
    assert "list of strings" in message and "['x = Vi(3)']" in message


def test_alias_that_is_not_a_string():
    assert "alias number 1" in str(alias_error(["x = Vi(3)", 3]))


def test_gap_in_positions():
    with pytest.raises(FormulaError, match="position 1 is not declared") as info:
        Genred("x + y", ["x = Vi(0, 3)", "y = Vj(2, 3)"])
    assert "no gap" in str(info.value)


def test_reduction_errors():
    with pytest.raises(FormulaError, match="(?s)unknown reduction_op 'Summ'.*Did you mean 'Sum'"):
        Genred("x", ["x = Vi(3)"], reduction_op="Summ")
    with pytest.raises(FormulaError, match="opt_arg = K"):
        Genred("x", ["x = Vi(3)"], reduction_op="KMin")
    with pytest.raises(FormulaError, match="needs the weights as formula2"):
        Genred("Sum(x)", ["x = Vi(3)"], reduction_op="SumSoftMaxWeight")
    with pytest.raises(FormulaError, match="scalar formula, got one of dimension 3"):
        Genred("x", ["x = Vi(3)"], reduction_op="LogSumExp")
    with pytest.raises(FormulaError, match="takes a single formula"):
        Genred("x", ["x = Vi(3)"], reduction_op="Max", formula2="x")
    with pytest.raises(FormulaError, match="axis must be 0"):
        Genred("x", ["x = Vi(3)"], axis=2)


# ---------------------------------------------------------------------------
# Genred arguments
# ---------------------------------------------------------------------------

G_ALIASES = ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "p = Pm(2)"]


@pytest.fixture(scope="module")
def routine():
    return Genred("Exp(-SqDist(x, y)) * b * p", G_ALIASES, axis=1)


@pytest.fixture
def good():
    gen = rng(0)
    return [gen.random((4, 3)), gen.random((5, 3)), gen.random((5, 1)), gen.random(2)]


def replace(args, index, value):
    args = list(args)
    args[index] = value
    return args


ARG_CASES = [
    # (which argument, new value, error, words in the message)
    (3, "drop", ShapeError, ["takes 4 arguments, got 3", "'x' = Vi(3)", "'p' = Pm(2)"]),
    (0, np.ones((4, 2)), ShapeError, ["argument 0", "'x'", "(4, 2)", "(M, 3)"]),
    (0, np.ones(4), ShapeError, ["'x'", "(4,)", "(M, 3)"]),
    (2, np.ones((6, 1)), ShapeError, ["Vj", "same number of rows", "'y' has 5", "'b' has 6"]),
    # a 1-D b stands for Vj(1) (as in KeOps), but its length must still match
    (2, np.ones(6), ShapeError, ["Vj", "same number of rows", "'y' has 5", "'b' has 6"]),
    (3, np.ones((1, 2)), ShapeError, ["'p'", "(1, 2)", "1-D", "(2,)", "ravel"]),
    (3, np.ones(3), ShapeError, ["'p'", "(3,)", "(2,)"]),
    (1, np.ones((5, 3), dtype=np.float32), DtypeError,
     ["same dtype", "'x' is float64", "'y' is float32"]),
    (2, np.ones((5, 1), dtype=np.int64), DtypeError, ["'b'", "int64", "float32", "astype"]),
    (0, np.ones((4, 3), dtype=np.complex128), DtypeError, ["'x'", "complex128"]),
]


@pytest.mark.parametrize("index, value, error, words", ARG_CASES)
def test_argument_errors(routine, good, index, value, error, words):
    args = good[:index] if isinstance(value, str) else replace(good, index, value)
    with pytest.raises(error) as info:
        routine(*args, backend="numpy")
    for word in words:
        assert word in str(info.value), f"{word!r} not in: {info.value}"


def test_batch_axes_that_do_not_broadcast(routine, good):
    args = replace(replace(good, 0, np.ones((2, 4, 3))), 1, np.ones((3, 5, 3)))
    with pytest.raises(ShapeError) as info:
        routine(*args, backend="numpy")
    for word in ("'x'", "(2, 4, 3)", "'y'", "(3, 5, 3)", "batch axes do not broadcast"):
        assert word in str(info.value), f"{word!r} not in: {info.value}"


def test_rows_checked_within_i_variables():
    gen = rng(1)
    routine = Genred("x + y + z", ["x = Vi(3)", "y = Vj(3)", "z = Vi(3)"], axis=1)
    with pytest.raises(ShapeError, match="Vi arguments must have the same number of rows: "
                       "'x' has 4, 'z' has 5"):
        routine(gen.random((4, 3)), gen.random((5, 3)), gen.random((5, 3)), backend="numpy")


def test_shape_and_dtype_errors_are_value_and_type_errors():
    assert issubclass(ShapeError, ValueError)
    assert issubclass(DtypeError, TypeError)


def test_reduction_names_suggested_whatever_their_case():
    for given, meant in (("SUM", "Sum"), ("argmin", "ArgMin"), ("logsumexp", "LogSumExp"),
                         ("kmin_argkmin", "KMin_ArgKMin")):
        with pytest.raises(FormulaError, match=f"Did you mean '{meant}'"):
            Genred("x", ["x = Vi(1)"], reduction_op=given, axis=1)


def test_non_array_arguments_are_described_as_given():
    routine = Genred("x * p", ["x = Vi(1)", "p = Pm(1)"], axis=1)
    x = np.ones((3, 1))
    with pytest.raises(ShapeError) as info:
        routine(x, 2.0, backend="numpy")
    assert "is the float 2.0" in str(info.value) and "np.array([2.0])" in str(info.value)
    assert "ravel" not in str(info.value)
    with pytest.raises(ShapeError, match=r"reshape it with \.reshape\(1\)"):
        routine(x, np.array(2.0), backend="numpy")
    with pytest.raises(DtypeError) as info:
        routine([[1], [2]], np.ones(1), backend="numpy")
    assert "is the list [[1], [2]], which converts to int64" in str(info.value)
