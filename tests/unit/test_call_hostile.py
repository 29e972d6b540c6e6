"""Hostile arguments of a Genred call: ``out=``, byte order, ``scheduler=``, the
settings it reads, results beyond memory, and the routine's own arguments and
inspection methods.

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


# ------------------------------------------------------- results beyond memory

def no_run(monkeypatch):
    """Make any call that reaches the execution stage fail: a size check must come
    before the work (on the old code a hopeless call allocated, or ran for hours)."""
    from dredux import execute

    def boom(*args, **kwargs):
        raise AssertionError("the call ran before its result's size was checked")

    monkeypatch.setattr(execute, "run", boom)


def rows(count, dim):
    """``count`` rows of ``dim`` ones, without the memory (a broadcast view)."""
    return np.broadcast_to(np.ones(dim), (count, dim))


@pytest.mark.parametrize("formula,aliases,reduction,args,words", [
    ("SqDist(x, y)", ["x = Vi(3)", "y = Vj(3)"], {},
     lambda: (rows(10**12, 3), np.ones((4, 3))),
     ["(1000000000000, 1) float64", "7.28 TiB", "8000000000000 bytes"]),
    # the linear epilogue's result (the inner Sum's is small)
    ("SumT(Sum(x), 65536) * y", ["x = Vi(3)", "y = Vj(1)"], {},
     lambda: (rows(10**6, 3), np.ones((5, 1))),
     ["(1000000, 65536) float64", "488.28 GiB"]),
    # a K that makes each row's result 128 KiB (the old code ran the blocks for hours)
    ("SqDist(x, y)", ["x = Vi(1)", "y = Vj(1)"], {"reduction_op": "ArgKMin", "opt_arg": 16384},
     lambda: (rows(10**7, 1), np.ones((100, 1))),
     ["ArgKMin", "(10000000, 16384) int64", "opt_arg = K = 16384"]),
])
@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_a_result_beyond_memory_is_refused_before_any_work(monkeypatch, formula, aliases,
                                                           reduction, args, words, backend):
    routine = Genred(formula, aliases, axis=1, **reduction)
    no_run(monkeypatch)
    with pytest.raises(ShapeError) as err:
        routine(*args(), backend=backend)
    message = str(err.value)
    for word in (*words, "more than the", "of memory available", "fewer rows at a time",
                 "dask arrays"):
        assert word in message, message


def test_the_bound_is_the_memory_available(monkeypatch):
    """A result that would fit an empty machine but not the memory free now is
    refused too; within it, the call runs."""
    from dredux import execute

    routine = Genred("SqDist(x, y)", ["x = Vi(3)", "y = Vj(3)"], axis=1)
    monkeypatch.setattr(execute, "memory_available", lambda gpu=False: 100 << 20)
    x, y = rows(20_000_000, 3), np.zeros((2, 3))  # a result of 160 MB
    with pytest.raises(ShapeError, match=r"\(20000000, 1\) float64.* 152.59 MiB "
                       r"\(160000000 bytes\), more than the 100.00 MiB"):
        routine(x, y, backend="numpy")
    np.testing.assert_allclose(routine(x[:1000], y, backend="numpy"), 6.0)


def test_a_broadcast_input_is_sliced_not_copied():
    """In-memory inputs enter the graph as views of their rows: a broadcast input of
    10^10 rows (240 GB if copied, as dask.array.from_array does) gives a lazy result
    whose blocks compute."""
    routine = Genred("SqDist(x, y)", ["x = Vi(3)", "y = Vj(3)"], axis=1)
    y = da.from_array(np.zeros((4, 3)), chunks=2)
    out = routine(rows(10**10, 3), y, backend="numpy")
    assert out.shape == (10**10, 1)
    np.testing.assert_allclose(out[:3].compute(), 12.0)


@pytest.mark.parametrize("shared", [True, False])
def test_a_batch_beyond_memory_is_refused_before_any_copy(monkeypatch, shared):
    """The batch's flat copies (a broadcast (B..., M, D) input folded into B M rows)
    are checked before they are made: a MemoryError of 8 TiB before."""
    routine = Genred(FORMULA, ALIASES, axis=1)
    no_run(monkeypatch)
    x = np.broadcast_to(np.ones(3), (2**20, 2**20, 1, 3))
    y, b = ((np.ones((1, 4, 3)), np.ones((1, 4, 1))) if shared else
            (np.broadcast_to(np.ones(3), (2**20, 2**20, 4, 3)), np.ones((4, 1))))
    with pytest.raises(ShapeError) as err:
        routine(x, y, b, backend="numpy")
    message = str(err.value)
    for word in ("batch of 1099511627776 items", "'x' of shape (1048576, 1048576, 1, 3) as "
                 "(1099511627776, 3)", "more than the", "fewer batch items at a time"):
        assert word in message, message
    assert ("'y' of shape" in message) is not shared


# ------------------------------------------------------------- batched out=

@pytest.mark.parametrize("out,error,words", [
    ([0.0] * 100, DtypeError, ["out is a list", "numpy.ndarray of shape (2, 5, 1)",
                               "np.empty((2, 5, 1), dtype=np.float64)"]),
    (5, DtypeError, ["out is a int", "(2, 5, 1)"]),
    # (out of the right kind: the same errors, now with the batched shape to make)
    (np.empty((10, 1)), ShapeError, ["out has shape (10, 1); expected (2, 5, 1)",
                                     "the batch axes",
                                     "np.empty((2, 5, 1), dtype=np.float64)"]),
    (np.empty((2, 5, 1), dtype=np.float32), DtypeError,
     ["out has dtype float32", "np.empty((2, 5, 1), dtype=np.float64)"]),
])
def test_bad_out_of_a_batched_call_is_refused_like_a_flat_one(monkeypatch, out, error, words):
    """The batched call raised AttributeError ('list' object has no attribute 'shape')."""
    x, y, b = inputs()
    routine = Genred(FORMULA, ALIASES, axis=1)
    no_run(monkeypatch)
    with pytest.raises(error) as err:
        routine(np.stack([x, x]), np.stack([y, y]), np.stack([b, b]), backend="numpy",
                out=out)
    for word in words:
        assert word in str(err.value), str(err.value)
    monkeypatch.undo()  # a good out is filled
    out = np.full((2, 5, 1), np.nan)
    assert routine(np.stack([x, x]), np.stack([y, y]), np.stack([b, b]), backend="numpy",
                   out=out) is out
    np.testing.assert_allclose(out, np.stack([reference(x, y, b)] * 2), rtol=1e-12)


# ----------------------------------------------------------- other settings

@pytest.mark.parametrize("value", [5, ["g++"], 2.5])
def test_a_compiler_that_is_no_command_is_a_config_error(value):
    """It was AttributeError ('int' object has no attribute 'read', from
    shlex.split) or TypeError (unhashable type: 'list')."""
    from dredux.compile.cpp import cxx_compiler

    routine = Genred(FORMULA, ALIASES, axis=1)
    with dask.config.set({"dredux.cxx": value}):
        for call in (cxx_compiler, lambda: routine(*inputs(), backend="cpu")):
            with pytest.raises(errors.ConfigError) as err:
                call()
            for word in ("dredux.cxx", repr(value), "a compiler command as a string",
                         "DREDUX_CXX"):
                assert word in str(err.value), str(err.value)


@pytest.mark.parametrize("value", [5, {"cxxflags": "-O2"}.keys(), 5.0])
def test_flags_that_are_no_text_are_a_config_error(value):
    from dredux.compile.cpp import compile_flags

    with dask.config.set({"dredux.cxxflags": value}):
        with pytest.raises(errors.ConfigError, match=r"dredux.cxxflags is .*; expected "
                           "flags as a string"):
            compile_flags(["g++"])
    with dask.config.set({"dredux.cxxflags": ["-DA=1", "-DB=2"]}):  # a list is fine
        assert compile_flags(["g++"])[-2:] == ["-DA=1", "-DB=2"]


@pytest.mark.parametrize("value", [5, "fast", ["block-size"]])
def test_a_dredux_setting_that_is_no_mapping_is_a_config_error(value):
    """dask.config.set({'dredux': 5}) made every call fail with AttributeError
    ('int' object has no attribute 'items')."""
    routine = Genred(FORMULA, ALIASES, axis=1)
    with dask.config.set({"dredux": value}):
        with pytest.raises(errors.ConfigError) as err:
            routine(*inputs(), backend="numpy")
    for word in ("the Dask config key dredux is", repr(value), "a mapping of dredux's "
                 "settings", "dask.config.set({'dredux.block-size': 4096})"):
        assert word in str(err.value), str(err.value)
    np.testing.assert_allclose(routine(*inputs(), backend="numpy"), reference(*inputs()),
                               rtol=1e-12)


@pytest.mark.parametrize("value", ["many", "3", -2, 2.5, [4], True])
def test_bad_num_workers_is_a_config_error(value):
    """It was a raw ValueError from int() ('invalid literal'), or a TypeError of Dask's
    thread pool (a string), or a number taken."""
    message, routine = setting_error_of("num_workers", value)
    for word in ("the Dask setting num_workers is", repr(value), "a positive integer",
                 "DASK_NUM_WORKERS"):
        assert word in message, message
    for good in (1, np.int64(2), None):
        with dask.config.set({"num_workers": good}):
            np.testing.assert_allclose(routine(*inputs(), backend="numpy", block_size=2),
                                       reference(*inputs()), rtol=1e-12)


def setting_error_of(key: str, value) -> tuple:
    """``setting_error`` for a Dask key outside dredux's (``num_workers``)."""
    routine = Genred(FORMULA, ALIASES, reduction_op="Sum", axis=1)
    with dask.config.set({key: value}):
        with pytest.raises(errors.ConfigError) as err:
            routine(*inputs(), backend="numpy", block_size=2)
    return str(err.value), routine


