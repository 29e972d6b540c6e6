"""Reproduce the polynomial coefficients of kernels/cpu/math.hpp.

    python kernels/cpu/fit_coefficients.py

Each polynomial interpolates its function at the Chebyshev nodes of its
interval, solved in 60-digit decimal arithmetic (close to the minimax
polynomial of that degree), and the script prints the coefficients, the
largest relative error of the polynomial on a fine grid, and whether
math.hpp holds the same numbers.

* exp: e^r on [0, ln2] (the kernel's range reduction takes k = floor(x log2 e),
  see math.hpp), degree 6 (float) and 11 (double).
* log: with s = f / (2 + f), log(1 + f) = f - s (f - z P(z)), z = s^2, where
  P(z) = (2 atanh(s) / s - 2) / z on z in [0, (3 - 2 sqrt 2)^2] (the range of
  z for 1 + f in [sqrt(1/2), sqrt(2))); degree 3 (float) and 6 (double).
* atan: atan u = u + u z P(z), z = u^2, P on z in [0, tan(pi/8)^2] of degree
  6 (float, computed in double), on [0, (7/16)^2] of degree 10 (double).
* asin: asin a = a + a z Q(z), z = a^2, Q on z in [0, 1/4]; degree 7 (float,
  in double) and 12 (double).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, getcontext
from pathlib import Path

getcontext().prec = 60


def _power(x: Decimal, k: int) -> Decimal:
    return x ** k if k else Decimal(1)


def _solve(matrix, rhs):
    """Gauss-Jordan elimination with partial pivoting, in Decimal."""
    n = len(rhs)
    rows = [row[:] + [b] for row, b in zip(matrix, rhs)]
    for c in range(n):
        pivot = max(range(c, n), key=lambda r: abs(rows[r][c]))
        rows[c], rows[pivot] = rows[pivot], rows[c]
        for r in range(n):
            if r != c:
                factor = rows[r][c] / rows[c][c]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[c])]
    return [rows[r][n] / rows[r][r] for r in range(n)]


def fit(fn, lo: float, hi: float, degree: int) -> list[Decimal]:
    """Monomial coefficients of the interpolant of ``fn`` at Chebyshev nodes."""
    nodes = [Decimal((lo + hi) / 2 + (hi - lo) / 2 * math.cos(math.pi * (2 * i + 1)
                                                            / (2 * (degree + 1))))
             for i in range(degree + 1)]
    matrix = [[_power(x, k) for k in range(degree + 1)] for x in nodes]
    return _solve(matrix, [fn(x) for x in nodes])


def _poly(coefs, x):
    return sum(c * _power(x, k) for k, c in enumerate(coefs))


def atanh_p(z: Decimal) -> Decimal:
    if z == 0:
        return Decimal(2) / 3
    s = z.sqrt()
    return (((1 + s) / (1 - s)).ln() / s - 2) / z


def _series(u: Decimal, coefficient) -> Decimal:
    """sum_k coefficient(k) u^(2k + 1) until the terms are below 1e-70."""
    total, power, k = Decimal(0), u, 0
    while True:
        term = coefficient(k) * power
        if abs(term) < Decimal(10) ** -70:
            return total
        total += term
        power *= u * u
        k += 1


def atan_p(z: Decimal) -> Decimal:
    if z == 0:
        return Decimal(-1) / 3
    u = z.sqrt()
    atan = _series(u, lambda k: Decimal((-1) ** k) / (2 * k + 1))
    return (atan / u - 1) / z


def asin_q(z: Decimal) -> Decimal:
    if z == 0:
        return Decimal(1) / 6
    a = z.sqrt()
    # (2k)! / (4^k k!^2 (2k + 1))
    asin = _series(a, lambda k: Decimal(math.comb(2 * k, k)) / (4 ** k * (2 * k + 1)))
    return (asin / a - 1) / z


def main() -> None:
    text = (Path(__file__).with_name("math.hpp")).read_text()
    in_header = {float(m) for m in re.findall(r"[-+]?\d+\.\d+(?:e[-+]?\d+)?", text)}
    ln2 = float(Decimal(2).ln())
    z_max = (3 - 2 * math.sqrt(2)) ** 2
    jobs = [("exp, float", lambda x: x.exp(), 0.0, ln2, 6, lambda x: x.exp()),
            ("exp, double", lambda x: x.exp(), 0.0, ln2, 11, lambda x: x.exp()),
            ("log P, float", atanh_p, 0.0, z_max * 1.0001, 3, None),
            ("log P, double", atanh_p, 0.0, z_max * 1.0001, 6, None),
            ("atan P, float", atan_p, 0.0, math.tan(math.pi / 8) ** 2 * 1.001, 6, None),
            ("atan P, double", atan_p, 0.0, (7 / 16) ** 2 * 1.02, 10, None),
            ("asin Q, float", asin_q, 0.0, 0.25 * 1.0001, 7, None),
            ("asin Q, double", asin_q, 0.0, 0.25 * 1.0001, 12, None)]
    for label, fn, lo, hi, degree, scale in jobs:
        coefs = fit(fn, lo, hi, degree)
        grid = [Decimal(lo + (hi - lo) * i / 2000) for i in range(2001)]
        if scale is not None:
            err = max(abs(_poly(coefs, x) / fn(x) - 1) for x in grid)
        else:  # relative to the function (log(1 + f) ~ 2 s, atan u ~ u, asin a ~ a): z (P - fit)
            half = 2 if fn is atanh_p else 1
            err = max(abs(x * (fn(x) - _poly(coefs, x)) / half) for x in grid)
        values = [float(c) for c in coefs]
        # (a coefficient written "p * z - c" appears as c)
        present = all(v in in_header or -v in in_header or v in (0.0, 1.0) for v in values)
        print(f"{label}: degree {degree}, max relative error {float(err):.2e}, "
              f"{'in' if present else 'NOT in'} math.hpp")
        print("   ", ", ".join(repr(v) for v in values))


if __name__ == "__main__":
    main()
