"""A process-safe disk cache of compiled kernels.

Layout: ``<cache dir>/<backend>/<key>.so`` (the artifact) and ``<key>.json``
(its size and sha256), with ``<key>.lock`` serialising builders, and
``.<key[:16]>-<random>/`` private temporary build folders. The cache folder is
``dredux.cache-dir`` / ``DREDUX_CACHE_DIR``, else the user cache folder of
platformdirs (:func:`dredux.config.cache_dir`). The GPU backend stores nothing
here (CuPy keeps its own cache).

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
* A full disk, a read-only file system or a folder without write permission
  is a :class:`~dredux.errors.CacheError` naming the folder, the cause and the
  fix; a failed build leaves neither a temporary folder nor half an entry.
* The cache folder gets a ``CACHEDIR.TAG`` marker (the Cache Directory
  Tagging spec, so backup tools skip it, plus a dredux line) when dredux
  creates it, or finds it empty or holding only dredux's entries; a folder
  holding anything else is never tagged.
* :func:`clear` (``dredux cache clear``) deletes only files named like
  dredux's own (the patterns above, in the backend sub-folders), skips
  entries another process is building, and refuses a folder that is neither
  tagged nor made only of dredux's entries (``DREDUX_CACHE_DIR=~`` by mistake).
* A build killed mid-way leaves its temporary folder behind: the first build
  of a process in a backend folder removes such folders older than
  :data:`STALE_SECONDS` (compiles time out long before); cached loads never
  scan the folder.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .. import config
from ..errors import CacheError

__all__ = ["cache_key", "backend_dir", "fetch_or_build", "build_count", "clear",
           "ClearResult", "storage_error", "sweep_stale", "LOCK_TIMEOUT", "STALE_SECONDS",
           "MARKER", "BACKENDS"]

LOCK_TIMEOUT = 900.0  # seconds to wait for another process's build of the same key
STALE_SECONDS = 3600.0  # a temporary build folder this old is a dead build's
BACKENDS = ("cpu", "gpu")  # the sub-folders dredux may create in the cache folder
MARKER = "CACHEDIR.TAG"
_SIGNATURE = "Signature: 8a477f597d28d172789f06886806bc55"  # the spec's first line
_MARKER_LINE = "# This file is a cache directory tag created by dredux"
_MARKER_TEXT = (f"{_SIGNATURE}\n{_MARKER_LINE} (compiled kernels).\n"
                "# For information about cache directory tags see https://bford.info/cachedir/\n")
_SUFFIX = ".so"
_ENTRY = re.compile(r"[0-9a-f]{64}\.(so|json|lock)")
_TEMP = re.compile(r"\.([0-9a-f]{16})-[a-z0-9_]{8}")  # tempfile.mkdtemp's random part
_MARKER_TEMP = re.compile(r"\.CACHEDIR\.TAG-[a-z0-9_]{8}")
_PROBE = re.compile(r"\.filelock-probe-[0-9a-f]{32}")  # filelock's, for our lock files
_BUILDS = [0]  # entries this process has built (tests check that racers build once)
_SWEPT: set[str] = set()  # backend folders whose stale temporary folders went already
_TAG_SEEN: set[str] = set()  # cache folders already tagged, or found not to be taggable
_FIX = "set DREDUX_CACHE_DIR (or dask.config 'dredux.cache-dir') to"


def build_count() -> int:
    """How many cache entries this process has built so far."""
    return _BUILDS[0]


def cache_key(ingredients: dict) -> str:
    """sha256 hex digest of the ingredients (a JSON-serialisable dict)."""
    text = json.dumps(ingredients, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def storage_error(folder, exc: OSError, doing: str, detail: str = "") -> CacheError:
    """The CacheError for ``exc`` raised while ``doing`` something in ``folder``:
    names the folder, the cause (from the errno) and the fix."""
    code = getattr(exc, "errno", None)
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        cause = ("no space left on the device" if code == errno.ENOSPC
                 else "the disk quota is exceeded")
        fix = f"Free some space there, or {_FIX} a writable folder on a disk with space."
    else:
        cause = {errno.EROFS: "the file system is read-only",
                 errno.EACCES: "permission denied",
                 errno.EPERM: "permission denied"}.get(code, exc.strerror or "error")
        fix = f"Fix its permissions, or {_FIX} a writable folder of yours."
    detail = f"\n{detail.strip()}\n" if detail.strip() else " "
    return CacheError(f"cannot {doing} in the dredux kernel cache folder {str(folder)!r}: "
                      f"{cause} ({exc}).{detail}{fix}")


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
    if backend not in BACKENDS:
        raise ValueError(f"unknown cache backend {backend!r}; expected one of {BACKENDS}")
    root = Path(config.cache_dir())
    sub = root / backend
    try:
        sub.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(sub, exc, "create the folder") from exc
    _check_owner(root, "folder")
    _check_owner(sub, "folder")
    _tag(root)
    return sub


# ------------------------------------------------------------------ the marker

def _tagged(root: Path) -> bool:
    """``root`` holds dredux's CACHEDIR.TAG (a regular file, not a link)."""
    path = root / MARKER
    try:
        if path.is_symlink() or not path.is_file():
            return False
        with open(path) as fh:
            head = fh.read(4096)
    except (OSError, UnicodeDecodeError):
        return False
    return head.startswith(_SIGNATURE) and _MARKER_LINE in head


