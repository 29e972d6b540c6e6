"""Program: everything a block kernel computes, independent of the backend.

A :class:`Program` is the formula(s) with categories made canonical for the
kernel (category I = the output axis, category J = the reduced axis, whatever
the user's ``axis``), the reduction, the dtypes and the order in which the
kernel receives its row, column and parameter arrays. It is hashable,
picklable and has a stable :attr:`Program.key`, so it can travel to Dask
workers and key the compile cache.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from .ir import Cat, Expr, Op, canonical, flatten, unflatten, var, walk
from .reductions import Reduction

__all__ = ["Program", "make_program", "swap_categories"]


def map_vars(root: Expr, fn) -> Expr:
    """``root`` with every variable node v replaced by ``fn(v)`` (the rest of the
    DAG rebuilt only where a child changed)."""
    memo: dict[Expr, Expr] = {}
    for node in walk(root):
        if node.op is Op.VAR:
            memo[node] = fn(node)
        elif node.args:
            args = tuple(memo[a] for a in node.args)
            memo[node] = node if args == node.args else Expr(node.op, args, node.params)
        else:
            memo[node] = node
    return memo[root]


def swap_categories(root: Expr) -> Expr:
    """``root`` with i- and j-variables exchanged (for ``axis=0``)."""
    swap = {Cat.I: Cat.J, Cat.J: Cat.I}

    def swapped(node):
        pos, cat = node.params
        return var(pos, node.dim, swap.get(cat, cat))

    return map_vars(root, swapped)


@dataclass(frozen=True)
class Program:
    """What one block kernel computes.

    Attributes
    ----------
    formulas : tuple of Expr
        F, and the weights G for the weighted lse reductions; category I is
        the output axis and J the reduced axis.
    reduction : Reduction
    dtype, acc_dtype : str
        Input/output dtype and accumulator dtype names.
    row_vars, col_vars, param_vars : tuple of Expr
        The variables the formulas use, in the order the kernel takes them.
    names : tuple of (int, str)
        The user's alias of each argument position, for comments in generated
        code; not part of what the program computes (nor of its key).
    """

    formulas: tuple[Expr, ...]
    reduction: Reduction
    dtype: str
    acc_dtype: str
    row_vars: tuple[Expr, ...]
    col_vars: tuple[Expr, ...]
    param_vars: tuple[Expr, ...]
    names: tuple[tuple[int, str], ...] = field(default=(), compare=False)

    @property
    def key(self) -> str:
        """Stable sha256 of everything that determines what the kernel computes."""
        key = self.__dict__.get("_key")
        if key is None:
            parts = [canonical(f) for f in self.formulas]
            parts += [repr(self.reduction), self.dtype, self.acc_dtype]
            parts += [",".join(f"{v.params}" for v in vs)
                      for vs in (self.row_vars, self.col_vars, self.param_vars)]
            key = hashlib.sha256("|".join(parts).encode()).hexdigest()
            object.__setattr__(self, "_key", key)
        return key

    def __reduce__(self):
        # the formulas as a flat list of nodes: deep formulas pickle too
        return (_rebuild, (flatten(self.formulas), self.reduction, self.dtype, self.acc_dtype,
                           flatten((*self.row_vars, *self.col_vars, *self.param_vars)),
                           (len(self.row_vars), len(self.col_vars)), self.names))

    def alias_names(self) -> dict[tuple[int, int], str]:
        """``{(pos, cat): alias}`` of the program's variables (categories as here)."""
        by_pos = dict(self.names)
        return {(v.params[0], v.params[1]): by_pos[v.params[0]]
                for v in (*self.row_vars, *self.col_vars, *self.param_vars)
                if v.params[0] in by_pos}

    @property
    def np_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)

    @property
    def np_acc_dtype(self) -> np.dtype:
        return np.dtype(self.acc_dtype)

    def with_dtype(self, dtype, acc_dtype) -> Program:
        """The same program for other dtypes."""
        return Program(self.formulas, self.reduction, np.dtype(dtype).name,
                       np.dtype(acc_dtype).name, self.row_vars, self.col_vars,
                       self.param_vars, self.names)


def _rebuild(formulas, reduction, dtype, acc_dtype, variables, counts, names) -> Program:
    formulas, variables = unflatten(formulas), unflatten(variables)
    rows, cols = counts
    return Program(formulas, reduction, dtype, acc_dtype, variables[:rows],
                   variables[rows:rows + cols], variables[rows + cols:], names)


def make_program(formulas: tuple[Expr, ...], reduction: Reduction, axis: int, dtype,
                 acc_dtype, names: dict[int, str] | None = None) -> Program:
    """Canonicalise user formulas for ``axis`` and collect the kernel's inputs.

    ``names`` maps argument positions to the user's aliases (for comments)."""
    if axis == 0:
        formulas = tuple(swap_categories(f) for f in formulas)
    used: set[Expr] = set()
    for f in formulas:
        used.update(n for n in walk(f) if n.op is Op.VAR)
    by_cat = {cat: tuple(sorted((v for v in used if v.params[1] == cat),
                                key=lambda v: v.params[0]))
              for cat in (Cat.I, Cat.J, Cat.P)}
    return Program(tuple(formulas), reduction, np.dtype(dtype).name,
                   np.dtype(acc_dtype).name, by_cat[Cat.I], by_cat[Cat.J], by_cat[Cat.P],
                   tuple(sorted((names or {}).items())))
