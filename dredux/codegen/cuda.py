"""Program -> CUDA source of the GPU block kernel.

The template (``kernels/cuda/block.cu``, with ``math.cuh`` and ``states.cuh``
pasted in) runs one thread per output row and walks the reduced axis in
shared-memory tiles; this module fills its slots with code rendered from the
formula tree through the same spelling table as the C++ backend
(:mod:`dredux.codegen.render`):

* nodes that do not depend on the reduced axis (row variables, parameters)
  are computed once per thread, before the column loop;
* the rest once per pair, inside the loop, followed by the reduction's
  ``push`` (``kernels/cuda/states.cuh``).

Row variables of dimension up to ``unroll`` live in registers; larger ones in
local memory (coalesced across a warp), and the renderer writes loops instead
of unrolled components, so that D = 64 or 256 does not exhaust registers;
wide element-wise chains read once are fused into their reader's loop.
Column variables are read from the shared tile. float16 inputs are converted
to float32 on load and computed and accumulated in float32.

Only the parsed tree reaches the source: identifiers are generated here and
numbers are printed from Python numbers. Nothing here imports CuPy, so
``Genred.source("gpu")`` works on machines without a GPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..ir import OPS, Expr, Op, walk
from ..program import Program
from ..reductions import Reduction
from . import templates
from .render import (
    Index,
    Spelling,
    compute_dtype,
    hoisted_roots,
    indent,
    levels,
    render,
    sum_mode,
    title,
    var_slots,
)

__all__ = ["CudaSpelling", "CudaCode", "cuda_code", "UNROLL", "REDUCE_KERNEL",
           "MERGE_KERNEL"]

UNROLL = 16  # vector dimensions up to this are unrolled (registers); loops above
REDUCE_KERNEL = "dredux_reduce"
MERGE_KERNEL = "dredux_merge"

# storage type of arrays in device memory, computation type of values
_STORAGE = {"float16": "unsigned short", "float32": "float", "float64": "double"}
_COMPUTE = {"float16": "float", "float32": "float", "float64": "double"}


def _intrinsic(name: str):
    return lambda a, n, _name=name: f"{_name}({', '.join(a)})"


# float32 intrinsics (a few ulp, flush to zero); used only under fast_math
_FAST_FLOAT = {
    Op.EXP: _intrinsic("__expf"),
    Op.LOG: _intrinsic("__logf"),
    Op.SIN: _intrinsic("__sinf"),
    Op.COS: _intrinsic("__cosf"),
    Op.DIV: _intrinsic("__fdividef"),
    Op.XLOGX: lambda a, n: f"(({a[0]} == (T)0) ? (T)0 : {a[0]} * __logf({a[0]}))",
    Op.SINXDIVX: lambda a, n: f"(({a[0]} == (T)0) ? (T)1 : __sinf({a[0]}) / {a[0]})",
}


@dataclass
class CudaSpelling(Spelling):
    """CUDA spellings: the shared C table, whose ``_dr_*`` functions are
    defined for float and double in ``kernels/cuda/math.cuh``.

    With ``fast_math`` (float32 only: the caller decides) the rows of
    ``_FAST_FLOAT`` replace exp, log, sin, cos and division by CUDA's fast
    intrinsics (``__expf``...).
    """

    name: str = "cuda"
    fast_math: bool = False

    def __post_init__(self):
        if self.fast_math:
            self.expressions = {**self.expressions, **_FAST_FLOAT}


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
    """

    source: str
    column_bytes: int
    fields: tuple[tuple[str, str], ...]
    state_bytes: int


def _state_type(red: Reduction, sum_scheme: str) -> str:
    """The state template of states.cuh for ``red``."""
    fam = red.family
    if fam == "sum":
        return f"_DrSum<{red.dim}, {sum_mode(red, sum_scheme)}>"
    if fam in ("max", "min"):
        return f"_DrBest<{red.dim}, {'true' if fam == 'max' else 'false'}>"
    if fam in ("argmax", "argmin"):
        return f"_DrArgBest<{red.dim}, {'true' if fam == 'argmax' else 'false'}>"
    if fam == "kmin":
        return f"_DrKMin<{red.dim}, {red.k}>"
    return f"_DrLse<{red.sum_dim}, {'true' if red.kahan else 'false'}>"


