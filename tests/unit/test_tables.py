"""Every operation has a complete record, and the records agree with the headers.

An op is one record of :mod:`dredux.ops` (its name in formulas, dims rule,
NumPy reference, derivative, cost and C spelling). These tests fail when a
record misses a field, when a formula name of the language has no parse rule,
or when a C spelling calls a ``_dr_*`` function that ``kernels/cpu/math.hpp``
or ``kernels/cuda/math.cuh`` does not define.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dredux import ir, parse
from dredux.codegen.render import Renderer
from dredux.ir import Op, walk
from dredux.ops import COMPUTE, DERIVATIVE, LEAF, OPS

ROOT = Path(__file__).resolve().parents[2]

# The operation names of the formula language (issue 2), as KeOps spells them.
LANGUAGE = """
Add Subtract Minus Mult Divide Scalprod Equal NotEqual LessThan LessOrEqual GreaterThan
GreaterOrEqual Exp Log XLogX Sin Cos Asin Acos Atan SinXDivX Sqrt Rsqrt Square Inv Abs Sign
Step ReLU Floor Round Pow Powf Atan2 Clamp ClampInt IfElse Mod Sum SumT Max Min ArgMax ArgMin
SqNorm2 Norm2 Normalize SqDist WeightedSqNorm WeightedSqDist SqNormIso SqNormDiag SymSqNorm
Elem ElemT Extract ExtractT Concat OneHot MatVecMult VecMatMult TensorProd TensorDot IntCst
IntInv Zero
""".split()

LEAVES = {Op.VAR, Op.CONST}
COMPUTING = [op for op, record in OPS.items() if record.kind == COMPUTE]


def test_every_op_has_a_complete_record():
    for op, record in OPS.items():
        assert record.name == op.name and op.value == record.keops
        assert record.kind in (LEAF, COMPUTE, DERIVATIVE), op
        if record.kind == COMPUTE:
            missing = [f for f in ("numpy", "vjp", "c") if getattr(record, f) is None]
            assert not missing, f"{op.name} has no {', '.join(missing)}"
            assert record.cost >= 1, op
    assert {op for op, r in OPS.items() if r.kind == LEAF} == LEAVES


def test_every_computing_op_has_a_parse_rule():
    produced = {f.op for f in parse.FUNCTIONS.values() if f.op is not None}
    missing = set(COMPUTING) - produced
    assert not missing, f"no FUNCTIONS entry produces {sorted(o.name for o in missing)}"


def test_leaves_are_parsed_from_aliases_and_literals():
    names, signature = parse.parse_aliases(["x = Vi(2)"])
    expr = parse.parse_formula("x * 2.5", names, signature)
    assert {a.op for a in expr.args} == LEAVES


def test_derivatives_are_placeholders_until_differentiated():
    from dredux.autodiff import differentiate

    names, signature = parse.parse_aliases(["x = Vi(2)", "y = Vj(2)"])
    raw = parse.parse_formula("Grad(Exp(x * y), x, y) + Laplacian(Sum(x * x), x)",
                              names, signature)
    assert {Op.GRAD, Op.LAPLACIAN} <= {n.op for n in walk(raw)}
    done = differentiate(raw)
    assert not {n.op for n in walk(done)} & {Op.GRAD, Op.DIFF, Op.LAPLACIAN}


# One formula per computing op (every spelling form: both C paths of Pow, loops
# of wide operands), rendered to find the _dr_* functions the spellings call.
SAMPLES = ["Pow(a, 3) + Pow(a, 100) + Pow(a, -2) + Round(a, 0) + Round(a, 2)",
           "ClampInt(a, -1, 2) + Clamp(a, b, a) + IfElse(a, a, b) + Mod(a, b, a)",
           "Concat(OneHot(Elem(a, 0), 4), ElemT(Elem(b, 1), 3, 1))",
           "MatVecMult(w, a) + VecMatMult(a, w) + Extract(TensorProd(a, b), 2, 3)",
           "TensorDot(w, a, [3, 3], [3], [1], [0]) + ExtractT(Elem(a, 2), 1, 3) + SumT(a|b, 3)",
           "Max(a) + Min(b) + ArgMax(a) + ArgMin(b) + Sum(a)",
           "ComplexReal(Complex(a, b)) + ComplexImag(z) * ComplexImag(Complex(b, a))",
           "Concat(BSpline(z, Elem(a, 0), 2), SoftDTW_SqDist(a, b, Elem(b, 1)))"
           " + Sum(GradSoftDTW_SqDist(a, b, Elem(b, 0), 1))"]
SAMPLE_ALIASES = ["a = Vi(3)", "b = Vj(3)", "w = Vi(9)", "z = Vj(6)"]


def _ops_of_the_language() -> dict:
    funcs = [f"{r.keops}(a)" for op, r in OPS.items() if r.kind == COMPUTE
             and r.elementwise and r.signature == "e"]
    funcs += [f"{r.keops}(a, b)" for op, r in OPS.items() if r.kind == COMPUTE
              and r.elementwise and r.signature == "ee"]
    return {"elementwise": funcs, "others": SAMPLES}


def rendered_sources(fast_modes=(False, True)) -> str:
    names, signature = parse.parse_aliases(SAMPLE_ALIASES)
    roots = [parse.parse_formula(text, names, signature)
             for group in _ops_of_the_language().values() for text in group]
    covered = {n.op for root in roots for n in walk(root)}
    assert covered >= set(COMPUTING), sorted(o.name for o in set(COMPUTING) - covered)
    text = []
    for fast in fast_modes:
        for unroll in (32, 1):  # components written out, and loops
            r = Renderer(lambda n, k: f"v{n.params[0]}[{k}]", unroll, fast=fast)
            for root in roots:
                for node in walk(root):
                    if node.op not in LEAVES:
                        text += r.node(node)
    return "\n".join(text)


def defined_functions(header: Path) -> set[str]:
    text = header.read_text()
    found = set(re.findall(r"\b(?:float|double)\s+(_dr_\w+)\s*\(", text))
    return found | set(re.findall(r"\b_DR_\w+\((_dr_\w+)\s*,", text))


@pytest.mark.parametrize("header", ["kernels/cpu/math.hpp", "kernels/cuda/math.cuh"])
def test_every_device_function_is_defined(header):
    # fast-math spellings are the CUDA backend's only
    modes = (False, True) if header.endswith(".cuh") else (False,)
    called = set(re.findall(r"\b(_dr_\w+)\s*\(", rendered_sources(modes)))
    assert {"_dr_exp", "_dr_pow", "_dr_floor", "_dr_round"} <= called
    missing = called - defined_functions(ROOT / header)
    assert not missing, f"{header} does not define {sorted(missing)}"


def test_primitive_function_arity_matches_the_op_table():
    for name, function in parse.FUNCTIONS.items():
        if function.op is not None:
            n_expr = function.signature.split("|")[0].count("e")
            assert n_expr == ir.OPS[function.op].arity, name


def test_primitive_names_are_the_keops_names():
    for name, function in parse.FUNCTIONS.items():
        if function.op is not None:
            assert function.op.value == name


def test_language_is_in_the_function_table():
    missing = sorted(set(LANGUAGE) - set(parse.FUNCTIONS))
    assert not missing, f"operations of the formula language without a parse rule: {missing}"


def test_linear_slots_are_real_children():
    for op, spec in ir.OPS.items():
        assert all(0 <= k < spec.arity for k in spec.linear), op
