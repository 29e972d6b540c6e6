"""dredux's GPU backend against pykeops 2.3 on the same GPU, in the same run.

    python3 benchmarks/gpu_vs_keops.py [--out FILE] [--repeats 3] [--quick]

For each case both libraries reduce the same NumPy float32 inputs on the same
device: KeOps through ``pykeops.numpy.Genred(...)(..., backend="GPU")``,
dredux through ``Genred(...)(..., backend="gpu")`` (it copies each task's
blocks to the device and returns NumPy, like KeOps). Both use fast maths
(KeOps's default ``use_fast_math=True``; dredux's ``use_fast_math=True``);
dredux is also timed with its default precise maths, and with the inputs
already on the device as CuPy arrays (CuPy result, the device synchronised
before the clock stops). Each library's first call (its
compile) is excluded; times are medians of ``--repeats`` calls. Printed:
pairs per second (M x N / seconds), the speed ratio dredux / KeOps (> 1: dredux
faster), the largest difference to dredux's precise result (they must compute
the same thing: the run fails above 1e-3), and the fraction of the device's
float32 peak.

Peak: the theoretical float32 rate, SMs x FP32 lanes per SM x 2 (an FMA is two
flops) x the SM clock the driver reports; also measured, by a CuPy kernel
doing nothing but independent FMAs on every SM. The fraction is computed
against the theoretical peak (against the measured one when the lane count
of the architecture is not in ``FP32_LANES``). Flops per pair count what the
formula asks for, one per add, subtract or multiply and one per exp (an exp
costs several instructions, so these fractions understate the work done):
the Gaussian of dimension D is 3D + 3 (D subtractions, D squares, D - 1 adds,
a negation, exp, the product by b and the accumulation), the seed formula 14.

Without a CUDA device (or CuPy) the script stops with an error and exit
status 2; when KeOps fails on a case, its row says why and the exit status is 1.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GAUSS = "Exp(-SqDist(x, y)) * b"
SEED = "Square(p-a)*Exp(x+y)"


def gauss_case(d: int, size: int) -> dict:
    return {"formula": GAUSS, "aliases": [f"x = Vi({d})", f"y = Vj({d})", "b = Vj(1)"],
            "shapes": lambda m, n: [(m, d), (n, d), (n, 1)], "size": size,
            "flops": 3 * d + 3, "dim": d, "scale": 1 / np.sqrt(d)}


CASES = {
    "gaussian D=3": gauss_case(3, 10**6),
    "seed Square(p-a)*Exp(x+y)": {
        "formula": SEED, "aliases": ["x = Vi(3)", "y = Vj(3)", "a = Vj(1)", "p = Pm(1)"],
        "shapes": lambda m, n: [(m, 3), (n, 3), (n, 1), (1,)], "size": 10**6, "flops": 14,
        "dim": 3, "scale": 1.0},
    "seed gradient Grad(., x, e)": {
        "formula": f"Grad({SEED}, x, e)",
        "aliases": ["x = Vi(3)", "y = Vj(3)", "a = Vj(1)", "p = Pm(1)", "e = Vi(3)"],
        "shapes": lambda m, n: [(m, 3), (n, 3), (n, 1), (1,), (m, 3)], "size": 10**6,
        "flops": 26, "dim": 3, "scale": 1.0},
    "LogSumExp D=3": {
        "formula": "-SqDist(x, y)", "aliases": ["x = Vi(3)", "y = Vj(3)"],
        "shapes": lambda m, n: [(m, 3), (n, 3)], "size": 10**6, "flops": 12, "dim": 3,
        "scale": 1.0, "reduction": "LogSumExp"},
    "ArgKMin K=10 D=3": {
        "formula": "SqDist(x, y)", "aliases": ["x = Vi(3)", "y = Vj(3)"],
        "shapes": lambda m, n: [(m, 3), (n, 3)], "size": 200_000, "flops": 9, "dim": 3,
        "scale": 1.0, "reduction": "ArgKMin", "opt_arg": 10},
    "gaussian D=64": gauss_case(64, 200_000),
    "gaussian D=256": gauss_case(256, 100_000),
    "gaussian D=1024": gauss_case(1024, 50_000),
    # wide outputs: the streamed sums (an output loop per tile, one state update
    # per tile and component); flops: the Gaussian's 3D + 2, then D products and
    # D accumulations (convolution), or D subtractions, products and
    # accumulations (the gradient wrt x)
    "gaussian convolution D=256 (v = Vj(256))": {
        "formula": "Exp(-SqDist(x, y)) * v",
        "aliases": ["x = Vi(256)", "y = Vj(256)", "v = Vj(256)"],
        "shapes": lambda m, n: [(m, 256), (n, 256), (n, 256)], "size": 30_000,
        "flops": 5 * 256 + 2, "dim": 256, "scale": 1 / 16},
    "gaussian gradient wrt x D=256": {
        "formula": "Grad(Exp(-SqDist(x, y)) * b, x, e)",
        "aliases": ["x = Vi(256)", "y = Vj(256)", "b = Vj(1)", "e = Vi(1)"],
        "shapes": lambda m, n: [(m, 256), (n, 256), (n, 1), (m, 1)], "size": 30_000,
        "flops": 6 * 256 + 2, "dim": 256, "scale": 1 / 16},
    # a full D x D metric (SPD): MatVecMult as one contraction per output
    # component on the GPU (dredux/codegen/products.py); flops: D^2 products and
    # accumulations, D subtractions, D products and accumulations, the exp
    "gaussian full metric D=32 (WeightedSqDist)": {
        "formula": "Exp(-WeightedSqDist(s, x, y)) * b",
        "aliases": ["x = Vi(32)", "y = Vj(32)", "b = Vj(1)", "s = Pm(1024)"],
        "shapes": lambda m, n: [(m, 32), (n, 32), (n, 1), (1024,)], "size": 20_000,
        "flops": 2 * 32 * 32 + 3 * 32 + 3, "dim": 32, "scale": 1 / np.sqrt(32),
        "metric": True},
}

# FP32 lanes per SM by compute capability (NVIDIA's CUDA programming guide)
FP32_LANES = {(6, 0): 64, (7, 0): 64, (7, 5): 64, (8, 0): 64, (8, 6): 128, (8, 7): 128,
              (8, 9): 128, (9, 0): 128, (10, 0): 128, (10, 3): 128, (12, 0): 128}

FMA_KERNEL = r"""
extern "C" __global__ void fma_peak(float* out, int iters) {
    float a0 = threadIdx.x, a1 = a0 + 1, a2 = a0 + 2, a3 = a0 + 3;
    float a4 = a0 + 4, a5 = a0 + 5, a6 = a0 + 6, a7 = a0 + 7;
    const float b = 0.999999f, c = 1e-7f;
    for (int k = 0; k < iters; ++k) {
        a0 = fmaf(a0, b, c); a1 = fmaf(a1, b, c); a2 = fmaf(a2, b, c); a3 = fmaf(a3, b, c);
        a4 = fmaf(a4, b, c); a5 = fmaf(a5, b, c); a6 = fmaf(a6, b, c); a7 = fmaf(a7, b, c);
    }
    out[blockIdx.x * blockDim.x + threadIdx.x] = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
}
"""


def require_gpu():
    """The cupy module; exits with status 2 and a message when there is no GPU."""
    def fail(why: str):
        print(f"error: benchmarks/gpu_vs_keops.py needs a CUDA GPU and CuPy: {why}",
              file=sys.stderr)
        sys.exit(2)

    try:
        import cupy
    except ImportError as exc:
        fail(f"CuPy is not installed ({exc})")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        fail(f"no usable CUDA device ({type(exc).__name__}: {exc})")
    if count < 1:
        fail("CuPy sees no CUDA device")
    return cupy


def device_info(cp) -> dict:
    props = cp.cuda.runtime.getDeviceProperties(0)
    attr = cp.cuda.runtime.deviceGetAttribute
    rt = cp.cuda.runtime
    sms = int(attr(rt.cudaDevAttrMultiProcessorCount, 0))
    cc = (int(props["major"]), int(props["minor"]))
    try:
        clock_hz = int(attr(rt.cudaDevAttrClockRate, 0)) * 1000
    except Exception:
        clock_hz = 0
    lanes = FP32_LANES.get(cc)
    theory = sms * lanes * 2 * clock_hz if lanes and clock_hz else None
    name = props["name"]
    return {"name": name.decode() if isinstance(name, bytes) else str(name), "cc": cc,
            "sms": sms, "clock_hz": clock_hz, "lanes": lanes, "theory": theory}


def measured_peak(cp, sms: int) -> float:
    """float32 flop/s of a kernel of independent FMAs (8 chains per thread)."""
    kernel = cp.RawKernel(FMA_KERNEL, "fma_peak")
    blocks, threads, iters = sms * 32, 256, 20_000
    out = cp.empty(blocks * threads, dtype=cp.float32)
    kernel((blocks,), (threads,), (out, np.int32(iters)))  # compile, warm up
    best = 0.0
    for _ in range(3):
        start, stop = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        kernel((blocks,), (threads,), (out, np.int32(iters)))
        stop.record()
        stop.synchronize()
        seconds = cp.cuda.get_elapsed_time(start, stop) / 1e3
        best = max(best, blocks * threads * iters * 8 * 2 / seconds)
    return best


def timed(fn, repeats: int, sync=None) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        if sync is not None:
            sync()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), out


def first(out):
    return out[0] if isinstance(out, tuple) else out


def run_case(cp, label: str, case: dict, size: int, repeats: int) -> dict:
    from dredux import Genred

    m = n = size
    rng = np.random.default_rng(0)
    args = [(rng.uniform(-1, 1, s) * (case["scale"] if k < 2 else 1)).astype(np.float32)
            for k, s in enumerate(case["shapes"](m, n))]
    if case.get("metric"):  # the last argument: a symmetric positive definite matrix
        d = case["dim"]
        q = rng.uniform(-1, 1, (d, d)) / d
        args[-1] = (q @ q.T + np.eye(d)).astype(np.float32).ravel()
    row = {"case": label, "M": m, "N": n, "flops": case["flops"]}
    sync = cp.cuda.Device().synchronize
    red = {"reduction_op": case.get("reduction", "Sum"), "axis": 1}
    if "opt_arg" in case:
        red["opt_arg"] = case["opt_arg"]
    fast = Genred(case["formula"], case["aliases"], use_fast_math=True, **red)  # KeOps's
    precise = Genred(case["formula"], case["aliases"], **red)
    fast(*args, backend="gpu")  # compile
    row["dredux_s"], out_fast = timed(lambda: fast(*args, backend="gpu"), repeats)
    precise(*args, backend="gpu")
    row["dredux_precise_s"], out_precise = timed(lambda: precise(*args, backend="gpu"),
                                                 repeats)
    device_args = [cp.asarray(a) for a in args]
    fast(*device_args, backend="gpu")
    sync()
    row["dredux_cupy_s"], out_dev = timed(lambda: fast(*device_args, backend="gpu"),
                                          repeats, sync)
    ref = np.asarray(first(out_precise))
    row["fast_diff"] = rel_diff(first(out_fast), ref)
    row["dredux_cupy_diff"] = rel_diff(cp.asnumpy(first(out_dev)), first(out_fast))
    try:
        from pykeops.numpy import Genred as KeOpsGenred

        theirs = KeOpsGenred(case["formula"], case["aliases"], **red)
        theirs(*args, backend="GPU")  # compile
        row["keops_s"], out_keops = timed(lambda: theirs(*args, backend="GPU"), repeats)
        row["diff"] = rel_diff(first(out_keops), ref)
    except Exception as exc:  # reported in the table and by the exit status
        traceback.print_exc()
        row["keops_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    return row


def rel_diff(a, ref) -> float:
    """Largest difference relative to the largest magnitude; for index outputs
    (K-NN), the fraction of indices that differ."""
    if np.issubdtype(np.asarray(ref).dtype, np.integer):
        a = np.asarray(a).reshape(np.shape(ref)).astype(np.int64)
        return float(np.mean(a != ref))
    a = np.asarray(a, np.float64)
    return float(np.abs(a - ref).max() / (np.abs(ref).max() or 1.0))


def fmt_rate(x: float) -> str:
    return f"{x:.3e}"


def table(rows: list, info: dict, peak_used: float, peak_kind: str, measured: float,
          repeats: int) -> str:
    lines = [
        "# dredux GPU backend vs pykeops 2.3 (same GPU, same inputs, same run)",
        "",
        f"* date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; host "
        f"{platform.node()}",
        f"* device: {info['name']} (compute capability {info['cc'][0]}.{info['cc'][1]}, "
        f"{info['sms']} SMs, SM clock {info['clock_hz'] / 1e9:.2f} GHz)",
        "* float32 peak: theoretical "
        + (f"{info['theory'] / 1e12:.1f} TFLOP/s ({info['sms']} SMs x {info['lanes']} lanes "
           f"x 2 x clock)" if info["theory"] else "unknown")
        + f"; measured FMA kernel {measured / 1e12:.1f} TFLOP/s; fractions below use the "
        f"{peak_kind} peak",
        f"* times: medians of {repeats} calls after a first (compiling) call; float32 "
        "NumPy inputs for both libraries; reductions over j (axis=1)",
        "* both libraries with fast maths (KeOps's default use_fast_math=True; dredux "
        "use_fast_math=True); dredux's default precise maths in its own column",
        "* flops per pair: Gaussian 3D + 3, seed formula 14, its gradient 26, LogSumExp "
        "12, ArgKMin 9 (exp counted as one flop); K-NN differences: fraction of indices "
        "that differ",
        "",
        "| case | M = N | KeOps s | dredux s | ratio dredux/KeOps | KeOps pairs/s | "
        "dredux pairs/s | dredux s, CuPy in | dredux s, precise maths | KeOps % peak | "
        "dredux % peak | dredux % peak, CuPy in | max rel. diff KeOps |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        pairs = row["M"] * row["N"]
        ours = pairs / row["dredux_s"]
        frac = ours * row["flops"] / peak_used * 100
        frac_dev = pairs / row["dredux_cupy_s"] * row["flops"] / peak_used * 100
        if "keops_s" in row:
            theirs = pairs / row["keops_s"]
            keops = [f"{row['keops_s']:.4f}", f"{row['dredux_s']:.4f}",
                     f"**{ours / theirs:.2f}**", fmt_rate(theirs)]
            tail = [f"{theirs * row['flops'] / peak_used * 100:.1f}", f"{frac:.1f}",
                    f"{frac_dev:.1f}", f"{row['diff']:.1e}"]
        else:
            keops = [f"failed: {row['keops_error']}", f"{row['dredux_s']:.4f}", "-", "-"]
            tail = ["-", f"{frac:.1f}", f"{frac_dev:.1f}", "-"]
        cells = keops + [fmt_rate(ours), f"{row['dredux_cupy_s']:.4f}",
                         f"{row['dredux_precise_s']:.4f}"] + tail
        lines.append(f"| {row['case']} | {row['M']:,} | " + " | ".join(cells) + " |")
    lines += ["", "Ratios > 1: dredux faster. Differences are relative to dredux's precise "
              "result (largest absolute difference / largest magnitude). Columns with "
              "NumPy inputs include the host-device copies and Dask's scheduling (as for "
              "KeOps's NumPy interface); the CuPy-in column is the device-resident time. "
              "KeOps compiles with --use_fast_math (flush-to-zero, approximate division "
              "and sqrt everywhere); dredux's fast maths swaps exp, log, sin, cos and "
              "division only."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" /
                                             "gpu_vs_keops.md"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true",
                        help="sizes / 10 (a smoke run; not the reported numbers)")
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    opts = parser.parse_args(argv)
    cp = require_gpu()
    info = device_info(cp)
    measured = measured_peak(cp, info["sms"])
    peak_used, peak_kind = ((info["theory"], "theoretical") if info["theory"]
                            else (measured, "measured"))
    print(f"device {info['name']}: theoretical peak "
          f"{(info['theory'] or 0) / 1e12:.1f} TFLOP/s, measured {measured / 1e12:.1f}",
          flush=True)
    rows = []
    out = Path(opts.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for label in opts.cases:
        case = CASES[label]
        size = case["size"] // 10 if opts.quick else case["size"]
        row = run_case(cp, label, case, size, opts.repeats)
        rows.append(row)
        print({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in row.items()},
              flush=True)
        # rewritten after every case, so a run cut short still leaves its rows
        text = table(rows, info, peak_used, peak_kind, measured, opts.repeats)
        out.write_text(text)
    print(text)
    print(f"written to {out}")
    status = 0
    for row in rows:
        if "keops_error" in row:
            print(f"error: KeOps failed on {row['case']}: {row['keops_error']}",
                  file=sys.stderr)
            status = 1
        elif max(row["diff"], row["fast_diff"]) > 1e-3 or row["dredux_cupy_diff"] > 1e-5:
            print(f"error: results differ on {row['case']}: KeOps {row['diff']:.1e}, "
                  f"fast maths {row['fast_diff']:.1e}, CuPy-in "
                  f"{row['dredux_cupy_diff']:.1e}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
