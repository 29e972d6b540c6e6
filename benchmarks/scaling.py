"""Strong scaling over worker processes, and the cost of running on a cluster.

For the Gaussian matvec ``out_i = Sum_j Exp(-g * SqDist(x_i, y_j)) * b_j`` with
M = N chosen so that one thread needs about ``--seconds`` of kernel time, this
times (medians of ``--repeat`` runs, each after one untimed warm-up run):

* loop:      the planned blocks evaluated by calling the block kernel directly in
             a Python loop, in this process, on one thread (no Dask);
* 1 worker:  ``Genred.__call__`` with the same blocks on a ``LocalCluster`` of one
             worker process with one thread;
* 2 workers: the same on two worker processes with one thread each.

* one chunk: the same inputs as dask arrays of a single chunk each, on the
             two workers, blocks left to the planner (tasks must follow the work,
             not the input's chunks: the task count is printed);

and prints the speedup t(1 worker) / t(2 workers) (target >= 1.8 on 2 cores),
t(1 worker) / t(one chunk) (the one-chunk input must scale alike), and the
overhead t(1 worker) / t(loop) - 1 (target <= 10 %), from the medians
and, for a machine shared with other jobs, from the best runs too. The runs take
turns, so that a change of load affects them alike. The cluster runs include
sending the inputs to the workers and the results back.

    python benchmarks/scaling.py [--seconds 4] [--repeat 3] [--backend auto]
                                 [--write benchmarks/results/scaling.md]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time

import numpy as np

from dredux import Genred
from dredux.backends import cpu_available
from dredux.plan import make_plan

FORMULA = "Exp(-g * SqDist(x, y)) * b"
ALIASES = ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "g = Pm(1)"]
DTYPE = np.float32


def pick_backend(name: str) -> str:
    if name != "auto":
        return name
    try:
        import dredux.compile.cpp  # noqa: F401
    except ImportError:
        return "numpy"
    return "cpu" if cpu_available() else "numpy"


def inputs(m: int, n: int):
    rng = np.random.default_rng(0)
    return (rng.random((m, 3), dtype=np.float64).astype(DTYPE),
            rng.random((n, 3), dtype=np.float64).astype(DTYPE),
            rng.standard_normal((n, 1)).astype(DTYPE), np.array([4.0], dtype=DTYPE))


def pairs_per_second(kernel, backend: str) -> float:
    """One thread's kernel throughput on a block of this benchmark's shape."""
    m, n = (1024, 65536) if backend != "numpy" else (512, 8192)
    x, y, b, g = inputs(m, n)
    kernel([x], [y, b], [g], m, n, 0)  # compiles (cpu) or warms up
    times = []
    for _ in range(3):
        start = time.perf_counter()
        kernel([x], [y, b], [g], m, n, 0)
        times.append(time.perf_counter() - start)
    return m * n / min(times)


def plain_loop(routine, kernel, plan, args):
    """The plan's blocks, kernel called directly, merged and finalized in order."""
    x, y, b, g = args
    program = routine.program(x.dtype)
    red = program.reduction
    out, i0 = [], 0
    for size in plan.rows:
        rows = [x[i0:i0 + size]]
        state = None
        for c0, c1 in plan.cols:
            part = kernel(rows, [y[c0:c1], b[c0:c1]], [g], size, c1 - c0, c0)
            state = part if state is None else red.merge(state, part)
        out.append(red.finalize(state, program.np_dtype))
        i0 += size
    return np.concatenate(out)


def settle(client, timeout: float = 30.0) -> None:
    """Wait until the scheduler has forgotten the previous run's tasks.

    Calling a routine again with the same inputs builds the same keys (and
    scatters inputs under the same keys); submitted while the scheduler still
    releases the previous run's, they can be cancelled as "lost dependencies".
    """
    deadline = time.monotonic() + timeout
    while client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)):
        if time.monotonic() > deadline:
            raise RuntimeError("the scheduler still holds tasks of the previous run")
        time.sleep(0.02)


