"""Symbolic differentiation, the stage after parsing: Grad, Diff, Laplacian,
Divergence, GradMatrix.

The parser leaves ``Grad(F, v, e)``, ``Diff(F, v, u)``, ``Laplacian(F, v)``,
``Divergence(F, v)`` and ``GradMatrix(F, v)`` in the formula as placeholder
nodes; :func:`differentiate` replaces them, innermost first, by their
derivatives. The formula is then simplified once.

Every op's record (:mod:`dredux.ops`) has its VJP rule: given a node ``n`` and
the cotangent ``g`` of its output (dimension ``n.dim``), one cotangent per
child, or ``None`` where the derivative is zero almost everywhere.
Elementwise rules are written as if every operand had the output's dimension;
:func:`grad` sums the cotangent of a broadcast (dimension-1) operand.

:func:`grad` runs the rules once over the formula's DAG (shared subexpressions
are differentiated once, cotangents are accumulated per node). Forward mode is
the transpose of reverse mode: ``Diff(F, v, u)`` is ``Grad(Grad(F, v, w), w,
u)`` for a fresh dummy ``w``, in which ``w`` vanishes because every VJP rule
is linear in ``g``. ``GradMatrix`` takes one reverse sweep per component of F
(``Grad(Elem(F, k), v, 1)``), as KeOps's does with its basis vectors; the
forward nodes are shared by all the sweeps. ``Divergence`` and ``Laplacian``
(the divergence of the gradient) sum the Jacobian's diagonal, one vector
expression where F is element-wise in v (:func:`_diagonal`), else one sweep
per component too.
"""

from __future__ import annotations

from . import limits
from .errors import FormulaError
from .ir import OPS, Cat, DimError, Expr, Op, ParamError, const, var, walk, zero
from .ops import DERIVATIVE, NoDerivative
from .printing import to_formula
from .simplify import simplify

__all__ = ["differentiate", "grad", "diff", "laplacian", "divergence", "grad_matrix"]

# Each nested derivative multiplies the size of a formula, and a Laplacian
# differentiates once per component of its variable: without a bound, a formula
# of a hundred characters would take minutes and gigabytes before the size limit
# of the simplified formula could refuse it.
MAX_DERIVATIVE_NODES = limits.MAX_DERIVATIVE_NODES
# the nodes the gradients of a Jacobian diagonal's scalar operands may walk and
# return in all, before the diagonal gives way to one sweep per component
_SWEEP_BUDGET = MAX_DERIVATIVE_NODES // 8


def _too_large(problem: str) -> FormulaError:
    return FormulaError(
        problem, hint="Nested derivatives multiply the size of a formula, and a Laplacian, "
        "a Divergence or a GradMatrix differentiates once per component: differentiate "
        "fewer times, or with respect to variables of lower dimension.")


def _size(expr: Expr, limit: int = MAX_DERIVATIVE_NODES) -> int:
    """The number of distinct nodes of ``expr``, counted up to ``limit + 1``."""
    count = 0
    for count, _ in enumerate(walk(expr), 1):
        if count > limit:
            break
    return count


def _fit(cotangent: Expr, child: Expr, node: Expr) -> Expr:
    """Sum a broadcast operand's cotangent back to the operand's dimension."""
    if cotangent.dim == child.dim:
        return cotangent
    if child.dim == 1 and OPS[node.op].elementwise:
        return Expr(Op.SUM, (cotangent,))
    raise AssertionError(  # a wrong row in VJP, never a user error
        f"VJP of {node.op.value} gave a cotangent of dimension {cotangent.dim} for an "
        f"operand of dimension {child.dim}")


