"""LazyTensor reductions and solves on dask arrays run on a LocalCluster of 2
worker processes: block tasks on both workers, results equal to NumPy."""

from __future__ import annotations

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

from dredux import LazyTensor, Vi, Vj  # noqa: E402

pytestmark = pytest.mark.distributed


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", host="127.0.0.1") as cluster:
        with distributed.Client(cluster) as c:
            yield c


def test_knn_and_solve_on_the_cluster(client):
    rng = np.random.default_rng(5)
    n = 240
    x = rng.uniform(0, 1, (n, 2))
    b = rng.uniform(-1, 1, (n, 1))
    xd, bd = da.from_array(x, chunks=60), da.from_array(b, chunks=60)
    with distributed.get_task_stream(client) as stream:
        ind = (LazyTensor(xd[:, None, :]) - LazyTensor(xd[None, :, :])).sqnorm2() \
            .argKmin(3, dim=1, backend="numpy", block_size=(60, 80))
        assert isinstance(ind, da.Array)
        ind = ind.compute()
        K = (-Vi(xd).sqdist(Vj(xd)) * 4.0).exp()
        a = K.solve(Vi(bd), alpha=0.1, eps=1e-12, backend="numpy", block_size=(60, 80))
        assert isinstance(a, da.Array)
        a = a.compute()
    ran = {t["worker"] for t in stream.data if "-block-" in str(t["key"])}
    assert len(ran) == 2  # block tasks ran on both worker processes
    d = ((x[:, None] - x[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(ind, np.argsort(d, axis=1, kind="stable")[:, :3])
    ref = np.linalg.solve(0.1 * np.eye(n) + np.exp(-4 * d), b)
    np.testing.assert_allclose(a, ref, rtol=1e-8, atol=1e-8)
