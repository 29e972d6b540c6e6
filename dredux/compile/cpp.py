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

A failed compile is told apart by cause: "No space left on device" in the
compiler's log is a :class:`~dredux.errors.CacheError` (the disk, not the
code); otherwise a trivial program is compiled with the same compiler and
flags (once per setup) and loaded: when that fails too, the setup is at fault,
a :class:`~dredux.errors.ConfigError` naming the setting (``DREDUX_CXX``,
``DREDUX_MARCH`` or ``DREDUX_CXXFLAGS``); when the kernel builds without the
user's ``DREDUX_CXXFLAGS``, those are at fault; only then is the failure a
:class:`~dredux.errors.KernelCompileError`, a bug in dredux. A build counts
only when its output loads as a shared library exporting the kernel (flags
such as ``-E`` or ``-c`` exit 0 with another kind of file), so nothing else
enters the cache.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import hashlib
import os
import platform
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

from .. import config
from .._version import __version__
from ..backends import Kernel
from ..errors import (
    ArgumentError,
    BackendUnavailable,
    CacheError,
    ConfigError,
    KernelCompileError,
    ShapeError,
)
from ..ir import Op, walk_all
from ..ops.elementwise import MAX_WRITTEN_POW
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
# GCC only, for kernels that call the table-driven pow (kernels/cpu/math.hpp):
# where its operand comes from a select of a constant (Powf(ReLU(1 - r), p)),
# GCC 12's partial redundancy elimination folds the table loads on the
# constant's path and leaves masked loads on the other, which its vectoriser
# cannot gather, so the whole j-loop stays scalar: 3-4.5x slower. Measured
# without it: the same speed on the other Powf kernels (+-5%). Only these
# kernels take the flag, the others keep PRE.
POW_FLAGS = ("-fno-tree-pre",)
# a -march value: 'native', 'x86-64-v3', 'znver4', 'armv8.2-a+crypto'...
_MARCH = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
# the compiler (or its linker) ran out of disk space: the disk's fault, not the code's
_DISK_FULL = re.compile(r"No space left on device|Disk quota exceeded")
_PROBE_SOURCE = 'extern "C" int dredux_probe(void) { return 0; }\n'


def cxx_compiler() -> str:
    """The C++ compiler command: dredux.cxx, else $CXX, else g++."""
    return config.get("cxx") or os.environ.get("CXX") or "g++"


def _cxx_setting() -> str:
    """Where :func:`cxx_compiler` came from, for messages."""
    if config.get("cxx"):
        return "DREDUX_CXX (dask.config 'dredux.cxx')"
    if os.environ.get("CXX"):
        return "$CXX"
    return "the default compiler (set DREDUX_CXX or $CXX to choose one)"


@functools.lru_cache(maxsize=16)
def _resolve(command: str) -> tuple[str, ...] | None:
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise ConfigError(
            f"the C++ compiler command {command!r} from {_cxx_setting()} cannot be split "
            f"into words: {exc}. Write it as a shell command line, e.g. 'g++' or "
            "'ccache g++', with balanced quotes.") from None
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


def _march() -> str:
    """``dredux.march``, checked to be a -march value ("" or None: no -march)."""
    march = config.get("march")
    if march is None or march == "":
        return ""
    if not isinstance(march, str) or not _MARCH.fullmatch(march):
        raise ConfigError(
            f"DREDUX_MARCH (dask.config 'dredux.march') is {march!r}, which is not a "
            "-march value: expected letters, digits and - _ . + (e.g. 'native', "
            "'x86-64-v3', 'znver4'), or '' to compile without -march.")
    return march


def _user_flags() -> list[str]:
    """``dredux.cxxflags`` split like a shell command line."""
    text = config.get("cxxflags") or ""
    if isinstance(text, (list, tuple)):
        return [str(f) for f in text]
    try:
        return shlex.split(str(text))
    except ValueError as exc:
        raise ConfigError(
            f"DREDUX_CXXFLAGS (dask.config 'dredux.cxxflags') is {str(text)!r}, which "
            f"cannot be split into flags: {exc}. Write the flags as on a shell command "
            "line, with balanced quotes (e.g. '-O2 -DNAME=\"a b\"').") from None


