"""A dredux job on SLURM with dask-jobqueue: CPU workers submitted as batch jobs.

Run it on a login node (it submits the workers, runs the job, then cancels them):

    python cluster/slurm/jobqueue_cpu.py examples/gaussian.toml --jobs 4
    python cluster/slurm/jobqueue_cpu.py examples/gaussian.toml --dry-run   # job script only

Arguments after the job file that this script does not know go to ``dredux run``
(e.g. ``--backend cpu``). Needs ``pip install -e ".[cluster]"` (from the dredux clone)`.
"""

# ---- edit these lines ------------------------------------------------------
JOBS = 2                  # worker batch jobs (one node each)
CORES = 32                # cores per node: one worker process with CORES threads
MEMORY = "128GB"          # memory per node
WALLTIME = "01:00:00"
QUEUE = None              # partition, e.g. "compute"
ACCOUNT = None            # project to charge, e.g. "abc123"
EXTRA_DIRECTIVES = []     # more #SBATCH lines, e.g. ["--constraint=skylake"]
# Compiled kernels: one cache per node on local disk; each worker compiles or
# loads its kernel itself, nothing compiled travels over the network.
PROLOGUE = ['export DREDUX_CACHE_DIR="${TMPDIR:-/tmp}/dredux-cache-$USER"']
QUEUE_WAIT = 24 * 3600    # seconds to wait for the worker jobs to start
# ----------------------------------------------------------------------------

import sys  # noqa: E402


def make_cluster():
    """The SLURMCluster (a scheduler here; workers once scaled)."""
    from dask_jobqueue import SLURMCluster

    return SLURMCluster(
        cores=CORES, processes=1, memory=MEMORY, walltime=WALLTIME, queue=QUEUE,
        account=ACCOUNT, job_extra_directives=EXTRA_DIRECTIVES,
        job_script_prologue=PROLOGUE, job_name="dredux-worker")


def main(argv=None) -> int:
    from dredux.jobqueue import run_with_cluster

    return run_with_cluster(make_cluster, __doc__, argv, jobs=JOBS, queue_wait=QUEUE_WAIT)


if __name__ == "__main__":
    sys.exit(main())
