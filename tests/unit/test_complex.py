"""Complex formulas and complex LazyTensors, against NumPy's complex128.

The per-operation cases of the complex formula functions (``ComplexMult``,
``ComplexExp``, ``Conj``...) are in ``tests/op_cases.py`` with the other
functions, so every tier (NumPy, compiled CPU and CUDA kernels, derivatives by
finite differences) runs them. Here: the simplified forms, the dimension
errors, and the LazyTensor interface of ``pykeops.numpy``'s ComplexLazyTensor.
"""

from __future__ import annotations

import pickle

import dask.array as da
import numpy as np
import pytest

import dredux
from dredux import ComplexLazyTensor, DtypeError, FormulaError, Genred, ShapeError
from dredux.autodiff import differentiate
from dredux.ir import Op, walk
from dredux.numpy import LazyTensor, Pm, Vi, Vj
from dredux.parse import parse_aliases, parse_formula
from dredux.simplify import simplify

M, N, D = 6, 8, 3
GEN = np.random.default_rng(11)
X = GEN.uniform(-1, 1, (M, D))
Y = GEN.uniform(-1, 1, (N, D))
ZX = GEN.uniform(-1, 1, (M, D)) + 1j * GEN.uniform(-1, 1, (M, D))
ZY = GEN.uniform(-1, 1, (N, D)) + 1j * GEN.uniform(-1, 1, (N, D))
B = GEN.uniform(-1, 1, (N, 2)) + 1j * GEN.uniform(-1, 1, (N, 2))


def close(out, ref, tol=1e-12):
    out, ref = np.asarray(out), np.asarray(ref)
    assert out.shape == ref.shape, (out.shape, ref.shape)
    assert out.dtype == ref.dtype, (out.dtype, ref.dtype)
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol)


def simp(formula: str, aliases=("z = Vi(6)", "w = Vj(6)", "u = Vj(2)", "x = Vi(3)")):
    return simplify(differentiate(parse_formula(formula, *parse_aliases(list(aliases)))))


# ---------------------------------------------------------------------------
# formulas
# ---------------------------------------------------------------------------

def test_chained_complex_operations_interleave_once():
    """The parts of inner results are never interleaved: one Complex node, at
    the root, for a chain of products, sums and exponentials."""
    f = simp("ComplexMult(ComplexExp(ComplexAdd(z, w)), ComplexDivide(Conj(z), w))")
    packs = [n for n in walk(f) if n.op is Op.COMPLEX]
    assert packs == [f]


@pytest.mark.parametrize("formula, expected", [
    ("Conj(Conj(z))", "z"),
    ("Complex(ComplexReal(z), ComplexImag(z))", "z"),
    ("ComplexReal(Real2Complex(x))", "x"),
    ("ComplexImag(Imag2Complex(x))", "x"),
    ("ComplexMult(z, Real2Complex(IntCst(1)))", "z"),
])
def test_complex_simplified_forms(formula, expected):
    assert simp(formula) is simp(expected), f"{formula} -> {simp(formula)}"


def test_imaginary_part_of_a_real_vector_is_zero():
    assert simp("ComplexImag(Real2Complex(x))").is_zero()


def test_gradient_of_a_complex_formula_is_the_real_adjoint():
    """Grad of Re(z w) wrt z is conj(w) e, KeOps's rule, here by the parts."""
    z, w = ZX.view(np.float64), ZY.view(np.float64)
    e = GEN.uniform(-1, 1, (M, 1))
    out = Genred("Grad(ComplexReal(ComplexMult(z, w)), z, e)",
                 ["z = Vi(6)", "w = Vj(6)", "e = Vi(3)"], axis=1)(z, w, np.repeat(e, 3, 1))
    ref = (np.conj(ZY)[None] * e[:, None]).sum(1)
    close(out.view(np.complex128), ref)


@pytest.mark.parametrize("formula, aliases, message", [
    ("ComplexMult(a, b)", ["a = Vi(3)", "b = Vj(4)"], "even dimension"),
    ("ComplexMult(a, b)", ["a = Vi(4)", "b = Vj(6)"], "dimensions 4 and 6"),
    ("ComplexReal(a)", ["a = Vi(5)"], "even dimension"),
    ("Complex(a, b)", ["a = Vi(2)", "b = Vj(3)"], "dimensions 2 and 3"),
    ("Complex(a, b)", ["a = Vi(3)", "b = Vj(1)"], "dimensions 3 and 1"),
    ("ComplexSumT(a, 3)", ["a = Vi(2)"], "even dim"),
    ("ComplexSumT(a, 4)", ["a = Vi(4)"], "one complex number"),
    ("ComplexRealScal(a, b)", ["a = Vi(2)", "b = Vj(4)"], "real scalar"),
])
def test_complex_dimension_errors(formula, aliases, message):
    with pytest.raises(FormulaError, match=message):
        Genred(formula, aliases, axis=1)


