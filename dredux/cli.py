"""The ``dredux`` command line: run job files, show the installation, manage the cache.

::

    dredux run JOB.toml [--scheduler S] [--backend B] [--output PATH] [--check N]
    dredux info [--json]
    dredux cache clear

``run`` reads a job file (see :mod:`dredux.jobs`), runs it on a Dask scheduler
with a progress bar, and writes the output atomically: into a temporary file
in the output's folder, renamed over the output once complete, so a failed or
interrupted job (Ctrl-C, or SIGTERM from a batch system) leaves no partial file.

Schedulers (``--scheduler``, else the job's ``options.scheduler``, else threads):

* ``threads``: the threaded scheduler in this process (the embedded default);
  ``sync``: one thread, for debugging;
* ``local``: a ``distributed.LocalCluster`` of worker processes for this job
  (``--workers``, ``--threads-per-worker``);
* an address such as ``tcp://host:8786``: a running Dask cluster;
* the path of a scheduler file written by ``dask scheduler --scheduler-file``
  or ``dask-mpi``.

A scheduler file named by a job file's ``options.scheduler`` is relative to the
job file's folder (as every path of a job file), one named by ``--scheduler`` to
the working directory. The scheduler is reached before any input is created.

An existing output is replaced: a file by a file, a zarr store (a folder holding
only zarr metadata and chunks) by a zarr store. A folder that is not a zarr
store (files of the user's) is refused, exit 2: dredux never deletes files it
did not write.

Exit status: 0 done, 1 the job failed or its check did not pass, 2 bad job file,
command line or dredux setting (found before any input is created or the job runs),
130 interrupted (SIGINT), 143 terminated (SIGTERM).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import secrets
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from dask.utils import format_bytes

from ._version import __version__
from ._xp import is_dask
from .errors import ConfigError, DreduxError
from .jobs import GEN_ROWS, JobError, load_inputs, load_job, output_names, remove_path, temp_path

__all__ = ["main", "parse_scheduler", "write_output", "SchedulerSpec"]

_CHECK_RTOL = {"float16": 1e-2, "float32": 1e-4, "float64": 1e-10}
# index outputs (ArgMin...) of a float32 run may differ from the float64
# reference at near-ties; this fraction of the checked rows must agree.
INDEX_AGREEMENT = 0.99


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that cleanup runs as for Ctrl-C."""


def say(message: str) -> None:
    print(message, flush=True)


# ---------------------------------------------------------------------------
# schedulers
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class SchedulerSpec:
    """A ``--scheduler`` value: kind is threads, sync, local, address or file."""

    kind: str
    target: str | None = None


_ADDRESS = re.compile(r"^[A-Za-z0-9_.\-\[\]]+:\d+$")
# schemes whose address is host:port (ucx and inproc have their own forms)
_HOST_PORT_SCHEMES = ("tcp", "tls", "ws", "wss")
_ADDRESS_EXAMPLE = ("an address such as tcp://host:8786 (a host and a port from 1 to 65535; "
                    "an IPv6 host in brackets, tcp://[::1]:8786)")
# how long a scheduler file that is not (yet) valid JSON is read again: the
# scheduler may be writing it right now (dask-mpi, dask scheduler --scheduler-file)
SCHEDULER_FILE_WAIT = 2.0


def _what(text: str, source) -> str:
    return (f"--scheduler {text!r}" if source is None
            else f"job file '{source}': key 'options.scheduler' ({text!r})")


def parse_scheduler(text: str, source=None) -> SchedulerSpec:
    """Classify a ``--scheduler`` value, or the ``options.scheduler`` of the job
    file ``source`` (checked before any data is read). An address is checked to
    be one that distributed can connect to; a relative scheduler file of a job
    file is relative to the job file's folder, as every path of a job file."""
    value = text.strip()
    if value in ("threads", "sync", "local"):
        return SchedulerSpec(value)
    what = _what(text, source)
    if "://" in value or _ADDRESS.match(value):
        check_address(value, what)
        return SchedulerSpec("address", value)
    path = os.path.expanduser(value)
    if source is not None and not os.path.isabs(path):
        path = os.path.join(os.path.dirname(os.fspath(source)), path)
    if os.path.isfile(path):
        return SchedulerSpec("file", path)
    where = f" (no file {path!r} exists)"
    if source is not None and path != value:
        where = (f" (no file {path!r} exists: a relative path in a job file is relative "
                 "to the job file's folder)")
    raise JobError(
        f"{what} is not a scheduler: expected 'threads', 'sync', 'local', "
        f"an address such as tcp://host:8786, or the path of an existing scheduler file{where}")


