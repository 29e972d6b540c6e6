"""
Optimal transport with Sinkhorn iterations
==========================================

Entropic optimal transport between two point clouds, in the log domain: each
Sinkhorn half-step is a ``LogSumExp`` reduction
``f_i = -eps log sum_j exp((g_j - |x_i - y_j|^2) / eps + log b_j)``, over j for
the potentials f and over i for g. The transport plan
``P_ij = a_i b_j exp((f_i + g_j - C_ij) / eps)`` is drawn for the strongest
pairs, and its marginals are checked against the weights.
"""

import matplotlib.pyplot as plt
import numpy as np

from dredux import Genred

rng = np.random.default_rng(4)
m, n, eps = 300, 400, 0.01
x = rng.normal(size=(m, 2)) * [0.3, 0.1] + [-0.5, 0.0]
y = np.stack([np.cos(t := rng.uniform(0, 2 * np.pi, n)), np.sin(t)], 1) * 0.5 + [0.6, 0.0]
a, b = np.full((m, 1), 1 / m), np.full((n, 1), 1 / n)

# one routine per direction: f from g (over j, h = g + eps log b a j-variable),
# g from f (over i, h = f + eps log a an i-variable)
over_j = Genred("(h - SqDist(x, y)) / e", ["x = Vi(2)", "y = Vj(2)", "h = Vj(1)",
                                           "e = Pm(1)"], reduction_op="LogSumExp", axis=1)
over_i = Genred("(h - SqDist(x, y)) / e", ["x = Vi(2)", "y = Vj(2)", "h = Vi(1)",
                                           "e = Pm(1)"], reduction_op="LogSumExp", axis=0)
e = np.array([eps])
f, g = np.zeros((m, 1)), np.zeros((n, 1))
for _ in range(200):
    f = -eps * over_j(x, y, g + eps * np.log(b), e)
    g = -eps * over_i(x, y, f + eps * np.log(a), e)

cost = ((x[:, None] - y[None]) ** 2).sum(-1)
plan = a * b.T * np.exp((f + g.T - cost) / eps)
print("row sums vs a:", np.abs(plan.sum(1) - a[:, 0]).max() / a.max(),
      " column sums vs b:", np.abs(plan.sum(0) - b[:, 0]).max() / b.max())
assert np.allclose(plan.sum(0), b[:, 0], rtol=1e-6)  # g was updated last
assert np.allclose(plan.sum(1), a[:, 0], rtol=1e-2)  # converged to 1 %

strong = np.argwhere(plan > plan.max() * 0.2)
for i, j in strong[::3]:
    plt.plot([x[i, 0], y[j, 0]], [x[i, 1], y[j, 1]], "k-", lw=0.3,
             alpha=min(1.0, plan[i, j] / plan.max()))
plt.scatter(*x.T, s=4, label="source")
plt.scatter(*y.T, s=4, label="target")
plt.axis("equal")
plt.legend()
plt.title("Entropic transport plan (Sinkhorn, LogSumExp reductions)")
plt.show()
