"""An interrupted ``dredux run`` (SIGINT, or SIGTERM as batch systems send) leaves
no output and no temporary file, keeps an existing output intact, and on a
cluster leaves no task of the job behind."""

from __future__ import annotations

import signal
import time

import pytest

pytestmark = pytest.mark.distributed

# about 30 s of NumPy work in tasks of ~0.1 s: far from done when the signal comes
M, N, BLOCK = 4096, 65536, (512, 2048)
PREVIOUS = b"the previous run's output"


def interrupt(tools, command, cwd, env, signum, started_marker="scheduler:"):
    """Start ``command``, send ``signum`` once it computes; (status, output, seconds)."""
    with tools.popen(command, cwd=cwd, env=env) as proc:
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if line.startswith(started_marker):
                break
        assert proc.poll() is None, "".join(seen)
        time.sleep(1.0)  # block tasks are running now
        proc.send_signal(signum)
        sent = time.monotonic()
        rest, _ = proc.communicate(timeout=60)
        return proc.returncode, "".join(seen) + rest, time.monotonic() - sent


def assert_no_new_files(folder, before):
    after = {p.name for p in folder.iterdir()}
    assert after == before, f"left behind: {sorted(after - before)}"


@pytest.mark.parametrize("signum,status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_threads_job_leaves_no_output(gauss, tools, tmp_path, signum, status):
    job = gauss.write(tmp_path, M, N, BLOCK)
    (tmp_path / "out.npy").write_bytes(PREVIOUS)
    before = {p.name for p in tmp_path.iterdir()}
    code, output, seconds = interrupt(
        tools, tools.cli_command("run", str(job), "--no-progress"), tmp_path,
        tools.env(tmp_path), signum)
    assert code == status, output
    assert "wrote" not in output and ("interrupted" in output or "terminated" in output)
    assert seconds < 30  # it stopped, rather than finishing the job
    assert (tmp_path / "out.npy").read_bytes() == PREVIOUS
    assert_no_new_files(tmp_path, before | {"x.npy", "y.npy", "b.npy"})


def test_terminated_cluster_job_leaves_nothing(dask_cluster, gauss, tools, tmp_path):
    job = gauss.write(tmp_path, M, N, BLOCK)
    before = {p.name for p in tmp_path.iterdir()}
    code, output, seconds = interrupt(
        tools, tools.cli_command("run", str(job), "--scheduler", dask_cluster.address,
                                 "--no-progress"),
        tmp_path, tools.env(tmp_path), signal.SIGTERM)
    assert code == 143, output
    assert not (tmp_path / "out.npy").exists()
    assert_no_new_files(tmp_path, before | {"x.npy", "y.npy", "b.npy"})
    with dask_cluster.client() as client:
        deadline = time.monotonic() + 30
        while tools.dredux_tasks(client) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert tools.dredux_tasks(client) == []  # the cluster dropped the job's tasks
