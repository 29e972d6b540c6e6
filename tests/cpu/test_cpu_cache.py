"""The compile cache and the kernel object: races, corruption, ownership, errors, pickling.

The tests run as whatever user runs the suite. The "owned by another user"
cases chown a folder for real when the suite runs as root, and otherwise
replace the ownership lookup (``cache._owner_uid``) to report another user.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import dask
import numpy as np
import pytest

from dredux import Genred
from dredux.backends import cpu_available
from dredux.compile import cache
from dredux.compile import cpp as cpp_compile
from dredux.errors import BackendUnavailable, CacheError, KernelCompileError

ROOT = Path(__file__).resolve().parents[2]
ALIASES = ["x = Vi(2)", "y = Vj(2)", "b = Vj(1)"]


def unique_formula(tag: str) -> str:
    """A formula no other test compiles (so its kernel is new to every cache)."""
    salt = abs(hash((tag, os.getpid()))) % 997 + 2
    return f"Exp(-SqDist(x, y) * {salt}) * b + {salt}"


def reference(formula_salt: int, x, y, b):
    d = ((x[:, None, :] - y[None]) ** 2).sum(-1)
    return (np.exp(-d * formula_salt) * b[None, :, 0] + formula_salt).sum(1, keepdims=True)


def salt_of(formula: str) -> int:
    return int(formula.rsplit("+", 1)[1])


def entries(folder: Path) -> list[Path]:
    return sorted((folder / "cpu").glob("*.so"))


def inputs(seed=0):
    gen = np.random.default_rng(seed)
    return gen.uniform(-1, 1, (11, 2)), gen.uniform(-1, 1, (23, 2)), gen.uniform(0, 1, (23, 1))


SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    sys.path.insert(0, {root!r})
    from dredux import Genred
    from dredux.compile import cache
    gen = np.random.default_rng(0)
    x, y, b = gen.uniform(-1, 1, (11, 2)), gen.uniform(-1, 1, (23, 2)), gen.uniform(0, 1, (23, 1))
    out = Genred({formula!r}, {aliases!r}, axis=1)(x, y, b, backend="cpu")
    print(json.dumps({{"out": out.ravel().tolist(), "built": cache.build_count()}}))
""")


def run_processes(formula: str, cache_dir: Path, count: int) -> list[dict]:
    env = dict(os.environ, DREDUX_CACHE_DIR=str(cache_dir))
    script = SCRIPT.format(root=str(ROOT), formula=formula, aliases=ALIASES)
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(count)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def test_four_processes_compiling_at_once_share_one_entry(fresh_cache):
    formula = unique_formula("race")
    results = run_processes(formula, fresh_cache, 4)
    x, y, b = inputs()
    ref = reference(salt_of(formula), x, y, b).ravel()
    for r in results:
        np.testing.assert_allclose(r["out"], ref, rtol=1e-12)
    assert sum(r["built"] for r in results) == 1, results  # one compile, three waits
    assert len(entries(fresh_cache)) == 1
    assert not list((fresh_cache / "cpu").glob(".*"))  # no temporary folder left


