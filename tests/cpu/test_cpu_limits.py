"""Big vectors, big states and big formulas on the compiled CPU backend.

Arrays too big for a worker thread's stack (formula buffers, K-min lists, sum
lanes) live on the heap; a kernel whose vectors alone would overflow the
stack, or whose code would take the compiler many minutes, is refused with a
FormulaError before any work. References are NumPy in float64.
"""

from __future__ import annotations

import numpy as np
import pytest

from dredux import FormulaError, Genred, limits
from dredux.codegen.cpp import code_operations, cpp_source


def test_wide_vectors_with_buffered_reductions_use_the_heap():
    """Min over j of x - y at D = 30,000: the formula buffer (64 columns x D
    doubles, 15 MB) used to be a stack array and crashed the process."""
    d = 30_000
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((3, d)), rng.standard_normal((70, d))
    routine = Genred("x - y", [f"x = Vi({d})", f"y = Vj({d})"], reduction_op="Min", axis=1)
    out = routine(x, y, backend="cpu")
    np.testing.assert_array_equal(out, (x[:, None, :] - y[None, :, :]).min(axis=1))


def test_long_k_min_lists_use_the_heap():
    """ArgKMin with K = 16,384 (the limit) over 8 components: 4 row states of
    8 x K values and indices (8 MiB, a whole thread stack) on the heap."""
    k = limits.MAX_K
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((2, 8)), rng.standard_normal((k + 300, 8))
    routine = Genred("x - y", ["x = Vi(8)", "y = Vj(8)"], reduction_op="ArgKMin", axis=1,
                     opt_arg=k)
    out = routine(x, y, backend="cpu")
    diff = x[:, None, :] - y[None, :, :]
    want = np.argsort(diff, axis=1, kind="stable")[:, :k, :]
    np.testing.assert_array_equal(out.reshape(2, k, 8), want)


def test_vectors_too_wide_for_the_stack_are_refused_before_any_work():
    d = limits.MAX_DIM
    # x - y has two readers: one vector of d values per pair on the stack
    routine = Genred("(x - y) * Exp(x - y)", [f"x = Vi({d})", f"y = Vj({d})"],
                     reduction_op="Max", axis=1)
    with pytest.raises(FormulaError, match="KiB of vectors per thread, more than the limit"):
        routine.kernel("cpu", "float64")
    x = np.zeros((2, d))
    with pytest.raises(FormulaError, match="backend=\"numpy\""):
        routine(x, x, backend="cpu")
    out = routine(x[:1, :4].repeat(d // 4, axis=1)[:, :d] + 1, x[:2], backend="numpy")
    np.testing.assert_allclose(out, np.full((1, d), np.e))


def test_big_matrix_products_compile_as_loops():
    """TensorDot of 20 x 20 matrices: written as loops (the source does not
    grow as n^3), and equal to numpy.einsum."""
    formula = "TensorDot(a, b, [20, 20], [20, 20], [1], [0])"
    routine = Genred(formula, ["a = Vi(400)", "b = Vj(400)"], axis=1)
    source = cpp_source(routine.program("float64"))
    body = source[source.index("dredux_block("):]
    assert len(body) < 6_000, len(body)
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((4, 400)), rng.standard_normal((9, 400))
    want = np.einsum("mij,njk->mik", a.reshape(4, 20, 20), b.reshape(9, 20, 20))
    np.testing.assert_allclose(routine(a, b, backend="cpu"), want.reshape(4, 400),
                               rtol=1e-12, atol=1e-12)


def _exp_terms(count: int) -> str:
    return " + ".join(f"Exp(x - y * {k + 1})" for k in range(count))


def test_generated_code_grows_linearly_with_the_formula():
    """Row-only terms are written once per row of a pass: with many of them a
    pass has one row, and the source grows with the formula, not 8 times it."""
    def body(formula, aliases):
        source = cpp_source(Genred(formula, aliases, axis=1).program("float64"))
        return len(source[source.index("dredux_block("):])

    formulas = [" + ".join(f"Exp(x * {k})" for k in range(1, n + 1)) for n in (256, 512)]
    rows = [body(f, ["x = Vi(1)"]) for f in formulas]
    assert rows[1] < 2.2 * rows[0] and rows[1] < 4 * len(formulas[1]), rows
    pairs = [body(_exp_terms(n), ["x = Vi(3)", "y = Vj(3)"]) for n in (32, 64)]
    assert pairs[1] < 2.2 * pairs[0], pairs


def test_formulas_too_big_to_compile_are_refused_before_compiling():
    aliases = ["x = Vi(3)", "y = Vj(3)"]
    routine = Genred(_exp_terms(512), aliases, axis=1)
    with pytest.raises(FormulaError, match=r"operations, more than the limit of"):
        routine.kernel("cpu", "float64")
    # the NumPy backend has no compiler and computes it
    x, y = np.full((2, 3), 0.01), np.full((3, 3), 0.001)
    k = np.arange(1, 513)[:, None, None]
    want = np.exp(x[None, :, None, :] - y[None, None, :, :] * k[..., None]).sum(axis=(0, 2))
    np.testing.assert_allclose(routine(x, y, backend="numpy"), want, rtol=1e-12)
    # a formula of a quarter the size is within the limit
    source = cpp_source(Genred(_exp_terms(128), aliases, axis=1).program("float64"))
    assert code_operations([source]) < 2 * limits.MAX_KERNEL_OPERATIONS
