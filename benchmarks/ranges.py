"""Block-sparse reductions: time against the kept fraction, and the tasks of the graph.

    python benchmarks/ranges.py [--size 200000] [--cutoffs 0.2 0.25 0.3 0.4]
                                [--repeats 3] [--pykeops] [--write FILE]

Two clustered point clouds of M = N points (D = 3, float32: 40 Gaussian blobs
in the unit cube, the same blob centres for x and y), the Gaussian matvec
``c_i = sum_j exp(-|x_i - y_j|^2 / s^2) b_j`` on the CPU backend with local
threads. The points are cut into cubic cells (``grid_cluster``), sorted, and
a (row cell, column cell) block is kept when the cells' centroids are closer
than a cutoff (``from_matrix``): each cutoff gives a kept fraction of the
M x N pairs. For each, printed are the median time of ``--repeats`` calls,
the ratio to the dense call (no ``ranges``) measured in the same run, that
ratio divided by the kept fraction (1.0: time exactly proportional to the
work kept), and the largest difference to the dense reduction restricted to
the same mask (computed by dredux's dense kernel over each kept block, in
float64).

The second table counts the block tasks of the Dask graph when the inputs
are dask arrays of ``--chunk`` rows: dense, every (row block, column range)
pair is a task; block-sparse, only the pairs holding a kept pair are, and a
row block with none is a single task that reads no input.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from latency import fmt_time  # noqa: E402
from report import write_report  # noqa: E402

FORMULA = "Exp(-SqDist(x, y) * g) * b"
ALIASES = ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "g = Pm(1)"]
CELL = 0.1  # side of the cells (about 280 points per cell on average)


def clouds(size: int, seed: int = 0):
    """Sorted clustered points x, y (with weights b), their cell ranges and centroids."""
    from dredux.cluster import cluster_ranges_centroids, grid_cluster, sort_clusters

    gen = np.random.default_rng(seed)
    centres = gen.uniform(0.1, 0.9, (40, 3))

    def cloud():
        pick = gen.integers(0, len(centres), size)
        return (centres[pick] + gen.normal(0, 0.04, (size, 3))).astype(np.float32)

    x, y = cloud(), cloud()
    b = gen.uniform(0, 1, (size, 1)).astype(np.float32)
    x, lx = sort_clusters(x, grid_cluster(x, CELL))
    (y, b), ly = sort_clusters((y, b), grid_cluster(y, CELL))
    rx, cx, _ = cluster_ranges_centroids(x, lx)
    ry, cy, _ = cluster_ranges_centroids(y, ly)
    return x, y, b, rx, cx, ry, cy


def pattern(rx, cx, ry, cy, cutoff: float):
    from dredux.cluster import from_matrix

    keep = ((cx[:, None, :] - cy[None, :, :]) ** 2).sum(-1) < cutoff ** 2
    sizes_x, sizes_y = rx[:, 1] - rx[:, 0], ry[:, 1] - ry[:, 0]
    kept = float(sizes_x @ keep @ sizes_y)
    return from_matrix(rx, ry, keep), keep, kept


def masked_reference(routine, x, y, b, g, rx, ry, keep) -> np.ndarray:
    """The dense reduction over each kept block, summed per row cluster, in float64."""
    out = np.zeros((len(x), 1))
    x64, y64, b64, g64 = (a.astype(np.float64) for a in (x, y, b, g))
    for ci, (a, e) in enumerate(rx):
        for cj in np.flatnonzero(keep[ci]):
            c, d = ry[cj]
            out[a:e] += routine(x64[a:e], y64[c:d], b64[c:d], g64, backend="cpu")
    return out


def timed(fn, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def block_tasks(array) -> int:
    """Tasks of the graph that run the kernel (or give an empty row block's output)."""
    from dredux.graph import empty_block, run_block

    return sum(1 for layer in array.__dask_graph__().layers.values()
               for task in dict(layer).values()
               if isinstance(task, tuple) and task and task[0] in (run_block, empty_block))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=200_000, help="M = N (default 200,000)")
    parser.add_argument("--cutoffs", type=float, nargs="+", default=[0.2, 0.25, 0.3, 0.4],
                        help="centroid distances below which a block is kept")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=10_000,
                        help="rows per chunk of the dask inputs of the task count")
    parser.add_argument("--pykeops", action="store_true",
                        help="also time pykeops's CPU backend with the same ranges")
    parser.add_argument("--write", type=Path, help="write a markdown report here")
    args = parser.parse_args(argv)
    lines = []

    def say(text=""):
        print(text, flush=True)
        lines.append(text)

    import dask.array as da

    from dredux import Genred

    say(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"load average at start {os.getloadavg()[0]:.2f}")
    size = args.size
    x, y, b, rx, cx, ry, cy = clouds(size)
    g = np.array([1.0 / 0.05 ** 2], np.float32)
    routine = Genred(FORMULA, ALIASES, axis=1)
    say(f"Gaussian matvec, M = N = {size:,}, D = 3, float32, CPU backend, local threads; "
        f"{len(rx):,} x {len(ry):,} cells of side {CELL}; medians of {args.repeats} calls")
    say()
    routine(x[:1000], y[:1000], b[:1000], g, backend="cpu")  # compile, excluded
    dense, dense_out = timed(lambda: routine(x, y, b, g, backend="cpu"), args.repeats)
    keops = None
    if args.pykeops:
        try:
            from pykeops.numpy import Genred as KeOpsGenred

            keops = KeOpsGenred(FORMULA, ALIASES, reduction_op="Sum", axis=1)
        except ImportError:
            print("pykeops is not installed: pip install -e '.[bench]'", file=sys.stderr)
    say("| cutoff | kept fraction | time | time / dense | (time / dense) / kept | "
        "pykeops (ranges) | max rel. diff |")
    say("|---|---|---|---|---|---|---|")
    say(f"| dense | 1 | {fmt_time(dense)} | 1.00 | 1.00 | - | - |")
    patterns = []
    for cutoff in args.cutoffs:
        ranges, keep, kept = pattern(rx, cx, ry, cy, cutoff)
        fraction = kept / size / size
        t, out = timed(lambda: routine(x, y, b, g, backend="cpu", ranges=ranges),
                       args.repeats)
        ref = masked_reference(routine, x, y, b, g, rx, ry, keep)
        diff = float(np.abs(out - ref).max() / np.abs(ref).max())
        theirs = "-"
        if keops is not None:
            tk, _ = timed(lambda: keops(x, y, b, g, backend="CPU", ranges=ranges), 1)
            theirs = fmt_time(tk)
        say(f"| {cutoff} | {fraction:.3f} | {fmt_time(t)} | {t / dense:.3f} | "
            f"{t / dense / fraction:.2f} | {theirs} | {diff:.1e} |")
        patterns.append((cutoff, fraction, ranges))
    say()
    say(f"Block tasks of the Dask graph, dask inputs of {args.chunk:,} rows per chunk "
        "(the planner's own blocks):")
    say()
    say("| cutoff | kept fraction | block tasks | dense block tasks |")
    say("|---|---|---|---|")
    chunks = ((args.chunk, 3))
    dx = da.from_array(x, chunks=chunks)
    dy = da.from_array(y, chunks=chunks)
    db = da.from_array(b, chunks=(args.chunk, 1))
    dense_tasks = block_tasks(routine(dx, dy, db, g, backend="cpu"))
    for cutoff, fraction, ranges in patterns:
        lazy = routine(dx, dy, db, g, backend="cpu", ranges=ranges)
        say(f"| {cutoff} | {fraction:.3f} | {block_tasks(lazy)} | {dense_tasks} |")
    say()
    say(f"load average at end {os.getloadavg()[0]:.2f} (other jobs share this machine)")
    if args.write:
        write_report(args.write, REPORT, "ranges.py", argv, lines)
    del dense_out
    return 0


REPORT = """# Block-sparse reductions: time vs kept fraction, and graph tasks

Produced by `{command}` (this file is written by the script).
See the module docstring of `benchmarks/ranges.py` for what is timed and how.

{body}
"""

if __name__ == "__main__":
    raise SystemExit(main())