# ---------------------------------------------------------------------------
# fusion of wide element-wise chains
# ---------------------------------------------------------------------------
# The renderer gives every node an array ``T _vN[dim]``. Above ``unroll``
# components such arrays live in local memory, and a chain like
# Sum(Square(x - y)) for D = 256 would store and reload 2 x 256 values per
# pair. A wide element-wise node read by a single consumer is therefore not
# stored: its expression is written into the consumer's, component by
# component, and the chain becomes one loop over registers.

_FUSING_READERS = (Op.SUM, Op.SCALPROD)  # statements that read each operand once per term
_FUSED_TEXT = 600  # most characters a fused expression may grow to


def _fused_nodes(roots: tuple[Expr, ...], spelling: Spelling, known, unroll: int) -> set:
    """Wide element-wise nodes to write into their single reader's expression.

    A reader is a node of the pair code, or ``None`` for the copy of a root
    into the reduction's input; ``known`` nodes (hoisted) are not candidates.
    """
    readers: dict[Expr, list] = {}
    order: list[Expr] = []
    seen: set[Expr] = set()
    for root in roots:
        readers.setdefault(root, []).append(None)
        for node in walk(root):
            if node in seen or node in known or node.op in (Op.VAR, Op.CONST):
                continue
            seen.add(node)
            order.append(node)
            for child in set(node.args):
                readers.setdefault(child, []).append(node)
    text: dict[Expr, int] = {}
    fused: set[Expr] = set()
    for node in order:  # children first
        expr = spelling.expressions.get(node.op)
        users = readers.get(node, [])
        if expr is None or not OPS[node.op].elementwise or node.dim <= unroll \
                or len(users) != 1:
            continue
        user = users[0]
        if user is not None and user.op not in _FUSING_READERS and not (
                OPS[user.op].elementwise and user.op in spelling.expressions):
            continue
        marks = [f"@{k}@" for k in range(len(node.args))]
        shape = expr(marks, node)
        size = len(shape) + sum(shape.count(mark) * (text.get(child, 24) - len(mark))
                                for mark, child in zip(marks, node.args))
        if size <= _FUSED_TEXT:
            fused.add(node)
            text[node] = size
    return fused


class _Refs:
    """CUDA spellings of the kernel's variables (``var_ref`` of the renderer)."""

    def __init__(self, program: Program, unroll: int):
        self.unroll = unroll
        self.slot = var_slots(program)

    def __call__(self, node: Expr, k: Index) -> str:
        kind, slot = self.slot[node]
        if kind == "y":
            at = "_jj" if node.dim == 1 else f"_jj * {node.dim} + {k}"
            return f"_sy{slot}[{at}]"
        if kind == "x" or node.dim <= self.unroll:
            return f"_r{kind}{slot}[{k}]"
        return f"_dr_load(_r{kind}{slot}, {k})"


