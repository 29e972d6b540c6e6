"""K-means clustering with LazyTensor.argmin (the KeOps tutorial, ported).

Each iteration assigns every point to its nearest centroid with one
``argmin`` reduction over the (N, K) distance matrix, which is never built,
then moves the centroids. With ``--dask`` the points are a chunked dask array
and the assignment is a lazy reduction that the iteration computes.

    python examples/kmeans.py [--n 10000] [--dim 2] [--k 50] [--dask]

The run checks its last assignment against NumPy (nearest centroid by brute
force in float64) and exits non-zero on a mismatch.
"""

import argparse
import time

import numpy as np

from dredux import LazyTensor  # the KeOps tutorial's `from pykeops.numpy import LazyTensor`


def kmeans(x, K=10, n_iter=10, dask=False):
    """Lloyd's algorithm; returns (labels, centroids)."""
    N, D = x.shape
    c = np.copy(x[:K, :])  # simplistic initialisation, as in the tutorial
    points = x
    if dask:
        import dask.array as da

        points = da.from_array(x, chunks=max(1, N // 4))
    x_i = LazyTensor(points[:, None, :])  # (N, 1, D)
    for _ in range(n_iter):
        c_j = LazyTensor(c[None, :, :])  # (1, K, D)
        D_ij = ((x_i - c_j) ** 2).sum(-1)  # (N, K) symbolic squared distances
        cl = D_ij.argmin(axis=1)
        cl = np.asarray(cl.compute() if dask else cl).astype(int).reshape(N)
        counts = np.bincount(cl, minlength=K).astype(x.dtype)
        for d in range(D):
            sums = np.bincount(cl, weights=x[:, d], minlength=K)
            c[:, d] = np.where(counts > 0, sums / np.maximum(counts, 1), c[:, d])
    return cl, c


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--dim", type=int, default=2)
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--dask", action="store_true")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((args.n, args.dim)) / 6 + 0.5).astype(np.float32)
    start = time.perf_counter()
    cl, c = kmeans(x, args.k, args.iterations, args.dask)
    elapsed = time.perf_counter() - start
    # the labels of the last assignment are the nearest centroids *before* the last move
    _, before = kmeans(x, args.k, args.iterations - 1, False) if args.iterations > 1 else \
        (None, x[:args.k].copy())
    d = ((x[:, None, :].astype(np.float64) - before[None, :, :]) ** 2).sum(-1)
    best = d.min(1)
    chosen = d[np.arange(args.n), cl]
    ok = bool(np.all(chosen <= best * (1 + 1e-5) + 1e-6))
    print(f"k-means: {args.n:,} points in dimension {args.dim}, K = {args.k}, "
          f"{args.iterations} iterations{' (dask)' if args.dask else ''}: {elapsed:.3f} s; "
          f"labels are nearest centroids: {ok}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
