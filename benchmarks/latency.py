"""Per-call time of a reduction, from tiny to large: dredux against pykeops and NumPy.

    python benchmarks/latency.py [--sizes 30x50 3000x5000 20000x20000] [--seconds 2]
                                 [--write benchmarks/results/latency.md]

The seed formula ``c_i = sum_j Square(p - a_j) * Exp(x_i + y_j)`` (float64,
NumPy inputs, CPU) is computed by

* dredux: ``Genred(...)(x, y, a, p, backend="cpu")``, the call a user makes
  in an optimisation loop (argument checks, planning, the kernel, the result);
* pykeops 2.3: ``pykeops.numpy.Genred(...)(x, y, a, p, backend="CPU")``;
* NumPy: the same sum written with broadcasting,
  ``(np.square(p - a.T) * np.exp(x[:, None] + y[None])).sum(1)``, by blocks of
  rows so that the M x N x 3 temporary stays under 64 MiB.

Each routine is built and called once before timing (compiles excluded). The
three then take turns in a rotating order, each turn timing a batch of calls
sized to last about 50 ms; the per-call time of a batch is its time divided by
its calls, and the printed value is the median over the batches of about
``--seconds`` per library and size. Printed with it: dredux / pykeops and
dredux / NumPy (below 1 means dredux is faster), and the largest relative
difference of each result from dredux's.
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

from report import write_report  # noqa: E402

FORMULA = "Square(p-a)*Exp(x+y)"
ALIASES = ["x = Vi(3)", "y = Vj(3)", "a = Vj(1)", "p = Pm(1)"]
BLOCK_BYTES = 64 << 20


def inputs(m: int, n: int, seed: int = 0) -> list[np.ndarray]:
    gen = np.random.default_rng(seed)
    return [gen.uniform(-1, 1, (m, 3)), gen.uniform(-1, 1, (n, 3)),
            gen.uniform(-1, 1, (n, 1)), gen.uniform(-1, 1, 1)]


def numpy_seed(x, y, a, p):
    """The seed formula summed over j, with NumPy broadcasting, by row blocks."""
    weight = np.square(p[0] - a[:, 0])  # (N,)
    rows = max(1, BLOCK_BYTES // (8 * 3 * max(1, y.shape[0])))
    out = np.empty_like(x)
    for i in range(0, x.shape[0], rows):
        block = np.exp(x[i:i + rows, None, :] + y[None, :, :])  # (rows, N, 3)
        out[i:i + rows] = np.einsum("inc,n->ic", block, weight)
    return out


def batch_time(fn, calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls


def rotate(runs: dict, seconds: float) -> tuple[dict, dict]:
    """Per-call times of batches of each of ``runs`` (name -> callable), taking
    turns in a rotating order until each had about ``seconds`` (and at least 5
    batches); a batch is about 50 ms of calls. Returns (times, calls per batch)."""
    calls = {name: max(1, int(0.05 / max(batch_time(fn, 1), 1e-7)))
             for name, fn in runs.items()}
    times: dict[str, list[float]] = {name: [] for name in runs}
    order, spent, turn = list(runs), 0.0, 0
    while spent < seconds * len(runs) or min(len(t) for t in times.values()) < 5:
        for name in order[turn % len(order):] + order[:turn % len(order)]:
            per_call = batch_time(runs[name], calls[name])
            times[name].append(per_call)
            spent += per_call * calls[name]
        turn += 1
    return times, calls


def relative_difference(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / (np.abs(b).max() or 1.0))


def measure(m: int, n: int, seconds: float) -> dict:
    from dredux import Genred

    args = inputs(m, n)
    ours = Genred(FORMULA, ALIASES, reduction_op="Sum", axis=1)
    runs = {"dredux": lambda: ours(*args, backend="cpu"),
            "numpy": lambda: numpy_seed(*args)}
    try:
        from pykeops.numpy import Genred as KeOpsGenred

        theirs = KeOpsGenred(FORMULA, ALIASES, reduction_op="Sum", axis=1)
        runs["pykeops"] = lambda: theirs(*args, backend="CPU")
    except ImportError:
        print("pykeops is not installed: pip install -e '.[bench]'", file=sys.stderr)
    results = {name: fn() for name, fn in runs.items()}  # compiles, excluded
    times, calls = rotate(runs, seconds)
    medians = {name: statistics.median(t) for name, t in times.items()}
    diffs = {name: relative_difference(results[name], results["dredux"]) for name in runs}
    return {"m": m, "n": n, "median": medians, "batches": {k: len(v) for k, v in times.items()},
            "calls": calls, "diff": diffs}


def fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.3f} s"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["30x50", "3000x5000", "20000x20000"],
                        help="M x N of each measurement")
    parser.add_argument("--seconds", type=float, default=2.0,
                        help="timing per library and size (default 2)")
    parser.add_argument("--write", type=Path, help="write a markdown report here")
    args = parser.parse_args(argv)
    lines = []

    def say(text=""):
        print(text, flush=True)
        lines.append(text)

    say(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"load average at start {os.getloadavg()[0]:.2f}")
    say(f"formula: {FORMULA}, Sum over j, float64, NumPy inputs, CPU")
    say()
    say("| M x N | dredux | pykeops | NumPy | dredux / pykeops | dredux / NumPy | "
        "max rel. diff (pykeops, NumPy) | batches x calls |")
    say("|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        m, n = (int(v) for v in size.lower().split("x"))
        r = measure(m, n, args.seconds)
        med = r["median"]
        keops = med.get("pykeops")
        keops_text = fmt_time(keops) if keops else "-"
        ratio_keops = f"{med['dredux'] / keops:.2f}" if keops else "-"
        diffs = ", ".join(f"{r['diff'][k]:.1e}" for k in ("pykeops", "numpy") if k in r["diff"])
        counts = ", ".join(f"{k} {r['batches'][k]} x {r['calls'][k]}" for k in med)
        say(f"| {m:,} x {n:,} | {fmt_time(med['dredux'])} | {keops_text} | "
            f"{fmt_time(med['numpy'])} | {ratio_keops} | {med['dredux'] / med['numpy']:.2f} | "
            f"{diffs} | {counts} |")
    say()
    say(f"load average at end {os.getloadavg()[0]:.2f} (other jobs share this machine)")
    if args.write:
        write_report(args.write, REPORT, "latency.py", argv, lines)
    return 0


REPORT = """# Per-call time: dredux vs pykeops 2.3 vs NumPy

Produced by `{command}` (this file is written by the script).
See the module docstring of `benchmarks/latency.py` for what is timed and how.

{body}
"""

if __name__ == "__main__":
    raise SystemExit(main())
