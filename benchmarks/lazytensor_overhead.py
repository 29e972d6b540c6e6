"""What the LazyTensor interface adds to a reduction: LazyTensor vs the equivalent Genred.

    python benchmarks/lazytensor_overhead.py [--sizes 100x100 2000x2000 20000x20000]
                                             [--seconds 2] [--write FILE]

The Gaussian matvec ``c_i = sum_j exp(-|x_i - y_j|^2) b_j`` (D = 3, float32,
NumPy inputs, CPU backend, the same compiled kernel on every path) as

* Genred: ``routine(x, y, b)`` with the routine built once;
* LazyTensor, built every call (how KeOps's tutorials write it, in a loop):
  ``LazyTensor(x[:, None, :])``, ``LazyTensor(y[None, :, :])``, ``Vj(b)``,
  the expression, then ``.sum(axis=1)``;
* LazyTensor, prebuilt: the expression built once and ``K @ b`` called;
* pykeops 2.3's LazyTensor (built every call, backend "CPU"), when installed.

Everything is called once before timing (compiles excluded). The paths then
take turns in a rotating order, each turn a batch of calls lasting about
50 ms; printed are the medians of the per-call times and the ratios to the
Genred call measured in the same run (1.00 = no overhead).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from latency import fmt_time, relative_difference, rotate  # noqa: E402
from report import write_report  # noqa: E402


def paths(m: int, n: int) -> dict:
    from dredux import Genred, LazyTensor, Vj

    gen = np.random.default_rng(0)
    x = gen.uniform(0, 1, (m, 3)).astype(np.float32)
    y = gen.uniform(0, 1, (n, 3)).astype(np.float32)
    b = gen.uniform(0, 1, (n, 1)).astype(np.float32)
    routine = Genred("Exp(-SqDist(x, y)) * b", ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)"],
                     axis=1)

    def lazy():
        x_i, y_j, b_j = LazyTensor(x[:, None, :]), LazyTensor(y[None, :, :]), Vj(b)
        return ((-((x_i - y_j) ** 2).sum(-1)).exp() * b_j).sum(axis=1, backend="cpu")

    K = (-((LazyTensor(x[:, None, :]) - LazyTensor(y[None, :, :])) ** 2).sum(-1)).exp()
    K.backend = "cpu"
    runs = {"genred": lambda: routine(x, y, b, backend="cpu"), "lazy": lazy,
            "prebuilt": lambda: K @ b}
    try:
        from pykeops.numpy import LazyTensor as KeOpsLazyTensor

        def keops():
            x_i, y_j = KeOpsLazyTensor(x[:, None, :]), KeOpsLazyTensor(y[None, :, :])
            b_j = KeOpsLazyTensor(b[None, :, :])
            return ((-((x_i - y_j) ** 2).sum(-1)).exp() * b_j).sum(axis=1, backend="CPU")

        runs["pykeops"] = keops
    except ImportError:
        print("pykeops is not installed: pip install -e '.[bench]'", file=sys.stderr)
    return runs


def measure(m: int, n: int, seconds: float) -> dict:
    runs = paths(m, n)
    results = {name: fn() for name, fn in runs.items()}  # compiles, excluded
    times, _ = rotate(runs, seconds)
    return {"median": {k: statistics.median(v) for k, v in times.items()},
            "diff": {k: relative_difference(v, results["genred"]) for k, v in results.items()},
            "batches": {k: len(v) for k, v in times.items()}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["100x100", "2000x2000", "20000x20000"])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--write", type=Path, help="write a markdown report here")
    args = parser.parse_args(argv)
    lines = []

    def say(text=""):
        print(text, flush=True)
        lines.append(text)

    say(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"load average at start {os.getloadavg()[0]:.2f}")
    say("Gaussian matvec, D = 3, float32, CPU backend; medians of batches")
    say()
    say("| M x N | Genred | LazyTensor (built each call) | ratio | LazyTensor (prebuilt) | "
        "ratio | pykeops LazyTensor | max rel. diff | batches |")
    say("|---|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        m, n = (int(v) for v in size.lower().split("x"))
        r = measure(m, n, args.seconds)
        med = r["median"]
        keops = fmt_time(med["pykeops"]) if "pykeops" in med else "-"
        diff = max(v for k, v in r["diff"].items())
        say(f"| {m:,} x {n:,} | {fmt_time(med['genred'])} | {fmt_time(med['lazy'])} | "
            f"{med['lazy'] / med['genred']:.2f} | {fmt_time(med['prebuilt'])} | "
            f"{med['prebuilt'] / med['genred']:.2f} | {keops} | {diff:.1e} | "
            f"{min(r['batches'].values())} |")
    say()
    say(f"load average at end {os.getloadavg()[0]:.2f} (other jobs share this machine)")
    if args.write:
        write_report(args.write, REPORT, "lazytensor_overhead.py", argv, lines)
    return 0


REPORT = """# LazyTensor overhead: LazyTensor vs the equivalent Genred call

Produced by `{command}` (this file is written by the script).
See the module docstring of `benchmarks/lazytensor_overhead.py` for what is timed and how.

{body}
"""

if __name__ == "__main__":
    raise SystemExit(main())
