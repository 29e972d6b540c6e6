"""The one catalogue of per-operation test cases, shared by every test tier.

``CASES`` maps each function name of the formula language (every key of
``dredux.parse.FUNCTIONS``, primitives and composites) and ``INFIX`` each infix
spelling (``+ - * / | **``, comparisons, literals, precedence) to a list of
:class:`Case`: a formula over named variables, each with a category (``i``,
``j`` or ``p``), a dimension and an input domain (a key of
``tests.helpers.DOMAINS``), and a NumPy reference of the broadcast inputs
(i-variables as (M, 1, d), j-variables as (1, N, d), parameters as (1, 1, d)).

The domains keep every op defined, and the discontinuous ops (Floor, Round,
comparisons, Sign, Step, OneHot, Mod, IfElse, ArgMax...) see inputs where
float32 and float64 agree at the jumps: their arguments are exact in float32
(integers, multiples of 1/4, 4 * x) or far from every jump. References are
computed in float64 from the inputs *after* the cast to the tested dtype.

Two ways to run the cases:

* :func:`run_case`: one case through ``Genred`` on a backend (the unit tier
  runs every case so on the NumPy backend);
* :data:`GROUPS`: a few grouped formulas, each holding ~25 cases whose
  variables are renamed per case (``x`` of case 12 becomes ``c12_x``) and
  concatenated by a balanced tree of ``Concat``. :meth:`Group.inputs` draws
  the arguments, :meth:`Group.references` gives every case's slice of the
  output, :meth:`Group.check` compares them. The compiled tiers (CPU, CUDA
  compiled by nvcc, emulated and on a GPU) run these, so that a handful of
  kernels covers every op.

Only dredux's public entry point (``Genred`` and formula strings) is used here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from dredux import Genred
from tests.helpers import DOMAINS, rng

CATS = {"i": "Vi", "j": "Vj", "p": "Pm"}


@dataclass(frozen=True)
class Case:
    """A formula, its variables ``name -> (cat, dim, domain)`` and the reference."""

    formula: str
    variables: dict = field(hash=False)
    ref: Callable[..., np.ndarray] = field(hash=False)


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


def _one_hot(t, d):
    """OneHot rounds half up: component k is 1 where floor(t + 0.5) == k."""
    return f64(np.floor(t + 0.5) == np.arange(d))


def _lead(*arrays):
    return np.broadcast_shapes(*(a.shape[:-1] for a in arrays))


def kron(a, b, shape_a, shape_b):
    """np.kron of every pair of a and b reshaped to shape_a and shape_b, flattened."""
    lead = _lead(a, b)
    a = np.broadcast_to(a, lead + a.shape[-1:]).reshape((-1,) + shape_a)
    b = np.broadcast_to(b, lead + b.shape[-1:]).reshape((-1,) + shape_b)
    out = np.stack([np.kron(u, v).ravel() for u, v in zip(a, b)])
    return out.reshape(lead + (-1,))


def bspline(t, x, order):
    """The B-spline basis of ``order`` on the knots t at x, by the textbook recursion
    B_{i,k} = (x - t_i) / (t_{i+k} - t_i) B_{i,k-1} + (t_{i+k+1} - x) /
    (t_{i+k+1} - t_{i+1}) B_{i+1,k-1}, a term with a zero denominator being 0."""
    lead = _lead(t, x)
    t = np.broadcast_to(t, lead + t.shape[-1:])
    x = np.broadcast_to(x, lead + (1,))[..., 0]

    def ratio(num, den):
        return np.where(den > 0, num / np.where(den > 0, den, 1), 0)

    def b(i, k):
        if k == 0:
            return f64((t[..., i] <= x) & (x < t[..., i + 1]))
        return (ratio(x - t[..., i], t[..., i + k] - t[..., i]) * b(i, k - 1)
                + ratio(t[..., i + k + 1] - x, t[..., i + k + 1] - t[..., i + 1])
                * b(i + 1, k - 1))
    return np.stack([b(i, order) for i in range(t.shape[-1] - order - 1)], -1)


def _soft_dtw_grid(x, y, gamma):
    """The padded grid of soft-DTW (Cuturi and Blondel, 2017): R[0, 0] = 0, +inf on
    the rest of the first row and column, R[i, j] = D[i-1, j-1] + softmin(R[i-1,
    j-1], R[i-1, j], R[i, j-1]), D the squared differences; per pair (loops)."""
    n, m = x.shape[-1], y.shape[-1]
    d = (x[:, None] - y[None, :]) ** 2
    r = np.full((n + 2, m + 2), np.inf)
    r[0, 0] = 0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            prev = np.array([r[i - 1, j - 1], r[i - 1, j], r[i, j - 1]])
            low = prev.min()
            r[i, j] = d[i - 1, j - 1] + low - gamma * np.log(np.exp((low - prev) / gamma).sum())
    return r, d


def _pairs(*arrays):
    lead = _lead(*arrays)
    flat = [np.broadcast_to(a, lead + a.shape[-1:]).reshape(-1, a.shape[-1]) for a in arrays]
    return lead, zip(*flat)


def soft_dtw(x, y, gamma):
    lead, pairs = _pairs(x, y, gamma)
    out = [_soft_dtw_grid(u, v, g[0])[0][len(u), len(v)] for u, v, g in pairs]
    return np.array(out).reshape(lead + (1,))


def soft_dtw_grad(x, y, gamma, with_gamma=False):
    """Gradient in x, y (and gamma) by the expected alignment E (the backward
    recursion of Cuturi and Blondel): dR/dD = E, and dR/dgamma = (R - <E, D>) / gamma
    (R is a log-sum-exp over the alignments)."""
    lead, pairs = _pairs(x, y, gamma)
    out = []
    for u, v, g in pairs:
        n, m = len(u), len(v)
        r, d = _soft_dtw_grid(u, v, g[0])
        dp = np.zeros((n + 2, m + 2))
        dp[1:n + 1, 1:m + 1] = d
        r[:, m + 1] = -np.inf
        r[n + 1, :] = -np.inf
        r[n + 1, m + 1] = r[n, m]
        e = np.zeros((n + 2, m + 2))
        e[n + 1, m + 1] = 1
        for j in range(m, 0, -1):
            for i in range(n, 0, -1):
                a = np.exp((r[i + 1, j] - r[i, j] - dp[i + 1, j]) / g[0])
                b = np.exp((r[i, j + 1] - r[i, j] - dp[i, j + 1]) / g[0])
                c = np.exp((r[i + 1, j + 1] - r[i, j] - dp[i + 1, j + 1]) / g[0])
                e[i, j] = e[i + 1, j] * a + e[i, j + 1] * b + e[i + 1, j + 1] * c
        e = e[1:n + 1, 1:m + 1]
        diff = 2 * (u[:, None] - v[None, :])
        parts = [(e * diff).sum(1), -(e * diff).sum(0)]
        if with_gamma:
            parts.append([(r[n, m] - (e * d).sum()) / g[0]])
        out.append(np.concatenate(parts))
    return np.array(out).reshape(lead + (-1,))


def cx(v):
    """The complex vector of interleaved parts (re, im, re, im...)."""
    return v[..., 0::2] + 1j * v[..., 1::2]


def interleave(z):
    """A complex array as interleaved real parts, the layout of the formulas."""
    z = np.asarray(z, dtype=np.complex128)
    return np.stack([z.real, z.imag], -1).reshape(z.shape[:-1] + (2 * z.shape[-1],))


def complex_binary(name, fn, dom_b="any"):
    """A complex op of two operands: dims (6, 6), (2, 6) and (6, 2) (a complex
    number broadcasts)."""
    return [Case(f"{name}(a, b)", {"a": V("i", da), "b": V("j", db, dom_b)},
                 lambda a, b: interleave(fn(cx(a), cx(b))))
            for da, db in ((6, 6), (2, 6), (6, 2))]


CASES: dict[str, list[Case]] = {
    "Add": binary("Add", lambda a, b: a + b),
    "Subtract": binary("Subtract", lambda a, b: a - b),
    "Mult": binary("Mult", lambda a, b: a * b),
    "Divide": binary("Divide", lambda a, b: a / b, "any", "nz"),
    "Minus": unary("Minus", lambda a: -a) + [
        Case("Minus(Exp(x * y))", {"x": V("i", 3), "y": V("j", 3)},
             lambda x, y: -np.exp(x * y))],
    "Scalprod": [Case("Scalprod(a, b)", {"a": V("i", 3), "b": V("j", 3)},
                      lambda a, b: (a * b).sum(-1, keepdims=True))],
    # integers: the equal pairs are hit, and float32 compares them exactly
    "Equal": binary("Equal", lambda a, b: f64(a == b), "int", "int") + [
        Case("Equal(Floor(4 * x), 2)", {"x": V("i", 3)}, lambda x: f64(np.floor(4 * x) == 2)),
        Case("Equal(Floor(4 * x), Floor(4 * y))", {"x": V("i", 3), "y": V("j", 3)},
             lambda x, y: f64(np.floor(4 * x) == np.floor(4 * y)))],
    "NotEqual": binary("NotEqual", lambda a, b: f64(a != b), "int", "int") + [
        Case("NotEqual(Floor(4 * x), Floor(4 * y))", {"x": V("i", 1), "y": V("j", 3)},
             lambda x, y: f64(np.floor(4 * x) != np.floor(4 * y)))],
    "LessThan": binary("LessThan", lambda a, b: f64(a < b), "int", "int") + [
        Case("LessThan(x, y)", {"x": V("i", 2), "y": V("j", 2)}, lambda x, y: f64(x < y))],
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
    # the sign of x - y is exact in every dtype: both sides of the jump
    "Sign": unary("Sign", np.sign, "int") + [  # integers: Sign(0) = 0 is hit
        Case("Sign(x - y)", {"x": V("i", 3), "y": V("j", 3)}, lambda x, y: np.sign(x - y))],
    "Step": unary("Step", lambda a: f64(a >= 0), "int") + [  # Step(0) = 1 as in KeOps
        Case("Step(x - y)", {"x": V("i", 3), "y": V("j", 3)}, lambda x, y: f64(x - y >= 0))],
    "ReLU": unary("ReLU", lambda a: np.maximum(a, 0)),
    # 4 * x is exact: the floors agree in every dtype
    "Floor": unary("Floor", np.floor, "frac") + [
        Case("Floor(4 * x)", {"x": V("i", 3)}, lambda x: np.floor(4 * x))],
    "Round": [
        Case("Round(x, 0)", {"x": V("i", 3, "frac")}, c_round),
        Case("Round(x, 2)", {"x": V("i", 3, "cents")}, lambda x: c_round(x * 100) / 100),
        Case("Round(x, -1)", {"x": V("i", 3, "wide5")}, lambda x: c_round(x / 10) * 10),
        # 10^39 and 10^-46 are out of float's range: x itself and 0 in every dtype
        Case("Round(x, 39)", {"x": V("i", 3)}, lambda x: c_round(x * 1e39) / 1e39),
        Case("Round(x, -46)", {"x": V("i", 3, "wide5")}, lambda x: c_round(x / 1e46) * 1e46),
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
                     ("any", "low", "high")) + [
        Case("Clamp(x - y, -0.2, 0.3)", {"x": V("i", 3), "y": V("j", 1)},
             lambda x, y: np.clip(x - y, -0.2, 0.3))],
    "ClampInt": [Case("ClampInt(x, -1, 1)", {"x": V("i", 3)}, lambda x: np.clip(x, -1, 1)),
                 Case("ClampInt(x, 0, 2)", {"x": V("i", 3, "wide")},
                      lambda x: np.clip(x, 0, 2)),
                 Case("ClampInt(8 * x - 4, -1, 2)", {"x": V("j", 2, "unit")},
                      lambda x: np.clip(8 * x - 4, -1, 2))],
    # 1 on the closed interval [a, b]: integers hit both bounds
    "DiffClampInt": [Case("DiffClampInt(x, -1, 1)", {"x": V("i", 3, "int")},
                          lambda x: f64((x >= -1) & (x <= 1))),
                     Case("DiffClampInt(x, 0, 2)", {"x": V("j", 3, "wide")},
                          lambda x: f64((x >= 0) & (x <= 2)))],
    "IfElse": ternary("IfElse", lambda f, a, b: np.where(f >= 0, a, b),
                      ("int", "any", "any")) + [
        Case("IfElse(x - y, x, y)", {"x": V("i", 3), "y": V("j", 3)},
             lambda x, y: np.where(x - y >= 0, x, y))],
    # KeOps's Mod(x, n, d) lies in [d, d + n): x - n * floor((x - d) / n). n and d on
    # the 1/4 grid put the jumps on it, x stays away from it
    "Mod": ternary("Mod", lambda x, n, d: d + np.mod(x - d, n), ("offgrid", "dyadic", "grid"))
    + [Case("Mod(4 * x, 1, 0)", {"x": V("i", 3)}, lambda x: np.mod(4 * x, 1))],
    "Sum": [Case("Sum(x)", {"x": V("i", 4)}, lambda x: x.sum(-1, keepdims=True))],
    "SumT": [Case("SumT(x, 4)", {"x": V("i", 1)}, lambda x: np.repeat(x, 4, axis=-1)),
             Case("SumT(b, 1)", {"b": V("j", 1)}, lambda b: b)],
    "Max": [Case("Max(x)", {"x": V("i", 4)}, lambda x: x.max(-1, keepdims=True))],
    "Min": [Case("Min(x)", {"x": V("i", 4)}, lambda x: x.min(-1, keepdims=True))],
    # on the 1/4 grid x - y is exact: ties are hit (the first index wins) and every
    # dtype picks the same index
    "ArgMax": [Case("ArgMax(x - y)", {"x": V("i", 4, "grid"), "y": V("j", 4, "grid")},
                    lambda x, y: f64(np.argmax(x - y, -1)[..., None]))],
    "ArgMin": [Case("ArgMin(x - y)", {"x": V("i", 4, "grid"), "y": V("j", 4, "grid")},
                    lambda x, y: f64(np.argmin(x - y, -1)[..., None])),
               Case("ArgMin(x + y)", {"x": V("i", 3, "grid"), "y": V("j", 3, "grid")},
                    lambda x, y: f64(np.argmin(x + y, -1)[..., None]))],
    "Elem": [Case("Elem(x, 2)", {"x": V("i", 4)}, lambda x: x[..., 2:3]),
             Case("Elem(x, 0)", {"x": V("i", 1)}, lambda x: x)],
    "ElemT": [Case("ElemT(b, 4, 1)", {"b": V("j", 1)},
                   lambda b: np.concatenate([0 * b, b, 0 * b, 0 * b], -1)),
              Case("ElemT(x - y, 3, 2)", {"x": V("i", 1), "y": V("j", 1)},
                   lambda x, y: np.concatenate([0 * (x - y), 0 * (x - y), x - y], -1))],
    "Extract": [Case("Extract(x, 1, 2)", {"x": V("i", 4)}, lambda x: x[..., 1:3]),
                Case("Extract(Concat(x, y), 2, 3)", {"x": V("i", 3), "y": V("j", 3)},
                     lambda x, y: _concat(x, y)[..., 2:5])],
    "ExtractT": [Case("ExtractT(x, 1, 6)", {"x": V("i", 3)},
                      lambda x: np.concatenate([0 * x[..., :1], x, 0 * x[..., :2]], -1)),
                 Case("ExtractT(x * y, 1, 3)", {"x": V("i", 1), "y": V("j", 1)},
                      lambda x, y: np.concatenate([0 * x * y, x * y, 0 * x * y], -1))],
    "Concat": [Case("Concat(x, y)", {"x": V("i", 2), "y": V("j", 3)}, lambda x, y: _concat(x, y)),
               Case("Concat(x, 2)", {"x": V("i", 2)}, lambda x: _concat(x, 2 + 0 * x[..., :1])),
               Case("Concat(Exp(x), y)", {"x": V("i", 1), "y": V("j", 2)},
                    lambda x, y: _concat(np.exp(x), y))],
    "OneHot": [Case("OneHot(x, 4)", {"x": V("i", 1, "hot")},
                    lambda x: f64(np.rint(x) == np.arange(4))),
               # Floor(4 x) in 0..3 plus y away from the half-integers: every slot is
               # hit, and so are the indices out of range (all zeros)
               Case("OneHot(Floor(4 * x) + y, 5)", {"x": V("i", 1, "high"),
                                                    "y": V("j", 1, "frac")},
                    lambda x, y: _one_hot(np.floor(4 * x) + y, 5))],
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
        # more than 256 products: written as loops, not term by term
        Case("TensorDot(a, b, [6, 8], [8, 6], [1], [0])", {"a": V("i", 48), "b": V("j", 48)},
             lambda a, b: _einsum("ij,jk->ik", a, b, (6, 8), (8, 6))),
        Case("TensorDot(a, b, [4, 6, 5], [5, 3, 6], [1, 2], [2, 0], [1, 0])",
             {"a": V("i", 120), "b": V("j", 90)},
             lambda a, b: _einsum("ijk,klj->li", a, b, (4, 6, 5), (5, 3, 6))),
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
    # np.kron of the vectors reshaped
    "Kron": [Case("Kron(a, b, [2, 3], [3, 2])", {"a": V("i", 6), "b": V("j", 6)},
                  lambda a, b: kron(a, b, (2, 3), (3, 2))),
             Case("Kron(a, b, [2, 1, 2], [1, 3, 2])", {"a": V("i", 4), "b": V("p", 6)},
                  lambda a, b: kron(a, b, (2, 1, 2), (1, 3, 2)))],
    # knots on the 1/4 grid (repeated ones too), samples away from them
    "BSpline": [Case("BSpline(t, x, 0)", {"t": V("j", 6, "knots"), "x": V("i", 1, "between")},
                     lambda t, x: bspline(t, x, 0)),
                Case("BSpline(t, x, 2)", {"t": V("j", 7, "knots"), "x": V("i", 1, "between")},
                     lambda t, x: bspline(t, x, 2)),
                Case("BSpline(t, x, 3)", {"t": V("p", 9, "knots"), "x": V("j", 1, "between")},
                     lambda t, x: bspline(t, x, 3))],
    "SoftDTW_SqDist": [
        Case("SoftDTW_SqDist(x, y, g)", {"x": V("i", 4), "y": V("j", 3), "g": V("p", 1, "pos")},
             soft_dtw),
        Case("SoftDTW_SqDist(x, y, g)", {"x": V("i", 1), "y": V("j", 5), "g": V("j", 1, "pos")},
             soft_dtw),
        Case("SoftDTW_SqDist(x - y, y, IntInv(2))", {"x": V("i", 3), "y": V("j", 3)},
             lambda x, y: soft_dtw(x - y, y, np.full((1, 1, 1), 0.5)))],
    "GradSoftDTW_SqDist": [
        Case("GradSoftDTW_SqDist(x, y, g)", {"x": V("i", 4), "y": V("j", 3),
                                             "g": V("p", 1, "pos")}, soft_dtw_grad),
        Case("GradSoftDTW_SqDist(x, y, g, 1)", {"x": V("i", 3), "y": V("j", 2),
                                                "g": V("j", 1, "pos")},
             lambda x, y, g: soft_dtw_grad(x, y, g, True))],
    # complex operations, on interleaved parts
    "ComplexReal": [Case("ComplexReal(x)", {"x": V("i", 6)}, lambda x: cx(x).real),
                    Case("ComplexReal(x * y)", {"x": V("i", 4), "y": V("j", 1)},
                         lambda x, y: cx(x * y).real)],
    "ComplexImag": [Case("ComplexImag(x)", {"x": V("i", 6)}, lambda x: cx(x).imag),
                    Case("ComplexImag(Exp(x - y))", {"x": V("i", 2), "y": V("j", 2)},
                         lambda x, y: cx(np.exp(x - y)).imag)],
    "Complex": [Case("Complex(a, b)", {"a": V("i", 3), "b": V("j", 3)},
                     lambda a, b: interleave(a + 1j * b)),
                Case("Complex(a * b, 2)", {"a": V("i", 1), "b": V("j", 1)},
                     lambda a, b: interleave(a * b + 2j))],
    "Real2Complex": [Case("Real2Complex(x)", {"x": V("i", 3)}, lambda x: interleave(x + 0j))],
    "Imag2Complex": [Case("Imag2Complex(x * y)", {"x": V("i", 3), "y": V("j", 3)},
                          lambda x, y: interleave(1j * x * y))],
    "ComplexExp1j": [Case("ComplexExp1j(x - y)", {"x": V("i", 3), "y": V("j", 1)},
                          lambda x, y: interleave(np.exp(1j * (x - y))))],
    "Conj": [Case("Conj(x)", {"x": V("i", 6)}, lambda x: interleave(np.conj(cx(x))))],
    "ComplexExp": [Case("ComplexExp(x)", {"x": V("i", 4)}, lambda x: interleave(np.exp(cx(x)))),
                   Case("ComplexExp(x + y)", {"x": V("i", 2), "y": V("j", 2)},
                        lambda x, y: interleave(np.exp(cx(x + y))))],
    "ComplexSquareAbs": [Case("ComplexSquareAbs(x - y)", {"x": V("i", 6), "y": V("j", 6)},
                              lambda x, y: np.abs(cx(x - y)) ** 2)],
    "ComplexAbs": [Case("ComplexAbs(x)", {"x": V("i", 6, "nz")}, lambda x: np.abs(cx(x)))],
    # real parts > 0: away from the branch cut of the angle
    "ComplexAngle": [Case("ComplexAngle(x)", {"x": V("i", 6, "pos")},
                          lambda x: np.angle(cx(x)))],
    "ComplexSum": [Case("ComplexSum(x)", {"x": V("i", 6)},
                        lambda x: interleave(cx(x).sum(-1, keepdims=True)))],
    "ComplexSumT": [Case("ComplexSumT(x, 6)", {"x": V("i", 2)},
                         lambda x: interleave(np.repeat(cx(x), 3, -1)))],
    "ComplexAdd": complex_binary("ComplexAdd", lambda a, b: a + b),
    "ComplexSubtract": complex_binary("ComplexSubtract", lambda a, b: a - b),
    "ComplexMult": complex_binary("ComplexMult", lambda a, b: a * b),
    "ComplexDivide": complex_binary("ComplexDivide", lambda a, b: a / b, "nz"),
    "ComplexRealScal": [Case("ComplexRealScal(s, z)", {"s": V("j", 1), "z": V("i", 6)},
                             lambda s, z: interleave(s * cx(z))),
                        Case("ComplexRealScal(z, s)", {"z": V("j", 4), "s": V("i", 1)},
                             lambda z, s: interleave(s * cx(z)))],
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


def _labelled(table) -> list[tuple[str, Case]]:
    return [(f"{name}-{k}", case) for name, cases in table.items()
            for k, case in enumerate(cases)]


# (label, case) of every case, "Exp-0", ..., "+-0", ...: the labels are test ids
ALL_CASES: list[tuple[str, Case]] = _labelled(CASES) + _labelled(INFIX)


# ---------------------------------------------------------------------------
# inputs and references
# ---------------------------------------------------------------------------

def aliases(variables: dict, prefix: str = "") -> list[str]:
    """``["x = Vi(3)", ...]`` for ``variables``, names prefixed by ``prefix``."""
    return [f"{prefix}{name} = {CATS[cat]}({dim})"
            for name, (cat, dim, _) in variables.items()]


def draw(variables: dict, m: int, n: int, dtype=np.float64, gen=None) -> dict:
    """Fresh arguments ``name -> array`` in ``dtype``: i-variables (m, d), j-variables
    (n, d), parameters (d,), drawn from each variable's domain."""
    gen = rng(0) if gen is None else gen
    out = {}
    for name, (cat, dim, domain) in variables.items():
        shape = {"i": (m, dim), "j": (n, dim), "p": (dim,)}[cat]
        out[name] = np.asarray(DOMAINS[domain](gen, shape), dtype=np.float64).astype(dtype)
    return out


