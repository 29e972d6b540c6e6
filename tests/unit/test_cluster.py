"""dredux.cluster (the helpers of pykeops.numpy.cluster) against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from dredux import ArgumentError, DtypeError, ShapeError
from dredux.cluster import (
    cluster_centroids,
    cluster_ranges,
    cluster_ranges_centroids,
    from_matrix,
    grid_cluster,
    sort_clusters,
    swap_axes,
)


@pytest.mark.parametrize("dim", [1, 2, 3, 5])
def test_grid_cluster_labels_cells(dim):
    gen = np.random.default_rng(dim)
    x = gen.uniform(-1, 1, (300, dim))
    lab = grid_cluster(x, 0.5)
    cells = np.floor(x / 0.5).astype(int)
    same_cell = (cells[:, None, :] == cells[None, :, :]).all(-1)
    assert np.array_equal(lab[:, None] == lab[None, :], same_cell)
    assert sorted(set(lab.tolist())) == list(range(lab.max() + 1))  # compact
    # numbered in the lexicographic order of the cells
    first = [tuple(cells[np.argmax(lab == k)]) for k in range(lab.max() + 1)]
    assert first == sorted(first)


def test_grid_cluster_keeps_far_cells_apart():
    """More than 1024 cells along an axis: no two cells share a label."""
    x = np.array([[0.0, 0.0], [0.0, 2000.0], [1.0, 976.0]])
    assert len(set(grid_cluster(x, 1.0).tolist())) == 3
    lab = grid_cluster(np.array([[0.0, 0.0], [0.5, 3.0]]), [1.0, 2.0])
    assert lab.tolist() == [0, 1]


def test_sort_ranges_and_centroids():
    gen = np.random.default_rng(1)
    x = gen.uniform(0, 1, (200, 2))
    w = gen.uniform(0.5, 2, 200)
    lab = grid_cluster(x, 0.25)
    (xs, ws), labs = sort_clusters((x, w), lab)
    ranges, centroids, totals = cluster_ranges_centroids(xs, labs, weights=ws)
    assert ranges[0, 0] == 0 and ranges[-1, 1] == 200
    for k, (start, end) in enumerate(ranges):
        assert np.all(labs[start:end] == k)
        members = lab == k
        np.testing.assert_allclose(centroids[k], (x[members] * w[members, None]).sum(0)
                                   / w[members].sum())
        np.testing.assert_allclose(totals[k], w[members].sum())
    r2, c2, counts = cluster_ranges_centroids(xs, labs)
    assert np.array_equal(r2, ranges) and np.array_equal(counts, np.bincount(lab))
    np.testing.assert_allclose(c2, cluster_centroids(x, lab))
    assert np.array_equal(cluster_ranges(labs), ranges)
    xs_list, _ = sort_clusters([x], lab)
    assert isinstance(xs_list, list) and np.array_equal(xs_list[0], xs)


def _mask_of(ranges, slices, redranges, n_rows, n_cols):
    """The dense (rows x columns) mask that a ranges triple describes."""
    mask = np.zeros((n_rows, n_cols), dtype=bool)
    start = 0
    for (r0, r1), stop in zip(ranges, slices):
        for c0, c1 in redranges[start:stop]:
            mask[r0:r1, c0:c1] = True
        start = stop
    return mask


def test_from_matrix_describes_the_kept_blocks():
    gen = np.random.default_rng(2)
    ranges_i = cluster_ranges(np.repeat(np.arange(5), [3, 0, 4, 2, 6]))
    ranges_j = cluster_ranges(np.repeat(np.arange(4), [5, 1, 0, 7]))
    keep = gen.random((5, 4)) < 0.5
    keep[3] = False  # a row cluster with no kept column
    r_i, s_i, red_j, r_j, s_j, red_i = from_matrix(ranges_i, ranges_j, keep)
    dense = np.zeros((15, 13), dtype=bool)
    for a, (i0, i1) in enumerate(ranges_i):
        for b, (j0, j1) in enumerate(ranges_j):
            dense[i0:i1, j0:j1] = keep[a, b]
    assert np.array_equal(_mask_of(r_i, s_i, red_j, 15, 13), dense)
    assert np.array_equal(_mask_of(r_j, s_j, red_i, 13, 15), dense.T)
    assert all(a.dtype == np.int64 for a in (r_i, s_i, red_j, r_j, s_j, red_i))
    swapped = swap_axes((r_i, s_i, red_j, r_j, s_j, red_i))
    assert swapped[0] is r_j and swapped[3] is r_i and swap_axes(None) is None


def test_helpers_name_bad_inputs():
    x = np.zeros((4, 2))
    with pytest.raises(ShapeError, match="positive"):
        grid_cluster(x, 0)
    with pytest.raises(ShapeError, match="reshape"):
        grid_cluster(np.zeros(4), 1.0)
    with pytest.raises(ShapeError, match="NaN"):
        grid_cluster(np.array([[np.nan, 0.0]]), 1.0)
    with pytest.raises(DtypeError, match="integers"):
        sort_clusters(x, np.zeros(4))
    with pytest.raises(ShapeError, match="one label per point"):
        cluster_centroids(x, np.zeros(3, dtype=int))
    with pytest.raises(ShapeError, match="negative"):
        cluster_ranges(np.array([0, -1]))
    with pytest.raises(DtypeError, match="boolean"):
        from_matrix(np.array([[0, 2]]), np.array([[0, 2]]), np.ones((1, 1)))
    with pytest.raises(ShapeError, match=r"expected \(C_i, C_j\) = \(1, 1\)"):
        from_matrix(np.array([[0, 2]]), np.array([[0, 2]]), np.ones((2, 1), dtype=bool))
    with pytest.raises(ShapeError, match="end < start"):
        from_matrix(np.array([[2, 0]]), np.array([[0, 2]]), np.ones((1, 1), dtype=bool))
    with pytest.raises(ShapeError, match="6-tuple"):
        swap_axes((1, 2, 3))


@pytest.mark.parametrize("call,error,words", [
    (lambda x, lab: grid_cluster(x, "a"), ArgumentError, ["size is str 'a'", "a positive number"]),
    (lambda x, lab: grid_cluster(x, None), ArgumentError, ["size is NoneType None"]),
    (lambda x, lab: grid_cluster(x, ["a", "b"]), DtypeError, ["size has dtype <U1"]),
    (lambda x, lab: cluster_ranges(None, ["a", "b"]), DtypeError,
     ["Nlab has dtype <U1", "non-negative counts"]),
    (lambda x, lab: cluster_ranges(None, [1.5, 2]), ShapeError, ["Nlab", "integer counts"]),
    (lambda x, lab: cluster_ranges(None, 3), ShapeError, ["Nlab has shape ()",
                                                          "integer counts"]),
    (lambda x, lab: cluster_centroids(x, lab, weights="ab"), ArgumentError,
     ["weights is str 'ab'", "one number per point (4)"]),
    (lambda x, lab: cluster_centroids(x, lab, weights=[1, 2]), ShapeError,
     ["weights have 2 entries for 4 points; expected one per point"]),
    (lambda x, lab: cluster_centroids(x, lab, weights_c="ab"), ArgumentError,
     ["weights_c is str 'ab'"]),
    (lambda x, lab: cluster_centroids(x, lab, Nlab="ab"), ArgumentError, ["Nlab is str"]),
    (lambda x, lab: cluster_ranges_centroids(x, lab, weights=[[1, 2], [3]]), ArgumentError,
     ["weights is list", "not an array"]),
    (lambda x, lab: swap_axes(5), ArgumentError, ["ranges is int 5", "6-tuple"]),
    (lambda x, lab: swap_axes("abcdef"), ArgumentError, ["ranges is str 'abcdef'"]),
])
def test_helpers_name_arguments_of_the_wrong_kind(call, error, words):
    """They raised raw ValueError (could not convert string to float), UFuncTypeError,
    TypeError ('int' object is not iterable), or took a string as six ranges."""
    x, lab = np.zeros((4, 2)), np.array([0, 0, 1, 1])
    with pytest.raises(error) as err:
        call(x, lab)
    for word in words:
        assert word in str(err.value), str(err.value)
    # numbers of any kind are taken
    x = np.arange(8.0).reshape(4, 2)
    assert grid_cluster(x, np.float32(2.0)).tolist() == grid_cluster(x, [2, 2]).tolist()
    assert cluster_ranges(None, np.array([2.0, 2.0])).tolist() == [[0, 2], [2, 4]]
    np.testing.assert_allclose(cluster_centroids(x, lab, weights=[1, 1, 1, 3]),
                               [[1.0, 2.0], [5.5, 6.5]])


def test_same_results_as_pykeops_when_installed():
    keops = pytest.importorskip("pykeops.numpy.cluster")
    gen = np.random.default_rng(4)
    x = gen.uniform(0, 1, (500, 3))
    lab = grid_cluster(x, 0.2)
    assert np.array_equal(lab, keops.grid_cluster(x, 0.2))
    xs, labs = sort_clusters(x, lab)
    ours = cluster_ranges_centroids(xs, labs)
    theirs = keops.cluster_ranges_centroids(xs, labs)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b)
    keep = ((ours[1][:, None] - ours[1][None]) ** 2).sum(-1) < 0.1
    mine, keops_ranges = (f(ours[0], ours[0], keep) for f in (from_matrix, keops.from_matrix))
    for a, b in zip(mine, keops_ranges):
        assert np.array_equal(a, b)


def test_pykeops_import_path():
    from dredux.numpy import cluster

    assert cluster.grid_cluster is grid_cluster and cluster.from_matrix is from_matrix


def test_the_cluster_helpers_are_an_attribute_of_dredux_numpy():
    # as pykeops.numpy.cluster: `import dredux.numpy as pk; pk.cluster.grid_cluster` (in a
    # fresh interpreter: here another test may have imported the submodule already)
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", "import dredux.numpy as pk; "
                           "print(pk.cluster.grid_cluster.__name__)"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "grid_cluster"
