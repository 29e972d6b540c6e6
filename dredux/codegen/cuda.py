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

Only the parsed tree reaches the source: identifiers are generated here and
numbers are printed from Python numbers. Nothing here imports CuPy, so
``Genred.source("gpu")`` works on machines without a GPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..ir import Expr
from ..program import Program
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
    """

    source: str
    column_bytes: int
    fields: tuple[tuple[str, str], ...]
    state_bytes: int


class _Refs:
    """CUDA spellings of the kernel's variables (``var_ref`` of the renderer)."""

    def __init__(self, program: Program, unroll: int):
        self.unroll = unroll
        self.slot = var_slots(program)

    def __call__(self, node: Expr, k: Index) -> str:
        kind, slot = self.slot[node]
        if kind == "y":
            at = "_jj" if node.dim == 1 else f"_jj * {node.dim}" + (f" + {k}" if k != 0 else "")
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
    fast = bool(fast_math) and T == "float"
    refs = _Refs(program, unroll)

    # the subtrees free of column variables: once per thread, before the column loop
    hoisted, rh = render(hoisted_roots(formulas, levels(formulas), {"const", "row"}), refs,
                         unroll, prefix="_h", roots_read_once=False, fast=fast)
    pair, rp = render(formulas, refs, unroll, known=dict(rh.names), fast=fast)
    pair.append(f"T _f[{red.dim}];")
    pair += _fill_lines(rp, formulas[0], "_f", 0)
    if red.family.weighted:
        # the weights (1, g), g, or 1 (no formula2) of a LogSumExp-type state
        pair.append(f"T _g[{red.sum_dim}];")
        lead = red.unit_weight or len(formulas) == 1
        if lead:
            pair.append("_g[0] = (T)1;")
        if len(formulas) > 1:
            pair += _fill_lines(rp, formulas[1], "_g", int(lead))
        pair.append("_st.push(_f, _g, _j);")
    else:
        pair.append("_st.push(_f, (const T*)0, _j);")
    state = red.family.cuda_state(red)

    shared, tile, offset = [], [], 0
    for k, v in enumerate(program.col_vars):
        shared.append(f"T* const _sy{k} = _dr_sm" +
                      (f" + (long long)_tile * {offset};" if offset else ";"))
        tile.append(f"for (int _e = threadIdx.x; _e < {_times('_tn', v.dim)}; "
                    f"_e += blockDim.x) "
                    f"_sy{k}[_e] = _dr_load(_y{k}, {_times('_jt', v.dim)} + _e);")
        offset += v.dim

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
        ROWS=indent(_row_lines(program, unroll) + hoisted, 1),
        SHARED=indent(shared, 1),
        TILE=indent(tile, 2),
        PAIR=indent(pair, 4),
    )
    dtypes = tuple((program.acc_dtype if f.kind == "acc" else "int64", f.kind) for f in fields)
    state_bytes = sum(np.dtype(dt).itemsize * math.prod(f.shape)
                      for (dt, _), f in zip(dtypes, fields))
    # a thread's arrays (its state, its row, the formula's vectors) are registers or
    # local memory, which the GPU reserves for every resident thread
    values = (rh.array_elems + rp.array_elems + red.dim + red.sum_dim
              + sum(v.dim for v in program.row_vars))
    check_kernel_stack(program, state_bytes + values * compute_dtype(program).itemsize, "GPU")
    check_kernel_code(program, code_operations(pair) + code_operations(hoisted) // 2, "GPU")
    return CudaCode(source, offset * compute_dtype(program).itemsize, dtypes, state_bytes)
