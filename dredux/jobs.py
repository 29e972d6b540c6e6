"""Job files for ``dredux run``: reading, checking, and loading the input arrays.

A job file is TOML. It names the routine (as the keyword arguments of
:class:`~dredux.Genred`), one input per alias, the output file, and run
options::

    formula = "Exp(-g * SqDist(x, y)) * b"
    aliases = ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "g = Pm(1)"]
    reduction = "Sum"
    axis = 1                       # 1: one output row per x_i, reduce over j

    [inputs]
    x = { path = "data/x.npy" }                              # a .npy file
    y = { path = "data/y.zarr" }                             # a .zarr array (dask)
    b = { path = "data/b.npy", random = { rows = 1000, seed = 3 } }
    g = { value = [0.5] }                                    # a parameter, inline

    [output]
    path = "data/out.npy"          # .npy, .npz (named arrays) or .zarr

    [options]                      # all optional
    backend = "auto"               # auto | cpu | gpu | numpy (or KeOps's "CPU", "GPU"...)
    scheduler = "threads"          # threads | sync | local | tcp://host:8786 | FILE.json
    block_size = [4096, 65536]     # rows per block, columns per task
    split_every = 8

    [check]                        # optional
    rows = 200                     # compare 200 output rows with a float64 NumPy run

``x = "data/x.npy"`` and ``output = "out.npy"`` are short for tables with a
``path`` only. Relative paths are relative to the job file's folder, so a job
runs the same from any working directory (batch systems start jobs elsewhere).

An input with a ``random`` recipe is created when its file is missing, with
deterministic values (``rows``, ``seed``, ``dtype`` = "float64", ``distribution``
= "uniform" on [0, 1) or "normal"); an existing file is used as it is, after
checking that its shape and dtype match the recipe. This is how the examples
ship without binary data.
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import math
import os
import secrets
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .backends import SPELLINGS
from .errors import DreduxError
from .ir import Cat

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["JobError", "NoSpaceError", "Job", "InputSpec", "Recipe", "load_job",
           "load_inputs", "output_names", "check_path", "GEN_ROWS", "OUTPUT_SUFFIXES"]

# Rows generated per random draw (and per zarr chunk of generated inputs): the
# values depend on (seed, chunk index) only, so they do not depend on memory.
GEN_ROWS = 1 << 20
OUTPUT_SUFFIXES = (".npy", ".npz", ".zarr")
_DTYPES = ("float16", "float32", "float64")
_DISTRIBUTIONS = ("uniform", "normal")
_OUTPUT_NAMES = {"val": "values", "idx": "indices"}

# key -> what a valid value looks like (printed in every message about the key)
TOP_KEYS = {
    "formula": 'a formula string, e.g. "Exp(-SqDist(x, y)) * b"',
    "aliases": 'a list of alias strings, e.g. ["x = Vi(3)", "y = Vj(3)"]',
    "reduction": 'a reduction name such as "Sum", "Min_ArgMin" or "LogSumExp"',
    "axis": "1 (reduce over j: one output row per Vi row) or 0 (reduce over i)",
    "opt_arg": "a positive integer (K of KMin, ArgKMin and KMin_ArgKMin)",
    "formula2": "a formula string (the weights of LogSumExp, SumSoftMaxWeight, ...)",
    "dtype": '"float16", "float32" or "float64": every input is converted to it when '
             'read (default: the inputs\' own dtype, which must then be one float dtype)',
    "dtype_acc": '"auto", "float16", "float32" or "float64"',
    "sum_scheme": '"auto", "direct_sum", "block_sum" or "kahan_scheme"',
    "inputs": 'a table with one entry per alias, e.g. x = { path = "x.npy" }',
    "output": 'a table naming the output file, e.g. [output] path = "out.npy"',
    "options": "a table of run options: backend, scheduler, block_size, split_every",
    "check": "a table: rows = N (output rows compared with a float64 NumPy run), rtol",
}
INPUT_KEYS = {
    "path": "the path of a .npy file or a .zarr array",
    "random": "a table { rows = N, seed = S, dtype = ..., distribution = ... }",
    "value": "a list of numbers (a parameter given inline), e.g. [0.5]",
}
RANDOM_KEYS = {
    "rows": "an integer >= 0: the number of rows (not for Pm parameters)",
    "seed": "a non-negative integer",
    "dtype": '"float16", "float32" or "float64"',
    "distribution": '"uniform" (on [0, 1)) or "normal" (standard normal)',
}
OUTPUT_KEYS = {"path": "the output path, ending in .npy, .npz or .zarr"}
OPTION_KEYS = {
    "backend": '"auto", "cpu", "gpu" or "numpy" (or a KeOps spelling: "CPU", "GPU", '
               '"GPU_1D"...)',
    "scheduler": '"threads", "sync", "local", an address such as "tcp://host:8786", '
                 "or the path of a scheduler file",
    "block_size": "a positive integer or a pair [rows, cols]",
    "split_every": "an integer >= 2",
}
CHECK_KEYS = {
    "rows": "a non-negative integer (0: no check)",
    "rtol": "a positive number (default: 1e-2, 1e-4, 1e-10 for float16, 32, 64)",
}


class JobError(DreduxError, ValueError):
    """A job file is missing a key, has an unknown key, or a bad value."""


class NoSpaceError(DreduxError, OSError):
    """Not enough free disk space to create an input file (``errno`` is ENOSPC)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.errno = errno.ENOSPC


