"""Every operation of the formula language against a NumPy reference written here.

Each case is a formula over an i-variable ``x`` (or ``a``...), a j-variable and
a parameter, with input ranges valid for the op, and a NumPy function of the
broadcast inputs (i-variables as (M, 1, d), j-variables as (1, N, d),
parameters as (1, 1, d)). The formula runs through ``Genred(..., axis=1,
backend="numpy")`` in float64 and is compared with the brute-force sum over j
of the reference; with N = 1 the sum is the value of every single pair.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from dredux import parse
from tests.helpers import DOMAINS, assert_close, numpy_run, rng

CATS = {"i": "Vi", "j": "Vj", "p": "Pm"}


@dataclass
class Case:
    """A formula, its variables ``name -> (cat, dim, domain)`` and the reference."""

    formula: str
    variables: dict
    ref: Callable[..., np.ndarray]


def V(cat: str, dim: int, domain: str = "any") -> tuple:
    return (cat, dim, domain)


def unary(name, fn, domain="any", dim=3):
    return [Case(f"{name}(x)", {"x": V("i", dim, domain)}, lambda x: fn(x)),
            Case(f"{name}(y)", {"y": V("j", 1, domain)}, lambda y: fn(y))]


def binary(name, fn, dom_a="any", dom_b="any"):
    """f(a, b) with dims (3, 3), (1, 3) and (3, 1): dimension-1 operands broadcast."""
    return [Case(f"{name}(a, b)", {"a": V("i", da, dom_a), "b": V("j", db, dom_b)},
                 lambda a, b: fn(a, b)) for da, db in ((3, 3), (1, 3), (3, 1))]


def ternary(name, fn, doms):
    dims = ((3, 3, 3), (1, 3, 1), (3, 1, 3), (3, 1, 1))
    return [Case(f"{name}(a, b, c)", {"a": V("i", d[0], doms[0]), "b": V("j", d[1], doms[1]),
                                      "c": V("p", d[2], doms[2])},
                 lambda a, b, c: fn(a, b, c)) for d in dims]


def f64(cond):
    return np.asarray(cond, dtype=np.float64)


def c_round(v):
    """C's round(): halves go away from zero."""
    return np.copysign(np.floor(np.abs(v) + 0.5), v)


def sqnorm(v):
    return (v * v).sum(-1, keepdims=True)


def sym(s, v):
    d = v.shape[-1]
    mat = s.reshape(s.shape[:-1] + (d, d))
    return np.einsum("...kl,...k,...l->...", mat, v, v)[..., None]


def _concat(x, y):
    lead = np.broadcast(x[..., :1], y[..., :1]).shape[:-1]
    return np.concatenate([np.broadcast_to(x, lead + x.shape[-1:]),
                           np.broadcast_to(y, lead + y.shape[-1:])], -1)


def _einsum(spec, a, b, shape_a, shape_b):
    lead = np.broadcast(a[..., :1], b[..., :1]).shape[:-1]
    a = np.broadcast_to(a, lead + a.shape[-1:]).reshape(lead + shape_a)
    b = np.broadcast_to(b, lead + b.shape[-1:]).reshape(lead + shape_b)
    ins, out = spec.split("->")
    left, right = ins.split(",")
    res = np.einsum(f"...{left},...{right}->...{out}", a, b)
    return res.reshape(lead + (-1,))


