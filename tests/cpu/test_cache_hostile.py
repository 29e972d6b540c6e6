"""The kernel cache and the compiler setup under hostile conditions.

A full disk, a read-only file system and a compiler that runs out of space are
:class:`~dredux.errors.CacheError` naming the folder, the cause and the fix,
leave neither half an entry nor a temporary folder, and the next call (space
back) builds a good kernel. They are simulated by replacing ``os.replace``,
``tempfile.mkdtemp``, the lock or the compiler (the suite runs as root, where
a read-only ``chmod`` blocks nothing). A bad compiler setup (``DREDUX_MARCH``,
``DREDUX_CXX``, ``DREDUX_CXXFLAGS``) is a ``ConfigError`` naming the setting,
never "a bug in dredux"; temporary folders of killed builds are swept.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import dask
import filelock
import numpy as np
import pytest

from dredux import Genred, errors
from dredux.compile import cpp as cpp_compile
from dredux.errors import CacheError, KernelCompileError

ROOT = Path(__file__).resolve().parents[2]
ALIASES = ["x = Vi(2)", "y = Vj(2)", "b = Vj(1)"]


def unique_formula(tag: str) -> tuple[str, int]:
    """A formula no other test compiles, and its salt."""
    salt = abs(hash((tag, os.getpid(), "hostile"))) % 997 + 2
    return f"Exp(-SqDist(x, y) * {salt}) * b + {salt}", salt


def inputs(seed=0):
    gen = np.random.default_rng(seed)
    return gen.uniform(-1, 1, (11, 2)), gen.uniform(-1, 1, (23, 2)), gen.uniform(0, 1, (23, 1))


def run(formula: str, salt: int, seed=0):
    """Call the formula on the CPU backend and check the result."""
    x, y, b = inputs(seed)
    out = Genred(formula, ALIASES, axis=1)(x, y, b, backend="cpu")
    d = ((x[:, None, :] - y[None]) ** 2).sum(-1)
    ref = (np.exp(-d * salt) * b[None, :, 0] + salt).sum(1, keepdims=True)
    np.testing.assert_allclose(out, ref, rtol=1e-12)


def leftovers(folder: Path) -> list[str]:
    """Artifacts, metadata and temporary folders in the cache (lock files are fine)."""
    sub = folder / "cpu"
    if not sub.exists():
        return []
    return sorted(p.name for p in sub.iterdir() if p.suffix != ".lock")


def assert_storage_message(exc: CacheError, folder: Path, cause: str) -> None:
    text = str(exc)
    assert str(folder) in text, text
    assert cause in text, text
    assert "DREDUX_CACHE_DIR" in text, text
    assert "bug in dredux" not in text


# ------------------------------------------------------------------ full disk

@pytest.mark.parametrize("failing", [".so", ".json"])
def test_a_full_disk_while_placing_the_entry_is_a_cache_error(fresh_cache, monkeypatch, failing):
    """ENOSPC on the artifact's or the metadata's rename: no half entry stays."""
    formula, salt = unique_formula(f"enospc{failing}")
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        if str(dst).endswith(failing) and Path(dst).parent == fresh_cache / "cpu":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(CacheError) as info:
        run(formula, salt)
    assert_storage_message(info.value, fresh_cache / "cpu", "no space left")
    assert "Free some space" in str(info.value)
    assert leftovers(fresh_cache) == []  # neither half an entry nor a temporary folder
    monkeypatch.undo()
    run(formula, salt)  # space is back: a good kernel
    assert len([p for p in leftovers(fresh_cache) if p.endswith(".so")]) == 1


def test_a_full_disk_for_the_temporary_build_folder_is_a_cache_error(fresh_cache, monkeypatch):
    formula, salt = unique_formula("enospc-mkdtemp")
    real = tempfile.mkdtemp

    def mkdtemp(*args, **kwargs):
        if Path(str(kwargs.get("dir", ""))) == fresh_cache / "cpu":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(kwargs["dir"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    with pytest.raises(CacheError) as info:
        run(formula, salt)
    assert_storage_message(info.value, fresh_cache / "cpu", "no space left")
    assert leftovers(fresh_cache) == []
    monkeypatch.undo()
    run(formula, salt)


def fake_compiler(path: Path, message: str) -> Path:
    path.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        if [ "$1" = "--version" ]; then echo "fake c++ 1.0"; exit 0; fi
        echo {message!r} >&2
        exit 1
        """))
    path.chmod(0o755)
    return path


def test_a_compiler_out_of_disk_space_is_a_cache_error_not_a_bug(fresh_cache, tmp_path):
    formula, salt = unique_formula("enospc-ld")
    cxx = fake_compiler(tmp_path / "full-disk-c++",
                        "/usr/bin/ld: final link failed: No space left on device")
    with dask.config.set({"dredux.cxx": str(cxx)}):
        with pytest.raises(CacheError) as info:
            run(formula, salt)
    assert not isinstance(info.value, KernelCompileError)
    assert_storage_message(info.value, fresh_cache / "cpu", "no space left")
    assert "final link failed: No space left on device" in str(info.value)
    assert "TMPDIR" in str(info.value)
    assert leftovers(fresh_cache) == []
    run(formula, salt)  # the real compiler, with space


# ------------------------------------------------------------------ read-only

class ReadOnlyLock:
    """filelock.FileLock on a read-only file system: creating the lock file fails."""

    def __init__(self, path, timeout=None, **kwargs):
        self.path = path

    def acquire(self, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), self.path)

    def release(self, *args, **kwargs):  # pragma: no cover - never acquired
        pass

    def __enter__(self):
        self.acquire()

    def __exit__(self, *exc):  # pragma: no cover
        pass


