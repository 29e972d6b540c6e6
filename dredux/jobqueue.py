"""Run a ``dredux run`` job on workers submitted through dask-jobqueue.

The scripts in ``cluster/`` (SLURM and PBS, CPU and GPU workers) keep the
settings a user edits at their top and build the jobqueue cluster; this module
holds what they share: the command line, the dry run (print the worker job
script), scaling, and handing the job to ``dredux run`` with the cluster's
scheduler address.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

__all__ = ["run_with_cluster"]


def run_with_cluster(make_cluster: Callable, description: str,
                     argv: Sequence[str] | None = None, *, jobs: int,
                     workers_per_job: int = 1, queue_wait: float = 24 * 3600,
                     backend: str | None = None) -> int:
    """Parse ``JOB.toml [--jobs N] [--dry-run] [dredux run options]`` and run the job.

    Parameters
    ----------
    make_cluster : callable
        Returns a dask-jobqueue cluster (a context manager).
    description : str
        The calling script's docstring (its first line is the ``--help`` text).
    jobs : int
        Default number of worker batch jobs.
    workers_per_job : int
        Dask workers each batch job starts (one per GPU for dask-cuda workers):
        the job waits for ``jobs * workers_per_job`` workers.
    queue_wait : float
        Seconds to wait for the worker jobs to leave the queue.
    backend : str, optional
        Backend passed to ``dredux run`` (``"gpu"`` for GPU workers: the
        submitting node itself may have no GPU).

    Returns
    -------
    int
        The exit status of ``dredux run`` (0 on a dry run).
    """
    parser = argparse.ArgumentParser(description=description.strip().splitlines()[0])
    parser.add_argument("job", help="the job file (TOML)")
    parser.add_argument("--jobs", type=int, default=jobs, help=f"worker jobs ({jobs})")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the worker job script and exit")
    args, run_options = parser.parse_known_args(argv)
    with make_cluster() as cluster:
        if args.dry_run:
            print(cluster.job_script())
            return 0
        from .cli import main as dredux_main

        cluster.scale(jobs=args.jobs)
        command = ["run", args.job, "--scheduler", cluster.scheduler_address]
        if backend is not None:
            command += ["--backend", backend]
        command += ["--wait-workers", str(args.jobs * workers_per_job),
                    "--wait-timeout", str(queue_wait), *run_options]
        return dredux_main(command)