def _flag_groups(command: list[str] | None = None, program: Program | None = None
                 ) -> tuple[list[str], list[str], list[str]]:
    """(dredux's fixed flags, the -march flag, dredux.cxxflags) of ``command``, for
    the kernel of ``program`` if given (:data:`POW_FLAGS`)."""
    fixed = list(BASE_FLAGS)
    try:
        if _is_gcc(tuple(command or compiler_command())):
            fixed += GCC_FLAGS
            if program is not None and _calls_pow(program):
                fixed += POW_FLAGS
    except BackendUnavailable:
        pass  # no compiler: the flags are only shown, nothing is compiled
    march = _march()
    return fixed, [f"-march={march}"] if march else [], _user_flags()


def _calls_pow(program: Program) -> bool:
    """Whether the kernel of ``program`` calls _dr_pow: Powf, or Pow(f, n) with
    |n| above the powers it writes out (dredux/ops/elementwise.py, powi)."""
    return any(n.op is Op.POWF or (n.op is Op.POW and abs(n.params[0]) > MAX_WRITTEN_POW)
               for n in walk_all(program.formulas))


def compile_flags(command: list[str] | None = None) -> list[str]:
    """Flags of the compile with ``command`` (default: :func:`compiler_command`):
    the fixed ones (and GCC's own where the compiler is GCC), ``-march`` and
    ``dredux.cxxflags``.

    Raises
    ------
    ConfigError
        When ``dredux.march`` is not a -march value or ``dredux.cxxflags``
        does not split into flags (an unbalanced quote).
    """
    fixed, march, user = _flag_groups(command)
    return fixed + march + user


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
    march = config.get("march")  # checked by _flag_groups, which runs first
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


def _tail(log: str, limit: int = 3000) -> str:
    log = log.strip() or "(no output)"
    return log if len(log) <= limit else "...\n" + log[-limit:]


@functools.lru_cache(maxsize=32)
def _probe(command: tuple[str, ...], flags: tuple[str, ...]) -> tuple[bool, str] | None:
    """(whether ``command`` with ``flags`` builds a trivial shared library, its log);
    None when the probe itself cannot run (no temporary folder)."""
    try:
        with tempfile.TemporaryDirectory(prefix="dredux-probe-") as tmp:
            src, out = Path(tmp) / "probe.cpp", Path(tmp) / "probe.so"
            src.write_text(_PROBE_SOURCE)
            try:
                done = subprocess.run([*command, *flags, "-o", str(out), str(src)],
                                      capture_output=True, text=True, timeout=120)
            except OSError as exc:
                return False, str(exc)
            except subprocess.TimeoutExpired:
                return None
            log = done.stdout + done.stderr
            if _DISK_FULL.search(log):
                return None  # the temporary folder's disk, not the setup
            if done.returncode != 0 or not out.exists():
                return False, log
            # flags such as -E or -c exit 0 with a file that is no shared library
            problem = _load_problem(out, "dredux_probe")
            return problem is None, log if problem is None else f"{log}\n{problem}".strip()
    except OSError:
        return None


def _load_problem(path: Path, symbol: str) -> str | None:
    """None when ``path`` loads as a shared library exporting ``symbol``, else why not."""
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as exc:
        return f"the compiler's output does not load as a shared library: {exc}"
    if not hasattr(lib, symbol):
        return f"the compiler's output loads but does not export {symbol!r}"
    return None


