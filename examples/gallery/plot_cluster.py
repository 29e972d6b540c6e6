"""
On a Dask cluster: LocalCluster, dashboard, progress
====================================================

The same call runs on any Dask cluster: start one (here a ``LocalCluster`` of
two workers in this process; ``dask-jobqueue``, ``dask-mpi`` or ``dask-cuda``
make bigger ones, see ``cluster/``), make a ``Client``, and dredux's tasks go to
its workers. With dask arrays in, the result is lazy; ``distributed.progress``
shows it running (and the dashboard link, with ``bokeh`` installed, the task
stream). The result is checked against a blocked NumPy computation.
"""

import time

import dask.array as da
import matplotlib.pyplot as plt
import numpy as np
from distributed import Client, LocalCluster, progress

from dredux import Genred

rng = np.random.default_rng(6)
m, n = 40_000, 60_000
x = da.from_array(rng.uniform(0, 1, (m, 3)).astype(np.float32), chunks=(10_000, 3))
y = rng.uniform(0, 1, (n, 3)).astype(np.float32)
b = rng.uniform(0, 1, (n, 1)).astype(np.float32)
gauss = Genred("Exp(-SqDist(x, y) * 20) * b", ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)"],
               reduction_op="Sum", axis=1)

with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                  dashboard_address=":0") as cluster, Client(cluster) as client:
    print("dashboard:", client.dashboard_link)
    out = gauss(x, y, b, backend="cpu")           # lazy, planned for 2 workers
    future = client.compute(out)
    progress(future)
    result = future.result()
    time.sleep(0.5)  # the progress bar's feed sees the end before the cluster stops

x_np = x.compute().astype(np.float64)
rows = rng.choice(m, 20, replace=False)
ref = np.exp(-((x_np[rows, None] - y[None].astype(np.float64)) ** 2).sum(-1) * 20) @ b
print("max relative difference on 20 rows:", np.abs(result[rows] - ref).max() / ref.max())
assert np.allclose(result[rows], ref, rtol=1e-4)

plt.hist(result[:, 0], bins=60)
plt.xlabel("out_i = sum_j exp(-20 |x_i - y_j|^2) b_j")
plt.title(f"{m:,} x {n:,} Gaussian matvec on a 2-worker LocalCluster")
plt.show()