REFERENCE: dict[str, list[Case]] = {
    "Add": binary("Add", lambda a, b: a + b),
    "Subtract": binary("Subtract", lambda a, b: a - b),
    "Mult": binary("Mult", lambda a, b: a * b),
    "Divide": binary("Divide", lambda a, b: a / b, "any", "nz"),
    "Minus": unary("Minus", lambda a: -a),
    "Scalprod": [Case("Scalprod(a, b)", {"a": V("i", 3), "b": V("j", 3)},
                      lambda a, b: (a * b).sum(-1, keepdims=True))],
    "Equal": binary("Equal", lambda a, b: f64(a == b), "int", "int"),
    "NotEqual": binary("NotEqual", lambda a, b: f64(a != b), "int", "int"),
    "LessThan": binary("LessThan", lambda a, b: f64(a < b), "int", "int"),
    "LessOrEqual": binary("LessOrEqual", lambda a, b: f64(a <= b), "int", "int"),
    "GreaterThan": binary("GreaterThan", lambda a, b: f64(a > b), "int", "int"),
    "GreaterOrEqual": binary("GreaterOrEqual", lambda a, b: f64(a >= b), "int", "int"),
    "Exp": unary("Exp", np.exp),
    "Log": unary("Log", np.log, "pos"),
    "XLogX": unary("XLogX", lambda a: a * np.log(a), "pos"),
    "Sin": unary("Sin", np.sin),
    "Cos": unary("Cos", np.cos),
    "Asin": unary("Asin", np.arcsin, "unit"),
    "Acos": unary("Acos", np.arccos, "unit"),
    "Atan": unary("Atan", np.arctan),
    "SinXDivX": unary("SinXDivX", lambda a: np.sin(a) / a, "nz"),
    "Sqrt": unary("Sqrt", np.sqrt, "pos"),
    "Rsqrt": unary("Rsqrt", lambda a: 1 / np.sqrt(a), "pos"),
    "Square": unary("Square", lambda a: a ** 2),
    "Inv": unary("Inv", lambda a: 1 / a, "nz"),
    "Abs": unary("Abs", np.abs),
    "Sign": unary("Sign", np.sign, "int"),  # integers: Sign(0) = 0 is hit
    "Step": unary("Step", lambda a: f64(a >= 0), "int"),  # Step(0) = 1 as in KeOps
    "ReLU": unary("ReLU", lambda a: np.maximum(a, 0)),
    "Floor": unary("Floor", np.floor, "frac"),
    "Round": [
        Case("Round(x, 0)", {"x": V("i", 3, "frac")}, c_round),
        Case("Round(x, 2)", {"x": V("i", 3)}, lambda x: c_round(x * 100) / 100),
        Case("Round(x, -1)", {"x": V("i", 3, "wide")}, lambda x: c_round(x / 10) * 10),
    ],
    "Pow": [
        Case("Pow(x, 3)", {"x": V("i", 3)}, lambda x: x * x * x),
        Case("Pow(x, -2)", {"x": V("i", 3, "nz")}, lambda x: 1 / (x * x)),
        Case("Pow(x, 0)", {"x": V("i", 2)}, lambda x: np.ones_like(x)),
        Case("Pow(x, 1)", {"x": V("i", 2)}, lambda x: x),
    ],
    "Powf": binary("Powf", lambda a, b: np.exp(b * np.log(a)), "pos", "any"),
    "Atan2": binary("Atan2", np.arctan2, "nz", "nz"),
    "Clamp": ternary("Clamp", lambda x, a, b: np.minimum(np.maximum(x, a), b),
                     ("any", "low", "high")),
    "ClampInt": [Case("ClampInt(x, -1, 1)", {"x": V("i", 3)}, lambda x: np.clip(x, -1, 1)),
                 Case("ClampInt(x, 0, 2)", {"x": V("i", 3, "wide")},
                      lambda x: np.clip(x, 0, 2))],
    "IfElse": ternary("IfElse", lambda f, a, b: np.where(f >= 0, a, b), ("int", "any", "any")),
    # KeOps's Mod(x, n, d) lies in [d, d + n): x - n * floor((x - d) / n)
    "Mod": ternary("Mod", lambda x, n, d: d + np.mod(x - d, n), ("wide", "mod", "any")),
    "Sum": [Case("Sum(x)", {"x": V("i", 4)}, lambda x: x.sum(-1, keepdims=True))],
    "SumT": [Case("SumT(x, 4)", {"x": V("i", 1)}, lambda x: np.repeat(x, 4, axis=-1)),
             Case("SumT(b, 1)", {"b": V("j", 1)}, lambda b: b)],
    "Max": [Case("Max(x)", {"x": V("i", 4)}, lambda x: x.max(-1, keepdims=True))],
    "Min": [Case("Min(x)", {"x": V("i", 4)}, lambda x: x.min(-1, keepdims=True))],
    "ArgMax": [Case("ArgMax(x - y)", {"x": V("i", 4), "y": V("j", 4)},
                    lambda x, y: f64(np.argmax(x - y, -1)[..., None]))],
    "ArgMin": [Case("ArgMin(x - y)", {"x": V("i", 4), "y": V("j", 4)},
                    lambda x, y: f64(np.argmin(x - y, -1)[..., None]))],
    "Elem": [Case("Elem(x, 2)", {"x": V("i", 4)}, lambda x: x[..., 2:3]),
             Case("Elem(x, 0)", {"x": V("i", 1)}, lambda x: x)],
    "ElemT": [Case("ElemT(b, 4, 1)", {"b": V("j", 1)},
                   lambda b: np.concatenate([0 * b, b, 0 * b, 0 * b], -1))],
    "Extract": [Case("Extract(x, 1, 2)", {"x": V("i", 4)}, lambda x: x[..., 1:3])],
    "ExtractT": [Case("ExtractT(x, 1, 6)", {"x": V("i", 3)},
                      lambda x: np.concatenate([0 * x[..., :1], x, 0 * x[..., :2]], -1))],
    "Concat": [Case("Concat(x, y)", {"x": V("i", 2), "y": V("j", 3)}, lambda x, y: _concat(x, y)),
               Case("Concat(x, 2)", {"x": V("i", 2)}, lambda x: _concat(x, 2 + 0 * x[..., :1]))],
    "OneHot": [Case("OneHot(x, 4)", {"x": V("i", 1, "hot")},
                    lambda x: f64(np.rint(x) == np.arange(4)))],
    # A of dimension 6 is a 3 x 2 matrix stored row by row
    "MatVecMult": [Case("MatVecMult(A, v)", {"A": V("i", 6), "v": V("j", 2)},
                        lambda A, v: np.einsum("...nk,...k->...n",
                                               A.reshape(A.shape[:-1] + (3, 2)), v))],
    # A of dimension 6 is a 2 x 3 matrix stored row by row
    "VecMatMult": [Case("VecMatMult(v, A)", {"v": V("j", 2), "A": V("i", 6)},
                        lambda v, A: np.einsum("...k,...kn->...n", v,
                                               A.reshape(A.shape[:-1] + (2, 3))))],
    "TensorProd": [Case("TensorProd(x, y)", {"x": V("i", 2), "y": V("j", 3)},
                        lambda x, y: (x[..., :, None] * y[..., None, :]).reshape(
                            np.broadcast(x[..., :1], y[..., :1]).shape[:-1] + (6,)))],
    # KeOps's permute: output axis k is the kept axis argsort(permute)[k]
    "TensorDot": [
        Case("TensorDot(a, b, [2, 3], [3], [1], [0])", {"a": V("i", 6), "b": V("j", 3)},
             lambda a, b: _einsum("ij,j->i", a, b, (2, 3), (3,))),
        Case("TensorDot(a, b, [2, 3], [4], [], [], [2, 0, 1])",
             {"a": V("i", 6), "b": V("j", 4)},
             lambda a, b: _einsum("ij,k->jki", a, b, (2, 3), (4,))),
        Case("TensorDot(a, b, [2, 3, 2], [3, 4], [1], [0], [2, 0, 1])",
             {"a": V("i", 12), "b": V("j", 12)},
             lambda a, b: _einsum("ijk,jl->kli", a, b, (2, 3, 2), (3, 4))),
        Case("TensorDot(a, b, [2, 3, 2], [2, 4, 3], [1, 2], [2, 0], [1, 0])",
             {"a": V("i", 12), "b": V("j", 24)},
             lambda a, b: _einsum("ijk,klj->li", a, b, (2, 3, 2), (2, 4, 3))),
    ],
    "SqNorm2": [Case("SqNorm2(x)", {"x": V("i", 3)}, sqnorm)],
    "Norm2": [Case("Norm2(x - y)", {"x": V("i", 3), "y": V("j", 3)},
                   lambda x, y: np.sqrt(sqnorm(x - y)))],
    "Normalize": [Case("Normalize(x - y)", {"x": V("i", 3), "y": V("j", 3)},
                       lambda x, y: (x - y) / np.sqrt(sqnorm(x - y)))],
    "SqDist": [Case("SqDist(x, y)", {"x": V("i", 3), "y": V("j", 3)},
                    lambda x, y: sqnorm(x - y)),
               Case("SqDist(x, y)", {"x": V("i", 1), "y": V("j", 1)},
                    lambda x, y: (x - y) ** 2)],
    "SqNormIso": [Case("SqNormIso(s, x)", {"s": V("j", 1, "pos"), "x": V("i", 3)},
                       lambda s, x: s * sqnorm(x))],
    "SqNormDiag": [Case("SqNormDiag(s, x)", {"s": V("p", 3, "pos"), "x": V("i", 3)},
                        lambda s, x: (s * x * x).sum(-1, keepdims=True))],
    "SymSqNorm": [Case("SymSqNorm(s, x)", {"s": V("j", 9), "x": V("i", 3)}, sym)],
    "WeightedSqNorm": [
        Case("WeightedSqNorm(s, x)", {"s": V("p", 1, "pos"), "x": V("i", 3)},
             lambda s, x: s * sqnorm(x)),
        Case("WeightedSqNorm(s, x)", {"s": V("j", 3, "pos"), "x": V("i", 3)},
             lambda s, x: (s * x * x).sum(-1, keepdims=True)),
        Case("WeightedSqNorm(s, x)", {"s": V("j", 9), "x": V("i", 3)}, sym),
    ],
    "WeightedSqDist": [
        Case("WeightedSqDist(s, x, y)", {"s": V("p", 1, "pos"), "x": V("i", 2),
                                         "y": V("j", 2)},
             lambda s, x, y: s * sqnorm(x - y)),
        Case("WeightedSqDist(s, x, y)", {"s": V("p", 2, "pos"), "x": V("i", 2),
                                         "y": V("j", 2)},
             lambda s, x, y: (s * (x - y) ** 2).sum(-1, keepdims=True)),
        Case("WeightedSqDist(s, x, y)", {"s": V("j", 4), "x": V("i", 2), "y": V("j", 2)},
             lambda s, x, y: sym(s, x - y)),
    ],
    "IntCst": [Case("IntCst(3) * x", {"x": V("i", 2)}, lambda x: 3 * x),
               Case("x + IntCst(-2)", {"x": V("i", 2)}, lambda x: x - 2)],
    "IntInv": [Case("IntInv(4) * x", {"x": V("i", 2)}, lambda x: x / 4),
               Case("IntInv(-3) + x", {"x": V("i", 2)}, lambda x: x - 1 / 3)],
    "Zero": [Case("Zero(3) + x", {"x": V("i", 1)}, lambda x: np.repeat(x, 3, -1)),
             Case("Zero(2) * x", {"x": V("i", 2)}, lambda x: 0 * x)],
}

