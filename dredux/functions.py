"""The callable names of the formula language: one row per name.

``FUNCTIONS`` maps each name (``"Exp"``, ``"SqDist"``, ``"TensorDot"``...) to
its argument kinds and a builder. Names of primitives build one node of their
:class:`~dredux.ir.Op`; composite names (``SqDist``, ``Norm2``,
``WeightedSqNorm``...) expand into primitives. The parser
(:mod:`dredux.parse`) calls the builders with the parsed arguments; a builder
raises :class:`~dredux.ir.DimError` when dimensions do not fit, and the parser
turns it into a ``FormulaError`` placed under the call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .ir import DimError, Expr, Op, const, zero

__all__ = ["Function", "FUNCTIONS", "tensordot_node"]



@dataclass(frozen=True)
class Function:
    """One callable name of the formula language.

    ``signature`` has one letter per argument: ``e`` expression, ``i`` integer,
    ``l`` list of integers; letters after ``|`` are optional. ``op`` is the
    primitive the call produces, or None for names that expand into others.
    """

    signature: str
    build: Callable[..., Expr]
    op: Op | None = None
    usage: str = ""


def _primitive(op: Op, signature: str = "e", usage: str = "") -> Function:
    n_expr = signature.count("e")

    def build(*args):
        return Expr(op, args[:n_expr], tuple(args[n_expr:]))
    return Function(signature, build, op, usage)


def _sqnorm2(f):
    return Expr(Op.SUM, (Expr(Op.SQUARE, (f,)),))


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise DimError(message)


def _sqnorm_iso(s, f):
    _require(s.dim == 1, f"SqNormIso(s, f) needs s of dimension 1, got {s.dim}")
    return s * _sqnorm2(f)


def _sqnorm_diag(s, f):
    _require(s.dim == f.dim, f"SqNormDiag(s, f) needs s and f of equal dimensions, "
             f"got {s.dim} and {f.dim}")
    return Expr(Op.SUM, (s * Expr(Op.SQUARE, (f,)),))


def _symsqnorm(a, f):
    _require(a.dim == f.dim * f.dim,
             f"SymSqNorm(A, f) needs A of dimension {f.dim}*{f.dim} = {f.dim ** 2} "
             f"for f of dimension {f.dim}, got {a.dim}")
    return Expr(Op.SCALPROD, (f, Expr(Op.MATVECMULT, (a, f))))


def _weighted_sqnorm(s, f):
    if s.dim == 1:
        return _sqnorm_iso(s, f)
    if s.dim == f.dim:
        return _sqnorm_diag(s, f)
    _require(s.dim == f.dim ** 2,
             f"WeightedSqNorm(s, f) needs s of dimension 1, {f.dim} or {f.dim ** 2} for "
             f"f of dimension {f.dim}, got {s.dim}")
    return _symsqnorm(s, f)


def _tensordot(fa, fb, dimsfa, dimsfb, contfa, contfb, permute=None):
    """KeOps's TensorDot parameters -> one einsum-style TENSORDOT node."""
    dimsfa, dimsfb = list(dimsfa), list(dimsfb)
    contfa, contfb = list(contfa), list(contfb)
    if len(contfa) != len(contfb):
        raise DimError(f"TensorDot contracts {len(contfa)} axes of a but {len(contfb)} "
                       "axes of b; expected the same number")
    for name, axes, shape in (("a", contfa, dimsfa), ("b", contfb, dimsfb)):
        if len(set(axes)) != len(axes) or any(not 0 <= k < len(shape) for k in axes):
            raise DimError(f"TensorDot contraction axes {axes} of {name} are not distinct "
                           f"axes of its shape {shape}")
    for ka, kb in zip(contfa, contfb):
        if dimsfa[ka] != dimsfb[kb]:
            raise DimError(f"TensorDot contracts axis {ka} of a (length {dimsfa[ka]}) with "
                           f"axis {kb} of b (length {dimsfb[kb]}); lengths must agree")
    sub_a = list(range(len(dimsfa)))
    sub_b = list(range(len(dimsfa), len(dimsfa) + len(dimsfb)))
    for ka, kb in zip(contfa, contfb):
        sub_b[kb] = sub_a[ka]
    size = {label: n for label, n in zip(sub_a, dimsfa)}
    size.update({label: n for label, n in zip(sub_b, dimsfb)})
    keep = [label for k, label in enumerate(sub_a) if k not in contfa]
    keep += [label for k, label in enumerate(sub_b) if k not in contfb]
    permute = list(range(len(keep))) if permute is None else list(permute)
    if sorted(permute) != list(range(len(keep))):
        raise DimError(f"TensorDot permutation {permute} is not a permutation of "
                       f"{list(range(len(keep)))}")
    inverse = sorted(range(len(permute)), key=permute.__getitem__)
    sub_out = [keep[k] for k in inverse]
    return tensordot_node(fa, fb, sub_a, sub_b, sub_out, size)


