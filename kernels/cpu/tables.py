"""Write the tables of kernels/cpu/math.hpp: sine and cosine, logarithm for pow.

    python kernels/cpu/tables.py           # rewrite the tables in math.hpp
    python kernels/cpu/tables.py --check   # exit 1 if math.hpp differs

Each table lies between a BEGIN and an END line of math.hpp, and every value is
rounded to the nearest double exactly (Fraction to float), so the tables do
not depend on the machine that runs this script.

Sine and cosine. A float is x = m 2^(e - 150), m a 24-bit integer and e its exponent field
(subnormals: e = 0, x = m 2^-149). Its sine needs x modulo 2 pi, which is
m (2^(e - 150) mod 2 pi): the table holds T[e] = 2^(max(e, 1) - 150) mod 2 pi
as the sum of two doubles, hi + lo (about 106 bits), so the kernel reduces any
float, up to the largest, with a 24 x 53-bit product and a small Cody-Waite
step, without branches (see math.hpp). The script also writes the three
doubles of pi/2 that Cody-Waite step subtracts.

pi comes from Machin's formula in integer arithmetic, 600 bits.

Logarithm (for pow). The kernel writes x = 2^e m with m in [c0, 2 c0),
c0 = 0x1.69p-1 (the bits of x less those of c0: e is the high bits, the next 7
pick one of 128 intervals of m). For each interval the table holds invc, the
double nearest to 1/c (c the interval's midpoint; c = 1 for the interval
around 1, which lies in its middle: so no interval near 1 subtracts a log c
from a log m almost equal to it), and -log(invc) as two doubles; then
log x = e ln2 - log(invc) + log(1 + r), r = m invc - 1 with |r| < 2^-8, a
short series. -log(invc) comes from the decimal module at 90 digits.
"""

from __future__ import annotations

import re
import struct
import sys
from decimal import Decimal, localcontext
from fractions import Fraction
from pathlib import Path

BITS = 600
LOG_OFFSET = 0x3fe6900000000000  # the bits of c0 = 0x1.69p-1, near sqrt(1/2)
LOG_SIZE = 128  # intervals: the 7 mantissa bits below the exponent


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


def trig_table_text() -> str:
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
    lines = ["// T[e] = 2^(max(e, 1) - 150) mod 2 pi = _dr_trig_hi[e] + _dr_trig_lo[e]",
             *rows("_dr_trig_hi", hi), *rows("_dr_trig_lo", lo),
             "// pi / 2 = _dr_pio2_1 + _dr_pio2_2 + _dr_pio2_3 (+ about 2^-160)",
             f"static const double _dr_pio2_1 = {c1.hex()}, _dr_pio2_2 = {c2.hex()},",
             f"                    _dr_pio2_3 = {c3.hex()};"]
    return "\n".join(lines)


def rows(name: str, values: list[float]) -> list[str]:
    """A C array of doubles in hex, four a line."""
    lines = [f"alignas(64) static const double {name}[{len(values)}] = {{"]
    for start in range(0, len(values), 4):
        lines.append("    " + ", ".join(v.hex() for v in values[start:start + 4]) + ",")
    return lines + ["};"]


def _double(bits: int) -> float:
    return struct.unpack("<d", struct.pack("<q", bits))[0]


def _bits(value: float) -> int:
    return struct.unpack("<q", struct.pack("<d", value))[0]


def log_table_text() -> str:
    shift = 52 - (LOG_SIZE.bit_length() - 1)
    around_one = ((_bits(1.0) - LOG_OFFSET) >> shift) & (LOG_SIZE - 1)
    invc, hi, lo = [], [], []
    with localcontext() as ctx:
        ctx.prec = 90
        for i in range(LOG_SIZE):
            low = Fraction(_double(LOG_OFFSET + (i << shift)))
            high = Fraction(_double(LOG_OFFSET + ((i + 1) << shift)))
            c = Fraction(1) if i == around_one else (low + high) / 2
            inverse = float(1 / c)
            h, l = split(Fraction(-Decimal(inverse).ln()), 2)
            invc.append(inverse)
            hi.append(h)
            lo.append(l)
        ln2 = Fraction(Decimal(2).ln())
    # ln2's high part keeps 41 bits: e * it is exact for every exponent e (|e| < 2^11)
    ln2_hi = _double(_bits(float(ln2)) & ~((1 << 12) - 1))
    ln2_lo = float(ln2 - Fraction(ln2_hi))
    lines = [f"// interval i of m: 1 / c = _dr_log_invc[i], log c = _dr_log_c_hi[i] + "
             f"_dr_log_c_lo[i]; c = 1 for i = {around_one}",
             *rows("_dr_log_invc", invc), *rows("_dr_log_c_hi", hi), *rows("_dr_log_c_lo", lo),
             "// ln 2 = _dr_ln2_hi + _dr_ln2_lo, the first with 12 low zero bits",
             f"static const double _dr_ln2_hi = {ln2_hi.hex()}, _dr_ln2_lo = {ln2_lo.hex()};"]
    return "\n".join(lines)


# (name, text): each is written between "// BEGIN <name> table (written by
# kernels/cpu/tables.py)" and "// END <name> table" in math.hpp
TABLES = [("trig", trig_table_text), ("log", log_table_text)]


def main(argv: list[str]) -> int:
    path = Path(__file__).with_name("math.hpp")
    text = new = path.read_text()
    for name, write in TABLES:
        begin = f"// BEGIN {name} table (written by kernels/cpu/tables.py)"
        end = f"// END {name} table"
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
        if not pattern.search(new):
            print(f"{path}: no table between {begin!r} and {end!r}")
            return 1
        new = pattern.sub(lambda _, b=begin, e=end, w=write: f"{b}\n{w()}\n{e}", new)
    if "--check" in argv:
        same = new == text
        print(f"{path}: the tables are {'up to date' if same else 'NOT up to date'}")
        return 0 if same else 1
    path.write_text(new)
    print(f"{path}: tables written")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
