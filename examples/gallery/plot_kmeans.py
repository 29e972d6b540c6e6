"""
k-means with LazyTensor
=======================

Lloyd's algorithm on 20,000 points and 8 clusters, written as KeOps users write
it: the assignment step is an ``argmin`` over a symbolic distance matrix, which
is never stored. The final assignment is checked against NumPy.
"""

import matplotlib.pyplot as plt
import numpy as np

from dredux import LazyTensor

rng = np.random.default_rng(3)
n, k = 20_000, 8
centres_true = rng.uniform(-3, 3, (k, 2))
x = centres_true[rng.integers(0, k, n)] + 0.6 * rng.normal(size=(n, 2))

c = x[:k].copy()                                  # initial centroids
x_i = LazyTensor(x[:, None, :])
for _ in range(10):
    D_ij = ((x_i - LazyTensor(c[None, :, :])) ** 2).sum(-1)
    labels = D_ij.argmin(axis=1).ravel()          # nearest centroid of each point
    counts = np.bincount(labels, minlength=k)[:, None]
    c = np.stack([np.bincount(labels, weights=x[:, d], minlength=k) for d in range(2)],
                 axis=1) / np.maximum(counts, 1)

ref = ((x[:, None, :] - c[None]) ** 2).sum(-1).argmin(1)
labels = ((x_i - LazyTensor(c[None, :, :])) ** 2).sum(-1).argmin(axis=1).ravel()
print("points assigned as NumPy assigns them:", (labels == ref).mean())
assert (labels == ref).mean() > 0.999

plt.scatter(*x.T, c=labels, s=1, cmap="tab10")
plt.scatter(*c.T, c="k", marker="x", s=60)
plt.title("k-means, 10 iterations (LazyTensor argmin)")
plt.show()
