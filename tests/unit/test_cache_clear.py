"""``dredux cache clear`` deletes dredux's own entries and nothing else.

The cache folder is tagged (``CACHEDIR.TAG`` with a dredux line) when dredux
creates it; ``clear`` deletes only files named like dredux's entries, keeps
anything else in a tagged folder, refuses an untagged folder holding files
dredux never writes (``DREDUX_CACHE_DIR=~`` by mistake), skips entries another
process is building, and never follows links. No compiler needed: the entries
are files written by hand.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import dask
import filelock
import pytest

from dredux.cli import main
from dredux.compile import cache
from dredux.errors import CacheError

KEY = "0123456789abcdef" * 4
OTHER = "fedcba9876543210" * 4


def tree(root: Path) -> set[str]:
    """Every path under ``root`` (files, folders, links), relative."""
    found = set()
    for top, dirs, names in os.walk(root):
        for name in dirs + names:
            found.add(os.path.relpath(os.path.join(top, name), root))
    return found


def entry(sub: Path, key: str, size: int = 100) -> None:
    sub.mkdir(parents=True, exist_ok=True)
    (sub / f"{key}.so").write_bytes(b"x" * size)
    (sub / f"{key}.json").write_text("{}")
    (sub / f"{key}.lock").write_text("")


def tagged_cache(folder: Path) -> Path:
    """A cache folder made by dredux itself (tagged), with its cpu sub-folder."""
    with dask.config.set({"dredux.cache-dir": str(folder)}):
        sub = cache.backend_dir("cpu")
    assert sub == folder / "cpu"
    return folder


def test_the_cache_folder_is_tagged_when_dredux_creates_it(tmp_path):
    folder = tagged_cache(tmp_path / "new")
    text = (folder / cache.MARKER).read_text()
    # the Cache Directory Tagging spec's signature first (backup tools skip the folder)
    assert text.startswith("Signature: 8a477f597d28d172789f06886806bc55\n")
    assert "dredux" in text
    # an existing empty folder is tagged too
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (tagged_cache(empty) / cache.MARKER).is_file()


def test_a_folder_of_the_user_is_never_tagged(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("export PATH\n")
    with dask.config.set({"dredux.cache-dir": str(home)}):
        cache.backend_dir("cpu")
    assert not (home / cache.MARKER).exists()
    assert tree(home) == {".bashrc", "cpu"}


def test_clear_refuses_a_folder_that_is_not_a_dredux_cache(tmp_path, capsys):
    """DREDUX_CACHE_DIR=~ by mistake: nothing is deleted, the error says how to fix it."""
    home = tmp_path / "home"
    (home / "Documents").mkdir(parents=True)
    (home / "Documents" / "thesis.tex").write_text("precious")
    (home / ".bashrc").write_text("export PATH\n")
    entry(home / "cpu", KEY)  # even next to real dredux entries
    before = tree(home)
    with dask.config.set({"dredux.cache-dir": str(home)}):
        assert main(["cache", "clear"]) == 1
    err = capsys.readouterr().err
    assert "CacheError" in err and str(home) in err
    assert "DREDUX_CACHE_DIR" in err and "dredux.cache-dir" in err
    assert "does not look like a dredux kernel cache" in err
    assert tree(home) == before
    assert (home / "Documents" / "thesis.tex").read_text() == "precious"
    with pytest.raises(CacheError, match="nothing was deleted"):
        cache.clear(home)
    assert tree(home) == before


def test_clear_refuses_an_untagged_folder_with_foreign_files_in_a_backend_folder(tmp_path):
    folder = tmp_path / "c"
    entry(folder / "cpu", KEY)
    (folder / "cpu" / "notes.txt").write_text("mine")
    before = tree(folder)
    with pytest.raises(CacheError, match="notes.txt"):
        cache.clear(folder)
    assert tree(folder) == before


def test_a_cachedir_tag_of_another_program_is_not_dredux_s(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / cache.MARKER).write_text("Signature: 8a477f597d28d172789f06886806bc55\n"
                                       "# created by some other tool\n")
    (folder / "data.bin").write_bytes(b"1")
    before = tree(folder)
    with pytest.raises(CacheError, match="does not look like"):
        cache.clear(folder)
    assert tree(folder) == before


def test_clear_deletes_only_dredux_entries_in_a_tagged_folder(tmp_path, capsys):
    folder = tagged_cache(tmp_path / "c")
    sub = folder / "cpu"
    entry(sub, KEY, 1000)
    entry(sub, OTHER, 500)
    temp = sub / f".{KEY[:16]}-abcd_123"  # a dead build's temporary folder
    temp.mkdir()
    (temp / "artifact.cpp").write_text("int x;")
    outside = tmp_path / "outside.so"
    outside.write_bytes(b"keep")
    (sub / f"{'a' * 64}.so").symlink_to(outside)  # dredux never writes links
    (sub / "notes.txt").write_text("mine")
    (folder / "README").write_text("mine")
    (folder / "gpu").mkdir()
    (folder / "gpu" / "x.cubin").write_bytes(b"?")
    with dask.config.set({"dredux.cache-dir": str(folder)}):
        assert main(["cache", "clear"]) == 0
    out = capsys.readouterr().out
    assert "7 files" in out, out  # 2 x (so, json, lock) and the temporary folder's file
    assert "kept 4 entries dredux did not write" in out, out
    assert tree(folder) == {cache.MARKER, "README", "cpu", "cpu/notes.txt",
                            f"cpu/{'a' * 64}.so", "gpu", "gpu/x.cubin"}
    assert outside.read_bytes() == b"keep"
    # cleared again: nothing of dredux's left, and the folder is still known as a cache
    done = cache.clear(folder)
    assert (done.files, done.bytes, done.busy) == (0, 0, 0) and len(done.kept) == 4


def test_clear_counts_and_empties_a_tagged_cache(tmp_path):
    folder = tagged_cache(tmp_path / "c")
    entry(folder / "cpu", KEY, 1000)
    done = cache.clear(folder)
    assert (done.files, done.bytes, done.busy, done.kept) == (3, 1002, 0, [])
    assert tree(folder) == {cache.MARKER}  # the marker stays: the folder is still ours


def test_a_folder_of_an_older_dredux_is_accepted(tmp_path):
    """No marker, but every file is named like dredux's: made by an older version."""
    folder = tmp_path / "old"
    entry(folder / "cpu", KEY, 10)
    (folder / "cpu" / f".{OTHER[:16]}-zzzzzzzz").mkdir()
    done = cache.clear(folder)
    assert done.files == 3 and done.kept == []
    assert tree(folder) == set()


