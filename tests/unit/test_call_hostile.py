"""Hostile arguments of a Genred call: ``out=``, byte order, ``scheduler=`` and
the ``dredux.memory-per-task`` setting.

Each bad value must be a dredux error naming it, raised before any planning,
compiling or running (a routine whose ``_prepare`` fails proves it).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import dask
import dask.array as da
import numpy as np
import pytest

import dredux.errors as errors
from dredux import Genred, LazyTensor
from dredux.errors import DreduxError, DtypeError, ShapeError

ALIASES = ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)"]
FORMULA = "Exp(-SqDist(x, y)) * b"


def inputs(m=5, n=4):
    gen = np.random.default_rng(0)
    return gen.random((m, 3)), gen.random((n, 3)), gen.random((n, 1))


def reference(x, y, b):
    d2 = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    return np.exp(-d2) @ b


def no_work_routine(monkeypatch, reduction="Sum"):
    routine = Genred(FORMULA, ALIASES, reduction_op=reduction, axis=1)

    def boom(*args, **kwargs):
        raise AssertionError("the call was planned before its arguments were checked")

    monkeypatch.setattr(routine, "_prepare", boom)
    return routine


# ------------------------------------------------------------------------ out=

@pytest.mark.parametrize("out,error,words", [
    ([0.0] * 5, DtypeError, ["out is a list", "numpy.ndarray", "(5, 1)", "float64"]),
    ((0.0,) * 5, DtypeError, ["out is a tuple", "np.empty((5, 1), dtype=np.float64)"]),
    ("out.npy", DtypeError, ["out is a str"]),
    (np.empty((5, 1), dtype=np.float32), DtypeError,
     ["out has dtype float32", "expected float64"]),
    (np.empty((5, 1), dtype=np.int64), DtypeError, ["out has dtype int64"]),
    (np.empty((5,)), ShapeError, ["out has shape (5,)", "expected (5, 1)"]),
])
def test_bad_out_is_refused_before_any_work(monkeypatch, out, error, words):
    routine = no_work_routine(monkeypatch)
    with pytest.raises(error) as err:
        routine(*inputs(), backend="numpy", out=out)
    for word in words:
        assert word in str(err.value), str(err.value)


def test_read_only_out_is_refused_before_any_work(monkeypatch):
    out = np.zeros((5, 1))
    out.setflags(write=False)
    routine = no_work_routine(monkeypatch)
    with pytest.raises(ShapeError, match=r"out is read-only.*writeable"):
        routine(*inputs(), backend="numpy", out=out)
    assert not out.any()
    with pytest.raises(ShapeError, match="read-only"):  # a read-only view too
        routine(*inputs(), backend="numpy", out=np.broadcast_to(np.zeros(1), (5, 1)))


def test_out_of_a_dask_or_tuple_call_is_refused_before_any_work(monkeypatch):
    x, y, b = inputs()
    routine = no_work_routine(monkeypatch)
    with pytest.raises(ShapeError, match=r"out= is supported for NumPy/CuPy inputs only"):
        routine(da.from_array(x, chunks=2), y, b, backend="numpy", out=np.empty((5, 1)))
    routine = no_work_routine(monkeypatch, reduction="Max_ArgMax")
    with pytest.raises(ShapeError, match=r"'Max_ArgMax' returns 2 arrays"):
        routine(x, y, b, backend="numpy", out=np.empty((5, 1)))


def test_good_out_after_a_refused_one_is_filled(monkeypatch):
    routine = Genred(FORMULA, ALIASES, reduction_op="Sum", axis=1)
    x, y, b = inputs()
    with pytest.raises(DtypeError, match="out is a list"):
        routine(x, y, b, backend="numpy", out=[0.0] * 5)
    for _ in range(2):  # the second call reuses the prepared call
        out = np.full((5, 1), np.nan)
        assert routine(x, y, b, backend="numpy", out=out) is out
        np.testing.assert_allclose(out, reference(x, y, b), rtol=1e-12)
    big = np.full((5, 1), np.nan, dtype=">f8")  # a big-endian out of the right dtype
    assert routine(x, y, b, backend="numpy", out=big) is big
    np.testing.assert_allclose(big, reference(x, y, b), rtol=1e-12)


# ------------------------------------------------------------------ byte order

def test_big_endian_inputs_give_the_native_result():
    x, y, b = inputs(7, 6)
    routine = Genred(FORMULA, ALIASES, reduction_op="Sum", axis=1)
    want = routine(x, y, b, backend="numpy")
    for args in [(x.astype(">f8"), y, b), (x, y.astype(">f8"), b.astype(">f8")),
                 (x.astype(">f8"), y.astype(">f8"), b.astype(">f8"))]:
        for _ in range(2):  # also on the call's second (cached) run
            got = routine(*args, backend="numpy")
            assert got.dtype == np.float64 and got.dtype.isnative
            np.testing.assert_array_equal(got, want)
    got = routine(x.astype(">f4"), y.astype(np.float32), b.astype(np.float32),
                  backend="numpy")
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5)
    lazy = routine(da.from_array(x.astype(">f8"), chunks=3), y, b.astype(">f8"),
                   backend="numpy")
    np.testing.assert_array_equal(lazy.compute(), want)


def test_big_endian_message_is_not_self_contradicting():
    x, y, b = inputs()
    routine = Genred(FORMULA, ALIASES, reduction_op="Sum", axis=1)
    with pytest.raises(DtypeError) as err:
        routine(x.astype(">f8"), y.astype(np.float32), b, backend="numpy")
    assert "'x' is float64, 'y' is float32, 'b' is float64" in str(err.value)
    np.testing.assert_allclose(routine(x.astype(">f8"), y, b, backend="numpy"),
                               reference(x, y, b), rtol=1e-12)


# ----------------------------------------------------------------- scheduler=

@pytest.mark.parametrize("scheduler", ["bogus", "thread", 42, object()])
def test_bad_scheduler_is_a_config_error_before_any_work(scheduler):
    x, y, b = inputs()
    routine = Genred(FORMULA, ALIASES, reduction_op="Sum", axis=1)
    with pytest.raises(errors.ConfigError) as err:
        routine(x, y, b, backend="numpy", scheduler=scheduler)
    message = str(err.value)
    assert f"scheduler= option is {scheduler!r}" in message
    assert "'threads'" in message and "bug" not in message
    assert isinstance(err.value, (DreduxError, ValueError))
    with pytest.raises(errors.ConfigError, match="no distributed.Client is active"):
        routine(x, y, b, backend="numpy", scheduler="distributed")
    for good in ("threads", "sync", "Threads", "single-threaded", dask.get):
        np.testing.assert_allclose(routine(x, y, b, backend="numpy", scheduler=good,
                                           block_size=2),
                                   reference(x, y, b), rtol=1e-12)


# ------------------------------------------------------------------ device_id

@pytest.mark.parametrize("value", ["0", 1.0, True, -2, [0]])
def test_bad_device_id_is_refused_on_every_backend(value):
    """A device_id that is no GPU number is refused, also where no GPU is used
    (it was ignored on the CPU and raised a raw TypeError on the GPU path)."""
    x, y, b = inputs()
    routine = Genred(FORMULA, ALIASES, reduction_op="Sum", axis=1)
    words = rf"device_id must be -1 \(the current GPU\) or the number of a GPU " \
            rf"\(0, 1, ...\), got {re.escape(repr(value))}"
    for call in (lambda: routine(x, y, b, backend="numpy", device_id=value),
                 lambda: routine(x[None], y[None], b[None], backend="numpy", device_id=value),
                 lambda: (LazyTensor(x[:, None, :]) * LazyTensor(y[None, :, :])).sum(
                     -1).exp().sum(axis=1, backend="cpu", device_id=value)):
        with pytest.raises(ShapeError, match=words):
            call()
    for good in (-1, None, np.int64(0)):  # None and NumPy integers are device ids too
        np.testing.assert_allclose(routine(x, y, b, backend="numpy", device_id=good),
                                   reference(x, y, b), rtol=1e-12)


# ---------------------------------------------------------------- split_every

@pytest.mark.parametrize("value", [[2], 2.5, True, 1, "4"])
def test_bad_split_every_is_refused(value):
    x, y, b = inputs()
    routine = Genred(FORMULA, ALIASES, reduction_op="Sum", axis=1)
    with pytest.raises(ShapeError, match=r"split_every \(the fan-in of the merge tree\) "
                       rf"must be an integer >= 2, got {re.escape(repr(value))}"):
        routine(x, y, b, backend="numpy", split_every=value)


def setting_error(key: str, value) -> tuple:
    """The ConfigError message of a call under the setting ``dredux.<key>: value``
    (and the call's routine, which must work once the setting is gone)."""
    routine = Genred(FORMULA, ALIASES, reduction_op="Sum", axis=1)
    with dask.config.set({f"dredux.{key}": value}):
        with pytest.raises(errors.ConfigError) as err:
            routine(*inputs(), backend="numpy")
    return str(err.value), routine


@pytest.mark.parametrize("key,value,expected", [
    *[("split-every", v, "an integer at least 2") for v in ([2], 2.5, True, 1, "4")],
    *[("task-seconds", v, "a number above 0") for v in ("x", -1, 0, float("nan"), [1], True)],
    *[("max-tasks-per-worker", v, "an integer at least 1") for v in ("x", 0, 2.5, None)],
    *[("block-size", v, "rows per block, or [rows, cols]") for v in ("big", -4, [0, 5], 2.5)],
])
def test_bad_plan_setting_is_a_config_error(key, value, expected):
    """Each setting the planner reads is checked: a ConfigError naming the key, the
    value, what was expected and the environment variable (a raw ValueError or
    TypeError from int() or float() before, or a negative number taken)."""
    message, routine = setting_error(key, value)
    variable = "DREDUX_" + key.upper().replace("-", "_")
    for word in (f"dredux.{key}", repr(value), expected, variable, f"DASK_DREDUX__{variable[7:]}"):
        assert word in message, message
    np.testing.assert_allclose(routine(*inputs(), backend="numpy"), reference(*inputs()),
                               rtol=1e-12)


@pytest.mark.parametrize("value", [5, ["cache"], 1.5, True])
def test_a_cache_dir_that_is_no_path_is_a_config_error(value, tmp_path, monkeypatch):
    """It was turned into a folder name with str() ('5', "['cache']") and created
    under the current directory."""
    from dredux.compile import cpp
    from dredux.config import cache_dir

    monkeypatch.chdir(tmp_path)
    # forget the kernels this process has loaded (restored afterwards), so that the
    # call looks for its kernel in the cache folder even when an earlier test built it
    monkeypatch.setattr(cpp, "_LOADED", {})
    routine = Genred(FORMULA, ALIASES, reduction_op="Sum", axis=1)
    with dask.config.set({"dredux.cache-dir": value}):
        for call in (cache_dir, lambda: routine(*inputs(), backend="cpu")):
            with pytest.raises(errors.ConfigError) as err:
                call()
            for word in ("dredux.cache-dir", repr(value), "a folder path", "DREDUX_CACHE_DIR"):
                assert word in str(err.value), str(err.value)
    assert list(tmp_path.iterdir()) == []  # nothing created


# ------------------------------------------------------------ memory-per-task

@pytest.mark.parametrize("value", ["lots", "-1 MiB", "0", True, [256], "1e400"])
def test_bad_memory_per_task_is_a_config_error(value):
    x, y, b = inputs()
    message, routine = setting_error("memory-per-task", value)
    for word in ("dredux.memory-per-task", repr(value), "DREDUX_MEMORY_PER_TASK",
                 "'256 MiB'"):
        assert word in message, message
    with dask.config.set({"dredux.memory-per-task": "1 kiB"}):
        np.testing.assert_allclose(routine(x, y, b, backend="numpy"), reference(x, y, b),
                                   rtol=1e-12)


def test_bad_memory_per_task_from_the_environment():
    code = ("import numpy as np, dredux\n"
            "r = dredux.Genred('x * y', ['x = Vi(1)', 'y = Vj(1)'], axis=1)\n"
            "try:\n"
            "    r(np.ones((3, 1)), np.ones((2, 1)), backend='numpy')\n"
            "except dredux.ConfigError as exc:\n"
            "    print('ConfigError:', exc)\n")
    env = dict(os.environ, DREDUX_MEMORY_PER_TASK="lots")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "ConfigError: the setting dredux.memory-per-task is 'lots'" in done.stdout
    assert "DREDUX_MEMORY_PER_TASK" in done.stdout
