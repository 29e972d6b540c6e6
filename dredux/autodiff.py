"""Symbolic differentiation: Grad (reverse mode), Diff (forward mode), Laplacian.

``VJP`` holds one row per :class:`~dredux.ir.Op`: given a node ``n`` and the
cotangent ``g`` of its output (dimension ``n.dim``), it returns one cotangent
per child, or ``None`` where the derivative is zero almost everywhere.
Elementwise rules are written as if every operand had the output's dimension;
:func:`grad` sums the cotangent of a broadcast (dimension-1) operand.

:func:`grad` runs the rules once over the formula's DAG (shared subexpressions
are differentiated once, cotangents are accumulated per node) and simplifies
the result. Forward mode is the transpose of reverse mode: ``Diff(F, v, u)`` is
``Grad(Grad(F, v, w), w, u)`` for a fresh dummy ``w``, in which ``w`` vanishes
because every VJP rule is linear in ``g``.
"""

from __future__ import annotations

from collections.abc import Callable

from .functions import tensordot_node
from .ir import OPS, Cat, DimError, Expr, Op, const, var, walk, zero

__all__ = ["VJP", "grad", "diff", "laplacian"]


def _e(op: Op, *args: Expr, params: tuple = ()) -> Expr:
    return Expr(op, args, params)


def _unary(derivative: Callable[[Expr, Expr], Expr]):
    """Rule for f(a): g * f'(a), with f'(a) given from (node, a)."""
    return lambda n, g: (g * derivative(n, n.args[0]),)


def _none(n: Expr, g: Expr):
    return (None,) * len(n.args)


def _tensordot_vjp(n: Expr, g: Expr):
    a, b = n.args
    dims_a, dims_b, sub_a, sub_b, sub_out, out_shape = n.params
    size = dict(zip(sub_a, dims_a)) | dict(zip(sub_b, dims_b))
    return (tensordot_node(g, b, sub_out, sub_b, sub_a, size),
            tensordot_node(g, a, sub_out, sub_a, sub_b, size))


def _clamp_vjp(n: Expr, g: Expr):
    x, lo, hi = n.args
    above_lo = _e(Op.GE, x, lo)
    return (g * above_lo * _e(Op.LE, x, hi),
            g * _e(Op.LT, x, lo),
            g * above_lo * _e(Op.GT, x, hi))


def _clampint_vjp(n: Expr, g: Expr):
    (x,) = n.args
    lo, hi = n.params
    return (g * _e(Op.GE, x, const(lo)) * _e(Op.LE, x, const(hi)),)


def _max_vjp(pick: Op):
    def rule(n: Expr, g: Expr):
        (a,) = n.args
        return (_e(Op.ONEHOT, _e(pick, a), params=(a.dim,)) * g,)
    return rule


VJP: dict[Op, Callable[[Expr, Expr], tuple]] = {
    Op.VAR: _none,
    Op.CONST: _none,
    Op.ADD: lambda n, g: (g, g),
    Op.SUB: lambda n, g: (g, -g),
    Op.MUL: lambda n, g: (g * n.args[1], g * n.args[0]),
    Op.DIV: lambda n, g: (g / n.args[1], -(g * n) / n.args[1]),
    Op.NEG: lambda n, g: (-g,),
    Op.EQ: _none, Op.NE: _none, Op.LT: _none, Op.LE: _none, Op.GT: _none, Op.GE: _none,
    Op.EXP: lambda n, g: (g * n,),
    Op.LOG: lambda n, g: (g / n.args[0],),
    Op.XLOGX: _unary(lambda n, a: _e(Op.LOG, a) + 1),
    Op.SIN: _unary(lambda n, a: _e(Op.COS, a)),
    Op.COS: _unary(lambda n, a: -_e(Op.SIN, a)),
    Op.ASIN: _unary(lambda n, a: _e(Op.RSQRT, 1 - _e(Op.SQUARE, a))),
    Op.ACOS: _unary(lambda n, a: -_e(Op.RSQRT, 1 - _e(Op.SQUARE, a))),
    Op.ATAN: _unary(lambda n, a: _e(Op.INV, 1 + _e(Op.SQUARE, a))),
    Op.SINXDIVX: _unary(lambda n, a: (_e(Op.COS, a) - n) / a),
    Op.SQRT: _unary(lambda n, a: 0.5 * _e(Op.RSQRT, a)),
    Op.RSQRT: _unary(lambda n, a: -0.5 * _e(Op.POW, n, params=(3,))),
    Op.SQUARE: _unary(lambda n, a: 2 * a),
    Op.INV: _unary(lambda n, a: -_e(Op.SQUARE, n)),
    Op.ABS: _unary(lambda n, a: _e(Op.SIGN, a)),
    Op.SIGN: _none,
    Op.STEP: _none,
    Op.RELU: _unary(lambda n, a: _e(Op.STEP, a)),
    Op.FLOOR: _none,
    Op.ROUND: _none,
    Op.POW: _unary(lambda n, a: n.params[0] * _e(Op.POW, a, params=(n.params[0] - 1,))),
    Op.POWF: lambda n, g: (g * n.args[1] * _e(Op.POWF, n.args[0], n.args[1] - 1),
                           g * _e(Op.LOG, n.args[0]) * n),
    Op.ATAN2: lambda n, g: (
        g * n.args[1] / (_e(Op.SQUARE, n.args[0]) + _e(Op.SQUARE, n.args[1])),
        -(g * n.args[0]) / (_e(Op.SQUARE, n.args[0]) + _e(Op.SQUARE, n.args[1]))),
    Op.CLAMP: _clamp_vjp,
    Op.CLAMPINT: _clampint_vjp,
    Op.IFELSE: lambda n, g: (None, _e(Op.IFELSE, n.args[0], g, zero()),
                             _e(Op.IFELSE, n.args[0], zero(), g)),
    Op.MOD: lambda n, g: (
        g, -(g * _e(Op.FLOOR, (n.args[0] - n.args[2]) / n.args[1])), None),
    Op.SUM: lambda n, g: (_e(Op.SUMT, g, params=(n.args[0].dim,)),),
    Op.SUMT: lambda n, g: (_e(Op.SUM, g),),
    Op.MAX: _max_vjp(Op.ARGMAX),
    Op.MIN: _max_vjp(Op.ARGMIN),
    Op.ARGMAX: _none,
    Op.ARGMIN: _none,
    Op.SCALPROD: lambda n, g: (g * n.args[1], g * n.args[0]),
    Op.ELEM: lambda n, g: (_e(Op.ELEMT, g, params=(n.args[0].dim, n.params[0])),),
    Op.ELEMT: lambda n, g: (_e(Op.ELEM, g, params=(n.params[1],)),),
    Op.EXTRACT: lambda n, g: (_e(Op.EXTRACTT, g, params=(n.params[0], n.args[0].dim)),),
    Op.EXTRACTT: lambda n, g: (_e(Op.EXTRACT, g, params=(n.params[0], n.args[0].dim)),),
    Op.CONCAT: lambda n, g: (_e(Op.EXTRACT, g, params=(0, n.args[0].dim)),
                             _e(Op.EXTRACT, g, params=(n.args[0].dim, n.args[1].dim))),
    Op.ONEHOT: _none,
    Op.MATVECMULT: lambda n, g: (_e(Op.TENSORPROD, g, n.args[1]),
                                 _e(Op.VECMATMULT, g, n.args[0])),
    Op.VECMATMULT: lambda n, g: (_e(Op.MATVECMULT, n.args[1], g),
                                 _e(Op.TENSORPROD, n.args[0], g)),
    Op.TENSORPROD: lambda n, g: (_e(Op.MATVECMULT, g, n.args[1]),
                                 _e(Op.VECMATMULT, n.args[0], g)),
    Op.TENSORDOT: _tensordot_vjp,
}