@pytest.mark.parametrize("value", [np.int64(10**6), np.int32(4096), np.uint64(1 << 20)])
def test_numpy_numbers_are_a_memory_per_task(value):
    """np.int64(10**6) was refused (parse_bytes takes Python numbers only)."""
    from dredux.config import memory_per_task

    x, y, b = inputs()
    routine = Genred(FORMULA, ALIASES, reduction_op="Sum", axis=1)
    with dask.config.set({"dredux.memory-per-task": value}):
        assert memory_per_task() == int(value)
        np.testing.assert_allclose(routine(x, y, b, backend="numpy"), reference(x, y, b),
                                   rtol=1e-12)


# -------------------------------------------------------- Genred arguments

@pytest.mark.parametrize("axis", [np.array([0, 1]), "1", 1.0, None, [1], True])
def test_an_axis_that_is_no_integer_is_an_argument_error(axis):
    """np.array([0, 1]) raised 'the truth value of an array is ambiguous'."""
    with pytest.raises(errors.ArgumentError) as err:
        Genred(FORMULA, ALIASES, axis=axis)
    assert "axis must be 0 (reduce over i) or 1 (reduce over j), got" in str(err.value)
    assert isinstance(err.value, TypeError)
    assert Genred(FORMULA, ALIASES, axis=np.int64(1)).axis == 1


