"""The execution stage: runs a planned call, in this process or on a cluster.

:func:`run` takes a kernel, a :class:`~dredux.plan.BlockPlan` and the call's
arrays, and returns the result: a plan of one task on in-memory arrays runs
the kernel directly (no scheduler, no graph: the per-call cost of a small
problem); otherwise :mod:`dredux.graph` builds the Dask graph, which is
returned lazily for dask inputs, else computed at once on the active
``distributed.Client`` (or ``scheduler=``) or on local threads. On a client,
big in-memory inputs are scattered to the workers first (row inputs by row
blocks), and a call whose scattered inputs died with a worker sends them
again and runs again. :func:`worker_count` is how many tasks can run at once,
for the planner.
"""

from __future__ import annotations

import math
import operator
import os
import sys
import warnings
from concurrent.futures import CancelledError, Executor

import numpy as np

from ._xp import get_xp, is_cupy, is_dask
from .errors import ConfigError, ShapeError, shown
from .graph import finalize_state

__all__ = ["run", "run_single", "worker_count", "client_for", "client_id",
           "check_scheduler", "memory_available", "check_memory", "check_call_memory"]

_SCATTER_BYTES = 1 << 20  # in-memory inputs above this go to workers by scatter
_SCATTER_PIECES = 256  # at most this many scattered pieces per row input (a key each)
_SCATTER_RETRIES = 2  # runs again after losing the worker that held scattered inputs
# arrays below this size are not checked against the free memory (the check reads
# the system's memory counters: not worth it, nor a risk, for small arrays)
_MEMORY_CHECK_BYTES = 64 << 20
_ADDRESS_SPACE = 1 << 62  # bytes beyond any machine's memory (and NumPy's sizes)


def run_single(kernel, rows: list, cols: list, params: list, m: int, n: int,
               plan=None):
    """The finalized output of one task, run here: all rows and columns, or the
    one task of a block-sparse ``plan``."""
    program = kernel.program
    if plan is None or plan.blocks is None:
        state = kernel(rows, cols, params, m, n, 0)
    elif plan.blocks[0]:
        (c, pattern), = plan.blocks[0]
        c0, c1 = plan.cols[c]
        part = [a[c0:c1] for a in cols]
        if pattern is None:
            state = kernel(rows, part, params, m, c1 - c0, c0)
        else:
            state = kernel(rows, part, params, m, c1 - c0, c0, ranges=pattern)
    else:  # no kept pair
        state = program.reduction.identity(m, program.np_acc_dtype, get_xp(*rows, *cols))
    return finalize_state(program.reduction, state, program.np_dtype)


def run(kernel, plan, rows: list, cols: list, params: list, *, meta_arrays: list,
        lazy: bool, scheduler=None):
    """The result of the call planned by ``plan``.

    Parameters
    ----------
    kernel
        The block kernel (:mod:`dredux.backends`); ``kernel.program`` orders
        ``rows``, ``cols`` and ``params`` (NumPy, CuPy or dask arrays).
    plan : BlockPlan
    meta_arrays : list
        The call's arrays, output-axis ones first: the result's array type
        (NumPy or CuPy) follows them.
    lazy : bool
        Return dask arrays (some input is a dask array).
    scheduler : optional
        A Dask scheduler; None: the active client, else threads.
    """
    if not lazy and plan.n_tasks == 1 and scheduler is None:
        return run_single(kernel, rows, cols, params, sum(plan.rows), plan.cols[-1][1],
                          plan)
    import dask

    client = None if lazy else client_for(scheduler)
    attempts = _SCATTER_RETRIES + 1 if client is not None else 1
    for attempt in range(attempts):
        scattered: list = []
        arrays = _graph_arrays(kernel, plan, rows, cols, params, meta_arrays, client,
                               scattered, lazy)
        if lazy:
            return tuple(arrays) if len(arrays) > 1 else arrays[0]
        devices = local_devices(kernel, scheduler)
        try:
            if devices > 1 or (kernel.backend == "gpu" and client is None
                               and scheduler is None):
                # one task stream per GPU (more threads would only queue on them)
                computed = dask.compute(*arrays, scheduler="threads", num_workers=devices)
            elif scheduler is None and client is None and _num_workers() == 0:
                # num_workers 0 means one thread per core to dredux (_num_workers),
                # which Dask's thread pool would refuse as 0 threads
                computed = dask.compute(*arrays, scheduler=scheduler,
                                        num_workers=os.cpu_count() or 1)
            else:
                computed = dask.compute(*arrays, scheduler=scheduler)
        except CancelledError:
            # Data scattered by a client cannot be recomputed: if the worker
            # holding it died, send the inputs again and run the graph again.
            lost = any(f.status != "finished" for f in scattered)
            if not lost or attempt == attempts - 1:
                raise
            warnings.warn("a worker holding this call's scattered inputs was lost; "
                          "sending them again and recomputing", RuntimeWarning,
                          stacklevel=3)
            continue
        return tuple(computed) if len(computed) > 1 else computed[0]
    raise AssertionError("unreachable")  # pragma: no cover


