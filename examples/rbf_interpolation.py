"""Gaussian RBF (kriging) interpolation with LazyTensor.solve (the KeOps
tutorial, ported).

Fits ``(alpha I + K_xx) a = b`` by conjugate gradients, each product a dredux
reduction, then evaluates the interpolant ``K_tx @ a`` on new points. With
``--dask`` the samples are a chunked dask array and every iteration of the
solve runs on Dask (the cluster, when a Client is active).

    python examples/rbf_interpolation.py [--n 1000] [--dask]

The run checks the coefficients against ``numpy.linalg.solve`` (for n up to
4000) and exits non-zero on a mismatch.
"""

import argparse
import time

import numpy as np

from dredux import LazyTensor


def gaussian_kernel(x, y, sigma=0.1):
    x_i = LazyTensor(x[:, None, :])  # (M, 1, D)
    y_j = LazyTensor(y[None, :, :])  # (1, N, D)
    D_ij = ((x_i - y_j) ** 2).sum(-1)  # (M, N) symbolic squared distances
    return (-D_ij / (2 * sigma**2)).exp()  # (M, N) symbolic Gaussian kernel matrix


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--dask", action="store_true")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    x = rng.random((args.n, 1))
    b = x + 0.5 * np.sin(6 * x) + 0.1 * np.sin(20 * x) + 0.05 * rng.standard_normal((args.n, 1))
    xs, bs = x, b
    if args.dask:
        import dask.array as da

        xs = da.from_array(x, chunks=max(1, args.n // 4))
        bs = da.from_array(b, chunks=max(1, args.n // 4))
    start = time.perf_counter()
    a = gaussian_kernel(xs, xs).solve(bs, alpha=args.alpha, eps=1e-10)
    a = np.asarray(a.compute() if args.dask else a)
    elapsed = time.perf_counter() - start
    t = np.linspace(0, 1, 101).reshape(-1, 1)
    mean_t = gaussian_kernel(t, x) @ a  # the interpolant on a uniform grid
    ok = bool(np.all(np.isfinite(mean_t)))
    if args.n <= 4000:
        K = np.exp(-((x[:, None, :] - x[None, :, :]) ** 2).sum(-1) / (2 * 0.1**2))
        ref = np.linalg.solve(args.alpha * np.eye(args.n) + K, b)
        err = float(np.abs(a - ref).max() / np.abs(ref).max())
        ok &= err < 1e-6
        check = f"relative error vs numpy.linalg.solve {err:.1e}"
    else:
        check = "not checked (n > 4000)"
    fit = float(np.abs(mean_t - (t + 0.5 * np.sin(6 * t) + 0.1 * np.sin(20 * t))).mean())
    print(f"RBF interpolation: {args.n:,} samples{' (dask)' if args.dask else ''}, solve "
          f"{elapsed:.3f} s; {check}; mean deviation of the fit from the noiseless signal "
          f"{fit:.3f}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
