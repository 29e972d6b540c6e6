"""dredux's CPU backend at high dimensions, against BLAS, pykeops and the FMA peak.

    python benchmarks/highdim.py [--quick] [--size 20000] [--dims 16 64 256]
                                 [--dtypes float32 float64] [--write FILE]

(``--dims``, ``--knn-dims``, ``--conv-dims``, ``--aniso-dims``, ``--colmat-dims`` and
``--lap-dims`` given without values skip their cases.)

Cases, on inputs x_i, y_j ~ N(0, I/D) (so that |x_i - y_j|^2 is about 2 and the
Gaussian's values are neither 0 nor 1), b_j ~ U(0, 1):

* ``gaussian``: the Gaussian matvec ``Exp(-SqDist(x,y))*b``, ``Sum`` over j,
  at each D of ``--dims``;
* ``knn``: ``SqDist(x,y)`` with ``ArgKMin``, K = 10, at D = ``--knn-dims``;
* ``conv``: the Gaussian convolution of a D-channel signal
  ``Exp(-SqDist(x,y))*v``, v_j ~ N(0, I) of dimension D, at D = ``--conv-dims``
  (an output of D components: the streamed sums). Its baseline's second
  step is a GEMM too (``exp(-dist) @ v``), and its FMA fraction counts two
  multiply-adds per dimension per pair (the distance and the output). The
  issue's targets do not name this case; its last column says so;
* ``grad``: the gradient of the Gaussian matvec wrt x,
  ``Grad(Exp(-SqDist(x,y))*b, x, e)``, e_i = 1, at D = ``--conv-dims``; its
  baseline computes ``K = exp(-dist) * b^T`` by blocks and then
  ``-2 (K.sum(1) x - K @ y)`` (a GEMM); also two multiply-adds per dimension
  per pair, also without a target;
* ``aniso``: the anisotropic Gaussian matvec ``Exp(-WeightedSqDist(s,x,y))*b``
  with a full D x D metric ``s = Pm(D*D)`` (symmetric positive definite,
  eigenvalues about 1), at D = ``--aniso-dims`` and M = N = ``--aniso-size``
  (its product costs D^2 multiply-adds per pair, which its FMA fraction
  counts); its baseline expands the quadratic form (``x S x + y S y - 2 (x S)
  y^T``, one GEMM per block), which a user of NumPy would write and which
  loses the accuracy of near points; no target either;
* ``anisograd``: the gradient of the anisotropic Gaussian wrt x,
  ``Grad(Exp(-WeightedSqDist(s,x,y))*b, x, e)``, e_i = 1, at D =
  ``--aniso-dims`` and M = N = ``--aniso-size``: dredux sums ``c_ij (x_i -
  y_j)`` and multiplies by S once per row after the sum (dredux/linear.py),
  so D^2 + D multiply-adds per pair are counted; its baseline computes ``K =
  exp(-|u|_S^2) * b^T`` by blocks as ``aniso`` does, then ``-2 (K.sum(1) x -
  K @ y) S`` (S symmetric); no target;
* ``colmat``: a product with one D x D matrix per column,
  ``Exp(-SqNorm2(MatVecMult(a,x-y)))*b`` with ``a = Vj(D*D)`` (entries
  N(0, 1/D)), at D = ``--colmat-dims`` and M = N = ``--colmat-size`` (D^2
  multiply-adds per pair, as counted); its baseline computes the pairs'
  products block by block as batched GEMMs (``matmul`` of the (N, B, D)
  differences by the N transposed matrices), the only exact form; no target;
* ``laplacian``: the Laplacian of the Gaussian wrt x, summed against b,
  ``Laplacian(Exp(-SqDist(x,y)), x)*b``, at D = ``--lap-dims``: its baseline
  is the analytic ``(4 |u|^2 - 2 D) exp(-|u|^2) @ b`` on the blocked GEMM's
  distances, and its FMA fraction counts one multiply-add per dimension per
  pair (the distance); no target.

Measured in the same run, on the same inputs:

* dredux: ``Genred(...)(x, y, b)`` with its default CPU backend and threaded
  scheduler (every core); its first call (the compile) is excluded, the time
  is the median of ``--repeats`` calls (one full-size call of another formula
  comes first: it imports the modules of the Dask graph path, once per
  process);
* a blocked NumPy/BLAS baseline: per block of 2,048 rows, the squared
  distances by one GEMM (``|x|^2 + |y|^2 - 2 x y^T``), then ``exp`` and a
  matvec (Gaussian) or ``argpartition`` and a sort of the K candidates
  (K-NN); NumPy's BLAS uses every core (the thread count is printed when
  threadpoolctl is installed);
* pykeops 2.3's CPU backend, at ``--keops-size`` (its CPU backend runs about
  2e7 pairs/s at D = 64: a full-size call would take minutes), one call after
  its compile; compared in pairs per second;
* the FMA peak of the machine (``cpu_vs_keops.fma_peak``: vector FMAs on
  every core, largest of three), in multiply-adds per second; dredux's
  fraction of it counts one multiply-add per dimension per pair.

The results are checked against float64 NumPy on the first 256 rows: the
largest relative difference of the Gaussian, and for the K-NN the largest
difference between the distances of the returned neighbours and the K
smallest distances (indices of equal distances may differ).

The targets of the project (issue "high-dimensional kernels") are printed
as a last column: float32, dredux >= 3x the baseline and >= 20x pykeops,
>= 40 % of the FMA peak at D = 64 and 256; float64 >= 2x the baseline.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from cpu_vs_keops import fma_peak, timed  # noqa: E402
from report import write_report  # noqa: E402

BLOCK = 2048  # rows per block of the BLAS baseline
K = 10
CHECK_ROWS = 256

REPORT = """# CPU backend at high dimensions: dredux vs BLAS vs KeOps 2.3

