"""Block-sparse reductions: KeOps's ``ranges`` argument, checked, and cut into tasks.

A reduction with ``ranges=(ranges_i, slices_i, redranges_j, ranges_j,
slices_j, redranges_i)`` visits only some (row cluster, column range) blocks
of the i/j plane. For a reduction over j (``axis=1``), the rows are grouped
into the clusters ``ranges_i[k] = [start, end)``, and cluster k is reduced
over the column ranges ``redranges_j[slices_i[k - 1]:slices_i[k]]``
(``slices_i[-1]`` counts from 0); a reduction over i (``axis=0``) reads the
other triple the same way with the axes exchanged. Rows in no cluster, and
clusters without a column range, get the reduction's answer for nothing to
reduce (0 for a sum, -inf for a max, index -1).

:func:`sparsity` checks the six arrays (dtype, shapes, bounds, order) and
returns a :class:`Sparsity` in the program's canonical direction (rows: the
output axis): its clusters cover the rows exactly (gaps become clusters with
no column range), so that a kernel writes every row's state.
:meth:`Sparsity.clip` gives the part of it inside one block task, in the
task's own coordinates; the planner uses it to drop blocks with no kept pair
and to balance tasks by kept pairs (:mod:`dredux.plan`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from .errors import DtypeError, ShapeError

__all__ = ["Sparsity", "sparsity", "NAMES"]

NAMES = ("ranges_i", "slices_i", "redranges_j", "ranges_j", "slices_j", "redranges_i")
_LAYOUT = ("pass the 6-tuple (ranges_i, slices_i, redranges_j, ranges_j, slices_j, "
           "redranges_i) that dredux.cluster.from_matrix returns")


@dataclass(frozen=True, eq=False)
class Sparsity:
    """The kept pairs of a block-sparse reduction, rows being the output axis.

    Attributes
    ----------
    rows : (C, 2) int64 array
        Row clusters ``[start, end)``: consecutive, non-empty, covering
        ``[0, m)`` exactly.
    slices : (C + 1,) int64 array
        Cluster k's column ranges are ``cols[slices[k]:slices[k + 1]]``.
    cols : (S, 2) int64 array
        Column ranges ``[start, end)`` in ``[0, n)``, non-empty, sorted and
        disjoint within each cluster.
    m, n : int
        Rows and columns of the plane.
    """

    rows: np.ndarray
    slices: np.ndarray
    cols: np.ndarray
    m: int
    n: int

    def __post_init__(self):
        # Internal invariants (the user's arrays were checked by sparsity()):
        # a kernel writes the state of every row only if the clusters cover them.
        r, s, c = self.rows, self.slices, self.cols
        ok = (r.ndim == 2 and r.shape[1] == 2 and s.shape == (len(r) + 1,)
              and c.ndim == 2 and c.shape[1] == 2 and s[0] == 0 and s[-1] == len(c))
        if ok and len(r):
            ok = (r[0, 0] == 0 and r[-1, 1] == self.m and bool(np.all(r[1:, 0] == r[:-1, 1]))
                  and bool(np.all(r[:, 1] > r[:, 0])))
        elif ok:
            ok = self.m == 0
        if ok and len(c):
            ok = bool(np.all(c[:, 0] >= 0) and np.all(c[:, 1] <= self.n)
                      and np.all(c[:, 1] > c[:, 0]))
        if not ok:  # pragma: no cover - a bug in the planner, never a user's input
            raise AssertionError(f"inconsistent sparsity pattern for {self.m} x {self.n}")
        for a in (r, s, c):
            a.setflags(write=False)

    @property
    def kept(self) -> int:
        """Number of (row, column) pairs the reduction visits."""
        return int(np.dot(self.rows[:, 1] - self.rows[:, 0], self.columns_per_cluster()))

    def columns_per_cluster(self) -> np.ndarray:
        """(C,) int64: how many columns each cluster is reduced over."""
        widths = np.concatenate([[0], np.cumsum(self.cols[:, 1] - self.cols[:, 0])])
        return widths[self.slices[1:]] - widths[self.slices[:-1]]

    def clip(self, r0: int, r1: int, c0: int, c1: int) -> Sparsity:
        """The pattern inside rows ``[r0, r1)`` x columns ``[c0, c1)``, in that
        block's coordinates (row ``r0`` is row 0, column ``c0`` column 0)."""
        rows, cols = self.rows, self.cols
        k0 = int(np.searchsorted(rows[:, 1], r0, side="right"))
        k1 = int(np.searchsorted(rows[:, 0], r1, side="left"))
        sub = np.clip(rows[k0:k1], r0, r1) - r0
        first, last = int(self.slices[k0]), int(self.slices[k1])
        seg = np.clip(cols[first:last], c0, c1) - c0
        keep = seg[:, 1] > seg[:, 0]
        counts = np.diff(self.slices[k0:k1 + 1])
        owner = np.repeat(np.arange(k1 - k0), counts)
        per = np.bincount(owner[keep], minlength=k1 - k0)
        slices = np.concatenate([[0], np.cumsum(per)]).astype(np.int64)
        return Sparsity(sub.astype(np.int64), slices, seg[keep].astype(np.int64),
                        r1 - r0, c1 - c0)

    def kept_rows(self) -> np.ndarray:
        """(C + 1,) int64: kept pairs in the rows before each cluster boundary."""
        per = (self.rows[:, 1] - self.rows[:, 0]) * self.columns_per_cluster()
        return np.concatenate([[0], np.cumsum(per)]).astype(np.int64)

    def __dask_tokenize__(self):
        return ("dredux-sparsity", self.token())

    def token(self) -> str:
        """A key of the pattern (equal patterns, equal keys)."""
        h = hashlib.sha256(f"{self.m},{self.n};".encode())
        for a in (self.rows, self.slices, self.cols):
            h.update(np.ascontiguousarray(a, dtype=np.int64).tobytes())
            h.update(b";")
        return h.hexdigest()

    def __repr__(self) -> str:
        return (f"Sparsity({self.m} x {self.n}, {len(self.rows)} clusters, "
                f"{len(self.cols)} column ranges, {self.kept} pairs kept)")


