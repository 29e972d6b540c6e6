"""Write the reduction table of the float sine and cosine in kernels/cpu/math.hpp.

    python kernels/cpu/trig_table.py           # rewrite the table in math.hpp
    python kernels/cpu/trig_table.py --check   # exit 1 if math.hpp differs

A float is x = m 2^(e - 150), m a 24-bit integer and e its exponent field
(subnormals: e = 0, x = m 2^-149). Its sine needs x modulo 2 pi, which is
m (2^(e - 150) mod 2 pi): the table holds T[e] = 2^(max(e, 1) - 150) mod 2 pi
as the sum of two doubles, hi + lo (about 106 bits), so the kernel reduces any
float, up to the largest, with a 24 x 53-bit product and a small Cody-Waite
step, without branches (see math.hpp). The script also writes the three
doubles of pi/2 that Cody-Waite step subtracts.

pi comes from Machin's formula in integer arithmetic, 600 bits; every value is
rounded to the nearest double exactly (Fraction to float), so the table does
not depend on the machine that runs this script.
"""

from __future__ import annotations

import re
import sys
from fractions import Fraction
from pathlib import Path

BITS = 600
BEGIN = "// BEGIN trig table (written by kernels/cpu/trig_table.py)"
END = "// END trig table"


def _atan_inverse(n: int, scale: int) -> int:
    """atan(1/n) * scale by its alternating series, in integers."""
    total, term, k, sign = 0, scale // n, 1, 1
    while term:
        total += sign * (term // k)
        term //= n * n
        k += 2
        sign = -sign
    return total


def pi_fraction() -> Fraction:
    scale = 1 << (BITS + 16)  # 16 guard bits for the series' truncations
    return Fraction(16 * _atan_inverse(5, scale) - 4 * _atan_inverse(239, scale), scale)


def split(value: Fraction, parts: int) -> list[float]:
    """``value`` as a sum of ``parts`` doubles, each the nearest to what is left."""
    out = []
    for _ in range(parts):
        d = float(value)
        out.append(d)
        value -= Fraction(d)
    return out


def table_text() -> str:
    pi = pi_fraction()
    two_pi = 2 * pi
    hi, lo = [], []
    for e in range(256):
        scale = Fraction(2) ** (max(e, 1) - 150)
        reduced = scale - two_pi * (scale // two_pi) if e < 255 else Fraction(0)
        h, l = split(reduced, 2)
        hi.append(h)
        lo.append(l)
    c1, c2, c3 = split(pi / 2, 3)

    def rows(name, values):
        lines = [f"alignas(64) static const double {name}[256] = {{"]
        for start in range(0, 256, 4):
            lines.append("    " + ", ".join(v.hex() for v in values[start:start + 4]) + ",")
        return lines + ["};"]

    lines = [BEGIN,
             "// T[e] = 2^(max(e, 1) - 150) mod 2 pi = _dr_trig_hi[e] + _dr_trig_lo[e]",
             *rows("_dr_trig_hi", hi), *rows("_dr_trig_lo", lo),
             "// pi / 2 = _dr_pio2_1 + _dr_pio2_2 + _dr_pio2_3 (+ about 2^-160)",
             f"static const double _dr_pio2_1 = {c1.hex()}, _dr_pio2_2 = {c2.hex()},",
             f"                    _dr_pio2_3 = {c3.hex()};",
             END]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    path = Path(__file__).with_name("math.hpp")
    text = path.read_text()
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        print(f"{path}: no table between {BEGIN!r} and {END!r}")
        return 1
    new = pattern.sub(lambda _: table_text(), text)
    if "--check" in argv:
        same = new == text
        print(f"{path}: the table is {'up to date' if same else 'NOT up to date'}")
        return 0 if same else 1
    path.write_text(new)
    print(f"{path}: table written")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
