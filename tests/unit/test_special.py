"""KeOps's Kronecker product, B-splines and soft-DTW, through LazyTensor and Genred.

References are independent NumPy implementations in float64 (tests/op_cases.py:
``np.kron``, the textbook B-spline recursion, Cuturi and Blondel's soft-DTW
recursions) and central finite differences; the per-op cases of op_cases.py
run these operations on every backend tier as well.
"""

from __future__ import annotations

import numpy as np
import pytest

from dredux import FormulaError, Genred, LazyTensor
from dredux.errors import ArgumentError, ShapeError
from tests.helpers import DOMAINS, assert_close, rng
from tests.op_cases import bspline, kron, soft_dtw, soft_dtw_grad

M, N = 7, 9


def _lazy(x, cat):
    return LazyTensor(x[:, None, :] if cat == "i" else x[None, :, :])


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("shapes", [([2, 3], [3, 2]), ([3, 1, 2], [1, 2, 2]), ([4], [5])])
def test_keops_kron_is_numpy_kron(backend, shapes):
    sa, sb = shapes
    g = rng(1)
    x = g.uniform(-1, 1, (M, int(np.prod(sa))))
    y = g.uniform(-1, 1, (N, int(np.prod(sb))))
    out = _lazy(x, "i").keops_kron(_lazy(y, "j"), sa, sb).sum(1, backend=backend)
    ref = kron(x[:, None, :], y[None], tuple(sa), tuple(sb)).sum(1)
    assert_close(out, ref, rtol=1e-13, atol=1e-13, what="keops_kron")


def test_keops_kron_checks_its_shapes():
    x, y = _lazy(np.ones((M, 6)), "i"), _lazy(np.ones((N, 6)), "j")
    with pytest.raises(ShapeError, match="same number of axes"):
        x.keops_kron(y, [2, 3], [6])
    with pytest.raises(ShapeError, match="shapes"):
        x.keops_kron(y, [2, 2], [3, 2])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("order", [0, 1, 2, 3, 5])
def test_bspline_matches_the_textbook_recursion(dtype, order):
    g = rng(order)
    knots = DOMAINS["knots"](g, (N, 8)).astype(dtype)  # repeated knots included
    x = DOMAINS["between"](g, (M, 1)).astype(dtype)
    w = g.uniform(0, 1, (N, 8 - order - 1)).astype(dtype)
    basis = _lazy(knots, "j").bspline(_lazy(x, "i"), k=order)
    out = (basis * _lazy(w, "j")).sum(1)
    ref = (bspline(knots[None].astype(float), x[:, None].astype(float), order)
           * w[None].astype(float)).sum(1)
    tol = 1e-5 if dtype == "float32" else 1e-13
    assert out.dtype == dtype
    assert_close(out, ref, rtol=tol, atol=tol, what=f"bspline order {order}")


def test_bspline_is_a_partition_of_unity_inside_the_knots():
    t = np.tile(np.linspace(-1, 1, 12), (2, 1))  # the same knots for both columns
    x = np.linspace(-0.4, 0.4, 9)[:, None]  # inside [t_k, t_{n-k-1}) for k = 3
    out = _lazy(t, "j").bspline(_lazy(x, "i"), 3).sum(-1).sum(1) / 2
    assert_close(out, np.ones((9, 1)), rtol=1e-14, atol=1e-14, what="sum of the basis")


def test_bspline_derivative_in_x_matches_finite_differences():
    g = rng(3)
    knots = np.sort(g.uniform(-2, 2, (N, 9)), axis=1)
    x = g.uniform(-1.5, 1.5, (M, 1))
    f = Genred("BSpline(t, x, 3) | w", ["t = Vj(9)", "x = Vi(1)", "w = Vj(5)"], axis=1)
    df = Genred("Grad(BSpline(t, x, 3) | w, x, e)",
                ["t = Vj(9)", "x = Vi(1)", "w = Vj(5)", "e = Vi(1)"], axis=1)
    w = g.uniform(-1, 1, (N, 5))
    h = 1e-6
    fd = (f(knots, x + h, w) - f(knots, x - h, w)) / (2 * h)
    assert_close(df(knots, x, w, np.ones((M, 1))), fd, rtol=1e-6, atol=1e-6,
                 what="d/dx BSpline")