def check_address(address: str, what: str, connector: bool = False) -> None:
    """JobError naming ``what`` unless ``address`` is a scheduler address that
    distributed understands: a known scheme and, for tcp, tls, ws and wss, a host
    and a port from 1 to 65535; with ``connector``, also one that this
    installation can connect to (ucx:// needs distributed-ucxx)."""
    from distributed.comm.addressing import get_address_host_port, parse_address
    from distributed.comm.registry import backends, get_backend

    def bad(reason: str) -> JobError:
        return JobError(f"{what} is not a scheduler address: {reason}; expected "
                        f"{_ADDRESS_EXAMPLE}, with one of the schemes "
                        f"{', '.join(sorted(set(backends) - {'inproc'}))}. Fix the "
                        "address, or use --scheduler local")

    try:
        scheme, _ = parse_address(address, strict=False)
        get_backend(scheme)
    except (ValueError, TypeError) as exc:
        raise bad(str(exc)) from None
    if scheme == "inproc":
        raise bad(f"{address!r} is an in-process address, which only the process that "
                  "started that scheduler can reach")
    if connector:
        try:  # ucx:// without distributed-ucxx, say (no network is used here)
            get_backend(scheme).get_connector()
        except Exception as exc:
            raise JobError(f"{what}: this installation of distributed cannot connect to "
                           f"{scheme}:// addresses ({type(exc).__name__}: {exc}). For "
                           "ucx://, install distributed-ucxx; or use a tcp:// address of "
                           "the scheduler") from None
    if scheme not in _HOST_PORT_SCHEMES:
        return
    try:
        host, port = get_address_host_port(address)
    except (ValueError, TypeError) as exc:
        raise bad(str(exc)) from None
    if not host:
        raise bad(f"{address!r} has no host")
    if not (isinstance(port, int) and 1 <= port <= 65535):
        raise bad(f"the port of {address!r} is {port!r}")


def read_scheduler_file(spec: SchedulerSpec, what: str) -> str:
    """The address in the scheduler file of ``spec`` (JSON with an "address"
    string, as ``dask scheduler --scheduler-file`` writes it), checked; a
    JobError naming the file and what is wrong otherwise. A file that is not
    valid JSON yet is read again for :data:`SCHEDULER_FILE_WAIT` seconds."""
    path = spec.target
    where = f"{what}: the scheduler file '{path}'"
    expected = ('expected the JSON file that \'dask scheduler --scheduler-file FILE\' '
                'or dask-mpi writes, e.g. {"address": "tcp://10.0.0.1:8786", ...}. '
                "Check the path, or start the scheduler again to rewrite the file")
    deadline = time.monotonic() + SCHEDULER_FILE_WAIT
    while True:
        try:
            with open(path, "rb") as f:
                data = json.loads(f.read(1 << 20).decode("utf-8"))
            break
        except OSError as exc:
            raise JobError(f"{where} cannot be read: {exc.strerror or exc}. "
                           f"{expected}") from None
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
            if time.monotonic() >= deadline:
                raise JobError(f"{where} is not valid JSON ({exc}); {expected}") from None
            time.sleep(0.1)
    if not isinstance(data, dict):
        raise JobError(f"{where} holds a JSON {type(data).__name__}, not an object; "
                       f"{expected}")
    if "address" not in data:
        raise JobError(f"{where} has no key 'address'; {expected}")
    address = data["address"]
    if not isinstance(address, str) or not address.strip():
        raise JobError(f"{where} has 'address' {address!r}; expected a string, "
                       f"{_ADDRESS_EXAMPLE}. Check the path, or start the scheduler "
                       "again to rewrite the file")
    check_address(address.strip(), f"{where}: its address {address!r}", connector=True)
    return address.strip()


class _ClientGet:
    """A Dask scheduler function: runs a graph on ``client`` with its progress bar."""

    def __init__(self, client, progress: bool, interval: str):
        self.client = client
        self.progress = progress
        self.interval = interval

    def __call__(self, dsk, keys, **kwargs):
        from distributed import progress

        futures = self.client.get(dsk, keys, sync=False, **kwargs)
        try:
            if self.progress:
                progress(futures, interval=self.interval)
                print(flush=True)
            return self.client.gather(futures)
        except BaseException:
            self.client.cancel(futures)
            raise


