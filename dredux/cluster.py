"""Clustering helpers for block-sparse reductions, as in ``pykeops.numpy.cluster``.

They turn point clouds into the 6-tuple ``ranges`` that describes which
(row cluster, column cluster) blocks of the i/j plane a reduction visits:

>>> import numpy as np
>>> from dredux.cluster import grid_cluster, cluster_ranges_centroids, sort_clusters
>>> from dredux.cluster import from_matrix
>>> x = np.array([[0.0], [0.1], [0.9], [0.05], [0.5]])
>>> labels = grid_cluster(x, 0.2)                    # cubic cells of side 0.2
>>> labels.tolist()
[0, 0, 2, 0, 1]
>>> x, labels = sort_clusters(x, labels)             # clusters contiguous in memory
>>> ranges, centroids, weights = cluster_ranges_centroids(x, labels)
>>> ranges.tolist()
[[0, 3], [3, 4], [4, 5]]
>>> keep = np.abs(centroids - centroids.T) < 0.45     # clusters close to each other
>>> ranges_ij = from_matrix(ranges, ranges, keep)    # the Genred ``ranges=`` argument

Every helper checks its inputs and says what it expected (shapes, integer
labels, a boolean mask of the right shape) instead of failing inside NumPy.
Beyond KeOps, :func:`grid_cluster` takes any dimension (KeOps: 1 to 3) and
never merges distinct cells (KeOps's packed cell keys collide past 1024 cells
per axis).
"""

from __future__ import annotations

import reprlib

import numpy as np

from .errors import ArgumentError, DtypeError, ShapeError

__all__ = ["grid_cluster", "sort_clusters", "cluster_ranges", "cluster_centroids",
           "cluster_ranges_centroids", "from_matrix", "swap_axes"]


def _points(x, name: str = "x") -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ShapeError(f"{name} has shape {x.shape}; expected a non-empty (M, D) array of "
                         "points" + (" (reshape it with .reshape(-1, 1))" if x.ndim == 1
                                     else ""))
    if x.dtype.kind not in "fiu" or x.dtype == bool:
        raise DtypeError(f"{name} has dtype {x.dtype}; expected float coordinates (convert "
                         "with .astype(np.float64))")
    return x


def _numbers(value, name: str, expected: str) -> np.ndarray:
    """``value`` (a number, a list or an array of numbers) as a float64 array;
    ArgumentError for what is none (a string, None), DtypeError for an array of
    another kind (strings, objects)."""
    if value is None or isinstance(value, (str, bytes)):
        raise ArgumentError(f"{name} is {type(value).__name__} {reprlib.repr(value)}; "
                            f"expected {expected}")
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):  # ragged lists
        raise ArgumentError(f"{name} is {type(value).__name__} {reprlib.repr(value)}, "
                            f"which is not an array; expected {expected}") from None
    if array.dtype.kind not in "fiu":
        raise DtypeError(f"{name} has dtype {array.dtype} ({reprlib.repr(value)}); "
                         f"expected {expected}")
    return array.astype(np.float64, copy=False)


def _counts(Nlab) -> np.ndarray:
    """``Nlab``: one non-negative integer count per cluster, as int64."""
    counts = _numbers(Nlab, "Nlab", "non-negative counts, one per cluster (e.g. "
                      "np.bincount(labels))")
    if counts.ndim != 1 or (counts.size and (not np.all(np.isfinite(counts))
                                             or counts.min() < 0
                                             or np.any(counts != np.round(counts)))):
        raise ShapeError(f"Nlab has shape {counts.shape} ({reprlib.repr(Nlab)}); expected "
                         "non-negative integer counts, one per cluster, in a 1-D array "
                         "(e.g. np.bincount(labels))")
    return counts.astype(np.int64)


def _weights(weights, rows: int, name: str = "weights") -> np.ndarray:
    """One finite weight per point, as float64."""
    w = _numbers(weights, name, f"one number per point ({rows})").ravel()
    if w.shape[0] != rows:
        raise ShapeError(f"{name} have {w.shape[0]} entries for {rows} points; expected "
                         "one per point")
    return w


# labels may leave clusters empty, but not by more than this many per point
# (plus _FEW_CLUSTERS): beyond, the per-cluster arrays dwarf the points
_MAX_CLUSTERS_PER_POINT = 64
_FEW_CLUSTERS = 1 << 20