# The infix spellings of the language.
INFIX: dict[str, list[Case]] = {
    "+": [Case("a + b", {"a": V("i", 3), "b": V("j", 1)}, lambda a, b: a + b)],
    "-": [Case("a - b", {"a": V("i", 1), "b": V("j", 3)}, lambda a, b: a - b),
          Case("-a", {"a": V("i", 3)}, lambda a: -a),
          Case("-a - -b", {"a": V("i", 3), "b": V("j", 3)}, lambda a, b: b - a)],
    "*": [Case("2 * a * b", {"a": V("i", 3), "b": V("j", 3)}, lambda a, b: 2 * a * b)],
    "/": [Case("a / b / 4", {"a": V("i", 3), "b": V("j", 3, "nz")},
               lambda a, b: a / b / 4)],
    "|": [Case("(a | b) + 1", {"a": V("i", 3), "b": V("j", 3)},
               lambda a, b: (a * b).sum(-1, keepdims=True) + 1)],
    "**": [Case("a ** 3", {"a": V("i", 3)}, lambda a: a ** 3),
           Case("a ** -1", {"a": V("i", 3, "nz")}, lambda a: 1 / a),
           Case("a ** 0.5", {"a": V("i", 3, "pos")}, np.sqrt),
           Case("a ** -0.5", {"a": V("i", 3, "pos")}, lambda a: 1 / np.sqrt(a)),
           Case("-a ** 2", {"a": V("i", 3)}, lambda a: -(a ** 2))],
    "<": [Case("a < b", {"a": V("i", 3, "int"), "b": V("j", 3, "int")},
               lambda a, b: f64(a < b))],
    "<=": [Case("a <= b", {"a": V("i", 3, "int"), "b": V("j", 3, "int")},
                lambda a, b: f64(a <= b))],
    ">": [Case("a > b", {"a": V("i", 3, "int"), "b": V("j", 3, "int")},
               lambda a, b: f64(a > b))],
    ">=": [Case("a >= b", {"a": V("i", 3, "int"), "b": V("j", 1, "int")},
                lambda a, b: f64(a >= b))],
    "literals": [Case("2 * a + 0.25 - 1e-1", {"a": V("i", 2)}, lambda a: 2 * a + 0.15),
                 Case("a * 3 / 2", {"a": V("i", 2)}, lambda a: a * 1.5)],
    "precedence": [Case("a + b * a - a / b", {"a": V("i", 2), "b": V("j", 2, "nz")},
                        lambda a, b: a + b * a - a / b)],
}