def _setup_error(command: list[str], groups: tuple[list[str], ...]) -> ConfigError | None:
    """The ConfigError naming the setting at fault when the compiler cannot build
    even a trivial program with these flags; None when it can (or cannot tell)."""
    fixed, march, user = groups
    full = _probe(tuple(command), tuple(fixed + march + user))
    if full is None or full[0]:
        return None
    line = " ".join(shlex.quote(w) for w in [*command, *fixed, *march, *user])
    base = _probe(tuple(command), tuple(fixed))
    if base is not None and not base[0]:
        return ConfigError(
            f"the C++ compiler {shlex.join(command)!r} from {_cxx_setting()} cannot build "
            f"even an empty shared library with dredux's flags ({shlex.join(fixed)}).\n"
            f"compiler command: {line}\ncompiler said:\n{_tail(base[1])}\n"
            "Set DREDUX_CXX (or dask.config 'dredux.cxx', or $CXX) to a working C++17 "
            "compiler such as g++ or clang++.")
    if march:
        with_march = _probe(tuple(command), tuple(fixed + march))
        if with_march is not None and not with_march[0]:
            return ConfigError(
                f"the C++ compiler rejects {march[0]} from DREDUX_MARCH (dask.config "
                f"'dredux.march'): it cannot build even an empty program with it.\n"
                f"compiler command: {line}\ncompiler said:\n{_tail(with_march[1])}\n"
                "Set DREDUX_MARCH to a target this compiler knows (e.g. 'native', "
                "'x86-64-v3'), or to '' to compile without -march.")
    return ConfigError(
        f"the C++ compiler rejects the extra flags {shlex.join(user)!r} from "
        "DREDUX_CXXFLAGS (dask.config 'dredux.cxxflags'): it cannot build even an empty "
        f"program with them.\ncompiler command: {line}\ncompiler said:\n{_tail(full[1])}\n"
        "Fix or remove DREDUX_CXXFLAGS.")


