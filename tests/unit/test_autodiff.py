"""Symbolic derivatives against central finite differences in float64.

The forward formulas run through ``Genred(..., backend="numpy")`` at perturbed
inputs. The loss is ``L = sum_ij <F(x_i, y_j, p), e_i>``; its gradient with
respect to an i-variable is ``Grad(F, x, e)`` reduced over j, with respect to
a j-variable ``Grad(F, y, e)`` reduced over i, and with respect to a parameter
the sum over all pairs. Finite differences perturb one component of every row
at once: row i of ``sum_j <F_ij, e_i>`` depends on x_i only (and column j of
``sum_i <F_ij, e_i>`` on y_j only), so 2 * dim evaluations give every row.
"""

from __future__ import annotations

import numpy as np
import pytest

from dredux import Genred
from dredux.ir import Op, walk
from dredux.ops import PRIMITIVES
from dredux.parse import parse_aliases, parse_formula
from tests.helpers import DOMAINS, assert_close, rng
from tests.op_cases import ALL_CASES

CATS = {"i": "Vi", "j": "Vj", "p": "Pm"}
M, N = 3, 4
H = 1e-5  # central differences: error ~ H^2 (truncation) + 1e-16 / H (rounding)


def V(cat, dim, domain="any"):
    return (cat, dim, domain)