def grad(formula: Expr, v: Expr, e: Expr) -> Expr:
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
    Expr of dimension ``v.dim`` (a zero constant if ``formula`` does not use ``v``),
    not simplified.
    """
    if v.op is not Op.VAR:
        raise ParamError("Grad differentiates with respect to a variable")
    if e.dim != formula.dim:
        raise DimError(
            f"Grad(F, v, e) needs e of the dimension of F ({formula.dim}), got "
            f"dimension {e.dim}")
    order = list(walk(formula))
    depends = _dependents(order, v)
    if formula not in depends:
        return zero(v.dim)
    cot: dict[Expr, Expr] = {formula: e}
    for node in reversed(order):
        g = cot.get(node)
        if g is None or node.op is Op.VAR:
            continue
        rule = OPS[node.op]
        cots = (rule.vjp(node, g, tuple(a in depends for a in node.args)) if rule.vjp_needs
                else rule.vjp(node, g))
        for child, c in zip(node.args, cots):
            if c is None or child not in depends:
                continue
            if isinstance(c, NoDerivative):
                raise FormulaError(f"{c.message} (differentiating {to_formula(node)})")
            c = _fit(c, child, node)
            cot[child] = cot[child] + c if child in cot else c
    return cot.get(v, zero(v.dim))


def _dependents(order: list[Expr], v: Expr) -> set[Expr]:
    """The nodes of ``order`` (children first) that depend on ``v``."""
    depends: set[Expr] = set()
    for node in order:
        if node is v or any(a in depends for a in node.args):
            depends.add(node)
    return depends


def _fresh_dummy(dim: int, *exprs: Expr) -> Expr:
    used = [n.params[0] for x in exprs for n in walk(x)
            if n.op is Op.VAR and n.params[1] == Cat.DUMMY]
    return var(1 + max(used, default=-1), dim, Cat.DUMMY)


def diff(formula: Expr, v: Expr, u: Expr) -> Expr:
    """``[d formula / d v] u``: the derivative of ``formula`` along ``u`` (forward mode)."""
    if v.op is not Op.VAR:
        raise ParamError("Diff differentiates with respect to a variable")
    if u.dim != v.dim:
        raise DimError(f"Diff(F, v, u) needs u of the dimension of v ({v.dim}), got "
                       f"dimension {u.dim}")
    w = _fresh_dummy(formula.dim, formula, v, u)
    result = grad(grad(formula, v, w), w, u)
    if any(n is w for n in walk(result)):  # pragma: no cover - VJP rules are linear in g
        raise AssertionError(f"forward-mode derivative kept its dummy variable: {result}")
    return result


def laplacian(formula: Expr, v: Expr) -> Expr:
    """``sum_k d^2 formula / d v_k^2`` for a scalar formula: the divergence of its
    gradient, as one vector expression where :func:`_diagonal` applies, else
    one derivative of the gradient per component."""
    if formula.dim != 1:
        raise DimError(f"Laplacian(F, v) needs a scalar F, got dimension {formula.dim}")
    gradient = grad(formula, v, const(1))
    if v.dim > 1:  # (grad checked that v is a variable)
        # simplified first: the raw gradient's broadcasts (SumT) and products by
        # ones would each be differentiated
        trace = _trace(simplify(gradient), v)
        if trace is not None:
            return trace
    # one derivative of the gradient per component of v, each about its size
    size = _size(gradient, MAX_DERIVATIVE_NODES // v.dim)
    if size * v.dim > MAX_DERIVATIVE_NODES:
        raise _too_large(f"Laplacian(F, v) differentiates the gradient of F (at least "
                         f"{size} operations) once for each of the {v.dim} components of v: "
                         f"at least {size * v.dim} operations before simplification, more "
                         f"than the limit of {MAX_DERIVATIVE_NODES}")
    terms = [Expr(Op.ELEM, (grad(Expr(Op.ELEM, (gradient,), (k,)), v, const(1)),), (k,))
             for k in range(v.dim)]
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def _balanced(op: Op, terms: list[Expr]) -> Expr:
    """``terms`` joined by the binary ``op`` (Add, Concat) in order, as a balanced
    tree: its depth grows with the logarithm of the number of terms."""
    while len(terms) > 1:
        pairs = [Expr(op, (terms[k], terms[k + 1])) for k in range(0, len(terms) - 1, 2)]
        terms = pairs + terms[len(terms) - len(terms) % 2:]
    return terms[0]


def _rows(formula: Expr, v: Expr, name: str, diagonal: bool = False) -> list[Expr]:
    """The gradient of each component of ``formula`` with respect to ``v``, one
    reverse sweep per component (with ``diagonal``, component k of the k-th
    gradient only). Refused as soon as they pass the size limit: before any is
    built when F alone is too large for one sweep per component, else while the
    distinct nodes of the sweeps are counted."""
    count = formula.dim
    size = _size(formula, MAX_DERIVATIVE_NODES // count)
    if size * count > MAX_DERIVATIVE_NODES:
        raise _too_large(f"{name}(F, v) differentiates F (at least {size} operations) "
                         f"once for each of its {count} components: at least "
                         f"{size * count} operations before simplification, more than the "
                         f"limit of {MAX_DERIVATIVE_NODES}")
    if count == 1:
        return [grad(formula, v, const(1))]
    rows, seen, total = [], set(), 0
    for k in range(count):
        row = grad(Expr(Op.ELEM, (formula,), (k,)), v, const(1))
        if diagonal:
            row = Expr(Op.ELEM, (row,), (k,))
        total += sum(1 for _ in walk(row, seen)) + (k > 0)  # and the Add / Concat joining it
        if total > MAX_DERIVATIVE_NODES:
            raise _too_large(f"{name}(F, v) differentiates F once for each of its {count} "
                             f"components: the first {k + 1} derivatives already have more "
                             f"than {MAX_DERIVATIVE_NODES} operations before simplification, "
                             "the limit")
        rows.append(row)
    return rows


def _trace(formula: Expr, v: Expr) -> Expr | None:
    """``sum_k d formula_k / d v_k`` from the Jacobian's diagonal (:func:`_diagonal`),
    summed term by term: the sum of each of the chain rule's terms at the root,
    whose scalar factors then leave their sums (simplify), where the sum of
    their sum would keep them per component; None where the diagonal is not
    one vector expression."""
    terms = _diagonal(formula, v)
    if terms is None:
        return None
    return _balanced(Op.ADD, [Expr(Op.SUM, (t,)) for t in terms]) if terms else zero()


def _diagonal(formula: Expr, v: Expr) -> list[Expr] | None:
    """The diagonal of the Jacobian of ``formula`` (of the dimension D of ``v``),
    ``(d formula_k / d v_k)_k``, as the vector expressions of its terms at the
    root (their sum is the diagonal); None where the formula has a node this
    cannot go through.

    Below an element-wise node ``n = f(a, b...)`` of dimension D, component k
    depends on the operands' components k alone, so ``diag(n) = sum over
    operands of (df/da) * diag(a)``: ``df/da`` is the operand's VJP with a
    cotangent of ones (the element-wise rules give it per component, before a
    broadcast operand's cotangent is summed), and the ``diag`` of a scalar
    operand is its gradient (``d a / d v_k`` for every k). The diagonal of v is
    ones, that of ``SumT(s, D)`` the gradient of s. Any other node of
    dimension D (a Concat, a product by a matrix...) mixes components: None,
    and the caller takes one sweep per component instead, as it does when the
    scalar operands would need D sweeps or more. Where it applies, the result
    is D-vector operations, loops in the kernels, where a sum of D
    per-component terms would be D unrolled scalar chains."""
    dim = v.dim
    order = list(walk(formula))
    depends = _dependents(order, v)
    ones = const(1, dim)
    parts: dict[Expr, list[Expr]] = {}  # each node's terms (a sum or difference's, joined)
    built = sweeps = 0
    for node in order:
        if node not in depends or node.dim != dim:
            continue
        if node is v:
            terms = [ones]
        elif node.op is Op.SUMT:
            terms = [grad(node.args[0], v, const(1))]
        elif OPS[node.op].elementwise:
            terms = []
            for child, c in zip(node.args, OPS[node.op].vjp(node, ones)):
                if c is None or child not in depends:
                    continue
                if c.dim != dim:  # pragma: no cover - element-wise rules are per component
                    return None
                if child.dim == dim:
                    if c.is_one():  # the operand of a sum: its terms, one by one
                        terms.extend(parts[child])
                        continue
                    if c.op is Op.NEG and c.args[0].is_one():  # of a difference
                        terms.extend(-t for t in parts[child])
                        continue
                    inner = _balanced(Op.ADD, parts[child]) if parts[child] else zero(dim)
                else:  # a scalar operand: its gradient, computed on its own
                    # one reverse sweep each, none sharing its nodes with the
                    # others: past D of them, one sweep per component is less
                    # (the scalars of a long product, each a long product
                    # itself, took O(length^2) nodes and a minute). Bounded too
                    # by the operations the sweeps walk and return
                    sweeps += 1
                    if sweeps >= dim:
                        return None
                    built += _size(child, _SWEEP_BUDGET)
                    if built > _SWEEP_BUDGET:
                        return None
                    inner = grad(child, v, const(1))
                    built += _size(inner, _SWEEP_BUDGET)
                    if built > _SWEEP_BUDGET:
                        return None
                terms.append(c * inner)
        else:
            return None
        parts[node] = terms
    return parts.get(formula, [])  # none when the formula does not use v


def divergence(formula: Expr, v: Expr) -> Expr:
    """``sum_k d formula_k / d v_k`` for a formula of the dimension of ``v``
    (KeOps's ``Divergence``: the trace of the Jacobian): the sum of the
    Jacobian's diagonal, one vector expression where :func:`_diagonal` applies,
    else one reverse sweep per component."""
    if v.op is not Op.VAR:
        raise ParamError("Divergence differentiates with respect to a variable")
    if formula.dim != v.dim:
        raise DimError(f"Divergence(F, v) needs F of the dimension of v ({v.dim}), got "
                       f"dimension {formula.dim}")
    if v.dim > 1:
        trace = _trace(formula, v)
        if trace is not None:
            return trace
    return _balanced(Op.ADD, _rows(formula, v, "Divergence", diagonal=True))


def grad_matrix(formula: Expr, v: Expr) -> Expr:
    """KeOps's ``GradMatrix(F, v)``: the Jacobian of ``formula`` with respect to
    ``v``, of dimension ``F.dim * v.dim``, component ``i * v.dim + j`` being
    ``d formula_i / d v_j`` (the gradients of the components of F, one after the
    other)."""
    if v.op is not Op.VAR:
        raise ParamError("GradMatrix differentiates with respect to a variable")
    return _balanced(Op.CONCAT, _rows(formula, v, "GradMatrix"))


_EXPAND = {
    Op.GRAD: lambda f, v, e: grad(f, v, e),
    Op.DIFF: lambda f, v, u: diff(f, v, u),
    Op.LAPLACIAN: lambda f, v: laplacian(f, v),
    Op.DIVERGENCE: lambda f, v: divergence(f, v),
    Op.GRADMATRIX: lambda f, v: grad_matrix(f, v),
}


def differentiate(root: Expr) -> Expr:
    """``root`` with every Grad, Diff, Laplacian, Divergence and GradMatrix node
    replaced by its derivative (innermost first); the result is not simplified."""
    done: dict[Expr, Expr] = {}
    for node in walk(root):
        args = tuple(done[a] for a in node.args)
        if OPS[node.op].kind == DERIVATIVE:
            done[node] = _EXPAND[node.op](*args)
            if _size(done[node]) > MAX_DERIVATIVE_NODES:
                raise _too_large(f"the derivative {node.op.value}(...) has more operations "
                                 "before simplification than the limit of "
                                 f"{MAX_DERIVATIVE_NODES}")
        elif args != node.args:
            done[node] = Expr(node.op, args, node.params)
        else:
            done[node] = node
    return done[root]