@dataclass(frozen=True)
class Recipe:
    """How to create a missing input file with deterministic random values."""

    rows: int | None
    seed: int
    dtype: str
    distribution: str


@dataclass(frozen=True)
class InputSpec:
    """One input of a job: a file, an inline parameter value, or both missing."""

    name: str
    path: Path | None = None
    value: tuple[float, ...] | None = None
    random: Recipe | None = None


@dataclass(frozen=True)
class Job:
    """A checked job file. Paths are absolute."""

    source: Path
    formula: str
    aliases: tuple[str, ...]
    reduction: str
    axis: int
    inputs: dict[str, InputSpec]
    output: Path
    opt_arg: int | None = None
    formula2: str | None = None
    dtype_acc: str = "auto"
    sum_scheme: str = "auto"
    dtype: str | None = None
    backend: str | None = None
    scheduler: str | None = None
    block_size: int | tuple[int, int] | None = None
    split_every: int | None = None
    check_rows: int = 0
    check_rtol: float | None = None

    def routine(self):
        """The :class:`~dredux.Genred` routine of this job."""
        from .api import Genred

        return Genred(self.formula, list(self.aliases), reduction_op=self.reduction,
                      axis=self.axis, opt_arg=self.opt_arg, formula2=self.formula2,
                      dtype_acc=self.dtype_acc, sum_scheme=self.sum_scheme)

    def call_options(self) -> dict:
        """Keyword arguments of the routine's call (backend and planning options)."""
        options: dict[str, Any] = {"backend": self.backend}
        if self.block_size is not None:
            options["block_size"] = self.block_size
        if self.split_every is not None:
            options["split_every"] = self.split_every
        return options


# ---------------------------------------------------------------------------
# reading values
# ---------------------------------------------------------------------------

class _Reader:
    """Type checks that name the job file, the dotted key and the expected value."""

    def __init__(self, source: Path):
        self.source = source

    def error(self, message: str) -> JobError:
        return JobError(f"job file '{self.source}': {message}")

    def bad(self, key: str, value, expected: str) -> JobError:
        return self.error(f"key '{key}' is {value!r}; expected {expected}")

    def table(self, data, key: str, known: dict[str, str], required=(),
              what: str = "a table") -> dict:
        if not isinstance(data, dict):
            raise self.bad(key, data, what)
        prefix = f"{key}." if key else ""
        for name in data:
            if name not in known:
                close = difflib.get_close_matches(name, list(known), n=1)
                hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
                raise self.error(f"unknown key '{prefix}{name}'{hint}; expected keys: "
                                 f"{', '.join(prefix + k for k in known)}")
        for name in required:
            if name not in data:
                raise self.error(f"missing key '{prefix}{name}'; expected {known[name]}")
        return data

    def typed(self, data: dict, key: str, prefix: str, known: dict[str, str],
              check: Callable[[Any], bool], default=None):
        if key not in data:
            return default
        value = data[key]
        if not check(value):
            raise self.bad(f"{prefix}{key}", value, known[key])
        return value


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_str(v) -> bool:
    return isinstance(v, str) and v.strip() != ""