def _tag(root: Path) -> None:
    """Write the marker into ``root`` unless it is there, or ``root`` holds
    anything dredux did not write (a folder of the user's is never tagged)."""
    if str(root) in _TAG_SEEN:
        return
    _TAG_SEEN.add(str(root))  # once per process: the scan below reads whole folders
    try:  # best effort: a read-only cache of built kernels still loads them
        if os.path.lexists(root / MARKER) or _foreign(root):
            return
        fd, tmp = tempfile.mkstemp(prefix=f".{MARKER}-", dir=root)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(_MARKER_TEXT)
            os.replace(tmp, root / MARKER)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError:
        pass


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _is_file(entry: os.DirEntry) -> bool:
    try:
        return entry.is_file(follow_symlinks=False)
    except OSError:
        return False


def _scan(folder: Path) -> list[os.DirEntry]:
    with os.scandir(folder) as it:
        return list(it)


def _ours_in_backend(entry: os.DirEntry) -> bool:
    """``entry`` of a backend folder is named and typed like something dredux writes."""
    name = entry.name
    if _ENTRY.fullmatch(name) or _PROBE.fullmatch(name):
        return _is_file(entry)
    return bool(_TEMP.fullmatch(name)) and _is_dir(entry)


def _foreign(root: Path) -> list[str]:
    """Paths under ``root`` dredux never writes (top level and backend folders)."""
    found = []
    for entry in _scan(root):
        name = entry.name
        if name == MARKER and _is_file(entry) and _tagged(root):
            continue
        if _MARKER_TEMP.fullmatch(name) and _is_file(entry):
            continue
        if name in BACKENDS and _is_dir(entry):
            found += [e.path for e in _scan(Path(entry.path)) if not _ours_in_backend(e)]
            continue
        found.append(entry.path)
    return found


