"""Records of the elementwise operations: arithmetic, comparisons and maths.

An elementwise op computes component k of its result from component k of each
operand; an operand of dimension 1 is broadcast. One call of :func:`unary`
or :func:`nary` is one op: its name in formulas, C spelling, NumPy reference,
derivative and cost (see :class:`dredux.ops.OpDef`). The C spellings call the
``_dr_*`` functions of ``kernels/cpu/math.hpp`` and ``kernels/cuda/math.cuh``
(``tests/unit/test_tables.py`` checks that both headers define every one).
"""

from __future__ import annotations

from collections.abc import Callable

from ..limits import MAX_POW, MAX_ROUND
from . import DimError, OpDef

__all__ = ["DEFS", "unary", "nary"]


# ---------------------------------------------------------------------------
# helpers for the rules (nodes are built when a rule runs: dredux.ir imports us)
# ---------------------------------------------------------------------------

def node(name: str, *args, params: tuple = ()):
    """A new node of the op called ``name`` (e.g. ``node("COS", a)``)."""
    from ..ir import Expr
    from . import Op

    return Expr(Op[name], args, params)


def zero():
    from ..ir import zero as _zero

    return _zero()


def const(value):
    from ..ir import const as _const

    return _const(value)


def _as_float(ctx, cond):
    return cond.astype(ctx.dtype)


def _where(ctx, cond, a, b):
    return ctx.xp.where(cond, a, b).astype(ctx.dtype)


def _same(dims, params):
    return dims[0]


def _broadcast(keops: str):
    def rule(dims, params):
        out = max(dims)
        if any(d not in (1, out) for d in dims):
            shown = " and ".join(str(d) for d in dims)
            raise DimError(
                f"{keops} got operands of dimensions {shown}; expected equal "
                "dimensions, or dimension 1 for an operand to broadcast")
        return out
    return rule


def unary(name: str, keops: str, c, numpy: Callable, derivative=None, *, vjp=None,
          cost: float = 1.0, fast: str | None = None, linear: tuple[int, ...] = (),
          signature: str = "e", usage: str = "", dims=None,
          param_limits: tuple[int, ...] = ()) -> OpDef:
    """The record of an elementwise op of one operand.

    ``derivative(node, a)`` is f'(a) (the VJP is ``g * f'(a)``); give ``vjp``
    instead for another rule, and neither for an op whose derivative is zero
    almost everywhere (Floor, Sign...). ``numpy(ctx, node, a)``.
    """
    if vjp is None:
        if derivative is None:
            def vjp(n, g):
                return (None,)
        else:
            def vjp(n, g):
                return (g * derivative(n, n.args[0]),)
    return OpDef(name, keops, 1, dims or _same, numpy=numpy, vjp=vjp, c=c, fast=fast,
                 signature=signature, usage=usage, elementwise=True, linear=linear,
                 reads_once=True, cost=cost, param_limits=param_limits)


def nary(name: str, keops: str, c, numpy: Callable, vjp=None, *, cost: float = 1.0,
         fast: str | None = None, linear: tuple[int, ...] = (), additive: bool = False,
         usage: str = "") -> OpDef:
    """The record of an elementwise op of two or more operands (they broadcast)."""
    arity = sum(1 for k in range(4) if f"{{{k}}}" in c) if isinstance(c, str) else 3
    if vjp is None:
        def vjp(n, g):
            return (None,) * len(n.args)
    return OpDef(name, keops, arity, _broadcast(keops), numpy=numpy, vjp=vjp, c=c,
                 fast=fast, signature="e" * arity, usage=usage, elementwise=True,
                 linear=linear, additive=additive, reads_once=True, cost=cost)


def _cmp(name: str, keops: str, symbol: str, fn) -> OpDef:
    return nary(name, keops, f"(T)({{0}} {symbol} {{1}})",
                lambda c, n, a, b: _as_float(c, fn(a, b)))


# C spellings that need the renderer (numbers printed by r.lit, range-checked)
# Round(f, d) scales in double whatever T is: 10^d is finite for |d| <= MAX_ROUND in
# float64 only (in float, 10^39 is inf and Round(x, 39) would be NaN, 10^-46 is 0)
def _round_c(r, a, n):
    (d,) = n.params
    if d == 0:
        return f"_dr_round({a[0]})"
    scale = repr(10.0 ** d)  # a double literal: |d| <= MAX_ROUND, so finite and nonzero
    return f"((T)(_dr_round((double){a[0]} * {scale}) / {scale}))"


def _round_numpy(ctx, n, a):
    (d,) = n.params
    xp = ctx.xp
    x = xp.asarray(a, dtype=xp.float64) * 10.0 ** d if d else a
    out = xp.sign(x) * xp.floor(xp.abs(x) + 0.5)  # C's round: halves away from zero
    return (out / 10.0 ** d if d else out).astype(ctx.dtype)


