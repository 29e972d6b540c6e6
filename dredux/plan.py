"""Block planning: how the i/j plane is cut into tasks.

The output axis is cut into *row blocks* and the reduced axis into *column
ranges*; task (r, c) computes the partial state of row block r over column
range c, and the states of a row block are merged by a tree of fan-in
``split_every``. The output's chunks are runs of whole row blocks: they follow
the chunks of dask inputs, but the tasks do not (a single input chunk of 10^7
rows is still cut into as many tasks as the work needs).

The planner sizes tasks from an estimate of the work (pairs x cost per pair x
seconds per unit of cost on the backend: the op records' costs and the
backend registry's calibration), so that a task lasts about
``dredux.task-seconds`` (long enough to amortise Dask's overhead of a few
hundred microseconds to a few milliseconds per task), there are enough tasks
to keep every worker busy, the graph stays under
``dredux.max-tasks-per-worker`` tasks per worker, and one task's inputs and
partial state fit ``dredux.memory-per-task``. A problem that fits in one task
is planned as one task, which the API runs without a scheduler.

A block-sparse reduction (``ranges=``, :mod:`dredux.ranges`) is planned from
its kept pairs: the work estimate counts them, the row blocks are cut so
that each holds about the same number of kept pairs (not rows), and a task
(r, c) exists only when row block r and column range c share a kept pair;
it gets the pattern clipped to its block. A row block with no kept pair at
all is an identity task that reads no input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import config
from .backends import BACKENDS
from .errors import ShapeError, shown
from .ir import OPS, Op, walk

__all__ = ["BlockPlan", "make_plan", "split_sizes", "pair_cost"]


@dataclass(frozen=True)
class BlockPlan:
    """Row blocks and column ranges of one call.

    Attributes
    ----------
    rows : tuple of int
        Sizes of the row blocks of the tasks; they sum to M.
    cols : tuple of (int, int)
        Column ranges [start, stop) of the tasks; they tile [0, N).
    split_every : int
        Fan-in of the merge tree.
    chunks : tuple of int, optional
        Sizes of the output's chunks, each a run of whole row blocks (default:
        one chunk per row block).
    blocks : tuple, optional
        Block-sparse plans only: for each row block, the tasks it has, as
        ``(c, pattern)`` pairs (column range c, the
        :class:`~dredux.ranges.Sparsity` inside the block, or None when the
        block keeps every pair); a row block without a task gets the identity.
        None: every (row block, column range) is a dense task.
    """

    rows: tuple[int, ...]
    cols: tuple[tuple[int, int], ...]
    split_every: int
    chunks: tuple[int, ...] = ()
    blocks: tuple | None = None

    def __post_init__(self):
        if not self.chunks:
            object.__setattr__(self, "chunks", tuple(self.rows))

    @property
    def blocks_per_chunk(self) -> tuple[int, ...]:
        """How many consecutive row blocks make each output chunk."""
        counts, block, at = [], 0, 0
        for size in self.chunks:
            start = block
            end = at + size
            while block < len(self.rows) and (at < end or (size == 0 and block == start)):
                at += self.rows[block]
                block += 1
            counts.append(block - start)
        return tuple(counts)

    def leaves(self) -> tuple[int, ...]:
        """Block tasks of each row block (an identity task counts as one)."""
        if self.blocks is None:
            return (max(1, len(self.cols)),) * len(self.rows)
        return tuple(max(1, len(tasks)) for tasks in self.blocks)

    @property
    def n_tasks(self) -> int:
        """Block tasks (merge and finalize tasks not counted)."""
        return sum(self.leaves())

    def graph_size(self) -> int:
        """Total tasks of the graph: blocks, merges, and one concatenation per
        output chunk of several row blocks (the last task of a row block
        finalizes it, so there is no separate finalize task)."""
        joins = sum(1 for count in self.blocks_per_chunk if count > 1)
        total = 0
        for leaves in self.leaves():
            total += leaves
            if leaves == 1:
                continue
            while leaves > self.split_every:
                leaves = math.ceil(leaves / self.split_every)
                total += leaves
            total += 1
        return total + joins


def _work(node) -> int:
    """Multiply-adds (or element operations) of one evaluation of ``node``: its
    dimension, except for the products whose work grows faster (a
    matrix-vector product of an m x n matrix does m n, a TensorDot the product
    of all its axes' lengths, a soft-DTW its n m cells, a B-spline its order
    times its knots). A ``Sum`` or ``(a|b)`` over D components counts
    1: the element-wise ops below it count their D already."""
    if node.op in (Op.MATVECMULT, Op.VECMATMULT):
        return max(a.dim for a in node.args)
    if node.op is Op.BSPLINE:  # Cox-de Boor: order steps over the n - 1 values
        return (node.args[0].dim - 1) * max(node.params[0], 1)
    if node.op in (Op.SOFTDTW, Op.GRADSOFTDTW):  # cells of the n x m grid, once or twice
        return node.args[0].dim * node.args[1].dim * (1 if node.op is Op.SOFTDTW else 2)
    if node.op is Op.TENSORDOT:
        dims_a, dims_b, sub_a, sub_b = node.params[:4]
        sizes = dict(zip(sub_a, dims_a)) | dict(zip(sub_b, dims_b))
        return math.prod(sizes.values())
    return node.dim


def pair_cost(formulas, reduction, dtype) -> float:
    """Estimated cost of one (i, j) pair, in adds (the unit of the backends'
    ``seconds_per_cost``): each op's cost (its record) times its work
    (:func:`_work`), the reduction's update, and twice that in float64."""
    seen: set = set()
    cost = sum(OPS[n.op].cost * _work(n) for f in formulas for n in walk(f, seen)
               if n.op not in (Op.VAR, Op.CONST))
    cost += reduction.cost()
    return float(max(cost, 1)) * (2.0 if np.dtype(dtype) == np.float64 else 1.0)


