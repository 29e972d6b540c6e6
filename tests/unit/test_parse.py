"""The formula language: aliases, variables, operators, argument order, printing."""

from __future__ import annotations

import numpy as np
import pytest

from dredux import Genred
from dredux.ir import Cat, Expr, Op, const, var
from dredux.parse import parse_aliases, parse_formula
from dredux.printing import to_formula
from tests.helpers import assert_close, numpy_run, rng


def parse(formula: str, aliases):
    names, signature = parse_aliases(aliases)
    return parse_formula(formula, names, signature), signature


def positions(signature):
    return [(a.pos, a.dim, int(a.cat)) for a in signature.args]


# ---------------------------------------------------------------------------
# aliases
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("aliases, expected", [
    (["x = Vi(3)", "y = Vj(2)", "p = Pm(1)"], [(0, 3, 0), (1, 2, 1), (2, 1, 2)]),
    (["x = Vi(0, 3)", "y = Vj(1, 2)", "p = Pm(2, 1)"], [(0, 3, 0), (1, 2, 1), (2, 1, 2)]),
    (["p = Pm(2, 1)", "y = Vj(1, 2)", "x = Vi(0, 3)"], [(0, 3, 0), (1, 2, 1), (2, 1, 2)]),
    (["x = Var(0, 3, 0)", "y = Var(1, 2, 1)", "p = Var(2, 1, 2)"],
     [(0, 3, 0), (1, 2, 1), (2, 1, 2)]),
    (["x = Vx(3)", "y = Vy(2)"], [(0, 3, 0), (1, 2, 1)]),
    (["x=Vi(3)", "  y =Vj( 1 , 2 ) "], [(0, 3, 0), (1, 2, 1)]),
    (["Vi(0, 3)", "y = Vj(2)"], [(0, 3, 0), (1, 2, 1)]),
])
def test_alias_forms(aliases, expected):
    names, signature = parse_aliases(aliases)
    assert positions(signature) == expected
    for name, node in names.items():
        if not name.startswith("Var("):
            pos, cat = node.params
            assert (pos, node.dim, cat) in expected


def test_alias_names_map_to_variables():
    names, _ = parse_aliases(["x = Vi(3)", "y = Vj(1, 2)", "p = Pm(1)"])
    assert names["x"] is var(0, 3, Cat.I)
    assert names["y"] is var(1, 2, Cat.J)
    assert names["p"] is var(2, 1, Cat.P)


def test_arguments_follow_alias_positions():
    """Arguments are passed in position order, whatever the order of the aliases."""
    gen = rng(1)
    x, y, b = gen.random((4, 2)), gen.random((5, 2)), gen.random((5, 1))
    ref = ((x[:, None, :] - y[None, :, :]) * b[None, :, :]).sum(1)
    for aliases in (["x = Vi(0, 2)", "y = Vj(1, 2)", "b = Vj(2, 1)"],
                    ["b = Vj(2, 1)", "x = Vi(0, 2)", "y = Vj(1, 2)"],
                    ["y = Var(1, 2, 1)", "b = Var(2, 1, 1)", "x = Var(0, 2, 0)"]):
        assert_close(numpy_run("(x - y) * b", aliases, x, y, b), ref, what=str(aliases))


def test_inline_variables():
    gen = rng(2)
    x, y, p = gen.random((4, 3)), gen.random((6, 3)), gen.random(1)
    ref = (p[0] * ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)).sum(1)[:, None]
    out = numpy_run("Var(2, 1, 2) * SqDist(Var(0, 3, 0), Var(1, 3, 1))", [], x, y, p)
    assert_close(out, ref)
    # mixed with aliases, and the positional Vi / Vj / Pm forms
    out = numpy_run("Pm(2, 1) * SqDist(x, Vj(1, 3))", ["x = Vi(3)"], x, y, p)
    assert_close(out, ref)
    out = numpy_run("Var(2, 1, 2) * SqDist(x, y)", ["x = Vi(3)", "y = Vj(3)"], x, y, p)
    assert_close(out, ref)


def test_inline_variable_registers_in_the_signature():
    _, signature = parse("x * Var(1, 3, 1)", ["x = Vi(3)"])
    assert positions(signature) == [(0, 3, 0), (1, 3, 1)]
    assert Genred("x * Var(1, 3, 1)", ["x = Vi(3)"]).nargs == 2


def test_inline_variable_may_repeat_an_alias():
    expr, signature = parse("x + Var(0, 3, 0)", ["x = Vi(3)"])
    assert expr.args[0] is expr.args[1]
    assert positions(signature) == [(0, 3, 0)]


# ---------------------------------------------------------------------------
# syntax -> Expr
# ---------------------------------------------------------------------------

X, Y, P = var(0, 3, Cat.I), var(1, 3, Cat.J), var(2, 1, Cat.P)
XYP = ["x = Vi(3)", "y = Vj(3)", "p = Pm(1)"]