def _row_lines(program: Program, unroll: int) -> list[str]:
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
        lines.append(f"T _rx{k}[{v.dim}];")
        if v.dim <= unroll:
            lines += [f"_rx{k}[{c}] = _dr_load(_x{k}, _row * {v.dim} + {c});"
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


def _fill_lines(rend, root: Expr, array: str, shift: int, unroll: int) -> list[str]:
    """``array[shift + k] = root[k]`` for every component k."""
    def body(k):
        at = k + shift if isinstance(k, int) else (f"{shift} + {k}" if shift else k)
        return f"{array}[{at}] = {rend.acc(root, k)};"
    return rend.each(root.dim, body)


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
    T = _COMPUTE[program.dtype]
    red = program.reduction
    formulas = program.formulas
    spelling = CudaSpelling(fast_math=bool(fast_math) and T == "float")
    refs = _Refs(program, unroll)

    # the subtrees free of column variables: once per thread, before the column loop
    hoisted, rh = render(hoisted_roots(formulas, levels(formulas), {"const", "row"}),
                         spelling, refs, T, unroll, prefix="_h")
    pair, rp = render(formulas, spelling, refs, T, unroll, known=dict(rh.names),
                      fused=_fused_nodes(formulas, spelling, rh.names, unroll))
    pair.append(f"T _f[{red.dim}];")
    pair += _fill_lines(rp, formulas[0], "_f", 0, unroll)
    if red.family == "lse":
        pair.append(f"T _g[{red.sum_dim}];")
        if red.name == "SumSoftMaxWeight":
            pair.append("_g[0] = (T)1;")
            pair += _fill_lines(rp, formulas[1], "_g", 1, unroll)
        elif len(formulas) > 1:
            pair += _fill_lines(rp, formulas[1], "_g", 0, unroll)
        else:
            pair.append("_g[0] = (T)1;")
        pair.append("_st.push(_f, _g, _j);")
    else:
        pair.append("_st.push(_f, (const T*)0, _j);")

    shared, tile, offset = [], [], 0
    for k, v in enumerate(program.col_vars):
        shared.append(f"T* const _sy{k} = _dr_sm + (long long)_tile * {offset};")
        tile.append(f"for (int _e = threadIdx.x; _e < _tn * {v.dim}; _e += blockDim.x) "
                    f"_sy{k}[_e] = _dr_load(_y{k}, _jt * {v.dim} + _e);")
        offset += v.dim

    inputs = "".join(f", const IN* __restrict__ _{kind}{k}"
                     for kind, group in (("x", program.row_vars), ("y", program.col_vars),
                                         ("p", program.param_vars))
                     for k in range(len(group)))
    fields = red.fields()
    ctype = {"acc": "ACCS", "idx": "long long"}
    outputs = "".join(f", {ctype[kind]}* __restrict__ _o{k}"
                      for k, (_, _, kind) in enumerate(fields))
    parts = "".join(f", const {ctype[kind]}* __restrict__ _q{k}"
                    for k, (_, _, kind) in enumerate(fields))
    config = [
        f"#define _DR_FAST_MATH {1 if spelling.fast_math else 0}",
        f"enum {{ _dr_unroll = {int(unroll)} }};  // arrays up to this are unrolled",
        f"typedef {T} T;  // formula values",
        f"typedef {_COMPUTE[program.acc_dtype]} ACC;  // accumulators",
        f"typedef {_STORAGE[program.dtype]} IN;  // inputs in device memory",
        f"typedef {_STORAGE[program.acc_dtype]} ACCS;  // states in device memory",
    ]
    source = templates.fill(
        templates.load("cuda/block.cu"),
        TITLE=title(program),
        CONFIG="\n".join(config),
        MATH=templates.load("cuda/math.cuh"),
        STATES=templates.load("cuda/states.cuh"),
        STATE=_state_type(red, program.sum_scheme),
        INPUTS=inputs, OUTPUTS=outputs, PARTS=parts,
        STORE_ARGS=", ".join(f"_o{k}" for k in range(len(fields))),
        LOAD_ARGS=", ".join(f"_q{k}" for k in range(len(fields))),
        ROWS=indent(_row_lines(program, unroll) + hoisted, 1),
        SHARED=indent(shared, 1),
        TILE=indent(tile, 2),
        PAIR=indent(pair, 4),
    )
    dtypes = tuple((program.acc_dtype if kind == "acc" else "int64", kind)
                   for _, _, kind in fields)
    state_bytes = sum(np.dtype(dt).itemsize * math.prod(shape)
                      for (dt, _), (_, shape, _) in zip(dtypes, fields))
    return CudaCode(source, offset * compute_dtype(program).itemsize, dtypes, state_bytes)