def split_sizes(total: int, parts: int) -> tuple[int, ...]:
    """``total`` cut into ``parts`` sizes differing by at most one."""
    parts = max(1, min(parts, total)) if total else 1
    base, extra = divmod(total, parts)
    return tuple(base + (1 if k < extra else 0) for k in range(parts))


def _ranges_from_sizes(sizes) -> tuple[tuple[int, int], ...]:
    out, at = [], 0
    for size in sizes:
        out.append((at, at + size))
        at += size
    return tuple(out)


def _group_chunks(chunks: tuple[int, ...], target: int) -> tuple[tuple[int, int], ...]:
    """Column ranges of about ``target`` columns, cut at the input's chunk edges
    (a chunk much larger than ``target`` is itself cut)."""
    ranges: list[tuple[int, int]] = []
    start = at = 0
    for size in chunks:
        if size > 2 * target:
            if at > start:
                ranges.append((start, at))
            for piece in split_sizes(size, math.ceil(size / target)):
                ranges.append((at, at + piece))
                at += piece
            start = at
            continue
        at += size
        if at - start >= target:
            ranges.append((start, at))
            start = at
    if at > start:
        ranges.append((start, at))
    return tuple(ranges) or ((0, 0),)


def configured_block_size() -> tuple[int | None, int | None]:
    """``dredux.block-size`` as (rows, cols); ConfigError naming the setting."""
    try:
        return _parse_block_size(config.get("block-size"))
    except ShapeError:
        raise config.setting_error("block-size", config.get("block-size"),
                                   "rows per block, or [rows, cols], positive integers "
                                   "(default None: planned)") from None


def _parse_block_size(value) -> tuple[int | None, int | None]:
    if value is None:
        return None, None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        pair = (value, value)
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        pair = tuple(value)
    else:
        raise ShapeError(f"block_size must be an int or a pair (rows, cols), got {shown(value)}")
    for v in pair:
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer))
                              or v < 1):
            raise ShapeError(f"block_size entries must be positive integers, got {value!r}")
    return tuple(None if v is None else int(v) for v in pair)  # type: ignore[return-value]


