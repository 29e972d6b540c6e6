"""Runs the generated CUDA kernels on the CPU, to test their logic without a GPU.

The generated source is compiled by g++ after a small shim that maps the CUDA
built-ins it uses onto C++: each thread of a block is a POSIX thread,
``__syncthreads()`` is a ``pthread_barrier_t``, shared memory is one static array
(blocks run one after the other) and the maths functions are the C library's.
A stand-in ``cupy`` module (NumPy arrays, this compiler instead of NVRTC)
then lets :class:`dredux.compile.cuda.CudaKernel` run unchanged: its launch
geometry, column splits, merge rounds and argument packing are exercised
together with the kernel's tiles, states and merges.

What this cannot show: NVRTC and the real device (warp scheduling, memory
model, float16 conversions, which use PTX and are not emulated). tests/gpu
covers those on a GPU.
"""

from __future__ import annotations

import atexit
import ctypes
import hashlib
import re
import shutil
import subprocess
import tempfile
import threading
import types
from pathlib import Path

import numpy as np

CXX = shutil.which("g++")

SHIM = r"""
#include <math.h>
#include <pthread.h>
#include <string.h>

struct _emu_dim3 { unsigned x = 1, y = 1, z = 1; };
static thread_local _emu_dim3 threadIdx, blockIdx;
static _emu_dim3 blockDim, gridDim;
static pthread_barrier_t _emu_barrier;
static inline void __syncthreads() { pthread_barrier_wait(&_emu_barrier); }
alignas(64) static double _dr_smem[1 << 16];  // 512 KiB: every block's shared memory

static inline float __int_as_float(int b) { float f; memcpy(&f, &b, 4); return f; }
static inline double __longlong_as_double(long long b) {
    double f; memcpy(&f, &b, 8); return f;
}
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline double rsqrt(double x) { return 1.0 / sqrt(x); }
#define __expf(x) expf(x)
#define __logf(x) logf(x)
#define __sinf(x) sinf(x)
#define __cosf(x) cosf(x)
static inline float __fdividef(float a, float b) { return a / b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline double __dmul_rn(double a, double b) { return a * b; }

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__
#define __align__(n)  /* the emulator's _dr_smem is aligned to 64 bytes */
#define asm(...) ((void)0)  /* float16 conversions are PTX: not emulated */

struct _emu_job { unsigned t, bx, by; void** a; };
"""

# one POSIX thread per CUDA thread of a block; blocks run one after the other
LAUNCHER = r"""
static void* _emu_thread_{name}(void* p) {{
    _emu_job* job = (_emu_job*)p;
    threadIdx = {{job->t, 0, 0}};
    blockIdx = {{job->bx, job->by, 0}};
    void** a = job->a;
    {name}({args});
    return 0;
}}
extern "C" int emu_{name}(unsigned gx, unsigned gy, unsigned bx, void** a) {{
    if (bx > 1024) return 1;
    gridDim = {{gx, gy, 1}};
    blockDim = {{bx, 1, 1}};
    static pthread_t threads[1024];
    static _emu_job jobs[1024];
    for (unsigned by_ = 0; by_ < gy; ++by_) {{
        for (unsigned bx_ = 0; bx_ < gx; ++bx_) {{
            pthread_barrier_init(&_emu_barrier, 0, bx);
            for (unsigned t = 0; t < bx; ++t) {{
                jobs[t] = _emu_job{{t, bx_, by_, a}};
                if (pthread_create(&threads[t], 0, _emu_thread_{name}, &jobs[t])) return 2;
            }}
            for (unsigned t = 0; t < bx; ++t) pthread_join(threads[t], 0);
            pthread_barrier_destroy(&_emu_barrier);
        }}
    }}
    return 0;
}}
"""

_C_TO_NUMPY = {"float": "float32", "double": "float64", "unsigned short": "float16",
               "long long": "int64", "int": "int32"}


def signature(source: str, name: str) -> list[tuple[str, bool]]:
    """(C type, is pointer) of each parameter of kernel ``name``, typedefs resolved."""
    typedefs = dict((alias, ctype.strip()) for ctype, alias in
                    re.findall(r"typedef ([\w ]+) (\w+);", source))
    params = re.search(rf"{name}\(([^)]*)\)", source).group(1)
    out = []
    for param in params.split(","):
        words = param.replace("__restrict__", "").replace("const", "").split()
        text = " ".join(words[:-1])
        pointer = text.endswith("*")
        ctype = text.rstrip("* ").strip()
        out.append((typedefs.get(ctype, ctype), pointer))
    return out


def _unpack(sig) -> str:
    args = []
    for k, (ctype, pointer) in enumerate(sig):
        args.append(f"({ctype}*)a[{k}]" if pointer else f"*({ctype}*)a[{k}]")
    return ", ".join(args)


_BUILD_DIR = Path(tempfile.mkdtemp(prefix="dredux-cuda-emu-"))
atexit.register(shutil.rmtree, _BUILD_DIR, ignore_errors=True)
_BUILT: dict[str, ctypes.CDLL] = {}
_BUILD_LOCK = threading.Lock()
_RUN_LOCK = threading.Lock()  # the shim's grid and shared memory are global