@pytest.mark.parametrize("formula, build", [
    ("x + y", lambda: Expr(Op.ADD, (X, Y))),
    ("x - y", lambda: Expr(Op.SUB, (X, Y))),
    ("x * p", lambda: Expr(Op.MUL, (X, P))),
    ("x / p", lambda: Expr(Op.DIV, (X, P))),
    ("-x", lambda: Expr(Op.NEG, (X,))),
    ("+x", lambda: X),
    ("x | y", lambda: Expr(Op.SCALPROD, (X, Y))),
    ("x ** 3", lambda: Expr(Op.POW, (X,), (3,))),
    ("x ** -2", lambda: Expr(Op.POW, (X,), (-2,))),
    ("x ** 0.5", lambda: Expr(Op.SQRT, (X,))),
    ("x ** -0.5", lambda: Expr(Op.RSQRT, (X,))),
    ("x < y", lambda: Expr(Op.LT, (X, Y))),
    ("x <= y", lambda: Expr(Op.LE, (X, Y))),
    ("x > y", lambda: Expr(Op.GT, (X, Y))),
    ("x >= y", lambda: Expr(Op.GE, (X, Y))),
    ("2", lambda: const(2)),
    ("2.5", lambda: const(2.5)),
    ("-3", lambda: const(-3)),
    ("1e-3 * p", lambda: Expr(Op.MUL, (const(0.001), P))),
    ("x + y * p", lambda: Expr(Op.ADD, (X, Expr(Op.MUL, (Y, P))))),
    ("(x + y) * p", lambda: Expr(Op.MUL, (Expr(Op.ADD, (X, Y)), P))),
    ("x - y - x", lambda: Expr(Op.SUB, (Expr(Op.SUB, (X, Y)), X))),
    ("-x ** 2", lambda: Expr(Op.NEG, (Expr(Op.POW, (X,), (2,)),))),
    ("Pow(x, 2)", lambda: Expr(Op.POW, (X,), (2,))),
    ("Exp(Minus(x))", lambda: Expr(Op.EXP, (Expr(Op.NEG, (X,)),))),
    ("Sum(x) * Var(2, 1, 2)", lambda: Expr(Op.MUL, (Expr(Op.SUM, (X,)), P))),
])
def test_syntax_builds_the_expected_tree(formula, build):
    expr, _ = parse(formula, XYP)
    assert expr is build(), to_formula(expr)


ROUND_TRIP = [
    "Exp(-SqDist(x, y)) * p",
    "x - y - (x - y) / (p + 1)",
    "-(x * y) + -x",
    "(x | y) * Pow(p, -3) + Inv(p) ** 2",
    "Round(x, 2) + Floor(y) + ClampInt(x, -1, 3) + IfElse(x - y, x, y)",
    "Mod(x, y + 2, p) * Atan2(x, y) + Powf(Abs(x) + 1, y)",
    "Concat(Elem(x, 2), Extract(y, 0, 2)) + ExtractT(p, 1, 3)",
    "ElemT(p, 3, 1) + SumT(Sum(x), 3) + OneHot(Max(x), 3)",
    "MatVecMult(TensorProd(x, y), x) + VecMatMult(y, TensorProd(y, x))",
    "TensorDot(TensorProd(x, y), y, [3, 3], [3], [1], [0])",
    "TensorDot(TensorProd(x, y), x, [3, 3], [3], [], [], [2, 0, 1])",
    "-2.5 * x + 1e-30 - IntCst(-4) + Zero(3) * 3",
    "(x < y) + (x >= y) * Equal(x, y) - NotEqual(x, y) + LessOrEqual(x, y)",
    "Sin(x) * Cos(y) * Asin(x / 4) * Acos(y / 4) * Atan(x) * SinXDivX(x)",
    "Sqrt(p) + Rsqrt(p) + Log(p) + XLogX(p) + Square(p) + Sign(p) + Step(p) + ReLU(p)",
    "ArgMax(x) + ArgMin(y) + Min(x) + Clamp(x, y, p)",
    "Grad(Exp(-SqDist(x, y)) * p, x, p)",
    "Grad(Grad(Exp(-SqDist(x, y)), y, p), x, y)",
]


@pytest.mark.parametrize("formula", ROUND_TRIP)
def test_printing_round_trips(formula):
    names, signature = parse_aliases(XYP)
    expr = parse_formula(formula, names, signature)
    text = to_formula(expr)
    again = parse_formula(text, *parse_aliases(XYP))
    assert again is expr, text
    named = to_formula(expr, signature.names())
    assert parse_formula(named, *parse_aliases(XYP)) is expr, named


# ---------------------------------------------------------------------------
# Grad(F, v) without e: the new variable
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("wrt, cat", [("x", Cat.J), ("y", Cat.I)])
def test_grad_without_e_creates_the_next_variable(wrt, cat):
    aliases = ["x = Vi(3)", "y = Vj(3)", "b = Vj(2)"]
    expr, signature = parse(f"Grad(Exp(-SqDist(x, y)) * b, {wrt})", aliases)
    assert positions(signature)[-1] == (3, 2, int(cat))  # 1 + max position, dim of F
    e = var(3, 2, cat)
    assert e in {n for n in _walk(expr)}


def test_grad_without_e_numbers_after_inline_variables():
    _, signature = parse("Grad(SqDist(x, Var(4, 3, 1)) * Var(3, 1, 2), x)",
                         ["x = Vi(0, 3)", "y = Vj(1, 3)", "z = Vj(2, 1)"])
    assert positions(signature)[-1] == (5, 1, int(Cat.J))


def test_grad_without_e_evaluates():
    gen = rng(4)
    x, y, b, e = gen.random((4, 3)), gen.random((5, 3)), gen.random((5, 2)), gen.random((5, 2))
    out = numpy_run("Grad(Exp(-SqDist(x, y)) * b, x)",
                    ["x = Vi(3)", "y = Vj(3)", "b = Vj(2)"], x, y, b, e)
    d = x[:, None, :] - y[None, :, :]
    k = np.exp(-(d ** 2).sum(-1))
    ref = (-2 * d * (k * (b * e).sum(-1)[None, :])[..., None]).sum(1)
    assert_close(out, ref)


def _walk(expr):
    from dredux.ir import walk

    return walk(expr)