def _broadcast(cat: str, value) -> np.ndarray:
    value = np.asarray(value, dtype=np.float64)
    return {"i": lambda v: v[:, None, :], "j": lambda v: v[None, :, :],
            "p": lambda v: v[None, None, :]}[cat](value)


def pair_values(case: Case, values: dict, m: int, n: int) -> np.ndarray:
    """The reference of every pair, float64 (m, n, width), from the arguments
    ``values`` (already in the tested dtype: the reference sees them as cast)."""
    ref = case.ref(*(_broadcast(cat, values[name])
                     for name, (cat, _, _) in case.variables.items()))
    ref = np.asarray(ref, dtype=np.float64)
    return np.broadcast_to(ref, (m, n, ref.shape[-1]))


def _lengths(categories, m: int, n: int) -> tuple[int, int]:
    """As in KeOps, a side with no variable has length 1."""
    return (m if "i" in categories else 1), (n if "j" in categories else 1)


def run_case(case: Case, m: int, n: int, seed: int, axis: int = 1, backend: str = "numpy",
             dtype=np.float64):
    """``Genred(case.formula, ..., axis=axis)`` on ``backend`` with fresh ``dtype``
    arguments; returns (output, float64 reference of every pair (M, N, width))."""
    values = draw(case.variables, m, n, dtype, rng(seed))
    routine = Genred(case.formula, aliases(case.variables), reduction_op="Sum", axis=axis)
    out = routine(*values.values(), backend=backend)
    m, n = _lengths({cat for cat, _, _ in case.variables.values()}, m, n)
    return out, pair_values(case, values, m, n)