@contextlib.contextmanager
def open_scheduler(spec: SchedulerSpec, *, workers=None, threads_per_worker=None,
                   wait_workers: int = 1, wait_timeout: float = 300.0,
                   progress: bool = True, connect_timeout: float = 10.0,
                   address: str | None = None):
    """Make ``spec`` the Dask scheduler of the enclosed block, with a progress bar;
    yields a description of the scheduler. ``address``: that of a scheduler
    file, already read (:func:`read_scheduler_file`)."""
    import dask

    interactive = sys.stdout.isatty()
    if spec.kind in ("threads", "sync"):
        from dask.diagnostics import ProgressBar

        from .execute import worker_count

        bar = ProgressBar(dt=0.1 if interactive else 0.5) if progress \
            else contextlib.nullcontext()
        with dask.config.set(scheduler=spec.kind), bar:
            yield f"{spec.kind} ({worker_count(spec.kind)} thread(s) in this process)"
        return

    from distributed import Client, LocalCluster

    with contextlib.ExitStack() as stack:
        if spec.kind == "local":
            cluster = stack.enter_context(LocalCluster(
                n_workers=workers, threads_per_worker=threads_per_worker, processes=True))
            client = stack.enter_context(Client(cluster))
        else:
            client = stack.enter_context(_connect(spec, connect_timeout, address))
        if wait_workers > 0:
            try:
                client.wait_for_workers(wait_workers, timeout=wait_timeout)
            except (TimeoutError, asyncio.TimeoutError):  # distinct types on 3.10
                raise DreduxError(
                    f"the scheduler {client.scheduler.address} has "
                    f"{len(client.nthreads())} worker(s) after {wait_timeout:g} s; expected "
                    f"at least {wait_workers} (--wait-workers). Start workers, or lower "
                    "--wait-workers") from None
        nthreads = client.nthreads()
        link = _dashboard_link(client)
        if link:
            say(f"dashboard: {link}")
        stack.enter_context(dask.config.set(
            scheduler=_ClientGet(client, progress, progress_interval(interactive))))
        yield (f"{spec.kind} {client.scheduler.address} ({len(nthreads)} "
               f"worker(s), {sum(nthreads.values())} thread(s))")


def progress_interval(interactive: bool) -> str:
    """How often a cluster's progress bar redraws: ten times a second on a
    terminal, twice into a file (a batch log), which is still often enough for
    a local scheduler's feed to see the end before that scheduler (in this
    process) stops."""
    return "100ms" if interactive else "500ms"


def _connect(spec: SchedulerSpec, timeout: float, address: str | None = None):
    """A Client of the scheduler at ``spec``'s address or scheduler file, or a
    DreduxError naming the setting and what to check when it cannot be reached
    within ``timeout`` seconds."""
    from distributed import Client

    if spec.kind == "address":
        where = f"the scheduler at {spec.target}"
        address = spec.target
    else:
        if address is None:
            address = read_scheduler_file(spec, f"--scheduler {spec.target!r}")
        where = f"the scheduler {address} of the scheduler file {spec.target}"
    try:
        return Client(address, timeout=f"{timeout}s")
    except (OSError, TimeoutError, asyncio.TimeoutError) as exc:
        raise ConfigError(
            f"cannot reach {where} within {timeout:g} s ({type(exc).__name__}); it comes "
            "from --scheduler or the job file's options.scheduler. Check that the "
            "scheduler is running (dask scheduler ...), that the host and port are "
            "right and reachable from here (firewall, the cluster's network), or use "
            "--scheduler local; --connect-timeout sets how long to wait") from None


def _dashboard_link(client) -> str | None:
    try:
        if "dashboard" not in client.scheduler_info().get("services", {}):
            return None
        link = client.dashboard_link
    except Exception:  # a link is a convenience, never a reason to fail
        return None
    import importlib.util

    if importlib.util.find_spec("bokeh") is None:
        link += " (install bokeh to view it here)"
    return link


