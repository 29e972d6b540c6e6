"""
Sum reduction and its gradient
==============================

The seed formula ``Square(p - a) * Exp(x + y)`` reduced over j, and its gradient
with respect to y (a reduction over i), computed by dredux and compared with a
plain NumPy computation of the same sums in float64.
"""

import matplotlib.pyplot as plt
import numpy as np

from dredux import Genred

rng = np.random.default_rng(0)
M, N = 1000, 1500
x = rng.uniform(-1, 1, (M, 3))
y = rng.uniform(-1, 1, (N, 3))
a = rng.uniform(-1, 1, (N, 1))
p = np.array([0.25])
e = rng.uniform(-1, 1, (M, 3))

aliases = ["x = Vi(3)", "y = Vj(3)", "a = Vj(1)", "p = Pm(1)"]
forward = Genred("Square(p - a) * Exp(x + y)", aliases, reduction_op="Sum", axis=1)
gradient = Genred("Grad(Square(p - a) * Exp(x + y), y, e)", aliases + ["e = Vi(3)"],
                  reduction_op="Sum", axis=0)
c = forward(x, y, a, p)            # (M, 3): c_i = sum_j (p - a_j)^2 exp(x_i + y_j)
g = gradient(x, y, a, p, e)        # (N, 3): g_j = sum_i (p - a_j)^2 exp(x_i + y_j) e_i

# the same sums in NumPy (the M x N x 3 array is small here)
pairs = (p - a[None, :, 0])[..., None] ** 2 * np.exp(x[:, None, :] + y[None, :, :])
c_ref = pairs.sum(axis=1)
g_ref = (pairs * e[:, None, :]).sum(axis=0)
print("forward: max relative difference", np.abs(c - c_ref).max() / np.abs(c_ref).max())
print("gradient: max relative difference", np.abs(g - g_ref).max() / np.abs(g_ref).max())
assert np.allclose(c, c_ref, rtol=1e-10) and np.allclose(g, g_ref, rtol=1e-10)

fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
for ax, (ours, ref, title) in zip(axes, ((c, c_ref, "forward, first 40 rows"),
                                         (g, g_ref, "gradient wrt y, first 40 rows"))):
    ax.plot(ref[:40, 0], "k-", lw=3, alpha=0.3, label="NumPy")
    ax.plot(ours[:40, 0], "r.", label="dredux")
    ax.set_title(title)
    ax.legend()
fig.tight_layout()
plt.show()
