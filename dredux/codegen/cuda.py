"""Program -> CUDA source of the GPU block kernel.

The template (``kernels/cuda/block.cu``, with ``math.cuh`` and the state the
reduction's family needs from ``states/`` pasted in) runs one thread per
output row and walks the reduced axis in shared-memory tiles; this module
fills its slots with code rendered from the formula tree through the same op
spellings as the C++ backend (:mod:`dredux.codegen.render`):

* nodes that do not depend on the reduced axis (row variables, parameters)
  are computed once per thread, before the column loop;
* the rest once per pair, inside the loop, followed by the reduction's
  ``push`` (``kernels/cuda/states.cuh``).

Row variables of dimension up to ``unroll`` live in registers; larger ones in
local memory (coalesced across a warp), and the renderer writes loops instead
of unrolled components, so that D = 64 or 256 does not exhaust registers;
element-wise chains read once are written into their reader (one loop over
registers for Sum(Square(x - y)), not arrays in local memory).
Column variables are read from the shared tile. float16 inputs are converted
to float32 on load and computed and accumulated in float32.

Contractions (:func:`dredux.codegen.render.contractions`: ``SqDist``,
``Scalprod``, sums of arithmetic terms over D >= 16 components) are computed
GEMM-like for each tile of :data:`CONTRACT_TILE` columns before the pair loop:
the D axis in chunks of up to 32 components (16 in float64, a power of two
dividing D); per chunk, the block stages the tile's y values in shared memory
as ``[component][column]`` (every thread of a warp then reads the same
address, a broadcast, four columns per 128-bit load: the arrays' offsets are
constants, multiples of 16 bytes), each thread reads its row's chunk into
registers and adds to ``_ac[32]``, one partial sum per tile column, kept in
registers. The pair loop is unrolled over the tile's columns, so that it
reads the sums by constant index. Row and column variables that only the
contractions read are never copied whole: no per-thread array of D values,
nothing in local memory at any D (``ptxas -v``: 0 bytes of stack frame for
the Gaussian, LogSumExp and ArgKMin (K = 10) kernels at D = 3 .. 4096; the
K-min lists of up to 32 entries are registers, kernels/cuda/states/kmin.cuh).
The contractions of one length share their chunk loop (:func:`_groups`).

Matrix-vector and vector-matrix products of a matrix variable (:func:`lowered`,
:mod:`dredux.codegen.products`) become one contraction per output component,
the matrix read in place; kernels with that many contractions take tiles of
fewer columns (:func:`tile_columns`) and blocks of 128 threads, or, when
they are read through one scalar sum (the quadratic form of
``WeightedSqDist``), compute them in passes on tiles of 4 columns
(:func:`sum_passes`).

Streamed sums (:func:`dredux.codegen.render.streamed_weights`: a Sum of more
than ``unroll`` components of an element-wise formula, ``Exp(-SqDist(x, y)) *
v``, the gradient wrt x) run on fixed tiles too: the pair loop stores the
formula's scalar weights in registers (``_wt0[32]``), then an output loop
(:func:`_fold_lines`) stages the tile's wide column variables chunk by chunk
like the contractions and sums each output component over the tile's columns
in registers, adding one sum per tile to the state, which is then the only
per-thread array of D values (local memory).

Only the parsed tree reaches the source: identifiers are generated here and
numbers are printed from Python numbers. Nothing here imports CuPy, so
``Genred.source("gpu")`` works on machines without a GPU.
"""

from __future__ import annotations

import collections
import functools
import math
from dataclasses import dataclass

import numpy as np

from ..ir import OPS, Expr, Op, walk
from ..program import Program
from . import templates
from .products import lower_products, variable_slice
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
    render,
    streamed_weights,
    title,
    var_slots,
)

__all__ = ["CudaCode", "cuda_code", "UNROLL", "REDUCE_KERNEL", "MERGE_KERNEL"]

UNROLL = 16  # vector dimensions up to this are unrolled (registers); loops above
REDUCE_KERNEL = "dredux_reduce"
MERGE_KERNEL = "dredux_merge"

# storage type of arrays in device memory, computation type of values
_STORAGE = {"float16": "unsigned short", "float32": "float", "float64": "double"}
_COMPUTE = {"float16": "float", "float32": "float", "float64": "double"}


@dataclass(frozen=True)
class CudaCode:
    """A generated GPU kernel and what the host needs to launch it.

    Attributes
    ----------
    source : str
        Self-contained CUDA C++ (no ``#include``) defining the ``extern "C"``
        kernels ``dredux_reduce`` and ``dredux_merge``.
    column_bytes : int
        Shared memory per column of a tile (all column variables, computation
        type); 0 when the formula has no column variable.
    fields : tuple of (str, str)
        (numpy dtype name, 'acc' or 'idx') of each state field, in the order
        of ``Reduction.fields()`` and of the kernels' output arguments.
    state_bytes : int
        Bytes of one row's state in device memory (all fields).
    tile : int
        Columns per tile the kernel needs (:data:`CONTRACT_TILE` when it has
        contractions); 0: the launch plan chooses.
    """

    source: str
    column_bytes: int
    fields: tuple[tuple[str, str], ...]
    state_bytes: int
    tile: int = 0


