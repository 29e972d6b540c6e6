"""LazyTensor on CuPy arrays: CuPy in, CuPy out, on the GPU backend; float
parameters become device arrays; solve iterates on the device.

Skipped without CuPy and a CUDA device (marker ``gpu``)."""

from __future__ import annotations

import numpy as np
import pytest

cp = pytest.importorskip("cupy")


def _device_count() -> int:
    try:
        return int(cp.cuda.runtime.getDeviceCount())
    except Exception:  # no driver
        return 0


if _device_count() < 1:
    pytest.skip("CuPy sees no CUDA device", allow_module_level=True)

from dredux import LazyTensor, Vi, Vj  # noqa: E402

pytestmark = pytest.mark.gpu


def test_cupy_in_cupy_out():
    gen = np.random.default_rng(0)
    x, y, b = gen.random((300, 3)), gen.random((400, 3)), gen.random((400, 2))
    xg, yg, bg = cp.asarray(x), cp.asarray(y), cp.asarray(b)
    K = (-((LazyTensor(xg[:, None, :]) - LazyTensor(yg[None, :, :])) ** 2).sum(-1) / 0.5).exp()
    out = K @ bg
    assert isinstance(out, cp.ndarray)
    ref = np.exp(-((x[:, None] - y[None]) ** 2).sum(-1) / 0.5) @ b
    np.testing.assert_allclose(cp.asnumpy(out), ref, rtol=1e-11, atol=1e-11)
    ind = (Vi(xg) - Vj(yg)).sqnorm2().argKmin(4, dim=1)
    assert isinstance(ind, cp.ndarray)
    d = ((x[:, None] - y[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(cp.asnumpy(ind), np.argsort(d, axis=1)[:, :4])


def test_solve_on_the_device():
    gen = np.random.default_rng(1)
    x, b = gen.random((200, 2)), gen.random((200, 1))
    K = (-Vi(cp.asarray(x)).sqdist(Vj(cp.asarray(x))) * 4.0).exp()
    a = K.solve(cp.asarray(b), alpha=0.1, eps=1e-12)
    assert isinstance(a, cp.ndarray)
    dense = np.exp(-4 * ((x[:, None] - x[None]) ** 2).sum(-1))
    ref = np.linalg.solve(0.1 * np.eye(200) + dense, b)
    np.testing.assert_allclose(cp.asnumpy(a), ref, rtol=1e-8, atol=1e-8)
