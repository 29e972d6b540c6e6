"""Jobs on a real cluster (a `dask scheduler` and two `dask worker` processes):
through the command line (address, scheduler file, LocalCluster) and through the
Python API with ``Client(address)``, against a NumPy float64 reference."""

from __future__ import annotations

import numpy as np
import pytest

from dredux.jobs import load_inputs, load_job

pytestmark = pytest.mark.distributed

M, N, BLOCK = 300, 500, (64, 128)  # 5 row blocks x 4 column ranges = 20 block tasks
TASKS = 20


@pytest.mark.parametrize("how", ["address", "scheduler-file"])
def test_cli_job_on_the_cluster(dask_cluster, gauss, tools, tmp_path, how):
    job = gauss.write(tmp_path, M, N, BLOCK)
    target = dask_cluster.address if how == "address" else str(dask_cluster.scheduler_file)
    with dask_cluster.client() as client:
        before = tools.block_tasks_done(client)
        done = tools.run_cli(["run", str(job), "--scheduler", target, "--wait-workers", "2",
                        "--check", "10"], env=tools.env(tmp_path), cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr + dask_cluster.logs()
        ran = tools.block_tasks_done(client) - before
    assert ran == TASKS  # every block task ran on the cluster's workers
    assert "(2 worker(s), 2 thread(s))" in done.stdout
    assert "check values: 10 rows" in done.stdout and "OK" in done.stdout
    result = np.load(tmp_path / "out.npy")
    np.testing.assert_allclose(result, gauss.reference(tmp_path), rtol=1e-12, atol=1e-13)


def test_api_on_the_cluster_matches_the_cli_bit_for_bit(dask_cluster, gauss, tools, tmp_path):
    distributed = pytest.importorskip("distributed")
    import dask.array as da

    job_path = gauss.write(tmp_path, M, N, BLOCK)
    job = load_job(job_path)
    routine = job.routine()
    args = [np.asarray(a) for a in load_inputs(job, routine, log=lambda _: None)]
    reference = gauss.reference(tmp_path)

    done = tools.run_cli(["run", str(job_path), "--scheduler", dask_cluster.address],
                   env=tools.env(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    from_cli = np.load(tmp_path / "out.npy")

    with dask_cluster.client() as client:
        with distributed.get_task_stream(client) as stream:
            eager = routine(*args, backend="numpy", block_size=BLOCK)  # the active client
        workers = {t["worker"] for t in stream.data if "-block-" in str(t["key"])}
        x, y, b, g = args
        lazy = routine(da.from_array(x, chunks=(BLOCK[0], 3)), da.from_array(y, chunks=(97, 3)),
                       da.from_array(b, chunks=(97, 1)), g, backend="numpy",
                       block_size=BLOCK)
        assert isinstance(lazy, da.Array)
        from_dask = client.compute(lazy).result()
    assert len(workers) == 2  # the block tasks ran on both worker processes
    assert type(eager) is np.ndarray
    np.testing.assert_allclose(eager, reference, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(from_dask, reference, rtol=1e-12, atol=1e-13)
    # the same inputs, blocks and merge tree: the same bits, whichever way it was run
    assert np.array_equal(eager, from_cli)


def test_cli_local_cluster(gauss, tools, tmp_path):
    job = gauss.write(tmp_path, M, N, BLOCK)
    done = tools.run_cli(["run", str(job), "--scheduler", "local", "--workers", "2",
                    "--threads-per-worker", "1"], env=tools.env(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "scheduler: local" in done.stdout and "(2 worker(s), 2 thread(s))" in done.stdout
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), gauss.reference(tmp_path),
                               rtol=1e-12, atol=1e-13)


def test_cli_waits_for_workers_then_explains(dask_cluster, gauss, tools, tmp_path):
    job = gauss.write(tmp_path, M, N, BLOCK)
    done = tools.run_cli(["run", str(job), "--scheduler", dask_cluster.address, "--wait-workers",
                    "5", "--wait-timeout", "2"], env=tools.env(tmp_path), cwd=tmp_path)
    assert done.returncode == 1
    assert "has 2 worker(s) after 2 s; expected at least 5" in done.stderr, done.stderr
    assert not (tmp_path / "out.npy").exists()
