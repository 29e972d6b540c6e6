"""backend="gpu" without CuPy or without a device: a clear BackendUnavailable.

These tests need no GPU (they are skipped where one is present).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

import dredux.compile.cuda as cuda_backend
from dredux import BackendUnavailable, Genred

ALIASES = ["x = Vi(3)", "y = Vj(3)"]


def _has_device() -> bool:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def _args():
    rng = np.random.default_rng(0)
    return rng.uniform(-1, 1, (5, 3)), rng.uniform(-1, 1, (7, 3))


def test_without_cupy_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy raises ImportError
    g = Genred("SqDist(x, y)", ALIASES, axis=1)
    with pytest.raises(BackendUnavailable) as info:
        g(*_args(), backend="gpu")
    message = str(info.value)
    assert "pip install cupy-cuda12x" in message and "backend='cpu'" in message
    assert g.source("gpu")  # the source needs no CuPy


@pytest.mark.skipif(_has_device(), reason="a CUDA device is present")
def test_without_a_device_the_error_says_so():
    pytest.importorskip("cupy", reason="CuPy is not installed; the test above covers it")
    g = Genred("SqDist(x, y)", ALIASES, axis=1)
    with pytest.raises(BackendUnavailable) as info:
        g(*_args(), backend="GPU")  # KeOps spelling
    message = str(info.value)
    assert "no usable CUDA device" in message or "no CUDA device" in message
    assert "backend='cpu'" in message


def test_require_cupy_is_the_only_gate(monkeypatch):
    # a kernel is built and pickled without CuPy; only running it needs a device
    monkeypatch.setitem(sys.modules, "cupy", None)
    g = Genred("SqDist(x, y)", ALIASES, reduction_op="ArgKMin", opt_arg=2, axis=1)
    kernel = g.kernel("gpu", "float32")
    assert kernel.backend == "gpu" and "dredux_reduce" in kernel.source
    with pytest.raises(BackendUnavailable):
        cuda_backend.require_cupy()