@contextlib.contextmanager
def terminate_as_interrupt():
    """Turn SIGTERM (batch systems, ``kill``) into an exception while the block
    runs, so that temporary files are removed exactly as for Ctrl-C."""
    def handler(signum, frame):
        raise Terminated(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ---------------------------------------------------------------------------
# output files
# ---------------------------------------------------------------------------

# the names a zarr store holds (v2 and v3 metadata, chunk keys such as 0.1 or
# c/0/1); an existing .zarr output holding anything else is not replaced
_ZARR_METADATA = frozenset({"zarr.json", ".zarray", ".zgroup", ".zattrs", ".zmetadata"})
_ZARR_ROOT = frozenset({"zarr.json", ".zarray", ".zgroup"})
_CHUNK_KEY = re.compile(r"\d+(\.\d+)*")


def foreign_in_zarr(folder: Path) -> str | None:
    """Why the existing folder ``folder`` is not a zarr store that an output may
    replace as a whole (None when it is one, or is empty): no zarr metadata at
    its top, or a file or link that no zarr store holds (a file of the user's)."""
    try:
        top = set(os.listdir(folder))
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})"
    if not top:
        return None  # nothing is lost by replacing it
    if not top & _ZARR_ROOT:
        return "it holds no zarr metadata (zarr.json, .zarray or .zgroup)"
    errors: list[OSError] = []
    for root, dirs, files in os.walk(folder, onerror=errors.append):
        for name in dirs + files:
            entry = Path(root, name)
            if entry.is_symlink():
                return f"it holds the link '{entry}'"
        for name in files:
            if name not in _ZARR_METADATA and not _CHUNK_KEY.fullmatch(name):
                return f"it holds '{Path(root, name)}', which is not part of a zarr store"
    if errors:
        return f"'{errors[0].filename}' in it cannot be read ({errors[0].strerror})"
    return None


def _refuse_foreign_zarr(path: Path, error=JobError) -> None:
    """``error`` unless the existing output folder ``path`` is a zarr store."""
    reason = foreign_in_zarr(path)
    if reason is not None:
        raise error(f"the output '{path}' exists and is a folder that is not a zarr store: "
                    f"{reason}. dredux replaces an existing zarr store as a whole, and "
                    "never deletes files it did not write. Move the folder away or "
                    "choose another output path")


def prepare_output(path: Path) -> list[Path]:
    """Fail before the run if the output cannot be written (folder, kind, rights,
    a folder that is not a zarr store); returns the folders it created for the
    output, outermost first (:func:`remove_created` removes them if still empty)."""
    created = [p for p in reversed(path.parents) if not os.path.lexists(p)]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        remove_created(created)
        raise JobError(f"cannot create the output folder '{path.parent}': {exc}") from None
    try:
        is_zarr = path.suffix == ".zarr"
        if path.exists() and path.is_dir() != is_zarr:
            what = "a folder" if path.is_dir() else "a file"
            raise JobError(f"the output '{path}' exists and is {what}; expected "
                           f"{'a .zarr folder' if is_zarr else 'a file'} to replace (or no "
                           "output yet). Move it away or choose another output path")
        if is_zarr and path.is_dir():
            _refuse_foreign_zarr(path)
        probe = temp_path(path)
        try:
            probe.touch()
        except OSError as exc:
            raise JobError(f"cannot write in the output folder '{path.parent}': "
                           f"{exc}") from None
        probe.unlink()
    except BaseException:
        remove_created(created)
        raise
    return created


def remove_created(folders: list[Path]) -> None:
    """Remove the ``folders`` (innermost first) that are still empty."""
    for folder in reversed(folders):
        with contextlib.suppress(OSError):
            folder.rmdir()


def write_output(path: Path, names: list[str], results: list) -> list:
    """Write the routine's results to ``path`` atomically; return them readable.

    ``.npy``: the single array. ``.npz``: one array per output, named
    ``values`` and ``indices``. ``.zarr``: an array, or a group of ``values``
    and ``indices``; dask results are written by the workers, chunk by chunk.
    On any error or interrupt the temporary file is removed and an existing
    output is left untouched.
    """
    path = Path(path)
    if path.suffix == ".zarr":
        return _write_zarr(path, names, results)
    import dask

    arrays = [np.asarray(a) for a in dask.compute(*results)]
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as f:
            if path.suffix == ".npy":
                np.save(f, arrays[0])
            else:
                np.savez(f, **dict(zip(names, arrays)))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        remove_path(tmp)
        raise
    return arrays


