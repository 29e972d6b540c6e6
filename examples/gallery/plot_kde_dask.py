"""
Kernel density estimate of a million points on a dask array
===========================================================

A Gaussian kernel density estimate ``d(t) = sum_j exp(-|t - y_j|^2 / (2 s^2))``
evaluated on an 80 x 80 grid, the million sample points held in a chunked
``dask.array``: the result is a lazy dask array (one task per planned block,
merged by a tree reduction), computed at the end. A few grid points are checked
against NumPy.
"""

import dask.array as da
import matplotlib.pyplot as plt
import numpy as np

from dredux import Genred

rng = np.random.default_rng(1)
n = 1_000_000
centres = np.array([[-1.0, 0.0], [1.0, 0.5], [0.0, -1.0]])
points = (centres[rng.integers(0, 3, n)] + 0.35 * rng.normal(size=(n, 2))).astype(np.float32)
samples = da.from_array(points, chunks=(250_000, 2))   # four chunks

side = np.linspace(-2.5, 2.5, 80, dtype=np.float32)
grid = np.stack(np.meshgrid(side, side), axis=-1).reshape(-1, 2)
s = np.array([1 / (2 * 0.15 ** 2)], dtype=np.float32)

kde = Genred("Exp(-g * SqDist(t, y))", ["t = Vi(2)", "y = Vj(2)", "g = Pm(1)"],
             reduction_op="Sum", axis=1)
density = kde(grid, samples, s)     # lazy: a dask array
print(type(density).__name__, density.shape, "chunks", density.chunks)
values = density.compute()[:, 0] / n

check = rng.choice(len(grid), 5, replace=False)
d2 = ((grid[check, None, :].astype(np.float64) - points[None]) ** 2).sum(-1)
ref = np.exp(-s[0] * d2).sum(axis=1) / n
print("max relative difference on 5 grid points", np.abs(values[check] - ref).max()
      / ref.max())
assert np.allclose(values[check], ref, rtol=1e-3, atol=1e-6 * ref.max())

plt.imshow(values.reshape(80, 80), origin="lower", extent=(-2.5, 2.5, -2.5, 2.5),
           cmap="magma")
plt.colorbar(label="density (unnormalised)")
plt.title("Gaussian KDE of 10^6 points (dask array in, dask array out)")
plt.show()
