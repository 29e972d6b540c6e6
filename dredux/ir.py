"""The formula IR: one interned node type, the operation enum and its table.

Every stage of dredux speaks this IR. An :class:`Expr` is an immutable node
``(op, args, params, dim)``: ``args`` are child nodes, ``params`` hold the
integer or float parameters of the operation (an index, an exponent, a
constant's value, a variable's position and category) and ``dim`` is the
length of the vector the node computes for one (i, j) pair.

Nodes are interned: building the same node twice returns the same object, so
equality is identity, common subexpressions are shared for free (the tree is a
DAG) and ``Expr.key`` (a sha256 of the canonical text) is a stable structural
key usable across processes.

``OPS`` is the operation table: one row per :class:`Op` with its arity and its
dimension rule. Other stages keep their own table keyed by ``Op`` (NumPy
reference, derivative, C++ and CUDA spellings); ``tests/unit/test_tables.py``
fails if any table misses an op.
"""

from __future__ import annotations

import enum
import hashlib
import math
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = [
    "Cat", "Op", "OpSpec", "OPS", "Expr", "DimError",
    "var", "const", "zero", "walk", "variables",
]


class Cat(enum.IntEnum):
    """Variable categories, numbered as in KeOps."""

    I = 0  # noqa: E741  one value per output row  (KeOps Vi)
    J = 1  # one value per reduced index          (KeOps Vj)
    P = 2  # parameter, the same for every pair   (KeOps Pm)
    DUMMY = 3  # created by forward-mode autodiff, never bound to an argument


class Op(enum.Enum):
    """Primitive operations. The value is the KeOps name used when printing."""

    VAR = "Var"
    CONST = "Const"
    # arithmetic
    ADD = "Add"
    SUB = "Subtract"
    MUL = "Mult"
    DIV = "Divide"
    NEG = "Minus"
    # comparisons (1.0 where true, 0.0 where false)
    EQ = "Equal"
    NE = "NotEqual"
    LT = "LessThan"
    LE = "LessOrEqual"
    GT = "GreaterThan"
    GE = "GreaterOrEqual"
    # element-wise maths
    EXP = "Exp"
    LOG = "Log"
    XLOGX = "XLogX"
    SIN = "Sin"
    COS = "Cos"
    ASIN = "Asin"
    ACOS = "Acos"
    ATAN = "Atan"
    SINXDIVX = "SinXDivX"
    SQRT = "Sqrt"
    RSQRT = "Rsqrt"
    SQUARE = "Square"
    INV = "Inv"
    ABS = "Abs"
    SIGN = "Sign"
    STEP = "Step"
    RELU = "ReLU"
    FLOOR = "Floor"
    ROUND = "Round"
    POW = "Pow"
    POWF = "Powf"
    ATAN2 = "Atan2"
    CLAMP = "Clamp"
    CLAMPINT = "ClampInt"
    IFELSE = "IfElse"
    MOD = "Mod"
    # vector operations
    SUM = "Sum"
    SUMT = "SumT"
    MAX = "Max"
    MIN = "Min"
    ARGMAX = "ArgMax"
    ARGMIN = "ArgMin"
    SCALPROD = "Scalprod"
    # indexing and algebra
    ELEM = "Elem"
    ELEMT = "ElemT"
    EXTRACT = "Extract"
    EXTRACTT = "ExtractT"
    CONCAT = "Concat"
    ONEHOT = "OneHot"
    MATVECMULT = "MatVecMult"
    VECMATMULT = "VecMatMult"
    TENSORPROD = "TensorProd"
    TENSORDOT = "TensorDot"


class DimError(ValueError):
    """Operand dimensions do not fit an operation (the parser adds the position)."""


# --------------------------------------------------------------------------
# dimension rules: (child dims, params) -> output dim, or raise DimError
# --------------------------------------------------------------------------

def _broadcast(op: Op) -> Callable[[tuple[int, ...], tuple], int]:
    def rule(dims: tuple[int, ...], params: tuple) -> int:
        out = max(dims)
        if any(d not in (1, out) for d in dims):
            shown = " and ".join(str(d) for d in dims)
            raise DimError(
                f"{op.value} got operands of dimensions {shown}; expected equal "
                "dimensions, or dimension 1 for an operand to broadcast")
        return out
    return rule


def _same(dims: tuple[int, ...], params: tuple) -> int:
    return dims[0]


def _scalar_out(dims: tuple[int, ...], params: tuple) -> int:
    return 1


def _leaf(dims: tuple[int, ...], params: tuple) -> int:  # pragma: no cover - dim is given
    raise DimError("leaf nodes carry their own dimension")


