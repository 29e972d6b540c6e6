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

import functools
from dataclasses import dataclass

import numpy as np

from ..ir import Expr, Op, walk
from ..program import Program
from ..reductions import Reduction
from . import templates
from .products import lower_products
from .render import (
    Index,
    Renderer,
    bare,
    check_kernel_code,
    check_kernel_stack,
    code_operations,
    compute_dtype,
    contractions,
    hoisted_roots,
    indent,
    levels,
    literal,
    render,
    streamed_weights,
    title,
    var_slots,
    variable_slice,
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
# kernels with contractions: columns per tile (their R x TJ values stay in L1),
# bytes of y values per panel (they stay in L2 while every row visits them),
# partial sums of the register-blocked loop (R rows x NV vectors: 12 hide the
# FMA latency on two pipes and leave registers for the loads on AVX2; 6 x 2
# measured 1.5x faster than 4 x 2 and 5 x 2 about as fast, SqDist at D = 64)
_CONTRACT_TJ = 512
# ... and the most bytes of the contractions' R x TJ buffers (kernels with many
# contractions, such as matrix products, take smaller tiles and fewer rows)
_PRODUCT_BUFFERS = 64 << 10
_SMALLEST_TILE = 64
_PANEL_BYTES = 256 << 10
_CONTRACT_ACCUMULATORS = 12
# ... and on AVX-512 targets (32 vector registers) for a kernel whose
# contractions each have their own loop and read one packed column variable,
# of length _WIDE_FROM or more: 24 partial sums (6 rows x 4 vectors), which
# keep both the FMA pipes and the separate add pipes (the subtraction of x -
# y) busier. Measured on AMD Zen 4 (M = N = 20,000, float32, % of the FMA
# peak): SqDist at D = 64 summed 57 -> 66 %, the Gaussian 53 -> 58 %, K-NN
# 47 -> 52 %; D = 128 and 256: Gaussian 54 -> 61 % and 55 -> 64 %, K-NN 49 ->
# 52 % and 48 -> 59 %; float64 D = 64: Gaussian 50 -> 58 %, K-NN 46 -> 60 %;
# at D = 16 no gain (the summed SqDist slower). The C++ keeps both loops and
# the preprocessor picks one (the source does not depend on the target).
_WIDE_ACCUMULATORS = 24
_WIDE_FROM = 32
_CONTRACT_ROWS = 6
# the loops of a lowered product's contractions: rows x contractions per block
# (NV = 2 vectors: 2 x 2 x 4 = 16 vector partial sums and 4 vectors of u).
# Measured (SqNorm2(MatVecMult(S, x - y)), M = N = 4,000, % of the FMA peak):
# 2 x 4 blocks 68-75 % (f32) and 67-85 % (f64) at D = 16 and 32, where 2 x 3
# gave 65-72 / 69-81 %; at D = 64, 2 x 3 84-91 % and 2 x 4 70-76 % (3 x 3:
# 87-91 %, 1 x 8: 83 %); one loop per contraction, 50-54 %.
_PRODUCT_ROWS = 2
_PRODUCT_SUMS = (4, 32, 3)  # 4 contractions per block up to length 32, else 3
# A column matrix's values are vector loads (one per column block), which a
# loop per contraction shares among its R rows, and the shared loops among 2:
# SqNorm2(MatVecMult(A_j, x - y)) took 29 / 54 / 28 % of the FMA peak at D =
# 16 / 32 / 64 with a loop per contraction, 25 / 40 / 40 % with shared loops
# (1 % at D = 32 per pair): shared from D = 64 on
_COL_MATRIX_SHARED = 32
_NO_PANELS = 1 << 62
# row variables up to this many components are copied to the stack for a pass
# (registers, for the unrolled code); wider ones are read in place
_COPIED_ROW = 256


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
    panel : int
        ``NP``: columns per panel when the kernel has contractions (their y
        values stay in the L2 cache while every row visits the panel); 0: one
        panel spans all columns.
    streamed : bool
        A wide sum (:func:`streamed_weights`): the j-loop stores the formula's
        scalar pair values, then each output component is summed over the
        tile by its own vectorised loop.
    as_given : tuple of int
        Slots of the column variables the kernel takes as given, ``(n, dim)``
        rows: those only the contraction loops read, which the panel packing
        transposes itself (block by block, in cache). The other column
        variables come transposed, ``(dim, n)``, so that the j-loop reads each
        component with unit stride.
    gemm_fold : bool
        The streamed sum is ``w * G`` (:func:`gemm_fold_term`) and its output
        loop is a GEMM micro-kernel over the given rows of G's column
        variables (:func:`_gemm_fold_lines`); otherwise the
        component-by-component loop.
    """

    compute: np.dtype
    acc: np.dtype
    rows_per_pass: int
    tile: int
    fused: bool = False
    panel: int = 0
    streamed: bool = False
    as_given: tuple[int, ...] = ()
    gemm_fold: bool = False

    @property
    def ctype(self) -> str:
        return _CTYPE[self.compute]

    @property
    def acc_ctype(self) -> str:
        return _CTYPE[self.acc]


def _contractions(formulas, level: dict) -> list[Expr]:
    """The contractions of a CPU kernel (:func:`dredux.codegen.render.contractions`),
    slices of column variables among their terms: the CPU loops read them from
    the packed panel (the rows of a column matrix)."""
    return contractions(formulas, level, col_slices=True)


def default_rows_per_pass(program: Program) -> int:
    """``R`` for ``program``: rows per pass share the column loads and the
    column-only work, and give the j-loop independent chains to interleave.
    4 measured 8-13% faster than 1 on the Gaussian and LogSumExp kernels; 8 a
    further ~10% on small scalar fused sums (the Gaussian), whose 8
    accumulators still fit in registers; 4 also for the KMin family (15-45%
    faster than 1 for K = 3 to 64, tiles that cannot enter the list being
    skipped); 1 for big formulas (copies of a big j-loop body cost compile
    time; the same for big row-only parts, which are also written once per row
    of a pass). Kernels with contractions (:func:`contractions`) take 6 (2
    when the rest of the j-loop is big, fewer when their R x TJ buffers would
    not fit :data:`_PRODUCT_BUFFERS` at the smallest tile): the register-blocked
    loop keeps R x NV vectors of partial sums, the rows of a pass sharing each
    y load."""
    level = levels(program.formulas)
    work = {"pair": 0, "row": 0}
    contracted = _contractions(program.formulas, level)
    seen = set(contracted)  # computed by the register-blocked loop, not the j-loop
    # a streamed sum's j-loop computes its weights only (the output components
    # are summed after it, R x DU at a time)
    for f in streamed_weights(program, level) or program.formulas:
        for n in walk(f, seen):
            if level[n] in work and n.op not in (Op.VAR, Op.CONST):
                work[level[n]] += n.dim
    pair_work = work["pair"]
    if contracted and work["row"] <= 256:
        rows = _CONTRACT_ROWS if pair_work <= 100 else 2
        # fewer rows when the contractions' tile buffers would not fit otherwise
        per_row = len(contracted) * _SMALLEST_TILE * compute_dtype(program).itemsize
        while rows > 1 and rows * per_row > _PRODUCT_BUFFERS:
            rows -= 1
        return rows
    if pair_work > 48 or work["row"] > 256:
        return 1
    if fuses_sum(program) and program.reduction.dim == 1 and pair_work <= 24:
        return 8
    return 4


# ---------------------------------------------------------------------------
# matrix products as contractions (dredux/codegen/products.py)
# ---------------------------------------------------------------------------

# Each lowered product's buffers (one R x TJ tile per contraction) must fit
# _PRODUCT_BUFFERS at the smallest tile and one row per pass, or the products
# stay in the pair loop.
_CPU_PRODUCTS = frozenset((Op.MATVECMULT, Op.VECMATMULT, Op.TENSORDOT))


@functools.lru_cache(maxsize=64)
def lowered(program: Program) -> Program:
    """``program`` with its pair-level matrix products as contractions
    (:func:`dredux.codegen.products.lower_products`); ``program`` itself when
    it has none, or when their tile buffers would not fit."""
    out = lower_products(program, _CPU_PRODUCTS, col_matrices=True)
    if out is program:
        return program
    count = len(_contractions(out.formulas, levels(out.formulas)))
    size = count * _SMALLEST_TILE * compute_dtype(out).itemsize  # one row per pass
    return out if size <= _PRODUCT_BUFFERS else program


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
    program = lowered(program)
    if rows_per_pass is None:
        rows_per_pass = default_rows_per_pass(program)
    compute = compute_dtype(program)
    acc = np.dtype(np.float64 if program.np_acc_dtype == np.float64 else np.float32)
    red = program.reduction
    level = levels(program.formulas)
    contracted = _contractions(program.formulas, level)
    weights = streamed_weights(program, level)
    streamed = weights is not None
    term = (gemm_fold_term(program, weights, contracted) if streamed and acc == compute
            else None)
    # the column variables read from their given rows: by the panel packing of
    # the contraction loops, by the GEMM output loop
    given = {v for c in contracted for v in walk(c) if v in program.col_vars}
    panel = 0
    if contracted:
        # y values the register-blocked loops read per column
        per_column = max(1, sum(v.dim for v in given)) * compute.itemsize
        panel = max(64, (_PANEL_BYTES // per_column) // 64 * 64)
    if term is not None:
        given |= {v for v in walk(term) if v in program.col_vars}
    # what the j-loop (and a component-by-component output loop) read otherwise
    seen = set(contracted)
    loops = {n for f in (weights if term is not None else program.formulas)
             for n in walk(f, seen)}
    as_given = tuple(k for k, v in enumerate(program.col_vars)
                     if v.dim > 1 and v in given and v not in loops)
    fused = fuses_sum(program) or streamed
    if fused:
        tile = (_CONTRACT_TJ if panel or streamed else
                _WHOLE_ROW if red.sum_mode == 0 else _FUSED_TJ)
    else:
        width = rows_per_pass * sum(_buffer_dims(red)) * compute.itemsize
        tile = _MAX_TJ
        while tile > 64 and tile * width > _TILE_BYTES:
            tile //= 2
    if panel:  # whole tiles per panel, the contractions' tile buffers within bounds
        tile = min(tile, panel)
        per_column = len(contracted) * rows_per_pass * compute.itemsize
        while tile > _SMALLEST_TILE and tile * per_column > _PRODUCT_BUFFERS:
            tile //= 2
        panel = panel // tile * tile
    return CppLayout(compute, acc, int(rows_per_pass), tile, fused, panel, streamed, as_given,
                     term is not None)


_GEMM_OPS = frozenset((Op.ADD, Op.SUB, Op.MUL, Op.NEG, Op.SQUARE))
_INFIX = {Op.ADD: "+", Op.SUB: "-", Op.MUL: "*"}


def gemm_fold_term(program: Program, weights: list[Expr] | None,
                   contracted: list[Expr]) -> Expr | None:
    """``G`` when the streamed sum is ``w * G``, else None.

    ``w`` is the one weight, ``G`` an element-wise tree (``+ - *``, ``Square``,
    ``Minus``) of D-component row and column variables and constants, D a
    multiple of 32 (whole pairs of the widest vectors), and G's column
    variables are read nowhere in the j-loop (the contraction loops
    ``contracted`` may read them: they pack them from the same given rows).
    The Gaussian convolution ``Exp(-SqDist(x, y)) * v``, attention's
    ``Exp((x|y)) * v`` and the gradient ``(-2 w) * (x - y)`` have this shape."""
    root = program.formulas[0]
    if not weights or len(weights) != 1 or root.op is not Op.MUL or root.dim % 32:
        return None
    w = weights[0]
    if root.args[0] is w:
        term = root.args[1]
    elif root.args[1] is w:
        term = root.args[0]
    else:
        return None
    rows, cols = set(program.row_vars), set(program.col_vars)
    for n in walk(term):
        if n.op is Op.CONST:
            continue
        if n.dim != root.dim or not (n.op in _GEMM_OPS or n.op is Op.VAR and n in rows | cols):
            return None
    reads = set(walk(w, set(contracted)))
    if any(v in reads for v in walk(term) if v in cols):
        return None
    return term


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


# GCC's pre-allocation scheduling (compile/cpp.py's GCC_FLAGS, good for the pair
# loop) halves the speed of the contraction loops: it hoists the loads of every
# row's broadcast ahead of the FMAs and spills the partial sums (SqDist at
# D = 256, one thread: 17 G instead of 30-37 G pair-components/s). Kernels with
# contractions turn it off for the whole file, so that every inlined function
# keeps the same options.
_NO_SCHEDULE = """#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-schedule-insns")
#endif
"""

_VECTOR_TYPES = """// Vectors of the register-blocked contraction loops: GCC/Clang vector
// extensions, as wide as the target's registers (chosen when compiled).
#if defined(__AVX512F__)
#define _DR_VBYTES 64
#elif defined(__AVX__)
#define _DR_VBYTES 32
#else
#define _DR_VBYTES 16
#endif
typedef T V __attribute__((vector_size(_DR_VBYTES)));
static const int VL = _DR_VBYTES / (int)sizeof(T);  // values per vector
// vectors of partial sums per row (more with AVX-512's 32 registers)
static const int NV = _DR_VBYTES == 64 ? @@NV_WIDE@@ : @@NV@@;
static const int JB = NV * VL;  // columns per block of the contraction loops
static inline V _dr_vload(const T* p) {
    V v;
    __builtin_memcpy(&v, p, sizeof(V));
    return v;
}
static inline void _dr_vstore(T* p, V v) { __builtin_memcpy(p, &v, sizeof(V)); }
"""


class _BlockRefs:
    """Spellings of the variables inside a contraction's block loop: row ``row``'s
    component ``_d``, the y values of the block as vectors (vector ``v``)."""

    def __init__(self, program: Program, row: int, v: int):
        self.row, self.v = row, v
        self.slot = var_slots(program)

    def __call__(self, node: Expr, k: Index) -> str:
        kind, slot = self.slot[node]
        if kind == "x":
            return f"_x{slot}_{self.row}[{k}]"
        if kind == "y":
            if node.dim == 1:
                return f"_yw{slot}_{self.v}"
            if k == "_d":
                return f"_yv{slot}_{self.v}"
            # another component of a wider variable (a column matrix's row k:
            # component k * n + _d), from the same packed block
            return (f"_dr_vload(_ypk{slot} + (jt - jp + _jb) * {node.dim} + ({k}) * JB"
                    f" + {self.v} * VL)")
        return f"_p{slot}[{k}]"


def _term(rend, node: Expr) -> str:
    """Component ``_d`` of the summed term of a contraction node."""
    if node.op is Op.SCALPROD:
        a, b = node.args
        return f"{rend.acc(a, '_d')} * {rend.acc(b, '_d')}"
    return bare(rend.acc(node.args[0], "_d"))


def _packed(program: Program, contracted: list[Expr]) -> list[tuple[int, int]]:
    """(slot, dim) of the column variables the contraction loops read."""
    used = {v for c in contracted for v in walk(c)}
    return [(k, v.dim) for k, v in enumerate(program.col_vars) if v in used]


def _pack_lines(packed: list[tuple[int, int]], as_given=()) -> list[str]:
    """Copy the panel's columns of each packed variable into ``_ypk<k>``:
    block b of JB columns at ``b * dim * JB``, component d of the block's
    columns contiguous at ``d * JB``, zeros past the panel's last column.
    Variables in ``as_given`` are read as ``(n, dim)`` rows (a transposition
    of JB x dim blocks: contiguous reads, writes within the block)."""
    lines = ["const int64_t _np = jpe - jp;"]
    for k, dim in packed:
        if k in as_given:
            lines += ["for (int64_t _b = 0; _b < _np; _b += JB)",
                      "    for (int _u = 0; _u < JB; ++_u) {",
                      f"        T* const _dst = _ypk{k} + _b * {dim} + _u;",
                      f"        const T* const _src = _yin{k} + (jp + _b + _u) * {dim};",
                      "        const bool _in = _b + _u < _np;",
                      f"        for (int _d = 0; _d < {dim}; ++_d) "
                      "_dst[_d * JB] = _in ? _src[_d] : (T)0;",
                      "    }"]
            continue
        lines += ["for (int64_t _b = 0; _b < _np; _b += JB)",
                  f"    for (int _d = 0; _d < {dim}; ++_d)",
                  "        for (int _u = 0; _u < JB; ++_u)",
                  f"            _ypk{k}[_b * {dim} + _d * JB + _u] = _b + _u < _np ? "
                  f"_yin{k}[(int64_t)_d * n + jp + _b + _u] : (T)0;"]
    return lines


def _inlined(nodes: list[Expr], known: dict) -> frozenset:
    """The nodes of the contractions ``nodes`` their block loops write inline:
    all but variables, constants, the contractions themselves and what the
    row code names (``known``)."""
    return frozenset(n for node in nodes for n in walk(node)
                     if n.op not in (Op.VAR, Op.CONST) and n is not node and n not in known)


def _block_loop(program: Program, nodes: list[Expr], nv: int, acc: list[str],
                body: list[str], stores: list[str]) -> list[str]:
    """One loop over the tile's blocks of JB columns computing contractions
    ``nodes``: the vector partial sums ``acc`` zeroed, the D loop outermost
    (each column variable's vectors of component ``_d`` loaded once from its
    packed panel, then ``body``), then ``stores``."""
    packed = dict(_packed(program, nodes))
    wide = [k for k, dim in packed.items() if dim > 1]
    block = [f"V {' = {}, '.join(acc)} = {{}};"]
    block += [f"const V _yw{k}_{v} = _dr_vload(_ypk{k} + (jt - jp + _jb) + {v} * VL);"
              for k, dim in packed.items() if dim == 1 for v in range(nv)]
    loads = [f"const T* const _yd{k} = _ypk{k} + (jt - jp + _jb) * {packed[k]} + _d * JB;"
             for k in wide]
    loads += [f"const V _yv{k}_{v} = _dr_vload(_yd{k} + {v} * VL);"
              for k in wide for v in range(nv)]
    block += ([f"for (int _d = 0; _d < {nodes[0].args[0].dim}; ++_d) {{"]
              + ["    " + b for b in loads + body] + ["}"] + stores)
    return (["for (int _jb = 0; _jb < nt; _jb += JB) {"] + ["    " + b for b in block]
            + ["}"])


def _contract_lines(program: Program, node: Expr, c: int, R: int, known: list[dict],
                    unroll: int, nv: int) -> list[str]:
    """The register-blocked loop computing contraction ``node`` for the tile into
    ``_cb<c>[r][jj]``: blocks of JB columns, R x NV vector partial sums, the D
    loop outermost (each x value and y vector loaded once per block, the y
    values from the packed panel; the zero-padded columns past the panel's
    end are computed and never read)."""
    inside = _inlined([node], known[0])

    def term(refs, r):
        return _term(Renderer(refs, unroll, known=known[r], inline=inside), node)

    body = [f"_a{r}_{v} += {term(_BlockRefs(program, r, v), r)};"
            for r in range(R) for v in range(nv)]
    stores = [f"_dr_vstore(&_cb{c}[{r}][_jb + {v} * VL], _a{r}_{v});"
              for r in range(R) for v in range(nv)]
    return _block_loop(program, [node], nv, [f"_a{r}_{v}" for r in range(R) for v in range(nv)],
                       body, stores)


def _product_groups(contracted: list[Expr], level: dict) -> list[list[int]]:
    """The contractions (indices into ``contracted``) in loops: the
    ``Scalprod(w_k, u)`` of one pair-level vector ``u`` with weights ``w_k`` of
    the row or the parameters, or slices of a column variable beyond
    _COL_MATRIX_SHARED components (the output components of a lowered matrix
    product, :mod:`dredux.codegen.products`) share one loop each; the others
    have a loop of their own."""
    groups: dict = {}
    for c, node in enumerate(contracted):
        key = c
        if node.op is Op.SCALPROD:
            w, u = node.args
            if level[u] == "pair" and (level[w] in ("row", "const") or (
                    level[w] == "col" and u.dim > _COL_MATRIX_SHARED and variable_slice(w))):
                key = u
        groups.setdefault(key, []).append(c)
    return list(groups.values())


def _product_lines(program: Program, group: list[tuple[int, Expr]], R: int,
                   known: list[dict], unroll: int) -> list[str]:
    """The loops computing the contractions ``Scalprod(w_k, u)`` of ``group``
    ((buffer index, node) pairs sharing u) into their ``_cb<c>``: blocks of
    _PRODUCT_ROWS rows x NV vectors x 3 or 4 contractions (_PRODUCT_SUMS) of
    partial sums, the D loop outermost; u is computed once per row, vector and
    component and serves 3 or 4 multiply-adds (a loop per
    contraction would compute ``x - y`` again for each: one subtraction per
    multiply-add, at most half of the FMA peak). Each sum runs over d in
    order, as in :func:`_contract_lines`: the same values."""
    nodes = [node for _, node in group]
    u = nodes[0].args[1]
    inside = _inlined(nodes, known[0])
    nv = _vectors(R)
    few, upto, more = _PRODUCT_SUMS
    sums = few if u.dim <= upto else more
    lines = []
    for r0 in range(0, R, _PRODUCT_ROWS):
        rows = range(r0, min(R, r0 + _PRODUCT_ROWS))
        rend = {(r, v): Renderer(_BlockRefs(program, r, v), unroll, known=known[r],
                                 inline=inside) for r in rows for v in range(nv)}
        for k0 in range(0, len(group), sums):
            part = list(enumerate(group[k0:k0 + sums]))
            acc = [f"_a{i}_{r}_{v}" for i, _ in part for r in rows for v in range(nv)]
            body = [f"const V _u{r}_{v} = {bare(rend[r, v].acc(u, '_d'))};"
                    for r in rows for v in range(nv)]
            body += [f"_a{i}_{r}_{v} += {rend[r, v].acc(node.args[0], '_d')} * _u{r}_{v};"
                     for i, (_, node) in part for r in rows for v in range(nv)]
            stores = [f"_dr_vstore(&_cb{c}[{r}][_jb + {v} * VL], _a{i}_{r}_{v});"
                      for i, (c, _) in part for r in rows for v in range(nv)]
            lines += _block_loop(program, [node for _, (_, node) in part], nv, acc, body,
                                 stores)
    return lines


def _streamed_lines(program: Program, weights: list[Expr], R: int, known_rows: list[dict],
                    col_names: dict, unroll: int, widen: bool) -> list[str]:
    """After the j-loop of a streamed sum: for each group of DU output components,
    one vectorised loop over the tile's columns adds ``F_d`` into R x DU
    accumulators (enough independent sums to hide the add latency), then
    hands them to the row states."""
    root = program.formulas[0]
    dim = program.reduction.dim
    du = next(u for u in (4, 2, 1) if dim % u == 0 and R * u <= 12)
    level = levels(program.formulas)
    inside = frozenset(n for n in walk(root) if n.op not in (Op.VAR, Op.CONST)
                       and level[n] in ("pair", "col") and n.dim > 1)
    sums, body = [], []
    for r in range(R):
        known = {**known_rows[r], **col_names,
                 **{w: f"_wb{c}[{r}][jj]" for c, w in enumerate(weights)}}
        rend = Renderer(_Refs(program, r), unroll, known=known, inline=inside)
        for u in range(du):
            text = rend.acc(root, "_d" if u == 0 else f"(_d + {u})")
            sums.append(f"_o{r}_{u}")
            body.append(f"_o{r}_{u} += {f'(A)({bare(text)})' if widen else bare(text)};")
    lines = [f"for (int _d = 0; _d < {dim}; _d += {du}) {{",
             f"    A {' = 0, '.join(sums)} = 0;",
             f"#pragma omp simd reduction(+: {', '.join(sums)})",
             "    for (int jj = 0; jj < nt; ++jj) {"]
    lines += ["        " + b for b in body] + ["    }"]
    lines += [f"    st[{r}].add({'_d' if u == 0 else f'_d + {u}'}, _o{r}_{u});"
              for r in range(R) for u in range(du)]
    return lines + ["}"]


def _gemm_fold_lines(program: Program, term: Expr, R: int) -> list[str]:
    """After the j-loop of a streamed ``w * G``: the tile's
    ``O[r][d] += sum_jj W[r][jj] G(x_r[d], y_jj[d])`` as a GEMM micro-kernel.
    For each group of 2 vectors of output components and each group of G
    rows of the pass: G x 2 vector accumulators over the tile's columns, the
    rows' components in registers, each column's components loaded once
    from its given row (2 vector loads per variable), each row's weight
    broadcast once; no sums across lanes. G = 6 rows when the term reads no
    row variable (12 accumulators), 3 otherwise (6 accumulators and 6 row
    vectors per row variable)."""
    dim = term.dim
    slot = var_slots(program)
    used = set(walk(term))
    xs = [v for v in program.row_vars if v in used]
    ys = [v for v in program.col_vars if v in used]
    group = next(g for g in ((3, 2, 1) if xs else (6, 4, 3, 2, 1)) if R % g == 0)

    def spell(node: Expr, r: int, u: int) -> str:
        if node.op is Op.CONST:
            return literal(node.params[0])
        if node.op is Op.VAR:
            kind, k = slot[node]
            return f"_xv{k}_{r}_{u}" if kind == "x" else f"_yv{k}_{u}"
        a = [spell(c, r, u) for c in node.args]
        if node.op is Op.NEG:
            return f"(-{a[0]})"
        if node.op is Op.SQUARE:
            return f"({a[0]} * {a[0]})"
        return f"({a[0]} {_INFIX[node.op]} {a[1]})"

    lines = [f"for (int _d = 0; _d < {dim}; _d += 2 * VL) {{",
             f"for (int _r0 = 0; _r0 < R; _r0 += {group}) {{"]
    accs = [f"_g{r}_{u}" for r in range(group) for u in (0, 1)]
    lines.append(f"    V {' = {}, '.join(accs)} = {{}};")
    for v in xs:
        k = slot[v][1]
        for r in range(group):
            lines.append(f"    const T* const _xr{k}_{r} = _xrow{k}[_r0 + {r}] + _d;")
            lines += [f"    const V _xv{k}_{r}_{u} = _dr_vload(_xr{k}_{r} + {u} * VL);"
                      for u in (0, 1)]
    lines.append("    for (int jj = 0; jj < nt; ++jj) {")
    for v in ys:
        k = slot[v][1]
        lines += [f"        const T* const _yr{k} = _yin{k} + (int64_t)(jt + jj) * {dim} + _d;",
                  f"        const V _yv{k}_0 = _dr_vload(_yr{k}), "
                  f"_yv{k}_1 = _dr_vload(_yr{k} + VL);"]
    for r in range(group):
        lines.append(f"        {{ const T _w = _wb0[_r0 + {r}][jj]; "
                     + " ".join(f"_g{r}_{u} += _w * {spell(term, r, u)};" for u in (0, 1))
                     + " }")
    lines += ["    }", "    for (int _l = 0; _l < VL; ++_l) {"]
    lines += [f"        st[_r0 + {r}].add(_d + _l, _g{r}_0[_l]); "
              f"st[_r0 + {r}].add(_d + VL + _l, _g{r}_1[_l]);" for r in range(group)]
    return lines + ["    }", "}", "}"]


def _vectors(rows: int, accumulators: int = _CONTRACT_ACCUMULATORS) -> int:
    """NV: vectors of partial sums per row of the contraction loops, a power of
    two (JB then divides the tiles, which are multiples of 64 columns)."""
    nv = 1
    while nv < 4 and 2 * nv * rows <= accumulators:
        nv *= 2
    return nv


def _wide_vectors(program: Program, contracted: list[Expr], groups: list[list[int]],
                  rows: int) -> int:
    """NV on AVX-512 targets (:data:`_WIDE_ACCUMULATORS`): more partial sums for
    kernels of plain contraction loops (one per contraction, one packed column
    variable each) of length :data:`_WIDE_FROM` or more, else :func:`_vectors`."""
    if (contracted and all(len(g) == 1 for g in groups)
            and max(node.args[0].dim for node in contracted) >= _WIDE_FROM
            and all(len(_packed(program, [node])) <= 1 for node in contracted)):
        return _vectors(rows, _WIDE_ACCUMULATORS)
    return _vectors(rows)


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
    program = lowered(program)
    lay = layout(program, rows_per_pass)
    red = program.reduction
    formulas = program.formulas
    level = levels(formulas)
    R = lay.rows_per_pass
    contracted = _contractions(formulas, level)
    # nodes the j-loop computes: the contractions' terms are the block loops' own
    outside: set[Expr] = set(contracted)
    for f in formulas:
        for _ in walk(f, outside):
            pass

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
    state = red.family.cpu_state(red, lay.fused)
    lanes = 64 // lay.compute.itemsize + 2 if "lanes.hpp" in state.snippets else 1
    states = R * lanes * red.state_bytes()
    init = ["for (int r = 0; r < R; ++r) st[r].init();"]
    store = ["for (int r = 0; r < R && i0 + r < ie; ++r) st[r].store(state, i0 + r);"]
    if lay.panel:  # every row's state lives across the panels of its cluster
        pointers += ["Heap<RowState> st_all((size_t)m + R);", "if (!st_all.p) return 2;"]
        row_state = ["RowState* const st = st_all.p + i0;", "if (first) " + init[0]]
        store = ["if (last) " + store[0]]
    elif states <= _STACK_STATES:
        row_state = ["RowState st[R];"] + init
        on_stack += states
    else:
        pointers += ["Heap<RowState> st_heap(R);", "if (!st_heap.p) return 2;",
                     "RowState* const st = st_heap.p;"]
        row_state = init
    for c in range(len(contracted)):
        pointers.append(f"alignas(64) T _cb{c}[R][TJ];")
        on_stack += R * lay.tile * lay.compute.itemsize
    packed = _packed(program, contracted)
    for k, dim in packed:
        pointers += [f"Heap<T> _ypk{k}_heap((size_t)(NP + JB) * {dim});",
                     f"if (!_ypk{k}_heap.p) return 2;",
                     f"T* const _ypk{k} = _ypk{k}_heap.p;"]

    # per row, before the j-loop
    rows, known_rows, row_renderers, pair_renderers = [], [], [], []
    row_roots = hoisted_roots(formulas, level, {"row"})
    for r in range(R):
        # the rows past the cluster's end in its last pass read its last row
        # (their states are not stored)
        rows.append("const int64_t _i0 = i0;" if r == 0 else
                    f"const int64_t _i{r} = i0 + {r} < ie ? i0 + {r} : ie - 1;")
        for k, v in enumerate(program.row_vars):
            if v.dim > _COPIED_ROW:  # read in place (a copy would fill the stack)
                rows.append(f"const T* const _x{k}_{r} = _xin{k} + _i{r} * {v.dim};")
                continue
            rows.append(f"T _x{k}_{r}[{v.dim}];")
            rows.append(f"for (int _c = 0; _c < {v.dim}; ++_c) "
                        f"_x{k}_{r}[_c] = _xin{k}[_i{r} * {v.dim} + _c];")
        lines, rr = draw(row_roots, _Refs(program, r), f"_r{r}_", known_const)
        row_renderers.append(rr)
        rows += lines
        known_rows.append(dict(rr.names))

    # per column, shared by the rows of the pass
    tile = [f"const T* const _y{k} = _yin{k} + jt;" for k in range(len(program.col_vars))]
    col_roots = [n for n in hoisted_roots(formulas, level, {"col"}) if n in outside]
    col_lines, rcol = draw(col_roots, _Refs(program, 0), "_c", known_const)
    pair = list(col_lines)
    contract = []
    groups = _product_groups(contracted, level)
    nv, nv_wide = _vectors(R), _wide_vectors(program, contracted, groups, R)
    for group in groups:
        if len(group) == 1:
            loop = _contract_lines(program, contracted[group[0]], group[0], R, known_rows,
                                   unroll, nv)
            if nv_wide != nv:  # the AVX-512 variant, picked by the preprocessor
                loop = ["#if _DR_VBYTES == 64", *_contract_lines(
                    program, contracted[group[0]], group[0], R, known_rows, unroll, nv_wide),
                    "#else", *loop, "#endif"]
            contract += loop
        else:
            contract += _product_lines(program, [(c, contracted[c]) for c in group], R,
                                       known_rows, unroll)
    weights = streamed_weights(program, level) if lay.streamed else []
    for c in range(len(weights)):
        pointers.append(f"alignas(64) T _wb{c}[R][TJ];")
        on_stack += R * lay.tile * lay.compute.itemsize
    for r in range(R):
        known = {**known_rows[r], **rcol.names,
                 **{node: f"_cb{c}[{r}][jj]" for c, node in enumerate(contracted)}}
        lines, rp = draw(weights if lay.streamed else formulas, _Refs(program, r),
                         f"_q{r}_", known, once=True)
        pair_renderers.append(rp)
        if lay.streamed:
            lines += [f"_wb{c}[{r}][jj] = {bare(rp.acc(w, 0))};"
                      for c, w in enumerate(weights)]
        elif lay.fused:
            lines += _sum_lines(rp, formulas[0], r, lay.acc != lay.compute)
        else:
            lines += _store_lines(rp, formulas[0], "fbuf", r, unroll)
            if len(formulas) > 1:
                lines += _store_lines(rp, formulas[1], "gbuf", r, unroll)
        pair += ["{"] + ["    " + line for line in lines] + ["}"]

    arrays = (rc.array_elems + rcol.array_elems + sum(r.array_elems for r in row_renderers)
              + sum(r.array_elems for r in pair_renderers)
              + R * sum(v.dim for v in program.row_vars if v.dim <= _COPIED_ROW))
    check_kernel_stack(program, on_stack + arrays * lay.compute.itemsize, "CPU")
    # code outside the j-loop costs the compiler about half as much per operation
    # (measured: 27,000 operations of row code compile faster than 22,000 of loop body)
    check_kernel_code(program, code_operations(pair + contract)
                      + code_operations(const_lines + rows) // 2, "CPU")

    if lay.gemm_fold:
        simd = ""
        term = gemm_fold_term(program, weights, contracted)
        used = set(walk(term))
        # the rows of the pass by index (arrays or pointers into the inputs)
        fold = [f"const T* const _xrow{k}[R] = {{"
                + ", ".join(f"_x{k}_{r}" for r in range(R)) + "};"
                for k, v in enumerate(program.row_vars) if v in used]
        fold += _gemm_fold_lines(program, term, R)
    elif lay.streamed:
        simd = ""
        fold = _streamed_lines(program, weights, R, known_rows, rcol.names, unroll,
                               lay.acc != lay.compute)
    elif lay.fused:
        sums = [f"_s{r}_{d}" for r in range(R) for d in range(red.dim)]
        tile.append(f"A {' = 0, '.join(sums)} = 0;")
        simd = f" reduction(+: {', '.join(sums)})"
        fold = [f"st[{r}].add({d}, _s{r}_{d});" for r in range(R) for d in range(red.dim)]
    else:
        simd = ""
        fold = ["for (int r = 0; r < R; ++r) st[r].update(fbuf[r], gbuf[r], nt, j0 + jt);"]

    return templates.fill(
        templates.choose(templates.load("cpu/block.cpp"), PANELS=bool(lay.panel)),
        TITLE=title(program),
        MATH=(_NO_SCHEDULE if contracted else "") + templates.load("cpu/math.hpp"),
        STATES=templates.states("cpu", state.snippets),
        T=lay.ctype, A=lay.acc_ctype, W=str(64 // lay.compute.itemsize), TJ=str(lay.tile),
        R=str(R), NP=str(lay.panel or _NO_PANELS), STATE=state.type,
        VECTOR=(templates.fill(_VECTOR_TYPES, NV=str(nv), NV_WIDE=str(nv_wide))
                if contracted or lay.gemm_fold else ""),
        POINTERS=indent(pointers, 1), ROWSTATE=indent(row_state, 3), ROWS=indent(rows, 3),
        **({"PANEL": indent(_pack_lines(packed, lay.as_given) if packed else [], 4)}
           if lay.panel else {}),
        TILE=indent(tile, 4), CONTRACT=indent(contract, 4),
        SIMD=simd, PAIR=indent(pair, 5), FOLD=indent(fold, 4), STORE=indent(store, 3),
        LAYOUT=layout_tag(program, lay))