# Pow(f, n) is written out as products up to this |n|, a _dr_pow call above
MAX_WRITTEN_POW = 64


def powi(r, x: str, p: int) -> str:
    """x**p by repeated squaring, written out (p is a small integer)."""
    if p == 0:
        return "(T)1"
    if p < 0:
        return f"((T)1 / {powi(r, x, -p)})"
    if p > MAX_WRITTEN_POW:
        return f"_dr_pow({x}, {r.lit(p)})"
    factors, base = [], x
    while p:
        if p & 1:
            factors.append(base)
        p >>= 1
        if p:
            base = f"({base} * {base})"
    return factors[0] if len(factors) == 1 else "(" + " * ".join(factors) + ")"


def _pow_vjp(n, g):
    (p,) = n.params
    return (g * (p * node("POW", n.args[0], params=(p - 1,))),)


def _clampint_c(r, a, n):
    lo, hi = (r.lit(v) for v in n.params)
    return f"(({a[0]} < {lo}) ? {lo} : (({a[0]} > {hi}) ? {hi} : {a[0]}))"


def _clampint_numpy(c, n, x):
    lo, hi = n.params
    return _where(c, x < lo, lo, c.xp.where(x > hi, hi, x))


def _clampint_vjp(n, g):
    (x,) = n.args
    lo, hi = n.params
    return (g * node("GE", x, const(lo)) * node("LE", x, const(hi)),)


def _clamp_vjp(n, g):
    x, lo, hi = n.args
    above_lo = node("GE", x, lo)
    return (g * above_lo * node("LE", x, hi), g * node("LT", x, lo),
            g * above_lo * node("GT", x, hi))


def _atan2_vjp(n, g):
    y, x = n.args
    norm = node("SQUARE", y) + node("SQUARE", x)
    return (g * x / norm, -(g * y) / norm)


def _powf_vjp(n, g):
    a, b = n.args
    return (g * b * node("POWF", a, b - 1), g * node("LOG", a) * n)


