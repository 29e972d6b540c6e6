"""The scripts of cluster/: parsed, and run here as far as this machine allows.

* ``local.sh`` runs for real (a scheduler, two workers, a job), and stops its
  processes when the job ends or when it receives SIGTERM.
* The dask-mpi batch scripts run for real with the MPI of the ``mpich`` wheel
  and a stand-in ``srun`` (SLURM) or a ``$PBS_NODEFILE`` (PBS); skipped
  without ``dask_mpi`` / a working ``mpi4py`` / ``mpiexec``.
* The dask-jobqueue scripts: their worker job scripts are checked, and the
  SLURM CPU script runs a job through stand-in ``sbatch`` / ``scancel``
  commands that start the worker job on this machine.
"""

from __future__ import annotations

import os
import runpy
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.distributed

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "cluster"
BASH = shutil.which("bash")
M, N, BLOCK = 300, 500, (64, 128)


def script_env(tmp_path: Path, tools, **extra) -> dict:
    env = tools.env(tmp_path)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["TMPDIR"] = str(tmp_path / "tmp")
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line contains ``text`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().split(") ")[-1][:1]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def wait_gone(text: str, timeout: float = 20) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := processes_mentioning(text)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@pytest.mark.skipif(BASH is None, reason="no bash")
@pytest.mark.parametrize("script", sorted(p.relative_to(CLUSTER) for p in CLUSTER.rglob("*")
                                          if p.suffix in (".sh", ".sbatch", ".pbs")),
                         ids=str)
def test_shell_scripts_parse(script):
    done = subprocess.run([BASH, "-n", str(CLUSTER / script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    if shutil.which("shellcheck"):
        done = subprocess.run(["shellcheck", str(CLUSTER / script)], capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stdout


@pytest.mark.parametrize("script,prefix", [("slurm/dredux-mpi.sbatch", "#SBATCH"),
                                           ("pbs/dredux-mpi.pbs", "#PBS")])
def test_batch_directives_come_before_any_command(script, prefix):
    # sbatch and qsub read directives up to the first command line only
    lines = (CLUSTER / script).read_text().splitlines()
    first_command = next(k for k, line in enumerate(lines)
                         if line.strip() and not line.lstrip().startswith("#"))
    directives = [k for k, line in enumerate(lines) if line.startswith(prefix + " ")]
    assert directives and max(directives) < first_command
    for k in directives:  # no trailing comment a batch system could take as a value
        assert "#" not in lines[k][len(prefix):], lines[k]


@pytest.mark.parametrize("script", sorted(p.relative_to(CLUSTER)
                                          for p in CLUSTER.rglob("*.py")), ids=str)
def test_python_scripts_compile(script):
    compile((CLUSTER / script).read_text(), str(script), "exec")


# ------------------------------------------------------------------ local.sh

@pytest.mark.skipif(BASH is None or not Path("/proc").is_dir(), reason="needs bash, /proc")
def test_local_sh_runs_a_job_and_stops_its_cluster(gauss, tools, tmp_path):
    job = gauss.write(tmp_path, M, N, BLOCK)
    env = script_env(tmp_path, tools)
    done = subprocess.run([BASH, str(CLUSTER / "local.sh"), "-n", "2", str(job),
                           "--no-progress"], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "(2 worker(s), 2 thread(s))" in done.stdout
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), gauss.reference(tmp_path),
                               rtol=1e-12, atol=1e-13)
    assert list((tmp_path / "tmp").iterdir()) == []  # its scheduler file and logs are gone
    assert wait_gone(str(tmp_path / "tmp")) == []  # and so are its processes


@pytest.mark.skipif(BASH is None or not Path("/proc").is_dir(), reason="needs bash, /proc")
def test_local_sh_stops_on_sigterm(gauss, tools, tmp_path):
    job = gauss.write(tmp_path, 4096, 65536, (512, 2048))  # ~30 s of work
    env = script_env(tmp_path, tools)
    with tools.popen([BASH, str(CLUSTER / "local.sh"), "-n", "2", str(job), "--no-progress"],
                     env=env, cwd=tmp_path) as proc:
        for line in proc.stdout:
            if line.startswith("scheduler:"):
                break
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 143, out
    assert not (tmp_path / "out.npy").exists()
    assert wait_gone(str(tmp_path / "tmp")) == []
    assert list((tmp_path / "tmp").iterdir()) == []


# --------------------------------------------------------- dask-mpi batch jobs

def mpi_ready() -> str | None:
    """Why the dask-mpi scripts cannot run here, or None."""
    try:
        import dask_mpi  # noqa: F401
    except ImportError:
        return "dask-mpi is not installed (pip install dask-mpi mpich)"
    if shutil.which("mpiexec", path=os.pathsep.join(
            [str(Path(sys.executable).parent), os.environ.get("PATH", "")])) is None:
        return "no mpiexec"
    probe = subprocess.run([sys.executable, "-c", "from mpi4py import MPI"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return f"mpi4py cannot load an MPI library: {probe.stderr.strip()[-200:]}"
    return None


@pytest.fixture
def mpi():
    """Skips a test that needs bash, dask-mpi and a working MPI when one is missing."""
    reason = "no bash" if BASH is None else mpi_ready()
    if reason:
        pytest.skip(reason)


def run_mpi_job(script: Path, env: dict, tmp_path: Path, gauss, job_id: str) -> None:
    """Run a dask-mpi batch script of 3 ranks on the Gaussian job in ``tmp_path``:
    it must succeed with 2 workers, write the right output and clean up."""
    done = subprocess.run([BASH, str(script)], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "(2 worker(s), 2 thread(s))" in done.stdout  # 3 ranks: a scheduler, 2 workers
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), gauss.reference(tmp_path),
                               rtol=1e-12, atol=1e-13)
    assert not list(tmp_path.glob(".dredux-scheduler-*"))
    assert wait_gone(f"dredux-scheduler-{job_id}") == []


def test_slurm_dask_mpi_script(mpi, gauss, tools, tmp_path):
    gauss.write(tmp_path, M, N, BLOCK)
    shims = tmp_path / "bin"
    shims.mkdir()
    # srun starts SLURM_NTASKS copies of its command: mpiexec does that here
    (shims / "srun").write_text('#!/usr/bin/env bash\nexec mpiexec -n "$SLURM_NTASKS" "$@"\n')
    (shims / "srun").chmod(0o755)
    env = script_env(tmp_path, tools, SLURM_NTASKS=3, SLURM_CPUS_PER_TASK=1,
                     SLURM_JOB_ID=4242, SLURM_SUBMIT_DIR=tmp_path, JOB="job.toml",
                     VENV=tmp_path / "no-venv", RUN_OPTIONS="--no-progress")
    env["PATH"] = f"{shims}{os.pathsep}{env['PATH']}"
    run_mpi_job(CLUSTER / "slurm" / "dredux-mpi.sbatch", env, tmp_path, gauss, "4242")


def test_pbs_dask_mpi_script(mpi, gauss, tools, tmp_path):
    gauss.write(tmp_path, M, N, BLOCK)
    nodefile = tmp_path / "nodefile"
    nodefile.write_text("localhost\n" * 3)  # 3 MPI ranks
    env = script_env(tmp_path, tools, PBS_NODEFILE=nodefile, PBS_JOBID="77.pbsserver",
                     PBS_O_WORKDIR=tmp_path, THREADS=1, JOB="job.toml",
                     VENV=tmp_path / "no-venv", RUN_OPTIONS="--no-progress")
    run_mpi_job(CLUSTER / "pbs" / "dredux-mpi.pbs", env, tmp_path, gauss, "77")


# ------------------------------------------------------------- dask-jobqueue

JOBQUEUE = {
    "slurm/jobqueue_cpu.py": ["#SBATCH --cpus-per-task=32", "#SBATCH --mem=",
                              "#SBATCH -t 01:00:00", "-m distributed.cli.dask_worker",
                              "--nthreads 32", "export DREDUX_CACHE_DIR="],
    "slurm/jobqueue_gpu.py": ["#SBATCH --gres=gpu:4", "#SBATCH --cpus-per-task=32",
                              "#SBATCH --mem=256GB", "-m dask cuda worker", "--nthreads 1",
                              "--memory-limit 59.60GiB"],
    "pbs/jobqueue_cpu.py": ["#PBS -l select=1:ncpus=32:mem=", "#PBS -l walltime=01:00:00",
                            "-m distributed.cli.dask_worker", "--nthreads 32"],
    "pbs/jobqueue_gpu.py": ["#PBS -l select=1:ncpus=32:ngpus=4:mem=256GB",
                            "-m dask cuda worker", "--nthreads 1"],
}


@pytest.mark.parametrize("script", sorted(JOBQUEUE))
def test_jobqueue_worker_job_scripts(script):
    pytest.importorskip("dask_jobqueue")
    import dask

    names = runpy.run_path(str(CLUSTER / script))
    keep = {f"jobqueue.{k}.death-timeout": dask.config.get(f"jobqueue.{k}.death-timeout")
            for k in ("slurm", "pbs")}
    quiet = {f"jobqueue.{k}.scheduler-options": {"dashboard_address": ":0"}
             for k in ("slurm", "pbs")}  # port 8787 may be taken on a shared machine
    with dask.config.set({**keep, **quiet}):  # the GPU scripts change death-timeout
        with names["make_cluster"]() as cluster:
            text = cluster.job_script()
            address = cluster.scheduler_address
    for expected in JOBQUEUE[script]:
        assert expected in text, f"{expected!r} not in:\n{text}"
    assert address in text  # the workers connect to the script's scheduler
    if "gpu" in script:
        # dask-cuda starts one worker per GPU itself; these options are not its own
        assert "--death-timeout" not in text and "--nworkers" not in text
    command = [line for line in text.splitlines() if "-m " in line]
    assert len(command) == 1 and command[0].startswith(sys.executable)


@pytest.mark.skipif(BASH is None or not Path("/proc").is_dir(), reason="needs bash, /proc")
def test_jobqueue_slurm_script_runs_a_job(gauss, tools, tmp_path):
    pytest.importorskip("dask_jobqueue")
    gauss.write(tmp_path, M, N, BLOCK)
    shims = tmp_path / "bin"
    shims.mkdir()
    # sbatch: keep a copy of the job script (as sbatch does: the caller deletes its
    # file at once), then start it on this machine in its own session
    (shims / "sbatch").write_text(
        '#!/usr/bin/env bash\n'
        'script="$FAKE_SLURM_LOGS/job-$$.sh"\n'
        'cp "$1" "$script"\n'
        'setsid bash "$script" > "$FAKE_SLURM_LOGS/job-$$.log" 2>&1 < /dev/null &\n'
        'echo $! >> "$FAKE_SLURM_LOGS/jobs"\n'
        'echo "Submitted batch job $!"\n')
    # scancel JOBID: stop that job's processes
    (shims / "scancel").write_text(
        '#!/usr/bin/env bash\nfor id in "$@"; do kill -TERM -- "-$id" 2>/dev/null; done\n'
        'exit 0\n')
    for shim in ("sbatch", "scancel"):
        (shims / shim).chmod(0o755)
    (tmp_path / "logs").mkdir()
    env = script_env(tmp_path, tools, FAKE_SLURM_LOGS=tmp_path / "logs")
    env["PATH"] = f"{shims}{os.pathsep}{env['PATH']}"
    done = subprocess.run([sys.executable, str(CLUSTER / "slurm" / "jobqueue_cpu.py"),
                           "job.toml", "--jobs", "1", "--no-progress", "--wait-timeout",
                           "120"], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    logs = "\n".join(p.read_text()[-2000:] for p in (tmp_path / "logs").glob("*.log"))
    assert done.returncode == 0, done.stdout + done.stderr[-3000:] + logs
    assert "(1 worker(s), 32 thread(s))" in done.stdout
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), gauss.reference(tmp_path),
                               rtol=1e-12, atol=1e-13)
    # one worker job was submitted, and cancelled when the script ended
    (job_id,) = (tmp_path / "logs" / "jobs").read_text().split()
    deadline = time.monotonic() + 30
    while group_alive(int(job_id)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not group_alive(int(job_id)), f"worker job {job_id} still runs:\n{logs}"


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
