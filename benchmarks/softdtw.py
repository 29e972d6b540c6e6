"""Soft-DTW on the CPU backend: a soft-DTW kernel sum against NumPy and KeOps.

The row is a kernel sum over time series, the shape of soft-DTW kernels and
barycentre gradients,

    out_i = sum_j SoftDTW_gamma(x_i, y_j) b_j,      x_i, y_j series of L values,

written as KeOps users write it: ``(Vi(x).softdtw_sqdist(Vj(y), gamma) * Vj(b)).sum(1)``
(``--grad``: its gradient in x, ``Grad`` of the same sum, the backward pass).
Timed in the same run, on the same arrays:

* dredux, CPU backend (compiled on a small call first, outside the timing);
* a NumPy baseline: the soft-DTW recursion vectorised over a block of pairs
  (each of the L x L cells one array operation on the block's 65,536 pairs),
  at ``--base-size`` rows and columns (it is slower), as a rate; the value
  only (``--grad`` rows have none);
* pykeops 2.3's CPU backend, same expression, at ``--keops-size``, as a rate.
  Its values are wrong when the columns differ (tests/unit/test_special.py
  shows it): the rate is reported, not the result.

Each time is the median of ``--repeats`` runs; the check column is the largest
relative difference of dredux to the float64 baseline on the first rows.
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

PAIRS_PER_BLOCK = 1 << 16
CHECK_ROWS = 16
GAMMA = 0.5

REPORT = """# Soft-DTW on the CPU backend: dredux vs NumPy vs KeOps 2.3

Produced by `{command}` (this file is written by the script).
See the module docstring of `benchmarks/softdtw.py` for what is timed and how.

```text
{body}
```
"""


def inputs(m: int, n: int, length: int, dtype, seed: int = 0):
    gen = np.random.default_rng(seed)
    x = np.cumsum(gen.standard_normal((m, length)), axis=1) / np.sqrt(length)
    y = np.cumsum(gen.standard_normal((n, length)), axis=1) / np.sqrt(length)
    b = gen.uniform(0, 1, (n, 1))
    return x.astype(dtype), y.astype(dtype), b.astype(dtype)


def baseline(x, y, b, gamma=GAMMA):
    """sum_j SoftDTW(x_i, y_j) b_j, the recursion vectorised over blocks of pairs."""
    m, length = x.shape
    out = np.empty((m, 1), dtype=x.dtype)
    rows = max(1, PAIRS_PER_BLOCK // y.shape[0])
    for start in range(0, m, rows):
        xb = x[start:start + rows]
        prev = None  # column j - 1 of the grid, for every pair: (length, rows, n)
        for j in range(length):
            d = (xb[:, None, :] - y[None, :, j, None]) ** 2  # (rows, n, length) over i
            col = np.empty((length,) + d.shape[:2], dtype=x.dtype)
            for i in range(length):
                if j == 0:
                    col[i] = d[..., i] + (col[i - 1] if i else 0)
                elif i == 0:
                    col[i] = d[..., i] + prev[0]
                else:
                    a, c, e = prev[i - 1], prev[i], col[i - 1]
                    low = np.minimum(np.minimum(a, c), e)
                    total = (np.exp((low - a) / gamma) + np.exp((low - c) / gamma)
                             + np.exp((low - e) / gamma))
                    col[i] = d[..., i] + low - gamma * np.log(total)
            prev = col
        out[start:start + rows] = prev[-1] @ b
    return out


def row(module, x, y, b, grad: bool):
    xi = module.Vi(x)
    value = xi.softdtw_sqdist(module.Vj(y), module.Pm(np.array([GAMMA], dtype=x.dtype)))
    total = value * module.Vj(b)
    if grad:
        return total.grad(xi, module.Vi(np.ones((x.shape[0], 1), dtype=x.dtype))).sum(1)
    return total.sum(1)


def rate(fn, pairs: int, repeats: int) -> tuple[float | None, str]:
    try:
        seconds, _ = timed(fn, repeats)
        return pairs / seconds, ""
    except Exception as exc:  # a benchmark row, not a test: report and go on
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:100]}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4_000, help="M = N of dredux")
    parser.add_argument("--base-size", type=int, default=512)
    parser.add_argument("--keops-size", type=int, default=2_000)
    parser.add_argument("--lengths", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--grad", action="store_true", help="also time the gradient in x")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-keops", action="store_true")
    parser.add_argument("--write", type=Path)
    args = parser.parse_args(argv)

    import dredux.numpy as dn

    lines = [f"machine: {platform.machine()}, {os.cpu_count()} cores; dredux at M = N = "
             f"{args.size}, NumPy at {args.base_size}, KeOps at {args.keops_size}; "
             f"gamma = {GAMMA}; medians of {args.repeats}",
             f"{'dtype':8} {'L':>4} {'row':6} {'dredux pairs/s':>15} {'numpy pairs/s':>14} "
             f"{'x numpy':>8} {'keops pairs/s':>14} {'x keops':>8}  check"]
    print("\n".join(lines), flush=True)
    for dtype in args.dtypes:
        for length in args.lengths:
            x, y, b = inputs(args.size, args.size, length, dtype)
            base = None
            for grad in (False, True) if args.grad else (False,):
                row(dn, *inputs(64, 64, length, dtype, seed=1), grad)  # compile (excluded)
                t_ours, out = timed(lambda: row(dn, x, y, b, grad), args.repeats)
                ours = args.size ** 2 / t_ours
                check = ""
                if not grad:
                    k = args.base_size
                    base, _ = rate(lambda: baseline(x[:k], y[:k], b[:k]), k * k, args.repeats)
                    ref = baseline(x[:CHECK_ROWS].astype(np.float64), y.astype(np.float64),
                                   b.astype(np.float64))
                    diff = np.abs(out[:CHECK_ROWS] - ref).max() / np.abs(ref).max()
                    check = f"rel.diff {diff:.1e}"
                theirs, why = None, "skipped"
                if not args.no_keops:
                    import pykeops.numpy as pk

                    k = args.keops_size
                    try:
                        row(pk, *inputs(64, 64, length, dtype, seed=1), grad)  # compile
                    except Exception as exc:
                        theirs, why = None, f"{type(exc).__name__}: {str(exc)[:80]}"
                    else:
                        theirs, why = rate(lambda: row(pk, x[:k], y[:k], b[:k], grad), k * k, 1)
                line = (f"{dtype:8} {length:>4} {'grad' if grad else 'value':6} {ours:15.3e} "
                        f"{rate_and_ratio(ours, None if grad else base)} "
                        f"{rate_and_ratio(ours, theirs)}  {check}"
                        + (f" ({why})" if why and why != "skipped" else ""))
                print(line, flush=True)
                lines.append(line)
    if args.write:
        write_report(args.write, REPORT, "softdtw.py", argv, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
