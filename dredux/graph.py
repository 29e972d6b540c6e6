"""The Dask graph: block tasks -> tree merge (split_every) -> finalize.

For row block r and column range c of a :class:`~dredux.plan.BlockPlan`::

    (block, r, c)        = kernel(rows of block r, columns of range c) -> state
    (merge, r, level, g) = merge of up to split_every states of the level below
    (final, r)           = merge of the top states and finalize -> output of block r
    (output, k)          = the outputs of the row blocks of chunk k, concatenated

A block-sparse plan (``plan.blocks``) has only the (r, c) tasks holding a kept
pair, each given its pattern; a row block with none is one identity task that
reads no input::

    (block, r, c)        = kernel(rows of block r, columns of range c, ranges=pattern)
    (final, r)           = identity state of the block's rows, finalized

When a row block has a single column range, its block task finalizes itself;
when an output chunk is a single row block, its final task is the chunk.
Keys derive from ``dask.base.tokenize`` of everything that determines the
result, so the same call builds the same keys. The kernel, the parameters and
every input chunk enter the graph once; tasks refer to them by key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from ._xp import get_xp, on_device_of

__all__ = ["run_block", "empty_block", "merge_states", "finalize_state", "join_blocks",
           "build_graph", "column_slices", "RowChunks"]


@dataclass(frozen=True)
class RowChunks:
    """A row variable held elsewhere in pieces (``distributed.Future`` objects
    of scattered data), which the block tasks take directly, with no slicing
    task in between: row block r is ``refs[r][slices[r][0]:slices[r][1]]``.
    """

    refs: tuple
    slices: tuple
    name: str


def run_block(kernel, rows: list, row_slices: list, col_parts: list, col_slices: list,
              params: list, m: int, n: int, j0: int, finalize=None, ranges=None):
    """One block task: gather the columns of range ``[j0, j0 + n)`` and run ``kernel``.

    ``row_slices[k]`` is None when ``rows[k]`` is the block's rows, else their
    (start, stop) in it. ``col_parts[k]`` are the input chunks of column
    variable k that overlap the range and ``col_slices[k]`` the range's (start,
    stop) in their concatenation.
    ``finalize = (reduction, dtype)`` returns the row block's output instead of
    its state (when the block is the row block's only one). ``ranges``: the
    block's kept pairs (a :class:`~dredux.ranges.Sparsity`), None for all.
    """
    cols = []
    for parts, (start, stop) in zip(col_parts, col_slices):
        if len(parts) == 1:
            cols.append(parts[0][start:stop])
        else:
            xp = get_xp(*parts)
            cols.append(xp.concatenate(parts, axis=0)[start:stop])
    rows = [r if sl is None else r[sl[0]:sl[1]] for r, sl in zip(rows, row_slices)]
    if ranges is None:
        state = kernel(rows, cols, list(params), m, n, j0)
    else:
        state = kernel(rows, cols, list(params), m, n, j0, ranges=ranges)
    return state if finalize is None else finalize_state(finalize[0], state, finalize[1])


def empty_block(reduction, m: int, acc_dtype, dtype, module: str = "numpy"):
    """The output of a row block of ``m`` rows with nothing to reduce (a
    block-sparse row block without a kept pair), on NumPy or CuPy."""
    import importlib

    xp = importlib.import_module(module)
    return finalize_state(reduction, reduction.identity(m, acc_dtype, xp), dtype)


def merge_states(reduction, states: Sequence[tuple], finalize_dtype=None):
    """Merge partial states of the same rows, left to right; with
    ``finalize_dtype``, return the finalized output instead of the state."""
    arrays = [a for s in states for a in s]
    xp = get_xp(*arrays)
    out = states[0]
    with on_device_of(*arrays):
        for state in states[1:]:
            out = reduction.merge(out, state, xp)
    return out if finalize_dtype is None else finalize_state(reduction, out, finalize_dtype)


def finalize_state(reduction, state: tuple, dtype):
    """Output array(s) of a row block from its merged state."""
    with on_device_of(*state):
        return reduction.finalize(state, np.dtype(dtype), get_xp(*state))


def column_slices(bounds: np.ndarray, start: int,
                  stop: int) -> tuple[list[int], tuple[int, int]]:
    """Chunk indices overlapping [start, stop) and the range in their concatenation;
    ``bounds`` are the chunks' edges (0, then their cumulative sizes)."""
    nchunks = len(bounds) - 1
    if stop <= start:
        k = int(np.searchsorted(bounds, start, side="right")) - 1
        k = min(max(k, 0), nchunks - 1)
        return [k], (start - int(bounds[k]), start - int(bounds[k]))
    first = int(np.searchsorted(bounds, start, side="right")) - 1
    last = int(np.searchsorted(bounds, stop, side="left")) - 1
    first = min(max(first, 0), nchunks - 1)
    indices = list(range(first, max(first, last) + 1))
    offset = int(bounds[first])
    return indices, (start - offset, stop - offset)


def join_blocks(parts: list, index: int | None = None):
    """An output chunk from the finalized outputs of its row blocks, in order
    (``index`` picks one output of each part when there are several)."""
    if index is not None:
        parts = [part[index] for part in parts]
    if len(parts) == 1:
        return parts[0]
    return get_xp(*parts).concatenate(parts, axis=0)


def _row_refs(plan, rows: list) -> tuple[list, list]:
    """For every row block: each row variable's key and the block's (start, stop)
    in it (None: the whole of it)."""
    refs: list[list] = [[] for _ in plan.rows]
    slices: list[list] = [[] for _ in plan.rows]
    where = []  # (chunk index, offset in the chunk, whole chunk?) of each block
    r = 0
    for k, count in enumerate(plan.blocks_per_chunk):
        at = 0
        for _ in range(count):
            where.append((k, at, count == 1))
            at += plan.rows[r]
            r += 1
    for a in rows:
        for r, (k, at, whole) in enumerate(where):
            if isinstance(a, RowChunks):
                refs[r].append(a.refs[r])
                slices[r].append(a.slices[r])
            else:
                refs[r].append((a.name, k, 0))
                slices[r].append(None if whole else (at, at + plan.rows[r]))
    return refs, slices


def build_graph(program, kernel, plan, rows: list, cols: list, params: list,
                out_shapes: list[tuple[tuple[int, ...], Any]], meta_xp=np,
                devices: int = 1) -> list:
    """Dask arrays of the routine's output(s).

    Parameters
    ----------
    program : Program
    kernel : callable
        ``kernel(rows, cols, params, m, n, j0) -> state``; pickled once into the graph.
    plan : BlockPlan
    rows : list of dask arrays or RowChunks
        Row variables: dask arrays chunked as ``plan.chunks`` along axis 0 and
        one chunk along axis 1, or RowChunks (one piece per row block).
    cols : list of dask arrays
        Column variables, one chunk along axis 1 (any chunks along axis 0).
    params : list of arrays or dask arrays
        Parameters (a dask array must have a single chunk).
    out_shapes : list of (shape after the row axis, dtype)
        One entry per output array.
    devices : int
        GPUs to spread the row blocks over (round robin, a kernel per device in
        the graph), for a GPU kernel on local threads; 1: the kernel as given.
    """
    import dask.array as da

    reduction = program.reduction
    dask_inputs = [a for a in (*rows, *cols, *params) if isinstance(a, da.Array)]
    chunked = [a.name for a in rows if isinstance(a, RowChunks)]
    # the kernel tokenizes as its program and every option that changes its output
    token = tokenize(kernel, plan, [a.name for a in dask_inputs], chunked,
                     [p for p in params if not isinstance(p, da.Array)])
    prefix = f"dredux-{reduction.name.lower()}"
    names = {k: f"{prefix}-{k}-{token}" for k in ("inputs", "block", "merge", "final")}

    inputs: dict = {(names["inputs"], 0): kernel}
    kernel_keys = [(names["inputs"], 0)]
    for d in range(1, devices if devices > 1 else 0):
        inputs[(names["inputs"], "device", d)] = type(kernel)(
            kernel.program, **{**kernel.options, "device_id": d})
        kernel_keys.append((names["inputs"], "device", d))
    if devices > 1:
        inputs[kernel_keys[0]] = type(kernel)(kernel.program,
                                              **{**kernel.options, "device_id": 0})
    param_keys = []
    for k, p in enumerate(params):
        if isinstance(p, da.Array):
            param_keys.append((p.name, 0))
        else:
            inputs[(names["inputs"], k + 1)] = p
            param_keys.append((names["inputs"], k + 1))

    # The last task of a row block (its only block, or the top of its merge tree)
    # also finalizes; with a single output and a chunk of one row block, that
    # task is the output chunk itself, so a row block costs no finalize or alias
    # task (each task costs a scheduler round trip, milliseconds on a cluster).
    single = len(out_shapes) == 1
    out_names = ([f"{prefix}-{token}"] if single else
                 [f"{prefix}-{k}-{token}" for k in range(len(out_shapes))])
    zeros = [(0,) * len(shape) for shape, _ in out_shapes]
    counts = plan.blocks_per_chunk
    chunk_of = [k for k, count in enumerate(counts) for _ in range(count)]
    blocks: dict = {}
    merges: dict = {}
    finals: dict = {}
    joins: list[dict] = [{} for _ in out_shapes]
    # per column range: the input chunk keys it reads and its slice of them
    bounds = [np.concatenate([[0], np.cumsum(a.chunks[0])]) for a in cols]
    col_plans = []
    for c0, c1 in plan.cols:
        found = [column_slices(edges, c0, c1) for edges in bounds]
        col_plans.append(([[(a.name, k, 0) for k in idx] for a, (idx, _) in zip(cols, found)],
                          [sl for _, sl in found]))
    row_keys, row_slices = _row_refs(plan, rows)
    for r, size in enumerate(plan.rows):
        k = chunk_of[r]
        if single and counts[k] == 1:
            final_key = (out_names[0], k, *zeros[0])
        else:
            final_key = (names["final"], r)
        level = []
        tasks = (tuple((c, None) for c in range(len(plan.cols))) if plan.blocks is None
                 else plan.blocks[r])
        if not tasks:  # block-sparse: no kept pair in this row block
            finals[final_key] = (empty_block, reduction, size, program.np_acc_dtype,
                                 program.dtype, meta_xp.__name__)
        for c, pattern in tasks:
            c0, c1 = plan.cols[c]
            parts, slices = col_plans[c]
            task = (run_block, kernel_keys[r % len(kernel_keys)], row_keys[r],
                    row_slices[r], parts, slices, param_keys, size, c1 - c0, c0)
            if len(tasks) == 1:
                finals[final_key] = task + ((reduction, program.dtype), pattern)
            else:
                blocks[(names["block"], r, c)] = task + (None, pattern)
                level.append((names["block"], r, c))
        depth = 0
        while len(level) > plan.split_every:
            nxt = []
            for g in range(0, len(level), plan.split_every):
                key = (names["merge"], r, depth, g // plan.split_every)
                merges[key] = (merge_states, reduction, level[g:g + plan.split_every])
                nxt.append(key)
            level, depth = nxt, depth + 1
        if level:
            finals[final_key] = (merge_states, reduction, level, program.dtype)
    first = 0
    for k, count in enumerate(counts):
        parts = [(names["final"], r) for r in range(first, first + count)]
        first += count
        if single and count == 1:
            continue
        for j in range(len(out_shapes)):
            joins[j][(out_names[j], k, *zeros[j])] = (join_blocks, parts,
                                                      None if single else j)

    layers = {}
    deps = {}
    for a in dask_inputs:
        g = a.__dask_graph__()
        layers.update(g.layers)
        deps.update(g.dependencies)
    input_layers = {layer for a in dask_inputs for layer in a.__dask_layers__()}
    layers[names["inputs"]] = inputs
    deps[names["inputs"]] = set()
    layers[names["block"]] = blocks
    deps[names["block"]] = {names["inputs"]} | input_layers
    layers[names["merge"]] = merges
    deps[names["merge"]] = {names["block"]}
    # the finals that are output chunks go into the (first) output's own layer
    final_layer = {key: t for key, t in finals.items() if key[0] == names["final"]}
    layers[names["final"]] = final_layer
    deps[names["final"]] = {names["merge"], names["block"], names["inputs"]} | input_layers

    outputs = []
    for j, (shape, dtype) in enumerate(out_shapes):
        name = out_names[j]
        own = dict(joins[j])
        if single:
            own.update({key: t for key, t in finals.items() if key[0] == name})
        layers[name] = own
        deps[name] = set(deps[names["final"]]) | {names["final"]}
        graph = HighLevelGraph(dict(layers), dict(deps))
        chunks = (tuple(plan.chunks), *((s,) for s in shape))
        meta = meta_xp.empty((0,) * (1 + len(shape)), dtype=dtype)
        outputs.append(da.Array(graph, name, chunks, meta=meta))
    return outputs
