"""Real Dask clusters for the distributed tier: ``dask scheduler`` and ``dask worker``
processes (Dask's own command line) on 127.0.0.1, on ports the system picks.

Every process is started in its own session and killed as a group (the worker
and its nanny) when the fixture ends, whatever the test did.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import distributed
import pytest


@dataclass
class DaskCluster:
    """A scheduler and its workers, each a process group of its own."""

    workdir: Path
    env: dict
    address: str = ""
    scheduler_file: Path | None = None
    procs: list = field(default_factory=list)

    def client(self, **kwargs):
        return distributed.Client(self.address, timeout="30s", **kwargs)

    def logs(self) -> str:
        parts = []
        for log in sorted(self.workdir.glob("*.log")):
            parts.append(f"--- {log.name}\n{log.read_text()[-3000:]}")
        return "\n".join(parts)


def subprocess_env(workdir: Path, cache: str = "cache") -> dict:
    """The environment of the processes a test starts: a private kernel cache."""
    env = dict(os.environ)
    env["DREDUX_CACHE_DIR"] = str(workdir / cache)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _spawn(cluster: DaskCluster, name: str, args: list[str]) -> subprocess.Popen:
    log = open(cluster.workdir / f"{name}.log", "w")  # noqa: SIM115 - closed by the OS
    proc = subprocess.Popen([sys.executable, "-m", "dask", *args], stdout=log,
                            stderr=subprocess.STDOUT, env=cluster.env,
                            cwd=cluster.workdir, start_new_session=True)
    cluster.procs.append(proc)
    return proc


def start_cluster(workdir: Path, n_workers: int = 2, nthreads: int = 1) -> DaskCluster:
    """A scheduler and ``n_workers`` workers, connected; raises with their logs."""
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = DaskCluster(workdir=workdir, env=subprocess_env(workdir))
    cluster.scheduler_file = workdir / "scheduler.json"
    try:
        sched = _spawn(cluster, "scheduler", [
            "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
            "--scheduler-file", str(cluster.scheduler_file)])
        deadline = time.monotonic() + 60
        while not cluster.scheduler_file.exists() or not cluster.scheduler_file.read_text():
            if sched.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the scheduler did not start:\n{cluster.logs()}")
            time.sleep(0.1)
        cluster.address = json.loads(cluster.scheduler_file.read_text())["address"]
        for k in range(n_workers):
            _spawn(cluster, f"worker-{k}", [
                "worker", cluster.address, "--host", "127.0.0.1", "--nthreads",
                str(nthreads), "--no-dashboard", "--name", f"w{k}", "--memory-limit", "0",
                "--local-directory", str(workdir / f"w{k}"), "--death-timeout", "60"])
        with cluster.client() as client:
            client.wait_for_workers(n_workers, timeout=120)
    except BaseException:
        stop_cluster(cluster)
        raise
    return cluster


def stop_cluster(cluster: DaskCluster) -> None:
    """SIGTERM each process group (workers first), SIGKILL what is left after 15 s."""
    for proc in reversed(cluster.procs):
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for proc in reversed(cluster.procs):
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # also a worker its nanny left behind
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory):
    """A scheduler and two single-thread workers, shared by the tests that do not
    harm it (the fault-tolerance test starts its own)."""
    cluster = start_cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield cluster
    finally:
        stop_cluster(cluster)


@pytest.fixture
def fresh_cluster(tmp_path):
    """A cluster of this test only (for tests that kill its processes)."""
    cluster = start_cluster(tmp_path / "cluster")
    try:
        yield cluster
    finally:
        stop_cluster(cluster)


class Tools:
    """Helpers of the tests of this tier (the ``tools`` fixture)."""

    env = staticmethod(subprocess_env)

    @staticmethod
    def cli_command(*args: str) -> list[str]:
        """``python -m dredux.cli ARGS``: the console script's code, this interpreter."""
        return [sys.executable, "-m", "dredux.cli", *args]

    @staticmethod
    @contextlib.contextmanager
    def popen(command: list[str], **kwargs):
        """``command`` started with its output (stdout and stderr) as text,
        killed if it still runs when the block ends."""
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, **kwargs)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    @staticmethod
    def run_cli(args: list[str], env: dict, cwd: Path, timeout: float = 240,
                **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(Tools.cli_command(*args), env=env, cwd=cwd,
                              capture_output=True, text=True, timeout=timeout, **kwargs)

    @staticmethod
    def block_tasks_done(client) -> int:
        """Block tasks the scheduler has seen finish since it started (all jobs)."""
        def count(dask_scheduler):
            return sum(p.state_counts.get("memory", 0) for name, p in
                       dask_scheduler.task_prefixes.items() if name.startswith("dredux-")
                       and name.endswith("-block"))
        return client.run_on_scheduler(count)

    @staticmethod
    def dredux_tasks(client) -> list:
        """Keys of the dredux tasks the scheduler still holds."""
        return client.run_on_scheduler(
            lambda dask_scheduler: [str(k) for k in dask_scheduler.tasks if "dredux" in str(k)])


@pytest.fixture
def tools():
    return Tools


# ---------------------------------------------------------------------------
# the Gaussian job used by the tests of this tier
# ---------------------------------------------------------------------------

GAUSS_JOB = """
formula = "Exp(-g * SqDist(x, y)) * b"
aliases = ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "g = Pm(1)"]
reduction = "Sum"
axis = 1

[inputs]
x = {{ path = "x{ext}", random = {{ rows = {m}, seed = 21 }} }}
y = {{ path = "y{ext}", random = {{ rows = {n}, seed = 22 }} }}
b = {{ path = "b{ext}", random = {{ rows = {n}, seed = 23, distribution = "normal" }} }}
g = {{ value = [{g}] }}

[output]
path = "{output}"

[options]
backend = "{backend}"
block_size = [{bm}, {bn}]
"""


class GaussJob:
    """Writes the job file and computes its NumPy float64 reference."""

    G = 3.0

    @staticmethod
    def write(folder: Path, m: int, n: int, block: tuple[int, int], backend: str = "numpy",
              output: str = "out.npy", name: str = "job.toml", ext: str = ".npy") -> Path:
        """A job file; its inputs (.npy or .zarr) are drawn on its first run."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        path.write_text(GAUSS_JOB.format(m=m, n=n, bm=block[0], bn=block[1], g=GaussJob.G,
                                         backend=backend, output=output, ext=ext))
        return path

    @staticmethod
    def inputs(folder: Path):
        import numpy as np

        def load(name):
            if (folder / f"{name}.zarr").exists():
                import dask.array as da

                return da.from_zarr(str(folder / f"{name}.zarr")).compute()
            return np.load(folder / f"{name}.npy")

        return [load(k) for k in "xyb"] + [np.array([GaussJob.G])]

    @staticmethod
    def reference(folder: Path):
        """out_i = sum_j exp(-g |x_i - y_j|^2) b_j in float64."""
        from tests.helpers import gauss_reference

        x, y, b, _ = GaussJob.inputs(folder)
        return gauss_reference(x, y, b, GaussJob.G)


@pytest.fixture
def gauss():
    return GaussJob