def _split_every(given) -> int:
    """The merge tree's fan-in: the call's ``split_every``, else the setting."""
    if given is None:
        return config.number("split-every", integer=True, least=2)
    if not isinstance(given, bool) and isinstance(given, (int, np.integer)) and given >= 2:
        return int(given)
    raise ShapeError(f"split_every (the fan-in of the merge tree) must be an integer >= 2, "
                     f"got {shown(given)}")


def make_plan(m: int, n: int, cost: float, backend: str, workers: int, *,
              row_bytes: int = 8, col_bytes: int = 8, state_bytes: int = 8,
              block_size=None, split_every=None,
              row_chunks: tuple[int, ...] | None = None,
              col_chunks: tuple[int, ...] | None = None, sparsity=None) -> BlockPlan:
    """Plan the blocks of an M x N reduction.

    Parameters
    ----------
    m, n : int
        Output rows and reduced columns.
    cost : float
        Cost of one pair (:func:`pair_cost`).
    backend : str
        A name of :data:`dredux.backends.BACKENDS`.
    workers : int
        Tasks that can run at once (threads, or the cluster's worker threads).
    row_bytes, col_bytes, state_bytes : int
        Bytes per row of the row inputs, of the column inputs, and of the state.
    block_size : int or (int, int), optional
        Rows per block and columns per task, overriding the planner
        (default: ``dredux.block-size``).
    split_every : int, optional
        Fan-in of the merge tree (default: ``dredux.split-every``).
    row_chunks, col_chunks : tuple of int, optional
        Chunks of dask inputs: ``row_chunks`` are the output's chunks (row
        blocks cut them, never cross their edges) and the column ranges are cut
        at ``col_chunks`` edges where possible.
    sparsity : dredux.ranges.Sparsity, optional
        The kept pairs of a block-sparse reduction.
    """
    split_every = _split_every(split_every)
    workers = max(1, int(workers))
    bm, bn = (_parse_block_size(block_size) if block_size is not None
              else configured_block_size())
    budget = config.memory_per_task()
    cap = config.number("max-tasks-per-worker", integer=True, least=1) * workers

    weighted = bm is None and sparsity is not None and sparsity.kept > 0
    if bm is None or bn is None:
        pairs = sparsity.kept if sparsity is not None else m * n
        auto_m, auto_n = _auto_blocks(m, n, cost, backend, workers, cap, pairs)
        bm = bm or auto_m
        bn = bn or auto_n
    # memory (a hard bound): a task holds its rows, its columns and its state
    bm_max = max(1, budget // (2 * max(1, row_bytes + state_bytes)))
    bn_max = max(1, budget // (2 * max(1, col_bytes)))
    bm, bn = min(bm, bm_max), min(bn, bn_max)

    chunks = tuple(int(c) for c in row_chunks) if row_chunks is not None else None
    if weighted:
        rows = _weighted_rows(sparsity, math.ceil(m / bm), chunks, bm_max)
    else:
        rows = _row_blocks(m, bm, chunks)
    if col_chunks is not None and n:
        cols = _group_chunks(tuple(int(c) for c in col_chunks), bn)
    else:
        cols = _ranges_from_sizes(split_sizes(n, math.ceil(n / bn)) if n else (0,))
    # graph-size cap (a soft bound): grow column ranges, then row blocks (down
    # to one per output chunk), as far as the memory bound allows
    while len(rows) * len(cols) > cap:
        if len(cols) > 1 and math.ceil(n / (len(cols) // 2)) <= bn_max:
            cols = _ranges_from_sizes(split_sizes(n, len(cols) // 2))
            continue
        fewer = (_weighted_rows(sparsity, max(1, len(rows) // 2), chunks, bm_max)
                 if weighted else _row_blocks(m, 2 * max(rows), chunks))
        if len(fewer) < len(rows) and max(fewer) <= bm_max:
            rows = fewer
        else:
            break
    blocks = None if sparsity is None else _sparse_blocks(sparsity, rows, cols)
    return BlockPlan(rows, cols, split_every, chunks if chunks is not None else rows, blocks)


def _sparse_blocks(sparsity, rows: tuple[int, ...], cols) -> tuple:
    """For each row block, its tasks ``(c, pattern or None)``: the column ranges
    holding a kept pair of the block, with the pattern clipped to the block
    (None when it keeps every pair of the block)."""
    out, start = [], 0
    for size in rows:
        tasks = []
        for c, (c0, c1) in enumerate(cols):
            local = sparsity.clip(start, start + size, c0, c1)
            kept = local.kept
            if kept:
                tasks.append((c, None if kept == size * (c1 - c0) else local))
        out.append(tuple(tasks))
        start += size
    return tuple(out)


def _weighted_rows(sparsity, count: int, chunks: tuple[int, ...] | None,
                   bm_max: int) -> tuple[int, ...]:
    """About ``count`` row blocks holding equal numbers of kept pairs (each output
    chunk gets its share of the blocks and is cut on its own), none longer than
    ``bm_max`` rows."""
    m = sparsity.m
    cum = sparsity.kept_rows().astype(np.float64)  # kept pairs before each cluster
    edges = np.concatenate([sparsity.rows[:, 0], [m]]).astype(np.float64)
    width = sparsity.columns_per_cluster().astype(np.float64)  # per row of a cluster

    def before(i: float) -> float:  # kept pairs in rows [0, i)
        k = min(max(int(np.searchsorted(edges, i, side="right")) - 1, 0), len(width) - 1)
        return float(cum[k] + (i - edges[k]) * width[k])

    def first_row(t: np.ndarray) -> np.ndarray:  # the row where t kept pairs are reached
        k = np.clip(np.searchsorted(cum, t, side="left") - 1, 0, len(width) - 1)
        return edges[k] + np.ceil((t - cum[k]) / np.maximum(width[k], 1))

    total = float(cum[-1])
    out: list[int] = []
    start = 0
    for size in (chunks if chunks is not None else (m,)):
        stop = start + size
        lo, hi = before(start), before(stop)
        parts = max(1, round(count * (hi - lo) / total)) if size else 1
        cuts = first_row(lo + (hi - lo) * np.arange(1, parts) / parts)
        cuts = np.unique(np.clip(cuts, start + 1, stop - 1).astype(np.int64)) \
            if size > 1 else np.empty(0, np.int64)
        bounds = [start, *cuts.tolist(), stop]
        for a, b in zip(bounds[:-1], bounds[1:]):
            out.extend(split_sizes(b - a, math.ceil((b - a) / bm_max)) if b > a else (0,))
        start = stop
    return tuple(out) or (0,)


def _row_blocks(m: int, bm: int, chunks: tuple[int, ...] | None) -> tuple[int, ...]:
    """Row blocks of at most ``bm`` rows (as even as possible); with ``chunks``,
    each chunk is cut on its own, so that no block crosses a chunk edge."""
    if chunks is None:
        return split_sizes(m, math.ceil(m / bm)) if m else (0,)
    out: list[int] = []
    for size in chunks:
        out.extend(split_sizes(size, math.ceil(size / bm)) if size else (0,))
    return tuple(out) or (0,)


def _auto_blocks(m: int, n: int, cost: float, backend: str, workers: int,
                 cap: int, pairs: int | None = None) -> tuple[int, int]:
    """Rows per block and columns per task from the work estimate (``pairs``:
    the pairs visited, default all m x n)."""
    if not m or not n:
        return max(1, m), max(1, n)
    calibration = BACKENDS[backend]
    pairs = m * n if pairs is None else pairs
    seconds = pairs * max(cost, 1.0) * calibration.seconds_per_cost
    target = config.number("task-seconds", integer=False, least=0, strict=True)
    tasks = math.ceil(seconds / target)
    if workers > 1:
        # enough tasks for every worker, as long as each still does real work
        # (a quarter of the target): a problem of a fraction of a second still
        # uses every core, one below a quarter of the target is a single task
        tasks = max(tasks, min(4 * workers, math.ceil(seconds / (target / 4))))
    if tasks <= 1:
        return m, n
    tasks = min(tasks, cap)
    n_rows = min(tasks, max(1, m // calibration.min_rows))
    n_cols = min(math.ceil(tasks / n_rows), max(1, n // calibration.min_cols))
    return math.ceil(m / n_rows), math.ceil(n / n_cols)
