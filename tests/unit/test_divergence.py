"""Divergence, GradMatrix and DiffClampInt, the KeOps formula functions of
keopscore's ``formulas/autodiff/Divergence.py``, ``formulas/maths/GradMatrix.py``
and ``formulas/maths/DiffClampInt.py``.

References are independent of dredux's derivatives: central finite differences
of the forward formula in float64, analytic NumPy formulas, and the values
KeOps's own definitions give (the layout of ``GradMatrix``, the bounds and the
NaN of ``DiffClampInt``). Every formula runs on the NumPy backend and, where a
C++ compiler is there, on the CPU backend.
"""

from __future__ import annotations

import numpy as np
import pytest

from dredux import Genred, LazyTensor
from dredux.backends import cpu_available
from dredux.errors import DreduxError, FormulaError, ShapeError
from dredux.ir import Op, walk
from dredux.parse import parse_aliases, parse_formula
from tests.helpers import assert_caret_under, assert_close, rng

CPU = pytest.param("cpu", marks=pytest.mark.skipif(not cpu_available(),
                                                   reason="no C++ compiler"))
BACKENDS = ["numpy", CPU]
CATS = {"i": "Vi", "j": "Vj", "p": "Pm"}
M, N = 4, 5
H = 1e-5  # central differences: error ~ H^2 + 1e-16 / H


def _inputs(variables: dict, seed: int) -> dict:
    gen = rng(seed)
    rows = {"i": M, "j": N, "p": None}
    out = {}
    for name, (cat, dim) in variables.items():
        shape = (dim,) if rows[cat] is None else (rows[cat], dim)
        out[name] = gen.uniform(-1, 1, shape)
    return out


def _aliases(variables: dict) -> list[str]:
    return [f"{n} = {CATS[c]}({d})" for n, (c, d) in variables.items()]


def _axis(variables: dict, wrt: str) -> int:
    return 0 if variables[wrt][0] == "j" else 1


def _jacobian_fd(formula: str, variables: dict, wrt: str, values: dict) -> np.ndarray:
    """d/d wrt_j of the reduced forward formula, component i: shape (rows, dim F, dim wrt).

    The reduction runs over the other axis, so that row r depends on row r of
    an i- or j-variable only (a parameter moves every row alike)."""
    forward = Genred(formula, _aliases(variables), axis=_axis(variables, wrt))
    dim = variables[wrt][1]
    columns = []
    for j in range(dim):
        side = []
        for sign in (1, -1):
            moved = {name: value.copy() for name, value in values.items()}
            moved[wrt][..., j] += sign * H
            side.append(forward(*moved.values(), backend="numpy"))
        columns.append((side[0] - side[1]) / (2 * H))
    return np.stack(columns, axis=-1)


# vector fields F of the dimension of the variable differentiated, smooth
FIELDS = [
    ("(x - y) * Exp(-SqDist(x, y))", {"x": ("i", 3), "y": ("j", 3)}, "x"),
    ("(x - y) * Exp(-SqDist(x, y))", {"x": ("i", 3), "y": ("j", 3)}, "y"),
    ("Sin(x * y) + x * Sum(x * y)", {"x": ("i", 2), "y": ("j", 2)}, "x"),
    ("MatVecMult(a, x) * Cos(y)", {"x": ("i", 3), "y": ("j", 3), "a": ("p", 9)}, "x"),
    ("Exp(p * y) * x", {"x": ("i", 2), "y": ("j", 2), "p": ("p", 2)}, "p"),
    ("Square(x) * y", {"x": ("i", 1), "y": ("j", 1)}, "x"),  # dimension 1
]


@pytest.mark.parametrize("formula, variables, wrt", FIELDS,
                         ids=[f"{f}-{w}" for f, _, w in FIELDS])
