"""Helpers of the CPU tier: compile many kernels at once, run both backends."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np


def precompile(pairs) -> None:
    """Build the CPU kernels of ``(routine, dtype)`` pairs, several compilers at once."""
    pairs = list(pairs)
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        list(pool.map(lambda p: p[0].kernel("cpu", p[1]).compile(), pairs))


def as_tuple(out) -> tuple:
    return out if isinstance(out, tuple) else (out,)


def tolerances(dtype) -> dict:
    """rtol/atol for results computed in ``dtype`` against float64 references."""
    if np.dtype(dtype) == np.float64:
        return {"rtol": 1e-11, "atol": 1e-12}
    if np.dtype(dtype) == np.float16:
        return {"rtol": 4e-3, "atol": 4e-3}
    return {"rtol": 2e-5, "atol": 2e-6}
