"""The formula IR: one interned node type.

Every stage of dredux speaks this IR. An :class:`Expr` is an immutable node
``(op, args, params, dim)``: ``op`` is a member of :class:`~dredux.ops.Op`,
``args`` are child nodes, ``params`` hold the integer or float parameters of
the operation (an index, an exponent, a constant's value, a variable's
position and category) and ``dim`` is the length of the vector the node
computes for one (i, j) pair.

Nodes are interned: building the same node twice returns the same object, so
equality is identity, common subexpressions are shared for free (the tree is a
DAG) and ``Expr.key`` (a sha256 of the canonical text) is a stable structural
key usable across processes. Everything about an operation (dimension rule,
reference, derivative, spelling) is its record ``OPS[op]`` in :mod:`dredux.ops`.
"""

from __future__ import annotations

import enum
import hashlib
import math
import threading
import weakref
from collections.abc import Iterator

from .limits import MAX_DIM
from .ops import OPS, DimError, LimitError, Op, OpDef, ParamError

__all__ = [
    "Cat", "Op", "OpDef", "OPS", "Expr", "DimError", "ParamError",
    "var", "const", "zero", "walk", "walk_all", "variables", "flatten", "unflatten",
]


class Cat(enum.IntEnum):
    """Variable categories, numbered as in KeOps."""

    I = 0  # noqa: E741  one value per output row  (KeOps Vi)
    J = 1  # one value per reduced index          (KeOps Vj)
    P = 2  # parameter, the same for every pair   (KeOps Pm)
    DUMMY = 3  # created by forward-mode autodiff, never bound to an argument


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
        if dim > MAX_DIM:
            raise LimitError(f"{op.value} would have dimension {dim}, more than the limit "
                             f"of {MAX_DIM}")
        # floats are told from equal ints and -0.0 from 0 (they compare equal)
        ident = (op, args, tuple((float, p, math.copysign(1.0, p)) if type(p) is float else p
                                 for p in params), dim)
        with _INTERN_LOCK:
            node = _INTERN.get(ident)
            if node is None:
                node = object.__new__(cls)
                for name, value in zip(("op", "args", "params", "dim"),
                                       (op, args, params, dim)):
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
        if not self.args:
            return (Expr, (self.op, (), self.params, self.dim))
        # flat (children first): pickling nested nodes would recurse once per level
        return (_load_expr, (flatten((self,)),))

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

        return f"Expr({to_formula(self, limit=1000)!r}, dim={self.dim})"

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


def flatten(roots) -> tuple:
    """The DAG of ``roots`` as a flat tuple of ``(op, child indices, params, dim)``,
    children first, then the indices of the roots: picklable at any depth
    (pickling nested nodes recurses once per level)."""
    ids: dict[Expr, int] = {}
    nodes = []
    seen: set[Expr] = set()
    for root in roots:
        for node in walk(root, seen):
            ids[node] = len(nodes)
            nodes.append((node.op, tuple(ids[a] for a in node.args), node.params, node.dim))
    return tuple(nodes), tuple(ids[r] for r in roots)


def unflatten(flat: tuple) -> tuple[Expr, ...]:
    """The roots of a :func:`flatten` result."""
    nodes, roots = flat
    built: list[Expr] = []
    for op, args, params, dim in nodes:
        built.append(Expr(op, tuple(built[k] for k in args), params, dim))
    return tuple(built[k] for k in roots)


def _load_expr(flat: tuple) -> Expr:
    return unflatten(flat)[0]


def walk_all(roots) -> Iterator[Expr]:
    """Every distinct node of several roots, each once, children first."""
    seen: set[Expr] = set()
    for root in roots:
        yield from walk(root, seen)


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
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53 and (
            value != 0 or math.copysign(1.0, value) > 0):
        value = int(value)  # one node for 2 and 2.0 (-0.0 keeps its sign: Atan2 sees it)
    return Expr(Op.CONST, (), (value,), dim)


def zero(dim: int = 1) -> Expr:
    return const(0, dim)