def timed_interleaved(runs: dict, repeat: int) -> dict:
    """name -> (median, times, last result), the runs taking turns so that a change
    of the machine's load (it is shared) affects them alike. A run is
    ``(function, client or None)``; the client settles before each timed call."""
    for fn, client in runs.values():
        fn()  # warm-up: compiles the kernel where it runs, starts the pools
        if client is not None:
            settle(client)
    times = {name: [] for name in runs}
    results = {}
    for _ in range(repeat):
        for name, (fn, client) in runs.items():
            if client is not None:
                settle(client)
            start = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - start)
    return {name: (statistics.median(t), t, results[name]) for name, t in times.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0,
                        help="kernel seconds of one run on one thread (sets M = N)")
    parser.add_argument("--size", type=int, help="M = N (overrides --seconds)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backend", default="auto", choices=("auto", "cpu", "numpy"))
    parser.add_argument("--write", help="also write the results as markdown to this file")
    args = parser.parse_args(argv)

    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    backend = pick_backend(args.backend)
    routine = Genred(FORMULA, ALIASES, reduction_op="Sum", axis=1)
    kernel = routine.kernel(backend, DTYPE)
    rate = pairs_per_second(kernel, backend)
    size = args.size or int(np.sqrt(args.seconds * rate)) // 1024 * 1024
    note = " (the C++ backend is not available here)" if backend == "numpy" else ""
    print(f"backend {backend}{note}; one thread: {rate / 1e6:.0f} M pairs/s; M = N = {size}")
    data = inputs(size, size)
    # the blocks the planner picks for 2 workers, used by every run below
    planned = make_plan(size, size, routine._cost(), backend, 2, row_bytes=12, col_bytes=16,
                        state_bytes=8)
    block = (max(planned.rows), max(c1 - c0 for c0, c1 in planned.cols))
    plan = make_plan(size, size, routine._cost(), backend, 1, block_size=block,
                     row_bytes=12, col_bytes=16, state_bytes=8)
    print(f"blocks {block[0]} x {block[1]}: {plan.n_tasks} tasks of about "
          f"{size * size / plan.n_tasks / rate:.2f} s on one thread")

    from distributed import Client, LocalCluster

    def cluster(workers):
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                            dashboard_address=":0", host="127.0.0.1")

    with cluster(1) as one, Client(one, set_as_default=False) as c1, \
            cluster(2) as two, Client(two, set_as_default=False) as c2:
        assert sum(c1.nthreads().values()) == 1 and sum(c2.nthreads().values()) == 2
        import dask.array as da

        one_chunk = [da.from_array(a, chunks=-1) for a in data]
        lazy = routine(*one_chunk, backend=backend)
        chunk_tasks = sum(1 for v in dict(lazy.__dask_graph__()).values()
                          if isinstance(v, tuple) and v and getattr(v[0], "__name__", "")
                          == "run_block")
        print(f"one-chunk dask inputs: {chunk_tasks} block tasks in one output chunk")
        runs = {
            "loop": (lambda: plain_loop(routine, kernel, plan, data), None),
            "1 worker": (lambda: routine(*data, backend=backend, block_size=block,
                                         scheduler=c1), c1),
            "2 workers": (lambda: routine(*data, backend=backend, block_size=block,
                                          scheduler=c2), c2),
            "one chunk": (lambda: routine(*one_chunk, backend=backend).compute(scheduler=c2),
                          c2),
        }
        timings = timed_interleaved(runs, args.repeat)
    (t_loop, loop_times, reference), (t_one, one_times, out_one), \
        (t_two, two_times, out_two), (t_chunk, chunk_times, out_chunk) = timings.values()
    for name, out in (("1 worker", out_one), ("2 workers", out_two)):
        if not np.array_equal(out, reference):  # same blocks, same merge order
            raise SystemExit(f"{name}: the cluster result differs from the loop's")
    if not np.allclose(out_chunk, reference, rtol=1e-4, atol=1e-4 * np.abs(reference).max()):
        raise SystemExit("one chunk: the result differs from the loop's")

    rows = [("loop (1 process, 1 thread, no Dask)", t_loop, loop_times),
            ("LocalCluster, 1 worker x 1 thread", t_one, one_times),
            ("LocalCluster, 2 workers x 1 thread", t_two, two_times),
            (f"2 workers, one-chunk dask inputs ({chunk_tasks} tasks)", t_chunk, chunk_times)]
    # medians are the result; the best runs show the cost without other load,
    # which matters on a shared machine (the load average is printed with them)
    ratios = {"median": (t_one / t_two, t_one / t_loop - 1, t_one / t_chunk),
              "best run": (min(one_times) / min(two_times),
                           min(one_times) / min(loop_times) - 1,
                           min(one_times) / min(chunk_times))}
    load = (load_before, os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan"))
    print(f"\n{'run':40s} {'median s':>9s} {'best s':>8s}   runs")
    for name, median, times in rows:
        print(f"{name:40s} {median:9.3f} {min(times):8.3f}   "
              f"{' '.join(f'{t:.3f}' for t in times)}")
    for what, (speedup, overhead, chunk) in ratios.items():
        print(f"{what + ':':10s} strong scaling 1 -> 2 workers {speedup:.2f}x (target >= 1.8x); "
              f"cluster overhead vs plain loop {overhead:+.1%} (target <= 10%); "
              f"one-chunk input on 2 workers {chunk:.2f}x")
    print(f"load average (1 min) before / after: {load[0]:.1f} / {load[1]:.1f} "
          f"on {os.cpu_count()} cores")
    if args.write:
        write_markdown(args.write, argv, backend, rate, size, block, plan, rows, ratios, load)
    return 0


def write_markdown(path, argv, backend, rate, size, block, plan, rows, ratios, load):
    command = "python benchmarks/scaling.py " + " ".join(argv if argv is not None
                                                         else sys.argv[1:])
    lines = [
        "# Strong scaling and cluster overhead (benchmarks/scaling.py)", "",
        f"Command: `{command.strip()}`", "",
        f"Measured {datetime.date.today().isoformat()} on {os.cpu_count()} cores (Python "
        f"{platform.python_version()}, {platform.machine()}), a machine shared with other "
        f"jobs: load average {load[0]:.1f} before and {load[1]:.1f} after the runs.", "",
        f"Gaussian matvec `Sum_j Exp(-g * SqDist(x_i, y_j)) * b_j`, float32, backend "
        f"**{backend}**, M = N = {size}, {plan.n_tasks} block tasks of {block[0]} x "
        f"{block[1]}; one thread computed {rate / 1e6:.0f} M pairs/s when calibrating. "
        f"{len(rows[0][2])} runs of each, taking turns, after one warm-up run each.", "",
        "| run | median (s) | best (s) | runs (s) |", "|---|---:|---:|---|",
    ]
    for name, median, times in rows:
        lines.append(f"| {name} | {median:.3f} | {min(times):.3f} | "
                     f"{', '.join(f'{t:.3f}' for t in times)} |")
    lines += ["", "| from | strong scaling 1 -> 2 workers (target >= 1.8x) | "
              "overhead vs plain loop (target <= 10%) | one-chunk input, 1 worker -> 2 |",
              "|---|---:|---:|---:|"]
    for what, (speedup, overhead, chunk) in ratios.items():
        lines.append(f"| {what} | {speedup:.2f}x | {overhead:+.1%} | {chunk:.2f}x |")
    lines.append("")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    print(f"wrote {path}")


if __name__ == "__main__":
    raise SystemExit(main())