def _user_flags_error(src: Path, command: list[str], groups: tuple[list[str], ...],
                      out: Path, log: str) -> ConfigError | None:
    """The ConfigError blaming DREDUX_CXXFLAGS when the kernel builds (and loads)
    without them: flags an empty program accepts, but a kernel does not
    (``-Werror -Wconversion``, ``-Dfloat=double``...)."""
    fixed, march, user = groups
    if not user:
        return None
    bare = out.with_name(out.stem + "-without-cxxflags" + out.suffix)
    try:
        done = subprocess.run([*command, *fixed, *march, "-o", str(bare),
                               str(src)],
                              capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0 or not bare.exists() or _load_problem(bare, "dredux_block"):
        return None
    return ConfigError(
        f"the extra C++ flags {shlex.join(user)!r} from DREDUX_CXXFLAGS (dask.config "
        "'dredux.cxxflags') break a generated kernel, which builds without them.\n"
        f"compiler said:\n{_tail(log)}\nFix or remove DREDUX_CXXFLAGS.")


def _compile(source: str, command: list[str], groups: tuple[list[str], ...],
             out: Path) -> None:
    """Compile ``source`` into the shared library ``out`` (in a temporary folder of
    the cache). CacheError when the disk is full, ConfigError when the compiler setup
    cannot build anything, KernelCompileError when dredux's code alone fails."""
    flags = [f for group in groups for f in group]
    src = out.with_suffix(".cpp")
    src.write_text(source)
    cmd = [*command, *flags, "-o", str(out), str(src)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except OSError as exc:  # the program exists (it was found on PATH) but cannot run
        raise ConfigError(
            f"cannot run the C++ compiler {shlex.join(command)!r} from {_cxx_setting()}: "
            f"{exc}. Set DREDUX_CXX (or dask.config 'dredux.cxx', or $CXX) to a working "
            "C++17 compiler such as g++ or clang++.") from exc
    except subprocess.TimeoutExpired as exc:
        raise KernelCompileError(f"running the C++ compiler failed: {exc}", source, str(exc),
                                 tuple(cmd)) from exc
    log = done.stdout + done.stderr
    if done.returncode == 0 and out.exists():
        # checked before the file enters the cache: a file that does not load there
        # would fail every later call
        problem = _load_problem(out, "dredux_block")
        if problem is None:
            return
        log = f"{log}\n{problem}".strip()
    full = _DISK_FULL.search(log)
    if full:
        code = errno.EDQUOT if "quota" in full.group(0) else errno.ENOSPC
        lines = [ln for ln in log.splitlines() if _DISK_FULL.search(ln)]
        raise cache.storage_error(
            out.parent.parent, OSError(code, os.strerror(code)), "compile a kernel",
            f"the C++ compiler said: {lines[0].strip()}\n(the compiler also writes "
            f"temporary files in {tempfile.gettempdir()!r}, set by TMPDIR)")
    problem = _setup_error(command, groups) or _user_flags_error(src, command, groups, out,
                                                                  log)
    if problem is not None:
        raise problem
    raise KernelCompileError(
        f"the C++ compiler rejected a generated kernel (exit status {done.returncode})",
        source, log, tuple(cmd))


_LOADED: dict[str, object] = {}  # cache key -> ctypes function, one load per process
_LOAD_LOCK = threading.Lock()
_KEY_LOCKS: dict[str, threading.Lock] = {}


def load_kernel(source: str, program: Program, layout_tag: str):
    """The ``dredux_block`` function of ``source``, compiled (or cached) and loaded.

    Loads each distinct kernel once per process; concurrent callers of the same
    kernel wait for the first one's build instead of compiling it again.
    """
    command = compiler_command()
    groups = _flag_groups(command, program)
    flags = [f for group in groups for f in group]
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
            "cpu", key, lambda out: _compile(source, command, groups, out),
            {"command": " ".join(shlex.quote(w) for w in [*command, *flags]),
             "layout": layout_tag})
        try:
            lib = ctypes.CDLL(str(path))
        except OSError as exc:  # verified but unloadable: written by another setup
            raise CacheError(f"the cached kernel {str(path)!r} does not load: {exc}. Remove "
                             "it (`dredux cache clear` removes every cached kernel)") from exc
        lib.dredux_layout.restype = ctypes.c_char_p
        found = lib.dredux_layout().decode()
        if found != layout_tag:  # pragma: no cover - would mean a key collision
            raise KernelCompileError(f"the cached kernel {path} computes {found!r}, "
                                     f"expected {layout_tag!r}", source)
        fn = lib.dredux_block
        fn.restype = ctypes.c_int
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                       ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64,
                       ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        fn._dredux_lib = lib  # keep the library loaded as long as the function lives
        _LOADED[key] = fn
        return fn


def _allocate(shape: tuple, dtype) -> np.ndarray:
    """A new state array; the kernel writes every element (tests poison it here)."""
    return np.empty(shape, dtype=dtype)


def _address(a: np.ndarray) -> int:
    """The address of a contiguous array's data. ``a.ctypes.data`` builds a
    NumPy helper object (1.6 us; a small call passes seven arrays): a writable
    buffer's address is read through ctypes in 0.4 us instead."""
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(a))
    except (TypeError, ValueError, BufferError):  # read-only or empty
        return a.ctypes.data


def _pointers(*groups) -> tuple:
    """One array of the data addresses of every array of ``groups`` (the row,
    column, parameter and state arrays of a call), and the address of each
    group's first entry: the kernel's four pointer tables, built in one
    ctypes array (a table per group cost 0.5 us more each). The array must
    live until the call returns."""
    arrays = [a for group in groups for a in group]
    table = (ctypes.c_void_p * max(1, len(arrays)))(*map(_address, arrays))
    base = ctypes.addressof(table)
    starts, k = [], 0
    for group in groups:  # an empty group points anywhere: the kernel reads none
        starts.append(base + k * ctypes.sizeof(ctypes.c_void_p))
        k += len(group)
    return table, starts


_INT64_PAIR = ctypes.c_int64 * 2
_ONE_SLICE = _INT64_PAIR(0, 1)  # a dense block: one cluster with one range (read only)
_SPANS: dict[int, ctypes.Array] = {}  # (0, n) pairs, read only: one per length seen