DEFS: list[OpDef] = [
    # arithmetic
    nary("ADD", "Add", "({0} + {1})", lambda c, n, a, b: a + b, lambda n, g: (g, g),
         additive=True),
    nary("SUB", "Subtract", "({0} - {1})", lambda c, n, a, b: a - b, lambda n, g: (g, -g),
         additive=True),
    nary("MUL", "Mult", "({0} * {1})", lambda c, n, a, b: a * b,
         lambda n, g: (g * n.args[1], g * n.args[0]), linear=(0, 1)),
    nary("DIV", "Divide", "({0} / {1})", lambda c, n, a, b: a / b,
         lambda n, g: (g / n.args[1], -(g * n) / n.args[1]), linear=(0,), cost=4,
         fast="__fdividef({0}, {1})"),
    unary("NEG", "Minus", "(-{0})", lambda c, n, a: -a, vjp=lambda n, g: (-g,), linear=(0,)),
    # comparisons: 1.0 where true, 0.0 where false (NaN compares false)
    _cmp("EQ", "Equal", "==", lambda a, b: a == b),
    _cmp("NE", "NotEqual", "!=", lambda a, b: a != b),
    _cmp("LT", "LessThan", "<", lambda a, b: a < b),
    _cmp("LE", "LessOrEqual", "<=", lambda a, b: a <= b),
    _cmp("GT", "GreaterThan", ">", lambda a, b: a > b),
    _cmp("GE", "GreaterOrEqual", ">=", lambda a, b: a >= b),
    # maths. The costs of the functions are measured on the CPU backend (one core,
    # AVX-512, GCC 12: time per pair of F(1 + SqDist(x, y)) * b less that of
    # Exp(-SqDist(x, y)) * b, in units of 2e-11 s, the backend's seconds_per_cost):
    # the vectorised sin, cos and pow of kernels/cpu/math.hpp about 80 and 120,
    # atan, asin, acos and atan2 40-75
    unary("EXP", "Exp", "_dr_exp({0})", lambda c, n, a: c.xp.exp(a),
          vjp=lambda n, g: (g * n,), cost=8, fast="_dr_fast_exp({0})"),
    unary("LOG", "Log", "_dr_log({0})", lambda c, n, a: c.xp.log(a),
          vjp=lambda n, g: (g / n.args[0],), cost=10, fast="__logf({0})"),
    unary("XLOGX", "XLogX", "(({0} == (T)0) ? (T)0 : {0} * _dr_log({0}))",
          lambda c, n, a: _where(c, a == 0, 0, a * c.xp.log(a)),
          lambda n, a: node("LOG", a) + 1, cost=11,
          fast="(({0} == (T)0) ? (T)0 : {0} * __logf({0}))"),
    unary("SIN", "Sin", "_dr_sin({0})", lambda c, n, a: c.xp.sin(a),
          lambda n, a: node("COS", a), cost=80, fast="__sinf({0})"),
    unary("COS", "Cos", "_dr_cos({0})", lambda c, n, a: c.xp.cos(a),
          lambda n, a: -node("SIN", a), cost=80, fast="__cosf({0})"),
    unary("ASIN", "Asin", "_dr_asin({0})", lambda c, n, a: c.xp.arcsin(a),
          lambda n, a: node("RSQRT", 1 - node("SQUARE", a)), cost=60),
    unary("ACOS", "Acos", "_dr_acos({0})", lambda c, n, a: c.xp.arccos(a),
          lambda n, a: -node("RSQRT", 1 - node("SQUARE", a)), cost=70),
    unary("ATAN", "Atan", "_dr_atan({0})", lambda c, n, a: c.xp.arctan(a),
          lambda n, a: node("INV", 1 + node("SQUARE", a)), cost=45),
    unary("SINXDIVX", "SinXDivX", "_dr_sinxdivx({0})",
          lambda c, n, a: _where(c, a == 0, 1, c.xp.sin(a) / a),
          lambda n, a: (node("COS", a) - n) / a, cost=85,
          fast="(({0} == (T)0) ? (T)1 : __sinf({0}) / {0})"),
    unary("SQRT", "Sqrt", "_dr_sqrt({0})", lambda c, n, a: c.xp.sqrt(a),
          lambda n, a: 0.5 * node("RSQRT", a), cost=4),
    unary("RSQRT", "Rsqrt", "(({0} == (T)0) ? (T)0 : _dr_rsqrt({0}))",
          lambda c, n, a: _where(c, a == 0, 0, 1 / c.xp.sqrt(a)),
          lambda n, a: -0.5 * node("POW", n, params=(3,)), cost=5),
    unary("SQUARE", "Square", "({0} * {0})", lambda c, n, a: a * a, lambda n, a: 2 * a),
    unary("INV", "Inv", "((T)1 / {0})", lambda c, n, a: 1 / a,
          lambda n, a: -node("SQUARE", n), cost=4),
    unary("ABS", "Abs", "_dr_abs({0})", lambda c, n, a: c.xp.abs(a),
          lambda n, a: node("SIGN", a)),
    # Sign(NaN) = 0, as in C
    unary("SIGN", "Sign", "(T)(({0} > (T)0) - ({0} < (T)0))",
          lambda c, n, a: _as_float(c, a > 0) - _as_float(c, a < 0)),
    unary("STEP", "Step", "(({0} < (T)0) ? (T)0 : (T)1)",
          lambda c, n, a: _where(c, a < 0, 0, 1)),
    unary("RELU", "ReLU", "(({0} < (T)0) ? (T)0 : {0})",
          lambda c, n, a: _where(c, a < 0, 0, a), lambda n, a: node("STEP", a)),
    unary("FLOOR", "Floor", "_dr_floor({0})", lambda c, n, a: c.xp.floor(a)),
    unary("ROUND", "Round", _round_c, _round_numpy, cost=2, signature="ei",
          usage="Round(f, decimals)", param_limits=(MAX_ROUND,)),
    unary("POW", "Pow", lambda r, a, n: powi(r, a[0], n.params[0]),
          lambda c, n, a: (a ** n.params[0]).astype(c.dtype), vjp=_pow_vjp,
          signature="ei", usage="Pow(f, n) with an integer n", param_limits=(MAX_POW,)),
    nary("POWF", "Powf", "_dr_pow({0}, {1})", lambda c, n, a, b: c.xp.power(a, b),
         _powf_vjp, cost=120),
    nary("ATAN2", "Atan2", "_dr_atan2({0}, {1})", lambda c, n, a, b: c.xp.arctan2(a, b),
         _atan2_vjp, cost=75),
    nary("CLAMP", "Clamp", "(({0} < {1}) ? {1} : (({0} > {2}) ? {2} : {0}))",
         lambda c, n, x, lo, hi: _where(c, x < lo, lo, c.xp.where(x > hi, hi, x)),
         _clamp_vjp, usage="Clamp(f, a, b)"),
    unary("CLAMPINT", "ClampInt", _clampint_c, _clampint_numpy, vjp=_clampint_vjp,
          signature="eii", usage="ClampInt(f, a, b) with integers a <= b"),
    nary("IFELSE", "IfElse", "_dr_ifelse({0}, {1}, {2})",
         lambda c, n, x, a, b: _where(c, x >= 0, a, b),
         lambda n, g: (None, node("IFELSE", n.args[0], g, zero()),
                       node("IFELSE", n.args[0], zero(), g)),
         usage="IfElse(f, a, b): a where f >= 0, else b"),
    nary("MOD", "Mod", "({0} - {1} * _dr_floor(({0} - {2}) / {1}))",
         lambda c, n, x, m, d: x - m * c.xp.floor((x - d) / m),
         lambda n, g: (g, -(g * node("FLOOR", (n.args[0] - n.args[2]) / n.args[1])), None),
         cost=6, usage="Mod(f, n, d) = f - n*Floor((f - d)/n)"),
]