def _require_scalar(op: Op, d: int, what: str = "its operand") -> None:
    if d != 1:
        raise DimError(f"{op.value} needs {what} to be of dimension 1, got dimension {d}")


def _sumt(dims, params):
    _require_scalar(Op.SUMT, dims[0])
    (d,) = params
    if d < 1:
        raise DimError(f"SumT needs an output dimension >= 1, got {d}")
    return d


def _scalprod(dims, params):
    if dims[0] != dims[1]:
        raise DimError(
            f"Scalprod (|) got operands of dimensions {dims[0]} and {dims[1]}; "
            "expected equal dimensions")
    return 1


def _elem(dims, params):
    (m,) = params
    if not 0 <= m < dims[0]:
        raise DimError(
            f"Elem index {m} is out of range for an operand of dimension {dims[0]}; "
            f"expected 0 <= index < {dims[0]}")
    return 1


def _elemt(dims, params):
    _require_scalar(Op.ELEMT, dims[0])
    n, m = params
    if n < 1 or not 0 <= m < n:
        raise DimError(f"ElemT(f, n={n}, m={m}) needs n >= 1 and 0 <= m < n")
    return n


def _extract(dims, params):
    start, d = params
    if d < 1 or start < 0 or start + d > dims[0]:
        raise DimError(
            f"Extract(f, start={start}, dim={d}) is out of range for an operand of "
            f"dimension {dims[0]}; expected start >= 0, dim >= 1 and start + dim <= "
            f"{dims[0]}")
    return d


def _extractt(dims, params):
    start, d = params
    if start < 0 or start + dims[0] > d:
        raise DimError(
            f"ExtractT(f, start={start}, dim={d}) cannot place an operand of "
            f"dimension {dims[0]}; expected start >= 0 and start + {dims[0]} <= dim")
    return d


def _concat(dims, params):
    return dims[0] + dims[1]


def _onehot(dims, params):
    _require_scalar(Op.ONEHOT, dims[0])
    (d,) = params
    if d < 1:
        raise DimError(f"OneHot needs a length >= 1, got {d}")
    return d


def _matvec(dims, params):
    a, v = dims
    if a % v:
        raise DimError(
            f"MatVecMult(A, v) got A of dimension {a} and v of dimension {v}; "
            f"expected the dimension of A to be a multiple of {v} (A is n x {v}, "
            "stored row by row)")
    return a // v


def _vecmat(dims, params):
    v, a = dims
    if a % v:
        raise DimError(
            f"VecMatMult(v, A) got v of dimension {v} and A of dimension {a}; "
            f"expected the dimension of A to be a multiple of {v} (A is {v} x n, "
            "stored row by row)")
    return a // v


def _tensorprod(dims, params):
    return dims[0] * dims[1]


def _tensordot(dims, params):
    dims_a, dims_b, sub_a, sub_b, sub_out, out_shape = params
    if math.prod(dims_a) != dims[0] or math.prod(dims_b) != dims[1]:
        raise DimError(
            f"TensorDot got operands of dimensions {dims[0]} and {dims[1]} but shapes "
            f"{list(dims_a)} and {list(dims_b)} (products {math.prod(dims_a)} and "
            f"{math.prod(dims_b)}); expected the shapes to multiply to the dimensions")
    return math.prod(out_shape)


@dataclass(frozen=True)
class OpSpec:
    """One row of the operation table.

    Attributes
    ----------
    arity : int
        Number of child expressions.
    dims : callable
        ``(child_dims, params) -> dim``; raises :class:`DimError`.
    elementwise : bool
        Output component k depends on component k of each child only, with
        dimension-1 children broadcast (``Add``, ``Exp``, ``IfElse``...).
    linear : tuple of int
        Children in which the operation is linear: a zero there gives zero.
    """

    arity: int
    dims: Callable[[tuple[int, ...], tuple], int]
    elementwise: bool = False
    linear: tuple[int, ...] = ()


def _ew(op: Op, arity: int, linear: tuple[int, ...] = ()) -> OpSpec:
    rule = _same if arity == 1 else _broadcast(op)
    return OpSpec(arity, rule, elementwise=True, linear=linear)