@pytest.mark.parametrize("opt_arg", [[1], "3", 2.5, True, np.array([2])])
@pytest.mark.parametrize("reduction", ["Sum", "ArgKMin"])
def test_an_opt_arg_that_is_no_integer_is_an_argument_error(opt_arg, reduction):
    """Sum took opt_arg=[1] silently; opt_arg is K (an integer) or None, as in KeOps."""
    with pytest.raises(errors.ArgumentError) as err:
        Genred(FORMULA, ALIASES, reduction_op=reduction, axis=1, opt_arg=opt_arg)
    for word in ("opt_arg must be an integer", "or None", f"reduction_op={reduction!r}"):
        assert word in str(err.value), str(err.value)
    x, y, b = inputs()
    for opt_arg in (None, 3, np.int64(3)):  # unused by Sum
        routine = Genred(FORMULA, ALIASES, axis=1, opt_arg=opt_arg)
        np.testing.assert_allclose(routine(x, y, b, backend="numpy"), reference(x, y, b),
                                   rtol=1e-12)
    knn = Genred("SqDist(x, y)", ["x = Vi(3)", "y = Vj(3)"], reduction_op="ArgKMin", axis=1,
                 opt_arg=np.int64(2))
    assert knn(x, y, backend="numpy").shape == (5, 2)


