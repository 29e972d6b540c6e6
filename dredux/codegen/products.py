"""Matrix products as contractions, for both code generators.

A pair-level ``MatVecMult(A, u)`` or ``VecMatMult(u, A)`` (or a ``TensorDot``
that is one of them, :func:`matrix_vector`) whose matrix A depends on the row
or the parameters only (``WeightedSqDist`` with a full matrix, a Mahalanobis
distance, a projection of ``x - y``) is rewritten as one contraction per
output component, ``Scalprod(row k of A, u)``, which the
register-blocked loops compute (codegen/cpp.py: R rows x JB columns of partial
sums; codegen/cuda.py: a tile of columns per thread, u's chunks staged once
for all the product's rows). Left to the pair loop, the m x n product is
computed per pair through per-pair temporaries: on the CPU, WeightedSqDist at
D = 32 ran at 1.7e6 pairs/s and took 12 s to compile; on the GPU the vectors
of D values went to local memory (ptxas: 128 bytes of stack at D = 32, spills
at D = 16). Each output component is summed over n in the product's own
order, so the values are the direct product's.

The pair loop then reads a product as a ``Concat`` of its m components, or,
where a ``Sum`` or a ``Scalprod`` reads it through element-wise ops
(``(x - y | S (x - y))``, the quadratic form of ``WeightedSqDist``;
``SqNorm2(P (x - y))``), as the sum of the components' scalar formulas: an
m-component vector per pair would be an array per vector lane (three times
slower at D = 64 on the CPU) or per thread.

Each backend says which products it lowers and checks that the result fits
its buffers or registers (:func:`dredux.codegen.cpp.lowered`,
:func:`dredux.codegen.cuda.lowered`).
"""

from __future__ import annotations

import dataclasses

from ..ir import OPS, Expr, Op, const, walk_all
from ..ops.vector import transposed
from ..program import Program
from .render import CONTRACTION_MIN_DIM, contraction_term, levels, variable_slice

__all__ = ["lower_products", "matrix_vector", "variable_slice"]


def _product(node: Expr, args: tuple, level: dict, ops: frozenset, matrix_vars: bool,
             col_matrices: bool) -> tuple[list[Expr], Expr | None] | None:
    """The output components of the matrix product ``node`` (rebuilt on
    ``args``) as contractions, and the scalar factor of its vector (``w * (x -
    y)`` in a gradient: it multiplies the result instead), or None when it is
    not a product to lower (one of ``ops``, its matrix of the row or the
    parameters, a variable or a slice of one when ``matrix_vars``; with
    ``col_matrices``, also a column variable or a slice of one)."""
    if node.op not in ops:
        return None
    form = matrix_vector(node)
    if form is None:
        return None
    ka, ku, by_rows = form
    a, u, a2, u2 = node.args[ka], node.args[ku], args[ka], args[ku]
    n = u.dim
    if level[node] != "pair" or n < CONTRACTION_MIN_DIM:
        return None
    if level[a] == "col":
        if not (col_matrices and variable_slice(a)):
            return None
    elif level[a] not in ("row", "const") or (matrix_vars and not variable_slice(a)):
        return None
    scale = None
    if u.op is Op.MUL and 1 in (u.args[0].dim, u.args[1].dim):
        k = 0 if u.args[0].dim == 1 else 1
        scale, u, u2 = u2.args[k], u.args[1 - k], u2.args[1 - k]
    if not contraction_term(u, n, level, col_matrices):
        return None
    m = a.dim // n
    if not by_rows:  # A is n x m: the rows of its transpose
        a2 = transposed(a2, n, m)
    return [Expr(Op.SCALPROD, (Expr(Op.EXTRACT, (a2,), (k * n, n)), u2))
            for k in range(m)], scale


