"""Hostile job files, options, settings and disks for ``dredux run``.

A bad job file, option, setting or scheduler exits 2 before any input is
created or the routine runs; a full disk exits 1 with "no space left", leaving
no temporary file and no output; an input is never overwritten by the output,
nor a folder of the user's by a zarr output.
"""

from __future__ import annotations

import errno
import json
import os
import types
from pathlib import Path

import dask
import dask.array
import numpy as np
import pytest

import dredux.cli as cli
import dredux.jobs as jobs
from dredux.cli import SchedulerSpec, main, parse_scheduler, write_output
from dredux.errors import DreduxError
from dredux.jobs import JobError, Recipe, load_job, make_random

JOB = '''
formula = "Exp(-SqDist(x, y)) * b"
aliases = ["x = Vi(2)", "y = Vj(2)", "b = Vj(1)"]
reduction = "Sum"
axis = 1

[inputs]
x = {x}
y = {y}
b = {b}

[output]
path = "{output}"

[options]
backend = "numpy"
{options}
'''
RANDOM = '{{ path = "{name}{ext}", random = {{ rows = {rows}, seed = {seed} }} }}'


def job_file(tmp_path: Path, output="out.npy", options="", ext=".npy", **inputs) -> Path:
    entries = {name: RANDOM.format(name=name, ext=ext, rows=rows, seed=k)
               for k, (name, rows) in enumerate((("x", 7), ("y", 5), ("b", 5)))}
    entries.update(inputs)
    path = tmp_path / "job.toml"
    path.write_text(JOB.format(output=output, options=options, **entries))
    return path


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def exit_2(capsys, argv, *words) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    for word in words:
        assert word in captured.err, captured.err
    assert "Traceback" not in captured.err and "bug" not in captured.err
    return captured.err


# ----------------------------------------------------------------- job files

def test_deeply_nested_job_file_is_a_bad_job_file(tmp_path, capsys):
    good = job_file(tmp_path).read_text()
    deep = "deep = " + "[" * 5000 + "]" * 5000 + "\n"
    for text in (deep, "a = " + "{ b = " * 3000 + "1" + " }" * 3000,
                 good.replace("[options]", deep + "[options]")):
        path = tmp_path / "job.toml"
        path.write_text(text)
        exit_2(capsys, ["run", str(path)], f"job file '{path}'", "nested too deeply")
    assert names(tmp_path) == ["job.toml"]


def test_bad_input_dtype_exits_2_before_creating_anything(tmp_path, capsys):
    np.save(tmp_path / "y.npy", np.ones((5, 2), dtype=np.int64))
    job = job_file(tmp_path, y='"y.npy"')
    exit_2(capsys, ["run", str(job)], "key 'inputs.y.path'", "has dtype int64",
           "expected float16, float32 or float64", 'Add dtype = "float64"')
    assert names(tmp_path) == ["job.toml", "y.npy"]  # x and b not created, no output
    # the fix the message gives: a dtype key converts the inputs when read
    job.write_text('dtype = "float64"\n' + job.read_text())
    assert main(["run", str(job), "--check", "3"]) == 0, capsys.readouterr().err
    assert np.load(tmp_path / "out.npy").dtype == np.float64


def test_inputs_of_different_dtypes_exit_2(tmp_path, capsys):
    np.save(tmp_path / "y.npy", np.ones((5, 2), dtype=np.float32))
    job = job_file(tmp_path, y='"y.npy"')
    exit_2(capsys, ["run", str(job)], "must all have one dtype",
           "'x' is float64, 'y' is float32, 'b' is float64", 'Add dtype = "float64"')
    assert names(tmp_path) == ["job.toml", "y.npy"]
    job.write_text('dtype = "float32"\n' + job.read_text())
    assert main(["run", str(job)]) == 0, capsys.readouterr().err
    assert np.load(tmp_path / "out.npy").dtype == np.float32
    job.write_text('dtype = "float"\n' + job.read_text().split("\n", 1)[1])
    exit_2(capsys, ["run", str(job)], "key 'dtype'", '"float16", "float32" or "float64"')


def test_inputs_of_different_row_counts_exit_2(tmp_path, capsys):
    np.save(tmp_path / "y.npy", np.ones((6, 2)))
    job = job_file(tmp_path, y='"y.npy"')
    exit_2(capsys, ["run", str(job)], "Vj inputs must have the same number of rows",
           "'y' has 6, 'b' has 5")
    assert names(tmp_path) == ["job.toml", "y.npy"]


