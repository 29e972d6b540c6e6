"""Every operation has a row in every table.

Adding an op means one row per table; these tests fail when one is missing:
the dims rule (``ir.OPS``), a parse rule (a ``parse.FUNCTIONS`` entry that
produces the op), the NumPy reference (``numpy_eval.NUMPY``), the derivative
(``autodiff.VJP``) and each backend's spelling table (see ``SPELLING_MODULES``).
"""

from __future__ import annotations

import importlib
import inspect

import pytest

from dredux import autodiff, ir, numpy_eval, parse
from dredux.codegen import render
from dredux.ir import Op

# The operation names of the formula language (issue 2), as KeOps spells them.
LANGUAGE = """
Add Subtract Minus Mult Divide Scalprod Equal NotEqual LessThan LessOrEqual GreaterThan
GreaterOrEqual Exp Log XLogX Sin Cos Asin Acos Atan SinXDivX Sqrt Rsqrt Square Inv Abs Sign
Step ReLU Floor Round Pow Powf Atan2 Clamp ClampInt IfElse Mod Sum SumT Max Min ArgMax ArgMin
SqNorm2 Norm2 Normalize SqDist WeightedSqNorm WeightedSqDist SqNormIso SqNormDiag SymSqNorm
Elem ElemT Extract ExtractT Concat OneHot MatVecMult VecMatMult TensorProd TensorDot IntCst
IntInv Zero
""".split()

# Leaves are produced by the parser from aliases and literals, not by a call.
LEAVES = {Op.VAR, Op.CONST}

# Modules that define spelling tables (subclasses of render.Spelling).
SPELLING_MODULES = ["dredux.codegen.render", "dredux.codegen.cpp", "dredux.codegen.cuda"]


def spellings() -> list[tuple[str, render.Spelling]]:
    """(label, instance) of every Spelling class defined in SPELLING_MODULES."""
    found = []
    for name in SPELLING_MODULES:
        module = importlib.import_module(name)
        for cls_name, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, render.Spelling) and cls.__module__ == module.__name__:
                found.append((f"{name}.{cls_name}", cls()))
    return found


SPELLINGS = spellings()


def test_spelling_modules_present():
    labels = [label for label, _ in SPELLINGS]
    for label in ("dredux.codegen.render.Spelling", "dredux.codegen.cpp.CppSpelling",
                  "dredux.codegen.cuda.CudaSpelling"):
        assert label in labels, labels


def test_every_op_has_a_dims_row():
    assert set(Op) == set(ir.OPS)


def test_every_op_has_a_numpy_reference():
    missing = set(Op) - LEAVES - set(numpy_eval.NUMPY)
    assert not missing, f"no NumPy spelling for {sorted(o.name for o in missing)}"


def test_every_op_has_a_derivative():
    missing = set(Op) - set(autodiff.VJP)
    assert not missing, f"no VJP row for {sorted(o.name for o in missing)}"


def test_every_op_has_a_parse_rule():
    produced = {f.op for f in parse.FUNCTIONS.values() if f.op is not None}
    missing = set(Op) - LEAVES - produced
    assert not missing, f"no FUNCTIONS entry produces {sorted(o.name for o in missing)}"


def test_leaves_are_parsed_from_aliases_and_literals():
    names, signature = parse.parse_aliases(["x = Vi(2)"])
    expr = parse.parse_formula("x * 2.5", names, signature)
    assert {a.op for a in expr.args} == LEAVES


@pytest.mark.parametrize("label, spelling", SPELLINGS, ids=[s[0] for s in SPELLINGS])
def test_every_op_has_a_spelling(label, spelling):
    missing = set(Op) - set(spelling.covers())
    assert not missing, f"{label} does not spell {sorted(o.name for o in missing)}"


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
