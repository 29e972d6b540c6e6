"""Batch dimensions: B independent reductions as one block-sparse reduction.

KeOps's batch mode takes ``Vi`` variables of shape ``(B..., M, D)``, ``Vj``
of ``(B..., N, D)`` and ``Pm`` of ``(B..., D)``, with NumPy broadcasting of
the batch axes (size 1 broadcasts; here, as in NumPy, missing leading axes
too), and returns ``(B..., M, dim)``. dredux folds the batch into the rows:
item b's rows are rows ``[b M, (b + 1) M)`` and its columns ``[b N, (b + 1) N)``
of one flat reduction whose pattern (:class:`~dredux.ranges.Sparsity`) keeps
only those diagonal blocks. The planner then cuts the flat rows into blocks
of equal work, so a batch of many small problems runs as a few well-sized
tasks and a batch of big ones as several tasks per item; every backend's
block-sparse loop visits only the items' own pairs.

When the reduced axis's variables have no batch axis (one y shared by every
item), they are passed once and every item's rows keep columns ``[0, N)``
(no copy, indices need no shift); other size-1 batch axes are broadcast by
copying into the flat arrays. A parameter that varies over the batch
becomes a variable of the output axis (its value repeated over the item's
rows) in a routine derived once per set
of such parameters (:func:`per_row_routine`); index outputs are made local
to their item again (``j - b N``).
"""

from __future__ import annotations

import math

import numpy as np

from ._xp import get_xp, is_dask
from .errors import ShapeError
from .ir import Cat, Expr, var
from .program import map_vars
from .ranges import Sparsity

__all__ = ["batch_shape", "flatten", "diagonal", "within_items", "unflatten",
           "per_row_routine"]


def _trailing(cat: Cat) -> int:
    return 1 if cat == Cat.P else 2


def batch_shape(signature, args) -> tuple[int, ...] | None:
    """The broadcast batch shape of ``args``, or None when no variable has a
    batch axis. ShapeError when two arguments' batch axes do not broadcast."""
    shapes = []
    for spec, a in zip(signature.args, args):
        shape = getattr(a, "shape", None)
        if shape is None:
            return None
        shapes.append((spec, tuple(shape)))
    # batch mode is when a variable has batch axes (a parameter alone with extra
    # axes is a misshapen parameter, which the flat checks report)
    if not any(len(s) > 2 for spec, s in shapes if spec.cat != Cat.P):
        return None
    out: tuple[int, ...] = ()
    first = None  # the first argument with batch axes, named when another disagrees
    for spec, shape in shapes:
        lead = shape[:len(shape) - _trailing(spec.cat)]
        try:
            out = np.broadcast_shapes(out, lead)
        except ValueError:
            raise ShapeError(
                f"batch axes do not broadcast: '{first[0].name}' has shape {first[1]} and "
                f"'{spec.name}' has shape {shape} (batch axes {first[2]} and {lead}); "
                "expected equal batch axes, or 1 where an input is shared by the "
                "batch") from None
        if lead and first is None:
            first = (spec, shape, lead)
    return tuple(int(s) for s in out)


def _broadcast(a, shape):
    if tuple(a.shape) == tuple(shape):
        return a
    if is_dask(a):
        import dask.array as da

        return da.broadcast_to(a, shape)
    return get_xp(a).broadcast_to(a, shape)


