"""Sums on both paths of the CPU kernel, against NumPy float64 references written here.

``Sum`` of up to 8 components (``block_sum``, ``direct_sum``) accumulates inside the
j-loop (fused); ``kahan_scheme`` and more components go through the formula buffer.
Each case runs on the edges of the rows per pass (R), the vector lanes and the
tiles (512 columns buffered, 2048 fused), in float32, float64 and float32
accumulated in float64.
"""

from __future__ import annotations

import numpy as np
import pytest

from dredux import Genred
from tests.cpu.cpu_util import precompile, tolerances

ALIASES = ["x = Vi(3)", "y = Vj(3)", "b = Vj(9)", "p = Pm(1)"]
SCHEMES = ("direct_sum", "block_sum", "kahan_scheme")
DIMS = (1, 2, 8, 9)
DTYPES = ((np.float32, "auto"), (np.float32, "float64"), (np.float64, "auto"))


def routine(dim, scheme, acc):
    return Genred(f"Exp(-p * SqDist(x, y)) * Extract(b, 0, {dim})", ALIASES, axis=1,
                  sum_scheme=scheme, dtype_acc=acc)


ROUTINES = {(d, s, dt, acc): routine(d, s, acc) for d in DIMS for s in SCHEMES
            for dt, acc in DTYPES}


@pytest.fixture(scope="module", autouse=True)
def compiled():
    precompile((g, key[2]) for key, g in ROUTINES.items())


def reference(x, y, b, p, dim):
    x, y, b, p = (a.astype(np.float64) for a in (x, y, b, p))
    sq = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    return np.exp(-p[0] * sq) @ b[:, :dim]


@pytest.mark.parametrize("dtype, acc", DTYPES)
@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("dim", DIMS)
def test_sums_on_block_edges(dim, scheme, dtype, acc):
    g = ROUTINES[(dim, scheme, dtype, acc)]
    kernel = g.kernel("cpu", dtype)
    assert kernel.layout.fused == (scheme != "kahan_scheme" and dim <= 8)
    assert kernel.layout.acc == np.dtype(np.float64 if acc == "float64" or dtype == np.float64
                                         else np.float32)
    rows = kernel.layout.rows_per_pass
    gen = np.random.default_rng(dim)
    for m, n in [(1, 1), (rows - 1, 17), (rows, 16), (rows + 1, 513), (2 * rows + 1, 1025),
                 (3, 0), (0, 5), (rows + 3, 511), (2, 2047), (rows, 2048), (1, 2049)]:
        x = gen.uniform(-1, 1, (m, 3)).astype(dtype)
        y = gen.uniform(-1, 1, (n, 3)).astype(dtype)
        b = gen.uniform(-1, 1, (n, 9)).astype(dtype)
        p = np.array([gen.uniform(0.5, 2)], dtype)
        out = g(x, y, b, p, backend="cpu")
        assert out.shape == (m, dim) and out.dtype == dtype
        # b has both signs: compare with the sum of magnitudes as the scale
        ref = reference(x, y, b, p, dim)
        scale = reference(x, y, np.abs(b), p, dim) + 1e-30
        err = np.abs(out.astype(np.float64) - ref) / scale
        bound = 4e-7 if dtype == np.float32 else 1e-14
        assert err.size == 0 or err.max() <= bound, (m, n, float(err.max()))
        np.testing.assert_allclose(out, ref, **tolerances(dtype), err_msg=f"m={m} n={n}")


def test_fused_sums_propagate_inf_and_nan():
    g = Genred("x * y", ["x = Vi(1)", "y = Vj(1)"], axis=1)
    assert g.kernel("cpu", np.float64).layout.fused
    x = np.ones((9, 1))
    y = np.ones((40, 1))
    y[3] = np.inf
    assert np.all(g(x, y, backend="cpu") == np.inf)
    y[30] = -np.inf
    assert np.isnan(g(x, y, backend="cpu")).all()
