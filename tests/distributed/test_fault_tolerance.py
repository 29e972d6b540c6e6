"""A worker process killed (SIGKILL) while block tasks run: the job still finishes
with the right result, and a second run gives the same bits.

The cluster is this test's own (a killed worker must not disturb other tests).
Tasks last ~0.3 s each on the NumPy backend (~1.3 s with .zarr inputs, whose
chunks make one row block), so the kill lands while some run.
"""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

pytestmark = pytest.mark.distributed

M, N, BLOCK = 2048, 32768, (512, 8192)  # 4 x 4 = 16 block tasks of 4.2 M pairs each


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def running_block(client):
    """(worker address, key) of a block task being processed, or None."""
    for address, keys in client.processing().items():
        for key in keys:
            if "-block-" in str(key):
                return address, key
    return None


@pytest.mark.parametrize("ext", [".npy", ".zarr"])
def test_worker_killed_mid_job(fresh_cluster, gauss, tools, tmp_path, ext):
    if ext == ".zarr":
        pytest.importorskip("zarr")  # tasks read the inputs: one row block, 4 tasks
    job = gauss.write(tmp_path, M, N, BLOCK, ext=ext)
    tasks = 16 if ext == ".npy" else 4
    env = tools.env(tmp_path)
    command = tools.cli_command("run", str(job), "--scheduler", fresh_cluster.address,
                                "--wait-workers", "2", "--no-progress")
    with fresh_cluster.client() as client:
        before = tools.block_tasks_done(client)
        with tools.popen(command, env=env, cwd=tmp_path) as proc:
            address, key = wait_for(lambda: running_block(client), 120, "a running block task")
            time.sleep(0.1)  # let the task get well into its kernel
            pid = client.run(os.getpid, workers=[address])[address]
            done_before_kill = tools.block_tasks_done(client) - before
            os.kill(pid, signal.SIGKILL)
            assert proc.poll() is None, "the job ended before the kill"
            out, _ = proc.communicate(timeout=240)
        assert proc.returncode == 0, out + fresh_cluster.logs()
        assert done_before_kill < tasks, "every task had finished before the kill"
        # the worker process is gone; the scheduler ran the lost work elsewhere
        wait_for(lambda: not _alive(pid), 30, f"process {pid} to disappear")
        assert pid not in client.run(os.getpid).values()
        assert tools.block_tasks_done(client) - before >= tasks

        first = np.load(tmp_path / "out.npy")
        np.testing.assert_allclose(first, gauss.reference(tmp_path), rtol=1e-12, atol=1e-13)

        # a second run (nothing cached: the first client is gone) gives the same bits
        wait_for(lambda: not tools.dredux_tasks(client), 30, "the first run's tasks to go")
        second = tools.run_cli(["run", str(job), "--scheduler", fresh_cluster.address,
                                "--wait-workers", "2", "-o", str(tmp_path / "again.npy")],
                               env=env, cwd=tmp_path)
        assert second.returncode == 0, second.stdout + second.stderr
    assert np.array_equal(np.load(tmp_path / "again.npy"), first)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_worker_holding_a_big_input_killed(fresh_cluster, gauss, tools, tmp_path):
    # y is 98304 x 3 float64 = 2.4 MB: above the API's scatter threshold
    job = gauss.write(tmp_path, 2048, 98304, (512, 24576))
    command = tools.cli_command("run", str(job), "--scheduler", fresh_cluster.address,
                                "--wait-workers", "2", "--no-progress")
    with fresh_cluster.client() as client:
        with tools.popen(command, env=tools.env(tmp_path), cwd=tmp_path) as proc:
            def holder_of_scattered_input():
                if not running_block(client):
                    return None
                held = [w for key, ws in client.who_has().items()
                        if str(key).startswith("ndarray-") for w in ws]
                return held[0] if held else None

            address = wait_for(holder_of_scattered_input, 120, "a worker holding an input")
            os.kill(client.run(os.getpid, workers=[address])[address], signal.SIGKILL)
            assert proc.poll() is None, "the job ended before the kill"
            out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), gauss.reference(tmp_path),
                               rtol=1e-12, atol=1e-13)