def test_an_unknown_call_option_is_an_argument_error():
    routine = Genred(FORMULA, ALIASES, axis=1)
    with pytest.raises(errors.ArgumentError, match=r"unexpected option\(s\) colour, foo; "
                       "expected backend, device_id, ranges, out"):
        routine(*inputs(), backend="numpy", foo=1, colour="red")


# ------------------------------------------------------- inspection methods

@pytest.mark.parametrize("call,error,words", [
    (lambda g: g.source("gpu", dtype="int8"), DtypeError, ["dtype='int8' is int8"]),
    (lambda g: g.source("cpu", dtype="int8"), DtypeError, ["dtype='int8' is int8"]),
    (lambda g: g.source("cpu", dtype="U5"), DtypeError, ["dtype='U5' is <U5"]),
    (lambda g: g.program("foo"), DtypeError, ["dtype='foo' is not a dtype"]),
    (lambda g: g.program("int32"), DtypeError, ["dtype='int32' is int32"]),
    (lambda g: g.kernel("numpy", "complex128"), DtypeError, ["is complex128"]),
    (lambda g: g.kernel("numpy", "float64", foo=1), errors.ArgumentError,
     ["the 'numpy' kernel got unknown option(s) foo; it takes budget"]),
    (lambda g: g.kernel("cpu", "float64", budget=1), errors.ArgumentError,
     ["the 'cpu' kernel got unknown option(s) budget; it takes rows_per_pass"]),
    (lambda g: g.kernel("numpy", "float64", budget=[1]), errors.ArgumentError,
     ["plain values", "[1]"]),
    (lambda g: g.source("numpy"), errors.ConfigError, ["backend 'numpy'", "no generated "
                                                       "source", "source('cpu')"]),
    (lambda g: g.kernel("cpu", "float64", rows_per_pass="4"), errors.ArgumentError,
     ["rows_per_pass must be an integer in [1, 16], got '4'"]),
    (lambda g: g.kernel("cpu", "float64", rows_per_pass=17), ShapeError,
     ["rows_per_pass must be an integer in [1, 16], got 17"]),
])
def test_inspection_methods_check_their_arguments(call, error, words):
    """source, program and kernel took any dtype (float code for int8, a KeyError on
    the GPU) and raised raw TypeErrors on unknown dtypes and options."""
    routine = Genred(FORMULA, ALIASES, axis=1)
    with pytest.raises(error) as err:
        call(routine)
    for word in (*words, *(["'float16', 'float32' or 'float64'"]
                           if error is DtypeError else [])):
        assert word in str(err.value), str(err.value)
    # every float dtype and backend spelling is taken
    assert routine.source("CPU", np.float64) == routine.source("cpu", "float64")
    assert routine.program(np.dtype(">f4")) is routine.program("float32")
    assert routine.kernel("numpy", "f8").program is routine.program("float64")
    assert "dredux_reduce" in routine.source("gpu", "float16")