OPS: dict[Op, OpSpec] = {
    Op.VAR: OpSpec(0, _leaf),
    Op.CONST: OpSpec(0, _leaf),
    Op.ADD: _ew(Op.ADD, 2),
    Op.SUB: _ew(Op.SUB, 2),
    Op.MUL: _ew(Op.MUL, 2, linear=(0, 1)),
    Op.DIV: _ew(Op.DIV, 2, linear=(0,)),
    Op.NEG: _ew(Op.NEG, 1, linear=(0,)),
    Op.EQ: _ew(Op.EQ, 2),
    Op.NE: _ew(Op.NE, 2),
    Op.LT: _ew(Op.LT, 2),
    Op.LE: _ew(Op.LE, 2),
    Op.GT: _ew(Op.GT, 2),
    Op.GE: _ew(Op.GE, 2),
    Op.EXP: _ew(Op.EXP, 1),
    Op.LOG: _ew(Op.LOG, 1),
    Op.XLOGX: _ew(Op.XLOGX, 1),
    Op.SIN: _ew(Op.SIN, 1, linear=()),
    Op.COS: _ew(Op.COS, 1),
    Op.ASIN: _ew(Op.ASIN, 1),
    Op.ACOS: _ew(Op.ACOS, 1),
    Op.ATAN: _ew(Op.ATAN, 1),
    Op.SINXDIVX: _ew(Op.SINXDIVX, 1),
    Op.SQRT: _ew(Op.SQRT, 1),
    Op.RSQRT: _ew(Op.RSQRT, 1),
    Op.SQUARE: _ew(Op.SQUARE, 1),
    Op.INV: _ew(Op.INV, 1),
    Op.ABS: _ew(Op.ABS, 1),
    Op.SIGN: _ew(Op.SIGN, 1),
    Op.STEP: _ew(Op.STEP, 1),
    Op.RELU: _ew(Op.RELU, 1),
    Op.FLOOR: _ew(Op.FLOOR, 1),
    Op.ROUND: _ew(Op.ROUND, 1),
    Op.POW: _ew(Op.POW, 1),
    Op.POWF: _ew(Op.POWF, 2),
    Op.ATAN2: _ew(Op.ATAN2, 2),
    Op.CLAMP: _ew(Op.CLAMP, 3),
    Op.CLAMPINT: _ew(Op.CLAMPINT, 1),
    Op.IFELSE: _ew(Op.IFELSE, 3),
    Op.MOD: _ew(Op.MOD, 3),
    Op.SUM: OpSpec(1, _scalar_out, linear=(0,)),
    Op.SUMT: OpSpec(1, _sumt, linear=(0,)),
    Op.MAX: OpSpec(1, _scalar_out),
    Op.MIN: OpSpec(1, _scalar_out),
    Op.ARGMAX: OpSpec(1, _scalar_out),
    Op.ARGMIN: OpSpec(1, _scalar_out),
    Op.SCALPROD: OpSpec(2, _scalprod, linear=(0, 1)),
    Op.ELEM: OpSpec(1, _elem, linear=(0,)),
    Op.ELEMT: OpSpec(1, _elemt, linear=(0,)),
    Op.EXTRACT: OpSpec(1, _extract, linear=(0,)),
    Op.EXTRACTT: OpSpec(1, _extractt, linear=(0,)),
    Op.CONCAT: OpSpec(2, _concat),
    Op.ONEHOT: OpSpec(1, _onehot),
    Op.MATVECMULT: OpSpec(2, _matvec, linear=(0, 1)),
    Op.VECMATMULT: OpSpec(2, _vecmat, linear=(0, 1)),
    Op.TENSORPROD: OpSpec(2, _tensorprod, linear=(0, 1)),
    Op.TENSORDOT: OpSpec(2, _tensordot, linear=(0, 1)),
}


# --------------------------------------------------------------------------
# the node type
# --------------------------------------------------------------------------

_INTERN: weakref.WeakValueDictionary[tuple, Expr] = weakref.WeakValueDictionary()
_INTERN_LOCK = threading.Lock()


