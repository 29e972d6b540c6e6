"""A process-safe disk cache of compiled kernels.

Layout: ``<cache dir>/<backend>/<key>.so`` (the artifact) and ``<key>.json``
(its size and sha256), with ``<key>.lock`` serialising builders. The cache
folder is ``dredux.cache-dir`` / ``DREDUX_CACHE_DIR``, else the user cache
folder of platformdirs (:func:`dredux.config.cache_dir`).

* The key is the sha256 of every ingredient of the artifact (source, backend,
  compiler path and version, flags, target CPU, dtype, dredux version), so a
  change of any of them builds a new entry, and cluster nodes with different
  CPUs or compilers sharing a folder never load each other's code.
* An entry is written by building into a private temporary folder next to it,
  then ``os.replace`` (atomic on POSIX and Windows) of the artifact and then
  of its metadata, all under a per-key :class:`filelock.FileLock`: processes
  compiling the same kernel at once build it once, and a crash never leaves a
  half-written file under the final name.
* An entry is verified before use (the metadata parses, size and sha256 of the
  artifact match): a truncated or corrupt entry is rebuilt, never loaded.
* A cache folder or entry owned by another user is refused with
  :class:`~dredux.errors.CacheError`: loading it would run their code.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from .. import config
from ..errors import CacheError

__all__ = ["cache_key", "backend_dir", "fetch_or_build", "build_count",
           "LOCK_TIMEOUT"]

LOCK_TIMEOUT = 900.0  # seconds to wait for another process's build of the same key
_SUFFIX = ".so"
_BUILDS = [0]  # entries this process has built (tests check that racers build once)


def build_count() -> int:
    """How many cache entries this process has built so far."""
    return _BUILDS[0]


def cache_key(ingredients: dict) -> str:
    """sha256 hex digest of the ingredients (a JSON-serialisable dict)."""
    text = json.dumps(ingredients, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _current_uid() -> int | None:
    return os.getuid() if hasattr(os, "getuid") else None


def _owner_uid(path: Path) -> int:
    """The user id owning ``path`` (tests replace this to simulate other users)."""
    return os.stat(path).st_uid


def _check_owner(path: Path, what: str) -> None:
    me = _current_uid()
    if me is None:  # no POSIX ownership (Windows): the user profile protects the folder
        return
    owner = _owner_uid(path)
    if owner != me:
        raise CacheError(
            f"the dredux kernel cache {what} {str(path)!r} is owned by user id {owner}, "
            f"not by you (user id {me}); dredux refuses to load compiled code another "
            "user could have written. Point dredux at a folder of your own: set "
            "DREDUX_CACHE_DIR=/path/you/own (or dask.config 'dredux.cache-dir').")


def backend_dir(backend: str) -> Path:
    """``<cache dir>/<backend>``, created (mode 0700) and checked to be ours."""
    root = Path(config.cache_dir())
    sub = root / backend
    try:
        sub.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise CacheError(
            f"cannot create the dredux kernel cache folder {str(sub)!r}: {exc}. Set "
            "DREDUX_CACHE_DIR (or dask.config 'dredux.cache-dir') to a writable folder."
        ) from exc
    _check_owner(root, "folder")
    _check_owner(sub, "folder")
    return sub


def _paths(folder: Path, key: str) -> tuple[Path, Path, Path]:
    return folder / f"{key}{_SUFFIX}", folder / f"{key}.json", folder / f"{key}.lock"


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _verified(artifact: Path, meta: Path, key: str) -> bool:
    """The entry exists, is ours, and its artifact matches the recorded size and hash."""
    try:
        info = json.loads(meta.read_text())
        stat = os.stat(artifact)
    except (OSError, ValueError):
        return False
    _check_owner(meta, "entry")
    _check_owner(artifact, "entry")
    if not isinstance(info, dict) or info.get("key") != key:
        return False
    if info.get("size") != stat.st_size:
        return False
    return info.get("sha256") == _digest(artifact)


def fetch_or_build(backend: str, key: str, build: Callable[[Path], None],
                   describe: dict | None = None) -> Path:
    """The verified artifact of ``key``, built by ``build(path)`` when missing or bad.

    Parameters
    ----------
    backend : str
        Sub-folder of the cache (``"cpu"``).
    key : str
        :func:`cache_key` of the artifact's ingredients.
    build : callable
        ``build(path)`` writes the artifact at ``path`` (a fresh file name in a
        private temporary folder) or raises; nothing is cached when it raises.
    describe : dict, optional
        Extra JSON-serialisable facts stored in the metadata (for people).
    """
    folder = backend_dir(backend)
    artifact, meta, lock_path = _paths(folder, key)
    if _verified(artifact, meta, key):
        return artifact
    import filelock  # only builders need it (keeps a cached load fast)

    lock = filelock.FileLock(str(lock_path), timeout=LOCK_TIMEOUT)
    try:
        with lock:
            if _verified(artifact, meta, key):  # another process built it meanwhile
                return artifact
            _build_entry(folder, key, build, describe or {})
    except filelock.Timeout as exc:
        raise CacheError(
            f"waited {LOCK_TIMEOUT:.0f} s for the lock {str(lock_path)!r} held by another "
            "process building the same kernel; if no such process is running, delete the "
            "lock file") from exc
    if not _verified(artifact, meta, key):
        raise CacheError(f"the kernel cache entry {str(artifact)!r} failed verification "
                         "right after it was written; is another program modifying the "
                         "cache folder?")
    return artifact


def _build_entry(folder: Path, key: str, build: Callable[[Path], None],
                 describe: dict) -> None:
    artifact, meta, _ = _paths(folder, key)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key[:16]}-", dir=folder))
    try:
        built = tmp / f"artifact{_SUFFIX}"
        build(built)
        info = {"key": key, "size": os.stat(built).st_size, "sha256": _digest(built),
                **describe}
        meta_tmp = tmp / "meta.json"
        meta_tmp.write_text(json.dumps(info, indent=1, sort_keys=True))
        # the metadata goes last: until it lands, the entry reads as missing
        os.replace(built, artifact)
        os.replace(meta_tmp, meta)
        _BUILDS[0] += 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