def _graph_arrays(kernel, plan, rows, cols, params, meta_arrays, client,
                  scattered: list, lazy: bool = False) -> list:
    """The output dask arrays of the plan's graph; big in-memory inputs are
    scattered to ``client``'s workers first (their futures go to ``scattered``).
    ``lazy``: the graph is returned, not computed now (writeable in-memory inputs are
    copied, as ``dask.array.from_array`` does, so that changing them later does not
    change the result)."""
    from .graph import build_graph

    def as_dask(a, chunks, is_row):
        if is_dask(a):
            return a.rechunk({0: chunks, 1: -1}) if is_row else a.rechunk({1: -1})
        if client is not None and a.nbytes > _SCATTER_BYTES:
            # send big in-memory inputs (NumPy, or CuPy to dask-cuda workers)
            # straight to the workers, not through the scheduler inside the
            # graph: row variables by row blocks (spread over the workers;
            # each block task takes its piece and slices its rows), column
            # variables whole (sliced once per column range). Unique keys:
            # a second call must not reuse futures being released.
            xp = get_xp(a)
            if is_row:
                futures, pieces = _scatter_rows(client, a, tuple(plan.rows), xp)
                scattered.extend(futures)
                return pieces
            future = client.scatter(xp.ascontiguousarray(a), hash=False)
            scattered.append(future)
            return _sliced_future(future, a, chunks, xp)
        return _in_memory(a, chunks, copy=lazy)

    row_chunks = tuple(plan.chunks)
    col_chunks = tuple(c1 - c0 for c0, c1 in plan.cols)
    drows = [as_dask(a, row_chunks, True) for a in rows]
    dcols = [as_dask(a, col_chunks, False) for a in cols]
    dparams = [a.rechunk(-1) if is_dask(a) else a for a in params]
    program = kernel.program
    outputs = [(shape, np.int64 if kind == "idx" else program.np_dtype)
               for shape, kind in program.reduction.outputs()]
    return build_graph(program, kernel, plan, drows, dcols, dparams, outputs,
                       _meta_module(meta_arrays), devices=local_devices(kernel, None)
                       if client is None else 1)




def memory_available(gpu: bool = False) -> int | None:
    """Bytes a new array can take here: on the host, the available memory and the
    free swap; on the GPU, the current device's free memory and CuPy's pooled free
    blocks. None when unknown (then nothing is checked)."""
    if gpu:
        try:
            import cupy

            free, _ = cupy.cuda.runtime.memGetInfo()
            return int(free) + int(cupy.get_default_memory_pool().free_bytes())
        except Exception:  # no CuPy or no device: the GPU code says so itself
            return None
    try:
        import psutil

        return int(psutil.virtual_memory().available) + int(psutil.swap_memory().free)
    except Exception:  # pragma: no cover - distributed brings psutil
        pass
    try:  # pragma: no cover
        fields = {}
        with open("/proc/meminfo") as fh:
            for line in fh:
                name, _, rest = line.partition(":")
                fields[name] = int(rest.split()[0]) * 1024
        return fields["MemAvailable"] + fields.get("SwapFree", 0)
    except (OSError, KeyError, ValueError, IndexError):  # pragma: no cover
        return None


def _size(nbytes: int) -> str:
    from dask.utils import format_bytes

    return format_bytes(int(nbytes))


def check_memory(nbytes: int, what: str, fix: str, gpu: bool = False) -> None:
    """ShapeError when ``nbytes`` (an array the call is about to make, described by
    ``what``) cannot fit in the memory available (:func:`memory_available`),
    before anything is allocated; ``fix`` says what to do instead."""
    if nbytes < _MEMORY_CHECK_BYTES:
        return
    limit = memory_available(gpu)
    if limit is None:  # unknown: only what no address space holds
        if nbytes < _ADDRESS_SPACE:
            return
        limit = _ADDRESS_SPACE
    if nbytes <= limit:
        return
    where = "on the GPU" if gpu else "on this machine"
    raise ShapeError(f"{what} would take {_size(nbytes)} ({int(nbytes)} bytes), more than "
                     f"the {_size(limit)} of memory available {where}; {fix}")