def _in(*choices) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and v in choices


def _resolve(source: Path, value: str, what: str | None = None) -> Path:
    """``value`` as an absolute path, relative ones relative to the job file's
    folder; with ``what`` (how to name the value in a message), a path that no
    file system takes (a NUL character, a name too long) is a JobError."""
    if what is not None:
        check_path(value, what)
    path = Path(os.path.expanduser(value))
    path = path if path.is_absolute() else (source.parent / path).resolve()
    if what is not None:
        check_path(path, what)
    return path


def _name_max(path: Path) -> tuple[int, int]:
    """(bytes per name, bytes per path) allowed on the file system of ``path``'s
    nearest existing folder (255 and 4096 where it cannot tell)."""
    folder = path
    while True:
        try:
            if folder.is_dir():
                break
        except (OSError, ValueError):
            pass
        if folder.parent == folder:
            break
        folder = folder.parent
    limits = []
    for name, default in (("PC_NAME_MAX", 255), ("PC_PATH_MAX", 4096)):
        try:
            limits.append(int(os.pathconf(folder, name)) or default)
        except (OSError, ValueError, AttributeError):
            limits.append(default)
    return limits[0], limits[1]


def check_path(path, what: str) -> None:
    """JobError naming ``what`` when ``path`` cannot be a file's path: it holds a
    NUL character, or a name (or the whole path) longer than the file system
    allows (which would otherwise surface as ValueError 'embedded null byte' or
    OSError ENAMETOOLONG in the middle of the run)."""
    text = os.fspath(path)
    if not text.strip():
        raise JobError(f"{what} is {text!r}, an empty path; expected a file path")
    if "\0" in text:
        raise JobError(f"{what} is {text!r}, which holds a NUL character ('\\x00'); "
                       "expected a path without one. Fix the path")
    absolute = Path(os.path.abspath(os.path.expanduser(text)))
    name_max, path_max = _name_max(absolute)
    for name in absolute.parts:
        size = len(os.fsencode(name))
        if size > name_max:
            raise JobError(f"{what} is {text!r}: its name {name[:40] + '...'!r} is {size} "
                           f"bytes long; expected at most {name_max} bytes per file or "
                           "folder name (the file system's limit). Choose a shorter name")
    size = len(os.fsencode(str(absolute)))
    if size >= path_max:
        raise JobError(f"{what} is {text[:60] + '...'!r}: the path is {size} bytes long; "
                       f"expected under {path_max} bytes (the file system's limit). Choose "
                       "a shorter path")


# ---------------------------------------------------------------------------
# the job file
# ---------------------------------------------------------------------------

