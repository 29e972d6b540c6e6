"""How the CPU contraction kernel scales from one thread to every core.

    python benchmarks/threads.py [--size 8000] [--dims 64 256] [--repeats 5]
                                 [--write FILE]

The float32 Gaussian matvec ``Exp(-SqDist(x, y) * g) * b`` (the
register-blocked SqDist of dredux/codegen/cpp.py), M = N = ``--size``, timed
three ways in the same run, in rotation, best of ``--repeats``:

* ``one thread``: the compiled block kernel (``routine.kernel("cpu",
  "float32")``) called directly on all rows, from one Python thread;
* ``threads``: the same kernel called from one Python thread per core, each on
  an equal share of the rows (the kernel releases the GIL), no Dask;
* ``Genred``: the routine's own call (planner, Dask threads, merges);

next to the FMA peak of one core and of every core (``cpu_vs_keops.fma_peak``,
register-only FMAs), in multiply-adds per second (one per dimension per
pair). The ratios say where the fraction of the peak is lost: in the kernel
on one core, in running it on several cores at once, or in the planner.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from cpu_vs_keops import fma_peak  # noqa: E402
from report import write_report  # noqa: E402


def measure(size: int, dim: int, cores: int, repeats: int) -> dict:
    from dredux import Genred

    routine = Genred("Exp(-SqDist(x, y) * g) * b",
                     [f"x = Vi({dim})", f"y = Vj({dim})", "b = Vj(1)", "g = Pm(1)"], axis=1)
    kernel = routine.kernel("cpu", "float32").compile()
    gen = np.random.default_rng(0)
    x = gen.normal(0, dim ** -0.5, (size, dim)).astype(np.float32)
    y = gen.normal(0, dim ** -0.5, (size, dim)).astype(np.float32)
    b = gen.uniform(0, 1, (size, 1)).astype(np.float32)
    g = np.array([1.0], np.float32)

    def rows(lo, hi):
        kernel([x[lo:hi]], [y, b], [g], hi - lo, size)

    def threaded():
        cuts = np.linspace(0, size, cores + 1).astype(int)
        pool = [threading.Thread(target=rows, args=(cuts[k], cuts[k + 1]))
                for k in range(cores)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()

    runs = {"one thread": lambda: rows(0, size), "threads": threaded,
            "Genred": lambda: routine(x, y, b, g, backend="cpu")}
    for fn in runs.values():
        fn()  # compiles and first touches excluded
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    work = float(size) * size * dim
    return {name: work / t for name, t in best.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8000)
    parser.add_argument("--dims", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--write", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    lines = [f"machine: {cores} cores; load average at start {os.getloadavg()[0]:.2f}"]
    with tempfile.TemporaryDirectory() as tmp:
        one = fma_peak(1, Path(tmp))["float32"] / 2
        every = fma_peak(cores, Path(tmp))["float32"] / 2
    lines.append(f"FMA peak float32: one core {one:.3g}, {cores} cores {every:.3g} "
                 f"multiply-adds/s ({every / one:.2f}x)")
    lines += ["", f"Gaussian matvec, float32, M = N = {args.size:,}, best of {args.repeats}", "",
              "| D | one thread | of one core's peak | threads | vs one thread | Genred | "
              "of the peak |", "|---|---|---|---|---|---|---|"]
    for dim in args.dims:
        r = measure(args.size, dim, cores, args.repeats)
        lines.append(f"| {dim} | {r['one thread']:.3g} | {r['one thread'] / one:.0%} | "
                     f"{r['threads']:.3g} | {r['threads'] / r['one thread']:.2f}x | "
                     f"{r['Genred']:.3g} | {r['Genred'] / every:.0%} |")
    lines.append(f"\nload average at end {os.getloadavg()[0]:.2f} (other jobs share this "
                 "machine)")
    print("\n".join(lines))
    if args.write:
        write_report(args.write, REPORT, "threads.py", argv, ["```text", *lines, "```"])
    return 0


REPORT = """# CPU contraction kernel: one thread against every core

Produced by `{command}` (this file is written by the script).
See the module docstring of `benchmarks/threads.py` for what is timed and how.

{body}
"""


if __name__ == "__main__":
    sys.exit(main())