# ------------------------------------------------------------------ entries

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

    Raises
    ------
    CacheError
        When the folder is another user's, or cannot be written (full disk,
        read-only file system, no permission).
    """
    folder = backend_dir(backend)
    artifact, meta, lock_path = _paths(folder, key)
    if _verified(artifact, meta, key):
        return artifact
    import filelock  # only builders need it (keeps a cached load fast)

    # only builds sweep: temporary folders appear only where builds happen
    if str(folder) not in _SWEPT:
        _SWEPT.add(str(folder))
        sweep_stale(folder)
    lock = filelock.FileLock(str(lock_path), timeout=LOCK_TIMEOUT)
    try:
        lock.acquire()
    except filelock.Timeout as exc:
        raise CacheError(
            f"waited {LOCK_TIMEOUT:.0f} s for the lock {str(lock_path)!r} held by another "
            "process building the same kernel; if no such process is running, delete the "
            "lock file") from exc
    except OSError as exc:
        raise storage_error(folder, exc, "create the lock file of a kernel") from exc
    try:
        if _verified(artifact, meta, key):  # another process built it meanwhile
            return artifact
        _build_entry(folder, key, build, describe or {})
    finally:
        lock.release()
    if not _verified(artifact, meta, key):
        raise CacheError(f"the kernel cache entry {str(artifact)!r} failed verification "
                         "right after it was written; is another program modifying the "
                         "cache folder?")
    return artifact


def _build_entry(folder: Path, key: str, build: Callable[[Path], None],
                 describe: dict) -> None:
    artifact, meta, _ = _paths(folder, key)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{key[:16]}-", dir=folder))
    except OSError as exc:
        raise storage_error(folder, exc, "create a temporary build folder") from exc
    placed = False
    try:
        built = tmp / f"artifact{_SUFFIX}"
        build(built)
        info = {"key": key, "size": os.stat(built).st_size, "sha256": _digest(built),
                **describe}
        meta_tmp = tmp / "meta.json"
        meta_tmp.write_text(json.dumps(info, indent=1, sort_keys=True))
        # an old (bad) metadata file goes first, so that no step pairs it with the new
        # artifact; the new metadata goes last: until it lands, the entry reads as missing
        with contextlib.suppress(OSError):
            os.unlink(meta)
        os.replace(built, artifact)
        placed = True
        os.replace(meta_tmp, meta)
        placed = False
        _BUILDS[0] += 1
    except OSError as exc:
        raise storage_error(folder, exc, "write a kernel") from exc
    finally:
        if placed:  # the artifact landed but its metadata did not: no half entry
            with contextlib.suppress(OSError):
                os.unlink(artifact)
        shutil.rmtree(tmp, ignore_errors=True)


def sweep_stale(folder: Path, older_than: float = STALE_SECONDS) -> int:
    """Remove temporary build folders in ``folder`` untouched for ``older_than``
    seconds (left by killed builds); returns how many went."""
    now = time.time()
    gone = 0
    try:
        entries = _scan(folder)
    except OSError:
        return 0
    for entry in entries:
        if not _TEMP.fullmatch(entry.name) or not _is_dir(entry):
            continue
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        if age > older_than:
            shutil.rmtree(entry.path, ignore_errors=True)
            gone += not os.path.lexists(entry.path)
    return gone


# ------------------------------------------------------------------ clear

@dataclass
class ClearResult:
    """What :func:`clear` did.

    Attributes
    ----------
    folder : str
    files, bytes : int
        Files deleted and their total size.
    busy : int
        Entries left because another process is building them.
    kept : list of str
        Paths dredux did not write, left alone (only in a tagged folder).
    """

    folder: str
    files: int = 0
    bytes: int = 0
    busy: int = 0
    kept: list[str] = field(default_factory=list)


def _unlink(path: str, result: ClearResult, count: bool = True) -> None:
    try:
        size = os.lstat(path).st_size
        os.unlink(path)
    except FileNotFoundError:
        return
    if count:
        result.files += 1
        result.bytes += size


def _rmtree(path: str, result: ClearResult) -> None:
    for top, dirs, names in os.walk(path, topdown=False):
        for name in names:
            _unlink(os.path.join(top, name), result)
        for name in dirs:
            full = os.path.join(top, name)
            if os.path.islink(full):  # os.walk lists links to folders as folders
                _unlink(full, result)
            else:
                os.rmdir(full)
    os.rmdir(path)


def clear(folder=None) -> ClearResult:
    """Delete dredux's entries in the cache folder (default: the configured one).

    Deletes only files named like dredux's (``<sha256>.so|.json|.lock`` and
    temporary build folders in the backend sub-folders), skipping the entries
    another process is building; keeps the marker, so the folder stays known.

    Raises
    ------
    CacheError
        When the folder is another user's, is not a folder, or holds anything
        dredux does not write without carrying dredux's ``CACHEDIR.TAG``.
    """
    import filelock

    root = Path(config.cache_dir() if folder is None else folder)
    result = ClearResult(str(root))
    if not os.path.lexists(root):
        return result
    fix = (f"Point DREDUX_CACHE_DIR (or dask.config 'dredux.cache-dir') at the dredux "
           f"kernel cache folder (unset, it is {_default_dir()!r}).")
    if not root.is_dir():
        raise CacheError(f"the dredux kernel cache folder {str(root)!r} is not a folder; "
                         f"nothing was deleted. {fix}")
    me = _current_uid()
    if me is not None and _owner_uid(root) != me:
        raise CacheError(f"the cache folder {str(root)!r} belongs to user id "
                         f"{_owner_uid(root)}, not to you (user id {me}); dredux does not "
                         f"touch it. {fix}")
    try:
        foreign = _foreign(root)
        if foreign and not _tagged(root):
            shown = ", ".join(repr(os.path.relpath(p, root)) for p in foreign[:5])
            more = f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
            raise CacheError(
                f"{str(root)!r} does not look like a dredux kernel cache folder: it has no "
                f"dredux {MARKER} and holds entries dredux never writes ({shown}{more}); "
                f"nothing was deleted. {fix}")
        result.kept = foreign
        for name in BACKENDS:
            sub = root / name
            if sub.is_dir() and not sub.is_symlink():
                _clear_backend(sub, result, filelock)
        for entry in _scan(root):
            if _MARKER_TEMP.fullmatch(entry.name) and _is_file(entry):
                _unlink(entry.path, result)
    except OSError as exc:
        raise storage_error(root, exc, "clear the cache") from exc
    return result


def _default_dir() -> str:
    import platformdirs

    return platformdirs.user_cache_dir("dredux", appauthor=False)


def _clear_backend(sub: Path, result: ClearResult, filelock) -> None:
    entries = [e for e in _scan(sub) if _ours_in_backend(e)]
    keys = sorted({e.name.split(".")[0] for e in entries if _ENTRY.fullmatch(e.name)})
    temps = [e.path for e in entries if _TEMP.fullmatch(e.name)]
    busy = set()  # key prefixes of the entries being built
    for key in keys:
        artifact, meta, lock_path = _paths(sub, key)
        had_lock = os.path.lexists(lock_path)  # else taking the lock creates the file
        lock = filelock.FileLock(str(lock_path), timeout=0)
        try:
            lock.acquire()
        except filelock.Timeout:
            result.busy += 1  # being built right now: its builder owns it
            busy.add(key[:16])
            continue
        try:
            for path in (artifact, meta):
                _unlink(str(path), result)
            # a build of this key holds the lock: no temporary folder of it is live
            for path in [t for t in temps if Path(t).name[1:17] == key[:16]]:
                temps.remove(path)
                _rmtree(path, result)
            _unlink(str(lock_path), result, count=had_lock)
        finally:
            lock.release()
    for path in temps:  # no lock file names them: a dead build's, or a live one's
        prefix = Path(path).name[1:17]
        if any(p.name.startswith(prefix) for p in sub.glob("*.lock")):
            result.busy += prefix not in busy  # else a build that started meanwhile
            continue
        _rmtree(path, result)
    for entry in _scan(sub):
        if _PROBE.fullmatch(entry.name) and _is_file(entry):
            _unlink(entry.path, result)
    with contextlib.suppress(OSError):
        sub.rmdir()  # only when empty