class Expr:
    """One node of a formula. Build nodes with ``Expr(op, args, params)``.

    The dimension is computed by the op's dims rule (``DimError`` when the
    operands do not fit); leaves (``VAR``, ``CONST``) pass ``dim`` explicitly.
    Arithmetic operators build raw nodes (no simplification), which keeps the
    derivative rules in :mod:`dredux.autodiff` readable.
    """

    __slots__ = ("op", "args", "params", "dim", "_hash", "_key", "__weakref__")

    op: Op
    args: tuple[Expr, ...]
    params: tuple
    dim: int

    def __new__(cls, op: Op, args: tuple[Expr, ...] = (), params: tuple = (),
                dim: int | None = None) -> Expr:
        args = tuple(args)
        params = tuple(params)
        spec = OPS[op]
        if len(args) != spec.arity:
            raise DimError(f"{op.value} takes {spec.arity} operands, got {len(args)}")
        if dim is None:
            dim = spec.dims(tuple(a.dim for a in args), params)
        dim = int(dim)
        ident = (op, args, params, dim)
        with _INTERN_LOCK:
            node = _INTERN.get(ident)
            if node is None:
                node = object.__new__(cls)
                for name, value in zip(("op", "args", "params", "dim"), ident):
                    object.__setattr__(node, name, value)
                object.__setattr__(node, "_hash", hash(ident))
                object.__setattr__(node, "_key", None)
                _INTERN[ident] = node
        return node

    def __setattr__(self, name, value):
        raise AttributeError("Expr nodes are immutable")

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other) -> bool:
        return self is other

    def __reduce__(self):
        return (Expr, (self.op, self.args, self.params, self.dim))

    # structural key ------------------------------------------------------
    @property
    def key(self) -> str:
        """sha256 hex digest of the canonical text: equal across processes."""
        if self._key is None:
            object.__setattr__(
                self, "_key", hashlib.sha256(canonical(self).encode()).hexdigest())
        return self._key

    def __repr__(self) -> str:
        from .printing import to_formula

        return f"Expr({to_formula(self)!r}, dim={self.dim})"

    def __str__(self) -> str:
        from .printing import to_formula

        return to_formula(self)

    # arithmetic sugar for rule tables ---------------------------------------
    def __add__(self, other):
        return Expr(Op.ADD, (self, _lift(other)))

    def __radd__(self, other):
        return Expr(Op.ADD, (_lift(other), self))

    def __sub__(self, other):
        return Expr(Op.SUB, (self, _lift(other)))

    def __rsub__(self, other):
        return Expr(Op.SUB, (_lift(other), self))

    def __mul__(self, other):
        return Expr(Op.MUL, (self, _lift(other)))

    def __rmul__(self, other):
        return Expr(Op.MUL, (_lift(other), self))

    def __truediv__(self, other):
        return Expr(Op.DIV, (self, _lift(other)))

    def __rtruediv__(self, other):
        return Expr(Op.DIV, (_lift(other), self))

    def __neg__(self):
        return Expr(Op.NEG, (self,))

    # small helpers -------------------------------------------------------
    @property
    def is_const(self) -> bool:
        return self.op is Op.CONST

    @property
    def value(self) -> float:
        """The value of a ``CONST`` node."""
        if self.op is not Op.CONST:
            raise TypeError(f"{self} is not a constant")
        return self.params[0]

    def is_zero(self) -> bool:
        return self.op is Op.CONST and self.params[0] == 0

    def is_one(self) -> bool:
        return self.op is Op.CONST and self.params[0] == 1


def _lift(x) -> Expr:
    if isinstance(x, Expr):
        return x
    if isinstance(x, (int, float)):
        return const(x)
    raise TypeError(f"cannot use {x!r} in a formula")


def canonical(root: Expr) -> str:
    """A canonical text for ``root``, shared subtrees written once (by index)."""
    ids: dict[Expr, int] = {}
    lines = []
    for node in walk(root):
        ids[node] = len(ids)
        params = ",".join(repr(p) for p in node.params)
        args = ",".join(str(ids[a]) for a in node.args)
        lines.append(f"{node.op.name}[{params}]({args}):{node.dim}")
    return ";".join(lines)


def walk(root: Expr, seen: set[Expr] | None = None) -> Iterator[Expr]:
    """Yield every distinct node of ``root``'s DAG, children before parents.

    With ``seen``, nodes in it (and what lies only below them) are skipped and
    every yielded node is added to it, so that walks over several roots sharing
    one set visit each node once.
    """
    seen = set() if seen is None else seen
    stack: list[tuple[Expr, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            yield node
            continue
        if node in seen:
            continue
        seen.add(node)
        stack.append((node, True))
        for child in reversed(node.args):
            if child not in seen:
                stack.append((child, False))


def variables(root: Expr) -> list[Expr]:
    """The distinct ``VAR`` nodes of ``root``, ordered by (category, position)."""
    found = {n for n in walk(root) if n.op is Op.VAR}
    return sorted(found, key=lambda n: (n.params[1], n.params[0]))


# --------------------------------------------------------------------------
# leaf constructors
# --------------------------------------------------------------------------

def var(pos: int, dim: int, cat: Cat | int) -> Expr:
    """The variable at argument position ``pos`` with ``dim`` values per row."""
    if dim < 1:
        raise DimError(f"a variable needs a dimension >= 1, got {dim}")
    return Expr(Op.VAR, (), (int(pos), int(Cat(cat))), dim)


def const(value: float, dim: int = 1) -> Expr:
    """A constant vector of ``dim`` equal values."""
    value = float(value) if not isinstance(value, int) else value
    if isinstance(value, float) and not math.isfinite(value):
        # rules fold only into finite values; a renderer never sees inf or NaN
        raise ValueError(f"a formula constant must be finite, got {value}")
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        value = int(value)  # one node for 2 and 2.0
    return Expr(Op.CONST, (), (value,), dim)


def zero(dim: int = 1) -> Expr:
    return const(0, dim)
