"""Expr evaluation with array broadcasting: the reference and the "numpy" backend.

Each op's record (:mod:`dredux.ops`) has its array spelling, which takes
``(ctx, node, *child_values)``; values are arrays whose last axis is the
node's dimension and whose leading axes broadcast (``(rows, 1, d)`` for
i-variables, ``(1, cols, d)`` for j-variables, ``(1, 1, d)`` for parameters).
The same code runs on NumPy and CuPy arrays (``ctx.xp``).

:func:`evaluate` computes one Expr on such arrays; :class:`NumpyKernel`
computes the partial state of a block of rows and columns in sub-blocks whose
intermediates fit a memory budget, so memory stays bounded for any M and N.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._xp import get_xp
from .backends import Kernel
from .ir import OPS, Expr, Op, walk

__all__ = ["Ctx", "evaluate", "NumpyKernel"]


@dataclass
class Ctx:
    xp: Any
    dtype: Any


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
                memo[node] = OPS[node.op].numpy(ctx, node, *(memo[a] for a in node.args))
    return memo[root]


class NumpyKernel(Kernel):
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
    OPTIONS = ("budget",)  # the sub-block sizes set the order of the partial sums

    def __init__(self, program, **options):
        super().__init__(program, **options)
        self.budget = int(self.options.get("budget", 64 << 20))

    def _pair_bytes(self) -> int:
        """Bytes of intermediates per (i, j) pair (sum of node dims)."""
        prog = self.program
        width = sum(n.dim for f in prog.formulas for n in walk(f) if n.op is not Op.VAR)
        return max(1, width + prog.reduction.dim * prog.reduction.k) * 8

    def __call__(self, rows: list, cols: list, params: list, m: int, n: int, j0: int = 0,
                 ranges=None):
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
        ranges : dredux.ranges.Sparsity, optional
            The block's kept pairs (block-sparse reductions).
        """
        if ranges is not None:
            return self.by_rectangles(rows, cols, params, j0, ranges)
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
        # float16 programs compute in float32, as the compiled kernels do (intermediates
        # past 65504 stay finite); the result is rounded to float16 once, at the end
        dtype = np.dtype(np.float32) if prog.np_dtype == np.float16 else prog.np_dtype
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