def _host(value, name: str) -> np.ndarray:
    """``value`` as a NumPy integer array (CuPy and dask arrays are brought to the host)."""
    if hasattr(value, "get") and type(value).__module__.split(".")[0] == "cupy":
        value = value.get()
    try:
        a = np.asarray(value)
    except Exception as exc:
        raise DtypeError(f"ranges: {name} is a {type(value).__name__}, which is not an "
                         f"array; expected an int32 array ({_LAYOUT})") from exc
    if a.dtype.kind not in "iu" or a.dtype == bool:
        raise DtypeError(f"ranges: {name} has dtype {a.dtype}; expected an integer array "
                         f"(int32, as KeOps's helpers return; convert with "
                         f".astype(np.int32))")
    if a.dtype.kind == "u" and a.size and int(a.max()) > np.iinfo(np.int64).max:
        # the conversion below would wrap it to a negative number
        raise ShapeError(f"ranges: {name} holds the index {int(a.max())}, beyond any array "
                         f"(more than 2^63); expected row and column indices ({_LAYOUT})")
    return a.astype(np.int64, copy=False)


def _check_triple(arrays, names, m: int, n: int) -> tuple[np.ndarray, ...]:
    """Shapes, bounds and order of one (ranges, slices, redranges) triple over an
    m x n plane (rows: the clusters' axis)."""
    (ranges, slices, red), (rn, sn, qn) = arrays, names
    if ranges.ndim != 2 or ranges.shape[1] != 2:
        raise ShapeError(f"ranges: {rn} has shape {ranges.shape}; expected (C, 2), one "
                         "[start, end) row range per cluster")
    if slices.ndim != 1 or slices.shape[0] != ranges.shape[0]:
        raise ShapeError(f"ranges: {sn} has shape {slices.shape}; expected "
                         f"({ranges.shape[0]},), one entry per cluster of {rn}")
    if red.ndim != 2 or red.shape[1] != 2:
        raise ShapeError(f"ranges: {qn} has shape {red.shape}; expected (S, 2), one "
                         "[start, end) range per kept block")
    for a, name, size, axis in ((ranges, rn, m, "rows" if rn.endswith("_i") else "columns"),
                                (red, qn, n, "rows" if qn.endswith("_i") else "columns")):
        if not len(a):
            continue
        bad = np.flatnonzero((a[:, 0] < 0) | (a[:, 1] > size) | (a[:, 1] < a[:, 0]))
        if len(bad):
            k = int(bad[0])
            raise ShapeError(f"ranges: {name}[{k}] = {a[k].tolist()} is not a range "
                             f"[start, end) with 0 <= start <= end <= {size} (the "
                             f"number of {axis})")
    if len(ranges) > 1:
        bad = np.flatnonzero(ranges[1:, 0] < ranges[:-1, 1])
        if len(bad):
            k = int(bad[0]) + 1
            raise ShapeError(f"ranges: {rn}[{k}] = {ranges[k].tolist()} starts before "
                             f"{rn}[{k - 1}] = {ranges[k - 1].tolist()} ends; expected "
                             "sorted, disjoint clusters (sort the points with "
                             "dredux.cluster.sort_clusters)")
    if len(slices):
        bad = np.flatnonzero(np.diff(slices, prepend=0) < 0)
        if len(bad):
            k = int(bad[0])
            raise ShapeError(f"ranges: {sn} is not non-decreasing at entry {k} "
                             f"({slices[k]}); expected the cumulative counts of {qn}'s "
                             "rows per cluster")
        if slices[-1] != len(red):
            raise ShapeError(f"ranges: {sn} ends at {int(slices[-1])} but {qn} has "
                             f"{len(red)} rows; expected {sn}[-1] == len({qn})")
    elif len(red):
        raise ShapeError(f"ranges: {rn} has no cluster but {qn} has {len(red)} rows")
    if len(red) > 1:
        # sorted and disjoint within each cluster's slice (an overlap would count
        # a pair twice)
        starts = np.concatenate([[0], slices[:-1]])
        first = np.zeros(len(red), dtype=bool)
        first[starts[starts < len(red)]] = True
        bad = np.flatnonzero((red[1:, 0] < red[:-1, 1]) & ~first[1:])
        if len(bad):
            k = int(bad[0]) + 1
            raise ShapeError(f"ranges: {qn}[{k}] = {red[k].tolist()} starts before "
                             f"{qn}[{k - 1}] = {red[k - 1].tolist()} ends, in the same "
                             "cluster's slice; expected sorted, disjoint ranges per "
                             "cluster")
    return ranges, slices, red