def check_call_memory(program, plan, m: int, workers: int, *, result_on_gpu: bool,
                      kernel_on_gpu: bool, client: bool = False) -> None:
    """ShapeError, before any work, when the result of a call of ``program`` over
    ``m`` output rows, with the partial states of the tasks of ``plan`` that run at
    once (where they share its memory: not on a cluster's workers), cannot fit in
    memory."""
    red = program.reduction
    outputs = red.outputs()
    dtype = program.np_dtype
    result = m * sum((8 if kind == "idx" else dtype.itemsize) * math.prod(shape)
                     for shape, kind in outputs)
    rows = max(plan.rows) if plan.rows else 0
    states = min(max(1, workers), plan.n_tasks) * rows * red.state_bytes()
    if result + states < _MEMORY_CHECK_BYTES:
        return  # the usual case: no look at the system's counters
    shapes = " and ".join(f"({m}, {', '.join(map(str, shape))}) "
                          f"{'int64' if kind == 'idx' else dtype.name}"
                          for shape, kind in outputs)
    what = (f"the result of this {red.name} reduction, "
            f"{'arrays' if len(outputs) > 1 else 'an array'} of shape {shapes},")
    fix = ("reduce fewer rows at a time (call on slices of the output axis's variables and "
           "write each result out), or pass dask arrays to get a lazy result that can be "
           "stored chunk by chunk")
    if red.k > 1:
        fix += f"; or ask for fewer neighbours than opt_arg = K = {red.k}"
    if not client and kernel_on_gpu == result_on_gpu and states >= _MEMORY_CHECK_BYTES:
        check_memory(result + states, f"{what} with the partial states of the tasks that "
                     f"run at once ({_size(states)}),", fix, gpu=result_on_gpu)
    else:
        check_memory(result, what, fix, gpu=result_on_gpu)


def _in_memory(a, chunks, copy: bool = False):
    """A dask array over the rows of the in-memory (NumPy or CuPy) array ``a``, in
    ``chunks``: views of ``a`` (``dask.array.from_array`` copies its input whole,
    which doubles the memory of a call, and a broadcast input such as
    ``np.broadcast_to(row, (10**12, 3))`` would take terabytes). With ``copy``, a
    writeable ``a`` is copied first (a read-only one, a broadcast among them, never:
    its own values cannot change)."""
    import uuid

    import dask.array as da
    from dask.base import tokenize

    if copy and getattr(a.flags, "writeable", True):
        a = a.copy()

    contiguous = a.flags.c_contiguous or a.flags.f_contiguous
    # the token hashes the data; a strided view (a broadcast) would be copied to hash it
    token = tokenize(a, chunks) if contiguous else uuid.uuid4().hex
    name = f"array-{token}"  # as dask.array.from_array names its arrays
    layer, start = {}, 0
    for k, size in enumerate(chunks):
        layer[(name, k, 0)] = a[start:start + size]
        start += size
    xp = get_xp(a)
    return da.Array(layer, name, (tuple(chunks), (a.shape[1],)),
                    meta=xp.empty((0, 0), dtype=a.dtype))


def _meta_module(arrays):
    for a in arrays:
        if is_cupy(a) or (is_dask(a) and is_cupy(getattr(a, "_meta", None))):
            return sys.modules["cupy"]
    return np


def _sliced_future(future, like, chunks, xp):
    """A dask array over the rows of a scattered array: one slicing task per chunk."""
    import dask.array as da
    from dask.highlevelgraph import HighLevelGraph

    name = f"dredux-scattered-{future.key}"
    layer, start = {}, 0
    for k, size in enumerate(chunks):
        layer[(name, k, 0)] = (operator.getitem, future, (slice(start, start + size),))
        start += size
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[])
    return da.Array(graph, name, (tuple(chunks), (like.shape[1],)),
                    meta=xp.empty((0, 0), like.dtype))


