"""Linear epilogues: a Sum's linear maps applied once per output row.

A sum over j of a linear map whose coefficients do not depend on j is the map
applied to the sum: ``Sum_j S u_ij = S Sum_j u_ij``. The gradient of a
Gaussian under a full metric S,

    ``Grad(Exp(-WeightedSqDist(S, x, y)), x, e)``
    ``= c_ij * MatVecMult(S, x - y) + VecMatMult(c_ij * (x - y), S)``

(``c_ij`` the scalar ``-e Exp(...)``), costs three D x D products per pair as
written and one (inside ``c_ij``) once the products by S move after the
reduction: the kernel sums ``c_ij (x_i - y_j)``, a vector of D values, and
``S z + z S`` is computed once per row. On the GPU this also removes the
per-pair vector of D values that would live in local memory.

:func:`split` cuts a Sum's formula F into an inner formula G (the
concatenation of its *leaves*) and an epilogue E, a formula of the output
axis's variables, the parameters and one placeholder variable per leaf, with
``Sum_j F = E(Sum_j G)``. It descends from the root through

* ops linear in one child whose other children do not depend on the reduced
  axis (the records' ``linear``): ``MatVecMult(S, .)``, ``p * .``, ``. / p``,
  ``Extract``, ``Sum``, ``Scalprod(p, .)``...;
* additive ops (the records' ``additive``: ``+``, ``-``, ``Concat``), whose
  children that do not depend on the reduced axis become leaves (summed by
  the kernel: N times their value, or as many as a block-sparse row keeps);
* products ``c * X`` of a scalar c and a vector X that both depend on the
  reduced axis, pushing c down into X's linear structure (``c * (S u) = S (c
  u)``),

and makes a leaf of any other node, and of a node below which nothing would
move (no leaf is split in two for nothing). Leaves are interned nodes, so the
two products of the metric gradient read the same leaf ``c (x - y)``.
:class:`Epilogue` computes E on the reduced rows, in float64, with the
products of fixed matrices as matrix products (BLAS), never as the per-pair
broadcast of :mod:`dredux.numpy_eval`.

:class:`dredux.api.Genred` applies the split when it lowers the planner's
cost per pair (:func:`dredux.plan.pair_cost`), to unbatched calls of a Sum
without weights on float32 and float64 inputs (float16 results are rounded
once, at the end, as written).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._xp import get_xp
from .codegen.products import matrix_vector
from .ir import OPS, Cat, Expr, Op, var, walk
from .numpy_eval import Ctx

__all__ = ["Split", "Epilogue", "split"]


@dataclass(frozen=True)
class Split:
    """``Sum_j F = E(Sum_j G)``: the inner formula and the epilogue."""

    inner: Expr  # G: the leaves, concatenated in order
    epilogue: Epilogue


@dataclass(frozen=True)
class Epilogue:
    """The formula E read on the reduced rows.

    ``slots`` are the placeholder variables of the leaves with their first
    column in the inner result; ``reads`` are E's other variables (the output
    axis's and the parameters), by argument position.
    """

    formula: Expr
    slots: tuple[tuple[Expr, int], ...]
    reads: tuple[Expr, ...]

    def __call__(self, z, arrays: dict):
        """E on the inner result ``z`` (rows x the leaves' width) and ``arrays``
        (argument position -> the argument: (rows, dim) or (dim,)), in float64,
        returned in ``z``'s dtype."""
        xp = get_xp(z)
        f64 = np.float64
        env = {slot: z[:, at:at + slot.dim].astype(f64) for slot, at in self.slots}
        for node in self.reads:
            a = xp.asarray(arrays[node.params[0]], dtype=f64)
            env[node] = a.reshape(1, -1) if node.params[1] == Cat.P else a
        return _evaluate(self.formula, env, xp).astype(z.dtype, copy=False)


def _evaluate(root: Expr, env: dict, xp):
    """``root`` on (rows or 1, dim) arrays: matrix-vector products by BLAS (a
    fixed matrix) or einsum (one per row), other ops by their records."""
    ctx = Ctx(xp, np.dtype(np.float64))
    rows = max(a.shape[0] for a in env.values())
    memo: dict = {}
    # overflow to inf and NaN are results here, as in the compiled kernels: no warnings
    with np.errstate(all="ignore"):
        _evaluate_nodes(root, memo, env, ctx, xp)
    out = memo[root]
    return xp.broadcast_to(out, (rows, root.dim))


def _evaluate_nodes(root: Expr, memo: dict, env: dict, ctx: Ctx, xp):
    for node in walk(root):
        if node.op is Op.VAR:
            memo[node] = env[node]
        elif node.op is Op.CONST:
            memo[node] = xp.full((1, node.dim), node.params[0], dtype=np.float64)
        elif matrix_vector(node) is not None:
            ka, ku, by_rows = matrix_vector(node)
            a, u = memo[node.args[ka]], memo[node.args[ku]]
            m, n = node.dim, node.args[ku].dim
            mat = (a.reshape(-1, m, n) if by_rows
                   else a.reshape(-1, n, m).transpose(0, 2, 1))
            if mat.shape[0] == 1:
                memo[node] = u @ mat[0].T
            else:
                memo[node] = xp.einsum("rmn,rn->rm", mat, xp.broadcast_to(u, (mat.shape[0], n)))
        else:
            memo[node] = OPS[node.op].numpy(ctx, node, *(memo[a] for a in node.args))


def split(f: Expr, reduced: Cat, out: Cat, first_slot: int) -> Split | None:
    """The split of ``Sum`` over the ``reduced`` axis of ``f``, or None when
    nothing moves (``f`` is one leaf) or the linear part is deeper than
    :data:`MAX_SPINE` levels (a long chain of sums: the descent recurses).
    Placeholders are variables of the ``out`` axis at positions from
    ``first_slot`` on."""
    cut = _Cutter(f, reduced)
    if f not in cut.splitting or cut.depth[f] > MAX_SPINE:
        return None
    e = cut.lin(f)
    slots, at = [], 0
    for leaf, slot in cut.leaves.items():
        slots.append((slot, at))
        at += leaf.dim
    leaves = list(cut.leaves)
    inner = leaves[0]
    for leaf in leaves[1:]:
        inner = Expr(Op.CONCAT, (inner, leaf))
    # the placeholders were numbered from 0 in order: move them after the arguments
    moved = {slot: var(first_slot + k, slot.dim, out) for k, (slot, _) in enumerate(slots)}
    e = _substitute(e, moved)
    placeholders = set(moved.values())
    reads = tuple(n for n in walk(e) if n.op is Op.VAR and n not in placeholders)
    return Split(inner, Epilogue(e, tuple((moved[s], at) for s, at in slots), reads))


MAX_SPINE = 200  # levels of linear ops the descent of split() goes through


class _Cutter:
    """The descent of :func:`split`: ``lin`` gives E's node for a node that
    depends on the reduced axis, registering the leaves it reaches. The node
    properties are computed bottom-up in one walk (no recursion)."""

    def __init__(self, root: Expr, reduced: Cat):
        reduced = int(reduced)
        self.moving: set[Expr] = set()  # depends on the reduced axis
        self.splitting: set[Expr] = set()  # something moves out of it
        self.depth: dict[Expr, int] = {}  # levels of the descent from it
        for n in walk(root):
            if n.op is Op.VAR:
                if n.params[1] == reduced:
                    self.moving.add(n)
            elif any(a in self.moving for a in n.args):
                self.moving.add(n)
                if (self.linear_child(n) is not None or (OPS[n.op].additive and any(
                        a in self.splitting for a in n.args)) or self.scale(n) is not None):
                    self.splitting.add(n)
                    self.depth[n] = 1 + max((self.depth.get(a, 0) for a in n.args), default=0)
        self.leaves: dict[Expr, Expr] = {}
        self._lin: dict[Expr, Expr] = {}
        self._scaled: dict[tuple, Expr] = {}

    def linear_child(self, n: Expr) -> int | None:
        """The child in which ``n`` is linear, the others fixed; else None."""
        moving = [k for k, a in enumerate(n.args) if a in self.moving]
        if len(moving) == 1 and moving[0] in OPS[n.op].linear:
            return moving[0]
        return None

    def scale(self, n: Expr) -> tuple[int, int] | None:
        """``(scalar child, vector child)`` of ``c * X``, both moving and
        something moving out of X; else None."""
        if n.op is not Op.MUL or not all(a in self.moving for a in n.args):
            return None
        for c, x in ((0, 1), (1, 0)):
            if n.args[c].dim == 1 and n.args[x] in self.splitting:
                return c, x
        return None

    def leaf(self, n: Expr) -> Expr:
        slot = self.leaves.get(n)
        if slot is None:  # numbered in order of appearance; moved by split()
            slot = self.leaves[n] = var(len(self.leaves), n.dim, Cat.DUMMY)
        return slot

    def lin(self, n: Expr) -> Expr:
        """E's node for ``n`` (moving)."""
        done = self._lin.get(n)
        if done is None:
            done = self._lin[n] = self._descend(n, None, True)
        return done

    def scaled(self, c: Expr, x: Expr, left: bool) -> Expr:
        """E's node for ``c * x`` (``x * c`` unless ``left``), c a moving scalar."""
        key = (c, x, left)
        done = self._scaled.get(key)
        if done is None:
            done = self._scaled[key] = self._descend(x, c, left)
        return done

    def _descend(self, n: Expr, c: Expr | None, left: bool) -> Expr:
        """E's node for ``n``, times the moving scalar ``c`` when given."""
        if n not in self.splitting:
            if c is not None:
                n = Expr(Op.MUL, (c, n) if left else (n, c))
            return self.leaf(n)

        def down(child: Expr) -> Expr:
            if c is None:
                return self.lin(child) if child in self.moving else self.leaf(child)
            return self.scaled(c, child, left)

        k = self.linear_child(n)
        if k is not None:  # c * op(F, u) = op(F, c * u)
            return _rebuild(n, {k: down(n.args[k])})
        if OPS[n.op].additive:  # fixed terms are leaves: the kernel sums them
            return _rebuild(n, {k: down(a) for k, a in enumerate(n.args)})
        s, x = self.scale(n)
        scalar = n.args[s] if c is None else Expr(Op.MUL, (c, n.args[s]))
        return self.scaled(scalar, n.args[x], left if c is not None else s == 0)


def _rebuild(n: Expr, children: dict[int, Expr]) -> Expr:
    return Expr(n.op, tuple(children.get(k, a) for k, a in enumerate(n.args)), n.params)


def _substitute(root: Expr, mapping: dict[Expr, Expr]) -> Expr:
    done: dict[Expr, Expr] = {}
    for node in walk(root):
        if node in mapping:
            done[node] = mapping[node]
        elif node.args:
            done[node] = Expr(node.op, tuple(done[a] for a in node.args), node.params)
        else:
            done[node] = node
    return done[root]