def _fit(cotangent: Expr, child: Expr, node: Expr) -> Expr:
    """Sum a broadcast operand's cotangent back to the operand's dimension."""
    if cotangent.dim == child.dim:
        return cotangent
    if child.dim == 1 and OPS[node.op].elementwise:
        return _e(Op.SUM, cotangent)
    raise AssertionError(  # a wrong row in VJP, never a user error
        f"VJP of {node.op.value} gave a cotangent of dimension {cotangent.dim} for an "
        f"operand of dimension {child.dim}")


def grad(formula: Expr, v: Expr, e: Expr, simplify_result: bool = True) -> Expr:
    """``[d formula / d v]^T e``: the gradient of ``<formula, e>`` with respect to ``v``.

    Parameters
    ----------
    formula : Expr
    v : Expr
        A ``VAR`` node.
    e : Expr
        The cotangent, of dimension ``formula.dim``.

    Returns
    -------
    Expr of dimension ``v.dim`` (a zero constant if ``formula`` does not use ``v``).
    """
    if v.op is not Op.VAR:
        raise DimError("Grad differentiates with respect to a variable")
    if e.dim != formula.dim:
        raise DimError(
            f"Grad(F, v, e) needs e of the dimension of F ({formula.dim}), got "
            f"dimension {e.dim}")
    order = list(walk(formula))
    depends: set[Expr] = set()
    for node in order:
        if node is v or any(a in depends for a in node.args):
            depends.add(node)
    if formula not in depends:
        return zero(v.dim)
    cot: dict[Expr, Expr] = {formula: e}
    for node in reversed(order):
        g = cot.get(node)
        if g is None or node.op is Op.VAR:
            continue
        for child, c in zip(node.args, VJP[node.op](node, g)):
            if c is None or child not in depends:
                continue
            c = _fit(c, child, node)
            cot[child] = cot[child] + c if child in cot else c
    result = cot.get(v, zero(v.dim))
    if simplify_result:
        from .simplify import simplify

        result = simplify(result)
    return result


def _fresh_dummy(dim: int, *exprs: Expr) -> Expr:
    used = [n.params[0] for x in exprs for n in walk(x)
            if n.op is Op.VAR and n.params[1] == Cat.DUMMY]
    return var(1 + max(used, default=-1), dim, Cat.DUMMY)


def diff(formula: Expr, v: Expr, u: Expr) -> Expr:
    """``[d formula / d v] u``: the derivative of ``formula`` along ``u`` (forward mode)."""
    if v.op is not Op.VAR:
        raise DimError("Diff differentiates with respect to a variable")
    if u.dim != v.dim:
        raise DimError(f"Diff(F, v, u) needs u of the dimension of v ({v.dim}), got "
                       f"dimension {u.dim}")
    w = _fresh_dummy(formula.dim, formula, v, u)
    result = grad(grad(formula, v, w), w, u)
    if any(n is w for n in walk(result)):  # pragma: no cover - VJP rules are linear in g
        raise AssertionError(f"forward-mode derivative kept its dummy variable: {result}")
    return result


def laplacian(formula: Expr, v: Expr) -> Expr:
    """``sum_k d^2 formula / d v_k^2`` for a scalar formula."""
    if formula.dim != 1:
        raise DimError(f"Laplacian(F, v) needs a scalar F, got dimension {formula.dim}")
    gradient = grad(formula, v, const(1))
    terms = [_e(Op.ELEM, grad(_e(Op.ELEM, gradient, params=(k,)), v, const(1)), params=(k,))
             for k in range(v.dim)]
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    from .simplify import simplify

    return simplify(total)
