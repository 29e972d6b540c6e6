"""Expr evaluation with array broadcasting: the reference and the "numpy" backend.

``NUMPY`` is the table of array spellings, one row per :class:`~dredux.ir.Op`.
Each entry takes ``(ctx, node, *child_values)``; values are arrays whose last
axis is the node's dimension and whose leading axes broadcast (``(rows, 1,
d)`` for i-variables, ``(1, cols, d)`` for j-variables, ``(1, 1, d)`` for
parameters). The same code runs on NumPy and CuPy arrays (``ctx.xp``).

:func:`evaluate` computes one Expr on such arrays; :class:`NumpyKernel`
computes the partial state of a block of rows and columns in sub-blocks whose
intermediates fit a memory budget, so memory stays bounded for any M and N.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._xp import get_xp
from .ir import Expr, Op, walk

__all__ = ["NUMPY", "Ctx", "evaluate", "NumpyKernel"]


@dataclass
class Ctx:
    xp: Any
    dtype: Any


def _f(ctx: Ctx, cond):
    return cond.astype(ctx.dtype)


def _lead(xp, *arrays):
    """Broadcast the leading axes of arrays, keeping each one's last axis."""
    lead = np.broadcast_shapes(*(a.shape[:-1] for a in arrays))
    return [xp.broadcast_to(a, lead + a.shape[-1:]) for a in arrays]


def _round(ctx, node, a):
    (d,) = node.params
    scale = 10.0 ** d
    xp = ctx.xp
    x = a * scale if d else a
    r = xp.sign(x) * xp.floor(xp.abs(x) + 0.5)  # C's round: half away from zero
    return (r / scale if d else r).astype(ctx.dtype)


def _elemt(ctx, node, a):
    n, m = node.params
    out = ctx.xp.zeros(a.shape[:-1] + (n,), dtype=a.dtype)
    out[..., m] = a[..., 0]
    return out


def _extractt(ctx, node, a):
    start, d = node.params
    out = ctx.xp.zeros(a.shape[:-1] + (d,), dtype=a.dtype)
    out[..., start:start + a.shape[-1]] = a
    return out


def _onehot(ctx, node, a):
    (d,) = node.params
    k = ctx.xp.floor(a + 0.5)
    return _f(ctx, k == ctx.xp.arange(d, dtype=a.dtype))


def _matvec(ctx, node, a, v):
    n, m = node.dim, v.shape[-1]
    return (a.reshape(a.shape[:-1] + (n, m)) * v[..., None, :]).sum(-1)


def _vecmat(ctx, node, v, a):
    m, n = v.shape[-1], node.dim
    return (v[..., :, None] * a.reshape(a.shape[:-1] + (m, n))).sum(-2)


def _tensorprod(ctx, node, a, b):
    out = a[..., :, None] * b[..., None, :]
    return out.reshape(out.shape[:-2] + (node.dim,))


def _tensordot(ctx, node, a, b):
    dims_a, dims_b, sub_a, sub_b, sub_out, _ = node.params
    a, b = _lead(ctx.xp, a, b)
    lead = a.shape[:-1]
    letters = "abcdefghijklmnopqrstuvwxyz"
    spec = "...{},...{}->...{}".format(*("".join(letters[k] for k in s)
                                          for s in (sub_a, sub_b, sub_out)))
    out = ctx.xp.einsum(spec, a.reshape(lead + dims_a), b.reshape(lead + dims_b))
    return out.reshape(lead + (node.dim,))


def _where(ctx, cond, a, b):
    return ctx.xp.where(cond, a, b).astype(ctx.dtype)


def _best(greater: bool, want_index: bool):
    """Max / Min / ArgMax / ArgMin as a left-to-right scan with a strict comparison.

    This is how the compiled backends (and KeOps) spell them: ties keep the first
    component, a NaN in component 0 sticks and a later NaN is skipped (NumPy's
    max and argmax would return the NaN wherever it is).
    """
    def fn(ctx, node, a):
        xp = ctx.xp
        best = a[..., :1]
        index = xp.zeros(best.shape, dtype=ctx.dtype)
        for k in range(1, a.shape[-1]):
            cur = a[..., k:k + 1]
            better = cur > best if greater else cur < best
            best = xp.where(better, cur, best)
            index = xp.where(better, k, index)
        return (index if want_index else best).astype(ctx.dtype)
    return fn


