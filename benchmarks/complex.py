"""Complex LazyTensors on the CPU backend: a direct Fourier sum against NumPy and KeOps.

The row is the direct (non-uniform) Fourier sum of a complex signal,

    out_i = sum_j exp(1j <x_i, y_j>) b_j,      x_i, y_j in R^D, b_j complex,

written as KeOps users write it: ``((Vi(x) | Vj(y)).exp1j() * Vj(b)).sum(axis=1)``.
Three implementations are timed in the same run, on the same arrays:

* dredux: the LazyTensor expression above, CPU backend (the kernel is compiled
  on a small call first, outside the timing);
* a blocked NumPy baseline: ``np.exp(1j * (x_blk @ y.T)) @ b`` per block of
  2,048 rows (a GEMM for the phases, NumPy's complex exp, a complex matrix-vector
  product), never holding more than one block of the M x N matrix;
* pykeops 2.3's CPU backend, with the same LazyTensor expression (at
  ``--keops-size``, as a rate: it is slower).

Each time is the median of ``--repeats`` runs; the script prints pairs per
second and the ratios to the baseline and to KeOps, and the largest relative
difference to the baseline over the first rows. ``--write`` saves the table.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from cpu_vs_keops import timed  # noqa: E402
from report import rate_and_ratio, write_report  # noqa: E402

BLOCK = 2048
CHECK_ROWS = 256

REPORT = """# Complex LazyTensors on the CPU backend: dredux vs NumPy vs KeOps 2.3

Produced by `{command}` (this file is written by the script).
See the module docstring of `benchmarks/complex.py` for what is timed and how.

```text
{body}
```
"""


def inputs(m: int, n: int, d: int, e: int, dtype, seed: int = 0):
    gen = np.random.default_rng(seed)
    real = np.dtype(dtype)
    cplx = np.complex64 if real == np.float32 else np.complex128
    x = gen.uniform(-2, 2, (m, d)).astype(real)
    y = gen.uniform(-2, 2, (n, d)).astype(real)
    b = (gen.standard_normal((n, e)) + 1j * gen.standard_normal((n, e))).astype(cplx)
    return x, y, b


def baseline(x, y, b):
    out = np.empty((x.shape[0], b.shape[1]), dtype=b.dtype)
    for start in range(0, x.shape[0], BLOCK):
        stop = start + BLOCK
        out[start:stop] = np.exp(1j * (x[start:stop] @ y.T).astype(b.dtype)) @ b
    return out


def fourier(module, x, y, b):
    return ((module.Vi(x) | module.Vj(y)).exp1j() * module.Vj(b)).sum(axis=1)


def keops_rate(x, y, b, repeats: int) -> tuple[float | None, str]:
    try:
        import pykeops.numpy as pk

        fourier(pk, x[:200], y[:200], b[:200])  # compile
        seconds, _ = timed(lambda: fourier(pk, x, y, b), repeats)
        return x.shape[0] * y.shape[0] / seconds, ""
    except Exception as exc:  # a benchmark row, not a test: report and go on
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:100]}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20_000, help="M = N")
    parser.add_argument("--keops-size", type=int, default=5_000)
    parser.add_argument("--dims", type=int, nargs="+", default=[1, 3, 16])
    parser.add_argument("--widths", type=int, nargs="+", default=[1, 4],
                        help="complex components of b")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-keops", action="store_true")
    parser.add_argument("--write", type=Path)
    args = parser.parse_args(argv)

    import dredux.numpy as dn

    lines = [f"machine: {platform.machine()}, {os.cpu_count()} cores; M = N = {args.size}, "
             f"KeOps at M = N = {args.keops_size}; medians of {args.repeats}",
             f"{'dtype':8} {'D':>4} {'E':>3} {'dredux pairs/s':>15} {'numpy pairs/s':>14} "
             f"{'x numpy':>8} {'keops pairs/s':>14} {'x keops':>8}  check"]
    print("\n".join(lines), flush=True)
    for dtype in args.dtypes:
        for d in args.dims:
            for e in args.widths:
                x, y, b = inputs(args.size, args.size, d, e, dtype)
                fourier(dn, *inputs(500, 500, d, e, dtype, seed=1))  # compile (excluded)
                t_ours, out = timed(lambda: fourier(dn, x, y, b), args.repeats)
                t_base, _ = timed(lambda: baseline(x, y, b), args.repeats)
                ref = baseline(x[:CHECK_ROWS].astype(np.float64), y.astype(np.float64),
                               b.astype(np.complex128))
                diff = np.abs(out[:CHECK_ROWS] - ref).max() / np.abs(ref).max()
                pairs = args.size * args.size
                ours, base = pairs / t_ours, pairs / t_base
                if args.no_keops:
                    theirs, why = None, "skipped"
                else:
                    k = args.keops_size
                    theirs, why = keops_rate(x[:k], y[:k], b[:k], 1)
                line = (f"{dtype:8} {d:>4} {e:>3} {ours:15.3e} {base:14.3e} {ours / base:8.1f} "
                        f"{rate_and_ratio(ours, theirs)}  rel.diff {diff:.1e}"
                        + (f" ({why})" if why and why != "skipped" else ""))
                print(line, flush=True)
                lines.append(line)
    if args.write:
        write_report(args.write, REPORT, "complex.py", argv, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