def test_divergence_matches_finite_differences(formula, variables, wrt):
    values = _inputs(variables, seed=1)
    jac = _jacobian_fd(formula, variables, wrt, values)
    fd = np.trace(jac, axis1=-2, axis2=-1)[..., None]
    out = Genred(f"Divergence({formula}, {wrt})", _aliases(variables),
                 axis=_axis(variables, wrt))(*values.values(), backend="numpy")
    assert_close(out, fd, rtol=1e-7, atol=1e-8, what=f"Divergence wrt {wrt}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_divergence_of_a_gaussian_field_matches_its_formula(backend):
    # div_x [(x - y) e^{-|x - y|^2}] = (D - 2 |x - y|^2) e^{-|x - y|^2}
    gen = rng(2)
    x, y = gen.uniform(-1, 1, (M, 3)), gen.uniform(-1, 1, (N, 3))
    r2 = ((x[:, None] - y[None]) ** 2).sum(-1)
    expected = ((3 - 2 * r2) * np.exp(-r2)).sum(1, keepdims=True)
    routine = Genred("Divergence((x - y) * Exp(-SqDist(x, y)), x)", ["x = Vi(3)", "y = Vj(3)"],
                     axis=1)
    assert_close(routine(x, y, backend=backend), expected, rtol=1e-12, atol=1e-13)
    # float32 too, within float32's rounding
    out32 = routine(x.astype(np.float32), y.astype(np.float32), backend=backend)
    assert out32.dtype == np.float32
    assert_close(out32, expected, rtol=1e-5, atol=1e-5)



@pytest.mark.parametrize("backend", BACKENDS)
def test_laplacian_and_divergence_at_high_dimension_cost_o_of_d(backend):
    """At D = 64 both match their analytic formulas, and their cost per pair
    (plan.pair_cost, what the planner and the kernels pay) grows like D, as a
    Gaussian's does: the Jacobian's diagonal is one vector expression, whose
    scalars leave its sum (4 E S - 2 D E on the SqDist S). With one sweep per
    component, each of the D terms computed a D-vector: 25,100 units at D = 64
    for the Laplacian, 180 times the Gaussian's 140."""
    from dredux.plan import pair_cost

    d, gen = 64, rng(5)
    x, y = gen.uniform(-0.3, 0.3, (M, d)), gen.uniform(-0.3, 0.3, (N, d))
    b = gen.uniform(-1, 1, (N, 1))
    r2 = ((x[:, None] - y[None]) ** 2).sum(-1)
    aliases = [f"x = Vi({d})", f"y = Vj({d})", "b = Vj(1)"]
    # Laplacian_x e^{-r^2} = (4 r^2 - 2 D) e^{-r^2},
    # div_x [(x - y) e^{-r^2}] = (D - 2 r^2) e^{-r^2}
    cases = {"Laplacian(Exp(-SqDist(x, y)), x) * b": (4 * r2 - 2 * d) * np.exp(-r2),
             "Divergence((x - y) * Exp(-SqDist(x, y)), x) * b": (d - 2 * r2) * np.exp(-r2)}
    for formula, pairs in cases.items():
        routine = Genred(formula, aliases, axis=1)
        assert_close(routine(x, y, b, backend=backend), pairs @ b, rtol=1e-11, atol=1e-11,
                     what=formula)
        costs = [pair_cost(Genred(formula, [f"x = Vi({n})", f"y = Vj({n})", "b = Vj(1)"],
                                  axis=1).formulas, routine.reduction, "float32")
                 for n in (16, 64)]
        assert costs[1] < 5 * costs[0] and costs[1] < 12 * d, (formula, costs)


GRAD_MATRIX = [
    ("Concat(Sin(x * y), Sum(x) * Elem(y, 0))", {"x": ("i", 2), "y": ("j", 2)}, "x"),
    ("Concat(Sin(x * y), Sum(x) * Elem(y, 0))", {"x": ("i", 2), "y": ("j", 2)}, "y"),
    ("MatVecMult(a, x) * Exp(-SqDist(x, y))", {"x": ("i", 2), "y": ("j", 2), "a": ("p", 6)},
     "x"),
    ("Exp(x * y)", {"x": ("i", 1), "y": ("j", 4)}, "x"),  # dim(v) = 1
    ("Sum(Sin(x - y))", {"x": ("i", 3), "y": ("j", 3)}, "x"),  # dim(F) = 1: the gradient
]


@pytest.mark.parametrize("formula, variables, wrt", GRAD_MATRIX,
                         ids=[f"{f}-{w}" for f, _, w in GRAD_MATRIX])
def test_grad_matrix_matches_finite_differences(formula, variables, wrt):
    """Component i * dim(v) + j is d F_i / d v_j, as in KeOps."""
    values = _inputs(variables, seed=3)
    jac = _jacobian_fd(formula, variables, wrt, values)
    out = Genred(f"GradMatrix({formula}, {wrt})", _aliases(variables),
                 axis=_axis(variables, wrt))(*values.values(), backend="numpy")
    assert out.shape == jac.shape[:-2] + (jac.shape[-2] * jac.shape[-1],)
    assert_close(out, jac.reshape(out.shape), rtol=1e-7, atol=1e-8, what=f"wrt {wrt}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_grad_matrix_layout_is_keops(backend):
    # F = (x0 x1 y0, x0^2, sin x1): KeOps's GradMatrix(F, x) is, row after row,
    # the gradient of each F_i: [x1 y0, x0 y0, 2 x0, 0, 0, cos x1] (checked with
    # pykeops 2.3 at x = (0.3, -0.2), y = (0.1, 0.5): -0.02, 0.03, 0.6, 0, 0, 0.98007)
    formula = ("GradMatrix(Concat(Concat(Elem(x, 0) * Elem(x, 1) * Elem(y, 0), "
               "Square(Elem(x, 0))), Sin(Elem(x, 1))), x)")
    x, y = np.array([[0.3, -0.2], [1.5, 0.7]]), np.array([[0.1, 0.5]])
    out = Genred(formula, ["x = Vi(2)", "y = Vj(2)"], axis=1)(x, y, backend=backend)
    x0, x1, y0 = x[:, 0], x[:, 1], y[0, 0]
    expected = np.stack([x1 * y0, x0 * y0, 2 * x0, 0 * x0, 0 * x0, np.cos(x1)], axis=1)
    assert_close(out, expected, rtol=1e-12, atol=1e-14)
    assert_close(out[0], [-0.02, 0.03, 0.6, 0, 0, 0.9800665778412416], rtol=1e-12,
                 atol=1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
def test_second_order_forms_agree(backend):
    """Divergence(Grad(F, x, 1), x) is Laplacian(F, x) (KeOps's own definition of
    Laplacian), GradMatrix(Grad(F, x, 1), x) is the (symmetric) Hessian, whose
    trace is the Laplacian too."""
    aliases = ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)"]
    f = "Exp(-SqDist(x, y)) * b + Sin(Sum(x * y))"
    gen = rng(4)
    x, y, b = gen.uniform(-1, 1, (M, 3)), gen.uniform(-1, 1, (N, 3)), gen.uniform(-1, 1, (N, 1))
    div = Genred(f"Divergence(Grad({f}, x, 1), x)", aliases, axis=1)(x, y, b, backend=backend)
    lap = Genred(f"Laplacian({f}, x)", aliases, axis=1)(x, y, b, backend="numpy")
    hess = Genred(f"GradMatrix(Grad({f}, x, 1), x)", aliases, axis=1)(x, y, b,
                                                                    backend=backend)
    assert_close(div, lap, rtol=1e-12, atol=1e-12)
    hess = hess.reshape(M, 3, 3)
    assert_close(hess, hess.transpose(0, 2, 1), rtol=1e-12, atol=1e-12)
    assert_close(np.trace(hess, axis1=1, axis2=2)[:, None], lap, rtol=1e-12, atol=1e-12)
    # the analytic Hessian of the Gaussian part alone
    g = Genred("GradMatrix(Grad(Exp(-SqDist(x, y)), x, 1), x)", aliases[:2], axis=1)(
        x, y, backend=backend).reshape(M, 3, 3)
    d = x[:, None] - y[None]
    k = np.exp(-(d ** 2).sum(-1))[..., None, None]
    expected = (k * (4 * d[..., :, None] * d[..., None, :] - 2 * np.eye(3))).sum(1)
    assert_close(g, expected, rtol=1e-12, atol=1e-12)


def test_derivatives_of_divergence_and_grad_matrix_nest():
    # Grad of a Divergence, wrt another variable: against finite differences
    variables = {"x": ("i", 2), "y": ("j", 2)}
    inner = "Divergence(Sin(x * y) * Sum(x), x)"
    values = _inputs(variables, seed=5)
    fd = _jacobian_fd(inner, variables, "y", values)[:, 0, :]
    out = Genred(f"Grad({inner}, y, 1)", _aliases(variables), axis=0)(
        *values.values(), backend="numpy")
    assert_close(out, fd, rtol=1e-7, atol=1e-8)


# DiffClampInt(x, a, b) = (x < a) ? 0 : ((x > b) ? 0 : 1): 1 on [a, b], bounds
# included, and 1 at NaN (both comparisons false), as KeOps's C code (pykeops 2.3
# gives 0 1 1 1 1 1 0 1 0 0 on the points below)
POINTS = np.array([-2.0, -1.0, -0.5, 0.0, 1.0, 2.0, 2.5, np.nan, np.inf, -np.inf])
EXPECTED = np.array([0, 1, 1, 1, 1, 1, 0, 1, 0, 0], dtype=float)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("backend", BACKENDS)
def test_diff_clamp_int_is_one_on_the_closed_interval(backend, dtype):
    z = POINTS[:, None].astype(dtype)
    w = np.ones((1, 1), dtype)
    routine = Genred("DiffClampInt(z, -1, 2)", ["z = Vi(1)", "w = Vj(1)"], axis=1)
    out = routine(z, w, backend=backend)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out[:, 0], EXPECTED)
    # next to the bounds, on both sides
    eps = np.finfo(dtype).eps * 4
    near = np.array([[-1 - eps], [-1 + eps], [2 - eps], [2 + eps]], dtype)
    np.testing.assert_array_equal(routine(near, w, backend=backend)[:, 0], [0, 1, 1, 0])
    # a > b: zero everywhere but NaN, as KeOps
    empty = Genred("DiffClampInt(z, 2, -1)", ["z = Vi(1)", "w = Vj(1)"], axis=1)
    np.testing.assert_array_equal(empty(z, w, backend=backend)[:, 0],
                                  np.isnan(POINTS).astype(float))


@pytest.mark.parametrize("backend", BACKENDS)
def test_diff_clamp_int_is_the_derivative_of_clamp_int_and_has_none(backend):
    gen = rng(6)
    x = gen.uniform(-3, 3, (M, 3))
    x[0] = [-1.0, 2.0, 0.5]  # the bounds themselves: ClampInt's derivative is 1 there
    e = gen.uniform(-1, 1, (N, 3))
    aliases = ["x = Vi(3)", "e = Vj(3)"]
    grad = Genred("Grad(ClampInt(x, -1, 2), x, e)", aliases, axis=1)(x, e, backend=backend)
    mask = Genred("DiffClampInt(x, -1, 2) * e", aliases, axis=1)(x, e, backend=backend)
    expected = ((x >= -1) & (x <= 2)) * e.sum(0)
    assert_close(grad, expected, rtol=1e-12, atol=1e-12)
    assert_close(mask, expected, rtol=1e-12, atol=1e-12)
    # its own derivative is zero (KeOps: Zero), a vector function of x broadcast
    names, signature = parse_aliases(aliases)
    zero = Genred("Grad(DiffClampInt(x, -1, 2) * e, x, e)", aliases, axis=1)
    np.testing.assert_array_equal(zero(x, e, backend="numpy"), np.zeros((M, 3)))
    parsed = parse_formula("DiffClampInt(x, -1, 2)", names, signature)
    assert parsed.dim == 3


# ---------------------------------------------------------------------------
# bad uses
# ---------------------------------------------------------------------------

ALIASES = ["x = Vi(3)", "y = Vj(2)", "s = Vj(3)"]
BAD = [
    # (formula, token under the caret, words of the message)
    ("Divergence(x, y)", "Divergence(x, y)",
     ["Divergence(F, v) needs F of the dimension of v (2)", "dimension 3"]),
    ("Divergence(Sum(x), x)", "Divergence(Sum(x), x)", ["dimension of v (3)", "dimension 1"]),
    ("Exp(x) + Divergence(x * s, s * 2)", "s * 2", ["differentiates with respect to a variable"]),
    ("Divergence(x)", "Divergence(x)", ["takes 2 arguments, got 1", "Usage: Divergence(F, v)"]),
    ("GradMatrix(x, x, x)", "GradMatrix(x, x, x)", ["takes 2 arguments, got 3"]),
    ("GradMatrix(x, Sum(x))", "Sum(x)", ["variable"]),
    ("DiffClampInt(x, 1.5, 2)", "1.5", ["integer"]),
    ("DiffClampInt(x, -1, y)", "y", ["integer"]),
    ("DiffClampInt(x, -1, 9007199254740993)", "9007199254740993", ["outside the limits"]),
    ("DiffClampInt(x, -1)", "DiffClampInt(x, -1)", ["takes 3 arguments, got 2"]),
    ("Divergense(x, x)", "Divergense", ["unknown function", "Did you mean Divergence"]),
]


@pytest.mark.parametrize("formula, token, words", BAD, ids=[b[0] for b in BAD])
def test_bad_uses_are_formula_errors_under_the_call(formula, token, words):
    names, signature = parse_aliases(ALIASES)
    with pytest.raises(FormulaError) as info:
        parse_formula(formula, names, signature)
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in:\n{message}"
    assert_caret_under(message, formula, token)


def test_grad_matrix_wider_than_the_dimension_limit_is_refused():
    with pytest.raises(FormulaError, match="dimension 90000, more than the limit of 65536"):
        Genred("GradMatrix(x * y, y)", ["x = Vi(300)", "y = Vj(300)"], axis=1)


def _rotated(d: int) -> str:
    """x with its components rotated by one: a Concat, which mixes components, so
    a Divergence through it takes one sweep per component."""
    return f"Concat(Extract(x, 1, {d - 1}), Extract(x, 0, 1))"


def test_one_sweep_per_component_past_the_size_limit_is_refused():
    # F too large for one sweep per component: refused before any is built
    big = " + ".join(f"Sin(x * {k})" for k in range(1, 401))
    rotated = " + ".join(f"Sin({_rotated(300)} * {k})" for k in range(1, 401))
    with pytest.raises(DreduxError, match="once for each of its 300 components"):
        Genred(f"Divergence({rotated}, x)", ["x = Vi(300)"], axis=1)
    with pytest.raises(DreduxError, match="once for each of its 200 components"):
        Genred(f"GradMatrix({big}, x)", ["x = Vi(200)"], axis=1)
    # a small F of many components: refused while the sweeps are counted
    with pytest.raises(DreduxError, match="components: the first"):
        Genred(f"Divergence({_rotated(20000)}, x)", ["x = Vi(20000)"], axis=1)
    # element-wise, the same F takes no sweep per component: its divergence is one
    # vector expression (sum_k sum_m m cos(m x_k))
    x = rng(8).uniform(-1, 1, (2, 300))
    out = Genred(f"Divergence({big}, x)", ["x = Vi(300)", "y = Vj(1)"], axis=1)(
        x, np.ones((1, 1)), backend="numpy")
    expected = sum(m * np.cos(m * x) for m in range(1, 401)).sum(1, keepdims=True)
    assert_close(out, expected, rtol=1e-11, atol=1e-9)
    out = Genred("Divergence(x, x)", ["x = Vi(30000)", "y = Vj(1)"], axis=1)(
        np.ones((2, 30000)), np.ones((3, 1)), backend="numpy")
    np.testing.assert_array_equal(out, np.full((2, 1), 3 * 30000.0))
    # within the limits, a wide one computes (the trace of the identity)
    x = rng(7).uniform(-1, 1, (2, 2000))
    out = Genred("Divergence(x, x)", ["x = Vi(2000)", "y = Vj(1)"], axis=1)(
        x, np.ones((3, 1)), backend="numpy")
    np.testing.assert_array_equal(out, np.full((2, 1), 3 * 2000.0))


def test_placeholders_are_replaced_and_printed_as_keops_spells_them():
    from dredux.autodiff import differentiate
    from dredux.printing import to_formula

    names, signature = parse_aliases(["x = Vi(2)", "y = Vj(2)"])
    text = "Divergence(x * y, x) + Sum(GradMatrix(Exp(x * y), y))"
    raw = parse_formula(text, names, signature)
    assert {Op.DIVERGENCE, Op.GRADMATRIX} <= {n.op for n in walk(raw)}
    assert "Divergence(" in to_formula(raw) and "GradMatrix(" in to_formula(raw)
    done = differentiate(raw)
    assert not {n.op for n in walk(done)} & {Op.DIVERGENCE, Op.GRADMATRIX}
    # the printed placeholder parses back to the same node
    again = parse_formula(to_formula(raw, {(0, 0): "x", (1, 1): "y"}), names, signature)
    assert again == raw


def test_lazytensor_divergence():
    gen = rng(8)
    x, y = gen.uniform(-1, 1, (M, 3)), gen.uniform(-1, 1, (N, 3))
    x_i, y_j = LazyTensor(x[:, None, :]), LazyTensor(y[None, :, :])
    field = (x_i - y_j) * (-((x_i - y_j) ** 2).sum(-1)).exp()
    out = field.divergence(x_i).sum(axis=1, backend="numpy")
    r2 = ((x[:, None] - y[None]) ** 2).sum(-1)
    assert_close(out, ((3 - 2 * r2) * np.exp(-r2)).sum(1, keepdims=True), rtol=1e-12,
                 atol=1e-13)
    with pytest.raises(ShapeError, match="dimension of v"):  # as laplacian's dimension
        (x_i - y_j).sum(-1).divergence(x_i)
    # grad_matrix: the Jacobian of the field, d field_i / d x_j at i * 3 + j
    jac = field.grad_matrix(x_i).sum(axis=1, backend="numpy")
    u = x[:, None] - y[None]
    g = np.exp(-(u ** 2).sum(-1))[..., None, None]
    ref = (g * (np.eye(3) - 2 * u[..., :, None] * u[..., None, :])).sum(1).reshape(M, 9)
    assert_close(jac, ref, rtol=1e-12, atol=1e-13)
