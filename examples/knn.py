"""K-nearest-neighbour classification with LazyTensor.argKmin (the KeOps
tutorial, ported).

Labels a grid of query points by the majority class of their K nearest
training points: one ``argKmin`` reduction per K. With ``--dask`` the grid is
a chunked dask array and the indices come back as a lazy dask array.

    python examples/knn.py [--n 10000] [--grid 100] [--dask]

The run checks the neighbours against a brute-force NumPy search and exits
non-zero on a mismatch.
"""

import argparse
import time

import numpy as np

from dredux import LazyTensor


def fth(x):
    return 3 * x * (x - 0.5) * (x - 1) + x


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--grid", type=int, default=100)
    parser.add_argument("--dask", action="store_true")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    x = rng.random((args.n, 2)).astype(np.float32)  # training points
    cl = x[:, 1] + 0.1 * rng.standard_normal(args.n).astype(np.float32) < fth(x[:, 0])
    t = np.linspace(0, 1, args.grid).astype(np.float32)
    g1, g2 = np.meshgrid(t, t)
    g = np.hstack((g1.reshape(-1, 1), g2.reshape(-1, 1)))  # query points
    queries = g
    if args.dask:
        import dask.array as da

        queries = da.from_array(g, chunks=max(1, len(g) // 4))
    ok = True
    for K in (1, 3, 10):
        start = time.perf_counter()
        G_i = LazyTensor(queries[:, None, :])  # (M, 1, 2)
        X_j = LazyTensor(x[None, :, :])  # (1, N, 2)
        D_ij = ((G_i - X_j) ** 2).sum(-1)  # (M, N) symbolic squared distances
        ind = D_ij.argKmin(K, dim=1)  # (M, K) indices
        ind = np.asarray(ind.compute() if args.dask else ind)
        labels = np.mean(cl[ind], axis=1) > 0.5
        elapsed = time.perf_counter() - start
        # brute force: the K-th smallest distance bounds every chosen neighbour
        d = ((g[:, None, :].astype(np.float64) - x[None, :, :]) ** 2).sum(-1)
        kth = np.sort(d, axis=1)[:, K - 1]
        chosen = np.take_along_axis(d, ind, axis=1)
        good = bool(np.all(chosen <= kth[:, None] * (1 + 1e-5) + 1e-6))
        ok &= good
        print(f"{K}-NN classifier: {len(g):,} queries, {args.n:,} points"
              f"{' (dask)' if args.dask else ''}: {elapsed:.3f} s, "
              f"{labels.mean():.2f} of the grid in class 1; neighbours checked: {good}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