# ---------------------------------------------------------------------------
# complex LazyTensors
# ---------------------------------------------------------------------------

def zlazy():
    return LazyTensor(ZX[:, None, :]), LazyTensor(ZY[None, :, :])


def test_complex_arrays_make_complex_lazytensors():
    z_i, w_j = zlazy()
    assert type(z_i) is ComplexLazyTensor and z_i.is_complex
    assert (z_i.shape, z_i.dtype, z_i.ndim, z_i.axis) == ((M, 1, D), np.complex128, 2 * D, 0)
    assert (z_i * w_j).shape == (M, N, D)
    assert type(Vi(ZX)) is ComplexLazyTensor and Vj(ZY.astype(np.complex64)).dtype == \
        np.complex64
    assert ComplexLazyTensor(ZX, axis=0).shape == (M, 1, D)
    assert LazyTensor(ZX[:, None, :], is_complex=True).shape == (M, 1, D)
    assert (z_i * w_j).sum(-1).shape == (M, N)  # one complex component: KeOps drops it
    # numbers and lists are complex parameters
    assert (LazyTensor(1 + 2j).shape, LazyTensor([1j, 2.0]).shape) == ((1, 1), (1, 1, 2))
    assert not LazyTensor(X[:, None, :]).is_complex


# (name, LazyTensor formula, dense reference): each reduced by a Sum over j
OPERATIONS = {
    "mult": (lambda z, w: z * w, lambda z, w: z * w),
    "add_sub": (lambda z, w: (z + w) * (z - w), lambda z, w: (z + w) * (z - w)),
    "div": (lambda z, w: z / w, lambda z, w: z / w),
    "neg_conj": (lambda z, w: -z.conj() * w, lambda z, w: -np.conj(z) * w),
    "exp": (lambda z, w: (z * w).exp(), lambda z, w: np.exp(z * w)),
    "pow": (lambda z, w: z ** 3 * w ** -2, lambda z, w: z ** 3 * w ** -2),
    "numbers": (lambda z, w: (2 - 1j) * z + w * 0.5 - (1 + 3j) / w + 4,
                lambda z, w: (2 - 1j) * z + w * 0.5 - (1 + 3j) / w + 4),
    "real_scalar": (lambda z, w: Vj(Y[:, :1]) * z - w / Vj(Y[:, 1:2] + 2),
                    lambda z, w: Y[None, :, :1] * z - w / (Y[None, :, 1:2] + 2)),
    "real_vector": (lambda z, w: Vi(X) * w + Vj(Y) / z - Vj(Y) + z,
                    lambda z, w: X[:, None] * w + Y[None] / z - Y[None] + z),
    "complex_scalar": (lambda z, w: z * w.sum(-1) + Pm(np.array([1 + 1j])),
                       lambda z, w: z * w.sum(-1, keepdims=True) + (1 + 1j)),
    "complex_array": (lambda z, w: z * ZY[None, :, :] + ZX[:, None, :],
                      lambda z, w: z * w + z),
    "concat": (lambda z, w: z.concat(w) * 2, lambda z, w: 2 * np.concatenate(
        np.broadcast_arrays(z, w), -1)),
    "exp1j": (lambda z, w: (Vi(X) - Vj(Y)).exp1j() * w,
              lambda z, w: np.exp(1j * (X[:, None] - Y[None])) * w),
    "real2complex": (lambda z, w: Vi(X).real2complex() * w + Vj(Y).imag2complex(),
                     lambda z, w: X[:, None] * w + 1j * Y[None]),
    "transpose": (lambda z, w: (w * z).T.T, lambda z, w: w * z),
}


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_complex_operations_match_numpy(name):
    lazy_fn, ref_fn = OPERATIONS[name]
    z_i, w_j = zlazy()
    out = lazy_fn(z_i, w_j)
    assert type(out) is ComplexLazyTensor
    z, w = ZX[:, None, :], ZY[None, :, :]
    with np.errstate(all="ignore"):
        ref = np.broadcast_to(ref_fn(z, w), (M, N, out.shape[-1] if out.ndim > 2 else 1))
    close(out.sum(axis=1), ref.sum(1))
    close(out.sum_reduction(dim=0), ref.sum(0))


# real results of complex LazyTensors, reduced as real LazyTensors
REAL_PARTS = {
    "real": (lambda z, w: (z * w).real, lambda z, w: (z * w).real),
    "imag": (lambda z, w: (z / w).imag, lambda z, w: (z / w).imag),
    "abs": (lambda z, w: abs(z - w), lambda z, w: np.abs(z - w)),
    "abs_method": (lambda z, w: (z - w).abs(), lambda z, w: np.abs(z - w)),
    "angle": (lambda z, w: (z * w).angle(), lambda z, w: np.angle(z * w)),
    "sqnorm2": (lambda z, w: (z - w).sqnorm2(),
                lambda z, w: (np.abs(z - w) ** 2).sum(-1, keepdims=True)),
    "norm2": (lambda z, w: (z - w).norm2(),
              lambda z, w: np.sqrt((np.abs(z - w) ** 2).sum(-1, keepdims=True))),
}


