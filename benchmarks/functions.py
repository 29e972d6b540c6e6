"""Radial kernels built on Powf and SinXDivX, CPU backend: dredux vs NumPy vs KeOps.

The rows are kernel matrix-vector products ``out_i = sum_j k(|x_i - y_j|^2) b_j``
as KeOps users write them with LazyTensors (``D2 = ((Vi(x) - Vj(y)) ** 2).sum()``):

* cauchy: ``(1 + D2 / 2) ** -1.5 * b``, the rational quadratic (Student-t)
  kernel, a ``Powf`` of every pair;
* truncated: ``(1 - D2 / 4).relu() ** 2.5 * b``, a truncated power (compactly
  supported) kernel: a ``Powf`` of a ``ReLU``;
* sinc: ``(2 * D2).sinxdivx() * b``.

Three implementations are timed in the same run, on the same arrays:

* dredux: the LazyTensor expression, CPU backend (compiled on a small call
  first, outside the timing);
* a blocked NumPy baseline: the squared distances of a block of 2,048 rows by
  ``|x|^2 + |y|^2 - 2 x y^T`` (a GEMM), NumPy's element-wise function, then a
  matrix-vector product; at ``--numpy-size`` (as a rate: it is slower);
* pykeops 2.3's CPU backend, with the same LazyTensor expression (at
  ``--keops-size``).

Each time is the median of ``--repeats`` runs; the script prints pairs per
second, the ratios to NumPy and to KeOps, and the largest relative difference
to the float64 NumPy result over the first rows. ``--write`` saves the table.
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

REPORT = """# Radial kernels of Powf and SinXDivX on the CPU backend: dredux vs NumPy vs KeOps 2.3

Produced by `{command}` (this file is written by the script).
See the module docstring of `benchmarks/functions.py` for what is timed and how.

```text
{body}
```
"""


def _cauchy(d2):
    return (1 + d2 / 2) ** -1.5


def _truncated(d2):
    return (1 - d2 / 4).relu() ** 2.5


def _sinc(d2):
    return (2 * d2).sinxdivx()


def _np_truncated(d2):
    return np.maximum(1 - d2 / 4, 0) ** 2.5


def _np_sinc(d2):
    t = 2 * d2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(t == 0, 1, np.sin(t) / t)


# name: (the LazyTensor function of D2, NumPy's)
CASES = {"cauchy": (_cauchy, _cauchy), "truncated": (_truncated, _np_truncated),
         "sinc": (_sinc, _np_sinc)}


def inputs(m: int, n: int, d: int, dtype, seed: int = 0):
    gen = np.random.default_rng(seed)
    scale = 1.0 / np.sqrt(d)  # D2 of order 1 whatever D: every branch of the kernels runs
    x = (gen.uniform(-1, 1, (m, d)) * scale).astype(dtype)
    y = (gen.uniform(-1, 1, (n, d)) * scale).astype(dtype)
    b = gen.standard_normal((n, 1)).astype(dtype)
    return x, y, b


def lazy(module, case: str, x, y, b):
    d2 = ((module.Vi(x) - module.Vj(y)) ** 2).sum()
    return (CASES[case][0](d2) * module.Vj(b)).sum(axis=1)


def baseline(case: str, x, y, b):
    fn = CASES[case][1]
    out = np.empty((x.shape[0], 1), dtype=b.dtype)
    yy = (y * y).sum(1)
    for start in range(0, x.shape[0], BLOCK):
        xb = x[start:start + BLOCK]
        d2 = np.maximum((xb * xb).sum(1)[:, None] + yy[None] - 2 * (xb @ y.T), 0)
        out[start:start + BLOCK] = fn(d2) @ b
    return out


def keops_rate(case, x, y, b, repeats: int) -> tuple[float | None, str]:
    try:
        import pykeops.numpy as pk

        lazy(pk, case, x[:200], y[:200], b[:200])  # compile
        seconds, _ = timed(lambda: lazy(pk, case, x, y, b), repeats)
        return x.shape[0] * y.shape[0] / seconds, ""
    except Exception as exc:  # a benchmark row, not a test: report and go on
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:100]}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20_000, help="M = N of dredux")
    parser.add_argument("--numpy-size", type=int, default=8_000)
    parser.add_argument("--keops-size", type=int, default=5_000)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--dims", type=int, nargs="+", default=[3, 16])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-keops", action="store_true")
    parser.add_argument("--write", type=Path)
    args = parser.parse_args(argv)

    import dredux.numpy as dn

    lines = [f"machine: {platform.machine()}, {os.cpu_count()} cores; dredux at M = N = "
             f"{args.size}, NumPy at {args.numpy_size}, KeOps at {args.keops_size}; "
             f"medians of {args.repeats}",
             f"{'dtype':8} {'case':10} {'D':>3} {'dredux pairs/s':>15} {'numpy pairs/s':>14} "
             f"{'x numpy':>8} {'keops pairs/s':>14} {'x keops':>8}  check"]
    print("\n".join(lines), flush=True)
    for dtype in args.dtypes:
        for case in args.cases:
            for d in args.dims:
                x, y, b = inputs(args.size, args.size, d, dtype)
                lazy(dn, case, *inputs(500, 500, d, dtype, seed=1))  # compile (excluded)
                t_ours, out = timed(lambda: lazy(dn, case, x, y, b), args.repeats)
                k = args.numpy_size
                t_base, _ = timed(lambda: baseline(case, x[:k], y[:k], b[:k]), args.repeats)
                ref = baseline(case, x[:CHECK_ROWS].astype(np.float64), y.astype(np.float64),
                               b.astype(np.float64))
                diff = np.abs(out[:CHECK_ROWS] - ref).max() / np.abs(ref).max()
                ours, base = args.size ** 2 / t_ours, k * k / t_base
                if args.no_keops:
                    theirs, why = None, "skipped"
                else:
                    k = args.keops_size
                    theirs, why = keops_rate(case, x[:k], y[:k], b[:k], 1)
                line = (f"{dtype:8} {case:10} {d:>3} {ours:15.3e} {base:14.3e} "
                        f"{ours / base:8.1f} {rate_and_ratio(ours, theirs)}  rel.diff {diff:.1e}"
                        + (f" ({why})" if why and why != "skipped" else ""))
                print(line, flush=True)
                lines.append(line)
    if args.write:
        write_report(args.write, REPORT, "functions.py", argv, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