def _span(n: int) -> ctypes.Array:
    """The read-only int64 pair (0, n) (the rows of a dense block's one cluster,
    or its one column range), kept per n: a new pair costs 0.3 us."""
    pair = _SPANS.get(n)
    if pair is None:
        if len(_SPANS) >= 4096:
            _SPANS.clear()
        pair = _SPANS[n] = _INT64_PAIR(0, n)
    return pair


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
                                          or isinstance(rows_per_pass, bool)):
            raise ArgumentError(f"rows_per_pass must be an integer in [1, 16], got "
                                f"{rows_per_pass!r}")
        if rows_per_pass is not None and not 1 <= rows_per_pass <= 16:
            raise ShapeError(f"rows_per_pass must be an integer in [1, 16], got "
                             f"{rows_per_pass!r}")
        self._source: str | None = None
        self._fn = None
        self._lock = threading.Lock()
        from ..codegen.cpp import layout

        self.layout = layout(program, rows_per_pass)
        self.source  # noqa: B018 - rendering checks the kernel's limits before any work

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

    def __call__(self, rows: list, cols: list, params: list, m: int, n: int, j0: int = 0,
                 ranges=None):
        """Partial state of rows [0, m) against columns [0, n) (global offset ``j0``);
        with ``ranges`` (a :class:`dredux.ranges.Sparsity` of the block), of its
        kept pairs only."""
        prog = self.program
        red = prog.reduction
        fn = self._function()
        T = self.layout.compute
        m, n, j0 = int(m), int(n), int(j0)
        if ranges is None:
            clusters, slices, spans = _span(m), _ONE_SLICE, _span(n)
            count = 1
        else:
            if (ranges.m, ranges.n) != (m, n):
                raise ValueError(f"ranges of a {ranges.m} x {ranges.n} block given for a "
                                 f"{m} x {n} block")
            tables = [np.ascontiguousarray(a, dtype=np.int64)  # alive until the call ends
                      for a in (ranges.rows, ranges.slices, ranges.cols)]
            clusters, slices, spans = (a.ctypes.data for a in tables)
            count = len(ranges.rows)
        row_arrays = [np.ascontiguousarray(np.asarray(a).reshape(m, v.dim), dtype=T)
                      for a, v in zip(rows, prog.row_vars)]
        # the j-loop reads each component of a column variable with unit stride;
        # the variables only the contraction loops read are packed from their rows
        given = self.layout.as_given
        col_arrays = []
        for k, (a, v) in enumerate(zip(cols, prog.col_vars)):
            rows_of = np.asarray(a, dtype=T).reshape(n, v.dim)
            col_arrays.append(np.ascontiguousarray(rows_of if k in given else rows_of.T))
        param_arrays = [np.ascontiguousarray(np.asarray(a).reshape(v.dim), dtype=T)
                        for a, v in zip(params, prog.param_vars)]
        state = []
        for _, shape, kind in red.fields():
            dtype = np.int64 if kind == "idx" else self.layout.acc
            state.append(_allocate((m, *shape), dtype))
        table, (rows_p, cols_p, params_p, state_p) = _pointers(row_arrays, col_arrays,
                                                               param_arrays, state)
        status = fn(rows_p, cols_p, params_p, m, n, j0, state_p, count, clusters, slices,
                    spans)
        del table  # alive until here: the kernel read its addresses
        if status == 2:
            raise MemoryError(f"the CPU kernel could not allocate its row states and "
                              f"formula buffers for a block of {m} x {n}")
        if status != 0:  # pragma: no cover - the kernel has no other failing path
            raise RuntimeError(f"the CPU kernel returned status {status}")
        acc = prog.np_acc_dtype
        return tuple(a if a.dtype == acc or a.dtype == np.int64 else a.astype(acc)
                     for a in state)


def clear_memory_cache() -> None:
    """Forget the kernels loaded in this process (tests; the libraries stay mapped)."""
    with _LOAD_LOCK:
        _LOADED.clear()
        _KEY_LOCKS.clear()

