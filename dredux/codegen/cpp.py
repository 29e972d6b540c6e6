"""Program -> C++ source of the CPU block kernel.

The kernel template (``kernels/cpu/block.cpp``) loops over groups of ``R``
output rows and, for each group, over tiles of ``TJ`` columns; this module
fills its slots with code rendered from the formula tree:

* nodes that depend on parameters only are computed once per call,
* nodes that depend on the row (and parameters) once per row, before the
  j-loop,
* nodes that depend on the column (and parameters) once per column, shared by
  the ``R`` rows of a pass,
* the rest once per pair, inside the j-loop. For ``Sum`` (except
  ``kahan_scheme``) the j-loop adds the values into per-row accumulators
  declared as an OpenMP simd reduction (*fused*: the product with a weight
  and the addition become one FMA, and no buffer is written and read back);
  for the other reductions it writes the formula's values for the tile into
  a buffer, and the reduction's row state (``kernels/cpu/reduce.hpp``) then
  folds the buffer in.

This hoisting is what a compiler's loop-invariant code motion would do, made
explicit so that it also crosses the ``R`` rows of a pass. The j-loop is a
pure map over unit-stride arrays (column variables arrive transposed), so GCC
vectorises it, including the inline ``_dr_exp`` and ``_dr_log``.

The state code pasted in is only what the reduction's family needs
(``kernels/cpu/states/``). Only the parsed tree reaches the source:
identifiers are generated here and numbers are printed from Python numbers
(:mod:`dredux.codegen.render`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import Expr, Op, walk_all
from ..program import Program
from ..reductions import Reduction
from . import templates
from .render import (
    Index,
    bare,
    check_kernel_code,
    check_kernel_stack,
    code_operations,
    compute_dtype,
    hoisted_roots,
    indent,
    levels,
    render,
    title,
    var_slots,
)

__all__ = ["CppLayout", "layout", "fuses_sum", "layout_tag", "default_rows_per_pass",
           "cpp_source"]

_CTYPE = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
_TILE_BYTES = 16384  # formula buffer per pass: stays in L1 with the inputs
_MAX_TJ = 512
# fused sums: the columns summed per tile (block_sum: one partial sum per tile
# and component is added to the row's sum; 2048 measured 5% faster than 512 on
# the float32 Gaussian, the tile's set-up and lane sums being paid less often,
# and still keeps the lanes' sums short)
_FUSED_TJ = 2048
_WHOLE_ROW = 1 << 30  # direct_sum: a tile spans the row
# the formula buffers and row states up to these sizes are stack arrays, bigger
# ones are allocated once per call (the thread's stack is small: see limits)
_STACK_BUFFERS = 128 << 10
_STACK_STATES = 16 << 10


@dataclass(frozen=True)
class CppLayout:
    """Types and shapes of one CPU kernel's inputs and outputs.

    Attributes
    ----------
    compute : numpy.dtype
        dtype of the formula's values (float32 for float16 and float32 inputs).
    acc : numpy.dtype
        dtype the kernel accumulates and returns float state fields in.
    rows_per_pass, tile : int
        ``R`` and ``TJ`` of the template.
    fused : bool
        The j-loop sums into accumulators (no formula buffer); see
        :func:`fuses_sum`.
    """

    compute: np.dtype
    acc: np.dtype
    rows_per_pass: int
    tile: int
    fused: bool = False

    @property
    def ctype(self) -> str:
        return _CTYPE[self.compute]

    @property
    def acc_ctype(self) -> str:
        return _CTYPE[self.acc]


def default_rows_per_pass(program: Program) -> int:
    """``R`` for ``program``: rows per pass share the column loads and the
    column-only work, and give the j-loop independent chains to interleave.
    4 measured 8-13% faster than 1 on the Gaussian and LogSumExp kernels; 8 a
    further ~10% on small scalar fused sums (the Gaussian), whose 8
    accumulators still fit in registers; 4 also for the KMin family (15-45%
    faster than 1 for K = 3 to 64, tiles that cannot enter the list being
    skipped); 1 for big formulas (copies of a big j-loop body cost compile
    time; the same for big row-only parts, which are also written once per row
    of a pass)."""
    level = levels(program.formulas)
    work = {"pair": 0, "row": 0}
    for n in walk_all(program.formulas):
        if level[n] in work and n.op not in (Op.VAR, Op.CONST):
            work[level[n]] += n.dim
    pair_work = work["pair"]
    if pair_work > 48 or work["row"] > 256:
        return 1
    if fuses_sum(program) and program.reduction.dim == 1 and pair_work <= 24:
        return 8
    return 4


def fuses_sum(program: Program) -> bool:
    """Whether the kernel of ``program`` folds the formula into its state inside
    its j-loop (no formula buffer): the reduction's family decides (sums of a
    few components, except with ``kahan_scheme``)."""
    return program.reduction.family.cpu_fuses(program.reduction)


def layout(program: Program, rows_per_pass: int | None = None) -> CppLayout:
    """The kernel's types and tiling for ``program``.

    float16 programs compute in float32 (there is no portable half arithmetic
    on CPUs); a float16 accumulator is kept in float32 inside the kernel and
    rounded when the state is handed back.
    """
    if rows_per_pass is None:
        rows_per_pass = default_rows_per_pass(program)
    compute = compute_dtype(program)
    acc = np.dtype(np.float64 if program.np_acc_dtype == np.float64 else np.float32)
    red = program.reduction
    if fuses_sum(program):
        tile = _WHOLE_ROW if red.sum_mode == 0 else _FUSED_TJ
        return CppLayout(compute, acc, int(rows_per_pass), tile, True)
    width = rows_per_pass * sum(_buffer_dims(red)) * compute.itemsize
    tile = _MAX_TJ
    while tile > 64 and tile * width > _TILE_BYTES:
        tile //= 2
    return CppLayout(compute, acc, int(rows_per_pass), tile)


def _buffer_dims(red: Reduction) -> tuple[int, int]:
    return red.dim, max(1, red.weight_dim)


def layout_tag(program: Program, lay: CppLayout) -> str:
    """A text naming the state layout; the kernel returns it and the loader checks it."""
    red = program.reduction
    return (f"{red.name}:D{red.dim}:E{red.weight_dim}:K{red.k}:kahan{int(red.kahan)}:"
            f"T{lay.ctype}:A{lay.acc_ctype}")


# ---------------------------------------------------------------------------
# the source
# ---------------------------------------------------------------------------

class _Refs:
    """C spellings of the kernel's variables for one row of a pass."""

    def __init__(self, program: Program, row: int):
        self.row = row
        self.slot = var_slots(program)

    def __call__(self, node: Expr, k: Index) -> str:
        kind, slot = self.slot[node]
        if kind == "x":
            return f"_x{slot}_{self.row}[{k}]"
        if kind == "y":  # transposed: component k of column jj is at k * n + jj
            at = "jj" if k == 0 else "n + jj" if k == 1 else f"{k} * n + jj"
            return f"_y{slot}[{at}]"
        return f"_p{slot}[{k}]"


