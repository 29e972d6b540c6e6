"""The callable names of the formula language: one row per name.

``FUNCTIONS`` maps each name (``"Exp"``, ``"SqDist"``, ``"TensorDot"``...) to
its argument kinds and a builder. The primitives come from the op records of
:mod:`dredux.ops` (each under its KeOps name, building one node); the
composite names (``SqDist``, ``Norm2``, ``WeightedSqNorm``...) are one row
each here and expand into primitives. The parser (:mod:`dredux.parse`) calls
the builders with the parsed arguments; a builder raises
:class:`~dredux.ir.DimError` when dimensions do not fit, and the parser turns
it into a ``FormulaError`` placed under the call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from .ir import OPS, DimError, Expr, Op, ParamError, const, zero
from .limits import MAX_PARAM
from .ops import COMPUTE

__all__ = ["Function", "FUNCTIONS"]



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
    param_limits: tuple[int, ...] = ()

    def limit(self, position: int) -> int:
        """The largest magnitude allowed for the integer argument at ``position``."""
        k = self.signature.replace("|", "")[:position].count("i")
        return self.param_limits[k] if k < len(self.param_limits) else MAX_PARAM


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
    allowed = "1" if f.dim == 1 else f"1, {f.dim} or {f.dim ** 2}"
    _require(s.dim == f.dim ** 2,
             f"WeightedSqNorm(s, f) needs s of dimension {allowed} for f of dimension "
             f"{f.dim}, got {s.dim}")
    return _symsqnorm(s, f)


def _intcst(n):
    return const(n)


def _intinv(n):
    if n == 0:
        raise ParamError("IntInv(0) is a division by zero; expected a non-zero integer")
    return const(1.0 / n)


def _zero(d):
    if d < 1:
        raise ParamError(f"Zero(dim) needs dim >= 1, got {d}")
    return zero(d)


def _diffclampint(f, a, b):
    # KeOps's DiffClampInt, the derivative of ClampInt: (f < a) ? 0 : ((f > b) ? 0 : 1),
    # so 1 on [a, b] bounds included, and 1 at NaN (both comparisons are false)
    return (1 - Expr(Op.LT, (f, const(a)))) * (1 - Expr(Op.GT, (f, const(b))))


# complex operations: the parts of interleaved complex vectors (dredux.ops.complex)

def _complex_operand(name: str, z: Expr) -> None:
    _require(z.dim % 2 == 0, f"{name} needs a complex operand (an even dimension: real "
             f"and imaginary parts interleaved), got dimension {z.dim}")


def _parts(name: str, z: Expr) -> tuple[Expr, Expr]:
    _complex_operand(name, z)
    return Expr(Op.COMPLEXREAL, (z,)), Expr(Op.COMPLEXIMAG, (z,))


def _pack(re: Expr, im: Expr) -> Expr:
    return Expr(Op.COMPLEX, (re, im))


def _complex_pair(name: str, f: Expr, g: Expr):
    """The parts of two complex operands of equal dimensions, or one of them a
    complex scalar (dimension 2) that broadcasts, as in KeOps."""
    _complex_operand(name, f)
    _complex_operand(name, g)
    _require(f.dim == g.dim or 2 in (f.dim, g.dim),
             f"{name} got complex operands of dimensions {f.dim} and {g.dim}; expected "
             "equal dimensions, or dimension 2 (one complex number) for one to broadcast")
    return (*_parts(name, f), *_parts(name, g))


def _complex_mult(f, g):
    a, b, c, d = _complex_pair("ComplexMult", f, g)
    return _pack(a * c - b * d, a * d + b * c)


def _complex_divide(f, g):
    a, b, c, d = _complex_pair("ComplexDivide", f, g)
    s = Expr(Op.SQUARE, (c,)) + Expr(Op.SQUARE, (d,))
    return _pack((a * c + b * d) / s, (b * c - a * d) / s)


def _complex_add(f, g):
    a, b, c, d = _complex_pair("ComplexAdd", f, g)
    return _pack(a + c, b + d)


def _complex_subtract(f, g):
    a, b, c, d = _complex_pair("ComplexSubtract", f, g)
    return _pack(a - c, b - d)


def _complex_real_scal(f, g):
    if f.dim != 1:
        f, g = g, f
    _require(f.dim == 1, f"ComplexRealScal(f, g) needs a real scalar (dimension 1) and a "
             f"complex vector, got dimensions {g.dim} and {f.dim}")
    _complex_operand("ComplexRealScal", g)
    return f * g


def _conj(z):
    re, im = _parts("Conj", z)
    return _pack(re, -im)


def _complex_exp(z):
    re, im = _parts("ComplexExp", z)
    r = Expr(Op.EXP, (re,))
    return _pack(r * Expr(Op.COS, (im,)), r * Expr(Op.SIN, (im,)))


def _complex_square_abs(z):
    re, im = _parts("ComplexSquareAbs", z)
    return Expr(Op.SQUARE, (re,)) + Expr(Op.SQUARE, (im,))


def _complex_angle(z):
    re, im = _parts("ComplexAngle", z)
    return Expr(Op.ATAN2, (im, re))


def _complex_sum(z):
    re, im = _parts("ComplexSum", z)
    return _pack(Expr(Op.SUM, (re,)), Expr(Op.SUM, (im,)))


def _complex_sumt(z, d):
    _require(z.dim == 2, f"ComplexSumT(z, dim) needs one complex number z (dimension 2), "
             f"got dimension {z.dim}")
    _require(d >= 2 and d % 2 == 0, f"ComplexSumT(z, dim) needs an even dim >= 2 (real and "
             f"imaginary parts interleaved), got {d}")
    re, im = _parts("ComplexSumT", z)
    return _pack(Expr(Op.SUMT, (re,), (d // 2,)), Expr(Op.SUMT, (im,), (d // 2,)))


def _kron(fa, fb, dimsfa, dimsfb):
    # KeOps's Kron: np.kron of fa and fb reshaped to dimsfa and dimsfb, flattened: a
    # TensorDot without contraction whose output interleaves the axes (a0, b0, a1, b1...)
    _require(len(dimsfa) == len(dimsfb) and len(dimsfa) > 0,
             f"Kron(a, b, dims a, dims b) needs two shapes of the same number of axes, "
             f"got {list(dimsfa)} and {list(dimsfb)}")
    n = len(dimsfa)
    permute = [*range(0, 2 * n, 2), *range(1, 2 * n, 2)]
    return OPS[Op.TENSORDOT].build(fa, fb, dimsfa, dimsfb, [], [], permute)


def _primitives() -> dict[str, Function]:
    """One row per computing op of :mod:`dredux.ops`, under its KeOps name."""
    out = {}
    for op, record in OPS.items():
        if record.kind == COMPUTE:
            function = (Function(record.signature, record.build, op, record.usage)
                        if record.build else _primitive(op, record.signature, record.usage))
            out[record.keops] = replace(function, param_limits=record.param_limits)
    return out


FUNCTIONS: dict[str, Function] = {
    **_primitives(),
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
    "DiffClampInt": Function("eii", _diffclampint,
                             usage="DiffClampInt(f, a, b) = 1 where a <= f <= b, else 0"),
    "IntCst": Function("i", _intcst, usage="IntCst(n)"),
    "IntInv": Function("i", _intinv, usage="IntInv(n) = 1/n"),
    "Zero": Function("i", _zero, usage="Zero(dim)"),
    "Kron": Function("eell", _kron, usage="Kron(a, b, [dims a], [dims b])"),
    # complex operations, on interleaved parts (KeOps's names and layout)
    "Real2Complex": Function("e", lambda f: _pack(f, zero(f.dim))),
    "Imag2Complex": Function("e", lambda f: _pack(zero(f.dim), f)),
    "ComplexExp1j": Function("e", lambda f: _pack(Expr(Op.COS, (f,)), Expr(Op.SIN, (f,)))),
    "Conj": Function("e", _conj),
    "ComplexExp": Function("e", _complex_exp),
    "ComplexSquareAbs": Function("e", _complex_square_abs),
    "ComplexAbs": Function("e", lambda z: Expr(Op.SQRT, (_complex_square_abs(z),))),
    "ComplexAngle": Function("e", _complex_angle),
    "ComplexSum": Function("e", _complex_sum),
    "ComplexSumT": Function("ei", _complex_sumt, usage="ComplexSumT(z, dim)"),
    "ComplexAdd": Function("ee", _complex_add),
    "ComplexSubtract": Function("ee", _complex_subtract),
    "ComplexMult": Function("ee", _complex_mult),
    "ComplexDivide": Function("ee", _complex_divide),
    "ComplexRealScal": Function("ee", _complex_real_scal),
}