def _scatter_rows(client, a, chunks, xp):
    """``a``'s rows scattered over the workers in at most ``_SCATTER_PIECES``
    pieces of whole row blocks (each piece costs the scheduler a key, ~0.15 ms):
    the futures, and the RowChunks that the graph takes (one piece per row
    block, or a few blocks per piece)."""
    from .graph import RowChunks

    per_piece = max(1, math.ceil(len(chunks) / _SCATTER_PIECES))
    pieces, refs_of, slices = [], [], []
    start = 0
    for g in range(0, len(chunks), per_piece):
        sizes = chunks[g:g + per_piece]
        stop = start + sum(sizes)
        pieces.append(xp.ascontiguousarray(a[start:stop]))
        at = 0
        for size in sizes:
            refs_of.append(len(pieces) - 1)
            slices.append(None if len(sizes) == 1 else (at, at + size))
            at += size
        start = stop
    futures = client.scatter(pieces, hash=False)
    return futures, RowChunks(tuple(futures[k] for k in refs_of), tuple(slices),
                              f"scattered-{futures[0].key}")


def client_for(scheduler):
    """The distributed Client a computation will use, or None."""
    if hasattr(scheduler, "scatter") and hasattr(scheduler, "nthreads"):
        return scheduler
    if scheduler is None and "distributed" in sys.modules:
        from distributed import default_client

        try:
            return default_client()
        except ValueError:
            return None
    return None


def client_id():
    """An identity of the default ``distributed.Client`` (None without one), cheaply."""
    if "distributed" not in sys.modules:
        return None
    try:
        from distributed.client import _get_global_client
    except ImportError:  # pragma: no cover - a distributed without it
        return id(client_for(None))
    client = _get_global_client()
    return None if client is None else id(client)


_SCHEDULER_NAMES = ("threads", "threading", "sync", "synchronous", "single-threaded",
                    "processes", "multiprocessing")


def check_scheduler(scheduler) -> None:
    """ConfigError unless ``dask.compute`` takes ``scheduler`` (checked before any work)."""
    if scheduler is None or callable(scheduler) or isinstance(scheduler, Executor):
        return
    if "Client" in type(scheduler).__name__ and hasattr(scheduler, "get"):
        return
    if isinstance(scheduler, str):
        name = scheduler.lower()
        if name in _SCHEDULER_NAMES:
            return
        if name in ("distributed", "dask.distributed"):
            if client_for(None) is None:
                raise ConfigError(
                    f"the scheduler= option is {shown(scheduler)}, but no distributed.Client "
                    "is active; create one first (distributed.Client(...)), pass the "
                    "client itself as scheduler=, or use scheduler='threads'")
            return
    raise ConfigError(
        f"the scheduler= option is {shown(scheduler)}, which is not a Dask scheduler; expected "
        "'threads', 'sync', 'processes', 'distributed' (with an active Client), a "
        "distributed.Client, a concurrent.futures Executor or a scheduler function such "
        "as dask.get; or leave it out (the active Client, else threads)")


def local_devices(kernel, scheduler) -> int:
    """GPUs the graph's block tasks are spread over in this process: every GPU
    for a GPU kernel without a ``device_id`` run on local threads (no
    distributed client: dask-cuda gives each worker its own GPU instead)."""
    if getattr(kernel, "backend", "") != "gpu" or getattr(kernel, "device_id", 0) is not None:
        return 1
    if client_for(scheduler) is not None or scheduler not in (None, "threads", "threading"):
        return 1
    from .backends import gpu_count

    return max(1, gpu_count())


def worker_count(scheduler, backend: str | None = None) -> int:
    """Tasks that can run at once, for the planner: the cluster's threads, one
    per GPU for the GPU backend on local threads (one task stream per device),
    else the local threads."""
    check_scheduler(scheduler)
    client = client_for(scheduler)
    if client is None and backend == "gpu" and scheduler in (None, "threads", "threading"):
        from .backends import gpu_count

        return max(1, gpu_count())
    if client is not None:
        try:
            return max(1, sum(client.nthreads().values()))
        except Exception:  # pragma: no cover - a client without workers yet
            return 1
    if scheduler in ("sync", "single-threaded", "synchronous"):
        return 1
    return _num_workers() or os.cpu_count() or 1


def _num_workers() -> int | None:
    """Dask's ``num_workers`` setting (None or 0: one thread per core), checked."""
    import dask

    value = dask.config.get("num_workers", None)
    if value is None:
        return None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 0:
        return int(value)
    raise ConfigError(
        f"the Dask setting num_workers is {value!r}; expected a positive integer, the "
        "threads of the local scheduler (None: one per core). Fix "
        "dask.config.set(num_workers=...), the environment variable DASK_NUM_WORKERS or "
        "the num_workers key of your Dask config")