def _ids(table):
    return [(f"{name}-{k}", case) for name, cases in table.items()
            for k, case in enumerate(cases)]


ALL_CASES = _ids(REFERENCE) + _ids(INFIX)


def run_case(case: Case, m: int, n: int, seed: int, axis: int = 1):
    gen = rng(seed)
    aliases, args, ref_args = [], [], {}
    for name, (cat, dim, domain) in case.variables.items():
        aliases.append(f"{name} = {CATS[cat]}({dim})")
        rows = {"i": (m, dim), "j": (n, dim), "p": (dim,)}[cat]
        value = DOMAINS[domain](gen, rows)
        args.append(value)
        ref_args[name] = {"i": lambda v: v[:, None, :], "j": lambda v: v[None, :, :],
                          "p": lambda v: v[None, None, :]}[cat](value)
    out = numpy_run(case.formula, aliases, *args, axis=axis)
    ref = case.ref(*ref_args.values())
    # as in KeOps, a side with no variable has length 1
    cats = {cat for cat, _, _ in case.variables.values()}
    m, n = (m if "i" in cats else 1), (n if "j" in cats else 1)
    ref = np.broadcast_to(ref, (m, n, ref.shape[-1]))
    return out, ref


def test_every_function_has_a_reference_case():
    assert sorted(REFERENCE) == sorted(parse.FUNCTIONS)


