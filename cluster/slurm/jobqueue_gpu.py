"""A dredux job on SLURM with dask-jobqueue and dask-cuda: one worker per GPU.

Each batch job books a node's GPUs and starts ``dask cuda worker``, which runs one
worker process per GPU with ``CUDA_VISIBLE_DEVICES`` set so that each worker
sees its own GPU. Run it on a login node:

    python cluster/slurm/jobqueue_gpu.py examples/gaussian.toml --jobs 2
    python cluster/slurm/jobqueue_gpu.py examples/gaussian.toml --dry-run   # job script only

Arguments after the job file that this script does not know go to ``dredux run``.
The workers need ``pip install -e ".[cluster,gpu-cuda13]"`` (run in the dredux
clone; CuPy and dask-cuda; ``gpu-cuda12`` on CUDA 12).
"""

# ---- edit these lines ------------------------------------------------------
JOBS = 2                  # worker batch jobs (one node each)
GPUS = 4                  # GPUs per node: one worker process each
CPUS = 32                 # CPU cores per node (for the job request)
MEMORY = "256GB"          # host memory per node
WALLTIME = "01:00:00"
QUEUE = None              # GPU partition, e.g. "gpu"
ACCOUNT = None            # project to charge, e.g. "abc123"
EXTRA_DIRECTIVES = []     # more #SBATCH lines
PROLOGUE = ['export DREDUX_CACHE_DIR="${TMPDIR:-/tmp}/dredux-cache-$USER"']
QUEUE_WAIT = 24 * 3600    # seconds to wait for the worker jobs to start
# ----------------------------------------------------------------------------

import sys  # noqa: E402


def make_cluster():
    """The SLURMCluster (a scheduler here; GPU workers once scaled)."""
    import dask
    from dask.utils import format_bytes, parse_bytes
    from dask_jobqueue import SLURMCluster

    # `dask cuda worker` takes no --death-timeout option: do not pass one
    dask.config.set({"jobqueue.slurm.death-timeout": None})
    return SLURMCluster(
        # one process per job: `dask cuda worker` starts one worker per GPU itself,
        # each with one thread (a GPU runs one kernel launch of a task at a time)
        cores=1, processes=1, job_cpu=CPUS, job_mem=MEMORY,
        memory=format_bytes(parse_bytes(MEMORY) // GPUS),  # host memory per GPU worker
        walltime=WALLTIME, queue=QUEUE, account=ACCOUNT,
        job_extra_directives=[f"--gres=gpu:{GPUS}", *EXTRA_DIRECTIVES],
        job_script_prologue=PROLOGUE, worker_command="dask cuda worker",
        job_name="dredux-gpu-worker")


def main(argv=None) -> int:
    from dredux.jobqueue import run_with_cluster

    return run_with_cluster(make_cluster, __doc__, argv, jobs=JOBS, queue_wait=QUEUE_WAIT,
                            workers_per_job=GPUS, backend="gpu")


if __name__ == "__main__":
    sys.exit(main())
