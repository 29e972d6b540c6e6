"""Matrix products of a row- or parameter-level matrix with a pair-level vector,
lowered to one contraction per output component by both code generators
(dredux/codegen/products.py), and their float64 references.

name -> (formula, reduction, K, contractions for D on the CPU, reference(x, y,
b, e, S, A)) with S the (D, D) metric and A the (M, D, 4) matrices of the
row-level products.
"""

from __future__ import annotations

import re

import numpy as np

from dredux import Genred


def _quad(x, y, s):
    u = x[:, None] - y[None]
    return np.einsum("ijk,kl,ijl->ij", u, s, u)


def _grad_quad(x, y, s, e):
    u = x[:, None] - y[None]
    w = np.exp(-_quad(x, y, s)) * e
    return -np.einsum("ij,ijk->ik", w, u @ s.T + u @ s)


PRODUCTS = {
    "weighted-full": ("Exp(-WeightedSqDist(s, x, y)) * b", "Sum", None, lambda d: d,
                      lambda x, y, b, e, s, a: np.exp(-_quad(x, y, s)) @ b),
    "matvec-param": ("MatVecMult(Extract(s, 0, 3 * D), x - y)", "Sum", None, lambda d: 3,
                     lambda x, y, b, e, s, a: (x[:, None] - y[None]).sum(1) @ s[:3].T),
    # summed through a TensorProd (not element-wise): read whole, as a Concat
    "matvec-tensorprod": ("Sum(TensorProd(MatVecMult(Extract(s, 0, 3 * D), x - y), x))", "Sum",
                          None, lambda d: 3,
                          lambda x, y, b, e, s, a: ((x[:, None] - y[None]) @ s[:3].T)
                          .sum((1, 2))[:, None] * x.sum(1, keepdims=True)),
    "vecmat-row": ("VecMatMult(x - 0.5 * y, a) * b", "Sum", None, lambda d: 4,
                   lambda x, y, b, e, s, a: np.einsum(
                       "ijd,idk->ik", (x[:, None] - 0.5 * y[None]) * b[None], a)),
    "matvec-row-min": ("SqNorm2(MatVecMult(t, y - x))", "Min", None, lambda d: 4,
                       lambda x, y, b, e, s, a: (np.einsum(
                           "idk,ijd->ijk", a, y[None] - x[:, None]) ** 2).sum(-1)
                       .min(1, keepdims=True)),
    "weighted-argkmin": ("WeightedSqDist(s, x, y)", "ArgKMin", 5, lambda d: d, None),
    # every row has a column within 1e-3: the direct form keeps the relative
    # accuracy that the expanded x S x + y S y - 2 x S y would lose
    "weighted-min-near": ("WeightedSqDist(s, x, y)", "Min", None, lambda d: d,
                          lambda x, y, b, e, s, a: _quad(x, y, s).min(1, keepdims=True)),
    # TensorDots that are matrix-vector products (products.matrix_vector), in
    # both argument orders and both orientations of the matrix
    "tensordot-matvec": ("SqNorm2(TensorDot(s, x - y, [D, D], [D], [1], [0]))", "Min", None,
                         lambda d: d, lambda x, y, b, e, s, a: (
                             ((x[:, None] - y[None]) @ s.T) ** 2).sum(-1).min(1, keepdims=True)),
    "tensordot-vecmat-row": ("TensorDot(x - y, a, [D], [D, 4], [0], [0]) * b", "Sum", None,
                             lambda d: 4, lambda x, y, b, e, s, a: np.einsum(
                                 "ijd,idk->ik", (x[:, None] - y[None]) * b[None], a)),
    "tensordot-matvec-row": ("TensorDot(y - x, t, [D], [4, D], [0], [1])", "Max", None,
                             lambda d: 4, lambda x, y, b, e, s, a: np.einsum(
                                 "idk,ijd->ijk", a, y[None] - x[:, None]).max(1)),
    # a sum of more terms than the quadratic form's: another contraction and a
    # column-only term (the GPU's passes, codegen/cuda.py::sum_passes, carry them)
    "weighted-plus-terms": ("WeightedSqDist(s, x, y) + SqDist(x, y) + Square(b)", "Max", None,
                            lambda d: d + 1, lambda x, y, b, e, s, a: (
                                _quad(x, y, s) + ((x[:, None] - y[None]) ** 2).sum(-1)
                                + b[:, 0] ** 2).max(1, keepdims=True)),
    "grad-x": ("Grad(Exp(-WeightedSqDist(s, x, y)), x, e)", "Sum", None, lambda d: 2 * d,
               lambda x, y, b, e, s, a: _grad_quad(x, y, s, e)),
}
def product_routine(name, d):
    formula, reduction, k, _, _ = PRODUCTS[name]
    # t: the transpose of a, for MatVecMult (4 x D stored row by row)
    return Genred(re.sub(r"\bD\b", str(d), formula.replace("3 * D", str(3 * d))),
                  [f"x = Vi({d})", f"y = Vj({d})", "b = Vj(1)", "e = Vi(1)",
                   f"s = Pm({d * d})", f"a = Vi({4 * d})", f"t = Vi({4 * d})"],
                  reduction_op=reduction, axis=1, opt_arg=k)


def check_product(g: Genred, name: str, d: int, dtype, backend: str, tol: dict) -> None:
    """Runs product ``name`` at D = ``d`` on ``backend`` (37 rows: a partial pass
    or warp; 300 columns: partial tiles and blocks) against its float64
    reference, within ``tol`` ({"rtol", "atol"}) times 10."""
    gen = np.random.default_rng(d)
    m, n = 37, 300
    x = gen.standard_normal((m, d)) / np.sqrt(d)
    y = gen.standard_normal((n, d)) / np.sqrt(d)
    if name.endswith("near"):
        y[:m] = x + 1e-3 * gen.standard_normal((m, d)) / np.sqrt(d)
    b = gen.uniform(0.5, 1.5, (n, 1))
    e = gen.uniform(0.5, 1.5, (m, 1))
    q = gen.standard_normal((d, d)) / d
    s = q @ q.T + np.eye(d) / d
    a = gen.standard_normal((m, d, 4))
    t = a.transpose(0, 2, 1)  # MatVecMult(t_i, v) = v @ a_i
    args = [v.astype(dtype) for v in (x, y, b, e, s.ravel(), a.reshape(m, -1),
                                      np.ascontiguousarray(t).reshape(m, -1))]
    out = g(*args, backend=backend)
    x, y, b, e, s, a = (v.astype(dtype).astype(np.float64) for v in (x, y, b, e, s, a))
    if name == "weighted-argkmin":
        dist = _quad(x, y, s)
        got = np.take_along_axis(dist, out.astype(np.int64), 1)
        np.testing.assert_allclose(got, np.sort(dist, 1)[:, :5], rtol=tol["rtol"] * 10)
        return
    ref = PRODUCTS[name][4](x, y, b, e, s, a)
    np.testing.assert_allclose(out, ref, rtol=tol["rtol"] * 10,
                               atol=tol["atol"] * 10 * np.abs(ref).max())
