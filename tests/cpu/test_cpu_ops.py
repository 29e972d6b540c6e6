"""Every case of the catalogue (tests/op_cases.py) on the compiled CPU backend.

The cases run in the catalogue's grouped formulas (``GROUPS``: ~25 cases per
formula, a ``Concat`` of their terms over variables renamed per case), one
kernel per group, dtype and axis, reduced with ``Sum``. In float32 and
float64, over j (axis=1) and over i (axis=0), on sizes with one row or one
column, every case's slice of the output is compared with the brute-force
sum of its NumPy float64 reference (of the inputs as cast to the dtype) and
the whole output with the "numpy" backend. A test fails if an op of
:class:`dredux.ir.Op` never reaches a compiled kernel (for instance because
it was simplified away).
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from dredux.ir import Op, walk
from dredux.ops import PRIMITIVES
from tests.cpu.cpu_util import precompile, tolerances
from tests.op_cases import GROUPS

LEAVES = {Op.VAR, Op.CONST}
DTYPES = (np.float32, np.float64)
ROUTINES = {(name, axis): group.routine(axis) for name, group in GROUPS.items()
            for axis in (0, 1)}


@pytest.fixture(scope="module", autouse=True)
def compiled():
    precompile((r, d) for r in ROUTINES.values() for d in DTYPES)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [1, 0])
def test_every_op_reaches_the_kernel(axis, dtype):
    used = set()
    for name in GROUPS:
        program = ROUTINES[name, axis].program(dtype)
        used |= {n.op for f in program.formulas for n in walk(f)}
    missing = set(PRIMITIVES) - used
    assert not missing, f"simplified away: {sorted(o.name for o in missing)}"


@pytest.mark.parametrize("axis", [1, 0])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m, n", [(7, 17), (1, 33), (16, 1)])
@pytest.mark.parametrize("group", sorted(GROUPS))
def test_ops_match_numpy_references(group, axis, dtype, m, n):
    g = GROUPS[group]
    args = g.inputs(m, n, dtype, seed=zlib.crc32(f"{group}-{m}-{n}".encode()))
    routine = ROUTINES[group, axis]
    out = routine(*args, backend="cpu")
    assert out.dtype == dtype and out.shape == ((m if axis == 1 else n), g.width)
    tol = tolerances(dtype)
    g.check(out, args, axis, tol["rtol"])
    numpy_out = routine(*args, backend="numpy")
    np.testing.assert_allclose(out, numpy_out, rtol=tol["rtol"] * 10,
                               atol=tol["rtol"] * 10 * (np.abs(numpy_out).max() + 1))
