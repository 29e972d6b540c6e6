"""Overhead of the Dask graph against the same blocks evaluated in a plain loop.

For the Gaussian matvec ``Sum_j Exp(-g*SqDist(x_i, y_j)) * b_j`` with fixed
blocks, this times (medians of ``--repeat`` runs, the three taking turns in a
rotating order so that a change of the machine's load affects them alike):

* loop:          the block kernel called on every (row block, column range) in a
                 Python loop on one thread, states merged and finalized in place;
* graph (sync):  ``Genred.__call__`` with the same blocks on Dask's single-threaded
                 scheduler: the same work plus graph construction and scheduling;
* graph (threads): the same graph on the threaded scheduler (all cores).

and prints graph/loop ratios. The overhead is ``sync / loop - 1``.

    python benchmarks/overhead.py [--backend cpu|numpy] [--m M] [--n N] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from dredux import Genred
from dredux.backends import resolve_backend


def plain_loop(routine, backend, args, row_block, col_block):
    """The graph's work without Dask: same kernel, same blocks, same merge order."""
    x, y, b, g = args
    program = routine.program(x.dtype)
    kernel = routine.kernel(backend, x.dtype)
    red = program.reduction
    out = []
    for i0 in range(0, len(x), row_block):
        rows = [x[i0:i0 + row_block]]
        states = []
        for j0 in range(0, len(y), col_block):
            cols = [y[j0:j0 + col_block], b[j0:j0 + col_block]]
            states.append(kernel(rows, cols, [g], len(rows[0]), len(cols[0]), j0))
        state = states[0]
        for other in states[1:]:
            state = red.merge(state, other)
        out.append(red.finalize(state, program.np_dtype))
    return np.concatenate(out)


def interleaved_medians(runs: list, repeat: int) -> list:
    """(median seconds, last result) of each function, the functions taking turns
    (in a rotated order each round, so that none always follows the same one)."""
    times = [[] for _ in runs]
    results = [None] * len(runs)
    for turn in range(repeat):
        for step in range(len(runs)):
            k = (turn + step) % len(runs)
            start = time.perf_counter()
            results[k] = runs[k]()
            times[k].append(time.perf_counter() - start)
    return [(statistics.median(t), r) for t, r in zip(times, results)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--m", type=int, default=None)
    parser.add_argument("--n", type=int, default=None)
    parser.add_argument("--row-blocks", type=int, default=8)
    parser.add_argument("--col-blocks", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dtype", default="float32")
    opts = parser.parse_args(argv)

    backend = resolve_backend(opts.backend, [])
    size = {"numpy": 6000, "cpu": 100000}.get(backend, 10**6)  # seconds of compute
    m, n = opts.m or size, opts.n or size
    rng = np.random.default_rng(0)
    dtype = np.dtype(opts.dtype)
    x = rng.random((m, 3)).astype(dtype)
    y = rng.random((n, 3)).astype(dtype)
    b = rng.random((n, 1)).astype(dtype)
    g = np.array([2.0], dtype=dtype)
    routine = Genred("Exp(-g*SqDist(x,y))*b", ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)",
                                                "g = Pm(1)"], reduction_op="Sum", axis=1)
    row_block = -(-m // opts.row_blocks)
    col_block = -(-n // opts.col_blocks)
    blocks = dict(block_size=(row_block, col_block), backend=backend)
    args = (x, y, b, g)
    routine(*args, **blocks)  # compile and warm up

    (loop_t, loop_out), (sync_t, sync_out), (thr_t, thr_out) = interleaved_medians([
        lambda: plain_loop(routine, backend, args, row_block, col_block),
        lambda: routine(*args, scheduler="sync", **blocks),
        lambda: routine(*args, scheduler="threads", **blocks),
    ], opts.repeat)
    np.testing.assert_array_equal(sync_out, loop_out)  # the very same computation
    np.testing.assert_array_equal(thr_out, loop_out)

    tasks = opts.row_blocks * opts.col_blocks
    print(f"backend={backend} dtype={dtype.name} M={m} N={n} tasks={tasks} "
          f"({row_block} rows x {col_block} columns each), median of {opts.repeat}")
    print(f"{'plain loop (1 thread)':28s} {loop_t:9.3f} s  {m * n / loop_t / 1e9:7.3f} Gpairs/s")
    print(f"{'dask graph, sync scheduler':28s} {sync_t:9.3f} s  ratio to loop "
          f"{sync_t / loop_t:6.3f}  (overhead {100 * (sync_t / loop_t - 1):+.1f}%)")
    print(f"{'dask graph, threads':28s} {thr_t:9.3f} s  ratio to loop "
          f"{thr_t / loop_t:6.3f}  (speed-up {loop_t / thr_t:.2f}x)")


if __name__ == "__main__":
    main()