def test_threads_calling_a_new_kernel_at_once_build_it_once(fresh_cache):
    formula = unique_formula("threads")
    g = Genred(formula, ALIASES, axis=1)
    x, y, b = inputs(1)
    ref = reference(salt_of(formula), x, y, b)
    before = cache.build_count()
    outs, errors = [], []

    def call():
        try:
            outs.append(g(x, y, b, backend="cpu"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert cache.build_count() - before == 1
    for out in outs:
        np.testing.assert_allclose(out, ref, rtol=1e-12)


def test_a_corrupt_entry_is_rebuilt_not_loaded(fresh_cache):
    formula = unique_formula("corrupt")
    # build the entry in another process, so this one has never mapped the file
    (first,) = run_processes(formula, fresh_cache, 1)
    assert first["built"] == 1
    (so,) = entries(fresh_cache)
    data = so.read_bytes()
    so.write_bytes(data[: len(data) // 2])  # truncated in place
    before = cache.build_count()
    x, y, b = inputs()
    out = Genred(formula, ALIASES, axis=1)(x, y, b, backend="cpu")
    np.testing.assert_allclose(out, reference(salt_of(formula), x, y, b), rtol=1e-12)
    assert cache.build_count() - before == 1
    assert so.read_bytes() != data[: len(data) // 2]
    meta = json.loads(so.with_suffix(".json").read_text())
    assert meta["size"] == so.stat().st_size


def test_corrupt_metadata_is_rebuilt(fresh_cache):
    formula = unique_formula("meta")
    run_processes(formula, fresh_cache, 1)
    (so,) = entries(fresh_cache)
    so.with_suffix(".json").write_text("{not json")
    before = cache.build_count()
    x, y, b = inputs()
    Genred(formula, ALIASES, axis=1)(x, y, b, backend="cpu")
    assert cache.build_count() - before == 1


def _foreign(path: Path, monkeypatch):
    """Make ``path`` belong to another user: for real as root, else by patching."""
    if os.getuid() == 0:
        os.chown(path, 65534, 65534)
    else:  # pragma: no cover - the CI runs as root; covered by the patch otherwise
        real = cache._owner_uid
        monkeypatch.setattr(cache, "_owner_uid",
                            lambda p: 65534 if Path(p) == path else real(p))


def test_a_cache_folder_owned_by_another_user_is_refused(tmp_path, monkeypatch):
    folder = tmp_path / "shared"
    folder.mkdir()
    _foreign(folder, monkeypatch)
    cpp_compile.clear_memory_cache()
    x, y, b = inputs()
    with dask.config.set({"dredux.cache-dir": str(folder)}):
        with pytest.raises(CacheError, match="owned by user id 65534") as info:
            Genred(unique_formula("foreign"), ALIASES, axis=1)(x, y, b, backend="cpu")
    assert "DREDUX_CACHE_DIR" in str(info.value)


def test_an_entry_owned_by_another_user_is_refused(fresh_cache, monkeypatch):
    formula = unique_formula("foreign-entry")
    run_processes(formula, fresh_cache, 1)
    (so,) = entries(fresh_cache)
    _foreign(so, monkeypatch)
    x, y, b = inputs()
    with pytest.raises(CacheError, match="owned by user id 65534"):
        Genred(formula, ALIASES, axis=1)(x, y, b, backend="cpu")


def test_an_entry_that_does_not_load_is_a_cache_error_naming_it(fresh_cache):
    # an entry whose metadata matches (size, hash) but which is no shared library; it is
    # replaced (a new file: this process keeps the old one mapped) and loaded afresh
    formula = unique_formula("unloadable")
    x, y, b = inputs()
    Genred(formula, ALIASES, axis=1)(x, y, b, backend="cpu")
    (so,) = entries(fresh_cache)
    so.unlink()
    so.write_bytes(b"not a shared library")
    meta = json.loads(so.with_suffix(".json").read_text())
    meta.update(size=so.stat().st_size, sha256=cache._digest(so))
    so.with_suffix(".json").write_text(json.dumps(meta))
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        import numpy as np
        from dredux import CacheError, Genred
        x = np.ones((3, 2))
        try:
            Genred({formula!r}, {ALIASES!r}, axis=1)(x, x, x[:, :1], backend="cpu")
        except CacheError as exc:
            print("CacheError:", exc)
        """)
    env = dict(os.environ, DREDUX_CACHE_DIR=str(fresh_cache))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "CacheError:" in done.stdout and "does not load" in done.stdout, done.stdout
    assert str(so) in done.stdout and "dredux cache clear" in done.stdout


def test_a_compile_failure_raises_with_source_and_log_and_caches_nothing(fresh_cache,
                                                                       monkeypatch):
    from dredux.codegen import cpp as cpp_codegen

    # generated code that does not compile with dredux's own flags: a bug in dredux
    # (flags that break every program, or only a kernel: test_cache_hostile)
    render = cpp_codegen.cpp_source
    monkeypatch.setattr(cpp_codegen, "cpp_source", lambda *a: render(*a) + "\nint dredux_block_"
                        "broken = dredux_block;\n")
    g = Genred(unique_formula("broken"), ALIASES, axis=1)
    x, y, b = inputs()
    with pytest.raises(KernelCompileError, match="bug in dredux") as info:
        g(x, y, b, backend="cpu")
    err = info.value
    assert "dredux_block_broken" in err.source
    assert "dredux_block" in err.log
    assert any("-shared" in o for o in err.options)
    assert pickle.loads(pickle.dumps(err)).log == err.log
    assert entries(fresh_cache) == []


def test_a_missing_compiler_is_reported_with_the_fix(fresh_cache):
    g = Genred(unique_formula("nocxx"), ALIASES, axis=1)
    x, y, b = inputs()
    with dask.config.set({"dredux.cxx": "/nonexistent/bin/g++"}):
        with pytest.raises(BackendUnavailable, match="CXX") as info:
            g(x, y, b, backend="cpu")
    assert "/nonexistent/bin/g++" in str(info.value)
    # a blank compiler setting is a missing compiler too, not a crash
    with dask.config.set({"dredux.cxx": " "}):
        assert not cpu_available()
        with pytest.raises(BackendUnavailable, match="CXX"):
            g(x, y, b, backend="cpu")


def test_flags_and_target_are_part_of_the_key(fresh_cache):
    formula = unique_formula("flags")
    x, y, b = inputs()
    Genred(formula, ALIASES, axis=1)(x, y, b, backend="cpu")
    with dask.config.set({"dredux.march": ""}):
        Genred(formula, ALIASES, axis=1)(x, y, b, backend="cpu")
    with dask.config.set({"dredux.cxxflags": "-fno-unroll-loops"}):
        Genred(formula, ALIASES, axis=1)(x, y, b, backend="cpu")
    assert len(entries(fresh_cache)) == 3
    metas = [json.loads(p.with_suffix(".json").read_text()) for p in entries(fresh_cache)]
    commands = sorted(m["command"] for m in metas)
    assert sum("-march=native" in c for c in commands) == 2
    assert sum("-fno-unroll-loops" in c for c in commands) == 1


@pytest.mark.parametrize("banner, gcc", [
    ("g++ (Debian 12.2.0-14) 12.2.0\nCopyright (C) 2022 Free Software Foundation, Inc.", True),
    ("Debian clang version 14.0.6\nTarget: x86_64-pc-linux-gnu", False)])
def test_gcc_only_flags_go_to_gcc_alone(tmp_path, banner, gcc):
    """-fschedule-insns/-fsched-pressure are GCC options: another compiler never sees them."""
    fake = tmp_path / ("fake-gcc" if gcc else "fake-clang")
    fake.write_text(f"#!/bin/sh\nprintf '%s\\n' {banner!r}\n")
    fake.chmod(0o755)
    with dask.config.set({"dredux.cxx": str(fake)}):
        flags = cpp_compile.compile_flags()
    assert all(f in flags for f in cpp_compile.BASE_FLAGS)
    assert all((f in flags) == gcc for f in cpp_compile.GCC_FLAGS), flags


def test_cache_key_covers_every_ingredient():
    base = {"source": "s", "compiler": ["g++"], "compiler_version": "12", "flags": ["-O3"],
            "target": {"march": "native", "cpu": "abc"}, "dtype": "float32", "dredux": "0.1"}
    keys = {cache.cache_key(base)}
    for name, other in [("source", "t"), ("compiler", ["clang++"]), ("compiler_version", "13"),
                        ("flags", ["-O2"]), ("target", {"march": "native", "cpu": "xyz"}),
                        ("dtype", "float64"), ("dredux", "0.2")]:
        keys.add(cache.cache_key({**base, name: other}))
    assert len(keys) == 8


def test_kernel_pickles_as_its_program_and_compiles_where_it_runs():
    g = Genred(unique_formula("pickle"), ALIASES, axis=1)
    kernel = g.kernel("cpu", np.float64)
    x, y, b = inputs()
    state = kernel([x], [y, b], [], 11, 23, 0)
    blob = pickle.dumps(kernel)
    assert b"dredux_block" not in blob and b"ELF" not in blob  # no source, no binary
    clone = pickle.loads(blob)
    assert clone._fn is None  # not compiled until called
    np.testing.assert_array_equal(clone([x], [y, b], [], 11, 23, 0)[0], state[0])
    assert clone.backend == "cpu" and clone.source == kernel.source


def test_kernel_accepts_strided_and_fortran_inputs():
    g = Genred("Exp(-SqDist(x, y)) * b", ALIASES, axis=1)
    gen = np.random.default_rng(3)
    big = gen.uniform(-1, 1, (40, 6))
    x = big[::3, 1:5:2]  # strided view
    y = np.asfortranarray(gen.uniform(-1, 1, (17, 2)))
    b = gen.uniform(0, 1, (34, 1))[::2]
    out = g(x, y, b, backend="cpu")
    ref = (np.exp(-((x[:, None] - y[None]) ** 2).sum(-1)) * b[:, 0]).sum(1, keepdims=True)
    np.testing.assert_allclose(out, ref, rtol=1e-12)


def test_unknown_kernel_option_is_refused():
    g = Genred("SqDist(x, y)", ALIASES[:2], axis=1)
    with pytest.raises(TypeError, match="unknown option"):
        cpp_compile.CppKernel(g.program(np.float32), block=3)