# ---------------------------------------------------------------------------
# grouped formulas: a few kernels cover every case
# ---------------------------------------------------------------------------

_NAME = re.compile(r"(?<![\w.])[A-Za-z_]\w*")


def rename(formula: str, variables: dict, prefix: str) -> str:
    """``formula`` with each of its variables ``x`` spelled ``{prefix}x``."""
    return _NAME.sub(lambda m: prefix + m.group() if m.group() in variables else m.group(),
                     formula)


def concat(terms: list[str]) -> str:
    """One formula holding every term: a balanced tree of Concat."""
    if len(terms) == 1:
        return terms[0]
    half = len(terms) // 2
    return f"Concat({concat(terms[:half])}, {concat(terms[half:])})"


@dataclass(frozen=True)
class Member:
    """A case in a group: its label, its variable prefix and its output width."""

    label: str
    case: Case
    prefix: str
    width: int

    @property
    def formula(self) -> str:
        return rename(self.case.formula, self.case.variables, self.prefix)

    @property
    def what(self) -> str:
        return f"{self.label}: {self.case.formula}"


@dataclass(frozen=True)
class Group:
    """Several cases in one formula, their outputs side by side in case order."""

    name: str
    members: tuple[Member, ...]

    @property
    def formula(self) -> str:
        return concat([m.formula for m in self.members])

    @property
    def aliases(self) -> list[str]:
        return [a for m in self.members for a in aliases(m.case.variables, m.prefix)]

    @property
    def width(self) -> int:
        return sum(m.width for m in self.members)

    def routine(self, axis: int = 1, **options) -> Genred:
        """A Sum reduction of the group's formula over j (axis=1) or over i (axis=0)."""
        return Genred(self.formula, self.aliases, reduction_op="Sum", axis=axis, **options)

    def _values(self, args) -> list[dict]:
        """The group's arguments (alias order) split into each member's ``name -> value``."""
        args = iter(args)
        return [{name: next(args) for name in m.case.variables} for m in self.members]

    def inputs(self, m: int, n: int, dtype=np.float64, seed: int = 0) -> list[np.ndarray]:
        """Fresh arguments in alias order: m rows (Vi), n columns (Vj), in ``dtype``."""
        gen = rng(seed)
        return [a for mem in self.members
                for a in draw(mem.case.variables, m, n, dtype, gen).values()]

    def references(self, args, axis: int = 1) -> list[np.ndarray]:
        """Each case's float64 slice of the output for ``args`` (as cast), summed over
        the reduced axis: (M, width) for axis=1, (N, width) for axis=0."""
        cats = [cat for mem in self.members for cat, _, _ in mem.case.variables.values()]
        m = next((len(a) for a, c in zip(args, cats) if c == "i"), 1)
        n = next((len(a) for a, c in zip(args, cats) if c == "j"), 1)
        return [pair_values(mem.case, values, m, n).sum(axis=1 if axis == 1 else 0)
                for mem, values in zip(self.members, self._values(args))]

    def split(self, out) -> list[np.ndarray]:
        """The output's columns, one block per case."""
        out = np.asarray(out)
        assert out.shape[-1] == self.width, (self.name, out.shape, self.width)
        edges = np.cumsum([0] + [m.width for m in self.members])
        return [out[..., a:b] for a, b in zip(edges[:-1], edges[1:])]

    def check(self, out, args, axis: int = 1, rtol: float = 1e-11) -> None:
        """Every case's slice of ``out`` against its reference: within ``rtol`` times
        the largest magnitude of the case's reference (at least 1)."""
        refs = self.references(args, axis)
        for mem, got, ref in zip(self.members, self.split(out), refs):
            what = f"{self.name} {mem.what}"
            assert np.isfinite(ref).all(), f"{what}: the reference is not finite"
            assert got.shape == ref.shape, (what, got.shape, ref.shape)
            scale = max(1.0, float(np.abs(ref).max())) if ref.size else 1.0
            np.testing.assert_allclose(np.asarray(got, dtype=np.float64), ref, rtol=rtol,
                                       atol=rtol * scale, err_msg=what)


def _width(case: Case) -> int:
    """The output dimension of ``case``, from its reference on one pair."""
    return pair_values(case, draw(case.variables, 1, 1), 1, 1).shape[-1]


def make_groups(cases=None, size: int = 25) -> dict[str, Group]:
    """``cases`` (default: every case) cut in order into groups of about ``size``."""
    cases = ALL_CASES if cases is None else cases
    count = max(1, round(len(cases) / size))
    edges = np.linspace(0, len(cases), count + 1).round().astype(int)
    index = {label: k for k, (label, _) in enumerate(ALL_CASES)}
    groups = {}
    for g, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        members = tuple(Member(label, case, f"c{index.get(label, k)}_", _width(case))
                        for k, (label, case) in enumerate(cases[a:b], start=a))
        groups[f"ops{g}"] = Group(f"ops{g}", members)
    return groups


GROUPS: dict[str, Group] = make_groups()
