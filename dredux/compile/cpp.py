"""The CPU backend's kernel: generated C++ compiled to a shared library, run via ctypes.

:class:`CppKernel` is the block kernel of the "cpu" backend: a picklable
callable ``kernel(rows, cols, params, m, n, j0) -> state``. It pickles as its
:class:`~dredux.program.Program` and options, and compiles lazily where it
runs: the first call in a process renders the source, fetches the shared
library from the disk cache (:mod:`dredux.compile.cache`) or builds it, and
loads it; later calls, from any thread, reuse the loaded function. ctypes
releases the GIL during the call, so Dask's threads run block tasks in
parallel.

Compiler: ``dredux.cxx``, else ``$CXX``, else ``g++`` (:func:`cxx_command`);
extra flags from ``dredux.cxxflags``; target CPU from ``dredux.march``
(default ``native``). All of them, with the compiler's version and the CPU's
identity, are part of the cache key.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np

from .. import config
from .._version import __version__
from ..backends import Kernel
from ..errors import BackendUnavailable, KernelCompileError
from ..program import Program
from . import cache

__all__ = ["CppKernel", "cxx_compiler", "cxx_command", "compiler_command", "compile_flags",
           "load_kernel"]

# -fno-math-errno and -fno-trapping-math let GCC vectorise sqrt and if-convert
# selects; -ffp-contract=fast allows FMAs (ISO modes turn it off). None of them
# reassociates, so compensated sums stay exact.
BASE_FLAGS = ("-O3", "-std=c++17", "-shared", "-fPIC", "-fno-math-errno",
              "-fno-trapping-math", "-ffp-contract=fast", "-fopenmp-simd")
# GCC only: schedule before register allocation too (x86 GCC does not by
# default), which interleaves the long dependency chains of the R rows of a
# pass so that the j-loop keeps both vector ports busier: 9-21% faster on the
# Gaussian and seed Sum kernels (one thread, AVX-512, GCC 12), no extra spills.
GCC_FLAGS = ("-fschedule-insns", "-fsched-pressure")
def cxx_compiler() -> str:
    """The C++ compiler command: dredux.cxx, else $CXX, else g++."""
    return config.get("cxx") or os.environ.get("CXX") or "g++"


@functools.lru_cache(maxsize=16)
def _resolve(command: str) -> tuple[str, ...] | None:
    words = shlex.split(command)
    found = shutil.which(words[0]) if words else None
    return (found, *words[1:]) if found else None


def cxx_command() -> list[str] | None:
    """The C++ compiler command with its program resolved on PATH, or None
    when there is none (looked up once per command text)."""
    found = _resolve(cxx_compiler())
    return list(found) if found else None


def compiler_command() -> list[str]:
    """The compiler command (``dredux.cxx``, ``$CXX`` or ``g++``), resolved on PATH.

    Raises
    ------
    BackendUnavailable
        When the compiler is not found.
    """
    command = cxx_command()
    if command is None:
        raise BackendUnavailable(
            f"the CPU backend needs a C++17 compiler, and {cxx_compiler()!r} was not found "
            "on PATH. Install one (e.g. 'apt-get install g++' or 'conda install gxx'), or "
            "set CXX / dask.config 'dredux.cxx' to its path, or call with "
            "backend='numpy' (much slower).")
    return command


def compile_flags(command: list[str] | None = None) -> list[str]:
    """Flags of the compile with ``command`` (default: :func:`compiler_command`):
    the fixed ones (and GCC's own where the compiler is GCC), ``-march`` and
    ``dredux.cxxflags``."""
    flags = list(BASE_FLAGS)
    try:
        if _is_gcc(tuple(command or compiler_command())):
            flags += GCC_FLAGS
    except BackendUnavailable:
        pass  # no compiler: the flags are only shown, nothing is compiled
    march = config.get("march")
    if march:
        flags.append(f"-march={march}")
    flags += shlex.split(str(config.get("cxxflags") or ""))
    return flags


@functools.cache
def _compiler_version(command: tuple[str, ...]) -> str:
    try:
        done = subprocess.run([*command, "--version"], capture_output=True, text=True,
                              timeout=60)
    except OSError as exc:
        raise BackendUnavailable(f"cannot run the C++ compiler {command[0]!r}: {exc}") from exc
    return done.stdout.strip() or done.stderr.strip()


def _is_gcc(command: tuple[str, ...]) -> bool:
    """Whether ``command`` is GCC (clang and its relatives say so in ``--version``)."""
    try:
        text = _compiler_version(command)
    except BackendUnavailable:
        return False
    return "Free Software Foundation" in text and "clang" not in text.lower()


@functools.cache
def _cpu_identity() -> str:
    """Model and feature flags of this CPU (what -march=native compiles for)."""
    text = ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.strip() == "":
                    break  # the first processor describes them all
                if line.split(":")[0].strip() in ("model name", "flags", "Features",
                                                  "CPU implementer", "CPU part"):
                    text += line
    except OSError:
        pass
    text += platform.machine() + platform.processor()
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _ingredients(source: str, command: list[str], flags: list[str], program: Program) -> dict:
    march = config.get("march")
    return {
        "backend": "cpu",
        "source": source,
        "compiler": command,
        "compiler_version": _compiler_version(tuple(command)),
        "flags": flags,
        "target": {"march": march, "cpu": _cpu_identity() if march == "native" else None,
                   "machine": platform.machine()},
        "dtype": program.dtype,
        "acc_dtype": program.acc_dtype,
        "dredux": __version__,
    }


def _compile(source: str, command: list[str], flags: list[str], out: Path) -> None:
    """g++ ``source`` into the shared library ``out``; KernelCompileError on failure."""
    src = out.with_suffix(".cpp")
    src.write_text(source)
    cmd = [*command, *flags, "-o", str(out), str(src)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise KernelCompileError(f"running the C++ compiler failed: {exc}", source, str(exc),
                                 tuple(cmd)) from exc
    if done.returncode != 0 or not out.exists():
        raise KernelCompileError(
            f"the C++ compiler rejected a generated kernel (exit status {done.returncode})",
            source, done.stdout + done.stderr, tuple(cmd))


_LOADED: dict[str, object] = {}  # cache key -> ctypes function, one load per process
_LOAD_LOCK = threading.Lock()
_KEY_LOCKS: dict[str, threading.Lock] = {}


def load_kernel(source: str, program: Program, layout_tag: str):
    """The ``dredux_block`` function of ``source``, compiled (or cached) and loaded.

    Loads each distinct kernel once per process; concurrent callers of the same
    kernel wait for the first one's build instead of compiling it again.
    """
    command = compiler_command()
    flags = compile_flags(command)
    key = cache.cache_key(_ingredients(source, command, flags, program))
    fn = _LOADED.get(key)
    if fn is not None:
        return fn
    with _LOAD_LOCK:
        key_lock = _KEY_LOCKS.setdefault(key, threading.Lock())
    with key_lock:
        fn = _LOADED.get(key)
        if fn is not None:
            return fn
        path = cache.fetch_or_build(
            "cpu", key, lambda out: _compile(source, command, flags, out),
            {"command": " ".join(shlex.quote(w) for w in [*command, *flags]),
             "layout": layout_tag})
        lib = ctypes.CDLL(str(path))
        lib.dredux_layout.restype = ctypes.c_char_p
        found = lib.dredux_layout().decode()
        if found != layout_tag:  # pragma: no cover - would mean a key collision
            raise KernelCompileError(f"the cached kernel {path} computes {found!r}, "
                                     f"expected {layout_tag!r}", source)
        fn = lib.dredux_block
        fn.restype = ctypes.c_int
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                       ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
        fn._dredux_lib = lib  # keep the library loaded as long as the function lives
        _LOADED[key] = fn
        return fn


def _allocate(shape: tuple, dtype) -> np.ndarray:
    """A new state array; the kernel writes every element (tests poison it here)."""
    return np.empty(shape, dtype=dtype)


def _pointers(arrays) -> ctypes.Array:
    return (ctypes.c_void_p * max(1, len(arrays)))(*[a.ctypes.data for a in arrays])


class CppKernel(Kernel):
    """Block kernel of the "cpu" backend.

    Parameters
    ----------
    program : dredux.program.Program
    rows_per_pass : int, optional
        Output rows computed together over a tile of columns (default: chosen
        by :func:`dredux.codegen.cpp.default_rows_per_pass`).

    Examples
    --------
    >>> import numpy as np
    >>> from dredux import Genred
    >>> routine = Genred("SqDist(x, y)", ["x = Vi(2)", "y = Vj(2)"], axis=1)
    >>> kernel = routine.kernel("cpu", "float64")
    >>> x, y = np.ones((3, 2)), np.zeros((4, 2))
    >>> (acc,) = kernel([x], [y], [], 3, 4, 0)
    >>> acc.ravel().tolist()
    [8.0, 8.0, 8.0]
    """

    backend = "cpu"
    OPTIONS = ("rows_per_pass",)

    def __init__(self, program: Program, **options):
        super().__init__(program, **options)
        rows_per_pass = self.options.get("rows_per_pass")
        if rows_per_pass is not None and (not isinstance(rows_per_pass, int)
                                          or isinstance(rows_per_pass, bool)
                                          or not 1 <= rows_per_pass <= 16):
            raise ValueError(f"rows_per_pass must be an integer in [1, 16], got "
                             f"{rows_per_pass!r}")
        self._source: str | None = None
        self._fn = None
        self._lock = threading.Lock()
        from ..codegen.cpp import layout

        self.layout = layout(program, rows_per_pass)

    @property
    def source(self) -> str:
        """The generated C++ source."""
        if self._source is None:
            from ..codegen.cpp import cpp_source

            self._source = cpp_source(self.program, self.layout.rows_per_pass)
        return self._source

    def _function(self):
        fn = self._fn
        if fn is None:
            with self._lock:
                if self._fn is None:
                    from ..codegen.cpp import layout_tag

                    self._fn = load_kernel(self.source, self.program,
                                           layout_tag(self.program, self.layout))
                fn = self._fn
        return fn

    def compile(self) -> CppKernel:
        """Build (or fetch from the cache) and load the kernel now; returns self."""
        self._function()
        return self

    def __call__(self, rows: list, cols: list, params: list, m: int, n: int, j0: int = 0):
        """Partial state of rows [0, m) against columns [0, n) (global offset ``j0``)."""
        prog = self.program
        red = prog.reduction
        fn = self._function()
        T = self.layout.compute
        m, n, j0 = int(m), int(n), int(j0)
        row_arrays = [np.ascontiguousarray(np.asarray(a).reshape(m, v.dim), dtype=T)
                      for a, v in zip(rows, prog.row_vars)]
        # the j-loop reads each component of a column variable with unit stride
        col_arrays = [np.ascontiguousarray(np.asarray(a, dtype=T).reshape(n, v.dim).T)
                      for a, v in zip(cols, prog.col_vars)]
        param_arrays = [np.ascontiguousarray(np.asarray(a).reshape(v.dim), dtype=T)
                        for a, v in zip(params, prog.param_vars)]
        state = []
        for _, shape, kind in red.fields():
            dtype = np.int64 if kind == "idx" else self.layout.acc
            state.append(_allocate((m, *shape), dtype))
        status = fn(_pointers(row_arrays), _pointers(col_arrays), _pointers(param_arrays),
                    m, n, j0, _pointers(state))
        if status != 0:  # pragma: no cover - the kernel has no failing path today
            raise RuntimeError(f"the CPU kernel returned status {status}")
        acc = prog.np_acc_dtype
        return tuple(a if a.dtype == acc or a.dtype == np.int64 else a.astype(acc)
                     for a in state)


def clear_memory_cache() -> None:
    """Forget the kernels loaded in this process (tests; the libraries stay mapped)."""
    with _LOAD_LOCK:
        _LOADED.clear()
        _KEY_LOCKS.clear()

