"""
K-nearest-neighbour classification
==================================

Two noisy interleaved half circles, 2,000 labelled points, and a K = 15
nearest-neighbour vote on a 120 x 120 grid with ``ArgKMin``: the indices of the
nearest points come from one reduction (never the full distance matrix). The
neighbour lists of a few grid points are compared with NumPy's sort.
"""

import matplotlib.pyplot as plt
import numpy as np

from dredux import LazyTensor

rng = np.random.default_rng(2)
n = 2000
angle = rng.uniform(0, np.pi, n)
label = rng.integers(0, 2, n)
train = np.where(label[:, None] == 0,
                 np.stack([np.cos(angle), np.sin(angle)], 1),
                 np.stack([1 - np.cos(angle), 0.5 - np.sin(angle)], 1))
train += 0.15 * rng.normal(size=train.shape)

side_x, side_y = np.linspace(-1.5, 2.5, 120), np.linspace(-1.0, 1.5, 120)
grid = np.stack(np.meshgrid(side_x, side_y), -1).reshape(-1, 2)

K = 15
D_ij = ((LazyTensor(grid[:, None, :]) - LazyTensor(train[None, :, :])) ** 2).sum(-1)
neighbours = D_ij.argKmin(K, dim=1)          # (grid points, K) int64
vote = label[neighbours].mean(axis=1)

check = rng.choice(len(grid), 5, replace=False)
d2 = ((grid[check, None, :] - train[None]) ** 2).sum(-1)
assert (np.sort(neighbours[check], 1) == np.sort(np.argsort(d2, 1)[:, :K], 1)).all()

plt.contourf(side_x, side_y, vote.reshape(120, 120), levels=20, cmap="coolwarm", alpha=0.8)
plt.scatter(*train[::4].T, c=label[::4], cmap="coolwarm", s=4, edgecolors="k",
            linewidths=0.2)
plt.title(f"{K}-NN vote (ArgKMin over {n} training points)")
plt.show()