def _labels(lab, rows: int | None = None) -> np.ndarray:
    lab = np.asarray(lab)
    if lab.dtype.kind not in "iu" or lab.dtype == bool:
        raise DtypeError(f"labels have dtype {lab.dtype}; expected integers in [0, C) "
                         "(e.g. from grid_cluster)")
    lab = lab.ravel() if lab.ndim == 2 and 1 in lab.shape else lab
    if lab.ndim != 1:
        raise ShapeError(f"labels have shape {lab.shape}; expected a 1-D array, one label "
                         "per point")
    if rows is not None and lab.shape[0] != rows:
        raise ShapeError(f"labels have {lab.shape[0]} entries for {rows} points; expected "
                         "one label per point")
    if lab.size and lab.min() < 0:
        raise ShapeError(f"labels hold the negative value {int(lab.min())}; expected labels "
                         "in [0, C)")
    # the largest label sets the number of clusters, and the ranges and centroids
    # have a row per cluster: refuse labels far sparser than the points before
    # allocating for them (label 10**12 would be terabytes)
    if lab.size and int(lab.max()) >= _MAX_CLUSTERS_PER_POINT * lab.size + _FEW_CLUSTERS:
        raise ShapeError(f"labels hold the value {int(lab.max())}, which makes "
                         f"{int(lab.max()) + 1} clusters for {lab.size} points (at most "
                         f"{_MAX_CLUSTERS_PER_POINT * lab.size + _FEW_CLUSTERS} here); expected "
                         "compact labels in [0, C): np.unique(lab, return_inverse=True)[1] "
                         "numbers them so")
    return lab


def grid_cluster(x, size) -> np.ndarray:
    r"""Labels of the cubic cells ("voxels") of side ``size`` holding the points.

    Parameters
    ----------
    x : (M, D) array
        Points, any dimension D.
    size : float or (D,) array
        Side of the cells (positive).

    Returns
    -------
    (M,) int64 array
        Labels in a compact range [0, C), C the number of non-empty cells,
        numbered in the lexicographic order of the cells' integer coordinates.
    """
    x = _points(x)
    size = _numbers(size, "size", f"a positive number, or one per dimension (shape "
                    f"({x.shape[1]},))")
    if size.ndim > 1 or (size.ndim == 1 and size.shape[0] != x.shape[1]):
        raise ShapeError(f"size has shape {size.shape}; expected a number or one side per "
                         f"dimension, shape ({x.shape[1]},)")
    if not np.all(np.isfinite(size)) or np.any(size <= 0):
        raise ShapeError(f"size must be positive and finite, got {size.tolist()}")
    if not np.all(np.isfinite(x)):
        raise ShapeError("x holds NaN or infinite coordinates: they belong to no cell")
    cells = np.floor(x / size)
    if np.abs(cells).max(initial=0) >= 2.0 ** 62:
        raise ShapeError("the cells are too small for these coordinates (more than 2^62 "
                         "cells along an axis): use a larger size")
    _, labels = np.unique(cells.astype(np.int64), axis=0, return_inverse=True)
    return labels.reshape(-1).astype(np.int64)


def sort_clusters(x, lab):
    """Points (an array, or a tuple/list of arrays with one row per point) and
    labels sorted by label, so that every cluster is contiguous in memory.

    Returns
    -------
    sorted points (same container type), sorted labels
    """
    arrays = list(x) if isinstance(x, (tuple, list)) else [x]
    rows = {int(np.shape(a)[0]) if np.ndim(a) else -1 for a in arrays}
    if len(rows) != 1 or -1 in rows:
        raise ShapeError("sort_clusters needs arrays with one row per point, all with the "
                         f"same number of rows; got shapes {[np.shape(a) for a in arrays]}")
    lab = _labels(lab, rows.pop())
    perm = np.argsort(lab, kind="stable")
    out = [np.asarray(a)[perm] for a in arrays]
    if isinstance(x, tuple):
        return tuple(out), lab[perm]
    if isinstance(x, list):
        return out, lab[perm]
    return out[0], lab[perm]


def cluster_ranges(lab, Nlab=None) -> np.ndarray:
    """The ``[start, end)`` rows of each cluster of points sorted by
    :func:`sort_clusters`: a (C, 2) int64 array."""
    Nlab = np.bincount(_labels(lab)) if Nlab is None else _counts(Nlab)
    pivots = np.concatenate(([0], np.cumsum(Nlab.astype(np.int64))))
    return np.stack((pivots[:-1], pivots[1:]), axis=1).astype(np.int64)