def flatten(signature, args, bshape, axis: int, share: bool = True,
            result_row_bytes: int = 0):
    """The flat arguments, the positions of the parameters that vary over the
    batch (they are repeated over the rows of the output axis), the axes'
    lengths, and whether the reduced axis is shared by every item (its
    variables have no batch axis: they are passed once, not copied per item).

    Before copying anything, the copies and the result (``result_row_bytes``
    per flat output row) are checked to fit in memory (ShapeError otherwise)."""
    count = math.prod(bshape)
    out_cat = Cat.I if axis == 1 else Cat.J
    red_cat = Cat.J if axis == 1 else Cat.I
    shared = share and all(math.prod(tuple(a.shape)[:-2]) == 1
                           for spec, a in zip(signature.args, args)
                           if spec.cat == red_cat and len(a.shape) >= 2)
    lengths = {}
    for spec, a in zip(signature.args, args):
        if spec.cat != Cat.P and len(a.shape) >= 2:
            lengths.setdefault(spec.cat, int(a.shape[-2]))
    _check_sizes(signature, args, bshape, count, out_cat, red_cat, shared, lengths,
                 result_row_bytes)
    flat, varying = [], []
    for spec, a in zip(signature.args, args):
        shape = tuple(a.shape)
        if spec.cat == Cat.P:
            lead = shape[:-1]
            if math.prod(lead) <= 1:  # shared by every item
                flat.append(a.reshape(shape[-1:]) if lead else a)
                continue
            varying.append(spec.pos)
            rows = lengths.get(out_cat, 0)
            b = _broadcast(a, (*bshape, shape[-1])).reshape(count, shape[-1])
            flat.append(b.repeat(rows, axis=0))
            continue
        if len(shape) < 2:
            flat.append(a)  # the flat call's checks say what is expected
            continue
        if shared and spec.cat == red_cat:
            flat.append(a.reshape(shape[-2:]))
            continue
        full = _broadcast(a, (*bshape, *shape[-2:]))
        flat.append(full.reshape(count * shape[-2], shape[-1]))
    return flat, tuple(varying), lengths, shared


def _check_sizes(signature, args, bshape, count: int, out_cat, red_cat, shared: bool,
                 lengths: dict, result_row_bytes: int) -> None:
    """ShapeError when the flat copies that :func:`flatten` makes (the variables
    broadcast over the batch, the varying parameters repeated over the rows) or
    the result do not fit in memory, before any is made."""
    from .execute import check_memory

    if any(is_dask(a) for a in args):
        return  # lazy: the copies are made block by block, where they are computed
    rows = lengths.get(out_cat, 0)
    copies, total = [], 0
    for spec, a in zip(signature.args, args):
        shape = tuple(a.shape)
        itemsize = np.dtype(getattr(a, "dtype", np.float64)).itemsize
        if spec.cat == Cat.P:
            if len(shape) < 1 or math.prod(shape[:-1]) <= 1:
                continue
            flat_shape = (count * rows, shape[-1])
        elif len(shape) < 2 or (shared and spec.cat == red_cat):
            continue
        else:
            flat_shape = (count * shape[-2], shape[-1])
            if shape == (*bshape, *shape[-2:]) and getattr(a, "flags", None) is not None \
                    and a.flags.c_contiguous:
                continue  # reshaped in place, no copy
        nbytes = math.prod(flat_shape) * itemsize
        copies.append(f"'{spec.name}' of shape {shape} as {flat_shape}")
        total += nbytes
    # the result, and the block pattern of the items (diagonal: six int64 per item)
    result = count * rows * result_row_bytes + 48 * count
    fix = ("call on fewer batch items at a time (slices of the batch axes), or pass dask "
           "arrays to get a lazy result")
    if copies:
        check_memory(total + result, f"the batch of {count} items folded into one "
                     f"reduction, with the copies of {', '.join(copies)} (and the result, "
                     f"{count * rows} rows),", fix)
    else:
        check_memory(result, f"the result of the batch, {count} items of {rows} rows "
                     f"({count * rows} rows),", fix)


def diagonal(count: int, m: int, n: int, shared: bool = False) -> Sparsity:
    """The pattern keeping item b's block: rows [b m, (b + 1) m) x columns
    [b n, (b + 1) n), or x [0, n) when the columns are ``shared`` by the items."""
    width = n if shared else count * n
    if m == 0:
        return Sparsity(np.empty((0, 2), np.int64), np.zeros(1, np.int64),
                        np.empty((0, 2), np.int64), 0, width)
    starts = np.arange(count, dtype=np.int64)
    rows = np.stack([starts * m, starts * m + m], axis=1)
    first = np.zeros(count, np.int64) if shared else starts * n
    cols = (np.stack([first, first + n], axis=1) if n else np.empty((0, 2), np.int64))
    slices = (np.arange(count + 1, dtype=np.int64) if n else
              np.zeros(count + 1, dtype=np.int64))
    return Sparsity(rows, slices, cols, count * m, width)


