"""The same graph on a LocalCluster of 2 worker processes gives the threaded result."""

from __future__ import annotations

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from dredux import Genred  # noqa: E402

pytestmark = pytest.mark.distributed

ALIASES = ["x = Vi(3)", "y = Vj(3)", "a = Vj(1)", "p = Pm(1)", "e = Vi(3)"]
SEED = "Square(p-a)*Exp(x+y)"


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", host="127.0.0.1") as cluster:
        with distributed.Client(cluster) as c:
            yield c


@pytest.fixture(scope="module")
def args():
    rng = np.random.default_rng(7)
    m, n = 129, 257
    return [rng.uniform(-1, 1, s) for s in ((m, 3), (n, 3), (n, 1), (1,), (m, 3))]


@pytest.mark.parametrize("formula,reduction,axis", [
    (SEED, "Sum", 1),
    (f"Grad({SEED}, y, e)", "Sum", 0),
    (SEED, "ArgKMin", 0),
    ("-SqDist(x,y)", "LogSumExp", 1),
    (SEED, "Min_ArgMin", 1),
])
def test_cluster_equals_threads(client, args, formula, reduction, axis):
    routine = Genred(formula, ALIASES, reduction_op=reduction, axis=axis,
                     opt_arg=5 if "K" in reduction else None)
    options = dict(backend="numpy", block_size=(32, 40), split_every=3)
    with distributed.get_task_stream(client) as stream:
        on_cluster = routine(*args, **options)  # the active Client is used
    threads = routine(*args, scheduler="threads", **options)
    ran = {t["worker"] for t in stream.data if "-block-" in str(t["key"])}
    assert len(ran) == 2  # block tasks ran on both worker processes
    pairs = zip(on_cluster, threads) if isinstance(threads, tuple) else [(on_cluster, threads)]
    for got, ref in pairs:
        assert type(got) is np.ndarray and got.dtype == ref.dtype
        # same tree, same merge order: identical bits
        np.testing.assert_array_equal(got, ref)


def test_big_inputs_are_scattered_not_embedded(client, monkeypatch):
    import dredux.execute

    monkeypatch.setattr(dredux.execute, "_SCATTER_BYTES", 20_000)
    rng = np.random.default_rng(3)
    m, n = 1500, 2000  # x and y are above the (lowered) scatter threshold, b is not
    x, y = rng.random((m, 3)), rng.random((n, 3))
    b = rng.random((n, 1))
    routine = Genred("SqDist(x, y) * b", ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)"],
                     reduction_op="Max", axis=1)
    sent, pieces = [], []
    scatter = client.scatter

    def spy(data, *args, **kwargs):
        parts = data if isinstance(data, list) else [data]
        sent.append(sum(p.nbytes for p in parts))
        pieces.append(len(parts))
        return scatter(data, *args, **kwargs)

    monkeypatch.setattr(client, "scatter", spy)
    options = dict(backend="numpy", block_size=(400, 700))
    got = routine(x, y, b, **options)
    assert sorted(sent) == [x.nbytes, y.nbytes]
    # the row variable goes block by block (each block task takes its own
    # piece), the column variable whole
    assert sorted(pieces) == [1, 4]
    ref = (np.square(x[:, None] - y[None]).sum(-1) * b[:, 0]).max(1, keepdims=True)
    np.testing.assert_allclose(got, ref, rtol=1e-13)
    np.testing.assert_array_equal(got, routine(x, y, b, scheduler="threads", **options))
    # back-to-back calls with the same inputs must not trip over the previous
    # call's scattered data being released
    for _ in range(6):
        np.testing.assert_array_equal(routine(x, y, b, **options), got)
    # more row blocks than pieces allowed: pieces of a few row blocks each
    monkeypatch.setattr(dredux.execute, "_SCATTER_PIECES", 3)
    pieces.clear()
    np.testing.assert_array_equal(routine(x, y, b, **options), got)
    assert sorted(pieces) == [1, 2]  # y whole; x's 4 row blocks in 2 pieces of 2