def test_a_read_only_cache_is_a_cache_error_and_still_loads_built_kernels(fresh_cache,
                                                                          monkeypatch):
    built, built_salt = unique_formula("ro-built")
    run(built, built_salt)
    monkeypatch.setattr(filelock, "FileLock", ReadOnlyLock)
    cpp_compile.clear_memory_cache()
    run(built, built_salt)  # a verified entry needs no write
    formula, salt = unique_formula("ro-new")
    with pytest.raises(CacheError) as info:
        run(formula, salt)
    assert_storage_message(info.value, fresh_cache / "cpu", "read-only")
    assert len([p for p in leftovers(fresh_cache) if p.endswith(".so")]) == 1
    monkeypatch.undo()
    run(formula, salt)


@pytest.mark.skipif(os.getuid() == 0, reason="root writes into a read-only folder anyway; "
                    "the test above simulates it")
def test_a_folder_without_write_permission_is_a_cache_error(fresh_cache):  # pragma: no cover
    formula, salt = unique_formula("chmod")
    (fresh_cache / "cpu").mkdir(parents=True)
    (fresh_cache / "cpu").chmod(0o500)
    try:
        with pytest.raises(CacheError) as info:
            run(formula, salt)
        assert_storage_message(info.value, fresh_cache / "cpu", "permission denied")
    finally:
        (fresh_cache / "cpu").chmod(0o700)
    run(formula, salt)


# ------------------------------------------------------------------ killed builds

def test_temporary_folders_of_killed_builds_are_swept_by_the_next_build(fresh_cache):
    sub = fresh_cache / "cpu"
    sub.mkdir(parents=True)
    old = sub / ".0123456789abcdef-dead_000"  # a build killed two hours ago
    fresh = sub / ".0123456789abcdef-live_000"  # maybe a build running now
    mine = sub / ".not-a-dredux-name"
    for path in (old, fresh, mine):
        path.mkdir()
        (path / "artifact.cpp").write_text("int x;")
    hours_ago = time.time() - 2 * 3600  # older than cache.STALE_SECONDS
    for path in (old, mine):
        os.utime(path, (hours_ago, hours_ago))
    formula, salt = unique_formula("sweep")
    run(formula, salt)
    assert not old.exists()
    assert fresh.is_dir() and mine.is_dir()


# ------------------------------------------------------------------ compiler setup

SETUPS = [
    ({"dredux.march": "bogus"}, "DREDUX_MARCH", "bogus"),
    ({"dredux.march": "native -O0; rm -rf ~"}, "DREDUX_MARCH", "not a -march value"),
    ({"dredux.cxx": "/bin/false"}, "DREDUX_CXX", "/bin/false"),
    ({"dredux.cxx": "'g++"}, "DREDUX_CXX", "cannot be split"),
    ({"dredux.cxxflags": "-DNAME='unbalanced"}, "DREDUX_CXXFLAGS", "cannot be split"),
    ({"dredux.cxxflags": "--no-such-flag-for-dredux"}, "DREDUX_CXXFLAGS",
     "--no-such-flag-for-dredux"),
    ({"dredux.cxxflags": "-include /nonexistent.h"}, "DREDUX_CXXFLAGS", "nonexistent.h"),
    # exit 0 with a file that is not a shared library (preprocessed text, an object file)
    ({"dredux.cxxflags": "-E"}, "DREDUX_CXXFLAGS", "does not load as a shared library"),
    ({"dredux.cxxflags": "-c"}, "DREDUX_CXXFLAGS", "does not load as a shared library"),
    # an empty program builds with them, a kernel does not
    ({"dredux.cxxflags": "-Ddredux_block=42"}, "DREDUX_CXXFLAGS", "break a generated kernel"),
    ({"dredux.cxxflags": "-Dfloat=double"}, "DREDUX_CXXFLAGS", "break a generated kernel"),
]


@pytest.mark.parametrize("setting, key, words", SETUPS,
                         ids=[next(iter(s[0].values())) for s in SETUPS])
def test_a_bad_compiler_setup_is_a_config_error_naming_the_setting(fresh_cache, setting, key,
                                                                   words):
    formula, salt = unique_formula(f"setup {setting}")
    with dask.config.set(setting):
        with pytest.raises(errors.ConfigError) as info:
            run(formula, salt)
    text = str(info.value)
    assert key in text and words in text, text
    assert "bug in dredux" not in text
    assert isinstance(info.value, ValueError)
    assert leftovers(fresh_cache) == []


def test_the_setup_probe_runs_once_per_compiler_and_flags(fresh_cache):
    before = cpp_compile._probe.cache_info()
    with dask.config.set({"dredux.march": "bogus2"}):
        for tag in ("probe-a", "probe-b"):
            with pytest.raises(errors.ConfigError, match="DREDUX_MARCH"):
                run(*unique_formula(tag))
    after = cpp_compile._probe.cache_info()
    # the first failure probes the full setup, then without -march, with -march;
    # the second failure finds the answer cached
    assert after.misses - before.misses <= 3
    assert after.hits - before.hits >= 1


def test_a_bad_setup_from_the_environment_is_reported_with_its_variable(fresh_cache):
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        import numpy as np
        from dredux import ConfigError, Genred
        try:
            Genred("SqDist(x, y)", ["x = Vi(2)", "y = Vj(2)"], axis=1)(
                np.ones((3, 2)), np.zeros((4, 2)), backend="cpu")
        except ConfigError as exc:
            print("ConfigError:", exc)
        """)
    env = dict(os.environ, DREDUX_CACHE_DIR=str(fresh_cache), DREDUX_MARCH="bogus-env")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "ConfigError:" in done.stdout and "DREDUX_MARCH" in done.stdout, done.stdout
    assert "bogus-env" in done.stdout