def test_big_endian_input_file_is_accepted(tmp_path, capsys):
    job = job_file(tmp_path)
    assert main(["run", str(job)]) == 0
    want = np.load(tmp_path / "out.npy")
    np.save(tmp_path / "y.npy", np.load(tmp_path / "y.npy").astype(">f8"))
    (tmp_path / "out.npy").unlink()
    assert main(["run", str(job), "--check", "3"]) == 0, capsys.readouterr()
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), want)
    assert "check values: 3 rows" in capsys.readouterr().out


NUL = "o\\u0000ut"  # TOML for a NUL character
LONG = "n" * 300  # longer than any file system's name limit (255 bytes)


@pytest.mark.parametrize("bad,words", [(NUL, "NUL character"),
                                       (LONG, "bytes long; expected at most 255")])
@pytest.mark.parametrize("where", ["input", "output", "option", "job file"])
def test_unusable_paths_exit_2_naming_the_path(tmp_path, capsys, bad, words, where):
    job = job_file(tmp_path)
    argv, key = ["run", str(job)], "key 'output.path'"
    if where == "input":
        job = job_file(tmp_path, x=RANDOM.format(name=bad, ext=".npy", rows=7, seed=0))
        key = "key 'inputs.x.path'"
    elif where == "output":
        job = job_file(tmp_path, output=f"{bad}.npy")
    else:
        path = bad.replace("\\u0000", "\0")
        argv, key = ((["run", str(job), "-o", f"{path}.npy"], "--output") if where == "option"
                     else (["run", f"{path}.toml"], "the job file's path"))
    err = exit_2(capsys, argv, key, words, "expected")
    assert ("'o\\x00ut" if bad == NUL else LONG) in err, err
    assert "Error:" not in err  # no ValueError: embedded null byte, no OSError
    assert names(tmp_path) == ["job.toml"]


def test_long_output_path_exits_2(tmp_path, capsys):
    deep = "/".join(["folder"] * 700) + "/out.npy"  # 4900 bytes, names of 6
    exit_2(capsys, ["run", str(job_file(tmp_path)), "-o", deep], "--output",
           "bytes long; expected under")
    assert names(tmp_path) == ["job.toml"]


# ------------------------------------------------------------------- options

@pytest.mark.parametrize("option", [
    ["--check", "-1"], ["--workers", "0"],
    ["--threads-per-worker", "-2"], ["--wait-workers", "-1"],
    ["--wait-timeout", "-5"], ["--wait-timeout", "nan"], ["--wait-timeout", "inf"],
])
def test_bad_options_exit_2_before_any_work(tmp_path, capsys, option):
    job = job_file(tmp_path)
    with pytest.raises(SystemExit) as done:
        main(["run", str(job), *option])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option[0]}" in err and repr(option[1]) in err, err
    assert names(tmp_path) == ["job.toml"]  # no input created, no output


@pytest.mark.parametrize("option", ["--workers", "--threads-per-worker"])
def test_local_cluster_size_is_bounded(tmp_path, capsys, monkeypatch, option):
    from dask import system

    monkeypatch.setattr(system, "CPU_COUNT", 2)
    job = job_file(tmp_path)
    with pytest.raises(SystemExit) as done:
        main(["run", str(job), option, "100000"])  # a local cluster of them would hang
    assert done.value.code == 2
    err = capsys.readouterr().err
    for word in (f"argument {option}", "'100000' is more than 8",
                 "expected an integer from 1 to 8", "4 per CPU, 2 CPU(s) here", "--scheduler"):
        assert word in err, err
    assert names(tmp_path) == ["job.toml"]
    assert main(["run", str(job), option, "8"]) == 0  # the bound itself is allowed


def test_waiting_for_more_local_workers_than_started_exits_2(tmp_path, capsys):
    pytest.importorskip("distributed")
    job = job_file(tmp_path)
    exit_2(capsys, ["run", str(job), "--scheduler", "local", "--workers", "1",
                    "--wait-workers", "2", "--wait-timeout", "1"],
           "--wait-workers 2 is more than --workers 1", "Lower --wait-workers")
    assert names(tmp_path) == ["job.toml"]