# (formula F, variables) -- every op of the table appears in some F, with inputs
# away from the op's kinks and jumps
CASES = [
    ("Add(a, b)", {"a": V("i", 3), "b": V("j", 3)}),
    ("a + b", {"a": V("i", 1), "b": V("j", 3)}),  # broadcast: the cotangent is summed
    ("Subtract(a, b)", {"a": V("i", 3), "b": V("p", 1)}),
    ("Mult(a, b)", {"a": V("i", 3), "b": V("j", 3)}),
    ("a * b", {"a": V("i", 3), "b": V("j", 1)}),
    ("Divide(a, b)", {"a": V("i", 3), "b": V("j", 3, "nz")}),
    ("a / b", {"a": V("p", 1), "b": V("j", 3, "nz")}),
    ("Minus(a) * b", {"a": V("i", 2), "b": V("j", 2)}),
    ("Scalprod(a, b)", {"a": V("i", 3), "b": V("j", 3)}),
    ("(Equal(a, b) + NotEqual(a, b)) * a", {"a": V("i", 2), "b": V("j", 2)}),
    ("(LessThan(a, b) + LessOrEqual(a, b)) * Exp(a - b)", {"a": V("i", 2), "b": V("j", 2)}),
    ("(GreaterThan(a, b) - GreaterOrEqual(b, a)) * a * b", {"a": V("i", 2), "b": V("j", 2)}),
    ("Exp(a - b)", {"a": V("i", 3), "b": V("j", 3)}),
    ("Log(a * b)", {"a": V("i", 3, "pos"), "b": V("j", 3, "pos")}),
    ("XLogX(a + b)", {"a": V("i", 3, "pos"), "b": V("p", 1, "pos")}),
    ("Sin(a * b)", {"a": V("i", 3), "b": V("j", 3)}),
    ("Cos(a * b)", {"a": V("i", 3), "b": V("j", 3)}),
    ("Asin(a * b)", {"a": V("i", 3, "unit"), "b": V("j", 3, "unit")}),
    ("Acos(a * b)", {"a": V("i", 3, "unit"), "b": V("j", 3, "unit")}),
    ("Atan(a * b)", {"a": V("i", 3), "b": V("j", 3)}),
    ("SinXDivX(a)", {"a": V("i", 3, "nz")}),
    ("Sqrt(a) * b", {"a": V("i", 3, "pos"), "b": V("j", 3)}),
    ("Rsqrt(a * b)", {"a": V("i", 3, "pos"), "b": V("j", 3, "pos")}),
    ("Square(a - b)", {"a": V("i", 3), "b": V("j", 3)}),
    ("Inv(a) * b", {"a": V("i", 3, "nz"), "b": V("j", 3)}),
    ("Abs(a) * b", {"a": V("i", 3, "nz"), "b": V("j", 3)}),
    ("Sign(a) * b", {"a": V("i", 3, "nz"), "b": V("j", 3)}),
    ("Step(a) * b", {"a": V("i", 3, "nz"), "b": V("j", 3)}),
    ("ReLU(a) * b", {"a": V("i", 3, "nz"), "b": V("j", 3)}),
    ("Floor(a) * b", {"a": V("i", 3, "frac"), "b": V("j", 3)}),
    ("Round(a, 0) * b", {"a": V("i", 3, "frac"), "b": V("j", 3)}),
    ("Pow(a, 3) + Pow(b, -2)", {"a": V("i", 3), "b": V("j", 3, "nz")}),
    ("Powf(a, b)", {"a": V("i", 3, "pos"), "b": V("j", 3)}),
    ("Atan2(a, b)", {"a": V("i", 3, "nz"), "b": V("j", 3, "nz")}),
    ("Clamp(a, b, c)", {"a": V("i", 3), "b": V("j", 3, "low"), "c": V("p", 3, "high")}),
    ("Clamp(a, b, c)", {"a": V("i", 3), "b": V("j", 1, "low"), "c": V("p", 1, "high")}),
    ("ClampInt(a, -1, 1) * b", {"a": V("i", 3, "not1"), "b": V("j", 3)}),
    ("IfElse(a, b, c)", {"a": V("i", 3, "nz"), "b": V("j", 3), "c": V("p", 3)}),
    ("IfElse(a, b, c)", {"a": V("i", 3, "nz"), "b": V("j", 1), "c": V("p", 1)}),
    ("Mod(a, b, c)", {"a": V("i", 3, "wide"), "b": V("j", 3, "mod"), "c": V("p", 3)}),
    ("Sum(a * b)", {"a": V("i", 3), "b": V("j", 3)}),
    ("SumT(a, 3) * b", {"a": V("i", 1), "b": V("j", 3)}),
    ("Max(a * b)", {"a": V("i", 3), "b": V("j", 3)}),
    ("Min(a * b)", {"a": V("i", 3), "b": V("j", 3)}),
    ("ArgMax(a - b) * a + ArgMin(a - b) * b", {"a": V("i", 3), "b": V("j", 3)}),
    ("Elem(a * b, 1)", {"a": V("i", 3), "b": V("j", 3)}),
    ("ElemT(a, 3, 1) * b", {"a": V("i", 1), "b": V("j", 3)}),
    ("Extract(a * b, 1, 2)", {"a": V("i", 4), "b": V("j", 4)}),
    ("ExtractT(a, 1, 4) * b", {"a": V("i", 2), "b": V("j", 4)}),
    ("Concat(a, Exp(b))", {"a": V("i", 2), "b": V("j", 3)}),
    ("OneHot(a, 3) * b", {"a": V("i", 1, "hot"), "b": V("j", 3)}),
    ("MatVecMult(a, b)", {"a": V("i", 6), "b": V("j", 2)}),
    ("VecMatMult(a, b)", {"a": V("j", 2), "b": V("i", 6)}),
    ("TensorProd(a, b)", {"a": V("i", 2), "b": V("j", 3)}),
    ("TensorDot(a, b, [2, 3], [3], [1], [0])", {"a": V("i", 6), "b": V("j", 3)}),
    ("TensorDot(a, b, [2, 3, 2], [3, 4], [1], [0], [2, 0, 1])",
     {"a": V("i", 12), "b": V("j", 12)}),
    ("TensorDot(a, b, [2, 3, 2], [2, 4, 3], [1, 2], [2, 0], [1, 0])",
     {"a": V("i", 12), "b": V("p", 24)}),
    # knots without variables (the knots have no derivative), samples away from them
    ("BSpline(Concat(Concat(IntCst(-1), Zero(1)), Concat(IntInv(2), IntCst(1))), a, 2) * b",
     {"a": V("i", 1, "between"), "b": V("j", 1)}),
    ("SoftDTW_SqDist(a, b, c)", {"a": V("i", 4), "b": V("j", 3), "c": V("p", 1, "pos")}),
    ("Exp(-c * SqDist(a, b)) * SqDist(a, b)", {"a": V("i", 3), "b": V("j", 3),
                                               "c": V("p", 1, "pos")}),
    ("Norm2(a - b) + Normalize(a - b)", {"a": V("i", 3), "b": V("j", 3, "high")}),
    ("WeightedSqDist(c, a, b)", {"c": V("p", 9), "a": V("i", 3), "b": V("j", 3)}),
    ("SqNormIso(c, a) + SqNormDiag(b, a)", {"c": V("p", 1), "a": V("i", 3), "b": V("j", 3)}),
    ("(a | b) * Exp(IntInv(3) * a) + IntCst(2) * Zero(3)", {"a": V("i", 3), "b": V("j", 3)}),
]