def _write_zarr(path: Path, names: list[str], results: list) -> list:
    import dask
    import dask.array as da

    tmp = temp_path(path)
    single = len(names) == 1
    try:
        stores = []
        for name, result in zip(names, results):
            arr = result if is_dask(result) else da.from_array(
                result, chunks=(GEN_ROWS,) + tuple(result.shape[1:]))
            if len(set(arr.chunks[0][:-1])) > 1 or (
                    len(arr.chunks[0]) > 1 and arr.chunks[0][-1] > arr.chunks[0][0]):
                arr = arr.rechunk({0: max(arr.chunks[0])})  # zarr needs regular chunks
            stores.append(da.to_zarr(arr, str(tmp), component=None if single else name,
                                     compute=False))
        dask.compute(*stores)
        if path.exists():
            # checked again: the run may have lasted hours
            _refuse_foreign_zarr(path, DreduxError)
            old = path.with_name(f".{path.name}.old-{secrets.token_hex(4)}")
            os.replace(path, old)
            os.replace(tmp, path)
            remove_path(old)
        else:
            os.replace(tmp, path)
    except BaseException:
        remove_path(tmp)
        raise
    return [da.from_zarr(str(path), component=None if single else name) for name in names]


# ---------------------------------------------------------------------------
# dredux run
# ---------------------------------------------------------------------------

# a local cluster's worker processes (--workers) and threads per worker
# (--threads-per-worker): at most this many per CPU of this machine (starting
# 100000 processes would never finish)
LOCAL_PER_CPU = 4


def local_limit() -> int:
    """The most --workers, and --threads-per-worker, of ``--scheduler local``."""
    from dask.system import CPU_COUNT

    return LOCAL_PER_CPU * max(1, int(CPU_COUNT or os.cpu_count() or 1))


def check_settings(job, spec: SchedulerSpec) -> str:
    """Check every dredux setting the run reads, before any input is created;
    returns the backend the run resolves to. Bad settings are ConfigErrors
    (exit 2). The compiler, its flags and the kernel cache are checked when
    kernels are built in this machine's processes (threads, sync, local)."""
    from . import config
    from .backends import BackendUnavailable, normalize_backend, resolve_backend
    from .plan import configured_block_size

    config.memory_per_task()
    config.number("max-tasks-per-worker", integer=True, least=1)
    if job.split_every is None:
        config.number("split-every", integer=True, least=2)
    if job.block_size is None:
        config.number("task-seconds", integer=False, least=0, strict=True)
        configured_block_size()
    if job.backend is None:
        try:
            normalize_backend(config.get("backend"))
        except BackendUnavailable:
            raise config.setting_error("backend", config.get("backend"),
                                       "auto, cpu, gpu or numpy (or a KeOps spelling: "
                                       "CPU, GPU, GPU_1D...)") from None
    with _quiet():
        backend = resolve_backend(job.backend)  # an unsplittable dredux.cxx raises here
    if spec.kind not in ("threads", "sync", "local"):
        return backend  # the workers build the kernels, with their own settings
    if backend == "cpu":
        from .compile.cpp import compile_flags, compiler_command

        try:
            command = compiler_command()
        except BackendUnavailable as exc:
            raise ConfigError(str(exc)) from None
        compile_flags(command)  # dredux.march, dredux.cxxflags
    if backend in ("cpu", "gpu"):
        from .compile.cache import backend_dir

        try:
            backend_dir(backend)  # dredux.cache-dir: a folder dredux can use
        except DreduxError as exc:
            raise ConfigError(str(exc)) from None
    return backend


