"""Configuration under the ``dredux`` key of ``dask.config``.

Every key can be set three ways, like any Dask library's:

* in code: ``with dask.config.set({"dredux.block-size": 4096}): ...``
* in a Dask YAML file (``~/.config/dask/dredux.yaml``)
* as an environment variable ``DREDUX_BLOCK_SIZE=4096`` (read at import;
  ``DASK_DREDUX__BLOCK_SIZE`` works too)

The keys, their defaults and meanings are :data:`KEYS` (the documentation's
configuration reference is generated from it).
"""

from __future__ import annotations

import contextlib
import math
import os

import dask.config
import dask.utils
import numpy as np

from .errors import ConfigError, shown

__all__ = ["KEYS", "DEFAULTS", "get", "cache_dir", "memory_per_task",
           "environment_variable"]

# key -> (default, meaning): the one list of dredux's settings
KEYS = {
    "cache-dir": (None, "folder of the compiled kernels (None: the user cache folder, "
                        "from platformdirs)"),
    "block-size": (None, "rows per block, or [rows, cols] per task (None: planned from "
                         "the work)"),
    "split-every": (8, "fan-in of the tree merge of partial states"),
    "task-seconds": (0.2, "target duration of one block task, in seconds"),
    "max-tasks-per-worker": (2000, "cap on the graph's block tasks per worker thread"),
    "memory-per-task": ("256 MiB", "bound on one task's inputs and partial state"),
    "backend": ("auto", "default backend of a call: auto (GPU, else CPU, else NumPy), "
                        "cpu, gpu or numpy"),
    "cxx": (None, "C++ compiler of the CPU backend (None: $CXX, else g++)"),
    "cxxflags": ("", "extra flags for that compiler"),
    "march": ("native", "-march of the CPU backend's kernels ('' to leave it out)"),
}
DEFAULTS = {key: default for key, (default, _) in KEYS.items()}

_ENV_PREFIX = "DREDUX_"


def _load() -> None:
    dask.config.update_defaults({"dredux": dict(DEFAULTS)})
    env = {"DASK_DREDUX__" + name[len(_ENV_PREFIX):]: value
           for name, value in os.environ.items() if name.startswith(_ENV_PREFIX)}
    if env:
        found = dask.config.collect_env(env)
        dask.config.update(dask.config.config, found, priority="new")


_load()


def setting_error(key: str, value, expected: str) -> ConfigError:
    """The error of a bad setting ``dredux.<key>``: its value, what was expected and
    the three places it may come from."""
    env = environment_variable(key)
    return ConfigError(f"the setting dredux.{key} is {shown(value)}; expected {expected}. Fix "
                       f"the environment variable {env} (or DASK_DREDUX__{env[7:]}), or the "
                       f"key {key} under dredux: in your Dask config")


def number(key: str, *, integer: bool, least: float, strict: bool = False):
    """The setting ``dredux.<key>``: an integer (``integer``) or a finite number,
    at least ``least`` (above it if ``strict``); ConfigError naming it otherwise."""
    value = get(key)
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if not isinstance(value, bool) and isinstance(value, kinds) and _finite(value) \
            and (value > least if strict else value >= least):
        return int(value) if integer else float(value)
    bound = f"{'above' if strict else 'at least'} {least:g}"
    raise setting_error(key, value, f"{'an integer' if integer else 'a number'} {bound} "
                        f"(default {DEFAULTS[key]!r})")