def parsed(formula, variables):
    aliases = [f"{n} = {CATS[c]}({d})" for n, (c, d, _) in variables.items()]
    return parse_formula(formula, *parse_aliases(aliases))


def ops_of(formula, variables) -> set:
    return {n.op for n in walk(parsed(formula, variables))}


# Ops whose derivative finite differences cannot check at random points of the
# catalogue's domains (jumps and kinks): CASES above place their inputs.
_KINKED = {Op.EQ, Op.NE, Op.LT, Op.LE, Op.GT, Op.GE, Op.ABS, Op.SIGN, Op.STEP, Op.RELU,
           Op.FLOOR, Op.ROUND, Op.CLAMP, Op.CLAMPINT, Op.IFELSE, Op.MOD, Op.MAX, Op.MIN,
           Op.ARGMAX, Op.ARGMIN, Op.ONEHOT}
# ops with no derivative at all (differentiating them is an error, tested below)
_UNDIFFERENTIABLE = {Op.GRADSOFTDTW}
_COVERED = {op for formula, variables in CASES for op in ops_of(formula, variables)}
# the catalogue's cases of smooth ops that CASES does not use (a new op gets its
# derivative checked from its catalogue case, without a row here)
CATALOGUE = [(case.formula, case.variables) for _, case in ALL_CASES
             if (ops_of(case.formula, case.variables) & PRIMITIVES) - _COVERED
             and not ops_of(case.formula, case.variables) & (_KINKED | _UNDIFFERENTIABLE)]


def test_cases_cover_every_op():
    used = _COVERED | {op for formula, variables in CATALOGUE
                       for op in ops_of(formula, variables)}
    missing = set(PRIMITIVES) - used - _UNDIFFERENTIABLE
    assert not missing, f"no derivative case uses {sorted(o.name for o in missing)}"


def inputs(variables, seed, m=M, n=N):
    gen = rng(seed)
    values = {}
    for name, (cat, dim, domain) in variables.items():
        shape = {"i": (m, dim), "j": (n, dim), "p": (dim,)}[cat]
        values[name] = DOMAINS[domain](gen, shape)
    return values


def loss_rows(formula, variables, values, e, cat, extra=()):
    """Rows of sum <F, e>: per i (cat i), per j (cat j) or the total (cat p)."""
    aliases = [f"{n} = {CATS[c]}({d})" for n, (c, d, _) in variables.items()]
    aliases += [f"e = Vi({e.shape[1]})", *extra]
    axis = 0 if cat == "j" else 1
    routine = Genred(f"({formula}) | e", aliases, axis=axis)
    out = routine(*values.values(), e, backend="numpy")[:, 0]
    return out.sum(keepdims=True) if cat == "p" else out


def fd_gradient(formula, variables, values, e, wrt, h=H):
    cat, dim, _ = variables[wrt]
    columns = []
    for k in range(dim):
        shifted = []
        for sign in (1, -1):
            moved = {name: value.copy() for name, value in values.items()}
            moved[wrt][..., k] += sign * h
            shifted.append(loss_rows(formula, variables, moved, e, cat))
        columns.append((shifted[0] - shifted[1]) / (2 * h))
    out = np.stack(columns, axis=-1)
    return out[0] if cat == "p" else out