def sparsity(ranges, axis: int, m: int, n: int) -> Sparsity:
    """Check KeOps's ``ranges`` 6-tuple and return the pattern of a reduction
    over ``axis`` with ``m`` output rows and ``n`` reduced columns.

    Raises
    ------
    ShapeError, DtypeError
        Naming the array and what was expected: not a 6-tuple, a non-integer
        array, wrong shapes, a range out of bounds or reversed, clusters that
        overlap or are unsorted, slices inconsistent with the ranges, ranges
        of one cluster that overlap, or two triples that keep different numbers
        of pairs.
    """
    if isinstance(ranges, (str, bytes)) or not isinstance(ranges, (tuple, list)) \
            or len(ranges) != 6:
        got = (f"a {type(ranges).__name__} of {len(ranges)} items"
               if isinstance(ranges, (tuple, list)) else f"a {type(ranges).__name__}")
        raise ShapeError(f"ranges= is {got}; {_LAYOUT}")
    arrays = [_host(a, name) for a, name in zip(ranges, NAMES)]
    # the (ranges, slices, redranges) triple whose clusters are the output axis,
    # over the m x n plane; the other one over the n x m plane
    used = (0, 1, 2) if axis == 1 else (3, 4, 5)
    other = (3, 4, 5) if axis == 1 else (0, 1, 2)
    first = _check_triple([arrays[k] for k in used], [NAMES[k] for k in used], m, n)
    second = _check_triple([arrays[k] for k in other], [NAMES[k] for k in other], n, m)
    pattern = _normalize(*first, m, n)
    a, b = pattern.kept, _normalize(*second, n, m).kept
    if a != b:
        raise ShapeError(
            f"ranges: ({', '.join(NAMES[k] for k in used)}) keep {a} pairs but "
            f"({', '.join(NAMES[k] for k in other)}) keep {b}; the two triples must "
            "describe the same blocks, one per axis (dredux.cluster.from_matrix builds "
            "both from one mask)")
    return pattern


def _normalize(ranges, slices, red, m: int, n: int) -> Sparsity:
    """Clusters covering [0, m) exactly: gaps become clusters with no range, empty
    clusters and empty column ranges are dropped, contiguous ranges of a
    cluster are joined."""
    starts = np.concatenate([[0], slices[:-1]]) if len(slices) else slices
    nonempty = ranges[:, 1] > ranges[:, 0]
    ranges, starts, ends = ranges[nonempty], starts[nonempty], slices[nonempty]
    # column ranges of the kept clusters, empty ones dropped
    counts = ends - starts
    idx = (np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)])
           if len(starts) else np.empty(0, np.int64)).astype(np.int64)
    owner = np.repeat(np.arange(len(ranges)), counts)
    seg = red[idx] if len(idx) else np.empty((0, 2), np.int64)
    wide = seg[:, 1] > seg[:, 0]
    seg, owner = seg[wide], owner[wide]
    # contiguous ranges of a cluster become one (from_matrix gives a range per
    # kept column cluster; neighbours in memory are then one longer j-loop)
    if len(seg):
        new = np.ones(len(seg), dtype=bool)
        new[1:] = (owner[1:] != owner[:-1]) | (seg[1:, 0] != seg[:-1, 1])
        group = np.cumsum(new) - 1
        ends = np.zeros(int(group[-1]) + 1, np.int64)
        ends[group] = seg[:, 1]  # the last range of a group writes last
        seg = np.stack([seg[new, 0], ends], axis=1)
        owner = owner[new]
    # the gaps between clusters (and before the first, after the last)
    bounds = np.concatenate([[0], ranges.ravel(), [m]]).reshape(-1, 2)
    gaps = bounds[bounds[:, 1] > bounds[:, 0]]
    rows = np.concatenate([ranges, gaps]).astype(np.int64)
    is_cluster = np.concatenate([np.ones(len(ranges), bool), np.zeros(len(gaps), bool)])
    order = np.argsort(rows[:, 0], kind="stable")
    rows, is_cluster = rows[order], is_cluster[order]
    # new index of each original cluster, and the per-cluster range counts
    new_index = np.empty(len(order), np.int64)
    new_index[order] = np.arange(len(order))
    per = np.bincount(new_index[:len(ranges)][owner], minlength=len(rows)) \
        if len(rows) else np.zeros(0, np.int64)
    out_slices = np.concatenate([[0], np.cumsum(per)]).astype(np.int64)
    return Sparsity(rows.reshape(-1, 2), out_slices, seg.reshape(-1, 2).astype(np.int64),
                    int(m), int(n))