def test_load_job_checks_check_rows(tmp_path):
    with pytest.raises(JobError, match=r"--check is -1; expected a non-negative integer"):
        load_job(job_file(tmp_path), check_rows=-1)


def test_bad_scheduler_of_the_job_file_names_the_key(tmp_path, capsys):
    job = job_file(tmp_path, options='scheduler = "bogus"')
    exit_2(capsys, ["run", str(job)], "key 'options.scheduler' ('bogus')",
           "is not a scheduler", "tcp://host:8786")
    exit_2(capsys, ["run", str(job), "--scheduler", "nowhere"], "--scheduler 'nowhere'")
    assert names(tmp_path) == ["job.toml"]


@pytest.mark.parametrize("value", ["lots", "-1 GB"])
def test_bad_memory_setting_exits_2_before_any_work(tmp_path, capsys, value):
    job = job_file(tmp_path)
    with dask.config.set({"dredux.memory-per-task": value}):
        exit_2(capsys, ["run", str(job)], "dredux.memory-per-task", repr(value),
               "DREDUX_MEMORY_PER_TASK")
    assert names(tmp_path) == ["job.toml"]


def cpu_backend_available() -> bool:
    from dredux.backends import cpu_available

    return cpu_available()


@pytest.mark.parametrize("key,value,words,cpu", [
    ("split-every", 1, ["dredux.split-every is 1", "DREDUX_SPLIT_EVERY"], False),
    ("block-size", "abc", ["dredux.block-size is 'abc'", "DREDUX_BLOCK_SIZE"], False),
    ("max-tasks-per-worker", 0, ["DREDUX_MAX_TASKS_PER_WORKER"], False),
    ("task-seconds", 0, ["DREDUX_TASK_SECONDS"], False),
    ("cxx", "'g++", ["DREDUX_CXX", "cannot be split"], False),
    ("cxx", "no-such-compiler-dredux", ["'no-such-compiler-dredux' was not found"], False),
    ("march", "a b", ["DREDUX_MARCH", "'a b'"], True),
    ("cxxflags", "'-O2", ["DREDUX_CXXFLAGS", "cannot be split"], True),
    ("cache-dir", "{tmp}/job.toml/cache", ["{tmp}/job.toml/cache", "DREDUX_CACHE_DIR"],
     True),
])
def test_bad_settings_exit_2_before_any_input_is_created(tmp_path, capsys, key, value,
                                                         words, cpu):
    if cpu and not cpu_backend_available():
        pytest.skip("needs a C++ compiler (the CPU backend)")
    job = job_file(tmp_path)
    value = value.format(tmp=tmp_path) if isinstance(value, str) else value
    with dask.config.set({f"dredux.{key}": value}):
        exit_2(capsys, ["run", str(job), "--backend", "cpu"],
               *[w.format(tmp=tmp_path) for w in words])
    assert names(tmp_path) == ["job.toml"]  # no input created, no output


def test_bad_backend_setting_exits_2_before_any_input_is_created(tmp_path, capsys):
    job = job_file(tmp_path)
    job.write_text(job.read_text().replace('backend = "numpy"\n', ""))
    with dask.config.set({"dredux.backend": "bogus"}):
        exit_2(capsys, ["run", str(job)], "dredux.backend is 'bogus'", "DREDUX_BACKEND")
        assert names(tmp_path) == ["job.toml"]
        assert main(["run", str(job), "--backend", "numpy"]) == 0  # the option wins


# ------------------------------------------------------------------ schedulers

@pytest.mark.parametrize("text,words", [
    ("not json", ["is not valid JSON"]),
    ("[1, 2]", ["holds a JSON list, not an object"]),
    ('{"address": 5}', ["has 'address' 5; expected a string"]),
    ("{}", ["has no key 'address'"]),
    ('{"address": "foo://bar"}', ["its address 'foo://bar' is not a scheduler address",
                                  "unknown address scheme 'foo'"]),
    ('{"address": "tcp://[::1"}', ["'tcp://[::1' is not a scheduler address"]),
])
def test_bad_scheduler_file_exits_2_naming_it(tmp_path, capsys, monkeypatch, text, words):
    pytest.importorskip("distributed")
    monkeypatch.setattr(cli, "SCHEDULER_FILE_WAIT", 0.2, raising=False)  # JSON read again
    sched = tmp_path / "sched.json"
    sched.write_text(text)
    job = job_file(tmp_path)
    err = exit_2(capsys, ["run", str(job), "--scheduler", str(sched)],
                 f"--scheduler '{sched}': the scheduler file '{sched}'", *words,
                 "dask scheduler --scheduler-file" if "address" not in text else "expected")
    assert "Error" not in err, err  # no AssertionError, TypeError or ValueError
    assert names(tmp_path) == ["job.toml", "sched.json"]