@pytest.mark.parametrize("name", sorted(REAL_PARTS))
def test_parts_of_complex_lazytensors_are_real(name):
    lazy_fn, ref_fn = REAL_PARTS[name]
    out = lazy_fn(*zlazy())
    assert type(out) is LazyTensor
    z, w = ZX[:, None, :], ZY[None, :, :]
    close(out.sum(axis=1), ref_fn(z, w).sum(1))


def test_matrix_products_with_complex_operands():
    x_i, y_j = Vi(X), Vj(Y)
    phase = (x_i | y_j).exp1j()  # a Fourier matrix
    dense = np.exp(1j * X @ Y.T)
    close(phase @ B, dense @ B)
    close(phase @ B[:, 0], dense @ B[:, 0])
    close(phase @ B.real, dense @ B.real)
    close(phase.T @ ZX[:, :2], dense.T @ ZX[:, :2])
    gauss = (-x_i.sqdist(y_j)).exp()  # a real K times a complex v
    close(gauss @ B, np.exp(-((X[:, None] - Y[None]) ** 2).sum(-1)) @ B)


def test_softmax_weights_may_be_complex():
    d = (Vi(X) - Vj(Y)).sqnorm2()
    out = d.sumsoftmaxweight(Vj(B), axis=1)
    dense = ((X[:, None] - Y[None]) ** 2).sum(-1)
    soft = np.exp(dense - dense.max(1, keepdims=True))
    close(out, (soft / soft.sum(1, keepdims=True)) @ B)
    with pytest.raises(FormulaError, match="real weights"):
        d.logsumexp(axis=1, weight=Vj(B))


def test_complex_reduction_of_real_parts():
    """is_complex=True views a real reduction's interleaved result as complex."""
    z_i, w_j = zlazy()
    raw = LazyTensor(ZX.view(np.float64)[:, None, :]) + LazyTensor(ZY.view(np.float64)[None])
    close(raw.reduction("Sum", axis=1, is_complex=True), (ZX[:, None] + ZY[None]).sum(1))


def test_complex_reductions_in_float32_and_on_dask():
    z32 = ZX.astype(np.complex64)
    out = (LazyTensor(z32[:, None, :]) * LazyTensor(ZY.astype(np.complex64)[None])).sum(1)
    assert out.dtype == np.complex64
    np.testing.assert_allclose(out, (ZX[:, None] * ZY[None]).sum(1), rtol=1e-5, atol=1e-5)
    lazy = (LazyTensor(da.from_array(ZX, chunks=(4, D))[:, None, :])
            * LazyTensor(ZY[None])).sum(1)
    assert isinstance(lazy, da.Array) and lazy.dtype == np.complex128
    close(lazy.compute(), (ZX[:, None] * ZY[None]).sum(1))


def test_strided_complex_arrays_are_copied_not_misread():
    wide = GEN.uniform(-1, 1, (M, 2 * D)) + 1j * GEN.uniform(-1, 1, (M, 2 * D))
    strided = wide[:, ::2]  # its last axis has gaps: no float view of it exists
    out = (LazyTensor(strided[:, None, :]) * LazyTensor(ZY[None])).sum(1)
    close(out, (strided[:, None] * ZY[None]).sum(1))


def test_symbolic_complex_variables_and_call_false():
    z_i = LazyTensor((0, 2 * D, 0), is_complex=True)
    red = (z_i * LazyTensor(ZY[None])).sum(axis=1, call=False)
    close(red(ZX.view(np.float64)), (ZX[:, None] * ZY[None]).sum(1))
    close(red(ZX), (ZX[:, None] * ZY[None]).sum(1))  # a complex array, read as its parts
    close(pickle.loads(pickle.dumps(red))(ZX), (ZX[:, None] * ZY[None]).sum(1))
    late = (LazyTensor(ZX[:, None]) * LazyTensor(ZY[None])).sum(axis=1, call=False)
    close(late(), (ZX[:, None] * ZY[None]).sum(1))
    with pytest.raises(FormulaError, match="even dimension"):
        LazyTensor((0, 3, 0), is_complex=True)


def test_real_kernels_solve_complex_right_hand_sides():
    """(alpha I + K) a = b for a real K and a complex b: both parts at once."""
    dense = np.exp(-((Y[:, None] - Y[None]) ** 2).sum(-1)) + 0.5 * np.eye(N)
    K = (-Vi(Y).sqdist(Vj(Y))).exp()
    for b in (B, Vi(B)):
        a = K.solve(b, alpha=0.5, eps=1e-12)
        assert a.dtype == np.complex128 and a.shape == B.shape
        np.testing.assert_allclose(a, np.linalg.solve(dense, B), rtol=1e-8, atol=1e-8)


