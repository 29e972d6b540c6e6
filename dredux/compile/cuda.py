"""The GPU backend's kernel: generated CUDA compiled by NVRTC through CuPy.

:class:`CudaKernel` is the block kernel of the "gpu" backend: a picklable
callable ``kernel(rows, cols, params, m, n, j0) -> state``. It pickles as its
:class:`~dredux.program.Program` and options, never as a binary, and compiles
lazily where it runs: the first call in a process on a device builds a
``cupy.RawModule`` (NVRTC, for that device's architecture; CuPy's own cache
keeps the binaries on disk) and later calls, from any thread, reuse it.

One call is one launch of ``dredux_reduce`` over the task's whole column
range. When the rows alone cannot fill the GPU, the columns are split over
the grid's y dimension; the partial states of the splits are then combined on
the device by ``dredux_merge`` (groups of :data:`MERGE_GROUP`, as many rounds
as needed), with the same merge as :meth:`Reduction.merge`.

Arrays: CuPy inputs give a CuPy state (on their device). NumPy inputs are
copied to the device block by block, as the kernel receives them, and the
state comes back as NumPy, so that NumPy in gives NumPy out through the API
and the Dask graph unchanged.

Nothing here imports CuPy at import time.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field

import numpy as np

from .._xp import is_cupy
from ..backends import Kernel
from ..codegen.cuda import MERGE_KERNEL, REDUCE_KERNEL, THREADS, CudaCode, cuda_code
from ..errors import BackendUnavailable, KernelCompileError, ShapeError
from ..program import Program

__all__ = ["CudaKernel", "Launch", "plan_launch", "require_cupy", "COMPILE_OPTIONS",
           "MERGE_GROUP", "SPLIT_BYTES"]

COMPILE_OPTIONS = ("-std=c++17",)
# the most threads per block of any reduce kernel (its __launch_bounds__; kernels
# with many contractions allow fewer, read from the compiled function)
MAX_THREADS = THREADS
MIN_THREADS = 32
TILE_MAX = 256  # columns per shared-memory tile
TILE_MIN = 32
TILE_BYTES = 16 << 10  # preferred tile size: several blocks fit on one SM
SHARED_DEFAULT = 48 << 10  # dynamic shared memory without opting in
MIN_SPAN = 1024  # fewest columns per split of the column range
SPLIT_BYTES = 128 << 20  # most memory for the partial states of one launch
MAX_SPLITS = 65535  # grid y limit
MERGE_GROUP = 32  # partial states merged per thread and round
MERGE_THREADS = 128

_INSTALL_HINT = ("Install CuPy for your CUDA driver (pip install cupy-cuda12x, or "
                 "cupy-cuda13x for CUDA 13 drivers), or use backend='cpu'.")


def require_cupy():
    """The ``cupy`` module, when CuPy imports and sees a CUDA device.

    Raises
    ------
    BackendUnavailable
        Without CuPy, without a driver or without a device, saying how to fix it.
    """
    try:
        import cupy
    except ImportError as exc:
        raise BackendUnavailable(
            f"backend='gpu' needs CuPy, which is not installed ({exc}). "
            + _INSTALL_HINT) from exc
    if _CHECKED[0] is cupy:  # checked once per process (per module object)
        return cupy
    try:
        count = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as exc:  # CUDARuntimeError: no driver, driver too old...
        raise BackendUnavailable(
            f"backend='gpu' found no usable CUDA device: CuPy {cupy.__version__} reports "
            f"{type(exc).__name__}: {exc}. Check the NVIDIA driver (nvidia-smi), "
            "CUDA_VISIBLE_DEVICES and that the CuPy wheel matches the driver's CUDA "
            "version; or use backend='cpu'.") from exc
    if count < 1:
        raise BackendUnavailable(
            "backend='gpu' found no CUDA device (CuPy sees 0 devices; check "
            "CUDA_VISIBLE_DEVICES and nvidia-smi), or use backend='cpu'.")
    _CHECKED[0] = cupy
    return cupy


_CHECKED: list = [None]  # the cupy module require_cupy found usable


# ---------------------------------------------------------------------------
# launch configuration (pure: tested without a GPU)
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Launch:
    """Geometry of one ``dredux_reduce`` launch.

    Attributes
    ----------
    threads : int
        Threads (output rows) per block.
    tile : int
        Columns per shared-memory tile.
    shared : int
        Bytes of dynamic shared memory per block.
    blocks : int
        Blocks along x: ``ceil(m / threads)``.
    splits : int
        Column ranges along y; each writes a partial state.
    span : int
        Columns per range (a multiple of ``tile``).
    """

    threads: int
    tile: int
    shared: int
    blocks: int
    splits: int
    span: int


def plan_launch(m: int, n: int, column_bytes: int, *, sm_count: int, max_threads: int,
                shared_optin: int, state_bytes: int = 8, blocks_per_sm=None,
                tile: int = 0) -> Launch:
    """Threads, tile and column splits for ``m`` rows and ``n >= 1`` columns.

    Every block does the same work, so the launch runs in waves of
    ``sm_count x resident`` blocks. The columns are split (grid y) so as to
    minimise the number of waves per unit of work: enough blocks to fill the
    device when the rows are few, and a last wave that is not nearly empty
    when they are many. The splits' partial states are bounded by
    :data:`SPLIT_BYTES`.

    Parameters
    ----------
    m, n : int
        Rows and columns of the task (both >= 1).
    column_bytes : int
        Shared memory per tile column (0: no column variable).
    sm_count : int
        Multiprocessors of the device.
    max_threads : int
        Most threads per block the compiled kernel allows (registers).
    shared_optin : int
        Most dynamic shared memory per block after opting in.
    state_bytes : int
        Bytes of one row's partial state.
    blocks_per_sm : callable, optional
        ``(threads, shared) -> resident blocks per SM`` (the occupancy API);
        default ``2048 // threads``.
    tile : int
        Columns per tile fixed by the kernel (its contraction loops keep one
        partial sum per tile column in registers); 0: chosen here.
    """
    cap = max(MIN_THREADS, min(MAX_THREADS, int(max_threads)) // 32 * 32)
    threads = min(cap, max(MIN_THREADS, -(-m // 32) * 32))
    if tile > 0:
        if tile * column_bytes > int(shared_optin):
            raise ShapeError(
                f"this kernel's tile of {tile} columns takes {tile * column_bytes} bytes of "
                f"shared memory, more than the {shared_optin} bytes a block of this GPU can "
                "use; use backend='cpu'")
    elif column_bytes <= 0:
        tile = TILE_MAX
    else:
        # whole multiples of 4 columns: every shared array of the tile then starts
        # on a 16-byte boundary (the kernel rounds its width the same way)
        tile = min(TILE_MAX, TILE_BYTES // column_bytes) // 4 * 4
        if tile < TILE_MIN:
            tile = min(TILE_MIN, SHARED_DEFAULT // column_bytes) // 4 * 4
        if tile < 4:
            tile = min(TILE_MIN, int(shared_optin) // column_bytes) // 4 * 4
        if tile < 4:
            raise ShapeError(
                f"the reduced-axis variables of this formula take {column_bytes} bytes per "
                f"column: 4 columns need more than the {shared_optin} bytes of shared "
                "memory a block of this GPU can use; use backend='cpu' for such wide "
                "variables")
    shared = tile * max(0, column_bytes)
    blocks = -(-m // threads)
    resident = blocks_per_sm(threads, shared) if blocks_per_sm else 2048 // threads
    wave = max(1, int(sm_count) * max(1, int(resident)))
    limit = min(MAX_SPLITS, max(1, n // MIN_SPAN),
                max(1, SPLIT_BYTES // max(1, m * int(state_bytes))))

    def waves_per_split(s: int) -> float:  # time, in units of one split's work
        return -(-blocks * s // wave) / s

    # the best splits fill w whole waves exactly, for some w
    candidates = {1} | {min(limit, max(1, w * wave // blocks)) for w in range(1, 9)}
    splits = min(candidates, key=lambda s: (waves_per_split(s), s))
    span = -(-n // splits)
    span = -(-span // tile) * tile
    splits = -(-n // span)
    return Launch(threads, tile, shared, blocks, splits, span)


# ---------------------------------------------------------------------------
# compiled functions, once per process, source and device
# ---------------------------------------------------------------------------

@dataclass
class _Compiled:
    reduce: object
    merge: object
    sm_count: int
    shared_optin: int
    max_threads: int  # threads per block the compiled reduce kernel allows
    occupancy: dict = field(default_factory=dict)
    shared_set: int = SHARED_DEFAULT
    lock: threading.Lock = field(default_factory=threading.Lock)

    def blocks_per_sm(self, cp, threads: int, shared: int) -> int:
        key = (threads, shared)
        found = self.occupancy.get(key)
        if found is None:
            try:
                found = int(cp.cuda.driver.occupancyMaxActiveBlocksPerMultiprocessor(
                    self.reduce.kernel.ptr, threads, shared))
            except Exception:  # an older CuPy without the binding: a fair guess
                found = max(1, 2048 // threads)
            self.occupancy[key] = found
        return found

    def allow_shared(self, shared: int) -> None:
        """Opt in to more than 48 KiB of dynamic shared memory when a launch needs it."""
        with self.lock:
            if shared > self.shared_set:
                self.reduce.max_dynamic_shared_size_bytes = shared
                self.shared_set = shared


_COMPILED: dict[tuple[str, int], _Compiled] = {}
_COMPILE_LOCK = threading.Lock()


def _compile(cp, source: str, options: tuple[str, ...], device: int) -> _Compiled:
    module = cp.RawModule(code=source, options=options)
    try:
        reduce_fn = module.get_function(REDUCE_KERNEL)
        merge_fn = module.get_function(MERGE_KERNEL)
    except cp.cuda.compiler.CompileException as exc:
        raise KernelCompileError("NVRTC rejected the generated CUDA kernel", source,
                                 str(exc), ("nvrtc", *options)) from exc
    attr = cp.cuda.runtime.deviceGetAttribute
    runtime = cp.cuda.runtime
    return _Compiled(
        reduce_fn, merge_fn,
        sm_count=int(attr(runtime.cudaDevAttrMultiProcessorCount, device)),
        shared_optin=int(attr(runtime.cudaDevAttrMaxSharedMemoryPerBlockOptin, device)),
        max_threads=int(reduce_fn.max_threads_per_block))


# ---------------------------------------------------------------------------
# the kernel
# ---------------------------------------------------------------------------

class CudaKernel(Kernel):
    """Block kernel of the "gpu" backend.

    Parameters
    ----------
    program : dredux.program.Program
    device_id : int, optional
        GPU to run on; default: the device of the CuPy inputs, else the
        current device (a dask-cuda worker's own GPU).
    fast_math : bool
        Fast float32 intrinsics for exp, log, sin, cos and division.
    poison : bool
        Fill the state buffers with NaN (and index -7) before the launch, so
        that a row the kernel fails to write shows; for tests.

    Examples
    --------
    >>> from dredux import Genred
    >>> routine = Genred("Exp(-SqDist(x, y))", ["x = Vi(3)", "y = Vj(3)"], axis=1)
    >>> src = routine.source("gpu")  # no GPU or CuPy needed to see the source
    >>> "dredux_reduce" in src
    True
    """

    backend = "gpu"
    OPTIONS = ("device_id", "fast_math", "poison")

    def __init__(self, program: Program, device_id: int | None = None,
                 fast_math: bool = False, poison: bool = False):
        device_id = None if device_id is None or int(device_id) < 0 else int(device_id)
        # the options as given, defaults left out (the same kernel, the same token)
        super().__init__(program, device_id=device_id, fast_math=bool(fast_math) or None,
                         poison=bool(poison) or None)
        self.device_id = device_id
        self.fast_math = bool(fast_math)
        self.poison = bool(poison)
        self._code: CudaCode | None = None
        self._key: str | None = None
        self.code  # noqa: B018 - rendering checks the kernel's limits before any work

    @property
    def code(self) -> CudaCode:
        if self._code is None:
            self._code = cuda_code(self.program, fast_math=self.fast_math)
        return self._code

    @property
    def source(self) -> str:
        """The generated CUDA source (no GPU or CuPy needed)."""
        return self.code.source

    @property
    def key(self) -> str:
        """sha256 of the source and the compile options."""
        if self._key is None:
            text = "\0".join((self.source, *COMPILE_OPTIONS))
            self._key = hashlib.sha256(text.encode()).hexdigest()
        return self._key

    # ------------------------------------------------------------------ run
    def __call__(self, rows: list, cols: list, params: list, m: int, n: int, j0: int = 0,
                 ranges=None):
        """Partial state of rows [0, m) against columns [0, n) (global offset ``j0``).

        Returns CuPy arrays when any input is a CuPy array, else NumPy arrays,
        laid out as ``program.reduction.fields()`` describes. With ``ranges``
        (a :class:`dredux.ranges.Sparsity` of the block), each thread block
        holds rows of one cluster and walks only that cluster's column ranges.
        """
        cp = require_cupy()
        prog = self.program
        red = prog.reduction
        m, n, j0 = int(m), int(n), int(j0)
        _check_shapes(prog, rows, cols, params, m, n)
        arrays = [*rows, *cols, *params]
        on_device = any(is_cupy(a) for a in arrays)
        if (m == 0 or n == 0) and not on_device:
            return red.identity(m, prog.np_acc_dtype, np)
        device = self._device(cp, arrays)
        with cp.cuda.Device(device):
            if m == 0 or n == 0:  # nothing to launch: the identity, on the device
                return red.identity(m, prog.np_acc_dtype, cp)
            dtype = prog.np_dtype
            inputs = [_to_device(cp, a, dtype, device) for a in arrays]
            state = self._launch(cp, device, inputs, m, n, j0, ranges)
            if not on_device:
                state = tuple(cp.asnumpy(a) for a in state)
        return state

    def _device(self, cp, arrays) -> int:
        if self.device_id is not None:
            count = int(cp.cuda.runtime.getDeviceCount())
            if self.device_id >= count:
                raise BackendUnavailable(
                    f"device_id={self.device_id} names no GPU: this machine has {count} "
                    f"(ids 0 to {count - 1}); pass one of them, or -1 for the current one")
            return self.device_id
        for a in arrays:
            if is_cupy(a):
                return int(a.device.id)
        return int(cp.cuda.runtime.getDevice())

    def _functions(self, cp, device: int) -> _Compiled:
        key = (self.key, device)
        compiled = _COMPILED.get(key)
        if compiled is None:
            with _COMPILE_LOCK:
                compiled = _COMPILED.get(key)
                if compiled is None:
                    compiled = _compile(cp, self.source, COMPILE_OPTIONS, device)
                    _COMPILED[key] = compiled
        return compiled

    def _launch(self, cp, device: int, inputs: list, m: int, n: int, j0: int,
                ranges=None) -> tuple:
        fns = self._functions(cp, device)
        plan = plan_launch(
            m, n, self.code.column_bytes, sm_count=fns.sm_count,
            max_threads=fns.max_threads,
            shared_optin=fns.shared_optin, state_bytes=self.code.state_bytes,
            blocks_per_sm=lambda t, s: fns.blocks_per_sm(cp, t, s), tile=self.code.tile)
        if plan.shared > SHARED_DEFAULT:
            fns.allow_shared(plan.shared)
        scalars = (np.int64(m), np.int64(n), np.int64(j0), np.int64(plan.span),
                   np.int32(plan.tile))
        if ranges is not None:  # one column range; the blocks from the clusters
            table, threads = block_table(ranges, plan.threads)
            parts = self._empty(cp, 1, m)
            fns.reduce((max(1, len(table)), 1, 1), (threads, 1, 1),
                       (*scalars, np.int32(1), cp.asarray(table.ravel()),
                        cp.asarray(np.ascontiguousarray(ranges.cols, np.int64).ravel()
                                   if len(ranges.cols) else np.zeros(2, np.int64)),
                        *inputs, *parts), shared_mem=plan.shared)
            return tuple(a[0] for a in parts)
        parts = self._empty(cp, plan.splits, m)
        unused = cp.zeros(4, dtype=np.int64)
        fns.reduce((plan.blocks, plan.splits, 1), (plan.threads, 1, 1),
                   (*scalars, np.int32(0), unused, unused, *inputs, *parts),
                   shared_mem=plan.shared)
        count = plan.splits
        while count > 1:
            groups = -(-count // MERGE_GROUP)
            merged = self._empty(cp, groups, m)
            fns.merge((-(-m // MERGE_THREADS), groups, 1), (MERGE_THREADS, 1, 1),
                      (np.int64(m), np.int64(count), np.int32(MERGE_GROUP), *parts, *merged))
            parts, count = merged, groups
        return tuple(a[0] for a in parts)

    def _empty(self, cp, splits: int, m: int) -> list:
        """State arrays (splits, m, *shape) of every field."""
        out = []
        acc = self.program.np_acc_dtype
        for _, shape, kind in self.program.reduction.fields():
            dtype = np.int64 if kind == "idx" else acc
            if self.poison:
                out.append(cp.full((splits, m, *shape), -7 if kind == "idx" else np.nan,
                                   dtype=dtype))
            else:
                out.append(cp.empty((splits, m, *shape), dtype=dtype))
        return out


def block_table(ranges, most: int) -> tuple[np.ndarray, int]:
    """The thread blocks of a block-sparse launch: (blocks, 4) int64 rows
    ``[row start, row end, first range, end range]``, each within one cluster
    (clusters of more rows than a block take several), and the threads per
    block: the 75th percentile of the cluster sizes rounded up to a warp, at
    most ``most`` (small clusters do not leave most of a big block idle)."""
    sizes = ranges.rows[:, 1] - ranges.rows[:, 0]
    if not len(sizes):
        return np.zeros((0, 4), np.int64), MIN_THREADS
    typical = int(np.percentile(sizes, 75))
    threads = int(min(most, max(MIN_THREADS, -(-typical // 32) * 32)))
    counts = -(-sizes // threads)
    cluster = np.repeat(np.arange(len(sizes)), counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    start = ranges.rows[cluster, 0] + (np.arange(len(cluster)) - first) * threads
    end = np.minimum(start + threads, ranges.rows[cluster, 1])
    table = np.stack([start, end, ranges.slices[cluster], ranges.slices[cluster + 1]],
                     axis=1).astype(np.int64)
    return np.ascontiguousarray(table), threads


def _to_device(cp, a, dtype, device: int):
    """A C-contiguous CuPy copy of ``a`` in ``dtype`` on ``device`` (no copy if it is one)."""
    if is_cupy(a):
        if int(a.device.id) != device:
            a = cp.asarray(cp.asnumpy(a))  # another GPU's array: through the host
        return cp.ascontiguousarray(a, dtype=dtype)
    return cp.asarray(np.ascontiguousarray(a, dtype=dtype))


def _check_shapes(prog: Program, rows, cols, params, m: int, n: int) -> None:
    """The kernel reads raw memory: refuse arrays that do not match the program."""
    groups = (("row", prog.row_vars, rows, m), ("column", prog.col_vars, cols, n),
              ("parameter", prog.param_vars, params, None))
    for what, variables, arrays, count in groups:
        if len(arrays) != len(variables):
            raise ShapeError(f"the GPU kernel takes {len(variables)} {what} arrays, got "
                             f"{len(arrays)}")
        for v, a in zip(variables, arrays):
            want = (v.dim,) if count is None else (count, v.dim)
            if tuple(a.shape) != want:
                raise ShapeError(f"{what} variable at position {v.params[0]} has shape "
                                 f"{tuple(a.shape)}; the GPU kernel expects {want}")