def within_items(pattern: Sparsity, m: int, n: int) -> Sparsity:
    """A user's ``ranges=`` pattern of a batched call (KeOps's layout: indices into
    the flattened B M rows and B N columns), checked to keep only pairs of the
    same item; ShapeError naming the first block that crosses items."""
    ranged = np.flatnonzero(np.diff(pattern.slices) > 0)  # clusters with a range
    if len(ranged) and m and n:
        rows = pattern.rows[ranged]
        item = rows[:, 0] // m
        bad = np.flatnonzero((rows[:, 1] - 1) // m != item)
        if len(bad):
            a, e = rows[bad[0]].tolist()
            raise ShapeError(f"ranges: the row cluster [{a}, {e}) spans batch items "
                             f"{a // m} and {(e - 1) // m}; with batch axes, ranges index "
                             f"the flattened rows (item b is [b*{m}, (b+1)*{m})) and each "
                             "cluster lies in one item")
        counts = np.diff(pattern.slices)[ranged]
        owner = np.repeat(item, counts)
        cols = pattern.cols[np.concatenate([np.arange(pattern.slices[k], pattern.slices[k + 1])
                                            for k in ranged])]
        bad = np.flatnonzero((cols[:, 0] < owner * n) | (cols[:, 1] > owner * n + n))
        if len(bad):
            c, d = cols[bad[0]].tolist()
            raise ShapeError(f"ranges: the column range [{c}, {d}) is kept for a row "
                             f"cluster of batch item {int(owner[bad[0]])}, whose columns "
                             f"are [{int(owner[bad[0]]) * n}, {int(owner[bad[0]]) * n + n}); "
                             "with batch axes, each block lies in one item")
    return pattern


def unflatten(result, bshape, m: int, n: int, index_outputs):
    """(B... , m, dim) outputs from the flat ones; ``index_outputs[k]``: output k
    holds indices, made local to their item."""
    single = not isinstance(result, tuple)
    parts = (result,) if single else result
    count = math.prod(bshape)
    out = []
    for k, part in enumerate(parts):
        if index_outputs[k] and n:
            xp = np if is_dask(part) else get_xp(part)
            shift = xp.repeat(xp.arange(count, dtype=np.int64) * n, m)[:, None]
            if is_dask(part):
                import dask.array as da

                shift = da.from_array(shift, chunks=(part.chunks[0], 1))
                part = da.where(part >= 0, part - shift, part)
            else:
                part = xp.where(part >= 0, part - shift, part)
        out.append(part.reshape(*bshape, m, *part.shape[1:]))
    return out[0] if single else tuple(out)


def _recategorize(root: Expr, positions, cat: Cat) -> Expr:
    """``root`` with the parameters at ``positions`` made variables of ``cat``."""
    def moved(node):
        pos, old = node.params
        return var(pos, node.dim, cat) if old == Cat.P and pos in positions else node

    return map_vars(root, moved)


def per_row_routine(routine, positions: tuple[int, ...]):
    """``routine`` with the parameters at ``positions`` made variables of its
    output axis (cached on the routine)."""
    from dataclasses import replace

    from .api import Genred
    from .parse import Signature

    cache = routine.__dict__.setdefault("_per_row", {})
    found = cache.get(positions)
    if found is not None:
        return found
    cat = Cat.I if routine.axis == 1 else Cat.J
    signature = Signature([replace(a, cat=cat) if a.cat == Cat.P and a.pos in positions
                           else a for a in routine.signature.args])
    f = _recategorize(routine.formulas[0], positions, cat)
    f2 = (_recategorize(routine.formulas[1], positions, cat)
          if len(routine.formulas) > 1 else None)
    found = Genred._from_exprs(f, f2, signature, routine.reduction_op, routine.axis,
                               routine.opt_arg, routine.dtype_acc, routine.use_double_acc,
                               routine.sum_scheme, routine.use_fast_math)
    cache[positions] = found
    return found