def tensordot_node(fa: Expr, fb: Expr, sub_a, sub_b, sub_out, size) -> Expr:
    """A TENSORDOT node from einsum labels, labels renumbered canonically."""
    order: dict[int, int] = {}
    for label in [*sub_a, *sub_b, *sub_out]:
        order.setdefault(label, len(order))
    params = (
        tuple(size[label] for label in sub_a),
        tuple(size[label] for label in sub_b),
        tuple(order[label] for label in sub_a),
        tuple(order[label] for label in sub_b),
        tuple(order[label] for label in sub_out),
        tuple(size[label] for label in sub_out),
    )
    return Expr(Op.TENSORDOT, (fa, fb), params)


def _intcst(n):
    return const(n)


def _intinv(n):
    if n == 0:
        raise DimError("IntInv(0) is a division by zero; expected a non-zero integer")
    return const(1.0 / n)


def _zero(d):
    if d < 1:
        raise DimError(f"Zero(dim) needs dim >= 1, got {d}")
    return zero(d)


_P = _primitive
FUNCTIONS: dict[str, Function] = {
    "Add": _P(Op.ADD, "ee"), "Subtract": _P(Op.SUB, "ee"), "Mult": _P(Op.MUL, "ee"),
    "Divide": _P(Op.DIV, "ee"), "Minus": _P(Op.NEG, "e"),
    "Scalprod": _P(Op.SCALPROD, "ee"),
    "Equal": _P(Op.EQ, "ee"), "NotEqual": _P(Op.NE, "ee"), "LessThan": _P(Op.LT, "ee"),
    "LessOrEqual": _P(Op.LE, "ee"), "GreaterThan": _P(Op.GT, "ee"),
    "GreaterOrEqual": _P(Op.GE, "ee"),
    "Exp": _P(Op.EXP), "Log": _P(Op.LOG), "XLogX": _P(Op.XLOGX), "Sin": _P(Op.SIN),
    "Cos": _P(Op.COS), "Asin": _P(Op.ASIN), "Acos": _P(Op.ACOS), "Atan": _P(Op.ATAN),
    "SinXDivX": _P(Op.SINXDIVX), "Sqrt": _P(Op.SQRT), "Rsqrt": _P(Op.RSQRT),
    "Square": _P(Op.SQUARE), "Inv": _P(Op.INV), "Abs": _P(Op.ABS), "Sign": _P(Op.SIGN),
    "Step": _P(Op.STEP), "ReLU": _P(Op.RELU), "Floor": _P(Op.FLOOR),
    "Round": _P(Op.ROUND, "ei", "Round(f, decimals)"),
    "Pow": _P(Op.POW, "ei", "Pow(f, n) with an integer n"),
    "Powf": _P(Op.POWF, "ee"), "Atan2": _P(Op.ATAN2, "ee"),
    "Clamp": _P(Op.CLAMP, "eee", "Clamp(f, a, b)"),
    "ClampInt": _P(Op.CLAMPINT, "eii", "ClampInt(f, a, b) with integers a <= b"),
    "IfElse": _P(Op.IFELSE, "eee", "IfElse(f, a, b): a where f >= 0, else b"),
    "Mod": _P(Op.MOD, "eee", "Mod(f, n, d) = f - n*Floor((f - d)/n)"),
    "Sum": _P(Op.SUM), "SumT": _P(Op.SUMT, "ei", "SumT(f, dim)"),
    "Max": _P(Op.MAX), "Min": _P(Op.MIN), "ArgMax": _P(Op.ARGMAX), "ArgMin": _P(Op.ARGMIN),
    "Elem": _P(Op.ELEM, "ei", "Elem(f, index)"),
    "ElemT": _P(Op.ELEMT, "eii", "ElemT(f, dim, index)"),
    "Extract": _P(Op.EXTRACT, "eii", "Extract(f, start, dim)"),
    "ExtractT": _P(Op.EXTRACTT, "eii", "ExtractT(f, start, dim)"),
    "Concat": _P(Op.CONCAT, "ee"), "OneHot": _P(Op.ONEHOT, "ei", "OneHot(f, dim)"),
    "MatVecMult": _P(Op.MATVECMULT, "ee"), "VecMatMult": _P(Op.VECMATMULT, "ee"),
    "TensorProd": _P(Op.TENSORPROD, "ee"),
    "TensorDot": Function("eellll|l", _tensordot, Op.TENSORDOT,
                          "TensorDot(a, b, [dims a], [dims b], [axes a], [axes b], [perm])"),
    # names that expand into primitives
    "SqNorm2": Function("e", _sqnorm2),
    "Norm2": Function("e", lambda f: Expr(Op.SQRT, (_sqnorm2(f),))),
    "Normalize": Function("e", lambda f: Expr(Op.RSQRT, (_sqnorm2(f),)) * f),
    "SqDist": Function("ee", lambda f, g: _sqnorm2(f - g)),
    "SqNormIso": Function("ee", _sqnorm_iso),
    "SqNormDiag": Function("ee", _sqnorm_diag),
    "SymSqNorm": Function("ee", _symsqnorm),
    "WeightedSqNorm": Function("ee", _weighted_sqnorm),
    "WeightedSqDist": Function("eee", lambda s, f, g: _weighted_sqnorm(s, f - g)),
    "IntCst": Function("i", _intcst, usage="IntCst(n)"),
    "IntInv": Function("i", _intinv, usage="IntInv(n) = 1/n"),
    "Zero": Function("i", _zero, usage="Zero(dim)"),
}
