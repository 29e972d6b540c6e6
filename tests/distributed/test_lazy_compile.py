"""CPU kernels travel as (program, options) and compile where they run: each worker
process builds (or loads from its cache) the kernel itself, once; the client
never compiles, and the pickled kernel holds no machine code.

Evidence is read from the processes themselves: the shared objects mapped in a
process (``/proc/self/maps``) and the files in each kernel cache folder.
"""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

import cloudpickle
import dask
import numpy as np
import pytest

from dredux import Genred
from dredux.backends import cpu_available

pytestmark = pytest.mark.distributed
pytest.importorskip("dredux.compile.cpp")
if not cpu_available():
    pytest.skip("no C++ compiler", allow_module_level=True)
if not os.path.exists("/proc/self/maps"):
    pytest.skip("needs /proc/self/maps (Linux)", allow_module_level=True)

cloudpickle.register_pickle_by_value(sys.modules[__name__])

ALIASES = ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "g = Pm(1)"]


def mapped_objects(folder) -> list[str]:
    """Shared objects under ``folder`` mapped into the calling process (also run on
    workers: this module is pickled by value, so workers need not import it)."""
    import os

    folder = os.path.realpath(folder)
    found = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            parts = line.split(maxsplit=5)
            path = parts[5].strip() if len(parts) == 6 else ""
            if path.endswith(".so") and path.startswith(folder + os.sep):
                found.add(path)
    return sorted(found)


def compiled(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.so")) if folder.exists() else []


def test_pickled_kernel_is_small_and_has_no_machine_code(tmp_path):
    cache = tmp_path / "cache"
    rng = np.random.default_rng(5)
    x, y, b, g = rng.random((9, 3)), rng.random((17, 3)), rng.random((17, 1)), np.array([2.0])
    with dask.config.set({"dredux.cache-dir": str(cache)}):
        kernel = Genred("Exp(-g * SqDist(x, y)) * b + SqNorm2(x - y)", ALIASES,
                        axis=1).kernel("cpu", np.float64)
        before = pickle.dumps(kernel)
        assert compiled(cache) == []  # making and pickling a kernel compiles nothing
        (state,) = kernel([x], [y, b], [g], 9, 17, 0)
        (library,) = compiled(cache)
        assert mapped_objects(cache) == [str(library.resolve())]
        after = pickle.dumps(kernel)
        clone = pickle.loads(after)
        (again,) = clone([x], [y, b], [g], 9, 17, 0)
    assert after == before  # compiling changed nothing that travels
    assert b"\x7fELF" not in after
    assert len(after) < library.stat().st_size / 2, (len(after), library.stat().st_size)
    d2 = ((x[:, None] - y[None]) ** 2).sum(-1)
    reference = (np.exp(-2.0 * d2) * b[None, :, 0] + d2).sum(1)
    np.testing.assert_allclose(state[:, 0], reference, rtol=1e-12)
    np.testing.assert_array_equal(again, state)


def test_workers_compile_lazily_once_each(dask_cluster, gauss, tools, tmp_path):
    worker_cache = Path(dask_cluster.env["DREDUX_CACHE_DIR"])
    client_env = tools.env(tmp_path, cache="client-cache")
    job = gauss.write(tmp_path, 2000, 4000, (250, 1000), backend="cpu")  # 32 block tasks
    already = set(compiled(worker_cache))

    for output in ("first.npy", "second.npy"):
        done = tools.run_cli(["run", str(job), "--scheduler", dask_cluster.address, "-o",
                              str(tmp_path / output), "--check", "0"],
                             env=client_env, cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr + dask_cluster.logs()
        assert "backend: cpu" in done.stdout

    new = sorted(set(compiled(worker_cache)) - already)
    assert len(new) == 1, new  # two workers sharing a cache folder: one build
    with dask_cluster.client() as client:
        loaded = client.run(mapped_objects, str(worker_cache))
    assert len(loaded) == 2
    for worker, paths in loaded.items():
        # each worker process loaded the kernel itself, and only once
        assert paths == [str(new[0].resolve())], (worker, paths)
    assert compiled(tmp_path / "client-cache") == []  # the client never compiled
    first, second = np.load(tmp_path / "first.npy"), np.load(tmp_path / "second.npy")
    np.testing.assert_allclose(first, gauss.reference(tmp_path), rtol=1e-10, atol=1e-12)
    assert np.array_equal(first, second)