NUMPY: dict[Op, Callable[..., Any]] = {
    Op.ADD: lambda c, n, a, b: a + b,
    Op.SUB: lambda c, n, a, b: a - b,
    Op.MUL: lambda c, n, a, b: a * b,
    Op.DIV: lambda c, n, a, b: a / b,
    Op.NEG: lambda c, n, a: -a,
    Op.EQ: lambda c, n, a, b: _f(c, a == b),
    Op.NE: lambda c, n, a, b: _f(c, a != b),
    Op.LT: lambda c, n, a, b: _f(c, a < b),
    Op.LE: lambda c, n, a, b: _f(c, a <= b),
    Op.GT: lambda c, n, a, b: _f(c, a > b),
    Op.GE: lambda c, n, a, b: _f(c, a >= b),
    Op.EXP: lambda c, n, a: c.xp.exp(a),
    Op.LOG: lambda c, n, a: c.xp.log(a),
    Op.XLOGX: lambda c, n, a: _where(c, a == 0, 0, a * c.xp.log(a)),
    Op.SIN: lambda c, n, a: c.xp.sin(a),
    Op.COS: lambda c, n, a: c.xp.cos(a),
    Op.ASIN: lambda c, n, a: c.xp.arcsin(a),
    Op.ACOS: lambda c, n, a: c.xp.arccos(a),
    Op.ATAN: lambda c, n, a: c.xp.arctan(a),
    Op.SINXDIVX: lambda c, n, a: _where(c, a == 0, 1, c.xp.sin(a) / a),
    Op.SQRT: lambda c, n, a: c.xp.sqrt(a),
    Op.RSQRT: lambda c, n, a: _where(c, a == 0, 0, 1 / c.xp.sqrt(a)),
    Op.SQUARE: lambda c, n, a: a * a,
    Op.INV: lambda c, n, a: 1 / a,
    Op.ABS: lambda c, n, a: c.xp.abs(a),
    Op.SIGN: lambda c, n, a: _f(c, a > 0) - _f(c, a < 0),  # Sign(NaN) = 0, as in C
    Op.STEP: lambda c, n, a: _where(c, a < 0, 0, 1),
    Op.RELU: lambda c, n, a: _where(c, a < 0, 0, a),
    Op.FLOOR: lambda c, n, a: c.xp.floor(a),
    Op.ROUND: _round,
    Op.POW: lambda c, n, a: (a ** n.params[0]).astype(c.dtype),
    Op.POWF: lambda c, n, a, b: c.xp.power(a, b),
    Op.ATAN2: lambda c, n, a, b: c.xp.arctan2(a, b),
    Op.CLAMP: lambda c, n, x, lo, hi: _where(c, x < lo, lo, c.xp.where(x > hi, hi, x)),
    Op.CLAMPINT: lambda c, n, x: _where(c, x < n.params[0], n.params[0],
                                        c.xp.where(x > n.params[1], n.params[1], x)),
    Op.IFELSE: lambda c, n, x, a, b: _where(c, x >= 0, a, b),
    Op.MOD: lambda c, n, x, m, d: x - m * c.xp.floor((x - d) / m),
    Op.SUM: lambda c, n, a: a.sum(-1, keepdims=True),
    Op.SUMT: lambda c, n, a: c.xp.broadcast_to(a, a.shape[:-1] + (n.dim,)),
    Op.MAX: _best(True, False),
    Op.MIN: _best(False, False),
    Op.ARGMAX: _best(True, True),
    Op.ARGMIN: _best(False, True),
    Op.SCALPROD: lambda c, n, a, b: (a * b).sum(-1, keepdims=True),
    Op.ELEM: lambda c, n, a: a[..., n.params[0]:n.params[0] + 1],
    Op.ELEMT: _elemt,
    Op.EXTRACT: lambda c, n, a: a[..., n.params[0]:n.params[0] + n.params[1]],
    Op.EXTRACTT: _extractt,
    Op.CONCAT: lambda c, n, a, b: c.xp.concatenate(_lead(c.xp, a, b), axis=-1),
    Op.ONEHOT: _onehot,
    Op.MATVECMULT: _matvec,
    Op.VECMATMULT: _vecmat,
    Op.TENSORPROD: _tensorprod,
    Op.TENSORDOT: _tensordot,
}