def symbolic_gradient(formula, variables, values, e, wrt):
    cat = variables[wrt][0]
    aliases = [f"{n} = {CATS[c]}({d})" for n, (c, d, _) in variables.items()]
    aliases.append(f"e = Vi({e.shape[1]})")
    axis = 0 if cat == "j" else 1
    out = Genred(f"Grad({formula}, {wrt}, e)", aliases, axis=axis)(
        *values.values(), e, backend="numpy")
    return out.sum(0) if cat == "p" else out


def check(actual, expected, what):
    scale = max(1.0, float(np.abs(expected).max()))
    assert_close(actual, expected, rtol=1e-6, atol=1e-6 * scale, what=what)


GRAD_CASES = [(f"{formula}-d{wrt}", formula, variables, wrt)
              for formula, variables in CASES + CATALOGUE for wrt in variables]


@pytest.mark.parametrize("label, formula, variables, wrt", GRAD_CASES,
                         ids=[c[0] for c in GRAD_CASES])
def test_gradient_matches_finite_differences(label, formula, variables, wrt):
    values = inputs(variables, seed=len(label))
    dim = parsed(formula, variables).dim
    e = rng(99).uniform(-1, 1, (M, dim))
    check(symbolic_gradient(formula, variables, values, e, wrt),
          fd_gradient(formula, variables, values, e, wrt), label)


def test_gradients_with_respect_to_each_category():
    """One formula, differentiated w.r.t. an i-, a j- and a parameter variable."""
    variables = {"x": V("i", 3), "y": V("j", 3), "s": V("p", 1, "pos"), "b": V("j", 2)}
    formula = "Exp(-s * SqDist(x, y)) * b"
    values = inputs(variables, seed=5)
    e = rng(6).uniform(-1, 1, (M, 2))
    shapes = {"x": (M, 3), "y": (N, 3), "s": (1,), "b": (N, 2)}
    for wrt, shape in shapes.items():
        grad = symbolic_gradient(formula, variables, values, e, wrt)
        assert grad.shape == shape
        check(grad, fd_gradient(formula, variables, values, e, wrt), wrt)


def test_gradient_of_unused_variable_is_zero():
    gen = rng(2)
    x, y, b, e = gen.random((3, 2)), gen.random((4, 2)), gen.random((4, 1)), gen.random((3, 1))
    out = Genred("Grad(SqDist(x, y), b, e)", ["x = Vi(2)", "y = Vj(2)", "b = Vj(1)",
                                               "e = Vi(1)"], axis=0)(x, y, b, e,
                                                                     backend="numpy")
    assert out.shape == (4, 1) and not out.any()


@pytest.mark.parametrize("wrt, axis", [("x", 1), ("y", 0)])
def test_grad_without_e_is_grad_with_a_new_variable(wrt, axis):
    """Grad(F, v): the new input is at position 1 + the largest, of F's dimension and
    the opposite category; it behaves as the explicit e."""
    gen = rng(3)
    x, y, b = gen.random((3, 2)), gen.random((4, 2)), gen.random((4, 2))
    e = gen.random((4 if wrt == "x" else 3, 2))
    aliases = ["x = Vi(2)", "y = Vj(2)", "b = Vj(2)"]
    implicit = Genred(f"Grad(Exp(-SqDist(x, y)) * b, {wrt})", aliases, axis=axis)
    spec = implicit.signature.args[-1]
    assert (spec.pos, spec.dim, int(spec.cat)) == (3, 2, 1 if wrt == "x" else 0)
    cat = "Vj" if wrt == "x" else "Vi"
    explicit = Genred(f"Grad(Exp(-SqDist(x, y)) * b, {wrt}, e)", aliases + [f"e = {cat}(2)"],
                      axis=axis)
    out = implicit(x, y, b, e, backend="numpy")
    assert_close(out, explicit(x, y, b, e, backend="numpy"), rtol=1e-14, atol=1e-14)
    # and against the closed form
    d = x[:, None, :] - y[None, :, :]
    k = np.exp(-(d ** 2).sum(-1))
    if wrt == "x":
        ref = (-2 * d * (k * (b[None] * e[None]).sum(-1))[..., None]).sum(1)
    else:
        ref = (2 * d * (k * (b[None] * e[:, None]).sum(-1))[..., None]).sum(0)
    assert_close(out, ref)