@pytest.mark.parametrize("label, case", ALL_CASES, ids=[c[0] for c in ALL_CASES])
@pytest.mark.parametrize("m, n", [(5, 4), (3, 1)])
def test_op_matches_numpy(label, case, m, n):
    out, ref = run_case(case, m, n, seed=zlib.crc32(f"{label}-{m}-{n}".encode()))
    assert_close(out, ref.sum(axis=1), rtol=1e-12, atol=1e-12, what=case.formula)


@pytest.mark.parametrize("label, case", [c for c in ALL_CASES if c[0].startswith(
    ("Exp", "MatVecMult", "TensorDot", "Clamp", "Concat"))])
def test_op_matches_numpy_over_i(label, case):
    """axis=0: the same formulas reduced over i, one output row per j."""
    out, ref = run_case(case, 4, 6, seed=7, axis=0)
    assert_close(out, ref.sum(axis=0), rtol=1e-12, atol=1e-12, what=case.formula)


def test_round_halves_go_away_from_zero():
    """KeOps spells Round with C's round(): 2.5 -> 3 (NumPy's rint would give 2)."""
    x = np.array([[0.5, 1.5, 2.5, -0.5, -2.5, 0.49]])
    out = numpy_run("Round(x, 0)", ["x = Vi(6)"], x)
    assert out.tolist() == [[1.0, 2.0, 3.0, -1.0, -3.0, 0.0]]