@contextlib.contextmanager
def _quiet():
    """No warnings from the block: the backend's check before the run is silent,
    so that the run's own (a fallback to NumPy...) is the one shown."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def cmd_run(args) -> int:
    job = load_job(args.job, output=args.output, backend=args.backend,
                   scheduler=args.scheduler, check_rows=args.check)
    from_file = args.scheduler is None
    spec = parse_scheduler(job.scheduler or "threads",
                           source=job.source if from_file else None)
    what = _what(job.scheduler or "threads", job.source if from_file else None)
    address = None
    if spec.kind == "file":
        address = read_scheduler_file(spec, what)
    elif spec.kind == "address":
        check_address(spec.target, what, connector=True)
    if spec.kind == "local" and args.workers is not None \
            and args.wait_workers > args.workers:
        raise JobError(f"--wait-workers {args.wait_workers} is more than --workers "
                       f"{args.workers}: a local cluster of {args.workers} worker(s) never "
                       f"has {args.wait_workers}. Lower --wait-workers or raise --workers")
    # every setting is a ConfigError now, not after the inputs are created
    check_settings(job, spec)
    routine = job.routine()
    names = output_names(routine, job.output)
    created = prepare_output(job.output)
    say(f"job {job.source}: {routine.reduction.name} over {'j' if job.axis == 1 else 'i'} "
        f"of {job.formula}")
    written = None
    try:
        with terminate_as_interrupt(), \
                open_scheduler(spec, workers=args.workers,
                               threads_per_worker=args.threads_per_worker,
                               wait_workers=args.wait_workers,
                               wait_timeout=args.wait_timeout,
                               progress=not args.no_progress,
                               connect_timeout=args.connect_timeout,
                               address=address) as described:
            # the scheduler is reached before the inputs are created: an
            # unreachable one fails without leaving generated inputs behind
            inputs = load_inputs(job, routine, log=say)
            for spec_arg, a in zip(routine.signature.args, inputs):
                where = job.inputs[spec_arg.name].path or "inline"
                say(f"  {spec_arg.name}: {tuple(a.shape)} {np.dtype(a.dtype).name} ({where})")
            from .backends import resolve_backend

            backend = resolve_backend(job.backend, inputs)
            say(f"scheduler: {described}; backend: {backend}")
            start = time.perf_counter()
            result = routine(*inputs, **job.call_options())
            results = list(result) if isinstance(result, tuple) else [result]
            written = write_output(job.output, names, results)
            seconds = time.perf_counter() - start
            shapes = ", ".join(f"{n} {tuple(a.shape)} {np.dtype(a.dtype).name}"
                               for n, a in zip(names, written))
            say(f"wrote {job.output}: {shapes} in {seconds:.2f} s")
            ok = True
            if job.check_rows:
                ok = check_output(job, inputs, written, names)
    finally:
        if written is None:
            remove_created(created)  # the output's folders, if still empty
    return 0 if ok else 1


def check_output(job, inputs, outputs, names, seed: int = 0) -> bool:
    """Compare ``job.check_rows`` random output rows with a float64 run of the
    NumPy evaluator on the same rows; print the result; True if within tolerance."""
    import dask

    from .api import Genred
    from .ir import Cat

    reference = Genred(job.formula, list(job.aliases), reduction_op=job.reduction,
                       axis=job.axis, opt_arg=job.opt_arg, formula2=job.formula2)
    out_cat = Cat.I if job.axis == 1 else Cat.J
    m = int(outputs[0].shape[0])
    rows = np.sort(np.random.default_rng(seed).choice(m, size=min(job.check_rows, m),
                                                      replace=False))
    if rows.size == 0:
        say("check: the output has no rows; nothing to compare")
        return True
    # the heading first: the reference's own graph may draw a progress bar
    say(f"checking {rows.size} random output rows against a float64 NumPy evaluation")
    sub = [(a[rows] if spec.cat == out_cat else a).astype(np.float64)
           for spec, a in zip(reference.signature.args, inputs)]
    ref = reference(*sub, backend="numpy")
    refs = list(ref) if isinstance(ref, tuple) else [ref]
    got = [a[rows] for a in outputs]
    refs, got = dask.compute(refs, got)
    dtype = np.dtype(inputs[0].dtype).name if inputs else "float64"
    rtol = job.check_rtol or _CHECK_RTOL.get(dtype, 1e-10)
    ok = True
    for name, g, r in zip(names, got, refs):
        if name == "indices":
            agree = float(np.mean(np.asarray(g) == np.asarray(r)))
            passed = agree >= INDEX_AGREEMENT
            say(f"check {name}: {rows.size} rows, {agree:.2%} equal to the float64 NumPy "
                f"evaluator (need {INDEX_AGREEMENT:.0%}): {'OK' if passed else 'FAILED'}")
        else:
            err = _relative_error(np.asarray(g, dtype=np.float64), np.asarray(r))
            passed = err <= rtol
            say(f"check {name}: {rows.size} rows, max relative error {err:.2e} against the "
                f"float64 NumPy evaluator (rtol {rtol:g}): {'OK' if passed else 'FAILED'}")
        ok = ok and passed
    return ok


def _relative_error(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| / max |want| over finite values; inf if non-finite
    values (NaN, +-inf) do not sit at the same places."""
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    finite = np.isfinite(want) & np.isfinite(got)
    if not np.all(same | finite):
        return float("inf")
    if not finite.any():
        return 0.0
    scale = float(np.abs(want[finite]).max()) or 1.0
    return float(np.abs(got[finite] - want[finite]).max()) / scale


# ---------------------------------------------------------------------------
# dredux info / cache
# ---------------------------------------------------------------------------