# ---------------------------------------------------------------------------
# second order: nested Grad, Diff, Laplacian
# ---------------------------------------------------------------------------

SMOOTH = [
    ("Exp(-SqDist(x, y)) * b", {"x": V("i", 3), "y": V("j", 3), "b": V("j", 1)}),
    ("Sin(x * y) | Log(x * x + y * y)", {"x": V("i", 2), "y": V("j", 2)}),
    ("Inv(1 + SqDist(x, y)) * Atan(Sum(x))", {"x": V("i", 3), "y": V("j", 3)}),
    ("Sqrt(1 + SqNorm2(MatVecMult(y, x)))", {"x": V("i", 2), "y": V("j", 6)}),
]


@pytest.mark.parametrize("formula, variables", SMOOTH, ids=[s[0] for s in SMOOTH])
def test_hessian_vector_product(formula, variables):
    """Grad(Grad(F, x, e), x, u) = H u, the derivative of the gradient along u."""
    values = inputs(variables, seed=11)
    aliases = [f"{n} = {CATS[c]}({d})" for n, (c, d, _) in variables.items()]
    dim_f, dim_x = parsed(formula, variables).dim, variables["x"][1]
    gen = rng(12)
    e, u = gen.uniform(-1, 1, (M, dim_f)), gen.uniform(-1, 1, (M, dim_x))
    aliases += [f"e = Vi({dim_f})", f"u = Vi({dim_x})"]
    hvp = Genred(f"Grad(Grad({formula}, x, e), x, u)", aliases, axis=1)
    out = hvp(*values.values(), e, u, backend="numpy")
    gradient = Genred(f"Grad({formula}, x, e)", aliases[:-1], axis=1)
    h = 1e-5
    plus = dict(values, x=values["x"] + h * u)
    minus = dict(values, x=values["x"] - h * u)
    fd = (gradient(*plus.values(), e, backend="numpy")
          - gradient(*minus.values(), e, backend="numpy")) / (2 * h)
    check(out, fd, formula)


def test_mixed_second_derivative():
    """Grad(Grad(F, x, e), y, u): derivative in y_j of sum_i <Grad(F, x, e)_ij, u_i>."""
    variables = {"x": V("i", 3), "y": V("j", 3), "b": V("j", 1)}
    formula = "Exp(-SqDist(x, y)) * b"
    values = inputs(variables, seed=13)
    gen = rng(14)
    e, u = gen.uniform(-1, 1, (M, 1)), gen.uniform(-1, 1, (M, 3))
    aliases = ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "e = Vi(1)", "u = Vi(3)"]
    out = Genred(f"Grad(Grad({formula}, x, e), y, u)", aliases, axis=0)(
        *values.values(), e, u, backend="numpy")
    inner = Genred(f"Grad({formula}, x, e) | u", aliases, axis=0)
    h = 1e-5
    columns = []
    for k in range(3):
        rows = []
        for sign in (1, -1):
            y = values["y"].copy()
            y[:, k] += sign * h
            rows.append(inner(values["x"], y, values["b"], e, u, backend="numpy")[:, 0])
        columns.append((rows[0] - rows[1]) / (2 * h))
    check(out, np.stack(columns, -1), "mixed")