Produced by `{command}` (this file is written by the script).
See the module docstring of `benchmarks/highdim.py` for what is timed and how.

```text
{body}
```
"""


def case_spec(case: str, d: int) -> tuple[str, list[str], str, int | None]:
    if case == "gaussian":
        return "Exp(-SqDist(x,y))*b", [f"x = Vi({d})", f"y = Vj({d})", "b = Vj(1)"], "Sum", None
    if case == "conv":
        return "Exp(-SqDist(x,y))*v", [f"x = Vi({d})", f"y = Vj({d})", f"v = Vj({d})"], "Sum", None
    if case == "grad":
        return ("Grad(Exp(-SqDist(x,y))*b, x, e)",
                [f"x = Vi({d})", f"y = Vj({d})", "b = Vj(1)", "e = Vi(1)"], "Sum", None)
    if case == "aniso":
        return ("Exp(-WeightedSqDist(s,x,y))*b",
                [f"x = Vi({d})", f"y = Vj({d})", "b = Vj(1)", f"s = Pm({d * d})"], "Sum", None)
    if case == "anisograd":
        return ("Grad(Exp(-WeightedSqDist(s,x,y))*b, x, e)",
                [f"x = Vi({d})", f"y = Vj({d})", "b = Vj(1)", f"s = Pm({d * d})", "e = Vi(1)"],
                "Sum", None)
    if case == "laplacian":
        return ("Laplacian(Exp(-SqDist(x,y)), x)*b", [f"x = Vi({d})", f"y = Vj({d})", "b = Vj(1)"],
                "Sum", None)
    if case == "colmat":
        return ("Exp(-SqNorm2(MatVecMult(a,x-y)))*b",
                [f"x = Vi({d})", f"y = Vj({d})", "b = Vj(1)", f"a = Vj({d * d})"], "Sum", None)
    return "SqDist(x,y)", [f"x = Vi({d})", f"y = Vj({d})"], "ArgKMin", K


def inputs(case: str, m: int, n: int, d: int, dtype, seed: int = 0) -> list[np.ndarray]:
    gen = np.random.default_rng(seed)
    x = gen.standard_normal((m, d)) / np.sqrt(d)
    y = gen.standard_normal((n, d)) / np.sqrt(d)
    if case in ("aniso", "anisograd"):
        q = gen.standard_normal((d, d))
        s = (q @ q.T / d + np.eye(d)) / 2
        extra = [np.ones((m, 1))] if case == "anisograd" else []
        return [a.astype(dtype) for a in (x, y, gen.random((n, 1)), s.ravel(), *extra)]
    if case == "colmat":
        a = gen.standard_normal((n, d * d)) / np.sqrt(d)
        return [v.astype(dtype) for v in (x, y, gen.random((n, 1)), a)]
    arrays = [x, y] + ([gen.random((n, 1))] if case in ("gaussian", "laplacian") else
                       [gen.standard_normal((n, d))] if case == "conv" else
                       [gen.random((n, 1)), np.ones((m, 1))] if case == "grad" else [])
    return [a.astype(dtype) for a in arrays]


def colmat_values(x, y, a, b) -> np.ndarray:
    """``sum_j exp(-|A_j (x_i - y_j)|^2) b_j`` by blocks of rows, each a batched
    GEMM over the columns (at most ~32 MiB of differences per block)."""
    n, d = y.shape
    mats = a.reshape(n, d, d).transpose(0, 2, 1)  # u @ A_j^T = (A_j u)^T
    rows = max(1, (32 << 20) // (n * d * x.itemsize))
    outs = []
    for i in range(0, len(x), rows):
        u = (x[i:i + rows][None, :, :] - y[:, None, :])  # (N, B, D)
        v = np.matmul(u, mats)
        outs.append(np.exp(-(v * v).sum(-1)).T @ b)
    return np.concatenate(outs)


def baseline(case: str, args: list[np.ndarray]) -> np.ndarray:
    """Blocked NumPy: one GEMM per block of rows, then the epilogue."""
    x, y = args[0], args[1]
    if case == "colmat":
        return colmat_values(x, y, args[3], args[2])
    if case in ("aniso", "anisograd"):  # S symmetric: |u|_S^2 = x S x + y S y - 2 (x S) y^T
        metric = args[3].reshape(len(x[0]), -1)
        yy = ((y @ metric) * y).sum(1)
    else:
        metric, yy = None, (y * y).sum(1)
    outs = []
    for i in range(0, len(x), BLOCK):
        xb = x[i:i + BLOCK]
        xs = xb if metric is None else xb @ metric
        dist = xs @ y.T
        dist *= -2
        dist += (xs * xb).sum(1)[:, None]
        dist += yy[None, :]
        if case in ("gaussian", "conv", "aniso"):
            np.exp(-dist, out=dist)
            outs.append(dist @ args[2])
        elif case == "laplacian":
            outs.append(((4 * dist - 2 * x.shape[1]) * np.exp(-dist)) @ args[2])
        elif case in ("grad", "anisograd"):
            np.exp(-dist, out=dist)
            dist *= args[2][:, 0][None, :]
            grad = -2 * (dist.sum(1)[:, None] * xb - dist @ y)
            outs.append(grad if metric is None else grad @ metric)
        else:
            near = np.argpartition(dist, K, axis=1)[:, :K]
            order = np.argsort(np.take_along_axis(dist, near, 1), axis=1)
            outs.append(np.take_along_axis(near, order, 1))
    return np.concatenate(outs)


def check(case: str, args: list[np.ndarray], out: np.ndarray) -> float:
    """Largest relative difference against float64 NumPy on the first rows."""
    x, y = (a.astype(np.float64) for a in args[:2])
    x = x[:CHECK_ROWS]
    if case == "colmat":
        ref = colmat_values(x, y, args[3].astype(np.float64), args[2].astype(np.float64))
        return float(np.abs(out[:CHECK_ROWS] - ref).max() / np.abs(ref).max())
    metric = None
    if case in ("aniso", "anisograd"):  # float64 keeps the expanded form's error small
        metric = args[3].astype(np.float64).reshape(len(x[0]), -1)
        dist = (((x @ metric) * x).sum(1)[:, None] + ((y @ metric) * y).sum(1)[None]
                - 2 * (x @ metric) @ y.T)
    else:
        dist = (x * x).sum(1)[:, None] + (y * y).sum(1)[None] - 2 * x @ y.T
    if case in ("grad", "anisograd"):
        k = np.exp(-dist) * args[2][:, 0].astype(np.float64)[None, :]
        ref = -2 * (k.sum(1)[:, None] * x - k @ y)
        ref = ref if metric is None else ref @ metric
        return float(np.abs(out[:CHECK_ROWS] - ref).max() / np.abs(ref).max())
    if case in ("gaussian", "conv", "aniso"):
        ref = np.exp(-dist) @ args[2].astype(np.float64)
        return float(np.abs(out[:CHECK_ROWS] - ref).max() / np.abs(ref).max())
    if case == "laplacian":
        ref = ((4 * dist - 2 * x.shape[1]) * np.exp(-dist)) @ args[2].astype(np.float64)
        return float(np.abs(out[:CHECK_ROWS] - ref).max() / np.abs(ref).max())
    got = np.take_along_axis(dist, np.asarray(out[:CHECK_ROWS], np.int64), 1)
    best = np.sort(dist, 1)[:, :K]
    return float(np.abs(got - best).max() / np.abs(best).max())


def keops_rate(case: str, d: int, dtype, size: int) -> tuple[float | None, str]:
    """pykeops's CPU backend, pairs per second (None and the reason if it fails)."""
    try:
        from pykeops.numpy import Genred as KeOpsGenred

        formula, aliases, reduction, opt_arg = case_spec(case, d)
        routine = KeOpsGenred(formula, aliases, reduction_op=reduction, axis=1, opt_arg=opt_arg)
        routine(*inputs(case, 200, 200, d, dtype, seed=1), backend="CPU")  # compile
        args = inputs(case, size, size, d, dtype)
        seconds, _ = timed(lambda: routine(*args, backend="CPU"), 1)
        return size * size / seconds, ""
    except Exception as exc:  # a benchmark row, not a test: report and go on
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:100]}"


