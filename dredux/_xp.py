"""Array-module helpers: the same host code runs on NumPy and CuPy arrays."""

from __future__ import annotations

import contextlib
import sys

import numpy as np

__all__ = ["get_xp", "is_cupy", "is_dask", "on_device_of"]


def is_cupy(array) -> bool:
    """True for a CuPy array, without importing CuPy."""
    return type(array).__module__.split(".")[0] == "cupy"


def is_dask(array) -> bool:
    """True for a dask array (or another dask collection with chunks), without
    importing dask.array."""
    return type(array).__module__.split(".")[0] == "dask" and hasattr(array, "chunks")


def get_xp(*arrays):
    """The array module (``numpy`` or ``cupy``) of the given arrays."""
    for array in arrays:
        if is_cupy(array):
            return sys.modules["cupy"]
    return np


def on_device_of(*arrays):
    """A context in which array code runs on the GPU holding the first CuPy array.

    Merges and finalizes of CuPy states must run on their own device, which need
    not be the current one when a kernel was given a ``device_id``.
    """
    for array in arrays:
        if is_cupy(array):
            return array.device
    return contextlib.nullcontext()