class _Refs:
    """CUDA spellings of the kernel's variables (``var_ref`` of the renderer)."""

    def __init__(self, program: Program, unroll: int, in_place=frozenset()):
        self.unroll = unroll
        self.slot = var_slots(program)
        self.in_place = in_place  # row variables read from the thread's row in memory

    def __call__(self, node: Expr, k: Index) -> str:
        kind, slot = self.slot[node]
        if kind == "x" and slot in self.in_place:
            return f"_dr_load(_x{slot}, _row * {node.dim} + {k})"
        if kind == "y":
            at = "_jj" if node.dim == 1 else f"_jj * {node.dim}" + (f" + {k}" if k != 0 else "")
            return f"_sy{slot}[{at}]"
        if kind == "x" or node.dim <= self.unroll:
            return f"_r{kind}{slot}[{k}]"
        return f"_dr_load(_r{kind}{slot}, {k})"


CONTRACT_TILE = 32  # columns per tile of kernels with contractions (registers)
_CHUNK = {"float": 32, "double": 16}  # most components of x per chunk (registers)
# Partial sums a thread keeps for a tile's contractions, in 32-bit registers
# (a float64 takes two): tiles of CONTRACT_TILE columns while their sums fit
# _WIDE_SUMS (up to 4 float32 contractions, the kernels of 256 threads); kernels
# with more (a lowered matrix product has one contraction per output
# component) take tiles of fewer columns, down to one, their sums within
# _NARROW_SUMS, and blocks of _NARROW_THREADS threads, which lets ptxas give
# each thread up to 255 registers (under __launch_bounds__(256) it kept 128 and
# spilled: WeightedSqDist at D = 64, float32, 168 bytes of stack; with 128
# threads, 168 registers and no stack at D = 16, 32, 64).
_WIDE_SUMS = 128
_NARROW_SUMS = 64
_LOWERED_SUMS = 128  # products lowered while a one-column tile's sums fit this
THREADS = 256  # threads per block of the reduce kernel (its __launch_bounds__)
_STAGED_PARAM_BYTES = 16 << 10  # parameters staged in shared memory: up to 64 x 64 floats
_NARROW_THREADS = 128
# the products the GPU lowers (dredux/codegen/products.py): MatVecMult,
# VecMatMult and the TensorDots that are one of them, with a matrix variable
# (or a slice of one), whose rows (or columns: the rows of its transpose) the
# contraction loops read in place,
# while their partial sums fit _LOWERED_SUMS at a tile of one column (float32 up
# to D = 128, float64 up to D = 64; larger ones stay in the pair loop). A
# per-thread copy of the matrix or of its transpose, as the CPU computes once
# per row or call, would be m x n values in local memory.
_GPU_PRODUCTS = frozenset((Op.MATVECMULT, Op.VECMATMULT, Op.TENSORDOT))


def tile_columns(count: int, words: int = 1) -> int:
    """Columns per tile of a kernel with ``count`` contractions, whose partial
    sums take ``count`` x tile x ``words`` registers per thread."""
    if count * CONTRACT_TILE * words <= _WIDE_SUMS:
        return CONTRACT_TILE
    tj = CONTRACT_TILE
    while tj > 1 and count * tj * words > _NARROW_SUMS:
        tj //= 2
    return tj