_PACKAGES = ("numpy", "dask", "distributed", "filelock", "platformdirs", "zarr",
             "cupy", "dask-cuda", "dask-jobqueue", "dask-mpi", "mpi4py", "bokeh", "pykeops")


def _version(package: str) -> str | None:
    from importlib import metadata

    names = [package] + ([f"cupy-cuda{v}" for v in ("13x", "12x", "11x")]
                         if package == "cupy" else [])
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def _first_line(command: list[str], containing: str = "") -> str | None:
    import subprocess

    if shutil.which(command[0]) is None:
        return None
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = [line for line in (done.stdout + done.stderr).splitlines()
             if line.strip() and containing in line]
    return lines[0].strip() if lines else None


def _gpus() -> list[str]:
    try:
        import cupy

        count = cupy.cuda.runtime.getDeviceCount()
        names = []
        for k in range(count):
            name = cupy.cuda.runtime.getDeviceProperties(k)["name"]
            names.append(name.decode() if isinstance(name, bytes) else str(name))
        return names
    except Exception:  # no CuPy or no driver: ask nvidia-smi
        line = _first_line(["nvidia-smi", "-L"])
        return [line] if line and line.startswith("GPU") else []


def folder_size(folder: Path) -> tuple[int, int]:
    """(files, bytes) under ``folder`` (0, 0 if it does not exist)."""
    files = size = 0
    for root, _, names in os.walk(folder):
        for name in names:
            with contextlib.suppress(OSError):
                size += os.lstat(os.path.join(root, name)).st_size
                files += 1
    return files, size


def collect_info() -> dict:
    """Versions, backends, GPUs, compilers and the kernel cache, as a dict."""
    import importlib.util
    import platform
    import shlex

    from . import config
    from .backends import cpu_available
    from .compile.cpp import cxx_compiler

    gpus = _gpus()
    cxx = cxx_compiler()
    cpp = cpu_available()
    cache = Path(config.cache_dir())
    files, size = folder_size(cache)
    return {
        "dredux": __version__,
        "python": f"{platform.python_version()} ({sys.executable})",
        "platform": platform.platform(),
        "packages": {p: _version(p) for p in _PACKAGES},
        "backends": {"numpy": True, "cpu": cpp, "gpu": bool(gpus) and
                     importlib.util.find_spec("cupy") is not None},
        "default backend": config.get("backend"),
        "gpus": gpus,
        "compilers": {"c++": _first_line([*shlex.split(cxx), "--version"]),
                      "nvcc": _first_line(["nvcc", "--version"], containing="release")},
        "cache": {"folder": str(cache), "files": files, "bytes": size},
    }


def cmd_info(args) -> int:
    info = collect_info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    say(f"dredux {info['dredux']}")
    say(f"python {info['python']}")
    say(f"platform {info['platform']}")
    say("packages:")
    for name, version in info["packages"].items():
        say(f"  {name:14s} {version or '-'}")
    say("backends: " + ", ".join(f"{k} {'yes' if v else 'no'}"
                                 for k, v in info["backends"].items())
        + f" (default: {info['default backend']})")
    say(f"gpus: {', '.join(info['gpus']) if info['gpus'] else 'none found'}")
    for name, line in info["compilers"].items():
        say(f"compiler {name}: {line or 'not found'}")
    cache = info["cache"]
    say(f"cache: {cache['folder']} ({cache['files']} files, "
        f"{format_bytes(cache['bytes'])})")
    return 0


def cmd_cache(args) -> int:
    from . import config
    from .compile import cache

    folder = Path(config.cache_dir())
    if not os.path.lexists(folder):
        say(f"cache {folder} does not exist; nothing to clear")
        return 0
    # only dredux's own entries go; a file, or a folder that is not a dredux cache, is refused
    done = cache.clear(folder)
    say(f"cleared {folder}: {done.files} files, {format_bytes(done.bytes)}")
    if done.busy:
        say(f"left {done.busy} entries being built by another process right now")
    if done.kept:
        say(f"kept {len(done.kept)} entries dredux did not write, e.g. {done.kept[0]}")
    return 0


# ---------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------