def test_mod_lies_in_its_window():
    gen = rng(3)
    x, n, d = gen.uniform(-9, 9, (50, 1)), gen.uniform(0.5, 3, (1, 1)), gen.uniform(-1, 1, 1)
    out = numpy_run("Mod(x, n, d)", ["x = Vi(1)", "n = Vj(1)", "d = Pm(1)"], x, n, d)
    assert np.all(out >= d[0] - 1e-12) and np.all(out < d[0] + n[0, 0] + 1e-12)
    k = (x - out) / n[0, 0]
    np.testing.assert_allclose(k, np.round(k), atol=1e-9)  # x - out is a multiple of n


@pytest.mark.parametrize("formula, value, expected", [
    ("XLogX(x)", 0.0, 0.0), ("SinXDivX(x)", 0.0, 1.0), ("Rsqrt(x)", 0.0, 0.0),
    ("Step(x)", 0.0, 1.0), ("Sign(x)", 0.0, 0.0), ("ReLU(x)", -0.0, 0.0),
    ("IfElse(x, 2, 3)", 0.0, 2.0), ("ClampInt(x, 1, 2)", 5.0, 2.0),
    # NaN compares false, as in the C spellings of the compiled backends and KeOps
    ("Sign(x)", np.nan, 0.0), ("Step(x)", np.nan, 1.0), ("IfElse(x, 2, 3)", np.nan, 3.0),
])
def test_values_at_special_points(formula, value, expected):
    """The conventions KeOps uses at 0 and NaN (no NaN where KeOps gives a number)."""
    out = numpy_run(formula, ["x = Vi(1)"], np.array([[value]]))
    assert out.tolist() == [[expected]]


@pytest.mark.parametrize("formula, expected", [
    ("Max(x)", [np.nan, 3.0, 3.0]), ("Min(x)", [np.nan, 1.0, 1.0]),
    ("ArgMax(x)", [0.0, 2.0, 0.0]), ("ArgMin(x)", [0.0, 0.0, 1.0]),
])
def test_vector_max_min_scan_left_to_right(formula, expected):
    """A NaN in the first component sticks, a later one is skipped (KeOps's loop); ties
    keep the first index."""
    x = np.array([[np.nan, 1.0, 3.0], [1.0, np.nan, 3.0], [3.0, 1.0, 3.0]])
    out = numpy_run(formula, ["x = Vi(3)"], x, axis=1)[:, 0]
    np.testing.assert_array_equal(out, expected)


def test_float32_inputs_give_float32_results():
    gen = rng(5)
    x, y = gen.random((6, 3), dtype=np.float32), gen.random((9, 3), dtype=np.float32)
    out = numpy_run("Exp(-SqDist(x, y)) * y", ["x = Vi(3)", "y = Vj(3)"], x, y)
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    ref = (np.exp(-((x64[:, None] - y64[None]) ** 2).sum(-1))[..., None] * y64).sum(1)
    assert out.dtype == np.float32
    assert_close(out, ref, rtol=1e-5, atol=1e-6)
