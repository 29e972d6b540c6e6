"""Size of the generated C++ and its compile time as formulas grow.

    python benchmarks/codegen.py [--repeat 1] [--skip 'family:size' ...]
                                 [--write benchmarks/results/codegen.md]

For families of formulas of growing size, prints the characters of the
formula, of the generated CPU kernel source and the seconds g++ takes to
build it (dredux's flags, into an empty temporary cache; the median of
``--repeat`` builds), or the FormulaError that refuses it before compiling:

* ``TensorDot`` of two n x n matrices (n^3 products);
* sums of ``Exp(x * k)`` over a row variable (row-only code, once per row of a
  pass);
* sums of ``Exp(x - y * k)`` of dimension 3 (pair code, in the j-loop).

The generated source should grow linearly with the formula; compile times
grow faster than that in one loop body, which is what the kernel-size limit
of ``dredux/limits.py`` is set against.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dask  # noqa: E402

import dredux  # noqa: E402
from dredux import FormulaError, Genred  # noqa: E402
from dredux.compile import cpp  # noqa: E402


def cases():
    for n in (4, 8, 12, 16, 20):
        yield ("TensorDot", f"{n} x {n}",
               f"TensorDot(a, b, [{n}, {n}], [{n}, {n}], [1], [0])",
               [f"a = Vi({n * n})", f"b = Vj({n * n})"])
    for terms in (64, 256, 1024):
        yield ("row Exp terms", str(terms),
               " + ".join(f"Exp(x * {k})" for k in range(1, terms + 1)), ["x = Vi(1)"])
    for terms in (16, 32, 64, 128, 512):
        yield ("pair Exp terms (D = 3)", str(terms),
               " + ".join(f"Exp(x - y * {k})" for k in range(1, terms + 1)),
               ["x = Vi(3)", "y = Vj(3)"])


def measure(formula: str, aliases: list[str], repeat: int) -> tuple[int, str]:
    """(source characters, compile seconds or the refusal)."""
    routine = Genred(formula, aliases, axis=1)
    try:
        kernel = routine.kernel("cpu", "float64")
        source = len(kernel.source)
    except FormulaError as exc:
        return -1, "refused: " + exc.problem.split(" (")[0]
    times = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp, dask.config.set(
                {"dredux.cache-dir": tmp}):
            cpp.clear_memory_cache()
            fresh = Genred(formula, aliases, axis=1).kernel("cpu", "float64")
            start = time.perf_counter()
            fresh.compile()
            times.append(time.perf_counter() - start)
    return source, f"{statistics.median(times):.1f} s"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--write", type=Path)
    parser.add_argument("--skip", nargs="*", default=[], metavar="SIZE",
                        help="sizes to leave out, as 'family:size'")
    args = parser.parse_args(argv)
    lines = [f"dredux {dredux.__version__} from {Path(dredux.__file__).parent}",
             f"machine: {platform.machine()}, {os.cpu_count()} cores; load average at start "
             f"{os.getloadavg()[0]:.2f}",
             f"compiler: {' '.join(cpp.compiler_command())} {' '.join(cpp.compile_flags())}",
             "", "| family | size | formula chars | C++ chars | compile |",
             "|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    for family, size, formula, aliases in cases():
        if f"{family}:{size}" in args.skip:
            continue
        source, compiled = measure(formula, aliases, args.repeat)
        row = (f"| {family} | {size} | {len(formula):,} | "
               f"{'-' if source < 0 else f'{source:,}'} | {compiled} |")
        print(row, flush=True)
        lines.append(row)
    lines += ["", f"load average at end {os.getloadavg()[0]:.2f}"]
    print(lines[-1])
    if args.write:
        command = "python benchmarks/codegen.py" + (f" --repeat {args.repeat}"
                                                    if args.repeat != 1 else "")
        args.write.write_text("# Generated code size and compile time\n\n"
                              f"`{command}`\n\n" + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
