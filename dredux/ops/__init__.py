"""The operations of the formula language: one record per operation.

An :class:`OpDef` keeps everything about one primitive together, as KeOps
keeps each op's derivative, emitter and reference in one place: its name in
formulas, argument kinds, dimension rule, NumPy reference, derivative (VJP),
cost, and its C spelling (shared by the C++ and CUDA backends; CUDA may add a
fast-math spelling). :class:`Op` is the enum of the records, generated from
them, and ``OPS`` maps each member to its record; the stages of dredux read
the records and never branch on an op's name.

The records live in :mod:`.elementwise` (ops applied component by component),
:mod:`.vector` (reductions over a vector, indexing, products),
:mod:`.complex` (the parts of complex vectors, interleaved) and :mod:`.special`
(B-splines and soft-DTW, each a loop of its own); leaves and
the derivative placeholders are defined here. Adding a unary op is one call
of :func:`~dredux.ops.elementwise.unary` in ``elementwise.py`` plus its
``_dr_*`` function in ``kernels/cpu/math.hpp`` and ``kernels/cuda/math.cuh``
(docs/design.md has a worked example).

Nothing here imports the node type at import time (:mod:`dredux.ir` imports
this package): derivative rules build nodes when they run.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["OpDef", "Op", "OPS", "PRIMITIVES", "DimError", "ParamError", "LimitError",
           "NoDerivative",
           "LEAF", "COMPUTE", "DERIVATIVE"]

LEAF, COMPUTE, DERIVATIVE = "leaf", "compute", "derivative"


class DimError(ValueError):
    """Operand dimensions do not fit an operation (the parser adds the position)."""


class ParamError(DimError):
    """An operation's argument is invalid in itself, whatever the dimensions: an
    integer parameter out of its range (IntInv(0), a B-spline order < 0, an
    axis list that is no permutation), or a derivative taken with respect to a
    formula instead of a variable. The parser does not call it a dimension
    mismatch."""


class LimitError(DimError):
    """A node would pass one of the limits of :mod:`dredux.limits`."""


@dataclass(frozen=True)
class NoDerivative:
    """A VJP's entry for an operand in which the op has no derivative (the knots of
    a B-spline): differentiating through that operand is an error with this
    message; an operand that does not depend on the variable is skipped as usual."""

    message: str


@dataclass(frozen=True, eq=False)
class OpDef:
    """Everything about one operation.

    Attributes
    ----------
    name : str
        Name of the :class:`Op` member (``"EXP"``).
    keops : str
        The operation's name in formulas, as KeOps spells it (``"Exp"``).
    arity : int
        Number of child expressions.
    dims : callable
        ``(child_dims, params) -> dim``; raises :class:`DimError`.
    numpy : callable
        ``(ctx, node, *child_values) -> array``: the reference, on arrays whose
        last axis is the vector dimension and whose leading axes broadcast
        (``ctx.xp`` is NumPy or CuPy, ``ctx.dtype`` the computation dtype).
    vjp : callable
        ``(node, g) -> tuple``: the cotangent of each child given the cotangent
        ``g`` of the node (None where the derivative is zero almost everywhere,
        a :class:`NoDerivative` where there is none).
        Elementwise rules are written for equal dimensions. With ``vjp_needs``,
        ``(node, g, needed)``: ``needed[k]`` says whether child k depends on
        the variable (a rule whose cotangents share work can skip the others).
    c : str or callable
        C spelling. Elementwise ops: an expression template with ``{0}``,
        ``{1}``... for the operands' components, or ``(operands, node) -> str``.
        Other ops: a statement generator ``(renderer, node, out) -> lines``,
        ``out(k)`` being the lvalue of component k of the result.
    fast : str, optional
        CUDA spelling with fast float32 intrinsics (``use_fast_math``).
    signature : str
        Argument kinds in formulas: ``e`` expression, ``i`` integer, ``l`` list
        of integers; letters after ``|`` are optional. Integers become params.
    usage : str
        How to call it, for messages.
    elementwise : bool
        Output component k depends on component k of each child only, with
        dimension-1 children broadcast.
    linear : tuple of int
        Children in which the op is linear (a zero there gives zero).
    additive : bool
        Linear in all children together: ``op(a + a', b + b') = op(a, b) +
        op(a', b')`` (``Add``, ``Subtract``, ``Concat``; :mod:`dredux.linear`).
    reads_once : bool
        The C spelling reads each component of each operand at most once, so
        an operand read nowhere else may be written into it (elementwise ops
        read once when the operand is not broadcast).
    cost : float
        Cost of one component relative to an add (the planner's cost model).
    param_limits : tuple of int
        The largest magnitude of each integer param in formulas (default:
        :data:`dredux.limits.MAX_PARAM`): numbers written into generated code.
    build : callable, optional
        Builds the node from the parsed arguments when they are not simply the
        operands then the params (``TensorDot`` takes KeOps's parameters).
    print_params : callable, optional
        The params as written in formulas, when they are stored otherwise.
    kind : str
        ``"compute"``; ``"leaf"`` (variables and constants) or ``"derivative"``
        (``Grad``..., replaced by :mod:`dredux.autodiff` before anything
        evaluates the formula).
    vjp_needs : bool
        ``vjp`` takes a third argument, which children need a cotangent.
    """

    name: str
    keops: str
    arity: int
    dims: Callable[[tuple[int, ...], tuple], int]
    numpy: Callable[..., Any] | None = None
    vjp: Callable[..., tuple] | None = None
    c: str | Callable[..., Any] | None = None
    fast: str | None = None
    signature: str = "e"
    usage: str = ""
    elementwise: bool = False
    linear: tuple[int, ...] = ()
    additive: bool = False
    reads_once: bool = False
    cost: float = 1.0
    param_limits: tuple[int, ...] = ()
    build: Callable[..., Any] | None = None
    print_params: Callable[[tuple], list] | None = None
    kind: str = COMPUTE
    vjp_needs: bool = False

    def __repr__(self) -> str:
        return f"<op {self.keops}>"


def _leaf_dims(dims, params):  # pragma: no cover - leaves carry their dimension
    raise DimError("leaf nodes carry their own dimension")


def _no_vjp(node, g):
    return (None,) * len(node.args)


def _grad_dims(dims, params):
    f, v, e = dims
    if e != f:
        raise DimError(f"Grad(F, v, e) needs e of the dimension of F ({f}), got dimension {e}")
    return v


def _diff_dims(dims, params):
    f, v, u = dims
    if u != v:
        raise DimError(f"Diff(F, v, u) needs u of the dimension of v ({v}), got dimension {u}")
    return f


def _laplacian_dims(dims, params):
    if dims[0] != 1:
        raise DimError(f"Laplacian(F, v) needs a scalar F, got dimension {dims[0]}")
    return 1


def _divergence_dims(dims, params):
    f, v = dims
    if f != v:
        raise DimError(f"Divergence(F, v) needs F of the dimension of v ({v}), got "
                       f"dimension {f}")
    return 1


def _gradmatrix_dims(dims, params):
    f, v = dims
    return f * v  # Expr checks it against MAX_DIM


_SPECIAL = [
    OpDef("VAR", "Var", 0, _leaf_dims, vjp=_no_vjp, kind=LEAF),
    OpDef("CONST", "Const", 0, _leaf_dims, vjp=_no_vjp, kind=LEAF),
    # placeholders of the parser, expanded by dredux.autodiff.differentiate
    OpDef("GRAD", "Grad", 3, _grad_dims, kind=DERIVATIVE, usage="Grad(F, v, e) or Grad(F, v)"),
    OpDef("DIFF", "Diff", 3, _diff_dims, kind=DERIVATIVE, usage="Diff(F, v, u)"),
    OpDef("LAPLACIAN", "Laplacian", 2, _laplacian_dims, kind=DERIVATIVE,
          usage="Laplacian(F, v)"),
    OpDef("DIVERGENCE", "Divergence", 2, _divergence_dims, kind=DERIVATIVE,
          usage="Divergence(F, v) with F of the dimension of v"),
    OpDef("GRADMATRIX", "GradMatrix", 2, _gradmatrix_dims, kind=DERIVATIVE,
          usage="GradMatrix(F, v)"),
]


def _collect() -> list[OpDef]:
    from . import complex, elementwise, special, vector

    return [*_SPECIAL, *elementwise.DEFS, *vector.DEFS, *complex.DEFS, *special.DEFS]


_DEFS = _collect()

Op = enum.Enum("Op", [(d.name, d.keops) for d in _DEFS], module=__name__, qualname="Op")
Op.__doc__ = "The operations; the value is the name in formulas. ``OPS[op]`` is the record."

OPS: dict[Op, OpDef] = {Op[d.name]: d for d in _DEFS}
PRIMITIVES = frozenset(op for op, d in OPS.items() if d.kind == COMPUTE)  # what kernels compute