def _store_lines(rend, root: Expr, buffer: str, row: int, unroll: int) -> list[str]:
    """``buffer[row][d * TJ + jj] = root[d]`` for every component d."""
    if root.dim <= unroll:
        return [f"{buffer}[{row}][{'' if d == 0 else 'TJ + ' if d == 1 else f'{d} * TJ + '}jj] = "
                f"{bare(rend.acc(root, d))};" for d in range(root.dim)]
    return [f"for (int _d = 0; _d < {root.dim}; ++_d) "
            f"{buffer}[{row}][_d * TJ + jj] = {bare(rend.acc(root, '_d'))};"]


def _sum_lines(rend, root: Expr, row: int, widen: bool) -> list[str]:
    """``_s<row>_<d> += root[d]`` for every component d (fused sums); ``widen``:
    the accumulators are wider than the values."""
    def value(d):
        text = rend.acc(root, d)
        return f"(A){text if text.startswith('(') else f'({text})'}" if widen else bare(text)
    return [f"_s{row}_{d} += {value(d)};" for d in range(root.dim)]


def cpp_source(program: Program, rows_per_pass: int | None = None, unroll: int = 32) -> str:
    """The C++ source of ``program``'s CPU block kernel.

    Parameters
    ----------
    program : Program
    rows_per_pass : int, optional
        ``R``: output rows computed together in one pass over a tile (they
        share the column loads and the column-only part of the formula);
        default :func:`default_rows_per_pass`.
    unroll : int
        Vector dimensions up to this are written component by component.

    Returns
    -------
    str
        A self-contained C++17 translation unit exporting ``dredux_block``
        and ``dredux_layout`` (see ``kernels/cpu/block.cpp``).
    """
    lay = layout(program, rows_per_pass)
    red = program.reduction
    formulas = program.formulas
    level = levels(formulas)
    R = lay.rows_per_pass

    def draw(roots, refs, prefix, known, once=False):
        return render(roots, refs, unroll, prefix=prefix, known=known, roots_read_once=once)

    # parameters only: once per call
    const_lines, rc = draw(hoisted_roots(formulas, level, {"const"}), _Refs(program, 0),
                           "_h", None)
    known_const = dict(rc.names)
    pointers = []
    for k in range(len(program.row_vars)):
        pointers.append(f"const T* const _xin{k} = (const T*)rows_in[{k}];")
    for k in range(len(program.col_vars)):
        pointers.append(f"const T* const _yin{k} = (const T*)cols_in[{k}];")
    for k in range(len(program.param_vars)):
        pointers.append(f"const T* const _p{k} = (const T*)params_in[{k}];")
    pointers += const_lines
    dbuf, ebuf = _buffer_dims(red)
    on_stack = 0
    if not lay.fused:
        buffers = R * (dbuf + ebuf) * lay.tile * lay.compute.itemsize
        for buf, dim in (("fbuf", dbuf), ("gbuf", ebuf)):
            if buffers <= _STACK_BUFFERS:
                pointers.append(f"alignas(64) T {buf}[R][{dim} * TJ];")
            else:
                pointers += [f"Heap<T> {buf}_heap((size_t)R * {dim} * TJ);",
                             f"if (!{buf}_heap.p) return 2;",
                             f"T (*const {buf})[{dim} * TJ] = (T (*)[{dim} * TJ]){buf}_heap.p;"]
        on_stack += buffers if buffers <= _STACK_BUFFERS else 0
    # an upper bound of the row states' size (sums keep W lanes per component)
    state = red.family.cpu_state(red)
    lanes = 64 // lay.compute.itemsize + 2 if "lanes.hpp" in state.snippets else 1
    states = R * lanes * red.state_bytes()
    row_state = []
    if states <= _STACK_STATES:
        row_state.append("RowState st[R];")
        on_stack += states
    else:
        pointers += ["Heap<RowState> st_heap(R);", "if (!st_heap.p) return 2;",
                     "RowState* const st = st_heap.p;"]

    # per row, before the j-loop
    rows, known_rows, row_renderers, pair_renderers = [], [], [], []
    row_roots = hoisted_roots(formulas, level, {"row"})
    for r in range(R):
        # the rows past m of the last pass read row m - 1 (their states are not stored)
        rows.append("const int64_t _i0 = i0;" if r == 0 else
                    f"const int64_t _i{r} = i0 + {r} < m ? i0 + {r} : m - 1;")
        for k, v in enumerate(program.row_vars):
            rows.append(f"T _x{k}_{r}[{v.dim}];")
            rows.append(f"for (int _c = 0; _c < {v.dim}; ++_c) "
                        f"_x{k}_{r}[_c] = _xin{k}[_i{r} * {v.dim} + _c];")
        lines, rr = draw(row_roots, _Refs(program, r), f"_r{r}_", known_const)
        row_renderers.append(rr)
        rows += lines
        known_rows.append(dict(rr.names))

    # per column, shared by the rows of the pass
    tile = [f"const T* const _y{k} = _yin{k} + jt;" for k in range(len(program.col_vars))]
    col_lines, rcol = draw(hoisted_roots(formulas, level, {"col"}), _Refs(program, 0), "_c",
                           known_const)
    pair = list(col_lines)
    for r in range(R):
        known = {**known_rows[r], **rcol.names}
        lines, rp = draw(formulas, _Refs(program, r), f"_q{r}_", known, once=True)
        pair_renderers.append(rp)
        if lay.fused:
            lines += _sum_lines(rp, formulas[0], r, lay.acc != lay.compute)
        else:
            lines += _store_lines(rp, formulas[0], "fbuf", r, unroll)
            if len(formulas) > 1:
                lines += _store_lines(rp, formulas[1], "gbuf", r, unroll)
        pair += ["{"] + ["    " + line for line in lines] + ["}"]

    arrays = (rc.array_elems + rcol.array_elems + sum(r.array_elems for r in row_renderers)
              + sum(r.array_elems for r in pair_renderers)
              + R * sum(v.dim for v in program.row_vars))
    check_kernel_stack(program, on_stack + arrays * lay.compute.itemsize, "CPU")
    # code outside the j-loop costs the compiler about half as much per operation
    # (measured: 27,000 operations of row code compile faster than 22,000 of loop body)
    check_kernel_code(program, code_operations(pair) + code_operations(const_lines + rows) // 2,
                      "CPU")

    if lay.fused:
        sums = [f"_s{r}_{d}" for r in range(R) for d in range(red.dim)]
        tile.append(f"A {' = 0, '.join(sums)} = 0;")
        simd = f" reduction(+: {', '.join(sums)})"
        fold = [f"st[{r}].add({d}, _s{r}_{d});" for r in range(R) for d in range(red.dim)]
    else:
        simd = ""
        fold = ["for (int r = 0; r < R; ++r) st[r].update(fbuf[r], gbuf[r], nt, j0 + jt);"]

    return templates.fill(
        templates.load("cpu/block.cpp"),
        TITLE=title(program),
        MATH=templates.load("cpu/math.hpp"),
        STATES=templates.states("cpu", state.snippets),
        T=lay.ctype, A=lay.acc_ctype, W=str(64 // lay.compute.itemsize), TJ=str(lay.tile),
        R=str(R), STATE=state.type,
        POINTERS=indent(pointers, 1), ROWSTATE=indent(row_state, 2), ROWS=indent(rows, 2),
        TILE=indent(tile, 3),
        SIMD=simd, PAIR=indent(pair, 4), FOLD=indent(fold, 3),
        LAYOUT=layout_tag(program, lay))