def test_clear_of_a_missing_or_empty_folder_deletes_nothing(tmp_path):
    assert cache.clear(tmp_path / "absent").files == 0
    assert not (tmp_path / "absent").exists()
    (tmp_path / "empty").mkdir()
    assert cache.clear(tmp_path / "empty").files == 0
    assert (tmp_path / "empty").is_dir()


def test_clear_refuses_a_file(tmp_path, capsys):
    path = tmp_path / "file"
    path.write_text("mine")
    with pytest.raises(CacheError, match="not a folder"):
        cache.clear(path)
    with dask.config.set({"dredux.cache-dir": str(path)}):
        assert main(["cache", "clear"]) == 1
    assert "not a folder" in capsys.readouterr().err
    assert path.read_text() == "mine"


def test_clear_skips_an_entry_being_built(tmp_path):
    folder = tagged_cache(tmp_path / "c")
    sub = folder / "cpu"
    entry(sub, KEY)
    entry(sub, OTHER)
    temp = sub / f".{KEY[:16]}-building"
    temp.mkdir()
    (temp / "artifact.cpp").write_text("int x;")
    held = filelock.FileLock(str(sub / f"{KEY}.lock"))
    with held:  # another builder of KEY
        done = cache.clear(folder)
    assert done.busy == 1 and done.files == 3
    assert tree(sub) == {f"{KEY}.so", f"{KEY}.json", f"{KEY}.lock", temp.name,
                         f"{temp.name}/artifact.cpp"}


def test_stale_temporary_build_folders_are_swept(tmp_path):
    sub = tmp_path / "cpu"
    sub.mkdir()
    old = sub / f".{KEY[:16]}-old_0000"
    fresh = sub / f".{KEY[:16]}-new_0000"
    foreign = sub / ".mine-old"
    for path in (old, fresh, foreign):
        path.mkdir()
        (path / "artifact.cpp").write_text("int x;")
    hours_ago = time.time() - 2 * cache.STALE_SECONDS
    for path in (old, foreign):
        os.utime(path, (hours_ago, hours_ago))
    assert cache.sweep_stale(sub) == 1
    assert not old.exists() and fresh.is_dir() and foreign.is_dir()


@pytest.mark.parametrize("code, cause, fix", [
    (errno.ENOSPC, "no space left on the device", "Free some space"),
    (errno.EDQUOT, "disk quota is exceeded", "Free some space"),
    (errno.EROFS, "read-only", "writable folder"),
    (errno.EACCES, "permission denied", "writable folder"),
])
def test_storage_errors_name_the_folder_the_cause_and_the_fix(tmp_path, code, cause, fix):
    exc = cache.storage_error(tmp_path, OSError(code, os.strerror(code)), "write a kernel")
    text = str(exc)
    assert isinstance(exc, CacheError)
    assert str(tmp_path) in text and cause in text and fix in text, text
    assert "DREDUX_CACHE_DIR" in text and "dredux.cache-dir" in text
