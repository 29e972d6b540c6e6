"""The ``dredux`` command line in this process: run (threads), outputs, info, cache.

Results are compared with NumPy float64 expressions written here. Real
processes (clusters, signals) are in tests/distributed.
"""

from __future__ import annotations

import json
from pathlib import Path

import dask
import numpy as np
import pytest

from dredux import __version__
from dredux.cli import SchedulerSpec, main, parse_scheduler, write_output
from dredux.jobs import JobError
from tests.helpers import gauss_reference

GAUSS = '''
formula = "Exp(-g * SqDist(x, y)) * b"
aliases = ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "g = Pm(1)"]
reduction = "Sum"
axis = 1

[inputs]
x = {{ path = "x{ext}", random = {{ rows = {m}, seed = 11, dtype = "{dtype}" }} }}
y = {{ path = "y{ext}", random = {{ rows = {n}, seed = 12, dtype = "{dtype}" }} }}
g = {{ value = [1.5] }}

[inputs.b]
path = "b{ext}"
random = {{ rows = {n}, seed = 13, dtype = "{dtype}", distribution = "normal" }}

[output]
path = "{output}"

[options]
backend = "numpy"
block_size = [8, 8]

[check]
rows = {check}
{rtol}
'''

MIN_ARGMIN = '''
formula = "SqDist(x, y)"
aliases = ["x = Vi(2)", "y = Vj(2)"]
reduction = "Min_ArgMin"
axis = 0

[inputs]
x = {{ path = "x.npy", random = {{ rows = 17, seed = 1 }} }}
y = {{ path = "y.npy", random = {{ rows = 9, seed = 2 }} }}

[output]
path = "{output}"

[options]
backend = "numpy"
block_size = [4, 4]
'''


def gauss_job(tmp_path: Path, m=33, n=31, dtype="float64", ext=".npy", output="out.npy",
              check=5, rtol="") -> Path:
    path = tmp_path / "job.toml"
    path.write_text(GAUSS.format(m=m, n=n, dtype=dtype, ext=ext, output=output,
                                 check=check, rtol=rtol))
    return path


def load(path: Path) -> np.ndarray:
    if path.suffix == ".zarr":
        import dask.array as da

        return da.from_zarr(str(path)).compute()
    return np.load(path)


def test_run_on_threads_matches_numpy(tmp_path, capsys):
    job = gauss_job(tmp_path)
    assert main(["run", str(job)]) == 0
    out = capsys.readouterr().out
    result = np.load(tmp_path / "out.npy")
    x, y, b = (np.load(tmp_path / f"{k}.npy") for k in "xyb")
    assert result.shape == (33, 1) and result.dtype == np.float64
    np.testing.assert_allclose(result, gauss_reference(x, y, b, 1.5), rtol=1e-12, atol=1e-14)
    assert "scheduler: threads" in out and "backend: numpy" in out
    assert "check values: 5 rows" in out and "OK" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "b.npy", "job.toml", "out.npy", "x.npy", "y.npy"]  # no temporary file left


@pytest.mark.parametrize("m,n", [(1, 1), (8, 9), (9, 8), (0, 5)])
def test_run_edge_sizes(tmp_path, capsys, m, n):
    job = gauss_job(tmp_path, m=m, n=n, check=3)
    assert main(["run", str(job)]) == 0, capsys.readouterr()
    result = np.load(tmp_path / "out.npy")
    x, y, b = (np.load(tmp_path / f"{k}.npy") for k in "xyb")
    assert result.shape == (m, 1)
    np.testing.assert_allclose(result, gauss_reference(x, y, b, 1.5), rtol=1e-12, atol=1e-14)


def test_float32_and_output_override(tmp_path, capsys, monkeypatch):
    job = gauss_job(tmp_path, dtype="float32")
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(job), "-o", "elsewhere/result.npy", "--check", "0"]) == 0
    out = capsys.readouterr().out
    assert "check" not in out
    result = np.load(tmp_path / "elsewhere" / "result.npy")
    x, y, b = (np.load(tmp_path / f"{k}.npy") for k in "xyb")
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, gauss_reference(x, y, b, 1.5), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("spelling", ["NUMPY", "numpy", "NumPy"])
def test_backend_takes_every_spelling_genred_takes(tmp_path, capsys, spelling):
    """--backend and a job file's options.backend accept what Genred's call accepts
    (KeOps's "CPU", "GPU_1D"...), in the command line's and the job's own checks."""
    from dredux.backends import SPELLINGS
    from dredux.cli import build_parser

    assert {"CPU", "GPU", "GPU_1D", "GPU_2D", "auto", "cpu", "gpu"} <= set(SPELLINGS)
    for text in SPELLINGS:
        parsed = build_parser().parse_args(["run", "job.toml", "--backend", text])
        assert parsed.backend in ("auto", "cpu", "gpu", "numpy")
    job = gauss_job(tmp_path)
    assert main(["run", str(job), "--backend", spelling]) == 0
    assert "backend: numpy" in capsys.readouterr().out
    job.write_text(job.read_text().replace('backend = "numpy"', f'backend = "{spelling}"'))
    assert main(["run", str(job)]) == 0
    assert "backend: numpy" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        main(["run", str(job), "--backend", "tpu"])
    assert done.value.code == 2
    assert "unknown backend 'tpu'" in capsys.readouterr().err


