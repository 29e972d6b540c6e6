"""dredux's CPU backend against pykeops 2.3's CPU backend, in the same run.

    python benchmarks/cpu_vs_keops.py [--quick] [--sizes 30000 100000] [--write FILE]

For each formula, dtype and size, both libraries reduce the same NumPy inputs:
dredux through ``Genred.__call__`` with its default (threaded) scheduler,
KeOps through ``pykeops.numpy.Genred(...)(..., backend="CPU")`` (OpenMP on all
cores). Each library's first call (its compile, on small inputs) is excluded;
the times are medians of ``--repeats`` calls (default 5: dredux's first call at
full size also imports the Dask modules of its graph path, about 0.3 s once
per process, and of 3 calls the median would be the slower of only two
representative ones; KeOps: ``--keops-repeats``, and one call at sizes >=
100,000, where a KeOps call takes minutes). Printed: pairs per second
(M x N / seconds), the ratio dredux / KeOps, and the largest difference
between the two results (they must compute the same thing).

Also measured:

* the FMA peak of this machine: a compiled kernel doing nothing but
  independent vector FMAs on every core at once (flops = 2 per lane per FMA),
  measured at the start, before each Gaussian case and at the end; the
  largest value is the peak (a busy machine only lowers it);
* the Gaussian kernel's achieved GFLOP/s and fraction of that peak, counting
  the floating-point operations dredux's kernel executes per pair (see
  ``GAUSS_FLOPS``: an FMA counts 2, exp counts the operations of its
  polynomial), and, for comparison, with exp counted as 1; then the same
  fraction with each Gaussian call timed between two peak measurements (the
  machine's clock varies with load and turbo: the kernel and its peak are then
  measured in the same state; the median over calls is printed with every
  call's value); and the kernel alone on one thread against one core's peak,
  both timed by the thread's CPU time, which other jobs do not inflate;
* the first-call time of a new formula (fresh cache folder: parse, codegen,
  compile, run) and of a cached formula in a new process, both in a
  subprocess, timed from ``Genred(...)`` to the first result: interpreter
  start-up and imports (dredux and its CPU backend modules) are excluded.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from report import write_report  # noqa: E402

ALIASES = ["x = Vi(3)", "y = Vj(3)", "a = Vj(1)", "p = Pm(1)"]
# name -> (formula, aliases, reduction, axis, opt_arg)
CASES = {
    "gaussian": ("Exp(-p*SqDist(x,y))*a", ALIASES, "Sum", 1, None),
    "seed": ("Square(p-a)*Exp(x+y)", ALIASES, "Sum", 1, None),
    "seed-grad": ("Grad(Square(p-a)*Exp(x+y), y, e)", ALIASES + ["e = Vi(3)"], "Sum", 0, None),
    "logsumexp": ("-p*SqDist(x,y)", ALIASES, "LogSumExp", 1, None),
    "argmin": ("SqDist(x,y)", ALIASES, "ArgMin", 1, None),  # nearest neighbour
    "argkmin": ("SqDist(x,y)", ALIASES, "ArgKMin", 1, 10),
}
INDEX_CASES = ("argmin", "argkmin")  # functions of x and y alone

# Floating-point operations per pair executed by dredux's Gaussian kernel, as
# counted in its compiled j-loop (objdump -d of the cached library; an FMA
# counts 2): x - y: 3 sub; squared norm: 1 mul + 2 FMA = 5; times p: 1 mul;
# times a and the sum: 1 FMA = 2; plus exp (kernels/cpu/math.hpp): x - ln2/2
# 1 sub, k = floor(x log2 e) 1 FMA + 1 sub, r = x - k ln2 2 FMA, the polynomial
# (degree 6 in float32, 11 in float64, Horner: FMAs) and the scaling 1 mul.
# Not counted (they are no flops, but take the same vector ports): exp's
# integer min, shift and range compare, and the compiler's register copies.
EXP_FLOPS = {"float32": 1 + 2 + 1 + 4 + 2 * 6 + 1, "float64": 1 + 2 + 1 + 4 + 2 * 11 + 1}
GAUSS_FLOPS = {dt: 3 + 5 + 1 + 2 + f for dt, f in EXP_FLOPS.items()}

FMA_SOURCE = r"""
#include <chrono>
#include <ctime>
#include <thread>
#include <vector>
static double cpu_seconds() {
    timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}