def load_job(path, *, output=None, backend: str | None = None,
             scheduler: str | None = None, check_rows: int | None = None) -> Job:
    """Read and check the job file at ``path``.

    Keyword arguments override the file (they come from the command line;
    ``output`` is relative to the current directory). The routine is built once
    here so that a bad formula or alias is reported before any data is read.

    Raises
    ------
    JobError
        The file is missing, is not TOML, or a key is missing, unknown or bad;
        the message names the key and the expected value.
    """
    check_path(path, "the job file's path")
    source = Path(path).expanduser().resolve()
    read = _Reader(source)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise JobError(f"job file '{path}' does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise JobError(f"job file '{path}' cannot be read: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise read.error(f"not valid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise read.error("arrays or inline tables are nested too deeply for the TOML "
                         "reader; a job file needs at most a few levels (see "
                         "examples/*.toml)") from None

    read.table(data, "", TOP_KEYS, required=("formula", "aliases", "axis", "inputs",
                                             "output"))
    formula = read.typed(data, "formula", "", TOP_KEYS, _is_str)
    aliases = read.typed(data, "aliases", "", TOP_KEYS,
                         lambda v: isinstance(v, list) and v and all(map(_is_str, v)))
    axis = read.typed(data, "axis", "", TOP_KEYS, lambda v: _is_int(v) and v in (0, 1))
    fields = dict(
        source=source, formula=formula, aliases=tuple(aliases), axis=axis,
        reduction=read.typed(data, "reduction", "", TOP_KEYS, _is_str, "Sum"),
        opt_arg=read.typed(data, "opt_arg", "", TOP_KEYS, lambda v: _is_int(v) and v > 0),
        formula2=read.typed(data, "formula2", "", TOP_KEYS, _is_str),
        dtype_acc=read.typed(data, "dtype_acc", "", TOP_KEYS,
                             _in("auto", *_DTYPES), "auto"),
        dtype=read.typed(data, "dtype", "", TOP_KEYS, _in(*_DTYPES)),
        sum_scheme=read.typed(data, "sum_scheme", "", TOP_KEYS,
                              _in("auto", "direct_sum", "block_sum", "kahan_scheme"), "auto"),
    )

    out = data["output"]
    out = {"path": out} if isinstance(out, str) else out  # output = "out.npy"
    out = read.table(out, "output", OUTPUT_KEYS, required=("path",), what=TOP_KEYS["output"])
    out_path = read.typed(out, "path", "output.", OUTPUT_KEYS, _is_str)
    if output is not None:
        check_path(output, "--output")
        fields["output"] = Path(output).expanduser().resolve()
        check_path(fields["output"], "--output")
    else:
        fields["output"] = _resolve(source, out_path, f"job file '{source}': key 'output.path'")

    opts = read.table(data.get("options", {}), "options", OPTION_KEYS,
                      what=TOP_KEYS["options"])
    fields["backend"] = read.typed(opts, "backend", "options.", OPTION_KEYS,
                                   _in(*SPELLINGS))
    fields["scheduler"] = read.typed(opts, "scheduler", "options.", OPTION_KEYS, _is_str)
    block = read.typed(opts, "block_size", "options.", OPTION_KEYS,
                       lambda v: (_is_int(v) and v > 0) or (
                           isinstance(v, list) and len(v) == 2
                           and all(_is_int(b) and b > 0 for b in v)))
    fields["block_size"] = tuple(block) if isinstance(block, list) else block
    fields["split_every"] = read.typed(opts, "split_every", "options.", OPTION_KEYS,
                                       lambda v: _is_int(v) and v >= 2)

    check = read.table(data.get("check", {}), "check", CHECK_KEYS, what=TOP_KEYS["check"])
    fields["check_rows"] = read.typed(check, "rows", "check.", CHECK_KEYS,
                                      lambda v: _is_int(v) and v >= 0, 0)
    rtol = read.typed(check, "rtol", "check.", CHECK_KEYS, lambda v: _is_number(v) and v > 0)
    fields["check_rtol"] = float(rtol) if rtol is not None else None

    if backend is not None:
        fields["backend"] = backend
    if scheduler is not None:
        fields["scheduler"] = scheduler
    if check_rows is not None:
        if not (_is_int(check_rows) and check_rows >= 0):
            raise JobError(f"--check is {check_rows!r}; expected {CHECK_KEYS['rows']}")
        fields["check_rows"] = check_rows

    job = Job(inputs={}, **fields)
    try:
        routine = job.routine()
    except DreduxError as exc:
        raise read.error("the routine of keys 'formula', 'aliases', 'reduction', "
                         f"'opt_arg', 'formula2' cannot be built:\n{exc}") from None
    inputs = _read_inputs(read, data["inputs"], routine.signature.args)
    output_names(routine, fields["output"], read, from_option=output is not None)
    _check_output_is_no_input(read, fields["output"], inputs, output is not None)
    return Job(inputs=inputs, **fields)


def _check_output_is_no_input(read: _Reader, output: Path, inputs, from_option: bool) -> None:
    """Refuse an output that is, holds or lies inside an input (it would be replaced)."""
    out = output.resolve()
    what = f"--output '{output}'" if from_option else f"key 'output.path' ('{output}')"
    for name, inp in inputs.items():
        if inp.path is None:
            continue
        src = inp.path.resolve()
        same = src == out
        if not same and src.exists() and out.exists():
            with contextlib.suppress(OSError):
                same = os.path.samefile(src, out)  # hard links
        if same:
            how = "is the same file as"
        elif out.is_relative_to(src):
            how = "lies inside"
        elif src.is_relative_to(out):
            how = "holds"
        else:
            continue
        raise read.error(f"{what} {how} input '{name}' (key 'inputs.{name}.path', "
                         f"'{inp.path}'): writing the output would overwrite the input. "
                         "Choose another output path")


def _read_inputs(read: _Reader, table, args) -> dict[str, InputSpec]:
    known = {spec.name: spec for spec in args}
    table = read.table(table, "inputs", {name: INPUT_KEYS["path"] for name in known},
                       what=TOP_KEYS["inputs"])
    missing = [name for name in known if name not in table]
    if missing:
        first = known[missing[0]]
        example = (f"{first.name} = {{ value = [{', '.join(['1.0'] * first.dim)}] }}"
                   if first.cat == Cat.P else f'{first.name} = {{ path = "{first.name}.npy" }}')
        raise read.error(
            f"missing input(s) {', '.join(repr(m) for m in missing)}; every alias needs "
            f"an entry under [inputs], e.g. {example}")
    inputs = {}
    for name, spec in known.items():
        key = f"inputs.{name}"
        entry = table[name]
        entry = {"path": entry} if isinstance(entry, str) else entry  # x = "x.npy"
        entry = read.table(entry, key, INPUT_KEYS,
                           what='a path or a table such as { path = "x.npy" }')
        if ("path" in entry) == ("value" in entry):
            raise read.error(f"key '{key}' needs exactly one of 'path' (a .npy file or "
                             "a .zarr array) or 'value' (numbers, for a Pm parameter)")
        if "value" in entry:
            if spec.cat != Cat.P:
                raise read.error(f"key '{key}.value' is only for Pm parameters; "
                                 f"'{name}' is {spec.describe()}: give a 'path' instead")
            value = entry["value"]
            value = [value] if _is_number(value) else value
            if not (isinstance(value, list) and all(map(_is_number, value))
                    and len(value) == spec.dim):
                raise read.bad(f"{key}.value", entry["value"],
                               f"a list of {spec.dim} number(s) ({spec.describe()})")
            if "random" in entry:
                raise read.error(f"key '{key}' has both 'value' and 'random'; keep one")
            inputs[name] = InputSpec(name, value=tuple(float(v) for v in value))
            continue
        path = _resolve(read.source, read.typed(entry, "path", f"{key}.", INPUT_KEYS, _is_str),
                        f"job file '{read.source}': key '{key}.path'")
        if path.suffix not in (".npy", ".zarr"):
            raise read.bad(f"{key}.path", str(path), INPUT_KEYS["path"])
        recipe = None
        if "random" in entry:
            rnd = read.table(entry["random"], f"{key}.random", RANDOM_KEYS,
                             required=("seed",), what=INPUT_KEYS["random"])
            pre = f"{key}.random."
            rows = read.typed(rnd, "rows", pre, RANDOM_KEYS, lambda v: _is_int(v) and v >= 0)
            if spec.cat == Cat.P and rows is not None:
                raise read.error(f"key '{pre}rows' is not allowed: '{name}' is "
                                 f"{spec.describe()}, a vector of {spec.dim} value(s)")
            if spec.cat != Cat.P and rows is None:
                raise read.error(f"missing key '{pre}rows'; expected {RANDOM_KEYS['rows']}")
            recipe = Recipe(
                rows=rows,
                seed=read.typed(rnd, "seed", pre, RANDOM_KEYS, lambda v: _is_int(v) and v >= 0),
                dtype=read.typed(rnd, "dtype", pre, RANDOM_KEYS, _in(*_DTYPES), "float64"),
                distribution=read.typed(rnd, "distribution", pre, RANDOM_KEYS,
                                        _in(*_DISTRIBUTIONS), "uniform"))
        inputs[name] = InputSpec(name, path=path, random=recipe)
    return inputs


def output_names(routine, path: Path, read: _Reader | None = None,
                 from_option: bool = False) -> list[str]:
    """Names of the routine's outputs in ``path`` ("values", "indices"), checked
    against the file type: a ``.npy`` file holds a single array; two outputs
    (``Min_ArgMin``...) go to a ``.npz`` file or a ``.zarr`` group. The messages
    name ``--output`` when the path came from it (``from_option``)."""
    kinds = [kind for _, kind in routine.reduction.outputs()]
    names = [_OUTPUT_NAMES[k] for k in kinds]
    where = f"job file '{read.source}': " if read is not None and not from_option else ""
    what = f"--output '{path}'" if from_option else f"key 'output.path' is '{path}'"
    if path.suffix not in OUTPUT_SUFFIXES:
        raise JobError(f"{where}{what}; expected a path ending in .npy, .npz or .zarr")
    if path.suffix == ".npy" and len(names) > 1:
        raise JobError(
            f"{where}{what}, but reduction "
            f"{routine.reduction.name!r} returns {len(names)} arrays ({', '.join(names)}); "
            f"expected a path ending in .npz (one named array each) or .zarr (a group)")
    return names


# ---------------------------------------------------------------------------
# input arrays
# ---------------------------------------------------------------------------

def load_inputs(job: Job, routine, log: Callable[[str], None] = print) -> list:
    """The routine's arguments, in position order: NumPy arrays (``.npy``, memory
    mapped), dask arrays (``.zarr``) and inline parameters; missing inputs that
    have a random recipe are created first."""
    args = routine.signature.args
    arrays: dict[str, Any] = {}
    planned: dict[str, tuple] = {}  # (shape, dtype) of every array input, created or not
    for spec in args:  # check every file and recipe before creating any file
        inp = job.inputs[spec.name]
        if inp.value is not None:
            continue
        key = f"inputs.{spec.name}"
        if inp.random is None or inp.path.exists():
            a = arrays[spec.name] = _open(job, key, inp.path)
            _check_shape(job, key, inp, a, spec)
            planned[spec.name] = (tuple(int(s) for s in a.shape), np.dtype(a.dtype))
        else:
            want = (spec.dim,) if spec.cat == Cat.P else (inp.random.rows, spec.dim)
            planned[spec.name] = (want, np.dtype(inp.random.dtype))
    dtype = np.dtype(job.dtype) if job.dtype else _check_dtypes(job, args, planned)
    _check_rows(job, args, planned)
    for spec in args:
        inp = job.inputs[spec.name]
        if spec.name not in planned or spec.name in arrays:
            continue
        key = f"inputs.{spec.name}"
        want = planned[spec.name][0]
        if not inp.path.exists():  # (another input of the same path may have made it)
            make_random(inp.path, want, inp.random)
            log(f"created {inp.path} {want} {inp.random.dtype} "
                f"({inp.random.distribution}, seed {inp.random.seed})")
        arrays[spec.name] = _open(job, key, inp.path)
        _check_shape(job, key, inp, arrays[spec.name], spec)
    out = []
    for spec in args:
        inp = job.inputs[spec.name]
        if inp.value is not None:
            out.append(np.asarray(inp.value, dtype=dtype))
            continue
        a = arrays[spec.name]
        # the dtype key converts (a zarr input lazily, chunk by chunk)
        out.append(a if np.dtype(a.dtype) == dtype else a.astype(dtype))
    return out


def _check_dtypes(job: Job, args, planned: dict) -> np.dtype:
    """The inputs' common float dtype (native byte order); JobError otherwise."""
    for spec in args:
        if spec.name in planned and planned[spec.name][1].name not in _DTYPES:
            path = job.inputs[spec.name].path
            raise JobError(
                f"job file '{job.source}': key 'inputs.{spec.name}.path': '{path}' has "
                f"dtype {planned[spec.name][1]}; expected float16, float32 or float64. "
                'Add dtype = "float64" (or "float32") at the top of the job file to '
                "convert the inputs when they are read")
    names = {planned[s.name][1].name for s in args if s.name in planned}
    if len(names) > 1:
        listed = ", ".join(f"'{s.name}' is {planned[s.name][1].name}" for s in args
                           if s.name in planned)
        raise JobError(f"job file '{job.source}': the inputs must all have one dtype: "
                       f"{listed}. Add dtype = \"{sorted(names)[-1]}\" (or another "
                       "float dtype) at the top of the job file to convert them when "
                       "they are read, or change the random recipes' dtype")
    return np.dtype(names.pop() if names else np.float64)


def _check_rows(job: Job, args, planned: dict) -> None:
    """JobError unless the Vi inputs, and the Vj inputs, have one row count each."""
    for cat, word in ((Cat.I, "Vi"), (Cat.J, "Vj")):
        sized = [(s.name, planned[s.name][0][0]) for s in args
                 if s.cat == cat and s.name in planned]
        if len({rows for _, rows in sized}) > 1:
            listed = ", ".join(f"'{name}' has {rows}" for name, rows in sized)
            raise JobError(f"job file '{job.source}': the {word} inputs must have the same "
                           f"number of rows: {listed}. Fix the files or the random "
                           "recipes' rows")


def _open(job: Job, key: str, path: Path):
    where = f"job file '{job.source}': key '{key}.path'"
    if not path.exists():
        raise JobError(f"{where}: '{path}' does not exist; expected an existing .npy file "
                       "or .zarr array (or add a random = {...} recipe to create it)")
    try:
        if path.suffix == ".zarr":
            import dask.array as da

            return da.from_zarr(str(path))
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:
        reason = str(exc)
        if "allow_pickle" in reason:
            # NumPy's text suggests unpickling the file, which a job must never do
            reason = ("it has no .npy header (not a NumPy array file), or it holds "
                      "pickled Python objects, which dredux never loads; write it with "
                      "np.save from a numeric array")
        raise JobError(f"{where}: '{path}' cannot be read as "
                       f"{'a zarr array' if path.suffix == '.zarr' else 'a .npy file'}: "
                       f"{reason}") from None


def _check_shape(job: Job, key: str, inp: InputSpec, array, spec) -> None:
    shape = tuple(int(s) for s in array.shape)
    dtype = np.dtype(array.dtype)
    if spec.cat == Cat.P:
        want, words = (spec.dim,), f"({spec.dim},)"
    else:
        rows = "M" if spec.cat == Cat.I else "N"
        want, words = None, f"({rows}, {spec.dim})"
    recipe = inp.random
    if recipe is not None:
        want = want or (recipe.rows, spec.dim)
        if shape != want or dtype.newbyteorder("=") != np.dtype(recipe.dtype):
            raise JobError(
                f"job file '{job.source}': key '{key}': '{inp.path}' has shape {shape} and "
                f"dtype {dtype}, but its random recipe asks for {want} {recipe.dtype}; delete "
                "the file to create it again, or fix the recipe")
    ok = shape == want if want else (len(shape) == 2 and shape[1] == spec.dim)
    if not ok:
        raise JobError(f"job file '{job.source}': key '{key}': '{inp.path}' has shape "
                       f"{shape}; expected {words} for {spec.describe()}")


def temp_path(path: Path) -> Path:
    """A fresh hidden name next to ``path``, for writing it atomically."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")


def remove_path(path: Path) -> None:
    """Remove a file or a folder (a .zarr store); nothing if it is not there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def make_random(path: Path, shape: tuple[int, ...], recipe: Recipe) -> None:
    """Write deterministic random values to ``path`` (.npy or .zarr), atomically.

    Rows are drawn in chunks of :data:`GEN_ROWS` from
    ``numpy.random.default_rng([seed, chunk])``, so the values depend only on
    the recipe, and the file appears complete or not at all. The free space is
    checked first; a full disk raises :class:`NoSpaceError`, leaving no file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    dtype = np.dtype(recipe.dtype)
    is_zarr = path.suffix == ".zarr"
    header = b"" if is_zarr else _npy_header(shape, dtype)
    needed = len(header) + math.prod(shape) * dtype.itemsize  # (zarr: about as much)
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:  # unknown free space: the writes will tell
        free = None
    if free is not None and needed > free:
        raise _no_space(path, needed, free)
    tmp = temp_path(path)
    try:
        if is_zarr:
            import zarr

            target = zarr.open_array(str(tmp), mode="w", shape=shape, dtype=dtype,
                                     chunks=(min(GEN_ROWS, max(1, shape[0])),) + shape[1:])
            for start, stop, values in _random_rows(shape, recipe, dtype):
                target[start:stop] = values
        else:
            # plain writes into reserved blocks, not a memory map: a full disk is
            # then an OSError, never a SIGBUS
            with open(tmp, "wb") as f:
                _reserve(f, needed)
                f.write(header)
                for _, _, values in _random_rows(shape, recipe, dtype):
                    _write_block(f, values)
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        remove_path(tmp)
        if exc.errno == errno.ENOSPC and not isinstance(exc, NoSpaceError):
            raise _no_space(path, needed) from None
        raise
    except BaseException:
        remove_path(tmp)
        raise


def _random_rows(shape: tuple[int, ...], recipe: Recipe, dtype: np.dtype):
    """(start, stop, values) of each chunk of GEN_ROWS rows of the recipe."""
    rows = shape[0] if shape else 0
    for chunk, start in enumerate(range(0, rows, GEN_ROWS)):
        stop = min(rows, start + GEN_ROWS)
        gen = np.random.default_rng([recipe.seed, chunk])
        size = (stop - start,) + shape[1:]
        values = (gen.random(size) if recipe.distribution == "uniform"
                  else gen.standard_normal(size))
        yield start, stop, values.astype(dtype)


def _npy_header(shape: tuple[int, ...], dtype: np.dtype) -> bytes:
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {
        "descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
        "shape": tuple(shape)})
    return buf.getvalue()


def _reserve(f, size: int) -> None:
    """Allocate ``size`` bytes of ``f`` now (ENOSPC here, not in the middle)."""
    fallocate = getattr(os, "posix_fallocate", None)
    if fallocate is None or size <= 0:
        return
    try:
        fallocate(f.fileno(), 0, size)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise
        # EOPNOTSUPP, EINVAL...: this file system cannot reserve; the writes will tell


def _write_block(f, values: np.ndarray) -> None:
    f.write(np.ascontiguousarray(values).data)


def _no_space(path: Path, needed: int, free: int | None = None) -> NoSpaceError:
    from dask.utils import format_bytes

    if free is None:
        try:
            free = shutil.disk_usage(path.parent).free
        except OSError:
            free = None
    there = (f"{format_bytes(free)} ({free} bytes) are free there" if free is not None
             else "the free space there is unknown")
    return NoSpaceError(
        f"no space left on the device to create '{path}': it needs "
        f"{format_bytes(needed)} ({needed} bytes) and {there}. Free some space, or move "
        "the input (its 'path' in the job file) to a file system with room")
