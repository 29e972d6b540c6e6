"""Backend names, detection and kernel construction.

A *kernel* is a picklable callable ``kernel(rows, cols, params, m, n, j0) ->
partial state`` with a ``backend`` attribute. The "numpy" kernel is the
reference evaluator; the "cpu" and "gpu" kernels are compiled from generated
code and plug into the same graph.
"""

from __future__ import annotations

import functools
import shutil
import warnings

from . import config
from ._xp import is_cupy
from .errors import BackendUnavailable

__all__ = ["BACKENDS", "normalize_backend", "resolve_backend", "make_kernel",
           "cpu_available", "gpu_available"]

BACKENDS = ("auto", "cpu", "gpu", "numpy")
_ALIASES = {"CPU": "cpu", "GPU": "gpu", "GPU_1D": "gpu", "GPU_2D": "gpu",
            "GPU_1D_host": "gpu", "GPU_1D_device": "gpu", "GPU_2D_host": "gpu",
            "GPU_2D_device": "gpu", "AUTO": "auto", "NUMPY": "numpy"}


def normalize_backend(name) -> str:
    """Map KeOps spellings ("CPU", "GPU_1D"...) to dredux's backend names."""
    if not isinstance(name, str):
        raise BackendUnavailable(f"backend must be a string, got {name!r}; expected one "
                                 f"of {', '.join(BACKENDS)}")
    out = _ALIASES.get(name, name.lower() if name.lower() in BACKENDS else name)
    if out not in BACKENDS:
        raise BackendUnavailable(
            f"unknown backend {name!r}; expected one of {', '.join(BACKENDS)} (KeOps "
            "spellings 'CPU', 'GPU', 'GPU_1D' are accepted too)")
    return out


def cxx_compiler() -> str:
    """The C++ compiler command: dredux.cxx, else $CXX, else g++."""
    import os

    return config.get("cxx") or os.environ.get("CXX") or "g++"


def cxx_command() -> list[str] | None:
    """The C++ compiler command with its program resolved on PATH, or None
    when there is none."""
    import shlex

    words = shlex.split(cxx_compiler())
    found = shutil.which(words[0]) if words else None
    return [found, *words[1:]] if found else None


def cpu_available() -> bool:
    return cxx_command() is not None


@functools.cache
def _gpu_count() -> int:
    try:
        import cupy
    except Exception:
        return 0
    try:
        return int(cupy.cuda.runtime.getDeviceCount())
    except Exception:
        return 0


def gpu_available() -> bool:
    """True when CuPy imports and sees a device (CUDA starts only when called)."""
    return _gpu_count() > 0


def resolve_backend(name: str, arrays) -> str:
    """The concrete backend for a call: "auto" picks GPU, else CPU, else NumPy."""
    name = normalize_backend(config.get("backend") if name is None else name)
    if name == "auto":
        if any(is_cupy(a) or is_cupy(getattr(a, "_meta", None)) for a in arrays):
            return "gpu"
        if gpu_available():
            return "gpu"
        if cpu_available():
            return "cpu"
        warnings.warn(
            f"no C++ compiler found ({cxx_compiler()!r}); dredux falls back to its "
            "NumPy evaluator, which is much slower. Install g++ or set CXX.",
            RuntimeWarning, stacklevel=3)
        return "numpy"
    return name


def make_kernel(program, backend: str, **options):
    """The block kernel of ``program`` on ``backend`` (compiled lazily where it runs)."""
    if backend == "numpy":
        from .numpy_eval import NumpyKernel

        return NumpyKernel(program, **options)
    if backend == "cpu":
        from .compile.cpp import CppKernel

        return CppKernel(program, **options)
    if backend == "gpu":
        from .compile.cuda import CudaKernel

        return CudaKernel(program, **options)
    raise BackendUnavailable(f"unknown backend {backend!r}")