// flop/s of one thread, by its own CPU time (cpu = 1) or by wall-clock time
// vectors as wide as the target's registers: wider ones are split into several
// registers, and 12 chains of them spill on AVX2 (16 registers)
#if defined(__AVX512F__)
#define VBYTES 64
#elif defined(__AVX__)
#define VBYTES 32
#else
#define VBYTES 16
#endif
template <typename T> static double run(double seconds, int cpu) {
    typedef T V __attribute__((vector_size(VBYTES)));
    const int K = 10;  // independent chains: latency x FMA ports, in registers
    V acc[K];
    for (int k = 0; k < K; ++k) acc[k] = (V){} + (T)(1 + k) * (T)1e-3;
    const V a = (V){} + (T)0.999999, b = (V){} + (T)1e-7;
    long iters = 0;
    const auto w0 = std::chrono::steady_clock::now();
    const double c0 = cpu_seconds();
    double wall = 0;
    while (wall < seconds) {
        for (int rep = 0; rep < 100000; ++rep) {
#pragma GCC unroll 12
            for (int k = 0; k < K; ++k) acc[k] = acc[k] * a + b;
        }
        iters += 100000;
        wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
    }
    const double used = cpu ? cpu_seconds() - c0 : wall;
    volatile T sink = 0;
    for (int k = 0; k < K; ++k) sink = sink + acc[k][0];
    return iters * (double)K * (VBYTES / sizeof(T)) * 2 / used;
}
extern "C" double fma_flops(int threads, double seconds, int dbl, int cpu) {
    std::vector<std::thread> pool;
    std::vector<double> rate(threads);
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] { rate[t] = dbl ? run<double>(seconds, cpu)
                                                 : run<float>(seconds, cpu); });
    double total = 0;
    for (int t = 0; t < threads; ++t) { pool[t].join(); total += rate[t]; }
    return total;
}
"""


def fma_peak(cores: int, folder: Path, cpu_time: bool = False) -> dict:
    """Measured FMA throughput (flop/s) of ``cores`` threads, float32 and float64.

    ``cpu_time``: divide by each thread's CPU time instead of the wall-clock time
    (what one core does while it runs, whatever else shares the machine).
    """
    lib = folder / "fma.so"
    if not lib.exists():
        from dredux.compile.cpp import compiler_command

        src = folder / "fma.cpp"
        src.write_text(FMA_SOURCE)
        subprocess.run([*compiler_command(), "-O2", "-march=native", "-shared", "-fPIC",
                        "-pthread", "-ffp-contract=fast", "-o", str(lib), str(src)],
                       check=True)
    fn = ctypes.CDLL(str(lib)).fma_flops
    fn.restype = ctypes.c_double
    fn.argtypes = [ctypes.c_int, ctypes.c_double, ctypes.c_int, ctypes.c_int]
    return {dt: max(fn(cores, 0.5, int(dt == "float64"), int(cpu_time)) for _ in range(3))
            for dt in ("float32", "float64")}


def paired_roofline(dtype, cores: int, folder: Path, size: int = 30_000,
                    repeats: int = 9) -> list[float]:
    """Fractions of the FMA peak reached by the Gaussian, each from one call timed
    between two peak measurements (their mean is that call's peak), so that
    kernel and peak are measured in the same state of a shared, turbo-boosting
    machine. Returns the fractions, one per call."""
    from dredux import Genred

    formula, aliases, reduction, axis, _ = CASES["gaussian"]
    g = Genred(formula, aliases, reduction_op=reduction, axis=axis)
    args = make_inputs("gaussian", size, dtype)
    lib = folder / "fma.so"
    fn = ctypes.CDLL(str(lib)).fma_flops
    fn.restype = ctypes.c_double
    fn.argtypes = [ctypes.c_int, ctypes.c_double, ctypes.c_int, ctypes.c_int]
    dbl = int(np.dtype(dtype) == np.float64)
    g(*args, backend="cpu")  # compile and warm up
    fractions = []
    before = fn(cores, 0.3, dbl, 0)
    for _ in range(repeats):
        t0 = time.perf_counter()
        g(*args, backend="cpu")
        seconds = time.perf_counter() - t0
        after = fn(cores, 0.3, dbl, 0)
        rate = size * size / seconds * GAUSS_FLOPS[np.dtype(dtype).name]
        fractions.append(rate / ((before + after) / 2))
        before = after
    return fractions


def gaussian_one_thread(dtype, n: int = 30_000, m: int = 2_000) -> float:
    """Pairs per CPU-second of the Gaussian kernel on this thread (median of 5)."""
    from dredux import Genred

    formula, aliases, reduction, axis, _ = CASES["gaussian"]
    g = Genred(formula, aliases, reduction_op=reduction, axis=axis)
    x, y, a, p = make_inputs("gaussian", n, dtype)
    kernel = g.kernel("cpu", dtype)
    kernel([x[:m]], [y, a], [p], m, n, 0)  # compile
    times = []
    for _ in range(5):
        t0 = time.thread_time()
        kernel([x[:m]], [y, a], [p], m, n, 0)
        times.append(time.thread_time() - t0)
    return m * n / float(np.median(times))


def make_inputs(case: str, size: int, dtype, seed: int = 0) -> list:
    gen = np.random.default_rng(seed)
    m = n = size
    arrays = [gen.random((m, 3)), gen.random((n, 3)), gen.random((n, 1)),
              np.array([0.5])]
    if case == "seed-grad":
        arrays.append(gen.random((m, 3)))
    if case in INDEX_CASES:
        arrays = [arrays[0], arrays[1]]
    return [a.astype(dtype) for a in arrays]


def aliases_for(case: str) -> list:
    formula, aliases, *_ = CASES[case]
    return aliases[:2] if case in INDEX_CASES else aliases


def timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), out


def difference(a, b) -> str:
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind == "i":
        return f"{np.mean(a == b.astype(a.dtype)) * 100:.2f}% equal idx"
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    scale = np.abs(b64).max() or 1.0
    return f"rel.diff {np.abs(a64 - b64).max() / scale:.1e}"


def run_case(case, dtype, size, repeats, keops_repeats) -> dict:
    from pykeops.numpy import Genred as KeOpsGenred

    from dredux import Genred

    formula, _, reduction, axis, opt_arg = CASES[case]
    aliases = aliases_for(case)
    args = make_inputs(case, size, dtype)
    ours = Genred(formula, aliases, reduction_op=reduction, axis=axis, opt_arg=opt_arg)
    theirs = KeOpsGenred(formula, aliases, reduction_op=reduction, axis=axis, opt_arg=opt_arg)
    small = make_inputs(case, 1000, dtype, seed=1)
    ours(*small, backend="cpu")  # compile (excluded)
    t_ours, out_ours = timed(lambda: ours(*args, backend="cpu"), repeats)
    theirs(*small, backend="CPU")  # compile (excluded)
    t_keops, out_keops = timed(lambda: theirs(*args, backend="CPU"), keops_repeats)
    pairs = size * size
    return {"case": case, "dtype": np.dtype(dtype).name, "size": size,
            "dredux_s": t_ours, "keops_s": t_keops, "dredux_pps": pairs / t_ours,
            "keops_pps": pairs / t_keops, "ratio": t_keops / t_ours,
            "agreement": difference(out_ours, out_keops), "keops_repeats": keops_repeats}


CHILD = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    sys.path.insert(0, {root!r})
    import dredux
    import dredux.codegen.cpp, dredux.compile.cpp, dredux.compile.cache  # imports excluded
    from dredux import Genred
    gen = np.random.default_rng(0)
    x, y, a, p = gen.random((1000, 3)), gen.random((1000, 3)), gen.random((1000, 1)), gen.random(1)
    t0 = time.perf_counter()
    g = Genred({formula!r}, {aliases!r}, axis=1)
    out = g(x, y, a, p, backend="cpu")
    t1 = time.perf_counter()
    print(json.dumps({{"seconds": t1 - t0, "built": dredux.compile.cache.build_count()}}))
""")


