"""The limits on what a formula may ask for, checked before anything is allocated.

Each limit keeps one formula string from taking a machine down or from
reaching a compiler in a form it would misread; going past one is a
:class:`~dredux.errors.FormulaError` that names the value and the limit
(``docs/formulas.md`` lists them for users).
"""

from __future__ import annotations

__all__ = ["MAX_FORMULA_CHARS", "MAX_ARGS", "MAX_DIM", "MAX_PARAM", "MAX_POW", "MAX_ROUND",
           "MAX_K", "MAX_NODES", "MAX_DERIVATIVE_NODES", "MAX_COMPONENTS", "MAX_KERNEL_STACK",
           "MAX_KERNEL_OPERATIONS"]

MAX_FORMULA_CHARS = 100_000  # characters of a formula or an alias
MAX_ARGS = 1_000  # argument positions: 0 .. MAX_ARGS - 1
MAX_DIM = 1 << 16  # the dimension of any vector of the formula (variables included)
# integers written into generated code as numbers (ClampInt bounds, constants
# of the formula that are integers): exact in float64, so rounded exactly as
# NumPy rounds them
MAX_PARAM = 1 << 53
MAX_POW = 1 << 24  # Pow exponents: exact in float32, so their parity survives
MAX_ROUND = 300  # Round(f, d): 10^d must be a finite float64
MAX_K = 1 << 14  # K of KMin, ArgKMin, KMin_ArgKMin
MAX_NODES = 20_000  # distinct operations of a formula, after differentiation
# distinct operations of a derivative before it is simplified (nested derivatives
# grow exponentially with their depth)
MAX_DERIVATIVE_NODES = 4 * MAX_NODES
# components of all the operations of a formula: the NumPy backend holds them
# for at least one pair at a time (128 MiB in float64)
MAX_COMPONENTS = 1 << 24
# bytes of the arrays a compiled kernel keeps per thread: on a CPU its stack
# (Dask's worker threads have 8 MiB on Linux, 512 KiB on macOS), on a GPU its
# registers and local memory (reserved for every resident thread)
MAX_KERNEL_STACK = 256 << 10
# operations of one kernel's generated code (codegen.render.code_operations):
# the compile time of a loop body grows faster than its size (g++ -O3: about a
# minute at this size on one core of a 2020s server)
MAX_KERNEL_OPERATIONS = 20_000
