"""The backends: one registry of names, availability, kernels and cost calibration.

A *backend* turns a :class:`~dredux.program.Program` into a *kernel*: a
picklable callable that computes the partial state of one block. The API,
the planner, job files and the command line all read :data:`BACKENDS`, so a
backend is added in one place. The kernel protocol (what a new backend
implements, see :class:`Kernel`):

* ``kernel(rows, cols, params, m, n, j0) -> state``: ``rows`` are the arrays
  of ``program.row_vars`` (shape ``(m, dim)``; the output axis), ``cols``
  those of ``program.col_vars`` (``(n, dim)``; the reduced axis, starting at
  global index ``j0``), ``params`` those of ``program.param_vars``
  (``(dim,)``). The state is a tuple of arrays laid out as
  ``program.reduction.fields()`` (first axis: the m rows; indices are global,
  int64), in ``program.acc_dtype``; it must equal the reference's
  (:class:`dredux.numpy_eval.NumpyKernel`) up to rounding, and merge with
  :meth:`~dredux.reductions.Reduction.merge`. NumPy arrays in give NumPy
  arrays out (a GPU kernel copies them to the device and back).
* ``kernel.backend`` (its name), ``kernel.program`` and ``kernel.options``
  (every constructor option); ``kernel.source`` where code is generated.
* It pickles as its program and options, never as a binary, and compiles
  lazily where it is called, once per process (and device): kernels travel
  to Dask workers as a few kilobytes. :class:`Kernel` gives pickling and a
  ``__dask_tokenize__`` from the program's key and the options, so that graph
  keys change with anything that changes the result.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from . import config
from ._xp import is_cupy
from .errors import BackendUnavailable, shown

__all__ = ["Backend", "BACKENDS", "Kernel", "SPELLINGS", "normalize_backend",
           "resolve_backend", "make_kernel", "gpu_available", "gpu_count", "cpu_available"]


class Kernel:
    """Base of the block kernels: options, pickling and tokenizing (see the module
    docstring for the protocol). Subclasses set ``backend`` and ``OPTIONS`` (the
    names of their options) and implement ``__call__``."""

    backend = ""
    OPTIONS: tuple[str, ...] = ()

    def __init__(self, program, **options):
        unknown = sorted(set(options) - set(self.OPTIONS))
        if unknown:
            raise TypeError(f"{type(self).__name__} got unknown option(s) "
                            f"{', '.join(unknown)}; expected {', '.join(self.OPTIONS)}")
        self.program = program
        self.options = {k: v for k, v in options.items() if v is not None}

    def __reduce__(self):
        return (_rebuild, (type(self), self.program, self.options))

    def __dask_tokenize__(self):
        # the program's key and every option: anything that changes the result
        return (type(self).__name__, self.program.key, sorted(self.options.items()))

    def __repr__(self) -> str:
        red = self.program.reduction
        return (f"{type(self).__name__}({red.name}, {self.program.dtype}, "
                f"key={self.program.key[:12]}, options={self.options})")

    def __call__(self, rows: list, cols: list, params: list, m: int, n: int,
                 j0: int = 0, ranges=None):  # pragma: no cover - the protocol
        raise NotImplementedError

    def by_rectangles(self, rows: list, cols: list, params: list, j0: int, ranges):
        """The state of a block-sparse block from one dense call of this kernel per
        (row cluster, column range), merged; clusters without a range get the
        identity."""
        from ._xp import get_xp

        red = self.program.reduction
        acc = self.program.np_acc_dtype
        xp = get_xp(*rows, *cols, *params)
        parts = []
        for k, (a, b) in enumerate(ranges.rows.tolist()):
            sub = [r[a:b] for r in rows]
            state = None
            for c, d in ranges.cols[ranges.slices[k]:ranges.slices[k + 1]].tolist():
                part = self(sub, [v[c:d] for v in cols], params, b - a, d - c, j0 + c)
                state = part if state is None else red.merge(state, part, xp)
            parts.append(red.identity(b - a, acc, xp) if state is None else state)
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return red.identity(0, acc, xp)
        return tuple(xp.concatenate(fields, axis=0) for fields in zip(*parts))


def _rebuild(cls, program, options):
    return cls(program, **options)


def _numpy_kernel(program, **options):
    from .numpy_eval import NumpyKernel

    return NumpyKernel(program, **options)


def _cpu_kernel(program, **options):
    from .compile.cpp import CppKernel

    return CppKernel(program, **options)


def _gpu_kernel(program, **options):
    from .compile.cuda import CudaKernel

    return CudaKernel(program, **options)


def cpu_available() -> bool:
    """A C++ compiler is on PATH (``dredux.cxx``, ``$CXX`` or g++)."""
    from .compile.cpp import cxx_command

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


def gpu_count() -> int:
    """The GPUs CuPy sees in this process (0 without CuPy or a device)."""
    return _gpu_count()


@dataclass(frozen=True)
class Backend:
    """One backend.

    Attributes
    ----------
    name : str
        Its name (``"cpu"``).
    spellings : tuple of str
        Other names that select it (KeOps's ``"CPU"``, ``"GPU_1D"``...).
    available : callable
        ``() -> bool``: whether it can run here.
    kernel : callable
        ``(program, **options) -> kernel`` (see :class:`Kernel`).
    seconds_per_cost : float
        Seconds per unit of pair cost on one worker (the planner's calibration,
        float32; right within a factor of a few).
    min_rows, min_cols : int
        Smallest row blocks and column ranges worth a task.
    """

    name: str
    spellings: tuple[str, ...]
    available: Callable[[], bool]
    kernel: Callable
    seconds_per_cost: float
    min_rows: int
    min_cols: int


# Seconds per unit of cost: the Gaussian, seed-formula, LogSumExp and ArgKMin
# kernels of the CPU backend on a 2.9 GHz AVX-512 core give 1.6e-11 to 2.9e-11.
BACKENDS: dict[str, Backend] = {b.name: b for b in (
    Backend("numpy", ("NUMPY", "NumPy"), lambda: True, _numpy_kernel, 3e-9, 64, 256),
    Backend("cpu", ("CPU",), cpu_available, _cpu_kernel, 2e-11, 256, 1024),
    Backend("gpu", ("GPU", "GPU_1D", "GPU_2D", "GPU_1D_host", "GPU_1D_device",
                    "GPU_2D_host", "GPU_2D_device"), gpu_available, _gpu_kernel,
            1e-13, 65536, 65536),
)}
_AUTO = ("auto", "AUTO", "Auto")
_NAMES = {name: b.name for b in BACKENDS.values() for name in (b.name, *b.spellings)}
_NAMES.update({name: "auto" for name in _AUTO})
SPELLINGS: tuple[str, ...] = tuple(_NAMES)  # every accepted spelling, "auto" included


def normalize_backend(name) -> str:
    """The backend name (or ``"auto"``) that ``name`` spells: dredux's names in any
    case, and KeOps's spellings (``"CPU"``, ``"GPU_1D"``...)."""
    if isinstance(name, str):
        found = _NAMES.get(name) or _NAMES.get(name.lower())
        if found is not None:
            return found
    listed = ", ".join(repr(n) for n in ("auto", *BACKENDS))
    raise BackendUnavailable(
        f"unknown backend {shown(name)}; expected one of {listed} (KeOps spellings 'CPU', "
        "'GPU', 'GPU_1D', 'GPU_2D' are accepted too)")


def resolve_backend(name: str | None, arrays=()) -> str:
    """The concrete backend for a call: "auto" picks GPU, else CPU, else NumPy."""
    if name is None:
        setting = config.get("backend")
        try:
            name = normalize_backend(setting)
        except BackendUnavailable:
            # the user passed no backend=: name the setting that chose this one
            listed = ", ".join(repr(n) for n in ("auto", *BACKENDS))
            raise config.setting_error("backend", setting, f"one of {listed} (or KeOps's "
                                       "'CPU', 'GPU')") from None
    else:
        name = normalize_backend(name)
    if name != "auto":
        return name
    if any(is_cupy(a) or is_cupy(getattr(a, "_meta", None)) for a in arrays):
        return "gpu"
    if gpu_available():
        return "gpu"
    if cpu_available():
        return "cpu"
    from .compile.cpp import cxx_compiler

    warnings.warn(
        f"no C++ compiler found ({cxx_compiler()!r}); dredux falls back to its "
        "NumPy evaluator, which is much slower. Install g++ or set CXX.",
        RuntimeWarning, stacklevel=3)
    return "numpy"


def make_kernel(program, backend: str, **options):
    """The block kernel of ``program`` on ``backend`` (compiled lazily where it runs)."""
    found = BACKENDS.get(normalize_backend(backend))
    if found is None:
        raise BackendUnavailable(f"make_kernel needs a concrete backend, got {backend!r}; "
                                 f"expected one of {', '.join(BACKENDS)}")
    return found.kernel(program, **options)
