"""Every case of the catalogue (tests/op_cases.py) on the NumPy backend.

Each case is a formula over i-, j- and parameter variables with input ranges
valid for its op, and a NumPy float64 reference of the broadcast inputs. It
runs through ``Genred(..., axis=1, backend="numpy")`` in float64 and is compared
with the brute-force sum over j of the reference; with N = 1 the sum is the
value of every single pair. A subset runs over i (axis=0) as well. The grouped
formulas that the compiled tiers run are checked here too, on the NumPy
backend in float64 and float32 (where the inputs keep float32 on the same side
of every jump), and so is the catalogue's coverage: a case for every function
name of the language and every primitive op. The conventions at special
points (0, NaN, ties) are tested below the cases.
"""

from __future__ import annotations

import zlib
from collections import Counter

import numpy as np
import pytest

from dredux import Genred, ops, parse
from dredux.ir import walk
from tests.helpers import assert_close, numpy_run, rng
from tests.op_cases import ALL_CASES, CASES, GROUPS, aliases, run_case

PRIMITIVES = set(ops.PRIMITIVES)


def test_every_function_has_a_case():
    missing = sorted(set(parse.FUNCTIONS) - set(CASES))
    assert not missing, f"no case for {missing}"
    assert sorted(CASES) == sorted(parse.FUNCTIONS)


def test_every_primitive_op_appears_in_a_case():
    used = set()
    for _, case in ALL_CASES:
        program = Genred(case.formula, aliases(case.variables)).program("float64")
        used |= {node.op for f in program.formulas for node in walk(f)}
    missing = PRIMITIVES - used
    assert not missing, f"no case uses {sorted(op.name for op in missing)}"


def test_every_case_is_in_one_group():
    labels = [label for label, _ in ALL_CASES]
    assert len(labels) == len(set(labels))
    grouped = Counter(m.label for g in GROUPS.values() for m in g.members)
    assert grouped == Counter(labels)
    assert all(15 <= len(g.members) <= 30 for g in GROUPS.values())
    # the variables are renamed per case: no two cases share a name
    names = [a.split("=")[0].strip() for g in GROUPS.values() for a in g.aliases]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("label, case", ALL_CASES, ids=[c[0] for c in ALL_CASES])
@pytest.mark.parametrize("m, n", [(5, 4), (3, 1)])
def test_op_matches_numpy(label, case, m, n):
    out, ref = run_case(case, m, n, seed=zlib.crc32(f"{label}-{m}-{n}".encode()))
    assert_close(out, ref.sum(axis=1), rtol=1e-12, atol=1e-12, what=case.formula)


@pytest.mark.parametrize("label, case", [c for c in ALL_CASES if c[0].startswith(
    ("Exp", "MatVecMult", "TensorDot", "Clamp", "Concat"))])
def test_op_matches_numpy_over_i(label, case):
    """axis=0: the same formulas reduced over i, one output row per j."""
    out, ref = run_case(case, 4, 6, seed=7, axis=0)
    assert_close(out, ref.sum(axis=0), rtol=1e-12, atol=1e-12, what=case.formula)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("axis", [1, 0])
@pytest.mark.parametrize("group", sorted(GROUPS))
def test_grouped_formulas_on_the_numpy_backend(group, axis, dtype, rtol):
    """What the compiled tiers run, case by case against the references: in float32
    a case whose inputs cross a jump differently from float64 fails here."""
    g = GROUPS[group]
    args = g.inputs(9, 13, dtype, seed=zlib.crc32(group.encode()))
    out = g.routine(axis)(*args, backend="numpy")
    assert out.dtype == dtype and out.shape == ((9, g.width) if axis == 1 else (13, g.width))
    g.check(out, args, axis, rtol)


def test_round_halves_go_away_from_zero():
    """KeOps spells Round with C's round(): 2.5 -> 3 (NumPy's rint would give 2)."""
    x = np.array([[0.5, 1.5, 2.5, -0.5, -2.5, 0.49]])
    out = numpy_run("Round(x, 0)", ["x = Vi(6)"], x)
    assert out.tolist() == [[1.0, 2.0, 3.0, -1.0, -3.0, 0.0]]


def test_mod_lies_in_its_window():
    gen = rng(3)
    x, n, d = gen.uniform(-9, 9, (50, 1)), gen.uniform(0.5, 3, (1, 1)), gen.uniform(-1, 1, 1)
    out = numpy_run("Mod(x, n, d)", ["x = Vi(1)", "n = Vj(1)", "d = Pm(1)"], x, n, d)
    assert np.all(out >= d[0] - 1e-12) and np.all(out < d[0] + n[0, 0] + 1e-12)
    k = (x - out) / n[0, 0]
    np.testing.assert_allclose(k, np.round(k), atol=1e-9)  # x - out is a multiple of n


@pytest.mark.parametrize("formula, value, expected", [
    ("XLogX(x)", 0.0, 0.0), ("SinXDivX(x)", 0.0, 1.0), ("Rsqrt(x)", 0.0, 0.0),
    ("Step(x)", 0.0, 1.0), ("Sign(x)", 0.0, 0.0), ("ReLU(x)", -0.0, 0.0),
    ("IfElse(x, 2, 3)", 0.0, 2.0), ("ClampInt(x, 1, 2)", 5.0, 2.0),
    # NaN compares false, as in the C spellings of the compiled backends and KeOps
    ("Sign(x)", np.nan, 0.0), ("Step(x)", np.nan, 1.0), ("IfElse(x, 2, 3)", np.nan, 3.0),
])
def test_values_at_special_points(formula, value, expected):
    """The conventions KeOps uses at 0 and NaN (no NaN where KeOps gives a number)."""
    out = numpy_run(formula, ["x = Vi(1)"], np.array([[value]]))
    assert out.tolist() == [[expected]]


@pytest.mark.parametrize("formula, expected", [
    ("Max(x)", [np.nan, 3.0, 3.0]), ("Min(x)", [np.nan, 1.0, 1.0]),
    ("ArgMax(x)", [0.0, 2.0, 0.0]), ("ArgMin(x)", [0.0, 0.0, 1.0]),
])
def test_vector_max_min_scan_left_to_right(formula, expected):
    """A NaN in the first component sticks, a later one is skipped (KeOps's loop); ties
    keep the first index."""
    x = np.array([[np.nan, 1.0, 3.0], [1.0, np.nan, 3.0], [3.0, 1.0, 3.0]])
    out = numpy_run(formula, ["x = Vi(3)"], x, axis=1)[:, 0]
    np.testing.assert_array_equal(out, expected)


def test_float32_inputs_give_float32_results():
    gen = rng(5)
    x, y = gen.random((6, 3), dtype=np.float32), gen.random((9, 3), dtype=np.float32)
    out = numpy_run("Exp(-SqDist(x, y)) * y", ["x = Vi(3)", "y = Vj(3)"], x, y)
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    ref = (np.exp(-((x64[:, None] - y64[None]) ** 2).sum(-1))[..., None] * y64).sum(1)
    assert out.dtype == np.float32
    assert_close(out, ref, rtol=1e-5, atol=1e-6)