@pytest.mark.parametrize("address,words", [
    ("tcp://[::1", ["ipv6 needs brackets"]),
    ("foo://bar", ["unknown address scheme 'foo'"]),
    ("tcp://host:99999", ["the port of 'tcp://host:99999' is 99999"]),
    ("tcp://:8786", ["has no host"]),
    ("tcp://host", ["missing port number"]),
    ("inproc://x", ["in-process address"]),
])
def test_bad_scheduler_address_exits_2_naming_it(tmp_path, capsys, address, words):
    pytest.importorskip("distributed")
    job = job_file(tmp_path)
    err = exit_2(capsys, ["run", str(job), "--scheduler", address, "--connect-timeout", "1"],
                 f"--scheduler {address!r} is not a scheduler address", *words,
                 "tcp://host:8786", "1 to 65535")
    assert "Error" not in err, err
    job = job_file(tmp_path, options=f'scheduler = "{address}"')
    exit_2(capsys, ["run", str(job)], f"key 'options.scheduler' ({address!r})", *words)
    assert names(tmp_path) == ["job.toml"]


def free_port() -> int:
    import socket

    with socket.socket() as sock:  # a free port nobody listens on
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_scheduler_file_of_a_job_file_is_relative_to_the_job_file(tmp_path, capsys,
                                                                 monkeypatch):
    pytest.importorskip("distributed")
    folder = tmp_path / "jobs"
    folder.mkdir()
    port = free_port()
    (folder / "sched.json").write_text(json.dumps({"address": f"tcp://127.0.0.1:{port}"}))
    job = job_file(folder, options='scheduler = "sched.json"')
    monkeypatch.chdir(tmp_path)  # another working directory, as a batch system's
    assert parse_scheduler("sched.json", source=job) == SchedulerSpec(
        "file", str(folder / "sched.json"))
    exit_2(capsys, ["run", str(job), "--connect-timeout", "1"],
           f"cannot reach the scheduler tcp://127.0.0.1:{port} of the scheduler file "
           f"{folder.resolve() / 'sched.json'}")
    # on the command line, a path is relative to the working directory
    exit_2(capsys, ["run", str(job), "--scheduler", "sched.json"], "no file 'sched.json'")
    assert parse_scheduler("jobs/sched.json") == SchedulerSpec("file", "jobs/sched.json")
    assert names(folder) == ["job.toml", "sched.json"]  # no input created
    assert names(tmp_path) == ["jobs"]


def test_unreachable_scheduler_is_found_before_any_input_is_created(tmp_path, capsys):
    pytest.importorskip("distributed")
    port = free_port()
    job = job_file(tmp_path, output="results/out.npy")
    exit_2(capsys, ["run", str(job), "--scheduler", f"127.0.0.1:{port}",
                    "--connect-timeout", "1"], f"cannot reach the scheduler at 127.0.0.1:{port}")
    # no generated input, and not the output folder created for the run
    assert names(tmp_path) == ["job.toml"]


# ---------------------------------------------------- output over a user's folder

