"""Register-blocked contractions of the CPU kernel, against NumPy float64.

``SqDist``, ``(x|y)``, ``WeightedSqDist`` and other pair-level sums over at least
16 components are computed by a GEMM-like block loop (dredux/codegen/cpp.py:
R rows x NV vectors of partial sums, the y values of a panel packed block by
block and zero padded). Each case checks that the kernel takes that path and
that its results match a float64 reference, at sizes off every edge: rows not a
multiple of R, columns not a multiple of the block, the tile or the panel, and
fewer columns than one block; both dtypes; every reduction family; both axes.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from dredux import Genred
from tests.cpu.cpu_util import precompile, tolerances
from tests.product_cases import PRODUCTS, check_product, product_routine


def sqdist(x, y):
    return ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)


def aliases(d, extra=()):
    return [f"x = Vi({d})", f"y = Vj({d})", "b = Vj(1)", f"w = Pm({d})", "p = Pm(1)",
            *extra]


# name -> (formula, reduction, opt_arg, reference(x, y, b, w, p) of the output)
CASES = {
    "gaussian": ("Exp(-SqDist(x, y)) * b", "Sum", None,
                 lambda x, y, b, w, p: np.exp(-sqdist(x, y)) @ b),
    "scalprod": ("Exp((x | y)) * b", "Sum", None,
                 lambda x, y, b, w, p: np.exp(x @ y.T) @ b),
    "weighted": ("Exp(-WeightedSqDist(w, x, y))", "Sum", None,
                 lambda x, y, b, w, p: np.exp(-(w * (x[:, None] - y[None]) ** 2).sum(-1))
                 .sum(1, keepdims=True)),
    "row-term": ("Exp(-SqNorm2(x * p + w - y)) * b", "Sum", None,
                 lambda x, y, b, w, p: np.exp(-sqdist(x * p + w, y)) @ b),
    "col-term": ("Exp(-Sum(Square(x - (y + y) * p)))", "Sum", None,
                 lambda x, y, b, w, p: np.exp(-sqdist(x, 2 * y * p)).sum(1, keepdims=True)),
    "narrow-y": ("Sum(b * (x * y))", "Sum", None,
                 lambda x, y, b, w, p: ((x @ y.T) * b[:, 0]).sum(1, keepdims=True)),
    "two": ("Exp(-SqDist(x, y)) * (x | (w - y))", "Sum", None,
            lambda x, y, b, w, p: (np.exp(-sqdist(x, y)) * (x @ w[:, None] - x @ y.T))
            .sum(1, keepdims=True)),
    "argkmin": ("SqDist(x, y)", "ArgKMin", 7, None),
    "min": ("SqDist(x, y)", "Min", None, lambda x, y, b, w, p: sqdist(x, y).min(1)[:, None]),
    "logsumexp": ("-SqDist(x, y)", "LogSumExp", None,
                  lambda x, y, b, w, p: _lse(-sqdist(x, y))),
    "grad-x": ("Grad(Exp(-SqDist(x, y)) * b, x, e)", "Sum", None,
               lambda x, y, b, w, p: _grad_x(x, y, b)),
}


def _lse(a):
    top = a.max(1, keepdims=True)
    return top + np.log(np.exp(a - top).sum(1, keepdims=True))


def _grad_x(x, y, b):
    k = np.exp(-sqdist(x, y)) * b[:, 0][None]          # e = 1
    return -2 * (k.sum(1)[:, None] * x - k @ y)


DIMS = (16, 100)
DTYPES = (np.float32, np.float64)


def routine(name, d, axis=1):
    formula, reduction, opt_arg, _ = CASES[name]
    return Genred(formula, aliases(d, ["e = Vi(1)"] if name == "grad-x" else ()),
                  reduction_op=reduction, axis=axis, opt_arg=opt_arg)


ROUTINES = {(name, d): routine(name, d) for name in CASES for d in DIMS}


@pytest.fixture(scope="module", autouse=True)
def compiled():
    precompile((g, dt) for g in (*ROUTINES.values(), *PRODUCT_ROUTINES.values())
               for dt in DTYPES)


def inputs(m, n, d, dtype, seed=0, near=False):
    gen = np.random.default_rng(seed)
    x = gen.standard_normal((m, d)) / np.sqrt(d)
    y = gen.standard_normal((n, d)) / np.sqrt(d)
    if near:  # every row has columns within 1e-3 of it
        y[: min(m, n)] = x[: min(m, n)] + 1e-3 * gen.standard_normal((min(m, n), d)) / np.sqrt(d)
    b = gen.uniform(0.5, 1.5, (n, 1))
    w = gen.uniform(0.5, 1.5, d)
    p = np.array([0.7])
    return [a.astype(dtype) for a in (x, y, b, w, p)]


def call(g, name, args):
    x, y, b, w, p = args
    if name == "grad-x":
        return g(x, y, b, w, p, np.ones((len(x), 1), x.dtype), backend="cpu")
    return g(x, y, b, w, p, backend="cpu")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_contraction_matches_numpy(name, d, dtype):
    g = ROUTINES[name, d]
    assert "_dr_vload" in g.source("cpu", dtype), "not the register-blocked path"
    tol = tolerances(dtype)
    # 1,500 columns cross the panels at D = 100 (640 columns in float32), the
    # 512-column tiles and the blocks; 37 rows are not a multiple of R
    for m, n in ((37, 1500), (13, 5)):
        args = inputs(m, n, d, dtype, seed=m + d)
        check_case(name, args, call(g, name, args), tol, floor=1.0)


def check_case(name, args, out, tol, floor=0.0):
    """``out`` of case ``name`` on ``args`` against the float64 reference (for
    ArgKMin: the distances of the chosen columns against the K smallest)."""
    ref64 = [a.astype(np.float64) for a in args]
    if name == "argkmin":
        k = min(7, len(args[1]))
        dist = sqdist(ref64[0], ref64[1])
        got = np.take_along_axis(dist, out[:, :k].astype(np.int64), 1)
        np.testing.assert_allclose(got, np.sort(dist, 1)[:, :k], **tol)
        return
    ref = CASES[name][3](*ref64)
    np.testing.assert_allclose(out, ref, rtol=tol["rtol"] * 10,
                               atol=tol["atol"] * 10 * max(floor, np.abs(ref).max()))


@pytest.mark.parametrize("dtype", DTYPES)
def test_contraction_over_the_other_axis(dtype):
    """out[j] = sum_i: the i-variables are the kernel's columns."""
    g = Genred("Exp(-SqDist(x, y)) * b", ["x = Vj(64)", "y = Vi(64)", "b = Vi(1)"],
               reduction_op="Sum", axis=0)
    assert "_dr_vload" in g.source("cpu", dtype)
    gen = np.random.default_rng(3)
    x = (gen.standard_normal((29, 64)) / 8).astype(dtype)
    y = (gen.standard_normal((1100, 64)) / 8).astype(dtype)
    b = gen.uniform(0.5, 1.5, (1100, 1)).astype(dtype)
    out = g(x, y, b, backend="cpu")
    ref = np.exp(-sqdist(x.astype(np.float64), y.astype(np.float64))) @ b.astype(np.float64)
    np.testing.assert_allclose(out, ref, **tolerances(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_near_points_keep_their_relative_accuracy(dtype):
    """The loop computes (x - y)^2 directly: distances of 1e-3 between points of
    norm 1 keep the relative error of the dtype (the |x|^2 + |y|^2 - 2 x.y form
    would lose six digits to cancellation)."""
    g = ROUTINES["min", 100]
    assert "_dr_vload" in g.source("cpu", dtype)
    x, y, *rest = inputs(40, 300, 100, dtype, seed=5, near=True)
    out = g(x, y, *rest, backend="cpu")[:, 0]
    ref = sqdist(x.astype(np.float64), y.astype(np.float64)).min(1)
    assert ref.max() < 1e-5  # the near columns are the minima
    np.testing.assert_allclose(out, ref, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_wide_contractions_keep_no_wide_arrays_in_the_j_loop():
    """At D = 1024 the j-loop reads one value per contraction and pair; the
    components are streamed by the block loop (no ``T v[1024]`` per pair)."""
    src = Genred("Exp(-SqDist(x, y)) * b", aliases(1024), axis=1).source("cpu")
    loop = src[src.index("#pragma omp simd"):src.index("// The state layout")]
    assert "[1024]" not in loop
    assert "for (int _d = 0; _d < 1024; ++_d)" in src


def test_small_dimensions_keep_the_unrolled_loop():
    """Below 16 components the pair loop's unrolled code is kept (it is faster)."""
    src = Genred("Exp(-SqDist(x, y)) * b", aliases(8), axis=1).source("cpu")
    assert "_dr_vload" not in src and "NP = 4611686018427387904" in src


STREAMED = {(d, acc, scheme): Genred("Exp(-SqDist(x, y)) * v - x * b",
                                     [f"x = Vi({d})", f"y = Vj({d})", f"v = Vj({d})", "b = Vj(1)"],
                                     axis=1, dtype_acc=acc, sum_scheme=scheme)
            for d in (16, 100) for acc in ("auto", "float64")
            for scheme in ("block_sum", "direct_sum")}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("key", sorted(STREAMED), ids=str)
def test_wide_sums_are_streamed_component_by_component(key, dtype):
    """A sum of D >= 16 components, element-wise over them, is summed one
    component at a time over the tile (the weights stored by the j-loop)."""
    d, acc, _ = key
    g = STREAMED[key]
    src = g.source("cpu", dtype)
    assert "_wb0[" in src and "fbuf" not in src
    gen = np.random.default_rng(d)
    x, y = (gen.standard_normal((s, d)) / np.sqrt(d) for s in (37, 1500))
    v, b = gen.standard_normal((1500, d)), gen.uniform(0.5, 1.5, (1500, 1))
    out = g(*(a.astype(dtype) for a in (x, y, v, b)), backend="cpu")
    ref = np.exp(-sqdist(x, y)) @ v - x * b.sum()
    tol = tolerances(np.float64 if acc == "float64" and dtype == np.float64 else dtype)
    np.testing.assert_allclose(out, ref, rtol=tol["rtol"] * 10,
                               atol=tol["atol"] * 10 * np.abs(ref).max())


def test_very_wide_rows_are_read_in_place():
    """At D = 20,000 the rows of a pass are read where they are: six float64
    copies (960 KiB) would not fit a thread's stack."""
    d = 20_000
    g = Genred("Exp(-SqDist(x, y)) * b", [f"x = Vi({d})", f"y = Vj({d})", "b = Vj(1)"], axis=1)
    assert "_dr_vload" in g.source("cpu", np.float64)
    gen = np.random.default_rng(1)
    x, y = (gen.standard_normal((s, d)) / np.sqrt(d) for s in (13, 70))
    b = gen.uniform(0.5, 1.5, (70, 1))
    out = g(x, y, b, backend="cpu")
    np.testing.assert_allclose(out, np.exp(-sqdist(x, y)) @ b, **tolerances(np.float64))


@pytest.mark.parametrize("dtype", DTYPES)
def test_columns_only_the_contractions_read_are_packed_from_their_rows(dtype):
    """y, read by the contraction loops alone, reaches the kernel as given (n, D)
    rows and is transposed block by block by the panel packing; z, also read by
    the component-by-component sum after the j-loop (Abs is not a GEMM term),
    comes transposed. 2,500 columns cross panels (1,024 columns at D = 64 in
    float32) and blocks."""
    from dredux.codegen.cpp import layout

    d = 64
    g = Genred("Exp(-SqDist(x, y) - SqDist(x, z)) * Abs(z)",
               [f"x = Vi({d})", f"y = Vj({d})", f"z = Vj({d})"], axis=1)
    assert layout(g.program(dtype)).as_given == (0,)
    assert not layout(g.program(dtype)).gemm_fold
    gauss = Genred("Exp(-SqDist(x, y)) * b", [f"x = Vi({d})", f"y = Vj({d})", "b = Vj(1)"],
                   axis=1)
    assert layout(gauss.program(dtype)).as_given == (0,)
    gen = np.random.default_rng(5)
    x, y, z = (gen.standard_normal((s, d)) / np.sqrt(d) for s in (37, 2500, 2500))
    x, y, z = (a.astype(dtype).astype(np.float64) for a in (x, y, z))
    out = g(*(a.astype(dtype) for a in (x, y, z)), backend="cpu")
    ref = np.exp(-sqdist(x, y) - sqdist(x, z)) @ np.abs(z)
    tol = tolerances(dtype)
    np.testing.assert_allclose(out, ref, rtol=tol["rtol"] * 10,
                               atol=tol["atol"] * 10 * np.abs(ref).max())
    # a non-contiguous view, as a slice of a bigger array would be
    wide = np.concatenate([y, z], axis=1).astype(dtype)
    out2 = g(x.astype(dtype), wide[:, :d], wide[:, d:], backend="cpu")
    np.testing.assert_allclose(out2, out, rtol=tol["rtol"], atol=tol["atol"] * np.abs(ref).max())


GEMM_FOLD = {
    # name: (formula, input dimension, gemm fold expected, reference(x, y, v))
    "conv": ("Exp(-SqDist(x, y)) * v", 64, True,
             lambda x, y, v: np.exp(-sqdist(x, y)) @ v),
    "conv-narrow-input": ("Exp(-SqDist(x3, y3)) * v", 3, True,
                          lambda x, y, v: np.exp(-sqdist(x, y)) @ v),
    "attention": ("v * Exp((x | y))", 96, True, lambda x, y, v: np.exp(x @ y.T) @ v),
    "v-in-the-weight": ("Exp(-SqDist(x, y) - Sum(v)) * v", 64, False,
                        lambda x, y, v: np.exp(-sqdist(x, y) - v.sum(1)[None]) @ v),
    # (-2 w) * (x - y): the rows' components in registers, y from its rows
    "gradient": ("Grad(Exp(-SqDist(x, y)), x, e)", 64, True,
                 lambda x, y, v: _grad_x(x, y, np.ones((len(y), 1)))),
    "row-and-column-terms": ("Exp(-SqDist(x, y)) * (Square(x - 0.5 * y) * v - x)", 64, True,
                             lambda x, y, v: np.einsum(
                                 "ij,ijd->id", np.exp(-sqdist(x, y)),
                                 (x[:, None] - 0.5 * y[None]) ** 2 * v[None] - x[:, None])),
}


@pytest.mark.parametrize("options", [{}, {"sum_scheme": "direct_sum"}, {"dtype_acc": "float64"}],
                         ids=["block", "direct", "acc64"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(GEMM_FOLD))
def test_streamed_products_run_as_a_gemm_micro_kernel(name, dtype, options):
    """``w * G``, G element-wise in row and column variables of D = 64 or 96
    components: the output loop accumulates groups of rows x 2 vectors over the
    tile's columns, the columns read from their given rows (1,500 columns:
    partial tiles; 37 rows: a partial pass)."""
    from dredux.codegen.cpp import layout

    formula, din, gemm, reference = GEMM_FOLD[name]
    d = 96 if name == "attention" else 64
    g = Genred(formula, [f"x = Vi({din})", f"y = Vj({din})", f"v = Vj({d})", "x3 = Vi(3)",
                         "y3 = Vj(3)", "e = Vi(1)"], axis=1, **options)
    widened = options.get("dtype_acc") == "float64" and dtype == np.float32
    assert layout(g.program(dtype)).gemm_fold == (gemm and not widened)
    gen = np.random.default_rng(din + d)
    x, y = (gen.standard_normal((s, din)) / np.sqrt(din) for s in (37, 1500))
    v = gen.standard_normal((1500, d)) / np.sqrt(d)
    x, y, v = (a.astype(dtype).astype(np.float64) for a in (x, y, v))
    args = (x, y, v, x, y) if din == 3 else (x, y, v, x[:, :3], y[:, :3])
    out = g(*(a.astype(dtype) for a in args + (np.ones((37, 1)),)), backend="cpu")
    ref = reference(x, y, v)
    tol = tolerances(dtype)
    np.testing.assert_allclose(out, ref, rtol=tol["rtol"] * 10,
                               atol=tol["atol"] * 10 * np.abs(ref).max())


PRODUCT_DIMS = (16, 24)


PRODUCT_ROUTINES = {(name, d): product_routine(name, d) for name in PRODUCTS
                    for d in PRODUCT_DIMS}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("d", PRODUCT_DIMS)
@pytest.mark.parametrize("name", sorted(PRODUCTS))
def test_matrix_products_run_as_contractions(name, d, dtype):
    """MatVecMult(A, u) and VecMatMult(u, A) (or TensorDots that are one of them),
    A of the row or the parameters,
    u = x - y or a scalar times it: each output component is a register-blocked
    contraction (a product that is summed is read as scalars, not a Concat),
    and the results match float64 (37 rows: a partial pass; 300
    columns: partial tiles and blocks)."""
    from dredux.codegen.cpp import lowered
    from dredux.codegen.products import matrix_vector
    from dredux.codegen.render import contractions, levels
    from dredux.ir import Op, walk

    g = PRODUCT_ROUTINES[name, d]
    program = lowered(g.program(dtype))
    level = levels(program.formulas)
    assert not any(matrix_vector(n) for f in program.formulas for n in walk(f)
                   if level[n] == "pair")
    assert len(contractions(program.formulas, level)) == PRODUCTS[name][3](d)
    # the contractions of one product share loops: u = x - y once per pair
    # and component for several of them (codegen/cpp.py: _product_lines)
    assert "const V _u0_0 = " in g.kernel("cpu", dtype).source
    summed = name not in ("matvec-param", "vecmat-row", "grad-x", "matvec-tensorprod",
                          "tensordot-vecmat-row", "tensordot-matvec-row")
    assert summed != any(n.op is Op.CONCAT for f in program.formulas for n in walk(f))
    check_product(g, name, d, dtype, "cpu", tolerances(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_gradient_of_a_tensordot_projection(dtype):
    """Grad of exp(-|S (x - y)|^2) with S (x - y) a TensorDot: the forward
    product becomes D contractions, the backward one, S^T (S u), a product of
    a pair-level vector that is itself a product, stays in the pair loop and
    reads the contractions' values; against the float64 gradient
    -2 sum_j e_i w_ij S^T S u_ij."""
    from dredux.codegen.cpp import lowered
    from dredux.codegen.render import contractions, levels

    d, m, n = 16, 37, 300
    g = Genred(f"Grad(Exp(-SqNorm2(TensorDot(s, x - y, [{d}, {d}], [{d}], [1], [0]))), x, e)",
               [f"x = Vi({d})", f"y = Vj({d})", "e = Vi(1)", f"s = Pm({d * d})"], axis=1)
    program = lowered(g.program(dtype))
    assert len(contractions(program.formulas, levels(program.formulas))) == d
    gen = np.random.default_rng(7)
    x = gen.standard_normal((m, d)) / np.sqrt(d)
    y = gen.standard_normal((n, d)) / np.sqrt(d)
    e = gen.uniform(0.5, 1.5, (m, 1))
    s = gen.standard_normal((d, d)) / np.sqrt(d)
    args = [v.astype(dtype) for v in (x, y, e, s.ravel())]
    out = g(*args, backend="cpu")
    x, y, e, s = (v.astype(dtype).astype(np.float64) for v in (x, y, e, s))
    u = x[:, None] - y[None]
    v = u @ s.T
    ref = -2 * np.einsum("ij,ijk->ik", np.exp(-(v ** 2).sum(-1)) * e, v @ s)
    tol = tolerances(dtype)
    np.testing.assert_allclose(out, ref, rtol=tol["rtol"] * 10,
                               atol=tol["atol"] * 10 * np.abs(ref).max())


COL_PRODUCTS = {  # products of a column matrix A_j (N, D, D) with x - y
    "matvec": ("Exp(-SqNorm2(MatVecMult(A, x - y))) * b", lambda d: d,
               lambda u, a, b: np.exp(-(np.einsum("jkd,ijd->ijk", a, u) ** 2).sum(-1)) @ b),
    "vecmat": ("SqNorm2(VecMatMult(x - y, A))", lambda d: d,
               lambda u, a, b: (np.einsum("jdk,ijd->ijk", a, u) ** 2).sum(-1).min(1)[:, None]),
    "tensordot-slice": ("TensorDot(Extract(A, 0, 3 * D), y - x, [3, D], [D], [1], [0])",
                        lambda d: 3, lambda u, a, b: -np.einsum("jkd,ijd->ik", a[:, :3], u)),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("d", [16, 40])
@pytest.mark.parametrize("name", sorted(COL_PRODUCTS))
def test_products_of_a_column_matrix_run_as_contractions(name, d, dtype):
    """A matrix of the columns (one D x D matrix per j, A_j): each output
    component of the product is a contraction whose weights the loops read
    from the packed panel of A (per pair, D = 32 ran at 1 % of the FMA peak);
    loops of their own at D = 16, shared from D = 40; against float64 (37 rows,
    300 columns: partial passes, tiles and blocks)."""
    from dredux.codegen.cpp import lowered
    from dredux.codegen.products import matrix_vector
    from dredux.codegen.render import contractions, levels
    from dredux.ir import walk

    formula, count, reference = COL_PRODUCTS[name]
    red = "Min" if name == "vecmat" else "Sum"
    g = Genred(re.sub(r"\bD\b", str(d), formula.replace("3 * D", str(3 * d))),
               [f"x = Vi({d})", f"y = Vj({d})", "b = Vj(1)", f"A = Vj({d * d})"],
               reduction_op=red, axis=1)
    program = lowered(g.program(dtype))
    level = levels(program.formulas)
    assert not any(matrix_vector(n) for f in program.formulas for n in walk(f)
                   if level[n] == "pair")
    assert len(contractions(program.formulas, level, col_slices=True)) == count(d)
    assert ("const V _u0_0 = " in g.kernel("cpu", dtype).source) == (d > 32 and count(d) > 1)
    gen = np.random.default_rng(d)
    m, n = 37, 300
    x = gen.standard_normal((m, d)) / np.sqrt(d)
    y = gen.standard_normal((n, d)) / np.sqrt(d)
    b = gen.uniform(0.5, 1.5, (n, 1))
    a = gen.standard_normal((n, d, d)) / np.sqrt(d)
    out = g(*(v.astype(dtype) for v in (x, y, b, a.reshape(n, -1))), backend="cpu")
    x, y, b, a = (v.astype(dtype).astype(np.float64) for v in (x, y, b, a))
    ref = reference(x[:, None] - y[None], a, b)
    tol = tolerances(dtype)
    np.testing.assert_allclose(out, ref, rtol=tol["rtol"] * 10,
                               atol=tol["atol"] * 10 * np.abs(ref).max())


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_slice_of_a_column_variable_in_a_contraction(dtype):
    """SqDist(Extract(y, 5, 16), x): the slice is a contraction term, read from
    the packed panel at its offset (component 5 + d of each column)."""
    from dredux.codegen.cpp import lowered
    from dredux.codegen.render import contractions, levels

    gen = np.random.default_rng(3)
    m, n = 37, 300
    x, y = gen.standard_normal((m, 16)), gen.standard_normal((n, 24))
    b = gen.uniform(0.5, 1.5, (n, 1))
    g = Genred("Exp(-SqDist(Extract(y, 5, 16), x)) * b", ["x = Vi(16)", "y = Vj(24)",
                                                          "b = Vj(1)"], axis=1)
    program = lowered(g.program(dtype))
    assert len(contractions(program.formulas, levels(program.formulas), col_slices=True)) == 1
    out = g(*(v.astype(dtype) for v in (x, y, b)), backend="cpu")
    x, y, b = (v.astype(dtype).astype(np.float64) for v in (x, y, b))
    ref = np.exp(-((x[:, None] - y[None, :, 5:21]) ** 2).sum(-1)) @ b
    np.testing.assert_allclose(out, ref, **tolerances(dtype))


def test_tensordots_that_are_matrix_vector_products():
    """products.matrix_vector: a TensorDot of a 2-axis and a 1-axis operand
    contracting the vector's axis is a product (matrix rows or columns, either
    argument order); outer products, 3-axis operands, double contractions and
    the transposes the lowering itself builds are not."""
    from dredux.codegen.products import matrix_vector
    from dredux.ir import Cat, var
    from dredux.ops.vector import _tensordot_build, transposed

    u, a, b = var(0, 16, Cat.I), var(1, 64, Cat.P), var(2, 256, Cat.P)
    assert matrix_vector(_tensordot_build(a, u, [4, 16], [16], [1], [0])) == (0, 1, True)
    assert matrix_vector(_tensordot_build(a, u, [16, 4], [16], [0], [0])) == (0, 1, False)
    assert matrix_vector(_tensordot_build(u, a, [16], [16, 4], [0], [0])) == (1, 0, False)
    assert matrix_vector(_tensordot_build(u, a, [16], [4, 16], [0], [1])) == (1, 0, True)
    assert matrix_vector(_tensordot_build(u, a, [16], [4, 16], [], [])) is None
    assert matrix_vector(_tensordot_build(b, u, [4, 4, 16], [16], [2], [0])) is None
    assert matrix_vector(_tensordot_build(b, b, [16, 16], [16, 16], [0, 1], [0, 1])) is None
    assert matrix_vector(transposed(a, 4, 16)) is None


def test_products_whose_buffers_would_not_fit_stay_in_the_pair_loop():
    """300 output components would need 300 tile buffers: the product is left
    to the pair loop, and is still right."""
    from dredux.codegen.cpp import lowered

    d = 16
    g = Genred("MatVecMult(a, x - y)", [f"x = Vi({d})", f"y = Vj({d})", f"a = Pm({300 * d})"],
               axis=1)
    assert lowered(g.program(np.float64)) is g.program(np.float64)
    gen = np.random.default_rng(1)
    x, y = gen.standard_normal((9, d)), gen.standard_normal((40, d))
    a = gen.standard_normal((300, d))
    out = g(x, y, a.ravel(), backend="cpu")
    np.testing.assert_allclose(out, (x[:, None] - y[None]).sum(1) @ a.T, rtol=1e-11,
                               atol=1e-11 * np.abs(out).max())


def _cpu_flags() -> set:
    try:
        with open("/proc/cpuinfo") as f:
            line = next((ln for ln in f if ln.startswith("flags")), "")
    except OSError:
        return set()
    return set(line.split(":", 1)[-1].split())


@pytest.mark.skipif(not {"avx2", "fma"} <= _cpu_flags(), reason="needs an AVX2 x86 CPU")
@pytest.mark.parametrize("march", ["x86-64-v3", "x86-64-v4"])
@pytest.mark.parametrize("name", ["gaussian", "argkmin", "two", "grad-x"])
def test_both_vector_widths_match_numpy(name, march):
    """The contraction loops have an AVX-512 variant (24 partial sums, 4
    vectors per row) and an AVX2 one (12): each target compiles its own, and
    both give the float64 reference's values (D = 100: panels, tiles and
    blocks crossed; 37 rows, not a multiple of R)."""
    import dask

    if march == "x86-64-v4" and not {"avx512f", "avx512bw", "avx512vl", "avx512dq"} \
            <= _cpu_flags():
        pytest.skip("needs an AVX-512 CPU")
    g = routine(name, 100)
    src = g.source("cpu", np.float32)
    assert "#if _DR_VBYTES == 64" in src and "NV = _DR_VBYTES == 64 ? 4 : 2;" in src
    args = inputs(37, 1500, 100, np.float32, seed=11)
    with dask.config.set({"dredux.march": march}):
        out = call(g, name, args)
    check_case(name, args, out, tolerances(np.float32))