def test_check_reports_failure(tmp_path, capsys):
    # a float32 run cannot agree with float64 to 1e-30: the check must fail
    job = gauss_job(tmp_path, dtype="float32", rtol="rtol = 1e-30")
    assert main(["run", str(job)]) == 1
    assert "FAILED" in capsys.readouterr().out
    assert (tmp_path / "out.npy").exists()  # the output is kept for inspection


def test_default_backend_follows_config(tmp_path, capsys):
    job = gauss_job(tmp_path)
    job.write_text(job.read_text().replace('backend = "numpy"\n', ""))
    with dask.config.set({"dredux.backend": "numpy"}):
        assert main(["run", str(job), "--check", "0"]) == 0
    assert "backend: numpy" in capsys.readouterr().out


def test_zarr_inputs_and_output(tmp_path, capsys):
    pytest.importorskip("zarr")
    job = gauss_job(tmp_path, ext=".zarr", output="out.zarr", m=40, n=23)
    assert main(["run", str(job)]) == 0, capsys.readouterr()
    result = load(tmp_path / "out.zarr")
    x, y, b = (load(tmp_path / f"{k}.zarr") for k in "xyb")
    np.testing.assert_allclose(result, gauss_reference(x, y, b, 1.5), rtol=1e-12, atol=1e-14)
    # run again: the existing output is replaced as a whole
    assert main(["run", str(job), "--check", "0"]) == 0
    np.testing.assert_array_equal(load(tmp_path / "out.zarr"), result)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def min_argmin_reference(tmp_path):
    x, y = np.load(tmp_path / "x.npy"), np.load(tmp_path / "y.npy")
    d2 = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)  # (17, 9); axis=0 reduces over i
    return d2.min(0), d2.argmin(0)


@pytest.mark.parametrize("suffix", [".npz", ".zarr"])
def test_two_outputs_are_named_values_and_indices(tmp_path, capsys, suffix):
    if suffix == ".zarr":
        pytest.importorskip("zarr")
    job = tmp_path / "job.toml"
    job.write_text(MIN_ARGMIN.format(output=f"out{suffix}"))
    assert main(["run", str(job)]) == 0, capsys.readouterr()
    values, indices = min_argmin_reference(tmp_path)
    if suffix == ".npz":
        with np.load(tmp_path / "out.npz") as f:
            got = {k: f[k] for k in f.files}
    else:
        import zarr

        group = zarr.open_group(str(tmp_path / "out.zarr"), mode="r")
        got = {k: group[k][...] for k in group.array_keys()}
    assert sorted(got) == ["indices", "values"]
    np.testing.assert_allclose(got["values"][:, 0], values, rtol=1e-12)
    np.testing.assert_array_equal(got["indices"][:, 0], indices)
    assert got["indices"].dtype == np.int64