@pytest.mark.parametrize("formula, variables", SMOOTH, ids=[s[0] for s in SMOOTH])
@pytest.mark.parametrize("wrt", ["x", "y"])
def test_diff_is_the_directional_derivative(formula, variables, wrt):
    values = inputs(variables, seed=21)
    aliases = [f"{n} = {CATS[c]}({d})" for n, (c, d, _) in variables.items()]
    cat, dim, _ = variables[wrt]
    u = rng(22).uniform(-1, 1, (M if cat == "i" else N, dim))
    forward = Genred(formula, aliases, axis=1)
    out = Genred(f"Diff({formula}, {wrt}, u)", aliases + [f"u = {CATS[cat]}({dim})"],
                 axis=1)(*values.values(), u, backend="numpy")
    h = 1e-5
    plus = dict(values, **{wrt: values[wrt] + h * u})
    minus = dict(values, **{wrt: values[wrt] - h * u})
    fd = (forward(*plus.values(), backend="numpy")
          - forward(*minus.values(), backend="numpy")) / (2 * h)
    check(out, fd, f"Diff wrt {wrt}")


LAPLACIAN = [s for s in SMOOTH if parsed(*s).dim == 1]


@pytest.mark.parametrize("formula, variables", LAPLACIAN, ids=[s[0] for s in LAPLACIAN])
@pytest.mark.parametrize("wrt", ["x", "y"])
def test_laplacian_matches_second_differences(formula, variables, wrt):
    values = inputs(variables, seed=31)
    aliases = [f"{n} = {CATS[c]}({d})" for n, (c, d, _) in variables.items()]
    axis = 0 if variables[wrt][0] == "j" else 1
    out = Genred(f"Laplacian({formula}, {wrt})", aliases, axis=axis)(
        *values.values(), backend="numpy")
    forward = Genred(formula, aliases, axis=axis)
    center = forward(*values.values(), backend="numpy")
    h = 1e-4
    fd = np.zeros_like(center)
    for k in range(variables[wrt][1]):
        side = []
        for sign in (1, -1):
            moved = {name: value.copy() for name, value in values.items()}
            moved[wrt][:, k] += sign * h
            side.append(forward(*moved.values(), backend="numpy"))
        fd += (side[0] - 2 * center + side[1]) / h ** 2
    scale = max(1.0, float(np.abs(fd).max()))
    assert_close(out, fd, rtol=1e-4, atol=1e-4 * scale, what=f"Laplacian wrt {wrt}")


def test_grad_of_grad_is_symmetric_in_e_and_u():
    """<Grad(Grad(F, x, e), x, u), w> is a Hessian form: swapping u and w keeps it."""
    gen = rng(40)
    x, y = gen.random((3, 3)), gen.random((5, 3))
    u, w, e = gen.random((3, 3)), gen.random((3, 3)), gen.random((3, 1))
    aliases = ["x = Vi(3)", "y = Vj(3)", "e = Vi(1)", "u = Vi(3)"]
    hvp = Genred("Grad(Grad(Exp(-SqDist(x, y)), x, e), x, u)", aliases, axis=1)
    a = (hvp(x, y, e, u, backend="numpy") * w).sum()
    b = (hvp(x, y, e, w, backend="numpy") * u).sum()
    assert abs(a - b) <= 1e-12 * max(abs(a), 1)


def test_diff_and_grad_are_adjoint():
    """<Diff(F, x, u), e> = <u, Grad(F, x, e)> per row (forward mode = transposed reverse)."""
    gen = rng(41)
    x, y, b = gen.random((3, 2)), gen.random((4, 2)), gen.random((4, 3))
    u, e = gen.random((3, 2)), gen.random((3, 6))
    aliases = ["x = Vi(2)", "y = Vj(2)", "b = Vj(3)"]
    formula = "Exp(-SqDist(x, y)) * TensorDot(x, b, [2], [3], [], [], [1, 0])"
    diff = Genred(f"Diff({formula}, x, u)", aliases + ["u = Vi(2)"], axis=1)(
        x, y, b, u, backend="numpy")
    grad = Genred(f"Grad({formula}, x, e)", aliases + ["e = Vi(6)"], axis=1)(
        x, y, b, e, backend="numpy")
    assert diff.shape == (3, 6) and grad.shape == (3, 2)
    assert_close((diff * e).sum(1), (grad * u).sum(1))
