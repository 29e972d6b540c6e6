"""Array-module helpers: the same host code runs on NumPy and CuPy arrays."""

from __future__ import annotations

import sys

import numpy as np

__all__ = ["get_xp", "is_cupy", "to_numpy"]


def is_cupy(array) -> bool:
    """True for a CuPy array, without importing CuPy."""
    return type(array).__module__.split(".")[0] == "cupy"


def get_xp(*arrays):
    """The array module (``numpy`` or ``cupy``) of the given arrays."""
    for array in arrays:
        if is_cupy(array):
            return sys.modules["cupy"]
    return np


def to_numpy(array) -> np.ndarray:
    """A NumPy copy of a NumPy or CuPy array."""
    return array.get() if is_cupy(array) else np.asarray(array)
