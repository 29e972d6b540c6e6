"""Fuzzing the formula grammar on the CPU backend: compiled results equal NumPy's.

Hypothesis writes valid formula texts from the grammar: smooth operations
(kept where they are smooth: ``Log(1.5 + Cos(f))``...) and non-smooth ones
(``Floor``, ``Step``, ``Clamp``, ``Mod``, comparisons, ``Max``, ``ArgMin``...),
vector operations, literals (``-0.0``, subnormals, 2**53 + 1, 2**64 + 3,
1e300...), gradients of the smooth ones (``Grad``, ``Diff``, ``Laplacian``) and
several reductions. Each routine is compiled once and run on two sets of
float64 inputs (random ones, and one with signed zeros, subnormals and exact
halves), and must give what the "numpy" backend gives: NaN where NumPy has NaN,
the same infinities, values within a relative 1e-9 of the output's magnitude
(points where NumPy is near the overflow threshold only need the same sign).
A routine refused with a dredux error (a limit) is accepted.

Every example compiles a kernel (about a second each), so the examples are few
and derandomized (the same kernels on every run, shared through the session's
kernel cache), without the example database. ``DREDUX_FUZZ_SCALE=10`` runs ten
times as many.
"""

from __future__ import annotations

import os
import tracemalloc

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dredux import Genred, limits
from dredux.errors import DreduxError
from dredux.ir import Cat
from tests.cpu.cpu_util import as_tuple

_SCALE = float(os.environ.get("DREDUX_FUZZ_SCALE", "1"))
M, N = 7, 11
ALIASES = ["x = Vi(1)", "y = Vj(1)", "u = Vi(3)", "v = Vj(3)", "p = Pm(1)", "q = Pm(3)"]
LEAVES = ["x", "y", "u", "v", "p", "q"]
# literals inside the formula: they keep it well conditioned
INNER_LITERALS = ["0.5", "2", "3", "-1", "0.1", "1.5", "-0.0", "0.0", "1e-310", "-4.9e-324",
                  "2**3", "IntCst(4)", "IntInv(3)"]
# literals at the top: exact big integers, huge and tiny floats
OUTER_LITERALS = [str(2**53), str(2**53 + 1), str(limits.MAX_PARAM), str(2**64 + 3),
                  str(2**63 - 1), "1e300", "-1e300", "1.7976931348623157e308", "1e-310",
                  "-0.0", "4.9e-324", "123456789012345678901234567890"]

# templates: {0}, {1}, {2} are sub-formulas; smooth ones may be differentiated
SMOOTH = [
    "({0} + {1})", "({0} - {1})", "({0} * {1})", "({0} / (2 + Sin({1})))", "-{0}",
    "Exp(Sin({0}))", "Log(1.5 + Cos({0}))", "Sin({0})", "Cos({0})", "Atan({0})",
    "Asin(0.9 * Sin({0}))", "Acos(0.9 * Cos({0}))", "SinXDivX({0})", "Square({0})",
    "Sqrt(1 + Square({0}))", "Rsqrt(1 + Square({0}))", "Inv(2 + Cos({0}))", "Pow(Sin({0}), 3)",
    "Sin({0}) ** 2", "Powf(1 + Square({0}), Sin({1}))", "Atan2({0}, 1 + Square({1}))",
    "XLogX(1 + Square({0}))", "Sum({0})", "SumT(Sum({0}), 3)", "({0} | {1})",
    "Extract(Concat({0}, {1}), 1, 1)", "Concat(Sum({0}), Sum({1}))",
    "MatVecMult(TensorProd(SumT(Sum({0}), 3), SumT(Sum({1}), 2)), SumT(Sum({1}), 2))",
    "VecMatMult(SumT(Sum({0}), 2), TensorProd(SumT(Sum({1}), 2), SumT(Sum({0}), 3)))",
    "TensorDot(SumT(Sum({0}), 6), SumT(Sum({1}), 6), [2, 3], [3, 2], [1], [0], [1, 0])",
    "SqDist({0}, {1})", "Norm2(SumT(Sum({0}), 3) - {1})", "Normalize(1 + Square({0}))",
    "WeightedSqNorm(1 + Square({1}), {0})", "Exp(-SqDist({0}, {1}))",
]
ROUGH = [
    "Abs({0})", "Sign({0})", "Step({0})", "ReLU({0})", "Floor({0})", "Round({0}, 2)",
    "Round({0}, -1)", "Clamp({0}, -0.5, 0.5 + Abs({1}))", "ClampInt({0}, -1, 1)",
    "IfElse({0}, {1}, 2 * {0})", "Mod({0}, 1.5 + Cos({1}), 0.25)", "Max({0})", "Min({0})",
    "ArgMax({0})", "ArgMin({0})", "({0} < {1})", "({0} >= {1})", "Equal(Floor({0}), Floor({1}))",
    "NotEqual(Floor({0}), Floor({1}))", "OneHot(Sum(Floor(Abs({0}))), 3)",
    "Elem(SumT(Sum({0}), 3), 2)", "ElemT(Sum({0}), 3, 1)", "ExtractT(Sum({0}), 1, 3)",
    "Max(Concat({0}, {1}))", "ArgMin(Concat({0}, -{1}))", "Sign({0} * -0.0)",
    "Atan2({0} * -0.0, -1 + {1} * 0)",
]
REDUCTIONS = ["Sum", "Sum", "Sum", "Max_ArgMax", "Min_ArgMin", "KMin_ArgKMin", "LogSumExp"]