def test_batched_complex_lazytensors():
    zb = GEN.uniform(-1, 1, (2, M, 1, D)) + 1j * GEN.uniform(-1, 1, (2, M, 1, D))
    out = (LazyTensor(zb) * LazyTensor(ZY[None, None])).sum(axis=2)
    close(out, (zb * ZY[None, None]).sum(2))
    assert LazyTensor(zb).shape == (2, M, 1, D)


def test_complex_lazytensors_pickle():
    z_i, w_j = zlazy()
    back = pickle.loads(pickle.dumps(z_i * w_j))
    assert type(back) is ComplexLazyTensor
    close(back.sum(axis=1), (ZX[:, None] * ZY[None]).sum(1))


def test_gradient_through_a_complex_lazytensor():
    """d/dx of Re(sum_j exp(1j x.y) b_j), against finite differences."""
    e = GEN.uniform(-1, 1, (M, 1))

    def value(x):
        return ((Vi(x) | Vj(Y)).exp1j() * Vj(B[:, :1])).real.sum(axis=1)

    x_i = Vi(X)
    grad = ((x_i | Vj(Y)).exp1j() * Vj(B[:, :1])).real.grad(x_i, Vi(e)).sum(axis=1)
    h, fd = 1e-6, np.zeros_like(X)
    for k in range(D):
        step = np.zeros_like(X)
        step[:, k] = h
        fd[:, k] = ((value(X + step) - value(X - step)) * e).sum(1) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("call, message", [
    (lambda z, w: z.log(), "log is not defined for complex"),
    (lambda z, w: z < w, "< is not defined for complex"),
    (lambda z, w: z.min(axis=1), "min is not defined for complex"),
    (lambda z, w: z.argKmin(3, axis=1), "argKmin is not defined for complex"),
    (lambda z, w: z[0], r"indexing \(z\[k\]\) is not defined for complex"),
    (lambda z, w: z.reduction("Max", axis=1), "'Max' reduction of a complex"),
    (lambda z, w: z ** 0.5, "integer exponents"),
    (lambda z, w: z ** 0, "non-zero integer"),
    (lambda z, w: z.real2complex(), "for real LazyTensors"),
    (lambda z, w: Vi(X).concat(w), "Concat of a real and a complex"),
    (lambda z, w: Vi(X) | w, r"\| \(the scalar product\) is not defined for complex"),
    (lambda z, w: Vi(X).ifelse(w, w), "IfElse of a complex"),
    (lambda z, w: z.concat(Vi(X)), "make the real one complex"),
    (lambda z, w: Vi(X).sqdist(Vj(Y)).grad(Vi(X), z), "Grad of a complex"),
    (lambda z, w: Vi(X).real, "for complex LazyTensors; this one is real"),
])
def test_undefined_complex_operations_say_so(call, message):
    with pytest.raises(FormulaError, match=message):
        call(*zlazy())


def test_complex_construction_errors():
    with pytest.raises(DtypeError, match="takes a complex array"):
        ComplexLazyTensor(X)
    with pytest.raises(DtypeError, match="complex64 or complex128"):
        LazyTensor(np.ones((2, 1, 3), dtype=np.clongdouble))
    with pytest.raises(DtypeError, match="list of numbers"):
        LazyTensor([1j, "a"])
    with pytest.raises(ShapeError, match="a 3-D array must be"):
        LazyTensor(np.ones((2, 2, 3), dtype=complex))
    z16 = LazyTensor(X.astype(np.float16)[:, None]).real2complex() * Vj(Y.astype(np.float16))
    with pytest.raises(DtypeError, match="no complex float16"):
        z16.sum(axis=1)


def test_dredux_numpy_exports_complex_lazytensor():
    import dredux.numpy as dn

    assert dn.ComplexLazyTensor is dredux.ComplexLazyTensor is ComplexLazyTensor


def test_a_broadcast_real_scalar_is_in_both_parts():
    # ComplexImag(a + z), a of dimension 1 added to every component of z (the
    # simplifier took ComplexImag of a itself, a dimension error)
    g = np.random.default_rng(4)
    a, z = g.uniform(-1, 1, (5, 1)), g.uniform(-1, 1, (6, 4))
    f = Genred("ComplexImag(a + z) + ComplexReal(z - a)", ["a = Vi(1)", "z = Vj(4)"], axis=1)
    ref = ((a[:, None, :] + z[None, :, 1::2]) + (z[None, :, 0::2] - a[:, None, :])).sum(1)
    np.testing.assert_allclose(f(a, z, backend="numpy"), ref, rtol=1e-13)