def _backend_name(text: str) -> str:
    """``--backend``: every spelling Genred accepts, normalized."""
    from .backends import normalize_backend

    try:
        return normalize_backend(text)
    except DreduxError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _count(minimum: int, maximum=None, why: str = ""):
    """An argparse type: an integer >= ``minimum`` (and <= ``maximum()``)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not an integer >= {minimum}")
        limit = None if maximum is None else maximum()
        if limit is not None and value > limit:
            raise argparse.ArgumentTypeError(
                f"{text!r} is more than {limit}; expected an integer from {minimum} to "
                f"{limit}, the most {why} ({LOCAL_PER_CPU} per CPU, "
                f"{limit // LOCAL_PER_CPU} CPU(s) here). For more, run a cluster (dask "
                "scheduler, dask worker) and pass its address to --scheduler")
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dredux", description="Huge generic reductions on CPUs and GPUs, with Dask.",
        epilog="Documentation: docs/ in the source tree (README.md, docs/formulas.md for "
        "formulas, docs/cluster.md for job files and clusters, docs/design.md), built as "
        "a site by 'sphinx-build docs <folder>'. Same as 'python -m dredux'.")
    parser.add_argument("--version", action="version", version=f"dredux {__version__}")
    parser.add_argument("--traceback", action="store_true",
                        help="on failure, print the full Python traceback")
    # --traceback is accepted after the subcommand too (the errors suggest it);
    # SUPPRESS keeps a subcommand from resetting the value given before it
    anywhere = argparse.ArgumentParser(add_help=False)
    anywhere.add_argument("--traceback", action="store_true", default=argparse.SUPPRESS,
                          help="on failure, print the full Python traceback")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run a job file", parents=[anywhere],
                         description="Run a job file and write its output atomically.")
    run.add_argument("job", help="the job file (TOML)")
    run.add_argument("--scheduler", help="threads (default), sync, local, an address such "
                     "as tcp://host:8786, or a scheduler file")
    run.add_argument("--backend", type=_backend_name, metavar="BACKEND",
                     help="kernel backend: auto, cpu, gpu, numpy, or a KeOps spelling "
                     "(CPU, GPU, GPU_1D...); default: the job's, else dredux.backend")
    run.add_argument("-o", "--output", help="output path (overrides the job's output.path)")
    run.add_argument("--check", type=_count(0), metavar="ROWS",
                     help="compare ROWS random output rows with a float64 NumPy run "
                     "(0: no check; default: the job's check.rows)")
    run.add_argument("--workers", type=_count(1, local_limit, "worker processes of "
                                               "--scheduler local on this machine"),
                     metavar="N", help="worker processes of --scheduler local (at most "
                     f"{LOCAL_PER_CPU} per CPU)")
    run.add_argument("--threads-per-worker",
                     type=_count(1, local_limit, "threads per worker of --scheduler local "
                                 "on this machine"),
                     metavar="N", help="threads per worker of --scheduler local (at most "
                     f"{LOCAL_PER_CPU} per CPU)")
    run.add_argument("--wait-workers", type=_count(0), default=1, metavar="N",
                     help="with a cluster, wait for N workers before planning (default 1)")
    run.add_argument("--connect-timeout", type=_seconds, default=10.0, metavar="SECONDS",
                     help="how long to try to reach the scheduler (default 10)")
    run.add_argument("--wait-timeout", type=_seconds, default=300.0, metavar="SECONDS",
                     help="how long to wait for them (default 300)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.set_defaults(handler=cmd_run)

    info = sub.add_parser("info", help="versions, backends, GPUs, compilers, cache",
                          parents=[anywhere])
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(handler=cmd_info)

    cache = sub.add_parser("cache", help="manage the kernel cache", parents=[anywhere])
    cache_sub = cache.add_subparsers(dest="action", required=True, metavar="ACTION")
    clear = cache_sub.add_parser(
        "clear", help="delete dredux's compiled kernels in the cache folder",
        parents=[anywhere],
        description="Delete the compiled kernels dredux wrote in its cache folder "
        "(DREDUX_CACHE_DIR / dredux.cache-dir), and nothing else: a folder holding "
        "files dredux did not write, without dredux's CACHEDIR.TAG, is refused.")
    clear.set_defaults(handler=cmd_cache)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``dredux`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (JobError, ConfigError) as exc:  # bad job file, option or setting
        print(f"dredux: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, Terminated)
        print(f"dredux: {'terminated' if terminated else 'interrupted'} (outputs are "
              "written atomically: no partial file is left)", file=sys.stderr)
        return 143 if terminated else 130
    except Exception as exc:  # a failed job: say what failed, without a traceback
        if args.traceback:
            raise
        where = "" if isinstance(exc, (DreduxError, OSError)) else " (--traceback shows where)"
        print(f"dredux: error: {type(exc).__name__}: {exc}{where}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