def matrix_vector(node: Expr) -> tuple[int, int, bool] | None:
    """``(matrix arg, vector arg, by_rows)`` when ``node`` is the product of a
    matrix A (m x n or n x m, row-major) and a vector u of n components with
    m outputs: ``MatVecMult(A, u)`` (A's rows: ``by_rows``), ``VecMatMult(u,
    A)`` (A's columns), or the ``TensorDot`` of a 2-axis operand and a 1-axis
    one contracting u's axis with one of A's, in either argument order (what
    KeOps's ``keops_tensordot`` and the derivatives of TensorDot build);
    else None (other TensorDots: contractions of several axes, outer
    products, the transposes of :func:`transposed`)."""
    if node.op is Op.MATVECMULT:
        return 0, 1, True
    if node.op is Op.VECMATMULT:
        return 1, 0, False
    if node.op is not Op.TENSORDOT:
        return None
    dims_a, dims_b, sub_a, sub_b, sub_out, _ = node.params
    if len(dims_a) == 2 and len(dims_b) == 1:
        ka, ku, sub_m, (c,) = 0, 1, sub_a, sub_b
    elif len(dims_a) == 1 and len(dims_b) == 2:
        ka, ku, sub_m, (c,) = 1, 0, sub_b, sub_a
    else:
        return None
    if sorted(sub_m) != sorted((c, *sub_out)) or sub_out[0] == c:
        return None
    return ka, ku, sub_m[1] == c


def _component(node: Expr, k: int, level: dict, parts: dict) -> Expr:
    """Component ``k`` of ``node`` (rebuilt) as a scalar node, pushed through
    the element-wise ops of the pair level down to the lowered products'
    contractions (``parts``) and to ``Elem``s of the rest (``x - y`` ->
    ``Elem(x, k) - Elem(y, k)``): scalars, where a vector would be an array
    per pair and vector lane."""
    if node.dim == 1:
        return node
    if node in parts:
        rows, scale = parts[node]
        return rows[k] if scale is None else Expr(Op.MUL, (scale, rows[k]))
    if node.op is Op.CONST:
        return const(node.params[0])
    if (node.op is Op.VAR or level.get(node, "pair") != "pair"
            or not OPS[node.op].elementwise):
        return Expr(Op.ELEM, (node,), (k,))
    return Expr(node.op, tuple(_component(a, k, level, parts) for a in node.args),
                node.params)


def _by_component(node: Expr, parts: dict, holds: set) -> bool:
    """Whether :func:`_component` reaches the lowered products below ``node``
    through element-wise ops only (otherwise the vector would be read whole
    anyway, component by component through ``Elem``)."""
    if node in parts or node not in holds:
        return True
    return OPS[node.op].elementwise and all(_by_component(a, parts, holds)
                                            for a in node.args if a.dim > 1)


def _chain(op: Op, terms: list[Expr]) -> Expr:
    """``op(op(t0, t1), t2)...``: the sum (ADD) or the Concat of ``terms``."""
    out = terms[0]
    for term in terms[1:]:
        out = Expr(op, (out, term))
    return out


def lower_products(program: Program, ops: frozenset, matrix_vars: bool = False,
                   col_matrices: bool = False) -> Program:
    """``program`` with its pair-level matrix products among ``ops``
    (``Op.MATVECMULT``, ``Op.VECMATMULT``, ``Op.TENSORDOT``) as contractions
    (only those whose matrix is a variable or a slice of one when
    ``matrix_vars``; those of a column matrix too when ``col_matrices``: a
    column variable or a slice of one, which the contraction loops read from
    their packed panel, :func:`dredux.codegen.render.contractions` with
    ``col_slices``); ``program`` itself when it has none."""
    level = levels(program.formulas)
    memo: dict[Expr, Expr] = {}
    parts: dict[Expr, tuple[list[Expr], Expr | None]] = {}  # the lowered products
    holds: set[Expr] = set()  # rebuilt nodes with a lowered product below them
    for node in walk_all(program.formulas):
        args = tuple(memo[a] for a in node.args)
        product = _product(node, args, level, ops, matrix_vars, col_matrices)
        if product is not None:
            rows, scale = product
            new = _chain(Op.CONCAT, rows)
            if scale is not None:
                new = Expr(Op.MUL, (scale, new))
            parts[new] = product
        elif (node.op in (Op.SUM, Op.SCALPROD) and any(a in holds for a in args)
              and all(_by_component(a, parts, holds) for a in args)):
            dim = args[0].dim
            new = _chain(Op.ADD, [
                _component(args[0], k, level, parts) if node.op is Op.SUM else
                Expr(Op.MUL, tuple(_component(a, k, level, parts) for a in args))
                for k in range(dim)])
        else:
            new = node if args == node.args else Expr(node.op, args, node.params)
        if new in parts or any(a in holds for a in args):
            holds.add(new)
        memo[node] = new
    if not parts:
        return program
    return dataclasses.replace(program, formulas=tuple(memo[f] for f in program.formulas))