def test_two_outputs_refuse_npy(tmp_path, capsys):
    job = tmp_path / "job.toml"
    job.write_text(MIN_ARGMIN.format(output="out.npy"))
    assert main(["run", str(job)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dredux: error: job file") and ".npz" in err
    assert not (tmp_path / "x.npy").exists()  # refused before reading or creating inputs


def test_bad_job_and_bad_scheduler_exit_2(tmp_path, capsys):
    job = gauss_job(tmp_path)
    job.write_text(job.read_text().replace("axis = 1", "axis = 3"))
    assert main(["run", str(job)]) == 2
    assert "key 'axis' is 3" in capsys.readouterr().err
    job = gauss_job(tmp_path)
    assert main(["run", str(job), "--scheduler", "nowhere"]) == 2
    err = capsys.readouterr().err
    assert "--scheduler 'nowhere'" in err and "tcp://host:8786" in err


def test_output_of_the_wrong_kind_is_refused_before_running(tmp_path, capsys):
    job = gauss_job(tmp_path)
    (tmp_path / "out.npy").mkdir()
    assert main(["run", str(job)]) == 2
    assert "exists and is a folder" in capsys.readouterr().err
    assert not (tmp_path / "x.npy").exists()


def test_interrupt_leaves_no_output(tmp_path, capsys, monkeypatch):
    import dredux.cli as cli

    job = gauss_job(tmp_path)
    (tmp_path / "out.npy").write_bytes(b"previous output")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "write_output", interrupted)
    assert main(["run", str(job)]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert (tmp_path / "out.npy").read_bytes() == b"previous output"


def test_a_failed_job_says_what_failed(tmp_path, capsys, monkeypatch):
    import dredux.cli as cli

    def broken(*args, **kwargs):
        raise RuntimeError("a worker lost its disk")

    monkeypatch.setattr(cli, "write_output", broken)
    job = gauss_job(tmp_path)
    assert main(["run", str(job)]) == 1
    err = capsys.readouterr().err
    assert "dredux: error: RuntimeError: a worker lost its disk (--traceback" in err
    assert "Traceback" not in err
    with pytest.raises(RuntimeError, match="lost its disk"):
        main(["--traceback", "run", str(job)])
    with pytest.raises(RuntimeError, match="lost its disk"):  # where the message says it
        main(["run", str(job), "--traceback"])


def test_python_dash_m_and_help_point_to_the_docs():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "dredux", "--help"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "usage: dredux" in done.stdout and "docs/formulas.md" in done.stdout
    done = subprocess.run([sys.executable, "-m", "dredux", "info", "--traceback"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("text,kind,target", [
    ("threads", "threads", None), ("sync", "sync", None), ("local", "local", None),
    ("tcp://10.0.0.1:8786", "address", "tcp://10.0.0.1:8786"),
    ("127.0.0.1:8786", "address", "127.0.0.1:8786"),
    ("ucx://node7:8786", "address", "ucx://node7:8786"),
])
def test_parse_scheduler(text, kind, target):
    assert parse_scheduler(text) == SchedulerSpec(kind, target)


def test_parse_scheduler_file(tmp_path):
    path = tmp_path / "scheduler.json"
    path.write_text("{}")
    assert parse_scheduler(str(path)) == SchedulerSpec("file", str(path))
    with pytest.raises(JobError, match="no file"):
        parse_scheduler(str(tmp_path / "missing.json"))


# -------------------------------------------------------------- atomic writes

@pytest.mark.parametrize("suffix", [".npy", ".npz"])
@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_failed_write_keeps_the_old_output(tmp_path, monkeypatch, suffix, error):
    target = tmp_path / f"out{suffix}"
    target.write_bytes(b"previous output")

    def fail_midway(file, *args, **kwargs):
        file.write(b"\x93NUMPY partial")
        raise error

    monkeypatch.setattr(np, "save" if suffix == ".npy" else "savez", fail_midway)
    with pytest.raises(type(error)):
        write_output(target, ["values"], [np.ones((4, 1))])
    assert target.read_bytes() == b"previous output"
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


def test_failed_zarr_write_leaves_nothing(tmp_path):
    pytest.importorskip("zarr")
    import dask.array as da

    def second_block_fails(block, block_info=None):
        if block_info[0]["chunk-location"][0] == 1:
            raise RuntimeError("worker lost")
        return block

    arr = da.ones((12, 2), chunks=(4, 2)).map_blocks(second_block_fails, dtype=float)
    with dask.config.set(scheduler="sync"), pytest.raises(RuntimeError, match="worker lost"):
        write_output(tmp_path / "out.zarr", ["values"], [arr])
    assert list(tmp_path.iterdir()) == []


def test_write_output_round_trip(tmp_path):
    values = np.random.default_rng(0).random((5, 2))
    indices = np.arange(10, dtype=np.int64).reshape(5, 2)
    write_output(tmp_path / "a.npy", ["values"], [values])
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), values)
    write_output(tmp_path / "b.npz", ["values", "indices"], [values, indices])
    with np.load(tmp_path / "b.npz") as f:
        np.testing.assert_array_equal(f["values"], values)
        np.testing.assert_array_equal(f["indices"], indices)


# ------------------------------------------------------------- info and cache

def test_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for word in (f"dredux {__version__}", "numpy", "dask", "backends:", "gpus:",
                 "compiler c++", "cache:"):
        assert word in out, out
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["dredux"] == __version__ and info["backends"]["numpy"] is True
    assert info["packages"]["numpy"] == np.__version__
    assert set(info["cache"]) == {"folder", "files", "bytes"}


def test_cache_clear(tmp_path, capsys):
    cache = tmp_path / "cache"
    with dask.config.set({"dredux.cache-dir": str(cache)}):
        assert main(["cache", "clear"]) == 0
        assert "does not exist" in capsys.readouterr().out
        (cache / "cpu").mkdir(parents=True)
        key = "0123456789abcdef" * 4  # clear deletes only files named like dredux's
        (cache / "cpu" / f"{key}.so").write_bytes(b"x" * 1000)
        (cache / "cpu" / f"{key}.json").write_text("{}")
        assert main(["info", "--json"]) == 0
        info = json.loads(capsys.readouterr().out)
        assert info["cache"] == {"folder": str(cache), "files": 2, "bytes": 1002}
        assert main(["cache", "clear"]) == 0
        assert "2 files" in capsys.readouterr().out
    assert cache.exists() and list(cache.iterdir()) == []


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and __version__ in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0 and "--scheduler" in out and "--backend" in out


def test_progress_redraws_twice_a_second_into_a_file():
    from dask.utils import parse_timedelta

    from dredux.cli import progress_interval

    assert parse_timedelta(progress_interval(False)) >= 0.5  # a batch log, local or not
    assert parse_timedelta(progress_interval(True)) <= 0.1