def cluster_centroids(x, lab, Nlab=None, weights=None, weights_c=None) -> np.ndarray:
    """The (weighted) barycentre of each cluster: a (C, D) array. Empty
    clusters get NaN coordinates (they have no barycentre)."""
    x = _points(x)
    lab = _labels(lab, x.shape[0])
    count = int(lab.max()) + 1 if lab.size else 0
    if Nlab is not None:
        count = max(count, len(_counts(Nlab)))
    w = np.ones(x.shape[0]) if weights is None else _weights(weights, x.shape[0])
    if weights_c is None:
        totals = np.bincount(lab, weights=w, minlength=count)
    else:
        totals = _numbers(weights_c, "weights_c", f"the total weight of each cluster "
                          f"({count})").ravel()
        if totals.shape[0] != count:
            raise ShapeError(f"weights_c have {totals.shape[0]} entries for {count} "
                             "clusters; expected the total weight of each cluster")
    out = np.empty((count, x.shape[1]), dtype=np.result_type(x.dtype, np.float32))
    with np.errstate(invalid="ignore", divide="ignore"):
        for d in range(x.shape[1]):
            out[:, d] = np.bincount(lab, weights=x[:, d] * w, minlength=count) / totals
    return out


def cluster_ranges_centroids(x, lab, weights=None):
    """Ranges, centroids and total weight (the number of points when unweighted)
    of each cluster: ``(ranges (C, 2), centroids (C, D), weights (C,))``."""
    x = _points(x)
    lab = _labels(lab, x.shape[0])
    counts = np.bincount(lab).astype(np.float64)
    if weights is None:
        return cluster_ranges(lab, counts.astype(np.int64)), cluster_centroids(x, lab), counts
    w = _weights(weights, x.shape[0])
    totals = np.bincount(lab, weights=w, minlength=len(counts))
    return (cluster_ranges(lab, counts.astype(np.int64)),
            cluster_centroids(x, lab, weights=w, weights_c=totals), totals)


def _ranges_array(r, name: str) -> np.ndarray:
    r = np.asarray(r)
    if r.ndim != 2 or r.shape[1] != 2 or r.dtype.kind not in "iu":
        raise ShapeError(f"{name} has shape {r.shape} and dtype {r.dtype}; expected a (C, 2) "
                         "integer array of [start, end) rows (cluster_ranges gives one)")
    if np.any(r[:, 1] < r[:, 0]) or (r.size and r.min() < 0):
        raise ShapeError(f"{name} holds a range with end < start or a negative index; "
                         "expected 0 <= start <= end")
    return r.astype(np.int64)


def from_matrix(ranges_i, ranges_j, keep):
    """The 6-tuple ``ranges`` of a block-sparse reduction from cluster ranges
    and a (C_i, C_j) boolean mask of the cluster pairs to keep:
    ``(ranges_i, slices_i, redranges_j, ranges_j, slices_j, redranges_i)``,
    int64 arrays with KeOps's layout (``slices_i[k]`` ends the run of
    ``redranges_j`` rows reduced for row cluster k, and the same for j)."""
    ranges_i = _ranges_array(ranges_i, "ranges_i")
    ranges_j = _ranges_array(ranges_j, "ranges_j")
    keep = np.asarray(keep)
    if keep.dtype != bool:
        raise DtypeError(f"keep has dtype {keep.dtype}; expected a boolean mask (e.g. "
                         "dist < threshold)")
    if keep.shape != (ranges_i.shape[0], ranges_j.shape[0]):
        raise ShapeError(f"keep has shape {keep.shape}; expected (C_i, C_j) = "
                         f"({ranges_i.shape[0]}, {ranges_j.shape[0]}), one entry per pair of "
                         "clusters")
    _, cols = np.nonzero(keep)  # row-major: for each i cluster, its kept j clusters
    _, rows_t = np.nonzero(keep.T)  # for each j cluster, its kept i clusters
    return (ranges_i, np.cumsum(keep.sum(axis=1)).astype(np.int64), ranges_j[cols],
            ranges_j, np.cumsum(keep.sum(axis=0)).astype(np.int64), ranges_i[rows_t])


def swap_axes(ranges):
    """``ranges`` with the i and j axes exchanged (None stays None)."""
    if ranges is None:
        return None
    if isinstance(ranges, (str, bytes, np.ndarray)) or not hasattr(ranges, "__iter__"):
        raise ArgumentError(f"ranges is {type(ranges).__name__} {reprlib.repr(ranges)}; "
                            "expected the 6-tuple (ranges_i, slices_i, redranges_j, "
                            "ranges_j, slices_j, redranges_i) that from_matrix returns, or "
                            "None")
    ranges = tuple(ranges)
    if len(ranges) != 6:
        raise ShapeError(f"ranges has {len(ranges)} arrays; expected the 6-tuple (ranges_i, "
                         "slices_i, redranges_j, ranges_j, slices_j, redranges_i)")
    return (*ranges[3:6], *ranges[0:3])