@functools.lru_cache(maxsize=64)
def lowered(program: Program) -> Program:
    """``program`` with its pair-level matrix-vector and vector-matrix products
    of a row or parameter matrix as contractions (:func:`dredux.codegen.products.lower_products`),
    or ``program`` itself when it has none or when their partial sums would
    not fit at a tile of one column."""
    out = lower_products(program, _GPU_PRODUCTS, matrix_vars=True)
    if out is program:
        return program
    count = len(contractions(out.formulas, levels(out.formulas)))
    return out if count * (compute_dtype(out).itemsize // 4) <= _LOWERED_SUMS else program


def _chunk(length: int, T: str) -> int:
    """Components per chunk of a contraction of ``length``: a power of two that
    divides it (the loops then need no remainder)."""
    dc = _CHUNK[T]
    while length % dc:
        dc //= 2
    return dc


class _ChunkRefs:
    """Spellings inside a contraction's chunk loop: component ``_d0 + _c`` of the
    thread's row (registers), of the staged y values (shared), column ``_u``,
    for variables of the contraction's ``length``; the components ``k`` of a
    wider row variable or of a parameter (a lowered product's matrix,
    :mod:`dredux.codegen.products`) are read in place."""

    def __init__(self, program: Program, unroll: int, tj: int, length: int,
                 staged=frozenset()):
        self.slot = var_slots(program)
        self.unroll = unroll
        self.tj = tj
        self.length = length
        self.staged = staged  # slots of the parameters staged in shared memory

    def __call__(self, node: Expr, k: Index) -> str:
        kind, slot = self.slot[node]
        if kind == "x":
            if node.dim == 1:
                return f"_rx{slot}[0]"
            if node.dim == self.length:
                return f"_xc{slot}[_c]"
            return f"_dr_load(_x{slot}, _row * {node.dim} + {k})"
        if kind == "y":
            if node.dim == 1:
                return f"_sy{slot}[_u]"
            if node.dim != self.length:  # pragma: no cover - products take no column matrix
                raise AssertionError(f"a contraction of {self.length} components reads a "
                                     f"column variable of {node.dim}")
            return f"_sc{slot}[_c * {self.tj} + _u]"
        if node.dim == 1:
            return f"_rp{slot}[0]"
        if slot in self.staged:
            return f"_sp{slot}[{k}]"
        return f"_dr_load(_p{slot}, {k})"


class _FoldRefs(_ChunkRefs):
    """Spellings inside the output loop of a streamed sum: component ``_d0 + _c``
    of the thread's row (one register per component, read as the loop
    reaches it), of the staged columns (shared), column ``_u``."""

    def __call__(self, node: Expr, k: Index) -> str:
        kind, slot = self.slot[node]
        if kind == "x" and node.dim > 1:
            return f"_xv{slot}"
        return super().__call__(node, k)


# components of a streamed sum's output loop in flight per thread (partial sums
# of the 32 columns, each one register): enough to hide the add latency, few
# enough for the weights and the row's components to stay in registers
_FOLD_UNROLL = {"float": 8, "double": 4}


def _stage_lines(k: int, dim: int, dc: int, tj: int) -> list[str]:
    """The block copies components [_d0, _d0 + dc) of the tile's ``tj`` columns
    of column variable ``k`` (of ``dim`` components) into ``_sc<k>`` as
    [component][column], zeros past the tile's last column; consecutive
    threads read consecutive components (coalesced)."""
    return [f"    for (int _e = threadIdx.x; _e < {dc * tj}; _e += blockDim.x) {{",
            f"        const int _c = _e % {dc}, _u = _e / {dc};",
            f"        _sc{k}[_c * {tj} + _u] = _u < _tn ? "
            f"(T)_dr_load(_y{k}, (_jt + _u) * {dim} + _d0 + _c) : (T)0;",
            "    }"]


def _read_in_place(node: Expr) -> bool:
    """Whether ``node`` is a slice of a variable (the rows of a lowered product's
    matrix), which the contraction loops read in place, component by component,
    rather than from a per-thread copy (local memory when wide)."""
    return node.op is Op.EXTRACT and variable_slice(node)


def _groups(contracted: list[tuple[int, Expr]]) -> list[list[tuple[int, Expr]]]:
    """The contractions (with their index) by length, in order: those of one
    length share their chunk loop (one staging of the columns' chunk, one
    read of the row's), as the m rows of a lowered matrix product do."""
    groups: dict[int, list[tuple[int, Expr]]] = {}
    for c, node in contracted:
        groups.setdefault(node.args[0].dim, []).append((c, node))
    return list(groups.values())


# Contractions per pass of a kernel that sums them in passes (:func:`sum_passes`):
# on tiles of 4 columns (tile_columns), their partial sums take 64 registers in
# float32 and float64 alike, as a one-column tile of 64 float32 contractions did.
_PASS_SUMS = {"float": 16, "double": 8}
# Kernels in passes whose state takes more than this (the K-list of the K-min
# family: 30 registers at K = 10) next to a pass's partial sums: under
# __launch_bounds__(128) ptxas capped them at 168 registers and spilled
# (K-NN under a full metric: 40 bytes in float32 at D = 128, 208 in float64 at
# D = 64); promised _PASS_MIN_BLOCKS blocks per SM instead of ptxas's guess, it
# may use up to 255 and spills nothing. Other kernels keep the plain bound:
# given the room, ptxas takes it (a Gaussian under a metric went from 168 to
# 239 registers) for nothing.
_PASS_STATE_BYTES = 64
_PASS_MIN_BLOCKS = 2


@dataclass(frozen=True)
class SumPasses:
    """How a kernel with many contractions computes them: ``passes`` groups of
    the terms of the pair-level sum ``chain``, each group reading the
    contractions of its pass only."""

    chain: Expr
    passes: tuple[tuple[Expr, ...], ...]  # the terms, in the chain's order
    contractions: tuple[tuple[int, ...], ...]  # the contractions each pass computes


def _terms(node: Expr, level: dict, readers: dict, inner: set) -> list[Expr]:
    """The terms of the pair-level scalar sum ``node``, in order (``((t0 + t1) + t2)``);
    its inner sums that only the chain reads (``readers``: how many times each
    node is read) are added to ``inner``."""
    out, stack = [], [node]
    while stack:  # a loop: the chains of long sums are deeper than Python's stack
        n = stack.pop()
        if n.op is Op.ADD and n.dim == 1 and level.get(n) == "pair":
            if n is not node and readers[n] == 1:
                inner.add(n)
            stack += [n.args[1], n.args[0]]
        else:
            out.append(n)
    return out


def sum_passes(formulas, contracted: list[Expr], level: dict, T: str) -> SumPasses | None:
    """The passes of a kernel whose many contractions are read only through
    the terms of one scalar sum (the quadratic form of ``WeightedSqDist``,
    ``SqNorm2`` of a lowered matrix product: one contraction per term), or
    None (few contractions, or read otherwise).

    All the contractions' partial sums at once took the registers: at D = 64
    in float32, 64 sums on a tile of one column, and K-NN (whose K-list needs
    registers too) spilled; each matrix value read then served one
    multiply-add. In passes of 16 contractions (8 in float64) on tiles of 4
    columns, each pass's sums are folded into one partial sum of the chain per
    column before the next pass, term by term in the chain's order, and each
    matrix value serves 4."""
    per_pass = _PASS_SUMS[T]
    if len(contracted) <= per_pass:  # one pass, on tiles of 4 columns or more
        return None
    index = {node: c for c, node in enumerate(contracted)}
    chains = [n for f in formulas for n in walk(f) if n.op is Op.ADD and n.dim == 1
              and level.get(n) == "pair"]
    readers = collections.Counter(a for f in formulas for n in walk(f) for a in n.args)
    tried: set[Expr] = set()
    for chain in reversed(chains):  # the largest sums first (parents follow children)
        if chain in tried:
            # read by a chain that failed alone: its terms are some of that
            # chain's, and what made that one fail still holds
            continue
        terms = _terms(chain, level, readers, tried)
        uses = [sorted({index[n] for n in walk(t) if n in index}) for t in terms]
        every = [c for used in uses for c in used]
        if len(every) != len(contracted) or len(set(every)) != len(every):
            continue  # a contraction outside the chain, or in two of its terms
        # no contraction read but through the chain's terms
        seen = {chain}
        if any(n in index for f in formulas for n in walk(f, seen)):
            continue
        passes, reads, group, group_reads = [], [], [], []
        for term, used in zip(terms, uses):
            if group and len(group_reads) + len(used) > per_pass:
                passes.append(tuple(group))
                reads.append(tuple(group_reads))
                group, group_reads = [], []
            group.append(term)
            group_reads += used
        passes.append(tuple(group))
        reads.append(tuple(group_reads))
        if max(len(r) for r in reads) > per_pass:
            continue  # a term reading more contractions than a pass holds
        return SumPasses(chain, tuple(passes), tuple(reads))
    return None


def _pass_fold_lines(terms, known: dict, refs, unroll: int, fast: bool,
                     first: bool) -> list[str]:
    """A pass's terms of the chain added to its partial sum ``_qs[_jj]`` one by
    one, in the chain's order (the first pass's first term assigned)."""
    lines, r = render(list(terms), refs, unroll, prefix="_t", known=known, fast=fast)
    for k, term in enumerate(terms):
        value = bare(r.acc(term, 0))
        lines.append(f"_qs[_jj] = {value};" if first and k == 0 else
                     f"_qs[_jj] += {value};")
    return lines


def _contract_lines(program: Program, group: list[tuple[int, Expr]], T: str, known: dict,
                    unroll: int, tj: int, staged=frozenset()) -> list[str]:
    """The tile's contractions ``group`` (of one length) into registers
    ``_ac<c>[u]``, ``tj`` columns each: chunks of the D axis, the columns' y
    values staged in shared memory [component][column], the row's chunk read
    into registers, once per chunk for the whole group. The terms of the
    group's contractions are written side by side in the unrolled loops, so
    that the compiler computes their common parts (the ``x - y`` of a
    product's rows) once."""
    length = group[0][1].args[0].dim
    dc = _chunk(length, T)
    slot = var_slots(program)
    used = {v for _, node in group for v in walk(node)}
    xs = [slot[v][1] for v in program.row_vars if v in used and v.dim == length]
    ys = [slot[v][1] for v in program.col_vars if v in used and v.dim > 1]
    refs = _ChunkRefs(program, unroll, tj, length, staged)
    updates = []
    for c, node in group:
        inside = frozenset(n for n in walk(node) if n.op not in (Op.VAR, Op.CONST)
                           and n is not node and n not in known)
        rend = Renderer(refs, unroll, known=known, inline=inside)
        if node.op is Op.SCALPROD:
            term = (f"{rend.acc(node.args[0], '(_d0 + _c)')} * "
                    f"{rend.acc(node.args[1], '(_d0 + _c)')}")
        else:
            term = bare(rend.acc(node.args[0], "(_d0 + _c)"))
        updates.append(f"                _ac{c}[_u] += {term};")
    lines = []
    for c, _ in group:
        lines += [f"T _ac{c}[{tj}];", "#pragma unroll",
                  f"for (int _u = 0; _u < {tj}; ++_u) _ac{c}[_u] = (T)0;"]
    lines += [f"for (int _d0 = 0; _d0 < {length}; _d0 += {dc}) {{",
              "    __syncthreads();  // the chunk buffer is free"]
    for k in ys:
        lines += _stage_lines(k, length, dc, tj)
    lines += ["    __syncthreads();", "    if (_active) {"]
    for k in xs:
        lines += [f"        T _xc{k}[{dc}];", "#pragma unroll",
                  f"        for (int _c = 0; _c < {dc}; ++_c) "
                  f"_xc{k}[_c] = _dr_load(_x{k}, _row * {length} + _d0 + _c);"]
    lines += ["#pragma unroll",
              f"        for (int _c = 0; _c < {dc}; ++_c) {{",
              "#pragma unroll",
              f"            for (int _u = 0; _u < {tj}; ++_u) {{", *updates,
              "            }", "        }", "    }", "}"]
    return lines


def _fold_parts(root: Expr, weights: list[Expr], level: dict) -> tuple[list[Expr], frozenset]:
    """What the output loop of a streamed sum reads of ``root``: the row-only
    (and parameter-only) subtrees it reads by name, computed once per thread
    (scalars, and wide ones that are not element-wise), and the element-wise
    nodes written into its term (wide row-only ones included: recomputed
    from the row's chunk in registers rather than read from a per-thread
    array in local memory)."""
    hoist: list[Expr] = []
    inline: set[Expr] = set()

    def visit(node: Expr) -> None:
        if node.op in (Op.VAR, Op.CONST) or node in weights or node in inline:
            return
        if level[node] in ("row", "const") and (node.dim == 1 or not OPS[node.op].elementwise):
            if node not in hoist:
                hoist.append(node)
            return
        inline.add(node)
        for a in node.args:
            visit(a)

    visit(root)
    return hoist, frozenset(inline)


def _fold_lines(program: Program, weights: list[Expr], known: dict, inline: frozenset,
                T: str, unroll: int, tj: int) -> tuple[list[str], str]:
    """The output loop of a streamed sum, after the tile's pair loop: the D
    output components in chunks (32 in float32, 16 in float64); per chunk the
    block stages the column variables' components in shared memory as
    [component][column] (broadcast reads, four columns per 128-bit load); for
    each component the thread reads its row's value into a register and sums
    the tile's ``tj`` columns in registers (the weights ``_wt<c>[u]`` the pair
    loop stored) before adding that one sum to its state. Partial tiles take
    a guarded copy of the loop. Returns the lines and the term."""
    root = program.formulas[0]
    dim = program.reduction.dim
    dc = _chunk(dim, T)
    slot = var_slots(program)
    used = set(walk(root, set(weights)))
    xs = [slot[v][1] for v in program.row_vars if v in used and v.dim > 1]
    ys = [slot[v][1] for v in program.col_vars if v in used and v.dim > 1]
    rend = Renderer(_FoldRefs(program, unroll, tj, dim), unroll, known=known,
                    inline=inline)
    term = bare(rend.acc(root, "(_d0 + _c)"))

    def fold(guard: str) -> list[str]:
        reads = [f"    const T _xv{k} = _dr_load(_x{k}, _row * {dim} + _d0 + _c);" for k in xs]
        return [f"#pragma unroll {_FOLD_UNROLL[T]}",
                f"for (int _c = 0; _c < {dc}; ++_c) {{", *reads,
                "    ACC _s = (ACC)0;",
                "#pragma unroll",
                f"    for (int _u = 0; _u < {tj}; ++_u) {guard}_s += (ACC)({term});",
                "    _st.add(_d0 + _c, _s);",
                "}"]

    lines = [f"for (int _d0 = 0; _d0 < {dim}; _d0 += {dc}) {{",
             "    __syncthreads();  // the chunk buffers are free"]
    for k in ys:
        lines += _stage_lines(k, dim, dc, tj)
    lines += ["    __syncthreads();", "    if (_active) {", f"        if (_tn == {tj}) {{"]
    lines += ["            " + line for line in fold("")]
    lines += ["        } else {  // the last tile of a range"]
    lines += ["            " + line for line in fold("if (_u < _tn) ")]
    lines += ["        }", "    }", "}"]
    return lines, term


def _row_lines(program: Program, unroll: int, skip=frozenset()) -> list[str]:
    """The thread's row variables and the parameters, read once.

    Row variables go to a per-thread array: registers when small; when wide,
    local memory, which the hardware interleaves across the threads of a warp
    so that reading component k of every thread's row is one coalesced
    access (the rows themselves are ``dim`` values apart in global memory).
    Parameters are the same for every thread: small ones go to registers,
    wide ones are read in place (one broadcast access per warp).
    """
    lines = []
    for k, v in enumerate(program.row_vars):
        if v in skip:  # read by contractions only, chunk by chunk
            continue
        lines.append(f"T _rx{k}[{v.dim}];")
        if v.dim <= unroll:
            lines += [f"_rx{k}[{c}] = _dr_load(_x{k}, {_times('_row', v.dim)}"
                      f"{f' + {c}' if c else ''});"
                      for c in range(v.dim)]
        else:
            lines.append(f"for (int _c = 0; _c < {v.dim}; ++_c) "
                         f"_rx{k}[_c] = _dr_load(_x{k}, _row * {v.dim} + _c);")
    for k, v in enumerate(program.param_vars):
        if v.dim <= unroll:
            lines.append(f"T _rp{k}[{v.dim}];")
            lines += [f"_rp{k}[{c}] = _dr_load(_p{k}, {c});" for c in range(v.dim)]
        else:
            lines.append(f"const IN* const _rp{k} = _p{k};")
    return lines


def _times(name: str, count: int) -> str:
    return name if count == 1 else f"{name} * {count}"


def _fill_lines(rend, root: Expr, array: str, shift: int) -> list[str]:
    """``array[shift + k] = root[k]`` for every component k."""
    def body(k):
        at = k + shift if isinstance(k, int) else (f"{shift} + {k}" if shift else k)
        return f"{array}[{at}] = {bare(rend.acc(root, k))};"
    return rend.each(root.dim, body)


def _push_lines(program: Program, rp: Renderer) -> list[str]:
    """The pair's push into the state (its values in ``_f``)."""
    red = program.reduction
    if not red.family.weighted:
        return ["_st.push(_f, (const T*)0, _j);"]
    # the weights (1, g), g, or 1 (no formula2) of a LogSumExp-type state
    lines = [f"T _g[{red.sum_dim}];"]
    lead = red.unit_weight or len(program.formulas) == 1
    if lead:
        lines.append("_g[0] = (T)1;")
    if len(program.formulas) > 1:
        lines += _fill_lines(rp, program.formulas[1], "_g", int(lead))
    return lines + ["_st.push(_f, _g, _j);"]


def cuda_code(program: Program, fast_math: bool = False, unroll: int = UNROLL) -> CudaCode:
    """The CUDA source of ``program``'s GPU kernels.

    Parameters
    ----------
    program : Program
    fast_math : bool
        Spell exp, log, sin, cos and division with CUDA's fast float32
        intrinsics (float16/float32 inputs only; ignored for float64), and use
        ``__expf`` in the LogSumExp reductions.
    unroll : int
        Vector dimensions up to this are written component by component and
        held in registers; larger ones use loops.

    Returns
    -------
    CudaCode
    """
    program = lowered(program)
    T = _COMPUTE[program.dtype]
    red = program.reduction
    formulas = program.formulas
    fast = bool(fast_math) and T == "float"
    level = levels(formulas)
    contracted = contractions(formulas, level)
    # a sum wider than the unrolled arrays (its state and values would be local
    # memory, touched for every pair) of an element-wise formula: the pair loop
    # computes its scalar weights only, the output loop (_fold_lines) sums the
    # components per tile, in registers
    weights = streamed_weights(program, level) if red.dim > unroll else None
    streamed = weights is not None
    phase = list(weights) if streamed else list(formulas)  # what the pair loop computes
    tiled = bool(contracted) or streamed  # fixed tiles of tj columns
    itemsize = compute_dtype(program).itemsize
    passes = sum_passes(formulas, contracted, level, T)
    tj = tile_columns(max(map(len, passes.contractions)) if passes else len(contracted),
                      itemsize // 4)
    # narrow tiles (many contractions: their partial sums take the registers)
    # read the wide row variables of the pair loop from the thread's row in
    # memory (L1) rather than holding them in registers for the whole tile loop
    narrow = tiled and tj < CONTRACT_TILE
    in_place = frozenset(k for k, v in enumerate(program.row_vars)
                         if narrow and v.dim > unroll)
    refs = _Refs(program, unroll, in_place)
    # what the pair loop and the row-only code read (the contractions' terms
    # and the output loop read their variables chunk by chunk)
    outside: set[Expr] = set(contracted)
    for f in phase:
        for _ in walk(f, outside):
            pass
    fold_hoist, fold_inline = _fold_parts(formulas[0], weights, level) if streamed else ([], ())
    # the subtrees free of column variables: once per thread, before the column loop
    # (but the rows of a lowered product's matrix that only its contractions
    # read: they read them in place, component by component)
    roots = [n for n in hoisted_roots(phase, level, {"const", "row"})
             if (n in outside or not _read_in_place(n))
             and not (n.op is Op.ELEM and n.args[0] in program.row_vars
                      and program.row_vars.index(n.args[0]) in in_place)]
    roots += [n for n in fold_hoist if n not in roots]
    hoisted, rh = render(roots, refs, unroll, prefix="_h", roots_read_once=False, fast=fast)
    for root in roots:
        outside.update(walk(root))
    # the wide parameters that narrow tiles' contractions read (a lowered
    # product's matrix): each value serves only tj multiply-adds per load, so
    # the block stages them in shared memory once (broadcast reads, four
    # values per 128-bit load: 64 per tile at D = 16 where there were 256
    # global loads) instead of reading global memory per chunk. Not at tiles
    # of one column: ptxas then loads the values ahead and spills (WeightedSqDist
    # at D = 64: 320 bytes of stack)
    staged = frozenset(
        slot for slot, v in enumerate(program.param_vars)
        if narrow and tj > 1 and v.dim > 1
        and v.dim * itemsize <= _STAGED_PARAM_BYTES
        and any(v is n for c in contracted for n in walk(c)))
    # the subtrees of column variables and parameters the pair loop reads
    # (Square(p - a)): once per column when the tile is staged, into shared memory
    # (not the components of a variable: read from its staged tile)
    col_roots = [n for n in hoisted_roots(phase, level, {"col"}) if n in outside
                 and not (n.op is Op.ELEM and n.args[0].op is Op.VAR)]
    col_lines, rc = render(col_roots, refs, unroll, prefix="_c", known=dict(rh.names),
                           roots_read_once=False, fast=fast)
    known = dict(rh.names)
    pair_head = []
    for c, node in enumerate(col_roots):
        if node.dim == 1:
            known[node] = f"_sh{c}[_jj]"
        else:
            pair_head.append(f"const T* const _hc{c} = _sh{c} + _jj * {node.dim};")
            known[node] = f"_hc{c}"
    contract: list[str] = []
    folded_terms: list[str] = []  # the passes' sums of terms, unrolled over the tile
    if passes:
        contract.append(f"T _qs[{tj}];  // the partial sums of the chain, per column")
        for terms, reads in zip(passes.passes, passes.contractions):
            lines = []
            for group in _groups([(c, contracted[c]) for c in reads]):
                lines += _contract_lines(program, group, T, dict(rh.names), unroll, tj, staged)
            fold = _pass_fold_lines(terms, known | {contracted[c]: f"_ac{c}[_jj]"
                                                    for c in reads},
                                    refs, unroll, fast, first=not folded_terms)
            folded_terms += fold
            contract += ["{", *("    " + line for line in lines), "    if (_active) {",
                         "#pragma unroll",
                         f"        for (int _jj = 0; _jj < {tj}; ++_jj) if (_jj < _tn) {{",
                         *("            " + line for line in pair_head + fold),
                         "        }", "    }", "}"]
        known[passes.chain] = "_qs[_jj]"
    else:
        for group in _groups(list(enumerate(contracted))):
            contract += _contract_lines(program, group, T, dict(rh.names), unroll, tj, staged)
        known |= {node: f"_ac{c}[_jj]" for c, node in enumerate(contracted)}
    pair, rp = render(phase, refs, unroll, known=known, fast=fast)
    pair = pair_head + pair
    fold: list[str] = []
    fold_term = ""
    if streamed:
        pair += [f"_wt{c}[_jj] = {bare(rp.acc(w, 0))};" for c, w in enumerate(weights)]
        fold, fold_term = _fold_lines(
            program, weights, {n: rh.names[n] for n in fold_hoist}
            | {w: f"_wt{c}[_u]" for c, w in enumerate(weights)}, fold_inline, T, unroll, tj)
    else:
        pair.append(f"T _f[{red.dim}];")
        pair += _fill_lines(rp, formulas[0], "_f", 0)
        pair += _push_lines(program, rp)
    state = red.family.cuda_state(red, streamed=streamed)

    shared, tile = [], []
    # every shared array starts at a 16-byte aligned offset the compiler sees
    # (128-bit shared loads). The tile of a kernel with contractions is a
    # constant (the offsets are constants, padded); the others' is rounded up to
    # 4 columns (the host plans tiles of whole multiples of 4 columns,
    # compile/cuda.py) and the arrays start at multiples of it.
    offset = 0  # components per tile column before the next array

    def place(name: str, components: int) -> None:
        nonlocal offset
        if tiled:
            while tj * offset * itemsize % 16:
                offset += 1
            at = f" + {tj * offset}" if offset else ""
        else:
            at = f" + _w * {offset}" if offset else ""
        shared.append(f"T* const {name} = _dr_sm{at};")
        offset += components

    if not tiled:
        shared.append("const long long _w = ((long long)_tile + 3) & ~3LL;  // tile width")
    for k, v in enumerate(program.col_vars):
        if v not in outside and v.dim > 1:
            continue  # staged chunk by chunk by the contraction loops
        place(f"_sy{k}", v.dim)
        tile.append(f"for (int _e = threadIdx.x; _e < {_times('_tn', v.dim)}; "
                    f"_e += blockDim.x) "
                    f"_sy{k}[_e] = _dr_load(_y{k}, {_times('_jt', v.dim)} + _e);")
    # the column-only subtrees of the tile, column-major like the variables
    for c, node in enumerate(col_roots):
        place(f"_sh{c}", node.dim)
    if col_roots:
        body = list(col_lines)
        for c, node in enumerate(col_roots):
            body += rc.each(node.dim, lambda k, c=c, node=node: (
                f"_sh{c}[{f'_jj * {node.dim} + {k}' if node.dim > 1 else '_jj'}] = "
                f"{bare(rc.acc(node, k))};"))
        tile += ["__syncthreads();  // the tile's variables are staged",
                 "for (int _jj = threadIdx.x; _jj < _tn; _jj += blockDim.x) {"]
        tile += ["    " + line for line in body] + ["}"]
    # one chunk buffer per wide column variable of the contractions, [component][column]
    chunk_read = list(contracted)
    if streamed:
        chunk_read.append(formulas[0])  # its wide column variables, by the output loop
    chunked = sorted({var_slots(program)[v][1] for node in chunk_read for v in walk(node)
                      if v in program.col_vars and v.dim > 1})
    chunk = max([_chunk(node.args[0].dim, T) for node in contracted]
                + ([_chunk(red.dim, T)] if streamed else []), default=0)
    for k in chunked:
        place(f"_sc{k}", chunk)
    for k in sorted(staged):  # once per block: the tile loop syncs before any read
        dim = program.param_vars[k].dim
        place(f"_sp{k}", -(-dim // tj))
        shared.append(f"for (int _e = threadIdx.x; _e < {dim}; _e += blockDim.x) "
                      f"_sp{k}[_e] = (T)_dr_load(_p{k}, _e);")
    if contracted:
        tile.append("__syncthreads();  // the tile's columns are staged")
        tile += contract
    tile += [f"T _wt{c}[{tj}];  // the pair loop's weights (registers)"
             for c in range(len(weights or ()))]
    pair_loop = (["#pragma unroll", f"            for (int _jj = 0; _jj < {tj}; ++_jj) "
                  "if (_jj < _tn) {"] if tiled else
                 ["            for (int _jj = 0; _jj < _tn; ++_jj) {"])

    inputs = "".join(f", const IN* __restrict__ _{kind}{k}"
                     for kind, group in (("x", program.row_vars), ("y", program.col_vars),
                                         ("p", program.param_vars))
                     for k in range(len(group)))
    fields = red.fields()
    ctype = {"acc": "ACCS", "idx": "long long"}
    outputs = "".join(f", {ctype[f.kind]}* __restrict__ _o{k}" for k, f in enumerate(fields))
    parts = "".join(f", const {ctype[f.kind]}* __restrict__ _q{k}" for k, f in enumerate(fields))
    config = [
        f"#define _DR_FAST_MATH {1 if fast else 0}",
        f"enum {{ _dr_unroll = {int(unroll)} }};  // arrays up to this are unrolled",
        f"typedef {T} T;  // formula values",
        f"typedef {_COMPUTE[program.acc_dtype]} ACC;  // accumulators",
        f"typedef {_STORAGE[program.dtype]} IN;  // inputs in device memory",
        f"typedef {_STORAGE[program.acc_dtype]} ACCS;  // states in device memory",
    ]
    dtypes = tuple((program.acc_dtype if f.kind == "acc" else "int64", f.kind) for f in fields)
    state_bytes = sum(np.dtype(dt).itemsize * math.prod(f.shape)
                      for (dt, _), f in zip(dtypes, fields))
    threads = str(_NARROW_THREADS if narrow else THREADS)
    if passes and state_bytes > _PASS_STATE_BYTES:
        threads += f", {_PASS_MIN_BLOCKS}"  # ptxas may then use up to 255 registers
    source = templates.fill(
        templates.load("cuda/block.cu"),
        TITLE=title(program),
        CONFIG="\n".join(config),
        MATH=templates.load("cuda/math.cuh"),
        STATES=templates.states("cuda", state.snippets),
        STATE=state.type,
        INPUTS=inputs, OUTPUTS=outputs, PARTS=parts,
        STORE_ARGS=", ".join(f"_o{k}" for k in range(len(fields))),
        LOAD_ARGS=", ".join(f"_q{k}" for k in range(len(fields))),
        ROWS=indent(_row_lines(program, unroll, frozenset(
            v for k, v in enumerate(program.row_vars)
            if (v not in outside and v.dim > 1) or k in in_place)) + hoisted, 1),
        THREADS=threads,
        PAIRLOOP="\n".join(pair_loop),
        FOLD=indent(fold, 2),
        SHARED=indent(shared, 1),
        TILE=indent(tile, 2),
        PAIR=indent(pair, 4),
    )
    # a thread's arrays (its state, its row, the formula's vectors) are registers or
    # local memory, which the GPU reserves for every resident thread
    values = (rh.array_elems + rp.array_elems
              + (len(weights) * tj if streamed else red.dim + red.sum_dim)
              + sum(v.dim for v in program.row_vars if v in outside or v.dim == 1))
    check_kernel_stack(program, state_bytes + values * compute_dtype(program).itemsize, "GPU")
    # the pair loop of a kernel with contractions is unrolled over the tile's columns
    copies = tj if tiled else 1
    # the output loop: two copies (full and partial tiles) of its unrolled body
    folded = (2 * min(_chunk(red.dim, T), _FOLD_UNROLL[T]) * tj
              * (code_operations([fold_term]) + 1) if streamed else 0)
    check_kernel_code(program, copies * code_operations(pair) + code_operations(contract)
                      + (tj - 1) * code_operations(folded_terms)
                      + code_operations(hoisted) // 2 + folded, "GPU")
    return CudaCode(source, offset * itemsize, dtypes, state_bytes, tj if tiled else 0)
