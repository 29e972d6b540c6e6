"""Kernels built on Powf, SinXDivX and Asin, CPU backend: dredux vs NumPy vs KeOps.

The rows are kernel matrix-vector products ``out_i = sum_j k(|x_i - y_j|^2) b_j``
as KeOps users write them with LazyTensors (``D2 = ((Vi(x) - Vj(y)) ** 2).sum()``):

* cauchy: ``(1 + D2 / 2) ** -1.5 * b``, the rational quadratic (Student-t)
  kernel, a ``Powf`` of every pair;
* truncated: ``(1 - D2 / 4).relu() ** 2.5 * b``, a truncated power (compactly
  supported) kernel: a ``Powf`` of a ``ReLU``;
* sinc: ``(2 * D2).sinxdivx() * b``;
* haversine: ``(-2 * hav.sqrt().asin()).exp() * b`` on points of the sphere
  (latitude, longitude; D = 2), ``hav = sin^2(dlat / 2) + cos lat_i cos lat_j
  sin^2(dlon / 2)``: the exponential kernel of the great-circle distance, an
  ``Asin`` of every pair (and two sines and two cosines).

Three implementations are timed in the same run, on the same arrays:

* dredux: the LazyTensor expression, CPU backend (compiled on a small call
  first, outside the timing);
* a blocked NumPy baseline: the squared distances of a block of 2,048 rows by
  ``|x|^2 + |y|^2 - 2 x y^T`` (a GEMM), NumPy's element-wise function, then a
  matrix-vector product (haversine: NumPy's functions on the block's pairs);
  at ``--numpy-size`` (as a rate: it is slower);
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

REPORT = """# Kernels of Powf, SinXDivX and Asin on the CPU backend: dredux vs NumPy vs KeOps 2.3

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


def _haversine(xi, xj):
    lat_i, lon_i, lat_j, lon_j = xi[0], xi[1], xj[0], xj[1]
    hav = ((lat_i - lat_j) / 2).sin() ** 2 + lat_i.cos() * lat_j.cos() * (
        (lon_i - lon_j) / 2).sin() ** 2
    return (-2 * hav.sqrt().asin()).exp()


def _np_haversine(xb, y):
    lat_i, lon_i = xb[:, :1], xb[:, 1:]
    lat_j, lon_j = y[:, 0][None], y[:, 1][None]
    hav = np.sin((lat_i - lat_j) / 2) ** 2 + np.cos(lat_i) * np.cos(lat_j) * np.sin(
        (lon_i - lon_j) / 2) ** 2
    return np.exp(-2 * np.arcsin(np.sqrt(hav)))


def _radial(fn):
    """(the LazyTensor kernel of points, NumPy's of a block and y) for fn(D2)."""
    def lazy_kernel(xi, xj):
        return fn(((xi - xj) ** 2).sum())

    def numpy_kernel(xb, y):
        d2 = (xb * xb).sum(1)[:, None] + (y * y).sum(1)[None] - 2 * (xb @ y.T)
        return fn(np.maximum(d2, 0))

    return lazy_kernel, numpy_kernel


# name: (the LazyTensor kernel of Vi(x), Vj(y); NumPy's of a block of x and y;
# the dimension D, or None for --dims)
CASES = {"cauchy": (*_radial(_cauchy), None),
         "truncated": (_radial(_truncated)[0], _radial(_np_truncated)[1], None),
         "sinc": (_radial(_sinc)[0], _radial(_np_sinc)[1], None),
         "haversine": (_haversine, _np_haversine, 2)}


def inputs(m: int, n: int, d: int, dtype, seed: int = 0):
    """Points in [-1, 1]^D / sqrt(D) (D2 of order 1 whatever D: every branch of
    the kernels runs; for haversine, latitudes and longitudes of a region of
    the sphere), and weights."""
    gen = np.random.default_rng(seed)
    scale = 1.0 / np.sqrt(d)
    x = (gen.uniform(-1, 1, (m, d)) * scale).astype(dtype)
    y = (gen.uniform(-1, 1, (n, d)) * scale).astype(dtype)
    b = gen.standard_normal((n, 1)).astype(dtype)
    return x, y, b


def lazy(module, case: str, x, y, b):
    return (CASES[case][0](module.Vi(x), module.Vj(y)) * module.Vj(b)).sum(axis=1)


def baseline(case: str, x, y, b):
    fn = CASES[case][1]
    out = np.empty((x.shape[0], 1), dtype=b.dtype)
    for start in range(0, x.shape[0], BLOCK):
        out[start:start + BLOCK] = fn(x[start:start + BLOCK], y) @ b
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
            for d in [CASES[case][2]] if CASES[case][2] else args.dims:
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
