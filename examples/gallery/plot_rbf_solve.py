"""
Gaussian-process / RBF interpolation with ``solve``
===================================================

Noisy samples of a 1-D function, fitted by solving
``(alpha I + K) w = y`` with a Gaussian kernel K by conjugate gradients
(``LazyTensor.solve``: every product is a reduction, K is never stored), then
evaluated on a fine grid. The coefficients are compared with
``numpy.linalg.solve`` on the same (small) system.
"""

import matplotlib.pyplot as plt
import numpy as np

from dredux import LazyTensor

rng = np.random.default_rng(5)
n, sigma, alpha = 400, 0.1, 0.05
t = np.sort(rng.uniform(0, 1, (n, 1)), axis=0)
obs = np.sin(8 * t) + 0.5 * np.cos(23 * t) + 0.2 * rng.normal(size=(n, 1))

K = (-((LazyTensor(t[:, None, :]) - LazyTensor(t[None, :, :])) ** 2).sum(-1)
     / (2 * sigma ** 2)).exp()
w = K.solve(obs, alpha=alpha, eps=1e-10)      # (n, 1), like obs

dense = np.exp(-((t - t.T) ** 2) / (2 * sigma ** 2))
w_ref = np.linalg.solve(alpha * np.eye(n) + dense, obs)
print("coefficients, max relative difference:", np.abs(w - w_ref).max() / np.abs(w_ref).max())
assert np.allclose(w, w_ref, rtol=1e-5, atol=1e-6 * np.abs(w_ref).max())

grid = np.linspace(0, 1, 500)[:, None]
K_grid = (-((LazyTensor(grid[:, None, :]) - LazyTensor(t[None, :, :])) ** 2).sum(-1)
          / (2 * sigma ** 2)).exp()
fit = K_grid @ w

plt.plot(t, obs, ".", ms=3, label="samples")
plt.plot(grid, fit, "r-", label="kernel fit")
plt.plot(grid, np.sin(8 * grid) + 0.5 * np.cos(23 * grid), "k--", lw=1, label="truth")
plt.legend()
plt.title("RBF interpolation by conjugate gradients (LazyTensor.solve)")
plt.show()
