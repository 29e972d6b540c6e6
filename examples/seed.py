"""The seed example: a KeOps-style forward reduction and its gradient.

Runs ``Sum_j Square(p - a_j) * Exp(x_i + y_j)`` (axis=1) and its gradient with
respect to y (axis=0) in float32 and float64, and prints the relative error of
each against the NumPy expression computed in float64.

    python examples/seed.py [--backend auto|cpu|numpy|gpu]
"""

import argparse
import time

import numpy as np

from dredux import Genred

ALIASES = ["x = Vi(3)", "y = Vj(3)", "a = Vj(1)", "p = Pm(1)"]


def numpy_forward(x, y, a, p):
    return (np.square(p - a)[None, :, :] * np.exp(x[:, None, :] + y[None, :, :])).sum(1)


def numpy_gradient(x, y, a, p, e):
    return (np.square(p - a)[None, :, :] * np.exp(x[:, None, :] + y[None, :, :])
            * e[:, None, :]).sum(0)


def relative_error(out, ref):
    return float(np.abs(out.astype(np.float64) - ref).max() / np.abs(ref).max())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="auto")
    args = parser.parse_args(argv)

    forward = Genred("Square(p-a)*Exp(x+y)", ALIASES, reduction_op="Sum", axis=1)
    gradient = Genred("Grad(Square(p-a)*Exp(x+y), y, e)", ALIASES + ["e = Vi(3)"],
                      reduction_op="Sum", axis=0)
    rng = np.random.default_rng(0)
    worst = 0.0
    for m, n in ((30, 50), (3000, 5000)):
        x, y = rng.random((m, 3)), rng.random((n, 3))
        a, p, e = rng.random((n, 1)), rng.random(1), rng.random((m, 3))
        ref_c = numpy_forward(x, y, a, p)
        ref_g = numpy_gradient(x, y, a, p, e)
        for dtype in (np.float32, np.float64):
            cast = [v.astype(dtype) for v in (x, y, a, p, e)]
            start = time.perf_counter()
            c = forward(*cast[:4], backend=args.backend)
            g = gradient(*cast, backend=args.backend)
            seconds = time.perf_counter() - start
            err_c, err_g = relative_error(c, ref_c), relative_error(g, ref_g)
            worst = max(worst, err_c, err_g) if dtype == np.float32 else worst
            print(f"M={m:5d} N={n:5d} {np.dtype(dtype).name:8s} forward rel.err "
                  f"{err_c:.2e}  gradient rel.err {err_g:.2e}  ({seconds:.3f} s)")
    ok = worst < 1e-5
    print(f"float32 worst relative error {worst:.2e}: {'OK' if ok else 'TOO LARGE'} "
          "(target < 1e-5)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
