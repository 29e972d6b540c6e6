"""Genred end to end on the CPU backend: auto resolution, the seed formula, dask inputs."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from dredux import Genred
from dredux.backends import resolve_backend

ALIASES = ["x = Vi(3)", "y = Vj(3)", "a = Vj(1)", "p = Pm(1)"]
SEED = "Square(p-a)*Exp(x+y)"


def seed_inputs(m, n, dtype=np.float64, seed=0):
    gen = np.random.default_rng(seed)
    return [gen.random(s).astype(dtype) for s in ((m, 3), (n, 3), (n, 1), (1,), (m, 3))]


def seed_forward(x, y, a, p):
    x, y, a, p = (v.astype(np.float64) for v in (x, y, a, p))
    return np.exp(x) * ((p - a) ** 2 * np.exp(y)).sum(0)


def seed_gradient(x, y, a, p, e):
    x, y, a, p, e = (v.astype(np.float64) for v in (x, y, a, p, e))
    return (p - a) ** 2 * np.exp(y) * (np.exp(x) * e).sum(0)


def test_auto_resolves_to_cpu_when_a_compiler_is_present(monkeypatch):
    import dredux.backends

    monkeypatch.setattr(dredux.backends, "gpu_available", lambda *a, **k: False)
    assert resolve_backend("auto", [np.zeros(3)]) == "cpu"


@pytest.mark.parametrize("dtype, rtol", [(np.float32, 1e-5), (np.float64, 1e-12)])
def test_seed_formula_and_gradient(dtype, rtol):
    x, y, a, p, e = seed_inputs(300, 500, dtype)
    forward = Genred(SEED, ALIASES, axis=1)
    gradient = Genred(f"Grad({SEED}, y, e)", ALIASES + ["e = Vi(3)"], axis=0)
    np.testing.assert_allclose(forward(x, y, a, p, backend="cpu"), seed_forward(x, y, a, p),
                               rtol=rtol)
    np.testing.assert_allclose(gradient(x, y, a, p, e, backend="cpu"),
                               seed_gradient(x, y, a, p, e), rtol=rtol)


def test_many_threaded_tasks_equal_one_task():
    x, y, a, p, _ = seed_inputs(1000, 3000)
    g = Genred(SEED, ALIASES, axis=1)
    whole = g(x, y, a, p, backend="cpu", block_size=(1000, 3000))
    split = g(x, y, a, p, backend="cpu", block_size=(97, 512), scheduler="threads")
    np.testing.assert_allclose(split, whole, rtol=1e-13)
    np.testing.assert_allclose(whole, seed_forward(x, y, a, p), rtol=1e-12)


def test_dask_inputs_give_a_lazy_result():
    x, y, a, p, _ = seed_inputs(500, 700)
    g = Genred(SEED, ALIASES, axis=1)
    out = g(da.from_array(x, chunks=(128, 3)), da.from_array(y, chunks=(300, 3)),
            da.from_array(a, chunks=(300, 1)), p, backend="cpu")
    assert isinstance(out, da.Array)
    np.testing.assert_allclose(out.compute(), seed_forward(x, y, a, p), rtol=1e-12)


def test_source_is_the_generated_cpp():
    g = Genred(SEED, ALIASES, axis=1)
    src = g.source("cpu")
    assert 'extern "C" int dredux_block' in src and "#pragma omp simd" in src
    assert src == g.kernel("cpu", np.float32).source


def test_dimensions_above_the_unroll_limit():
    """Vectors longer than the renderer's unroll limit (32) are computed in loops
    (an L1 distance: Abs is not one of the register-blocked contractions' ops)."""
    gen = np.random.default_rng(11)
    x, y = gen.uniform(-1, 1, (9, 40)) * 0.2, gen.uniform(-1, 1, (37, 40)) * 0.2
    b = gen.uniform(0, 1, (37, 35))
    g = Genred("Exp(-Sum(Abs(x - y))) * b", ["x = Vi(40)", "y = Vj(40)", "b = Vj(35)"],
               axis=1)
    assert "for (int _k" in g.source("cpu", "float64")
    out = g(x, y, b, backend="cpu")
    ref = np.einsum("ij,jk->ik", np.exp(-np.abs(x[:, None] - y[None]).sum(-1)), b)
    np.testing.assert_allclose(out, ref, rtol=1e-12)


def test_read_only_and_writable_inputs_give_the_same_result():
    """The kernel takes the data addresses of writable arrays through ctypes and
    of read-only ones (memory-mapped files, broadcast views) through NumPy."""
    x, y, a, p, _ = seed_inputs(40, 70)
    routine = Genred(SEED, ALIASES, axis=1)
    writable = routine(x, y, a, p, backend="cpu")
    for v in (x, y, a, p):
        v.setflags(write=False)
    frozen = routine(x, y, a, p, backend="cpu")
    np.testing.assert_allclose(frozen, seed_forward(x, y, a, p), rtol=1e-12)
    np.testing.assert_array_equal(frozen, writable)
