"""Algebraic simplification: rewrite rules kept as a table.

``RULES`` maps an :class:`~dredux.ir.Op` to the rules tried on nodes of that
op; ``GENERIC`` rules are tried on every node. A rule takes a node whose
children are already simplified and returns an equivalent node of the same
dimension, or None. :func:`simplify` applies them bottom-up until nothing
changes. Rules only drop work or fold constants: on finite inputs the value
never changes beyond rounding (``tests/unit/test_simplify.py`` checks this on
random formulas).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .ir import OPS, Expr, Op, const, zero

__all__ = ["simplify", "RULES", "GENERIC"]

Rule = Callable[[Expr], Expr | None]


def _e(op: Op, *args: Expr, params: tuple = ()) -> Expr:
    return Expr(op, args, params)


def _widen(x: Expr, dim: int) -> Expr:
    """``x`` as a node of dimension ``dim`` (a dimension-1 ``x`` is repeated)."""
    if x.dim == dim:
        return x
    if x.is_const:
        return const(x.value, dim)
    return _e(Op.SUMT, x, params=(dim,))


def _scalar_const(x: Expr) -> bool:
    return x.is_const and x.dim == 1


# Constant rewrites must give the same numbers as the formula they replace, in
# float32 as in float64 (the program is simplified before its dtype is known).
# Scaling by 2^k is exact while everything stays a normal number, so these are
# the rewrites that are: x / c -> (1/c) * x for c = +-2^k, and c1 * (c2 * x) ->
# (c1 c2) * x when c1 or c2 is +-2^k; both need every constant normal in float32.
_NORMAL32 = (2.0 ** -126, float(np.finfo(np.float32).max))


def _normal32(c: float) -> bool:
    return _NORMAL32[0] <= abs(c) <= _NORMAL32[1]


def _power_of_two(c: float) -> bool:
    return c != 0 and math.isfinite(c) and abs(math.frexp(c)[0]) == 0.5 and _normal32(c)


def _exact_product(c1: float, c2: float) -> float | None:
    """c1 * c2 when ``c1 * (c2 * x) == (c1 * c2) * x`` for every x, else None."""
    if not (_power_of_two(c1) or _power_of_two(c2)):
        return None
    product = c1 * c2
    return product if _normal32(c1) and _normal32(c2) and _normal32(product) else None


# generic rules -------------------------------------------------------------

def _fold_constants(n: Expr) -> Expr | None:
    """Evaluate a node whose children are all constants (uniform result only)."""
    if not n.args or not all(a.is_const for a in n.args) or OPS[n.op].numpy is None:
        return None
    from .numpy_eval import Ctx

    values = [np.full((1, a.dim), a.value, dtype=np.float64) for a in n.args]
    with np.errstate(all="ignore"):
        out = np.asarray(OPS[n.op].numpy(Ctx(np, np.dtype(np.float64)), n, *values))
    out = np.broadcast_to(out, (1, n.dim)).ravel()
    first = float(out[0])
    if not math.isfinite(first) or not np.all(out == first):
        return None
    return const(first, n.dim)


def _zero_in_linear_slot(n: Expr) -> Expr | None:
    """An op that is linear in a child gives zero when that child is zero."""
    if any(n.args[k].is_zero() for k in OPS[n.op].linear):
        return zero(n.dim)
    return None


def _repeated(a: Expr) -> bool:
    return a.op is Op.SUMT or (a.is_const and a.dim > 1)


def _broadcast_operand(n: Expr) -> Expr | None:
    """An element-wise node reads a dimension-1 operand as repeated, so a
    ``SumT(s)`` operand (autodiff's broadcast of a scalar) is read as ``s``,
    and a constant vector (its values are all equal) as its value, when another
    operand gives the node its dimension: no vector of copies, and the scalar
    rules (a scalar factor leaves a Sum) apply."""
    if not OPS[n.op].elementwise or not any(map(_repeated, n.args)):
        return None
    if not any(a.dim == n.dim and not _repeated(a) for a in n.args):
        return None
    return Expr(n.op, tuple(a.args[0] if a.op is Op.SUMT else const(a.value) if _repeated(a)
                            else a for a in n.args), n.params)


GENERIC: list[Rule] = [_fold_constants, _zero_in_linear_slot, _broadcast_operand]


# per-op rules ----------------------------------------------------------------

def _add(n: Expr) -> Expr | None:
    a, b = n.args
    if a.is_zero():
        return _widen(b, n.dim)
    if b.is_zero():
        return _widen(a, n.dim)
    if a is b:
        return 2 * a
    if b.op is Op.NEG:
        return a - b.args[0]
    if a.op is Op.NEG:
        return b - a.args[0]
    return None


def _sub(n: Expr) -> Expr | None:
    a, b = n.args
    if b.is_zero():
        return _widen(a, n.dim)
    if a.is_zero():
        return _widen(-b, n.dim)
    if a is b:
        return zero(n.dim)
    if b.op is Op.NEG:
        return a + b.args[0]
    return None


def _mul(n: Expr) -> Expr | None:
    a, b = n.args
    if b.is_const and not a.is_const:
        return b * a  # constants first: c1 * (c2 * x) folds below
    if a.is_one():
        return _widen(b, n.dim)
    if _scalar_const(a) and a.value == -1:
        return _widen(-b, n.dim)
    if a is b:
        return _e(Op.SQUARE, a)
    if a.op is Op.NEG and b.op is Op.NEG:
        return a.args[0] * b.args[0]
    # a sign goes to the product unless it sits on the scalar side of a
    # scalar-times-vector product (one negation per pair, not per component)
    if a.op is Op.NEG and a.dim >= b.dim:
        return -(a.args[0] * b)
    if b.op is Op.NEG and b.dim >= a.dim:
        return -(a * b.args[0])
    if _scalar_const(a) and b.op is Op.MUL and _scalar_const(b.args[0]):
        product = _exact_product(a.value, b.args[0].value)
        return None if product is None else const(product) * b.args[1]
    # s * (2^k * v) -> (2^k * s) * v for a scalar s and a vector v: the same
    # numbers (scaling by 2^k is exact), one product per pair fewer per component
    # (the gradient of a Gaussian: -(w * (2 * (x - y))) -> (-2 * w) * (x - y))
    for s, v in ((a, b), (b, a)):
        if (s.dim == 1 and not s.is_const and v.dim > 1 and v.op is Op.MUL
                and _scalar_const(v.args[0]) and _power_of_two(v.args[0].value)):
            return (v.args[0] * s) * v.args[1]
    if a.op is Op.EXP and b.op is Op.EXP:
        return _e(Op.EXP, a.args[0] + b.args[0])
    for t, v in ((a, b), (b, a)):
        if t.op is Op.ELEMT and t.dim == n.dim:  # one product, not one per component
            return _onehot(t, t.args[0] * _component(v, t.params[1]))
    return None


def _onehot(t: Expr, value: Expr) -> Expr:
    """``ElemT(value, D, k)`` with the dimension and index of the ElemT ``t``."""
    return _e(Op.ELEMT, value, params=t.params)


def _component(v: Expr, k: int) -> Expr:
    """Component ``k`` of ``v``, as the operand of an element-wise node reads it
    (a dimension-1 operand is repeated)."""
    return v if v.dim == 1 else _e(Op.ELEM, v, params=(k,))


def _div(n: Expr) -> Expr | None:
    a, b = n.args
    if b.is_one():
        return _widen(a, n.dim)
    if _scalar_const(b) and _power_of_two(b.value) and _power_of_two(1.0 / b.value):
        return const(1.0 / b.value) * a
    if a.op is Op.ELEMT and a.dim == n.dim:
        return _onehot(a, a.args[0] / _component(b, a.params[1]))
    return None


def _neg(n: Expr) -> Expr | None:
    (a,) = n.args
    if a.op is Op.NEG:
        return a.args[0]
    if a.op is Op.SUB:
        return a.args[1] - a.args[0]
    if a.op is Op.MUL:  # the sign on a constant, or on the scalar of scalar * vector
        p, q = a.args
        if _scalar_const(p):
            return const(-p.value) * q
        if p.dim == 1 < q.dim:
            return (-p) * q
        if q.dim == 1 < p.dim:
            return p * (-q)
    return None


def _through_neg(n: Expr) -> Expr | None:
    """Square(-x) = Square(x), Abs(-x) = Abs(x)."""
    (a,) = n.args
    return _e(n.op, a.args[0]) if a.op is Op.NEG else None


def _pow(n: Expr) -> Expr | None:
    (a,) = n.args
    p = n.params[0]
    if p == 0:
        return const(1, n.dim)
    if p == 1:
        return a
    if p == 2:
        return _e(Op.SQUARE, a)
    if p == -1:
        return _e(Op.INV, a)
    return None


def _factor(x: Expr) -> bool:
    """A scalar that may move across a sum or a product: not a constant, or a
    power of two (exact scaling); ``Sum(3 * v)`` and ``3 * Sum(v)`` round
    differently, which a constant rewrite must not."""
    return x.dim == 1 and (not x.is_const or _power_of_two(x.value))


_MAX_FACTORS = 256  # factors of a product looked at by _scalars_out_of_sum


def _scalars_out_of_sum(a: Expr) -> Expr | None:
    """``Sum(a)`` for a product ``a`` with its scalar factors outside: ``Sum(u * (s
    * v) * t) = (s * t) * Sum(u * v)``, one product per scalar instead of one
    per component, and ``Sum(u * (c * u)) = c * Sum(Square(u))`` shares the
    SqDist a formula computes anyway (the Laplacian of a Gaussian). The
    factors are found through the products of vectors, in order; only the
    sum's argument is rebuilt (a rule on every product moved scalars out of
    products that other nodes share, and the gradient of a long product lost
    its shared partial products)."""
    scalars: list[Expr] = []
    vectors: list[Expr] = []
    stack = [a]
    while stack:
        x = stack.pop()
        if x.op is Op.MUL and x.dim == a.dim:
            stack.extend(reversed(x.args))
            if len(stack) + len(scalars) + len(vectors) > _MAX_FACTORS:
                return None  # a long (or a deeply shared) product: left as it is
        else:
            (scalars if _factor(x) else vectors).append(x)
    if not scalars:
        return None
    scalar, vector = scalars[0], vectors[0]
    for x in scalars[1:]:
        scalar = scalar * x
    for x in vectors[1:]:
        vector = vector * x
    return scalar * _e(Op.SUM, vector)


def _sum(n: Expr) -> Expr | None:
    (a,) = n.args
    if a.dim == 1:
        return a
    if a.op is Op.SUMT:
        return a.dim * a.args[0]
    if a.op is Op.ELEMT:
        return a.args[0]
    if a.op is Op.MUL:
        return _scalars_out_of_sum(a)
    # Sum(v + s) is not Sum(v) + D s: where v_k is close to -s the terms cancel
    # exactly (v_k + s rounds relative to itself), the rewritten sum does not
    return None


def _sumt(n: Expr) -> Expr | None:
    (a,) = n.args
    return a if n.dim == 1 else None


def _elem(n: Expr) -> Expr | None:
    (a,) = n.args
    (m,) = n.params
    if a.dim == 1:
        return a
    if a.op is Op.ELEMT:
        return a.args[0] if a.params[1] == m else zero()
    if a.op is Op.SUMT:
        return a.args[0]
    if a.op is Op.CONCAT:
        left, right = a.args
        if m < left.dim:
            return _e(Op.ELEM, left, params=(m,))
        return _e(Op.ELEM, right, params=(m - left.dim,))
    if a.op is Op.EXTRACT:
        return _e(Op.ELEM, a.args[0], params=(a.params[0] + m,))
    if OPS[a.op].elementwise:
        # component m of an element-wise node is the node of its operands'
        # components m: one value instead of a vector of a.dim. The diagonal
        # terms of a Laplacian or a Divergence, Elem(Grad(Elem(F, k), v), k),
        # become O(1) per term instead of O(D), so O(D) in all, not O(D^2).
        # Where the vector a is computed anyway (read elsewhere too), this costs
        # the node's op once more for the component, not a second vector.
        return Expr(a.op, tuple(_component(c, m) for c in a.args), a.params)
    return None


def _extract(n: Expr) -> Expr | None:
    (a,) = n.args
    start, d = n.params
    if start == 0 and d == a.dim:
        return a
    if a.op is Op.EXTRACTT and a.params[0] == start and a.args[0].dim == d:
        return a.args[0]
    if a.op is Op.CONCAT:
        left, right = a.args
        if start + d <= left.dim:
            return _e(Op.EXTRACT, left, params=(start, d))
        if start >= left.dim:
            return _e(Op.EXTRACT, right, params=(start - left.dim, d))
    return None


def _ifelse(n: Expr) -> Expr | None:
    c, a, b = n.args
    if a is b:
        return _widen(a, n.dim)
    if c.is_const:
        return _widen(a if c.value >= 0 else b, n.dim)
    return None


def _part(n: Expr) -> Expr | None:
    """A part of a complex vector (:mod:`dredux.ops.complex`): of ``Complex(re,
    im)``, the part itself, so that chained complex operations never
    interleave their parts in between; through sums, negations, products by a
    real scalar and broadcasts, the part of each operand (a derivative's
    cotangents are sums of ``Complex`` nodes)."""
    (a,) = n.args
    real = n.op is Op.COMPLEXREAL
    if a.op is Op.COMPLEX:
        return a.args[0 if real else 1]
    if a.op is Op.SUMT:  # a real scalar repeated: both parts are the scalar
        return _e(Op.SUMT, a.args[0], params=(n.dim,))
    if a.op in (Op.ADD, Op.SUB, Op.NEG):  # a broadcast real scalar is in both parts
        return Expr(a.op, tuple(c if c.dim == 1 < a.dim else _e(n.op, c) for c in a.args))
    if a.op in (Op.MUL, Op.DIV) and a.args[0].dim == a.dim and a.args[1].dim == 1:
        return Expr(a.op, (_e(n.op, a.args[0]), a.args[1]))
    if a.op is Op.MUL and a.args[0].dim == 1 and a.args[1].dim == a.dim:
        return Expr(a.op, (a.args[0], _e(n.op, a.args[1])))
    return None


def _parts_combined(n: Expr) -> Expr | None:
    """``Complex(a, b) +- Complex(c, d)`` is ``Complex(a +- c, b +- d)`` (the
    cotangent of a complex formula's real and imaginary parts, in one vector)."""
    f, g = n.args
    if f.op is Op.COMPLEX and g.op is Op.COMPLEX and f.dim == g.dim:
        return Expr(Op.COMPLEX, tuple(Expr(n.op, (p, q)) for p, q in zip(f.args, g.args)))
    return None


def _complex(n: Expr) -> Expr | None:
    """``Complex(ComplexReal(z), ComplexImag(z))`` is z."""
    re, im = n.args
    if (re.op is Op.COMPLEXREAL and im.op is Op.COMPLEXIMAG and re.args[0] is im.args[0]
            and re.args[0].dim == n.dim):
        return re.args[0]
    return None


RULES: dict[Op, list[Rule]] = {
    Op.ADD: [_add, _parts_combined],
    Op.SUB: [_sub, _parts_combined],
    Op.MUL: [_mul],
    Op.DIV: [_div],
    Op.NEG: [_neg],
    Op.SQUARE: [_through_neg],
    Op.ABS: [_through_neg],
    Op.POW: [_pow],
    Op.SUM: [_sum],
    Op.SUMT: [_sumt],
    Op.ELEM: [_elem],
    Op.EXTRACT: [_extract],
    Op.IFELSE: [_ifelse],
    Op.COMPLEXREAL: [_part],
    Op.COMPLEXIMAG: [_part],
    Op.COMPLEX: [_complex],
}


def _rewrite_once(n: Expr) -> Expr | None:
    for rule in (*GENERIC, *RULES.get(n.op, ())):
        out = rule(n)
        if out is not None and out is not n:
            if out.dim != n.dim:  # a wrong rule, never a user error
                raise AssertionError(f"rule {rule.__name__} changed the dimension of {n}")
            return out
    return None


def _pending(top: Expr, done: dict) -> list[Expr]:
    """The nodes of ``top``'s DAG not in ``done``, children before parents. Below
    a node in ``done`` everything is done too, so the walk stops there: a rule's
    output is walked for its new nodes alone, not for the whole (simplified)
    DAG below them, which made long products quadratic."""
    order: list[Expr] = []
    seen: set[Expr] = set()
    stack: list[tuple[Expr, bool]] = [(top, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
        elif node not in seen and node not in done:
            seen.add(node)
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(node.args))
    return order


def simplify(root: Expr) -> Expr:
    """Simplified equivalent of ``root`` (same dimension, same values)."""
    done: dict[Expr, Expr] = {}

    def run(top: Expr) -> Expr:
        for node in _pending(top, done):
            if node in done:
                continue
            args = tuple(done[a] for a in node.args)
            current = node if args == node.args else Expr(node.op, args, node.params)
            seen = 0
            while True:
                if current in done and done[current] is current:
                    break
                out = _rewrite_once(current)
                if out is None:
                    break
                seen += 1
                if seen > 100:  # pragma: no cover - rules must terminate
                    raise AssertionError(f"simplification does not terminate on {node}")
                current = run(out) if any(done.get(a) is not a for a in out.args) else out
            done[node] = current
            done.setdefault(current, current)
        return done[top]

    return run(root)
