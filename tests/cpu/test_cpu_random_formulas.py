"""Random formulas drawn from the op table: the CPU backend equals the NumPy backend.

Hypothesis builds formula texts from ``OPERATIONS`` (one entry per formula
operation, with its arity and a guard that keeps the arguments in its domain)
over i-, j- and parameter variables of dimensions 1 and 3, and picks a
reduction. Both backends run in float64 on the same inputs; NaN and inf must
appear at the same places. Each example compiles a new kernel, so the number
of examples is kept small; the op table test fails if an op of the language
has no entry here.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dredux import Genred
from dredux.ir import Op, walk
from dredux.ops import PRIMITIVES
from tests.cpu.cpu_util import as_tuple

# name -> (op, arity, template): templates keep arguments where the op is smooth
OPERATIONS = {
    "Add": (Op.ADD, 2, "({0} + {1})"), "Subtract": (Op.SUB, 2, "({0} - {1})"),
    "Mult": (Op.MUL, 2, "({0} * {1})"), "Divide": (Op.DIV, 2, "({0} / (2 + Sin({1})))"),
    "Minus": (Op.NEG, 1, "Minus({0})"),
    "Equal": (Op.EQ, 2, "Equal(Floor({0}), Floor({1}))"),
    "NotEqual": (Op.NE, 2, "NotEqual(Floor({0}), Floor({1}))"),
    "LessThan": (Op.LT, 2, "LessThan({0}, {1})"), "LessOrEqual": (Op.LE, 2, "({0} <= {1})"),
    "GreaterThan": (Op.GT, 2, "({0} > {1})"), "GreaterOrEqual": (Op.GE, 2, "({0} >= {1})"),
    "Exp": (Op.EXP, 1, "Exp(Sin({0}))"), "Log": (Op.LOG, 1, "Log(1.5 + Cos({0}))"),
    "XLogX": (Op.XLOGX, 1, "XLogX(Abs({0}))"), "Sin": (Op.SIN, 1, "Sin({0})"),
    "Cos": (Op.COS, 1, "Cos({0})"), "Asin": (Op.ASIN, 1, "Asin(Sin({0}) * 0.9)"),
    "Acos": (Op.ACOS, 1, "Acos(Cos({0}) * 0.9)"), "Atan": (Op.ATAN, 1, "Atan({0})"),
    "SinXDivX": (Op.SINXDIVX, 1, "SinXDivX({0})"), "Sqrt": (Op.SQRT, 1, "Sqrt(Abs({0}))"),
    "Rsqrt": (Op.RSQRT, 1, "Rsqrt(1 + Abs({0}))"), "Square": (Op.SQUARE, 1, "Square({0})"),
    "Inv": (Op.INV, 1, "Inv(2 + Cos({0}))"), "Abs": (Op.ABS, 1, "Abs({0})"),
    "Sign": (Op.SIGN, 1, "Sign({0})"), "Step": (Op.STEP, 1, "Step({0})"),
    "ReLU": (Op.RELU, 1, "ReLU({0})"), "Floor": (Op.FLOOR, 1, "Floor({0})"),
    "Round": (Op.ROUND, 1, "Round({0}, 1)"), "Pow": (Op.POW, 1, "Pow(Sin({0}), 3)"),
    "Powf": (Op.POWF, 2, "Powf(1 + Abs({0}), Sin({1}))"),
    "Atan2": (Op.ATAN2, 2, "Atan2({0}, 1 + Abs({1}))"),
    "Clamp": (Op.CLAMP, 2, "Clamp({0}, -0.5, 0.5 + Abs({1}))"),
    "ClampInt": (Op.CLAMPINT, 1, "ClampInt({0}, -1, 1)"),
    "IfElse": (Op.IFELSE, 2, "IfElse({0}, {1}, {0} * 2)"),
    "Mod": (Op.MOD, 2, "Mod({0}, 1.5 + Cos({1}), 0.25)"),
    "Sum": (Op.SUM, 1, "Sum({0})"), "SumT": (Op.SUMT, 1, "SumT(Sum({0}), 3)"),
    "Max": (Op.MAX, 1, "Max({0})"), "Min": (Op.MIN, 1, "Min({0})"),
    "ArgMax": (Op.ARGMAX, 1, "ArgMax({0})"), "ArgMin": (Op.ARGMIN, 1, "ArgMin({0})"),
    "Scalprod": (Op.SCALPROD, 2, "({0} | {1})"),
    "Elem": (Op.ELEM, 1, "Elem(TensorProd(Sin(SumT(Sum({0}), 3)), q), 4)"),
    "ElemT": (Op.ELEMT, 1, "Sum(ElemT(Sum({0}), 3, 1) + q)"),
    "Extract": (Op.EXTRACT, 1, "Extract(Concat(SumT(Sum({0}), 3), {0}), 1, 2)"),
    "ExtractT": (Op.EXTRACTT, 1, "ExtractT(Sum({0}), 1, 3)"),
    "Concat": (Op.CONCAT, 2, "Sum(Concat({0}, {1}))"),
    "OneHot": (Op.ONEHOT, 1, "OneHot(Sum(Floor(Abs({0}))), 3)"),
    "MatVecMult": (Op.MATVECMULT, 2, "MatVecMult(TensorProd(SumT(Sum({0}), 3), "
                                     "SumT(Sum({1}), 3)), SumT(Sum({0}), 3))"),
    "VecMatMult": (Op.VECMATMULT, 2, "VecMatMult(SumT(Sum({0}), 3), "
                                     "TensorProd(SumT(Sum({1}), 3), SumT(Sum({0}), 3)))"),
    "TensorProd": (Op.TENSORPROD, 2, "Sum(TensorProd(SumT(Sum({0}), 2), SumT(Sum({1}), 3)))"),
    "TensorDot": (Op.TENSORDOT, 2, "TensorDot(SumT(Sum({0}), 3), SumT(Sum({1}), 3), "
                                   "[3], [3], [0], [0])"),
    # complex parts (dimension 2: one complex number)
    "ComplexReal": (Op.COMPLEXREAL, 2, "ComplexReal(Concat(Sum({0}), Sum({1})))"),
    "ComplexImag": (Op.COMPLEXIMAG, 2, "ComplexImag(Concat(Sin(Sum({0})), Sum({1})))"),
    "Complex": (Op.COMPLEX, 2, "Sum(Complex(Sum({0}), Cos(Sum({1}))))"),
    # loops of their own: sorted knots around a sample, two short series
    "BSpline": (Op.BSPLINE, 2, "Sum(BSpline(Concat(Concat(Minus(Abs(Sum({0}))), Zero(1)), "
                               "Concat(IntInv(2), 1 + Abs(Sum({1})))), Sin(Sum({0})), 1))"),
    "SoftDTW_SqDist": (Op.SOFTDTW, 2, "SoftDTW_SqDist(Concat(Sum({0}), Sin(Sum({1}))), "
                                      "Concat(Sum({1}), Cos(Sum({0}))), 0.5)"),
    "GradSoftDTW_SqDist": (Op.GRADSOFTDTW, 2, "Sum(GradSoftDTW_SqDist(Concat(Sum({0}), "
                                              "Sin(Sum({1}))), Sum({1}), 0.5, 1))"),
}
LEAVES = ["x", "y", "u", "v", "p", "q", "0.5", "2"]
ALIASES = ["x = Vi(1)", "y = Vj(1)", "u = Vi(3)", "v = Vj(3)", "p = Pm(1)", "q = Pm(3)"]
REDUCTIONS = ["Sum", "Max_ArgMax", "Min_ArgMin", "KMin_ArgKMin", "LogSumExp"]


def test_every_op_can_be_drawn():
    assert {op for op, _, _ in OPERATIONS.values()} == set(PRIMITIVES)
    # and each template keeps its op through simplification, so that it reaches
    # the kernels (on scalar or on 3-vector leaves: Sum of a scalar is the scalar)
    lost = []
    for name, (op, _, template) in OPERATIONS.items():
        kept = False
        for leaves in (("x", "y"), ("u", "v")):
            program = Genred(template.format(*leaves), ALIASES, axis=1).program(np.float64)
            kept |= op in {n.op for f in program.formulas for n in walk(f)}
        if not kept:
            lost.append(name)
    assert not lost, f"simplified away: {lost}"


def formulas(depth: int):
    """Formula texts of depth <= ``depth``, an operation at the top (two times in three
    an operation below)."""
    def node(sub):
        return st.builds(lambda name, args: OPERATIONS[name][2].format(*args),
                         st.sampled_from(sorted(OPERATIONS)), st.tuples(sub, sub))

    sub = st.sampled_from(LEAVES)
    for _ in range(depth - 1):
        sub = st.one_of(node(sub), node(sub), st.sampled_from(LEAVES))
    return node(sub)


def run(formula, reduction, backend, args):
    g = Genred(formula, ALIASES, reduction_op=reduction, axis=1,
               opt_arg=2 if "KMin" in reduction else None)
    return as_tuple(g(*args, backend=backend))


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(formula=formulas(3), reduction=st.sampled_from(REDUCTIONS), pair=st.booleans(),
       seed=st.integers(0, 99))
def test_random_formula_cpu_equals_numpy(formula, reduction, pair, seed):
    gen = np.random.default_rng(seed)
    args = [gen.uniform(-2, 2, (13, 1)), gen.uniform(-2, 2, (21, 1)),
            gen.uniform(-2, 2, (13, 3)), gen.uniform(-2, 2, (21, 3)),
            gen.uniform(-2, 2, (1,)), gen.uniform(-2, 2, (3,))]
    if pair:  # make it depend on both i and j, whatever was drawn
        formula = f"({formula}) * Exp(Sum(x - y) * 0.1)"
    if reduction == "LogSumExp":
        formula = f"Sum({formula})"  # a scalar formula
    try:
        Genred(formula, ALIASES, reduction_op=reduction, axis=1,
               opt_arg=2 if "KMin" in reduction else None)
    except ValueError:  # operand dimensions do not fit (e.g. Scalprod of 1 and 3)
        assume(False)
    ref = run(formula, reduction, "numpy", args)
    got = run(formula, reduction, "cpu", args)
    assert len(got) == len(ref)
    for a, b in zip(got, ref):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9, equal_nan=True,
                                   err_msg=f"{reduction} of {formula}")