def build(source: str) -> ctypes.CDLL:
    """The emulated kernels of ``source`` as a loaded shared library."""
    key = hashlib.sha256(source.encode()).hexdigest()[:20]
    with _BUILD_LOCK:
        if key in _BUILT:
            return _BUILT[key]
    text = SHIM + source
    for name in ("dredux_reduce", "dredux_merge"):
        text += LAUNCHER.format(name=name, args=_unpack(signature(source, name)))
    src = _BUILD_DIR / f"{key}.cpp"
    lib = _BUILD_DIR / f"{key}.so"
    src.write_text(text)
    proc = subprocess.run([CXX, "-std=c++17", "-O1", "-shared", "-fPIC", "-pthread",
                           "-ffp-contract=off", "-w", str(src), "-o", str(lib)],
                          capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"g++ rejected the emulated kernel:\n{proc.stderr[-4000:]}")
    with _BUILD_LOCK:
        return _BUILT.setdefault(key, ctypes.CDLL(str(lib)))


# ---------------------------------------------------------------------------
# a stand-in for the parts of CuPy that dredux.compile.cuda uses
# ---------------------------------------------------------------------------

class CompileException(Exception):
    pass


class _Kernel:
    THREAD_LIMIT = 256  # the most threads of a launch

    def __init__(self, lib, source: str, name: str, calls: list):
        self.fn = getattr(lib, f"emu_{name}")
        # what the launches are checked against: the kernel's __launch_bounds__
        bound = re.search(rf"__launch_bounds__\((\d+)(?:, \d+)?\)\s*{name}\b", source)
        self.bound = min(self.THREAD_LIMIT, int(bound[1])) if bound else self.THREAD_LIMIT
        self.sig = signature(source, name)
        self.name = name
        self.calls = calls
        self.max_dynamic_shared_size_bytes = 48 << 10

    @property
    def max_threads_per_block(self) -> int:
        """What the host reads, as a device reports it (tests may count it)."""
        return self.bound

    def __call__(self, grid, block, args, shared_mem=0):
        assert len(args) == len(self.sig), (self.name, len(args), len(self.sig))
        assert shared_mem <= self.max_dynamic_shared_size_bytes
        assert shared_mem <= 8 * (1 << 16)
        assert grid[1] <= 65535 and block[0] <= self.bound
        keep, ptrs = [], []
        for k, (arg, (ctype, pointer)) in enumerate(zip(args, self.sig)):
            want = np.dtype(_C_TO_NUMPY[ctype])
            if pointer:
                assert isinstance(arg, np.ndarray) and arg.flags.c_contiguous, (self.name, k)
                assert arg.dtype == want, (self.name, k, arg.dtype, want)
                ptrs.append(arg.ctypes.data)
            else:
                assert isinstance(arg, np.generic) and arg.dtype == want, \
                    (self.name, k, type(arg), want)
                box = np.array(arg)
                keep.append(box)
                ptrs.append(box.ctypes.data)
        array = (ctypes.c_void_p * len(ptrs))(*ptrs)
        self.calls.append((self.name, tuple(grid), tuple(block), shared_mem))
        self.fn.argtypes = [ctypes.c_uint, ctypes.c_uint, ctypes.c_uint,
                            ctypes.POINTER(ctypes.c_void_p)]
        with _RUN_LOCK:
            assert self.fn(grid[0], grid[1], block[0], array) == 0


class _Module:
    def __init__(self, cupy, code: str, options=()):
        self.cupy = cupy
        self.code = code
        self.options = options

    def get_function(self, name):
        lib = build(self.code)
        return _Kernel(lib, self.code, name, self.cupy.calls)


class _Device:
    def __init__(self, device=None):
        self.id = 0 if device is None else int(device)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def fake_cupy(sm_count: int = 2, shared_optin: int = 100 << 10) -> types.ModuleType:
    """A module named ``cupy`` whose arrays are NumPy's and whose kernels run here."""
    cp = types.ModuleType("cupy")
    cp.__version__ = "emulated"
    cp.calls = []
    cp.ndarray = type("ndarray", (), {})  # no array is one: NumPy in, NumPy out
    runtime = types.SimpleNamespace(
        cudaDevAttrMultiProcessorCount=16, cudaDevAttrMaxSharedMemoryPerBlockOptin=97,
        getDeviceCount=lambda: 1, getDevice=lambda: 0,
        deviceGetAttribute=lambda attr, dev: sm_count if attr == 16 else shared_optin)
    cp.cuda = types.SimpleNamespace(
        runtime=runtime, Device=_Device, driver=types.SimpleNamespace(),
        compiler=types.SimpleNamespace(CompileException=CompileException))
    cp.RawModule = lambda code, options=(): _Module(cp, code, options)
    cp.asnumpy = np.asarray
    cp.asarray = np.asarray
    cp.ascontiguousarray = np.ascontiguousarray
    cp.empty = np.empty
    cp.full = np.full
    cp.zeros = np.zeros
    return cp