def test_zarr_output_over_a_folder_of_the_users_is_refused(tmp_path, capsys):
    pytest.importorskip("zarr")
    out = tmp_path / "out.zarr"
    out.mkdir()
    (out / "important.txt").write_text("keep me")
    job = job_file(tmp_path, output="out.zarr")
    exit_2(capsys, ["run", str(job)], f"the output '{out}' exists and is a folder that is "
           "not a zarr store", "no zarr metadata", "never deletes files it did not write",
           "Move the folder away")
    assert names(tmp_path) == ["job.toml", "out.zarr"] and names(out) == ["important.txt"]
    (out / "important.txt").unlink()  # an empty folder: nothing is lost
    assert main(["run", str(job)]) == 0
    want = np.asarray(dask.array.from_zarr(str(out)))
    # a zarr store holding a file of the user's is refused too, wherever it is
    for where in (out / "notes.txt", out / "0" / "notes.txt"):
        where.parent.mkdir(exist_ok=True)
        where.write_text("keep me")
        exit_2(capsys, ["run", str(job)], "not a zarr store", f"it holds '{where}'")
        assert where.read_text() == "keep me"
        where.unlink()
    (out / "link").symlink_to(tmp_path / "job.toml")
    exit_2(capsys, ["run", str(job)], f"it holds the link '{out / 'link'}'")
    (out / "link").unlink()
    # dredux's own store is replaced, as a file output is
    assert main(["run", str(job)]) == 0
    np.testing.assert_array_equal(np.asarray(dask.array.from_zarr(str(out))), want)


def test_zarr_output_that_gains_a_users_file_during_the_run_is_kept(tmp_path):
    pytest.importorskip("zarr")
    out = tmp_path / "out.zarr"
    write_output(out, ["values"], [np.ones((4, 1))])
    (out / "notes.txt").write_text("keep me")  # written while the next run computes
    with pytest.raises(DreduxError, match="not a zarr store: it holds"):
        write_output(out, ["values"], [np.zeros((4, 1))])
    assert (out / "notes.txt").read_text() == "keep me"
    np.testing.assert_array_equal(np.asarray(dask.array.from_zarr(str(out))), 1.0)
    assert names(tmp_path) == ["out.zarr"]  # no temporary store left


# ------------------------------------------------------ output over an input

def test_output_equal_to_an_input_is_refused(tmp_path, capsys, monkeypatch):
    job = job_file(tmp_path, output="x.npy")
    exit_2(capsys, ["run", str(job)], "key 'output.path'", "same file as input 'x'",
           "Choose another output path")
    assert names(tmp_path) == ["job.toml"]
    job = job_file(tmp_path)
    assert main(["run", str(job)]) == 0
    capsys.readouterr()
    saved = {k: (tmp_path / f"{k}.npy").read_bytes() for k in "xyb"}
    monkeypatch.chdir(tmp_path)
    for output in ("y.npy", "./sub/../b.npy", str(tmp_path / "x.npy")):
        exit_2(capsys, ["run", str(job), "-o", output],
               f"--output '{(tmp_path / output).resolve()}'", "same file as input")
    (tmp_path / "link.npy").symlink_to(tmp_path / "x.npy")
    os.link(tmp_path / "y.npy", tmp_path / "hard.npy")
    for output in ("link.npy", "hard.npy"):
        exit_2(capsys, ["run", str(job), "-o", output], "same file as input")
    for k in "xyb":
        assert (tmp_path / f"{k}.npy").read_bytes() == saved[k]
    assert not (tmp_path / "sub").exists()


def test_output_over_a_zarr_input_is_refused(tmp_path, capsys):
    pytest.importorskip("zarr")
    job = job_file(tmp_path, output="x.zarr", ext=".zarr")
    exit_2(capsys, ["run", str(job)], "same file as input 'x'")
    job = job_file(tmp_path, output="y.zarr/inside.npy", ext=".zarr")
    exit_2(capsys, ["run", str(job)], "lies inside input 'y'")
    assert names(tmp_path) == ["job.toml"]
    job = job_file(tmp_path, output="data.zarr", x='"data.zarr/x.npy"')
    exit_2(capsys, ["run", str(job)], "holds input 'x'")


# ---------------------------------------------------------------- full disks

def no_hidden_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.startswith(".")]


@pytest.mark.parametrize("ext", [".npy", ".zarr"])
def test_too_little_free_space_is_refused_before_writing(tmp_path, capsys, monkeypatch, ext):
    if ext == ".zarr":
        pytest.importorskip("zarr")
    monkeypatch.setattr(jobs.shutil, "disk_usage",
                        lambda path: types.SimpleNamespace(total=10**6, used=10**6 - 50,
                                                           free=50))
    job = job_file(tmp_path, ext=ext)
    assert main(["run", str(job)]) == 1
    err = capsys.readouterr().err
    for word in ("no space left", str(tmp_path / f"x{ext}"), "50 bytes", "free"):
        assert word in err, err
    needed = 7 * 2 * 8 + (128 if ext == ".npy" else 0)
    assert f"({needed} bytes)" in err, err
    assert names(tmp_path) == ["job.toml"]


def enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_no_space_while_reserving_leaves_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(os, "posix_fallocate", enospc, raising=False)
    job = job_file(tmp_path)
    assert main(["run", str(job)]) == 1
    err = capsys.readouterr().err
    assert "no space left" in err and str(tmp_path / "x.npy") in err, err
    assert names(tmp_path) == ["job.toml"]


@pytest.mark.parametrize("reserve", [True, False])
def test_no_space_while_writing_leaves_nothing(tmp_path, capsys, monkeypatch, reserve):
    if not reserve:  # a platform or file system without posix_fallocate
        monkeypatch.delattr(os, "posix_fallocate", raising=False)
    written = []

    def half_then_full(f, values):
        if written:
            f.write(b"\0" * 8)
            enospc()
        written.append(values)
        f.write(np.ascontiguousarray(values).data)

    monkeypatch.setattr(jobs, "GEN_ROWS", 4)  # 7 rows: two blocks
    monkeypatch.setattr(jobs, "_write_block", half_then_full)
    job = job_file(tmp_path)
    assert main(["run", str(job)]) == 1
    err = capsys.readouterr().err
    assert "no space left" in err and "(240 bytes)" in err, err
    assert names(tmp_path) == ["job.toml"] and no_hidden_files(tmp_path)


def test_no_space_error_is_an_oserror_and_a_dredux_error(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "posix_fallocate", enospc, raising=False)
    with pytest.raises(OSError) as err:
        make_random(tmp_path / "a.npy", (3, 2), Recipe(3, 0, "float32", "uniform"))
    assert err.value.errno == errno.ENOSPC and isinstance(err.value, DreduxError)
    assert "no space left" in str(err.value)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    make_random(tmp_path / "a.npy", (3, 2), Recipe(3, 0, "float32", "uniform"))
    np.testing.assert_array_equal(
        np.load(tmp_path / "a.npy"),
        np.random.default_rng([0, 0]).random((3, 2)).astype(np.float32))


def test_unreachable_scheduler_names_the_setting_quickly(tmp_path, capsys):
    import socket
    import time

    pytest.importorskip("distributed")
    with socket.socket() as sock:  # a free port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    job = job_file(tmp_path)
    start = time.perf_counter()
    err = exit_2(capsys, ["run", str(job), "--scheduler", f"tcp://127.0.0.1:{port}",
                          "--connect-timeout", "2"],
                 f"cannot reach the scheduler at tcp://127.0.0.1:{port} within 2 s",
                 "--scheduler", "options.scheduler", "--connect-timeout")
    assert time.perf_counter() - start < 30, err
    assert "OSError: Timed out" not in err
    assert not (tmp_path / "out.npy").exists()


# ------------------------------------------------- small cases from a sweep

def test_a_text_file_as_npy_input_is_not_advised_to_be_unpickled(tmp_path, capsys):
    (tmp_path / "x.npy").write_text("not an array\n")
    job = job_file(tmp_path, x='{ path = "x.npy" }')
    err = exit_2(capsys, ["run", str(job)], "x.npy", "no .npy header", "np.save")
    assert "allow_pickle" not in err and "pickle.load" not in err


def test_negative_random_rows_are_refused_saying_zero_is_allowed(tmp_path, capsys):
    # a recipe of 0 rows is an empty input (an edge size the runner handles)
    job = job_file(tmp_path, x=RANDOM.format(name="x", ext=".npy", rows=-5, seed=0))
    exit_2(capsys, ["run", str(job)], "rows", "an integer >= 0")
    assert names(tmp_path) == ["job.toml"]


@pytest.mark.parametrize("output", ["", " "])
def test_an_empty_output_option_is_named_as_the_option(tmp_path, capsys, output):
    err = exit_2(capsys, ["run", str(job_file(tmp_path)), "-o", output], "--output",
                 "empty path")
    assert "output.path" not in err
    assert names(tmp_path) == ["job.toml"]


def test_a_bad_output_suffix_from_the_option_names_the_option(tmp_path, capsys):
    err = exit_2(capsys, ["run", str(job_file(tmp_path)), "-o", str(tmp_path / "out.txt")],
                 "--output", ".npy, .npz or .zarr")
    assert "output.path" not in err