def _finite(value) -> bool:
    """Whether a number is finite as a float (an integer beyond the float range,
    10**400 say, is not: math.isfinite would raise OverflowError on it)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def environment_variable(key: str) -> str:
    """The environment variable that sets ``dredux.<key>`` (``DREDUX_BLOCK_SIZE``)."""
    return _ENV_PREFIX + key.upper().replace("-", "_")


def _settings() -> dict:
    """The ``dredux`` mapping of ``dask.config``; ConfigError when it was replaced by
    something else (``dask.config.set({"dredux": 5})``)."""
    ours = dask.config.config.get("dredux")
    if ours is None or isinstance(ours, dict):
        return ours or {}
    raise ConfigError(
        f"the Dask config key dredux is {type(ours).__name__} {shown(ours)}; expected a "
        "mapping of dredux's settings (e.g. {'block-size': 4096}). Set one key at a "
        "time with dask.config.set({'dredux.block-size': 4096}), or fix the dredux: "
        "section of your Dask config")


def _check_text(key: str, value):
    """``dredux.cxx`` (a command) and ``dredux.cxxflags`` (flags): text (for the
    flags, a list of strings too), or None/'' for the default."""
    if value is None or isinstance(value, str):
        return value
    if key == "cxxflags" and isinstance(value, (list, tuple)) and all(
            isinstance(v, str) for v in value):
        return value
    expected = {"cxx": "a compiler command as a string, e.g. 'g++' or 'ccache g++' (None "
                       "or '': $CXX, else g++)",
                "cxxflags": "flags as a string, e.g. '-O2 -DNDEBUG', or a list of strings "
                            "('': none)"}[key]
    raise setting_error(key, value, expected)


_CHECKED = {"cxx": _check_text, "cxxflags": _check_text}


def get(key: str, override=None):
    """``override`` if given, else ``dredux.<key>`` from ``dask.config``;
    ConfigError when the ``dredux`` settings are not a mapping, or when a
    compiler setting is not text."""
    if override is not None:
        return override
    _settings()  # dask.config.get would read past a 'dredux' that is no mapping
    value = dask.config.get(f"dredux.{key}", DEFAULTS.get(key))
    check = _CHECKED.get(key)
    return value if check is None else check(key, value)


def snapshot() -> tuple:
    """The ``dredux`` keys and Dask's ``num_workers`` as they are now, hashable:
    what a call's plan depends on (a cheap read, for the per-call cache)."""
    config = dask.config.config
    items = tuple(_settings().items())
    try:
        hash(items)
    except TypeError:  # a list (or another unhashable value) among them
        items = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in items)
    return items, config.get("num_workers")


def cache_dir() -> str:
    """The kernel cache folder: ``dredux.cache-dir`` or the user cache folder."""
    configured = get("cache-dir")
    if configured is not None and not isinstance(configured, (str, os.PathLike)):
        raise setting_error("cache-dir", configured, "a folder path (a string), or None for "
                            "the user cache folder")
    if configured and "\0" in os.fsdecode(os.fspath(configured)):
        raise setting_error("cache-dir", configured, "a folder path without NUL characters "
                            "(no file system accepts them)")
    if configured:
        return os.path.abspath(os.path.expanduser(os.fspath(configured)))
    import platformdirs

    return platformdirs.user_cache_dir("dredux", appauthor=False)


def memory_per_task() -> int:
    """``dredux.memory-per-task`` in bytes; ConfigError unless a positive size."""
    value = get("memory-per-task")
    size = None
    # a NumPy number is a number of bytes too (parse_bytes takes Python ones only)
    given = value.item() if isinstance(value, (np.integer, np.floating)) else value
    if isinstance(given, (int, float, str)) and not isinstance(given, bool):
        with contextlib.suppress(ValueError, OverflowError):
            size = dask.utils.parse_bytes(given)
    if size is None or size <= 0:
        raise setting_error("memory-per-task", value, "a positive size such as '256 MiB', "
                            "'2 GB' or 268435456 (bytes)")
    return int(size)


def __getattr__(name: str):
    """``dredux.config.gpu_available`` (pykeops.config's name, which KeOps's
    tutorials read): whether a CUDA GPU and CuPy are usable here."""
    if name == "gpu_available":
        from .backends import gpu_available

        return gpu_available()
    raise AttributeError(f"module 'dredux.config' has no attribute {name!r}")