def test_bspline_errors_name_the_problem():
    t, x = LazyTensor(np.ones((1, N, 5))), LazyTensor(np.ones((M, 1, 1)))
    with pytest.raises(ShapeError, match="order >= 0"):
        t.bspline(x, -1)
    with pytest.raises(ShapeError, match="at least 6 knots"):
        t.bspline(x, 4)
    with pytest.raises(ShapeError, match="scalar x"):
        t.bspline(LazyTensor(np.ones((M, 1, 2))), 1)
    with pytest.raises(FormulaError, match="no derivative with respect to its knots"):
        Genred("Grad(BSpline(t, x, 2), t, e)", ["t = Vj(6)", "x = Vi(1)", "e = Vi(3)"])


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softdtw_matches_the_recursion_over_many_columns(backend, dtype):
    g = rng(5)
    x = g.uniform(-1, 1, (M, 6)).astype(dtype)
    y = g.uniform(-1, 1, (N, 4)).astype(dtype)  # N different columns in one sum
    b = g.uniform(0, 1, (N, 1)).astype(dtype)
    out = (_lazy(x, "i").softdtw_sqdist(_lazy(y, "j"), 0.3) * _lazy(b, "j")).sum(
        1, backend=backend)
    gamma = np.full((1, 1, 1), 0.3)
    ref = (soft_dtw(x[:, None].astype(float), y[None].astype(float), gamma)
           * b[None].astype(float)).sum(1)
    tol = 1e-5 if dtype == "float32" else 1e-12
    assert_close(out, ref, rtol=tol, atol=tol, what="softdtw_sqdist")


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_softdtw_gradients_match_the_expected_alignment(backend):
    g = rng(6)
    x, y = g.uniform(-1, 1, (M, 5)), g.uniform(-1, 1, (N, 3))
    gamma = np.array([0.4])
    e = g.uniform(0, 1, (M, 1))
    xi, yj, gm, ei = _lazy(x, "i"), _lazy(y, "j"), LazyTensor(gamma), _lazy(e, "i")
    value = xi.softdtw_sqdist(yj, gm)
    full = soft_dtw_grad(x[:, None], y[None], gamma[None, None], True) * e[:, None]
    gx = value.grad(xi, ei).sum(1, backend=backend)
    gy = value.grad(yj, ei).sum(0, backend=backend)
    assert_close(gx, full[..., :5].sum(1), rtol=1e-12, atol=1e-12, what="d/dx")
    assert_close(gy, full[..., 5:8].sum(0), rtol=1e-12, atol=1e-12, what="d/dy")
    d_gamma = Genred("Grad(SoftDTW_SqDist(x, y, g), g, e)",
                     ["x = Vi(5)", "y = Vj(3)", "g = Pm(1)", "e = Vi(1)"], axis=1)
    out = d_gamma(x, y, gamma, e, backend=backend).sum(0)
    assert_close(out, full[..., 8:].sum((0, 1)), rtol=1e-11, atol=1e-11, what="d/dgamma")


@pytest.mark.parametrize("nx, my", [(1, 5), (5, 1), (2, 7), (7, 2), (4, 4)])
def test_softdtw_gradient_walks_every_cell_of_long_and_wide_grids(nx, my):
    # the compiled gradient walks anti-diagonals and does a diagonal's first and
    # last cells apart: grids of one row or column, and both orientations
    g = rng(7)
    x, y = g.uniform(-1, 1, (M, nx)), g.uniform(-1, 1, (N, my))
    gamma, e = np.array([0.6]), g.uniform(0, 1, (M, 1))
    full = soft_dtw_grad(x[:, None], y[None], gamma[None, None], True) * e[:, None]
    for axis, var, part in ((1, "x", full[..., :nx].sum(1)),
                            (0, "y", full[..., nx:nx + my].sum(0)),
                            (1, "g", full[..., nx + my:].sum(1))):
        f = Genred(f"Grad(SoftDTW_SqDist(x, y, g), {var}, e)",
                   [f"x = Vi({nx})", f"y = Vj({my})", "g = Pm(1)", "e = Vi(1)"], axis=axis)
        assert_close(f(x, y, gamma, e, backend="cpu"), part, rtol=1e-11, atol=1e-11,
                     what=f"d/d{var} on a {nx} x {my} grid")


def test_softdtw_gradient_in_x_does_not_carry_the_gamma_derivative():
    # the gamma derivative costs a division per cell: built only when asked for
    from dredux.ir import walk

    aliases = ["x = Vi(3)", "y = Vj(4)", "g = Pm(1)", "e = Vi(1)"]
    flags = {}
    for var in ("x", "g"):
        f = Genred(f"Grad(SoftDTW_SqDist(x, y, g), {var}, e)", aliases)
        flags[var] = [n.params for n in walk(f.formulas[0]) if n.op.name == "GRADSOFTDTW"]
    assert flags == {"x": [()], "g": [(1,)]}


def test_softdtw_is_differentiable_once():
    with pytest.raises(FormulaError, match="differentiated once"):
        Genred("Grad(Grad(SoftDTW_SqDist(x, y, g), x, e), x, f)",
               ["x = Vi(3)", "y = Vj(3)", "g = Pm(1)", "e = Vi(1)", "f = Vi(3)"])
    with pytest.raises(FormulaError, match="scalar gamma"):
        Genred("SoftDTW_SqDist(x, y, g)", ["x = Vi(3)", "y = Vj(3)", "g = Pm(2)"])


def test_softdtw_gradient_past_the_stack_limit_is_refused_on_compiled_backends():
    grad = Genred("Grad(SoftDTW_SqDist(x, y, g), x, e)",
                  ["x = Vi(200)", "y = Vj(200)", "g = Pm(1)", "e = Vi(1)"])
    with pytest.raises(FormulaError, match="KiB of vectors per thread"):
        grad.kernel("cpu", "float64")


def test_factorize_and_auto_factorize_leave_the_formula_as_it_is():
    x, y = _lazy(np.ones((M, 3)), "i"), _lazy(np.ones((N, 3)), "j")
    f = (-(x - y).sqnorm2()).exp() * (x - y)
    assert f.factorize(x - y) is f
    assert f.auto_factorize() is f
    with pytest.raises(ArgumentError):
        f.factorize("x - y")


def test_the_planner_counts_every_cell_of_a_soft_dtw_and_every_spline_step():
    from dredux.plan import pair_cost

    def cost(formula, aliases):
        g = Genred(formula, aliases)
        return pair_cost(g.formulas, g.reduction, "float32")

    small = cost("SoftDTW_SqDist(x, y, g)", ["x = Vi(4)", "y = Vj(4)", "g = Pm(1)"])
    large = cost("SoftDTW_SqDist(x, y, g)", ["x = Vi(64)", "y = Vj(64)", "g = Pm(1)"])
    assert large > 200 * small / 2  # 256 x the cells; the x - y terms do not count
    narrow = cost("BSpline(t, x, 1)", ["t = Vj(40)", "x = Vi(1)"])
    deep = cost("BSpline(t, x, 8)", ["t = Vj(40)", "x = Vi(1)"])
    assert deep > 5 * narrow
