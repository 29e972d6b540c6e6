"""LazyTensor, Vi/Vj/Pm, KernelSolve against dense NumPy float64 references.

Every math method and every reduction is checked against the same expression
written with NumPy on the (M, N, D) array; a sample also against the
equivalent Genred (same Program), the CPU kernels and dask inputs.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import dredux
from dredux import DtypeError, FormulaError, Genred, ShapeError, SolveError
from dredux.numpy import KernelSolve, LazyTensor, Pm, Vi, Vj

M, N, D = 7, 9, 3
GEN = np.random.default_rng(7)
X = GEN.uniform(-1, 1, (M, D))
Y = GEN.uniform(-1, 1, (N, D))
P = GEN.uniform(0.5, 1.5, D)
B = GEN.uniform(-1, 1, (N, 2))
SQ = GEN.uniform(-1, 1, (M, D * D))  # a D x D matrix per row
W = GEN.uniform(0.2, 1.0, (N, 1))

x_, y_ = X[:, None, :], Y[None, :, :]  # dense references broadcast over (M, N, D)


def lazy():
    return LazyTensor(X[:, None, :]), LazyTensor(Y[None, :, :])


def close(out, ref, tol=1e-10):
    out = np.asarray(out, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert out.shape == ref.shape, (out.shape, ref.shape)
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol)


# (name, LazyTensor formula, dense reference) for the element-wise and vector
# methods; each is reduced by a Sum over j, checked against the dense sum
METHODS = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "sub": (lambda a, b: a - b, lambda a, b: a - b),
    "rsub_number": (lambda a, b: (2 - a) * b, lambda a, b: (2 - a) * b),
    "mul_float": (lambda a, b: a * 0.5 + b, lambda a, b: a * 0.5 + b),
    "rmul_int": (lambda a, b: 3 * a - b, lambda a, b: 3 * a - b),
    "div": (lambda a, b: a / (b * b + 1), lambda a, b: a / (b * b + 1)),
    "rdiv": (lambda a, b: 1.5 / (b * b + 1) + a, lambda a, b: 1.5 / (b * b + 1) + a),
    "neg": (lambda a, b: -(a - b), lambda a, b: -(a - b)),
    "abs": (lambda a, b: abs(a - b), lambda a, b: np.abs(a - b)),
    "abs_method": (lambda a, b: (a - b).abs(), lambda a, b: np.abs(a - b)),
    "exp": (lambda a, b: (a - b).exp(), lambda a, b: np.exp(a - b)),
    "log": (lambda a, b: (a * a + b * b + 0.1).log(), lambda a, b: np.log(a * a + b * b + 0.1)),
    "xlogx": (lambda a, b: (a * b + 1.5).xlogx(),
              lambda a, b: (a * b + 1.5) * np.log(a * b + 1.5)),
    "sin": (lambda a, b: (a + b).sin(), lambda a, b: np.sin(a + b)),
    "cos": (lambda a, b: (a + b).cos(), lambda a, b: np.cos(a + b)),
    "asin": (lambda a, b: (a * b * 0.9).asin(), lambda a, b: np.arcsin(a * b * 0.9)),
    "acos": (lambda a, b: (a * b * 0.9).acos(), lambda a, b: np.arccos(a * b * 0.9)),
    "atan": (lambda a, b: (a + b).atan(), lambda a, b: np.arctan(a + b)),
    "atan2": (lambda a, b: a.atan2(b), lambda a, b: np.arctan2(a, b)),
    "sinxdivx": (lambda a, b: (a + b + 3).sinxdivx(),
                 lambda a, b: np.sin(a + b + 3) / (a + b + 3)),
    "sinc": (lambda a, b: (a + b + 3).sinc(), lambda a, b: np.sinc(a + b + 3)),
    "sqrt": (lambda a, b: (a * a + b * b).sqrt(), lambda a, b: np.sqrt(a * a + b * b)),
    "rsqrt": (lambda a, b: (a * a + b * b + 0.5).rsqrt(),
              lambda a, b: 1 / np.sqrt(a * a + b * b + 0.5)),
    "square": (lambda a, b: (a - b).square(), lambda a, b: (a - b) ** 2),
    "inv": (lambda a, b: (a * a + 1).inv() - b, lambda a, b: 1 / (a * a + 1) - b),
    "sign": (lambda a, b: (a - b).sign(), lambda a, b: np.sign(a - b)),
    "step": (lambda a, b: (a - b).step(), lambda a, b: (a - b >= 0) * 1.0),
    "relu": (lambda a, b: (a - b).relu(), lambda a, b: np.maximum(a - b, 0)),
    "floor": (lambda a, b: (3 * (a - b)).floor(), lambda a, b: np.floor(3 * (a - b))),
    "round": (lambda a, b: (a - b).round(1), lambda a, b: np.round(a - b, 1)),
    "pow_int": (lambda a, b: (a - b) ** 3, lambda a, b: (a - b) ** 3),
    "pow_2": (lambda a, b: (a - b) ** 2, lambda a, b: (a - b) ** 2),
    "pow_half": (lambda a, b: (a * a + b * b) ** 0.5, lambda a, b: np.sqrt(a * a + b * b)),
    "pow_minus_half": (lambda a, b: (a * a + 1) ** -0.5 + b, lambda a, b: (a * a + 1) ** -0.5 + b),
    "pow_float": (lambda a, b: (a * a + b * b + 0.1) ** 1.7,
                  lambda a, b: (a * a + b * b + 0.1) ** 1.7),
    "power_lazy": (lambda a, b: (a * a + 0.5).power(b * b),
                   lambda a, b: (a * a + 0.5) ** (b * b)),
    "clamp_float": (lambda a, b: (a - b).clamp(-0.3, 0.4), lambda a, b: np.clip(a - b, -0.3, 0.4)),
    "clamp_int": (lambda a, b: (3 * (a - b)).clamp(-1, 2),
                  lambda a, b: np.clip(3 * (a - b), -1, 2)),
    "clamp_lazy": (lambda a, b: a.clamp(b - 0.5, b + 0.5),
                   lambda a, b: np.clip(a, b - 0.5, b + 0.5)),
    "ifelse": (lambda a, b: (a - b).ifelse(a, b), lambda a, b: np.where(a - b >= 0, a, b)),
    "mod": (lambda a, b: (a - b).mod(0.7, 0.1),
            lambda a, b: (a - b) - 0.7 * np.floor((a - b - 0.1) / 0.7)),
    "eq": (lambda a, b: (a.round(0) == b.round(0)),
           lambda a, b: (np.round(a) == np.round(b)) * 1.0),
    "ne": (lambda a, b: (a.round(0) != b.round(0)),
           lambda a, b: (np.round(a) != np.round(b)) * 1.0),
    "lt": (lambda a, b: a < b, lambda a, b: (a < b) * 1.0),
    "le": (lambda a, b: a <= b, lambda a, b: (a <= b) * 1.0),
    "gt": (lambda a, b: a > b, lambda a, b: (a > b) * 1.0),
    "ge": (lambda a, b: a >= b, lambda a, b: (a >= b) * 1.0),
    "sqnorm2": (lambda a, b: (a - b).sqnorm2(),
                lambda a, b: ((a - b) ** 2).sum(-1, keepdims=True)),
    "norm2": (lambda a, b: (a - b).norm2(),
              lambda a, b: np.sqrt(((a - b) ** 2).sum(-1, keepdims=True))),
    "norm": (lambda a, b: (a - b).norm(-1),
             lambda a, b: np.sqrt(((a - b) ** 2).sum(-1, keepdims=True))),
    "normalize": (lambda a, b: (a - b + 3).normalize(),
                  lambda a, b: (a - b + 3) / np.sqrt(((a - b + 3) ** 2).sum(-1, keepdims=True))),
    "sqdist": (lambda a, b: a.sqdist(b), lambda a, b: ((a - b) ** 2).sum(-1, keepdims=True)),
    "scalprod": (lambda a, b: (a | b), lambda a, b: (a * b).sum(-1, keepdims=True)),
    "scalprod_array": (lambda a, b: (a | Y[None, :, :]),
                       lambda a, b: (a * b).sum(-1, keepdims=True)),
    "vector_sum": (lambda a, b: (a * b).sum(-1), lambda a, b: (a * b).sum(-1, keepdims=True)),
    "vector_sum_dim2": (lambda a, b: (a * b).sum(dim=2),
                        lambda a, b: (a * b).sum(-1, keepdims=True)),
    "vector_min": (lambda a, b: (a * b).min(-1), lambda a, b: (a * b).min(-1, keepdims=True)),
    "vector_max": (lambda a, b: (a * b).max(-1), lambda a, b: (a * b).max(-1, keepdims=True)),
    "vector_argmin": (lambda a, b: (a * b).argmin(-1),
                      lambda a, b: (a * b).argmin(-1)[..., None] * 1.0),
    "vector_argmax": (lambda a, b: (a * b).argmax(-1),
                      lambda a, b: (a * b).argmax(-1)[..., None] * 1.0),
    "weightedsqnorm_scalar": (lambda a, b: (a - b).weightedsqnorm(Pm(np.array([0.7]))),
                              lambda a, b: 0.7 * ((a - b) ** 2).sum(-1, keepdims=True)),
    "weightedsqnorm_diag": (lambda a, b: (a - b).weightedsqnorm(Pm(P)),
                            lambda a, b: (P * (a - b) ** 2).sum(-1, keepdims=True)),
    "weightedsqdist": (lambda a, b: a.weightedsqdist(b, Pm(P)),
                       lambda a, b: (P * (a - b) ** 2).sum(-1, keepdims=True)),
    "elem": (lambda a, b: a.elem(1) * b, lambda a, b: a[..., 1:2] * b),
    "getitem_int": (lambda a, b: a[2] - b[0], lambda a, b: a[..., 2:3] - b[..., 0:1]),
    "getitem_negative": (lambda a, b: a[-1] * b, lambda a, b: a[..., -1:] * b),
    "getitem_slice": (lambda a, b: a[1:3] + b[0:2], lambda a, b: a[..., 1:3] + b[..., 0:2]),
    "getitem_tuple": (lambda a, b: a[:, :, 0:2] - b[..., 1:],
                      lambda a, b: a[..., 0:2] - b[..., 1:]),
    "extract": (lambda a, b: a.extract(0, 2) * b.extract(1, 2),
                lambda a, b: a[..., 0:2] * b[..., 1:3]),
    "concat": (lambda a, b: a.concat(b), lambda a, b: _cat(a, b)),
    "concatenate": (lambda a, b: LazyTensor.concatenate((a, b, a[0]), -1),
                    lambda a, b: _cat(a, b, a[..., :1])),
    "one_hot": (lambda a, b: (2 * (a - b) + 2).elem(0).one_hot(5),
                lambda a, b: _one_hot(2 * (a - b)[..., 0] + 2, 5)),
    "tensorprod": (lambda a, b: a.tensorprod(b),
                   lambda a, b: (a[..., :, None] * b[..., None, :]).reshape(M, N, D * D)),
    "difference_matrix": (lambda a, b: a.difference_matrix(b),
                          lambda a, b: (a[..., :, None] - b[..., None, :]).reshape(M, N, D * D)),
    "matvecmult": (lambda a, b: Vi(SQ).matvecmult(b),
                   lambda a, b: np.einsum("mkl,nl->mnk", SQ.reshape(M, D, D), Y)),
    "vecmatmult": (lambda a, b: b.vecmatmult(Vi(SQ)),
                   lambda a, b: np.einsum("nk,mkl->mnl", Y, SQ.reshape(M, D, D))),
    "keops_tensordot": (lambda a, b: Vi(SQ).keops_tensordot(b, [D, D], [D], [1], [0]),
                        lambda a, b: np.einsum("mkl,nl->mnk", SQ.reshape(M, D, D), Y)),
    "weightedsqnorm_full": (lambda a, b: (a - b).weightedsqnorm(Vi(_SYM)),
                            lambda a, b: np.einsum("mnk,mkl,mnl->mn", a - b, _SYM.reshape(M, D, D),
                                                   a - b)[..., None]),
}


def _cat(*arrays):
    """Concatenation on the last axis, the others broadcast to (M, N)."""
    return np.concatenate([np.broadcast_to(a, (M, N, a.shape[-1])) for a in arrays], -1)


def _one_hot(values, dim):
    out = np.zeros(values.shape + (dim,))
    k = np.round(values).astype(int)
    for index in np.ndindex(values.shape):
        if 0 <= k[index] < dim:
            out[index + (k[index],)] = 1.0
    return out


_SYM = np.einsum("mkl,mjl->mkj", SQ.reshape(M, D, D), SQ.reshape(M, D, D)).reshape(M, D * D)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_matches_numpy(name):
    build, ref = METHODS[name]
    x_i, y_j = lazy()
    out = build(x_i, y_j).sum(axis=1, backend="numpy")
    dense = np.broadcast_to(ref(x_, y_), (M, N) + np.shape(ref(x_, y_))[2:])
    close(out, dense.sum(1))


GAUSS = np.exp(-((x_ - y_) ** 2).sum(-1))  # (M, N)
DIST = ((x_ - y_) ** 2).sum(-1)


def _ksort(values, axis, k=3):
    """The k smallest values along ``axis``, one row per output index."""
    return np.sort(values, axis=axis).take(range(k), axis=axis).T if axis == 0 else \
        np.sort(values, axis=axis)[:, :k]


def _kargsort(values, axis, k=3):
    return np.argsort(values, axis=axis).take(range(k), axis=axis).T if axis == 0 else \
        np.argsort(values, axis=axis)[:, :k]


# (name, reduction on the LazyTensor D_ij, reference on the (M, N) array, per axis)
REDUCTIONS = {
    "sum": (lambda d, a: d.sum(axis=a), lambda v, a: v.sum(a)[:, None]),
    "sum_dim": (lambda d, a: d.sum(dim=a), lambda v, a: v.sum(a)[:, None]),
    "sum_reduction": (lambda d, a: d.sum_reduction(axis=a), lambda v, a: v.sum(a)[:, None]),
    "min": (lambda d, a: d.min(axis=a), lambda v, a: v.min(a)[:, None]),
    "min_reduction": (lambda d, a: d.min_reduction(dim=a), lambda v, a: v.min(a)[:, None]),
    "max": (lambda d, a: d.max(a), lambda v, a: v.max(a)[:, None]),
    "max_reduction": (lambda d, a: d.max_reduction(axis=a), lambda v, a: v.max(a)[:, None]),
    "argmin": (lambda d, a: d.argmin(axis=a), lambda v, a: v.argmin(a)[:, None]),
    "argmin_reduction": (lambda d, a: d.argmin_reduction(axis=a),
                         lambda v, a: v.argmin(a)[:, None]),
    "argmax": (lambda d, a: d.argmax(dim=a), lambda v, a: v.argmax(a)[:, None]),
    "argmax_reduction": (lambda d, a: d.argmax_reduction(axis=a),
                         lambda v, a: v.argmax(a)[:, None]),
    "min_argmin": (lambda d, a: d.min_argmin(axis=a),
                   lambda v, a: (v.min(a)[:, None], v.argmin(a)[:, None])),
    "min_argmin_reduction": (lambda d, a: d.min_argmin_reduction(axis=a),
                             lambda v, a: (v.min(a)[:, None], v.argmin(a)[:, None])),
    "max_argmax": (lambda d, a: d.max_argmax(dim=a),
                   lambda v, a: (v.max(a)[:, None], v.argmax(a)[:, None])),
    "max_argmax_reduction": (lambda d, a: d.max_argmax_reduction(axis=a),
                             lambda v, a: (v.max(a)[:, None], v.argmax(a)[:, None])),
    "Kmin": (lambda d, a: d.Kmin(3, axis=a), lambda v, a: _ksort(v, a)),
    "Kmin_reduction": (lambda d, a: d.Kmin_reduction(K=3, axis=a), lambda v, a: _ksort(v, a)),
    "argKmin": (lambda d, a: d.argKmin(3, dim=a), lambda v, a: _kargsort(v, a)),
    "argKmin_reduction": (lambda d, a: d.argKmin_reduction(K=3, axis=a),
                          lambda v, a: _kargsort(v, a)),
    "Kmin_argKmin": (lambda d, a: d.Kmin_argKmin(3, axis=a),
                     lambda v, a: (_ksort(v, a), _kargsort(v, a))),
    "Kmin_argKmin_reduction": (lambda d, a: d.Kmin_argKmin_reduction(K=3, axis=a),
                               lambda v, a: (_ksort(v, a), _kargsort(v, a))),
    "logsumexp": (lambda d, a: (-d).logsumexp(axis=a),
                  lambda v, a: np.log(np.exp(-v).sum(a))[:, None]),
    "logsumexp_reduction": (lambda d, a: (-d).logsumexp_reduction(axis=a),
                            lambda v, a: np.log(np.exp(-v).sum(a))[:, None]),
}


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_every_reduction_matches_numpy(name, axis, backend):
    run, ref = REDUCTIONS[name]
    x_i, y_j = lazy()
    d = ((x_i - y_j) ** 2).sum(-1)
    d.backend = backend
    out = run(d, axis)
    want = ref(DIST, axis)
    if isinstance(want, tuple):
        assert isinstance(out, tuple) and len(out) == len(want)
        for o, w in zip(out, want):
            close(o, w)
    else:
        close(out, want)
    if "arg" in name.lower():
        result = out[-1] if isinstance(out, tuple) else out
        assert np.asarray(result).dtype.kind == "i"  # indices index arrays (KNN: cl[ind])


@pytest.mark.parametrize("axis", [0, 1])
def test_weighted_reductions(axis):
    x_i, y_j = lazy()
    weights = np.abs(B) + 0.1 if axis == 1 else np.abs(X[:, :2]) + 0.1
    b = Vj(weights) if axis == 1 else Vi(weights)
    f = -((x_i - y_j) ** 2).sum(-1)
    e = np.exp(-DIST) if axis == 1 else np.exp(-DIST).T
    close(f.logsumexp(axis=axis, weight=b, backend="cpu"), np.log(e @ weights))
    close(f.sumsoftmaxweight(b, axis=axis, backend="cpu"), (e @ weights) / e.sum(1)[:, None])
    close(f.sumsoftmaxweight_reduction(weight=b, dim=axis),
          (e @ weights) / e.sum(1)[:, None])


def test_matmul_transpose_and_linear_operator():
    x_i, y_j = lazy()
    K = (-((x_i - y_j) ** 2).sum(-1)).exp()
    assert K.shape == (M, N) and K.ndim == 1 and K.dim() == 3
    close(K @ B, GAUSS @ B)
    close(K @ B[:, 0], GAUSS @ B[:, 0])
    v = GEN.uniform(-1, 1, M)
    assert K.T.shape == (N, M)
    close(K.t() @ v, GAUSS.T @ v)
    close(K.rmatvec(v), GAUSS.T @ v)
    close(K.matvec(B[:, 1]), GAUSS @ B[:, 1])
    with pytest.raises(ShapeError, match="v with 9 rows"):
        K @ np.ones(4)
    close(K @ list(B[:, 0]), GAUSS @ B[:, 0])  # a list is an array
    with pytest.raises(ShapeError, match="dimension 1"):
        (x_i - y_j) @ B


@pytest.mark.parametrize("k_batch, v_shape, out_shape", [
    ((2,), (25,), (40,)),            # a 1-D v: a flat result, as in KeOps
    ((2,), (25, 1), (2, 20, 1)),     # an unbatched v broadcasts over K's batch
    ((2,), (2, 25, 3), (2, 20, 3)),  # one v per batch item
    ((2,), (3, 2, 25, 2), (3, 2, 20, 2)),  # v with more batch axes than K
    ((), (2, 25, 3), (2, 20, 3)),    # a batched v against an unbatched K
])
@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_batched_products_sum_over_j(k_batch, v_shape, out_shape, backend):
    # K @ v summed over the wrong axis with batch axes (axis=1 is i there): wrong values
    gen = np.random.default_rng(11)
    x = gen.standard_normal((*k_batch, 20, 1, 3))
    y = gen.standard_normal((*k_batch, 1, 25, 3))
    v = gen.standard_normal(v_shape)
    K = (-((LazyTensor(x) - LazyTensor(y)) ** 2).sum(-1)).exp()
    dense = np.exp(-((x - y) ** 2).sum(-1))  # (*k_batch, 20, 25)
    expected = (dense @ v).reshape(-1) if v.ndim == 1 else dense @ v
    out = K.__matmul__(v, backend=backend)
    assert out.shape == out_shape
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    np.testing.assert_allclose(K @ v, expected, rtol=1e-12)
    # the transpose: u with M rows
    u = gen.standard_normal((*v_shape[:-2], 20, v_shape[-1]) if v.ndim > 1 else (20,))
    dense_t = np.swapaxes(dense, -1, -2)
    expected_t = (dense_t @ u).reshape(-1) if u.ndim == 1 else dense_t @ u
    np.testing.assert_allclose(K.T @ u, expected_t, rtol=1e-12)
    np.testing.assert_allclose(K.rmatvec(u), expected_t, rtol=1e-12)


def test_keops_attributes():
    # nbatchdims, batchdims, axis, symbolic_variables and is_complex, as KeOps has them
    x = np.random.default_rng(2).random((4, 3))
    x_i, y_j, p = LazyTensor(x[:, None]), LazyTensor(x[None]), Pm(np.ones(2))
    assert (x_i.axis, y_j.axis, p.axis, (x_i - y_j).axis) == (0, 1, 2, None)
    assert LazyTensor(x, axis=1, is_complex=False).axis == 1
    assert (x_i.nbatchdims, x_i.batchdims) == (0, ())
    batched = LazyTensor(np.ones((2, 4, 1, 3))) - LazyTensor(np.ones((1, 1, 5, 3)))
    assert (batched.nbatchdims, batched.batchdims) == (1, (2,))
    s = (Vi(0, 3) - Vj(1, 3)).sqnorm2() * p
    assert s.symbolic_variables == ((0, 3, 0), (1, 3, 1))
    assert x_i.symbolic_variables == () and not s.is_complex
    with pytest.raises(DtypeError, match="takes a complex array"):
        LazyTensor(x[:, None], is_complex=True)


def test_repeated_products_reuse_one_reduction(monkeypatch):
    """K @ v with a fixed K (conjugate gradients, scipy) runs the remembered
    reduction with each new v: no expression is rebuilt, every product is
    right, and what K says at call time (backend, ranges) still counts."""
    x_i, y_j = lazy()
    K = (-((x_i - y_j) ** 2).sum(-1)).exp()
    close(K @ B, GAUSS @ B)
    built = []
    real = LazyTensor.__mul__
    monkeypatch.setattr(LazyTensor, "__mul__", lambda a, b: built.append(1) or real(a, b))
    for k in range(3):
        v = GEN.uniform(-1, 1, (N, 2))
        close(K @ v, GAUSS @ v)
        close(K @ v[:, 0], GAUSS @ v[:, 0])  # another width: remembered in its turn
    assert len(built) <= 2  # one reduction per width of v, not one per product
    Kf = (-((x_i - y_j) ** 2).sum(-1) * 0.5).exp()  # a float: a list-of-floats parameter
    built.clear()
    for k in range(3):
        v = GEN.uniform(-1, 1, (N, 2))
        close(Kf @ v, np.exp(-0.5 * ((x_ - y_) ** 2).sum(-1)) @ v)
    assert len(built) <= 1
    with pytest.raises(DtypeError, match="float32"):
        K @ B.astype(np.float32)
    K.backend = "numpy"
    close(K @ B, GAUSS @ B)
    K.backend = None
    KW = (-((x_i - y_j) ** 2).sum(-1) * Vj(W)).exp()  # holds the array it multiplies
    dense = np.exp(-((x_ - y_) ** 2).sum(-1) * W[:, 0])
    close(KW @ W, dense @ W)
    W2 = GEN.uniform(0.2, 1.0, (N, 1))
    close(KW @ W2, dense @ W2)
    # every row against columns 0..3 only (KeOps's 6-tuple; columns 4.. in no cluster)
    K.ranges = tuple(np.array(a, np.int32) for a in
                     ([[0, M]], [1], [[0, 4]], [[0, 4]], [1], [[0, M]]))
    close(K @ v, GAUSS[:, :4] @ v[:4])


def test_scipy_linear_operator():
    scipy_linalg = pytest.importorskip("scipy.sparse.linalg")
    x = GEN.uniform(0, 1, (30, 2))
    K = (-Vi(x).sqdist(Vj(x)) * 4.0).exp()
    op = scipy_linalg.aslinearoperator(K)
    v = GEN.uniform(-1, 1, 30)
    dense = np.exp(-4 * ((x[:, None] - x[None]) ** 2).sum(-1))
    close(op.matvec(v), dense @ v)


def test_gradient_matches_finite_differences():
    """grad wrt x of the Gaussian kernel sum, against central differences."""
    x_i, y_j = lazy()
    e_i = Vi(np.ones((M, 1)))
    b_j = Vj(B[:, :1])
    g = ((-((x_i - y_j) ** 2).sum(-1)).exp() * b_j).grad(x_i, e_i).sum(axis=1)

    def energy(x):
        return (np.exp(-((x[:, None] - Y[None]) ** 2).sum(-1)) * B[None, :, 0]).sum(1)

    h = 1e-6
    fd = np.zeros((M, D))
    for d in range(D):
        step = np.zeros(D)
        step[d] = h
        fd[:, d] = (energy(X + step) - energy(X - step)) / (2 * h)
    close(g, fd, tol=1e-7)
    # diff (forward derivative) along a direction, and the Laplacian of a scalar
    u = Vi(np.tile([[1.0, 0.0, 0.0]], (M, 1)))
    dd = ((x_i - y_j) ** 2).sum(-1).diff(x_i, u).sum(axis=1)
    close(dd, (2 * (X[:, None, 0] - Y[None, :, 0])).sum(1)[:, None])
    lap = ((x_i - y_j) ** 2).sum(-1).laplacian(x_i).sum(axis=1)
    close(lap, np.full((M, 1), 2.0 * D * N))


def test_lazytensor_is_the_equivalent_genred():
    """One pipeline: the LazyTensor's routine has the Program of the Genred written
    by hand, and building the same expression again reuses the routine."""
    x_i, y_j = lazy()
    red = ((-((x_i - y_j) ** 2).sum(-1)).exp() * Vj(B)).sum(axis=1, call=False)
    text = Genred("Exp(-Sum(Square(x - y))) * b", ["x = Vi(3)", "y = Vj(3)", "b = Vj(2)"],
                  axis=1)
    assert red.routine().program("float64").key == text.program("float64").key
    again = ((-((LazyTensor(X[:, None, :] + 1) - LazyTensor(Y[None, :, :])) ** 2).sum(-1))
             .exp() * Vj(B * 2)).sum(axis=1, call=False)
    assert again.routine() is red.routine()
    close(red(), GAUSS @ B)
    close(red(backend="cpu"), GAUSS @ B)


def test_float_scalars_are_parameters_and_do_not_recompile():
    x_i, y_j = lazy()
    runs = [(-((x_i - y_j) ** 2).sum(-1) / s).exp().sum(axis=1, call=False)
            for s in (0.5, 2.0)]
    assert runs[0].routine() is runs[1].routine()
    close(runs[0](), np.exp(-DIST / 0.5).sum(1)[:, None])
    close(runs[1](), np.exp(-DIST / 2.0).sum(1)[:, None])


def test_symbolic_variables_are_given_at_call_time():
    red = (Vi(0, 3) - Vj(1, 3)).sqnorm2().sum(axis=1)
    close(red(X, Y), DIST.sum(1)[:, None])
    with pytest.raises(ShapeError, match="takes 2 array"):
        red(X)
    mixed = ((Vi(0, 3) - LazyTensor(Y[None, :, :])) ** 2).sum(-1).min(axis=1)
    close(mixed(X), DIST.min(1)[:, None])
    big = np.zeros((100_000, 3))
    for make in (Vi, Vj, Pm):  # an array and a dimension: named, not printed whole
        with pytest.raises(FormulaError, match=r"an array \(ndarray of shape \(100000, 3\)\) "
                           r"and a dimension 3; a dimension goes with an index only") as err:
            make(big, 3)
        assert len(str(err.value)) < 300


def test_dask_inputs_give_lazy_results():
    da = pytest.importorskip("dask.array")
    xd = da.from_array(X, chunks=3)
    x_i, y_j = LazyTensor(xd[:, None, :]), LazyTensor(Y[None, :, :])  # dask and NumPy mixed
    out = ((x_i - y_j) ** 2).sum(-1).sum(axis=1)
    assert isinstance(out, da.Array)
    close(out.compute(), DIST.sum(1)[:, None])
    knn = ((x_i - y_j) ** 2).sum(-1).argKmin(2, dim=1)
    assert isinstance(knn, da.Array)
    close(knn.compute(), np.argsort(DIST, 1)[:, :2])
    yd = da.from_array(Y, chunks=4)
    out0 = (Vi(xd) - Vj(yd)).sqnorm2().sum(axis=0)
    assert isinstance(out0, da.Array)
    close(out0.compute(), DIST.sum(0)[:, None])


def test_float32_and_float16_keep_their_dtype():
    for dtype in (np.float32, np.float16):
        x_i = LazyTensor(X[:, None, :].astype(dtype))
        y_j = LazyTensor(Y[None, :, :].astype(dtype))
        out = (x_i - y_j).sqnorm2().sum(axis=1, backend="cpu")
        assert out.dtype == dtype
        close(out, DIST.sum(1)[:, None], tol=5e-2 if dtype == np.float16 else 1e-5)


def test_arrays_of_either_byte_order_mix():
    """Big-endian arrays are float arrays like any other (Genred converts them):
    they mix with native ones, in every leaf form, and give the same results."""
    p_ = P.astype(">f8")
    ref = (np.exp(-((x_ - y_) ** 2 * P).sum(-1)) @ B)
    forms = [(X[:, None, :].astype(">f8"), Y[None, :, :], P),
             (X[:, None, :], Y[None, :, :].astype(">f8"), p_),
             (X.astype(">f8"), Y.astype(">f8"), p_)]
    for x, y, p in forms:
        x_i = LazyTensor(x) if x.ndim == 3 else Vi(x)
        y_j = LazyTensor(y) if y.ndim == 3 else Vj(y)
        K = (-((x_i - y_j) ** 2 * Pm(p)).sum(-1)).exp()
        assert K.dtype == np.float64
        for backend in ("numpy", "cpu"):
            out = (K * Vj(B)).sum(axis=1, backend=backend)
            assert out.dtype == np.float64 and out.dtype.isnative
            close(out, ref, tol=1e-12)


# -------------------------------------------------------------------- solve

def _gaussian_system(n=60, dim=2, alpha=0.1, seed=3):
    gen = np.random.default_rng(seed)
    x = gen.uniform(0, 1, (n, dim))
    b = gen.uniform(-1, 1, (n, 2))
    K = np.exp(-4 * ((x[:, None] - x[None]) ** 2).sum(-1))
    return x, b, np.linalg.solve(alpha * np.eye(n) + K, b)


def test_lazytensor_solve_matches_linalg_solve():
    x, b, ref = _gaussian_system()
    K = (-Vi(x).sqdist(Vj(x)) * 4.0).exp()
    close(K.solve(b, alpha=0.1, eps=1e-12), ref, tol=1e-8)
    close(K.solve(Vi(b), alpha=0.1, eps=1e-12, backend="cpu"), ref, tol=1e-8)
    # linear in a given symbolic variable
    a = Vj(0, 2)
    close((K * a).solve(Vi(b), var=a, alpha=0.1, eps=1e-12), ref, tol=1e-8)
    # a symbolic b, given at call time (at its index), as in KeOps
    close(K.solve(Vi(0, 2), alpha=0.1, eps=1e-12)(b), ref, tol=1e-8)
    symbolic = (-Vi(1, 2).sqdist(Vj(2, 2)) * 4.0).exp()
    close(symbolic.solve(Vi(0, 2), alpha=0.1, eps=1e-12)(b, x, x), ref, tol=1e-8)
    with pytest.raises(ShapeError, match=r"b \(the argument at index 0\) has shape \(20, 3\)"):
        K.solve(Vi(0, 2), alpha=0.1)(np.ones((20, 3)))
    with pytest.raises(FormulaError, match="give them the same index"):
        (K * a).solve(Vi(1, 2), var=a, alpha=0.1)


def test_kernelsolve_matches_linalg_solve():
    x, b, ref = _gaussian_system()
    solver = KernelSolve("Exp(-g * SqDist(x, y)) * a",
                         ["x = Vi(2)", "y = Vj(2)", "a = Vj(2)", "g = Pm(1)"], "a", axis=1)
    close(solver(x, x, b, np.array([4.0]), alpha=0.1, eps=1e-12), ref, tol=1e-8)
    close(solver(x, x, b, np.array([4.0]), alpha=0.1, eps=1e-12, backend="cpu"), ref, tol=1e-8)
    over_i = KernelSolve("Exp(-g * SqDist(x, y)) * a",
                         ["x = Vi(2)", "y = Vj(2)", "a = Vi(2)", "g = Pm(1)"], "a", axis=0)
    close(over_i(x, x, b, np.array([4.0]), alpha=0.1, eps=1e-12), ref, tol=1e-8)


def test_solve_on_dask_stays_lazy_until_the_scalars():
    da = pytest.importorskip("dask.array")
    x, b, ref = _gaussian_system(n=80)
    xd, bd = da.from_array(x, chunks=30), da.from_array(b, chunks=30)
    K = (-Vi(xd).sqdist(Vj(xd)) * 4.0).exp()
    a = K.solve(Vi(bd), alpha=0.1, eps=1e-12)
    assert isinstance(a, da.Array)
    close(a.compute(), ref, tol=1e-8)
    solver = KernelSolve("Exp(-SqDist(x, y) * 4) * a", ["x = Vi(2)", "y = Vj(2)", "a = Vj(2)"],
                         "a", axis=1)
    close(np.asarray(solver(xd, xd, bd, alpha=0.1, eps=1e-12)), ref, tol=1e-8)


def test_solve_refuses_what_it_cannot_solve():
    x, b, ref = _gaussian_system(n=20)
    K = (-Vi(x).sqdist(Vj(x)) * 4.0).exp()
    indefinite = -K  # negative definite: CG must stop, not return garbage
    with pytest.raises(SolveError, match="not positive definite"):
        indefinite.solve(b, alpha=0.0)
    with pytest.raises(SolveError, match="did not converge in 2 products"):
        K.solve(b, alpha=0.0, eps=1e-14, maxiter=2)
    with pytest.raises(SolveError, match="alpha must be"):
        K.solve(b, alpha=-1.0)
    solver = KernelSolve("Exp(-SqDist(x, y) * 4) * a", ["x = Vi(2)", "y = Vj(2)", "a = Vj(2)"],
                         "a", axis=1)
    for maxiter in ("x", 2.5, True, 0, [3]):  # refused, not truncated or raising from int()
        words = rf"maxiter \(the products K p before the solve gives up\) must be an integer " \
                rf">= 1, got {re.escape(repr(maxiter))}"
        with pytest.raises(SolveError, match=words):
            K.solve(b, alpha=0.1, maxiter=maxiter)
        with pytest.raises(SolveError, match=words):
            solver(x, x, b, alpha=0.1, maxiter=maxiter)
    close(K.solve(b, alpha=0.1, eps=1e-12, maxiter=np.int64(500)), ref, tol=1e-8)
    with pytest.raises(ShapeError, match="b has 5 rows"):
        K.solve(b[:5])
    with pytest.raises(ShapeError, match="reshape"):
        K.solve(b[:, 0])
    with pytest.raises(ShapeError, match="reshape"):
        K.solve(list(b[:, 0]))
    with pytest.raises(DtypeError, match="astype"):
        K.solve(b.astype(np.float32))
    with pytest.raises(FormulaError, match="not one of the aliases"):
        KernelSolve("x * a", ["x = Vi(1)", "a = Vj(1)"], "b", axis=1)
    with pytest.raises(FormulaError, match="must be a Vj variable"):
        KernelSolve("x * a", ["x = Vi(1)", "a = Vi(1)"], "a", axis=1)
    with pytest.raises(FormulaError, match="dimension"):
        KernelSolve("x * a", ["x = Vi(2)", "a = Vj(1)"], "a", axis=1)
    rect = KernelSolve("Exp(-SqDist(x, y)) * a", ["x = Vi(2)", "y = Vj(2)", "a = Vj(1)"], "a",
                       axis=1)
    with pytest.raises(ShapeError, match="square"):
        rect(x[:10], x, b[:, :1])



def test_generic_reduction_method_as_in_keops():
    # KeOps's LazyTensor.reduction(reduction_op, other, opt_arg, axis, dim, call):
    # the method its named reductions call, public and used as such
    x_i, y_j = lazy()
    w_j = LazyTensor(B[None, :, :])
    d = ((x_ - y_) ** 2).sum(-1)
    sq = ((x_i - y_j) ** 2).sum(-1)
    close(sq.reduction("Sum", axis=1), d.sum(1, keepdims=True))
    close(sq.reduction("Min", dim=0), d.min(0)[:, None])
    np.testing.assert_array_equal(sq.reduction("ArgKMin", opt_arg=3, axis=1),
                                  np.argsort(d, 1)[:, :3])
    soft = np.exp(-d - (-d).max(1, keepdims=True))
    close((-sq).reduction("SumSoftMaxWeight", other=w_j, axis=1),
          soft @ B / soft.sum(1, keepdims=True))
    routine = sq.reduction("Max", axis=1, call=False)
    close(routine(), d.max(1, keepdims=True))
    with pytest.raises(FormulaError, match="unknown reduction_op 'Foo'"):
        sq.reduction("Foo", axis=1)
    with pytest.raises(FormulaError, match="needs opt_arg = K"):
        sq.reduction("KMin", axis=1)
    with pytest.raises(dredux.ArgumentError, match="the name of a reduction"):
        sq.reduction(sum, axis=1)
    with pytest.raises(ShapeError, match="even dimension, got 1"):
        sq.reduction("Sum", axis=1, is_complex=True)



def _batched_system(batch=(3,), n=30, alpha=0.5):
    gen = np.random.default_rng(11)
    x = gen.uniform(-1, 1, (*batch, n, 2))
    b = gen.uniform(-1, 1, (*batch, n, 2))
    dense = np.exp(-4 * ((x[..., :, None, :] - x[..., None, :, :]) ** 2).sum(-1))
    return x, b, dense + alpha * np.eye(n)


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_batched_lazytensor_solve_solves_each_batch_item(backend):
    # one system per batch item (a block-diagonal system, as KeOps's CG solves
    # it): b rows were taken from its batch axis (a ShapeError), and the sum
    # over j was a sum over i once there are batch axes
    x, b, A = _batched_system()
    ref = np.linalg.solve(A, b)
    K = (-LazyTensor(x[:, :, None, :]).sqdist(LazyTensor(x[:, None, :, :])) * 4.0).exp()
    opts = dict(alpha=0.5, eps=1e-12, backend=backend)
    close(K.solve(b, **opts), ref, tol=1e-8)
    close(K.solve(LazyTensor(b[:, :, None, :]), **opts), ref, tol=1e-8)
    close(K.solve(LazyTensor((0, 2, 0)), **opts)(b), ref, tol=1e-8)
    a = LazyTensor((0, 2, 1))
    close((K * a).solve(LazyTensor(b[:, :, None, :]), var=a, **opts), ref, tol=1e-8)
    # over i: b a j-variable (B, 1, N, E)
    close(K.solve(LazyTensor(b[:, None, :, :]), **opts), ref, tol=1e-8)
    # a b of batch axis 1 broadcasts to K's batch axes
    close(K.solve(b[:1], **opts), np.linalg.solve(A, np.broadcast_to(b[:1], b.shape)),
          tol=1e-8)
    # two batch axes
    x2, b2, A2 = _batched_system(batch=(2, 2), n=12)
    K2 = (-LazyTensor(x2[..., :, None, :]).sqdist(LazyTensor(x2[..., None, :, :])) * 4.0).exp()
    close(K2.solve(b2, **opts), np.linalg.solve(A2, b2), tol=1e-8)


def test_batched_solve_refuses_right_hand_sides_of_other_batch_axes():
    x, b, _ = _batched_system()
    K = (-LazyTensor(x[:, :, None, :]).sqdist(LazyTensor(x[:, None, :, :])) * 4.0).exp()
    with pytest.raises(ShapeError, match=r"b has the batch axes \(2,\).*K has \(3,\)"):
        K.solve(b[:2], alpha=0.5)
    with pytest.raises(ShapeError, match=r"expected a \(3, M, E\) array"):
        K.solve(b[0], alpha=0.5)
    with pytest.raises(ShapeError, match="b has 20 rows"):
        K.solve(b[:, :20], alpha=0.5)
    with pytest.raises(ShapeError, match=r"expected \(3, rows, 2\)"):
        K.solve(LazyTensor((0, 2, 0)), alpha=0.5)(b[0])
    flat = (-Vi(x[0]).sqdist(Vj(x[0])) * 4.0).exp()
    with pytest.raises(ShapeError, match=r"batch axes \(3,\).*K has \(\)"):
        flat.solve(LazyTensor(b[:, :, None, :]), alpha=0.5)


def test_batched_solve_on_dask_stays_lazy():
    da = pytest.importorskip("dask.array")
    x, b, A = _batched_system(n=20)
    xd = da.from_array(x, chunks=(3, 10, 2))
    K = (-LazyTensor(xd[:, :, None, :]).sqdist(LazyTensor(xd[:, None, :, :])) * 4.0).exp()
    a = K.solve(da.from_array(b[:1], chunks=(1, 10, 2)), alpha=0.5, eps=1e-12)
    assert isinstance(a, da.Array)
    close(a.compute(), np.linalg.solve(A, np.broadcast_to(b[:1], b.shape)), tol=1e-8)


# ------------------------------------------------------------------- errors

def test_constructor_shape_rules_and_errors():
    assert LazyTensor(X[:, None, :]).ni == M and LazyTensor(Y[None, :, :]).nj == N
    assert LazyTensor(P).ndim == D and LazyTensor(P[None, None, :]).ndim == D
    assert LazyTensor(X, axis=0).ni == M and LazyTensor(Y, axis=1).nj == N
    assert LazyTensor(2.5).ndim == 1 and LazyTensor([1.0, 2.0]).ndim == 2
    with pytest.raises(ShapeError, match="needs axis=0"):
        LazyTensor(X)
    with pytest.raises(ShapeError, match=r"\(M, 1, D\)"):
        LazyTensor(np.ones((2, 3, 4)))
    with pytest.raises(ShapeError, match=r"\(B\.\.\., M, 1, D\) for an i-variable"):
        LazyTensor(np.ones((2, 3, 4, 5)))
    with pytest.raises(ShapeError, match="reshape"):
        Vi(np.ones(5))
    with pytest.raises(DtypeError, match="astype"):
        LazyTensor(np.arange(6).reshape(2, 1, 3))
    with pytest.raises(DtypeError, match="complex64 or complex128"):
        LazyTensor(np.ones((2, 1, 3), dtype=np.clongdouble))
    with pytest.raises(DtypeError, match="boolean"):
        LazyTensor(True)
    with pytest.raises(TypeError, match="NumPy, CuPy or dask"):
        LazyTensor("x")
    with pytest.raises(FormulaError, match="three"):
        LazyTensor((0, 3))


def test_operation_errors_name_the_values():
    x_i, y_j = lazy()
    with pytest.raises(ShapeError, match="dimensions 3, 2"):
        x_i + Vj(B)
    with pytest.raises(ShapeError, match="number of i rows"):
        x_i + Vi(X[:3])
    with pytest.raises(DtypeError, match="float64 and float32"):
        x_i - LazyTensor(Y[None].astype(np.float32))
    with pytest.raises(ShapeError, match="out of bounds"):
        x_i.elem(3)
    with pytest.raises(ShapeError, match="out of bounds"):
        x_i.extract(2, 2)
    with pytest.raises(ShapeError, match="only the last"):
        x_i[0, 1]
    with pytest.raises(ShapeError, match="axis 3 is out of range"):
        (x_i - y_j).sqnorm2().sum(axis=3)
    with pytest.raises(ShapeError, match="needs axis=0"):
        (x_i - y_j).sqnorm2().logsumexp()
    with pytest.raises(ShapeError, match="no j-variable"):
        (x_i * 2).sum(axis=1)
    # a single row given as (1, 1, D) is a parameter: the message says so, and the fix
    with pytest.raises(ShapeError, match=r"\(1, 1, D\) is a parameter.*Vi\(x\)"):
        (LazyTensor(np.ones((1, 1, y_j.ndim))) - y_j).sqnorm2().sum(axis=1)
    with pytest.raises(ShapeError, match="parameters alone"):
        Pm(P).sum(axis=1)
    with pytest.raises(TypeError, match="unexpected option"):
        (x_i - y_j).sqnorm2().sum(axis=1, colour="red")
    with pytest.raises(TypeError, match="truth value"):
        bool(x_i < y_j)
    with pytest.raises(FormulaError, match="variable"):
        (x_i - y_j).sqnorm2().grad(x_i * 2, Vi(np.ones((M, 1))))
    with pytest.raises(FormulaError, match="trace_operator is a pykeops method.*divergence"):
        x_i.trace_operator(y_j)
    with pytest.raises(FormulaError, match="for complex LazyTensors; this one is real"):
        x_i.real
    with pytest.raises(AttributeError, match="no attribute 'frobnicate'"):
        x_i.frobnicate()


def test_dredux_numpy_reexports_the_pykeops_names():
    import dredux.numpy as dn

    for name in ("LazyTensor", "Vi", "Vj", "Pm", "Var", "Genred", "KernelSolve"):
        assert getattr(dn, name) is getattr(dredux, name)
    # KeOps's tutorials read pykeops.config.gpu_available
    from dredux import config
    from dredux.backends import gpu_available

    assert config.gpu_available is gpu_available()


# --------------------------------------------------- random expressions

def _leaf_pool():
    """Leaves shared by the operands of an expression (the same LazyTensor object
    in several places, met in any order), and fresh ones."""
    return [
        (LazyTensor(X[:, None, :]), x_),
        (LazyTensor(Y[None, :, :]), y_),
        (Vi(X[:, :1]), X[:, None, :1]),
        (Vj(W), W[None, :, :]),
        (Pm(P), P[None, None, :]),
        (LazyTensor(0.75), np.full((1, 1, 1), 0.75)),
    ]


def _random_expression(gen, depth, pool):
    """A random LazyTensor expression and its dense (M, N, d) NumPy mirror: shared
    variables in any order, numbers, parameters, broadcasting of dimension 1."""
    if depth == 0 or gen.random() < 0.2:
        if gen.random() < 0.25:  # a fresh leaf: another variable holding the same array
            return _leaf_pool()[gen.integers(len(pool))]
        return pool[gen.integers(len(pool))]
    kind = gen.integers(9)
    a, da_ = _random_expression(gen, depth - 1, pool)
    if kind < 4:
        b, db = _random_expression(gen, depth - 1, pool)
        if a.ndim != b.ndim and 1 not in (a.ndim, b.ndim):
            b, db = b.sqnorm2(), (db ** 2).sum(-1, keepdims=True)
        op = ("add", "sub", "mul", "mixed")[kind]
        if op == "add":
            return a + b, da_ + db
        if op == "sub":
            return b - a, db - da_
        if op == "mul":
            return a * b, da_ * db
        return (a - 0.5) * (b + 2), (da_ - 0.5) * (db + 2)
    if kind == 4:
        return a.sin(), np.sin(da_)
    if kind == 5:
        return abs(a) * 3, np.abs(da_) * 3
    if kind == 6:
        return a.sqnorm2(), (da_ ** 2).sum(-1, keepdims=True)
    if kind == 7:
        k = int(gen.integers(a.ndim))
        return a[k], da_[..., k:k + 1]
    return -a.square(), -(da_ ** 2)


@pytest.mark.parametrize("seed", range(40))
def test_random_expressions_match_numpy(seed):
    gen = np.random.default_rng(seed)
    e, dense = _random_expression(gen, 4, _leaf_pool())
    e = e * (Vi(X[:, 1:2]) * Vj(W))  # both axes have a variable
    dense = dense * (X[:, None, 1:2] * W[None, :, :])
    dense = np.broadcast_to(dense, (M, N, dense.shape[-1]))
    axis = int(gen.integers(2))
    if gen.random() < 0.3:  # the transpose: an (N, M) problem
        e, dense = e.t(), dense.transpose(1, 0, 2)
    out = e.sum(axis=axis, backend="numpy")
    close(out, dense.sum(axis=axis), tol=1e-9)


# ------------------------------------------------------------- batch axes

def test_batch_axes_as_in_keops():
    """(B, M, 1, D), (B, 1, N, D) and (B, 1, 1, D) arrays; the reduction axis
    counts the batch axes (KeOps: axis = number of batch axes + 0 or 1); a
    shared (1, ...) input broadcasts; checked against NumPy broadcasting."""
    gen = np.random.default_rng(3)
    B, m, n = 4, 11, 7
    x = gen.uniform(-1, 1, (B, m, 1, 3))
    y = gen.uniform(-1, 1, (1, 1, n, 3))  # shared by the batch
    b = gen.uniform(-1, 1, (B, 1, n, 2))
    s = gen.uniform(0.5, 2.0, (B, 1, 1, 1))  # a parameter per item
    x_i, y_j, b_j, s_p = LazyTensor(x), LazyTensor(y), LazyTensor(b), LazyTensor(s)
    d2 = ((x - y) ** 2).sum(-1, keepdims=True)  # (B, m, n, 1)
    K = (-(((x_i - y_j) ** 2).sum(-1)) * s_p).exp()
    assert K.shape == (B, m, n) and K.dim() == 4
    k = np.exp(-d2 * s)
    for backend in ("numpy", "cpu"):
        np.testing.assert_allclose((K * b_j).sum(axis=2, backend=backend),
                                   (k * b).sum(2), rtol=1e-12)
        np.testing.assert_allclose((K * b_j).sum(1, backend=backend),
                                   (k * b).sum(1), rtol=1e-12)
        np.testing.assert_array_equal(((x_i - y_j) ** 2).sum(-1).argmin(dim=2, backend=backend),
                                      d2.argmin(2))
    assert isinstance(K.sum(axis=3), LazyTensor)  # the vector axis, after the batch axes
    with pytest.raises(ShapeError, match="with 1 batch axes first, expected 1"):
        K.sum(axis=0)
    with pytest.raises(ShapeError, match="do not broadcast"):
        (x_i - LazyTensor(gen.uniform(-1, 1, (3, 1, n, 3)))).sum(axis=2)