def targets(case: str, dtype: str, d: int, vs_base: float, vs_keops: float | None,
            peak: float) -> str:
    if case in ("conv", "grad", "aniso", "anisograd", "colmat", "laplacian"):
        return "(no target)"
    checks = []
    if dtype == "float32":
        checks.append(("3x BLAS", vs_base >= 3))
        if vs_keops is not None:
            checks.append(("20x KeOps", vs_keops >= 20))
        if d in (64, 256):
            checks.append(("40% peak", peak >= 0.4))
    else:
        checks.append(("2x BLAS", vs_base >= 2))
    return ", ".join(f"{name} {'ok' if ok else 'MISSED'}" for name, ok in checks)


def blas_threads() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    return ", ".join(f"{i.get('internal_api')} {i.get('num_threads')} threads"
                     for i in threadpool_info() if i.get("user_api") == "blas") or "none found"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="M = N = 4,000, KeOps at 2,000, D = 16 and 64")
    parser.add_argument("--size", type=int, default=20_000, help="M = N")
    parser.add_argument("--keops-size", type=int, default=5_000)
    parser.add_argument("--dims", type=int, nargs="*", default=[16, 64, 256])
    parser.add_argument("--knn-dims", type=int, nargs="*", default=[64])
    parser.add_argument("--conv-dims", type=int, nargs="*", default=[64, 256])
    parser.add_argument("--aniso-dims", type=int, nargs="*", default=[16, 32, 64])
    parser.add_argument("--aniso-size", type=int, default=6_000,
                        help="M = N of the aniso rows (D^2 work per pair)")
    parser.add_argument("--colmat-dims", type=int, nargs="*", default=[16, 32, 64])
    parser.add_argument("--colmat-size", type=int, default=2_000,
                        help="M = N of the colmat rows (D^2 work per pair)")
    parser.add_argument("--lap-dims", type=int, nargs="*", default=[16, 64])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-keops", action="store_true")
    parser.add_argument("--write", type=Path, help="write a markdown report here")
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.keops_size, args.dims, args.knn_dims = 4_000, 2_000, [16, 64], [64]
        args.conv_dims, args.aniso_dims, args.aniso_size = [64], [16, 32], 2_000
        args.colmat_dims, args.colmat_size = [16, 32], 1_000

    from dredux import Genred
    from dredux.compile.cpp import compile_flags

    lines: list[str] = []

    def say(text=""):
        print(text, flush=True)
        lines.append(text)

    cores = os.cpu_count() or 1
    say(f"machine: {platform.processor() or platform.machine()}, {cores} cores; "
        f"load average at start {os.getloadavg()[0]:.2f}")
    say(f"dredux flags: {' '.join(shlex.quote(f) for f in compile_flags())}")
    say(f"NumPy {np.__version__}, BLAS: {blas_threads()}")
    with tempfile.TemporaryDirectory() as tmp:
        peaks = [fma_peak(cores, Path(tmp)) for _ in range(2)]
    # flop/s -> multiply-adds per second; the largest measurement is the capability
    peak = {dt: max(p[dt] for p in peaks) / 2 for dt in ("float32", "float64")}
    say(f"FMA peak ({cores} threads): float32 {peak['float32']:.3g}, "
        f"float64 {peak['float64']:.3g} multiply-adds/s")
    say(f"M = N = {args.size:,} (KeOps at {args.keops_size:,}; aniso rows: M = N = "
        f"{args.aniso_size:,}, KeOps at {min(args.keops_size, args.aniso_size):,}; colmat "
        f"rows: M = N = {args.colmat_size:,}, KeOps at "
        f"{min(args.keops_size, args.colmat_size):,}); medians of {args.repeats} calls")
    say()
    say("| case | dtype | D | dredux pairs/s | BLAS pairs/s | KeOps pairs/s | "
        "dredux / BLAS | dredux / KeOps | FMA peak | rel. error | targets |")
    say("|---|---|---|---|---|---|---|---|---|---|---|")
    rows = ([("gaussian", d) for d in args.dims] + [("knn", d) for d in args.knn_dims]
            + [(case, d) for case in ("conv", "grad") for d in args.conv_dims]
            + [(case, d) for case in ("aniso", "anisograd") for d in args.aniso_dims]
            + [("colmat", d) for d in args.colmat_dims]
            + [("laplacian", d) for d in args.lap_dims])
    # the first call at full size imports the modules of dredux's Dask graph path
    # (about 0.3 s, once per process): one such call, excluded, comes first
    formula, aliases, reduction, _ = case_spec("gaussian", 4)
    Genred(formula, aliases, reduction_op=reduction, axis=1)(
        *inputs("gaussian", args.size, args.size, 4, "float32"))
    for dtype in args.dtypes:
        for case, d in rows:
            formula, aliases, reduction, opt_arg = case_spec(case, d)
            routine = Genred(formula, aliases, reduction_op=reduction, axis=1, opt_arg=opt_arg)
            size = {"aniso": args.aniso_size, "anisograd": args.aniso_size,
                    "colmat": args.colmat_size}.get(case, args.size)
            data = inputs(case, size, size, d, dtype)
            routine(*inputs(case, 300, 300, d, dtype, seed=1))  # compile (excluded)
            t_ours, out = timed(lambda: routine(*data), args.repeats)
            baseline(case, [a[:BLOCK] for a in data[:1]] + data[1:])  # warm up
            t_base, _ = timed(lambda: baseline(case, data), args.repeats)
            pairs = size * size
            ours, base = pairs / t_ours, pairs / t_base
            theirs, why = (None, "skipped") if args.no_keops else keops_rate(
                case, d, dtype, min(args.keops_size, size))
            fmas = (d * d if case in ("aniso", "colmat") else d * d + d if case == "anisograd"
                    else 2 * d if case in ("conv", "grad") else d)
            fraction = ours * fmas / peak[dtype]
            vs_keops = ours / theirs if theirs else None
            say(f"| {case} | {dtype} | {d} | {ours:.3g} | {base:.3g} | "
                f"{f'{theirs:.3g}' if theirs else why} | {ours / base:.2f}x | "
                f"{f'{vs_keops:.1f}x' if vs_keops else '-'} | {fraction * 100:.0f}% | "
                f"{check(case, data, out):.1e} | "
                f"{targets(case, dtype, d, ours / base, vs_keops, fraction)} |")
    say()
    say(f"load average at end {os.getloadavg()[0]:.2f} (other jobs share this machine)")
    if args.write:
        write_report(args.write, REPORT, "highdim.py", argv, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