def evaluate(root: Expr, env: dict[Expr, Any], dtype=None, xp=None, memo=None):
    """Value of ``root`` given the arrays of its variables.

    Parameters
    ----------
    root : Expr
    env : dict
        ``VAR`` node -> array with the variable's dimension as last axis.
    dtype : dtype, optional
        Computation dtype (default: that of the first array in ``env``).
    memo : dict, optional
        Shared between calls to reuse common subexpressions of several roots.

    Returns
    -------
    array broadcastable to the leading shape of the inputs, last axis ``root.dim``.
    """
    arrays = list(env.values())
    xp = xp or get_xp(*arrays)
    dtype = np.dtype(dtype or (arrays[0].dtype if arrays else np.float64))
    ctx = Ctx(xp, dtype)
    memo = {} if memo is None else memo
    lead = max((a.ndim for a in arrays), default=1) - 1
    with np.errstate(all="ignore"):
        for node in walk(root):
            if node in memo:
                continue
            if node.op is Op.VAR:
                if node not in env:
                    raise KeyError(f"no value for variable {node}")
                memo[node] = env[node]
            elif node.op is Op.CONST:
                memo[node] = xp.full((1,) * lead + (node.dim,), node.params[0], dtype=dtype)
            else:
                memo[node] = NUMPY[node.op](ctx, node, *(memo[a] for a in node.args))
    return memo[root]


class NumpyKernel:
    """Block kernel of the "numpy" backend (NumPy or CuPy arrays).

    Computes the partial state of rows ``x`` against columns ``y``: for every
    pair, the program's formula(s), then the reduction's block update, in
    sub-blocks so that no intermediate exceeds ``budget`` bytes.

    Parameters
    ----------
    program : dredux.program.Program
    budget : int
        Bytes allowed for the intermediates of one sub-block.
    """

    backend = "numpy"

    def __init__(self, program, budget: int = 64 << 20):
        self.program = program
        self.budget = int(budget)

    def __reduce__(self):
        return (NumpyKernel, (self.program, self.budget))

    def __dask_tokenize__(self):
        # the sub-block sizes set the order of the partial sums
        return ("NumpyKernel", self.program.key, self.budget)

    def _pair_bytes(self) -> int:
        """Bytes of intermediates per (i, j) pair (sum of node dims)."""
        prog = self.program
        width = sum(n.dim for f in prog.formulas for n in walk(f) if n.op is not Op.VAR)
        return max(1, width + prog.reduction.dim * prog.reduction.k) * 8

    def __call__(self, rows: list, cols: list, params: list, m: int, n: int, j0: int = 0):
        """Partial state of the block (rows x cols).

        Parameters
        ----------
        rows, cols : list of arrays
            Output-axis variables (shape (m, dim)) and reduced-axis variables
            (shape (n, dim)) in the program's order.
        params : list of 1-D arrays
        m, n : int
            Numbers of rows and columns (needed when a side has no variable).
        j0 : int
            Global index of the first column.
        """
        prog = self.program
        red = prog.reduction
        xp = get_xp(*rows, *cols, *params)
        acc = prog.np_acc_dtype
        per_pair = self._pair_bytes()
        bj = max(1, min(n, self.budget // (per_pair * max(1, min(m, 256)))))
        bi = max(1, min(m, self.budget // (per_pair * bj)))
        states = []
        for i in range(0, m, bi) if m else [0]:
            i1 = min(m, i + bi)
            state = red.identity(i1 - i, acc, xp)
            for j in range(0, n, bj):
                j1 = min(n, j + bj)
                f, g = self.values(rows, cols, params, i, i1, j, j1, xp)
                state = red.merge(state, red.block_state(f, g, j0 + j, acc, xp), xp)
            states.append(state)
        if len(states) == 1:
            return states[0]
        return tuple(xp.concatenate(parts, axis=0) for parts in zip(*states))

    def values(self, rows, cols, params, i0, i1, j0, j1, xp):
        """Formula values (and weights) on rows [i0, i1) x cols [j0, j1)."""
        prog = self.program
        env = {}
        dtype = prog.np_dtype
        for node, arr in zip(prog.row_vars, rows):
            env[node] = xp.asarray(arr[i0:i1], dtype=dtype)[:, None, :]
        for node, arr in zip(prog.col_vars, cols):
            env[node] = xp.asarray(arr[j0:j1], dtype=dtype)[None, :, :]
        for node, arr in zip(prog.param_vars, params):
            env[node] = xp.asarray(arr, dtype=dtype).reshape(1, 1, -1)
        shape = (i1 - i0, j1 - j0)
        memo: dict = {}
        out = []
        for formula in prog.formulas:
            value = evaluate(formula, env, dtype, xp, memo)
            out.append(xp.broadcast_to(value, shape + (formula.dim,)))
        return out[0], (out[1] if len(out) > 1 else None)