def first_calls(cache_dir: Path) -> dict:
    """Seconds from Genred(...) to the first result in new processes: new, then cached."""
    formula = CASES["gaussian"][0]  # new to the fresh cache folder of the first process
    env = dict(os.environ, DREDUX_CACHE_DIR=str(cache_dir))
    script = CHILD.format(root=str(ROOT), formula=formula, aliases=ALIASES)
    out = {}
    for label in ("new formula, empty cache", "cached formula, new process",
                  "cached formula, new process (again)"):
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                              text=True, check=True)
        out[label] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="sizes 5,000 and 10,000 instead of 30,000 and 100,000")
    parser.add_argument("--sizes", type=int, nargs="+")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--cases", nargs="+", default=list(CASES))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--keops-repeats", type=int, default=3)
    parser.add_argument("--write", type=Path, help="write a markdown report here")
    args = parser.parse_args(argv)
    sizes = args.sizes or ([5_000, 10_000] if args.quick else [30_000, 100_000])
    cores = os.cpu_count() or 1

    import dask

    from dredux.compile.cpp import compile_flags

    lines = []

    def say(text=""):
        print(text, flush=True)
        lines.append(text)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        dask.config.set({"dredux.cache-dir": str(tmp / "cache")})
        load_start = os.getloadavg()
        say(f"machine: {platform.processor() or platform.machine()}, {cores} cores; "
            f"load average at start {load_start[0]:.2f}")
        say(f"dredux flags: {' '.join(shlex.quote(f) for f in compile_flags())}")
        say("load: 1-minute load average when the row finished (2 = both cores busy)")
        say()
        # the peak is measured several times (other jobs share the machine) and the
        # largest value is used: it is the machine's capability, not its load
        peaks = [fma_peak(cores, tmp)]
        say("| case | dtype | M = N | dredux pairs/s | KeOps pairs/s | dredux / KeOps | "
            "results agree | load |")
        say("|---|---|---|---|---|---|---|---|")
        results = []
        for size in sizes:
            for dtype in args.dtypes:
                for case in args.cases:
                    if case == "gaussian":
                        peaks.append(fma_peak(cores, tmp))
                    k_rep = 1 if size >= 100_000 else args.keops_repeats
                    r = run_case(case, np.dtype(dtype), size, args.repeats, k_rep)
                    results.append(r)
                    note = "" if k_rep > 1 else " (1 KeOps call)"
                    say(f"| {case} | {dtype} | {size:,} | {r['dredux_pps']:.3e} | "
                        f"{r['keops_pps']:.3e}{note} | {r['ratio']:.1f}x | "
                        f"{r['agreement']} | {os.getloadavg()[0]:.1f} |")
        peaks.append(fma_peak(cores, tmp))
        peak = {dt: max(p[dt] for p in peaks) for dt in ("float32", "float64")}
        say()
        for dt in ("float32", "float64"):
            seen = ", ".join(f"{p[dt] / 1e9:.0f}" for p in peaks)
            say(f"FMA peak {dt} ({cores} threads): {peak[dt] / 1e9:.1f} GFLOP/s "
                f"(largest of {len(peaks)} measurements: {seen})")
        for r in results:
            if r["case"] != "gaussian":
                continue
            flops = GAUSS_FLOPS[r["dtype"]]
            achieved = r["dredux_pps"] * flops
            conservative = r["dredux_pps"] * (flops - EXP_FLOPS[r["dtype"]] + 1)
            say(f"Gaussian {r['dtype']} M=N={r['size']:,}: {flops} flops/pair -> "
                f"{achieved / 1e9:.1f} GFLOP/s = {achieved / peak[r['dtype']] * 100:.0f}% "
                f"of the FMA peak (exp as 1 flop: {conservative / 1e9:.1f} GFLOP/s, "
                f"{conservative / peak[r['dtype']] * 100:.0f}%)")
        say()
        for dt in args.dtypes:
            fractions = paired_roofline(np.dtype(dt), cores, tmp)
            say(f"Gaussian {dt} M=N=30,000, each call between two FMA-peak measurements "
                f"({cores} threads): median {np.median(fractions) * 100:.0f}% of the FMA "
                f"peak (calls: {', '.join(f'{f * 100:.0f}' for f in fractions)})")
        say()
        core_peak = fma_peak(1, tmp, cpu_time=True)
        for dt in ("float32", "float64"):
            rate = gaussian_one_thread(np.dtype(dt))
            flops = GAUSS_FLOPS[dt]
            say(f"Gaussian {dt} kernel on one thread, by CPU time (robust to load): "
                f"{rate:.3e} pairs/s -> {rate * flops / 1e9:.1f} GFLOP/s = "
                f"{rate * flops / core_peak[dt] * 100:.0f}% of one core's FMA peak "
                f"({core_peak[dt] / 1e9:.1f} GFLOP/s by CPU time)")
        say()
        calls = first_calls(tmp / "first-call-cache")
        for label, info in calls.items():
            say(f"first call, {label}: {info['seconds'] * 1e3:.0f} ms "
                f"(kernels compiled in that process: {info['built']})")
        load_end = os.getloadavg()
        say(f"load average at end {load_end[0]:.2f} (other jobs share this machine)")
    if args.write:
        write_report(args.write, REPORT, "cpu_vs_keops.py", argv, lines)
    return 0


REPORT = """# CPU backend: dredux vs KeOps 2.3

Produced by `{command}` (this file is written by the script).
See the module docstring of `benchmarks/cpu_vs_keops.py` for what is timed and how.

```text
{body}
```
"""

if __name__ == "__main__":
    raise SystemExit(main())