def fuzz_settings(examples: int):
    return settings(max_examples=max(1, int(examples * _SCALE)), deadline=None,
                    derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def expressions(templates, depth: int):
    """Formula texts of depth <= ``depth`` from ``templates`` over the aliases."""
    leaf = st.one_of(st.sampled_from(LEAVES), st.sampled_from(LEAVES),
                     st.sampled_from(INNER_LITERALS))

    def node(sub):
        return st.builds(lambda t, args: t.format(*args), st.sampled_from(templates),
                         st.tuples(sub, sub, sub))

    sub = leaf
    for _ in range(depth - 1):
        sub = st.one_of(node(sub), node(sub), leaf)
    return node(sub)


@st.composite
def formulas(draw):
    kind = draw(st.sampled_from(["smooth", "rough", "mixed", "grad", "grad", "diff",
                                 "laplacian"]))
    smooth = expressions(SMOOTH, 3)
    if kind == "smooth":
        formula = draw(smooth)
    elif kind == "rough":
        formula = draw(expressions(ROUGH, 3))
    elif kind == "mixed":
        formula = draw(expressions(SMOOTH + ROUGH, 3))
    else:
        f = draw(expressions(SMOOTH, 2))
        wrt = draw(st.sampled_from(LEAVES[:4]))
        if kind == "grad":
            formula = draw(st.sampled_from([f"Grad(Sum({f}), {wrt}, 1)", f"Grad({f}, {wrt})",
                                            f"Grad(Sum({f}), {wrt}, Sum(x + y))"]))
        elif kind == "diff":
            formula = f"Diff({f}, {wrt}, {wrt} * 0.5 + 1)"
        else:
            formula = f"Laplacian(Sum({f}), {wrt})"
    outer = draw(st.sampled_from(["", "", "*", "+", "clamp"]))
    if outer:
        big = draw(st.sampled_from(OUTER_LITERALS))
        formula = (f"Clamp({formula}, -{big}, {big})" if outer == "clamp"
                   else f"({formula}) {outer} {big}")
    if draw(st.booleans()):  # depend on both i and j, whatever was drawn
        formula = f"({formula}) * Exp(Sum(x - y) * 0.1)"
    return formula


def arrays_for(signature, special: bool, seed: int):
    gen = np.random.default_rng(seed)
    values = np.array([-0.0, 0.0, 1e-310, -1e-310, 0.5, -1.5, 2.0, 0.25, -1.0, 1e-3])
    out = []
    for spec in signature.args:
        shape = {Cat.I: (M, spec.dim), Cat.J: (N, spec.dim)}.get(spec.cat, (spec.dim,))
        out.append(gen.choice(values, shape) if special else gen.uniform(-2, 2, shape))
    return out


def assert_matches(got, ref, what: str):
    """CPU outputs ``got`` against NumPy's ``ref`` (see the module docstring)."""
    assert len(got) == len(ref), what
    vals = [(a, b) for a, b in zip(got, ref) if b.dtype.kind == "f"]
    for a, b in zip(got, ref):
        assert a.shape == b.shape and a.dtype == b.dtype, what
        if b.dtype.kind != "f":  # indices: equal, but near-ties may pick another index
            if not np.array_equal(a, b):
                va, vb = vals[0]
                assert np.allclose(va, vb, rtol=1e-9, atol=1e-300, equal_nan=True), what
            continue
        nan = np.isnan(b)
        assert np.array_equal(np.isnan(a), nan), f"NaN at different places in {what}"
        finite = np.isfinite(b)
        huge = (~finite & ~nan) | (finite & (np.abs(b) > 1e290))
        # near the overflow threshold the backends' exp may round differently: same sign
        assert np.array_equal(np.sign(a[huge]), np.sign(b[huge])), f"inf signs in {what}"
        assert (np.abs(a[huge]) > 1e290).all(), f"inf vs finite in {what}"
        ok = finite & ~huge
        scale = np.abs(b[ok]).max() if ok.any() else 0.0
        np.testing.assert_allclose(a[ok], b[ok], rtol=1e-9, atol=1e-9 * scale + 1e-300,
                                   err_msg=what)


def compare(formula: str, reduction: str = "Sum", axis: int = 1):
    opt_arg = 3 if "KMin" in reduction else None
    if reduction == "LogSumExp":
        formula = f"Sum({formula})"
    try:
        g = Genred(formula, ALIASES, reduction_op=reduction, axis=axis, opt_arg=opt_arg)
    except DreduxError as exc:  # dimensions that do not fit, or a limit
        assert "bug in dredux" not in str(exc).lower(), str(exc)
        return None
    for special, seed in ((False, 0), (True, 1)):
        args = arrays_for(g.signature, special, seed)
        with np.errstate(all="ignore"):
            ref = as_tuple(g(*args, backend="numpy"))
        got = as_tuple(g(*args, backend="cpu"))
        assert_matches(got, ref, f"{reduction} (axis={axis}) of {formula}, special={special}")
    return g


@fuzz_settings(40)
@given(formula=formulas(), reduction=st.sampled_from(REDUCTIONS), axis=st.sampled_from([1, 1, 0]))
@example(formula=f"x * {2**64 + 3} + y * {2**53 + 1} - Atan2(-0.0 * x, y - 3) + 1e-310 * y",
         reduction="Sum", axis=1)
@example(formula="Grad(Exp(-SqDist(u, v)) * Sin(Sum(u * v)), u, Sum(x + y))",
         reduction="Sum", axis=1)
def test_fuzzed_formulas_cpu_equals_numpy(formula, reduction, axis):
    compare(formula, reduction, axis)


# ---------------------------------------------------------------------------
# not fixed yet: dredux/codegen/render.py title() prints the whole formula with
# dredux.printing.to_formula, which writes a DAG as a tree (exponential in the
# depth of nested derivatives), before cutting it to 300 characters; depth 5 is
# a MemoryError on a 4 GiB machine in Genred.source("cpu") and in any call with
# backend="cpu"
# ---------------------------------------------------------------------------

def test_kernel_source_of_nested_derivatives_stays_small_to_build():
    formula = "x"
    for _ in range(4):
        formula = f"Grad(Exp(x * {formula}), x, x)"
    g = Genred(formula, ["x = Vi(1)"], axis=1)
    tracemalloc.start()
    try:
        g.source("cpu", "float64")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"{peak >> 20} MiB to write the source of a 77-character formula"
