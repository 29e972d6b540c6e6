"""The GPU backend's generated CUDA: it compiles, and it is built from the tree only.

No GPU is needed here. Every op (the grouped formulas of the catalogue
tests/op_cases.py, through tests/codegen/cuda_cases.py) and every reduction,
in float16, float32 and float64, is rendered and compiled with
``nvcc -arch=sm_90 -cubin`` (the device-side compile: front end, optimiser and
ptxas); the sources include no header, as NVRTC (which CuPy uses at run time)
needs. When a standalone ``libnvrtc`` is found (``DREDUX_NVRTC`` or the usual
places) a sample is compiled by NVRTC itself as well. Running the kernels is
tests/gpu's job.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import pickle
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from dredux import Genred
from dredux.compile.cuda import (
    MAX_SPLITS,
    MAX_THREADS,
    SHARED_DEFAULT,
    SPLIT_BYTES,
    CudaKernel,
    plan_launch,
)
from dredux.errors import ShapeError
from dredux.ir import Op, walk
from dredux.ops import OPS, PRIMITIVES
from dredux.reductions import IDX_NONE, REDUCTIONS
from tests.codegen.cuda_cases import ALIASES, OP_GROUPS, REDUCTION_CASES

ROOT = Path(__file__).resolve().parents[2]
NVCC = shutil.which("nvcc")
ARCH = "sm_90"
DTYPES = ("float16", "float32", "float64")

needs_nvcc = pytest.mark.skipif(
    NVCC is None, reason="nvcc is not on PATH: the CUDA compile checks need the CUDA "
    "toolkit (the CI image has it)")


def compile_all(sources: dict[str, str], folder: Path) -> dict[str, str]:
    """nvcc every source (a few at a time); {name: log} of those that failed."""
    def one(item):
        name, text = item
        src, out = folder / f"{name}.cu", folder / f"{name}.cubin"
        src.write_text(text)
        proc = subprocess.run([NVCC, f"-arch={ARCH}", "-cubin", "-x", "cu", str(src),
                               "-o", str(out)], capture_output=True, text=True)
        ok = proc.returncode == 0 and out.is_file() and out.stat().st_size > 0
        return name, ok, proc.stdout + proc.stderr

    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        results = list(pool.map(one, sources.items()))
    return {name: log[-3000:] for name, ok, log in results if not ok}


def ptxas_reduce_kernel(text: str, folder: Path, name: str, kernel: str = "dredux_reduce") -> dict:
    """``nvcc -cubin -Xptxas -v`` of a source: the stack frame, spill stores,
    spill loads and registers of its ``kernel`` (the reduce kernel)."""
    src, out = folder / f"{name}.cu", folder / f"{name}.cubin"
    src.write_text(text)
    proc = subprocess.run([NVCC, f"-arch={ARCH}", "-cubin", "-Xptxas", "-v", "-x", "cu",
                           str(src), "-o", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    section = proc.stderr.split(f"Compiling entry function '{kernel}'")[1]
    section = section.split("Compiling entry function")[0]
    found = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, "
                      r"(\d+) bytes spill loads.*?Used (\d+) registers", section, re.S)
    assert found, section
    return dict(zip(("stack", "spill_stores", "spill_loads", "registers"),
                    map(int, found.groups())))


def ptxas_reduce_kernels(jobs: dict, folder: Path) -> dict:
    """:func:`ptxas_reduce_kernel` of each source of ``jobs`` ({(name, d): source}),
    in parallel."""
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        return dict(zip(jobs, pool.map(
            lambda item: ptxas_reduce_kernel(item[1], folder, f"{item[0][0]}{item[0][1]}"),
            jobs.items())))


def routine(formula, reduction_op="Sum", formula2=None, opt_arg=None, aliases=ALIASES,
            **kwargs) -> Genred:
    return Genred(formula, list(aliases), reduction_op=reduction_op, axis=1,
                  formula2=formula2, opt_arg=opt_arg, **kwargs)


def group_routine(name) -> Genred:
    """The Sum over j of op group ``name`` (a Concat of every case of its ops)."""
    return OP_GROUPS[name].routine(axis=1)


def reduction_routine(name) -> Genred:
    formula, formula2, opt_arg = REDUCTION_CASES[name]
    return routine(formula, name, formula2, opt_arg)


# ---------------------------------------------------------------------------
# coverage of the cases
# ---------------------------------------------------------------------------

def test_op_groups_cover_every_op():
    seen = set()
    for name in OP_GROUPS:
        for f in group_routine(name).program("float32").formulas:
            seen |= {node.op for node in walk(f)}
    missing = set(PRIMITIVES) - seen
    assert not missing, f"no CUDA test case uses {sorted(op.name for op in missing)}"


def test_reduction_cases_cover_every_reduction():
    assert set(REDUCTION_CASES) == set(REDUCTIONS)


# ---------------------------------------------------------------------------
# nvcc
# ---------------------------------------------------------------------------

@needs_nvcc
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_op_and_reduction_compiles(dtype, tmp_path):
    sources = {f"ops_{name}": group_routine(name).source("gpu", dtype) for name in OP_GROUPS}
    sources |= {f"red_{name}": reduction_routine(name).source("gpu", dtype)
                for name in REDUCTIONS}
    failed = compile_all(sources, tmp_path)
    assert not failed, "\n\n".join(f"{name}:\n{log}" for name, log in failed.items())


def _variants() -> dict[str, str]:
    """Sources of the options and shapes that change the generated code."""
    gauss = "Exp(-SqDist(x, y)) * b"
    out = {}
    for scheme in ("direct_sum", "block_sum", "kahan_scheme"):
        out[f"sum_{scheme}"] = routine("x * y + v", sum_scheme=scheme).source("gpu")
        out[f"lse_{scheme}"] = routine("-SqDist(x, y)", "LogSumExp", formula2="v",
                                       sum_scheme=scheme).source("gpu", "float64")
    out["acc64"] = routine("x * y", dtype_acc="float64").source("gpu", "float32")
    out["acc16"] = routine("x * y", dtype_acc="float16").source("gpu", "float16")
    out["argkmin_acc16"] = routine("x * y", "ArgKMin", opt_arg=2,
                                   dtype_acc="float16").source("gpu", "float16")
    fast = routine("Sum(Exp(x - y) / v + Log(v) * Sin(x) - Cos(y) + XLogX(v) + SinXDivX(x))",
                   "LogSumExpWeight", formula2="SqDist(x, y)", use_fast_math=True)
    fast_src = fast.source("gpu", "float32")
    assert "_dr_fast_exp(" in fast_src
    out["fast_math"] = fast_src
    out["axis0"] = Genred("x * y + v", ALIASES, axis=0).source("gpu")
    for d in (64, 256):
        out[f"gauss{d}"] = routine(gauss, aliases=[f"x = Vi({d})", f"y = Vj({d})",
                                                   "b = Vj(1)"]).source("gpu")
    out["wide_out"] = routine("Exp(-SqDist(x, y)) * b",
                              aliases=["x = Vi(64)", "y = Vj(64)", "b = Vj(200)"],
                              reduction_op="Max_ArgMax").source("gpu")
    out["wide_kmin"] = routine("x - y", "KMin_ArgKMin", opt_arg=7,
                               aliases=["x = Vi(20)", "y = Vj(20)"]).source("gpu")
    out["rows_only"] = routine("Exp(x) * u").source("gpu")
    out["cols_only"] = routine("Exp(y) * v").source("gpu")
    out["params_only"] = routine("p * 2 + 1", aliases=["x = Vi(1)", "y = Vj(1)",
                                                       "p = Pm(1)"]).source("gpu")
    out["wide_param"] = routine("MatVecMult(A, x - y)",
                                aliases=["x = Vi(20)", "y = Vj(20)", "A = Pm(400)"]
                                ).source("gpu", "float64")
    out["grad"] = routine("Grad(Exp(-SqDist(x, y)) * v, x, e)",
                          aliases=["x = Vi(3)", "y = Vj(3)", "v = Vj(1)", "e = Vi(1)"]
                          ).source("gpu", "float64")
    return out


@needs_nvcc
def test_variants_compile(tmp_path):
    failed = compile_all(_variants(), tmp_path)
    assert not failed, "\n\n".join(f"{name}:\n{log}" for name, log in failed.items())


# ---------------------------------------------------------------------------
# NVRTC itself, when a standalone library is at hand
# ---------------------------------------------------------------------------

def _find_nvrtc() -> str | None:
    if os.environ.get("DREDUX_NVRTC"):
        return os.environ["DREDUX_NVRTC"]
    found = ctypes.util.find_library("nvrtc")
    if found:
        return found
    for base in (os.environ.get("CUDA_HOME"), "/usr/local/cuda"):
        if base:
            for lib in sorted(Path(base, "lib64").glob("libnvrtc.so*")):
                return str(lib)
    return None


def _nvrtc_compile(lib, source: str) -> tuple[int, str]:
    prog = ctypes.c_void_p()
    assert lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), b"kernel.cu", 0,
                                  None, None) == 0
    # the options CuPy passes for an sm_90 device
    opts = [b"-arch=sm_90", b"-std=c++17", b"-ftz=true"]
    rc = lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
    size = ctypes.c_size_t()
    lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    log = ctypes.create_string_buffer(max(1, size.value))
    lib.nvrtcGetProgramLog(prog, log)
    lib.nvrtcDestroyProgram(ctypes.byref(prog))
    return rc, log.value.decode(errors="replace")


def test_nvrtc_compiles_a_sample():
    path = _find_nvrtc()
    if path is None:
        pytest.skip("no standalone libnvrtc found (set DREDUX_NVRTC to its path); the "
                    "nvcc tests above still compile every source")
    lib = ctypes.CDLL(path)
    sources = {name: reduction_routine(name).source("gpu", dtype)
               for name, dtype in (("Sum", "float16"), ("ArgKMin", "float32"),
                                   ("SumSoftMaxWeight", "float64"),
                                   ("Min_ArgMin", "float32"))}
    sources |= {name: group_routine(name).source("gpu", "float32") for name in OP_GROUPS}
    sources["fast"] = routine("Sum(Exp(x - y) / v)", "LogSumExp",
                              use_fast_math=True).source("gpu", "float32")
    for name, src in sources.items():
        rc, log = _nvrtc_compile(lib, src)
        assert rc == 0, f"NVRTC rejected {name}:\n{log}"
        assert "warning" not in log.lower(), f"NVRTC warns on {name}:\n{log}"


# ---------------------------------------------------------------------------
# the source itself
# ---------------------------------------------------------------------------

def test_source_needs_no_cupy():
    code = (
        "import sys\n"
        "sys.modules['cupy'] = None  # any import of cupy fails\n"
        "import dredux\n"
        "from dredux import Genred\n"
        "g = Genred('Exp(-SqDist(x, y))', ['x = Vi(3)', 'y = Vj(3)'], axis=1)\n"
        "src = g.source('gpu')\n"
        "assert 'dredux_reduce' in src and 'dredux_merge' in src\n"
        "print('ok')\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_importing_dredux_does_not_import_cupy():
    code = "import sys, dredux\nprint('cupy' in sys.modules)\n"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_source_is_self_contained_and_deterministic():
    g = reduction_routine("SumSoftMaxWeight")
    src = g.source("gpu", "float16")
    assert "#include" not in src
    assert "@@" not in src  # every template slot filled
    assert src == reduction_routine("SumSoftMaxWeight").source("gpu", "float16")
    assert 'extern "C" __global__' in src


def test_no_index_constant_matches_the_host():
    text = (ROOT / "kernels" / "cuda" / "math.cuh").read_text()
    assert f"#define _DR_IDX_NONE {IDX_NONE}LL" in text


def test_fast_math_only_when_asked_and_only_for_float32():
    def kernel_body(src):  # the generated code, after the fixed helpers
        return src.split("dredux_reduce(")[1]

    formula = "Exp(x - y) + Log(v) + Sin(x) + Cos(y) + x / v"
    intrinsics = ("_dr_fast_exp(", "__logf(", "__sinf(", "__cosf(", "__fdividef(")
    plain = routine(formula).source("gpu", "float32")
    assert not any(f in kernel_body(plain) for f in intrinsics)
    assert "#define _DR_FAST_MATH 0" in plain
    fast = routine(formula, use_fast_math=True)
    src32 = fast.source("gpu", "float32")
    for intrinsic in intrinsics:
        assert intrinsic in kernel_body(src32)
    assert "#define _DR_FAST_MATH 1" in src32
    src64 = fast.source("gpu", "float64")
    assert "#define _DR_FAST_MATH 0" in src64
    assert not any(f in kernel_body(src64) for f in intrinsics)


def test_fast_math_spellings_are_elementwise_float_intrinsics():
    """Only elementwise records carry a fast spelling, and it calls CUDA's float32
    intrinsics (the C++ backend never sees it)."""
    fast = {op for op, record in OPS.items() if record.fast}
    assert fast == {Op.EXP, Op.LOG, Op.SIN, Op.COS, Op.DIV, Op.XLOGX, Op.SINXDIVX}
    assert all(OPS[op].elementwise and ("__" in OPS[op].fast or "_dr_fast_" in OPS[op].fast)
               for op in fast)


@needs_nvcc
def test_fast_math_exp_is_the_flush_to_zero_hardware_exp2(tmp_path):
    """use_fast_math: every exp is one multiply and ex2.approx.ftz (no handling
    of subnormal results, which __expf without -ftz adds); the precise path is
    CUDA's expf (a range reduction before the same instruction)."""
    formula = "Exp(-SqDist(x, y)) * b"
    aliases = ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)"]
    ptx = {}
    for name, fast in (("fast", True), ("precise", False)):
        src = Genred(formula, aliases, axis=1, use_fast_math=fast).source("gpu", "float32")
        (tmp_path / f"{name}.cu").write_text(src)
        subprocess.run([NVCC, f"-arch={ARCH}", "-ptx", str(tmp_path / f"{name}.cu"), "-o",
                        str(tmp_path / f"{name}.ptx")], check=True, capture_output=True)
        ptx[name] = (tmp_path / f"{name}.ptx").read_text()
    assert "ex2.approx.ftz.f32" in ptx["fast"]
    assert "ex2.approx.f32" not in ptx["fast"]  # the non-ftz form of __expf
    assert "ex2.approx" in ptx["precise"] and "fma.rm.f32" in ptx["precise"]


def test_wide_chains_are_fused_into_one_loop():
    g = routine("Exp(-SqDist(x, y)) * b", aliases=["x = Vi(256)", "y = Vj(256)",
                                                   "b = Vj(1)"])
    src = g.source("gpu")
    pair = src[src.index("_st.begin_tile();"):src.index("_st.end_tile();")]
    assert "[256]" not in pair  # no per-pair array of 256 values (local memory)
    assert "for (int" in pair  # a loop, not 256 unrolled terms
    assert pair.count("\n") < 40


def test_row_only_parts_are_hoisted_out_of_the_column_loop():
    g = routine("Exp(Sum(x * x)) * y")
    src = g.source("gpu")
    before = src[:src.index("for (long long _jt")]
    assert "_dr_exp(" in before.split("dredux_reduce(")[1]


def test_column_only_parts_are_computed_once_per_tile_column():
    """Square(p - a) of the seed formula: computed for each column when the tile
    is staged (into shared memory), not for every pair."""
    g = Genred("Square(p - a) * Exp(x + y)", ["x = Vi(3)", "y = Vj(3)", "a = Vj(1)",
                                              "p = Pm(1)"], axis=1)
    for dtype in DTYPES:
        src = g.source("gpu", dtype)
        pair = src[src.index("_st.begin_tile();"):src.index("_st.end_tile();")]
        staging = src[src.index("for (long long _jt"):src.index("_st.begin_tile();")]
        assert "_rp0[0] - _sy1[_jj]" in staging, dtype
        assert "_sy1" not in pair and "_sh0[_jj]" in pair, dtype


def test_shared_arrays_start_on_16_byte_boundaries():
    """Every shared array starts at a multiple of 4 tile columns (the host's tiles
    are multiples of 4 columns), so the compiler emits 128-bit shared loads for
    a 4-wide column variable that is not the first array."""
    for formula, aliases in (("(x|y) * b", ["x = Vi(4)", "b = Vj(1)", "y = Vj(4)"]),
                             ("Square(p - a) * Exp(x + y)",
                              ["x = Vi(3)", "y = Vj(3)", "a = Vj(1)", "p = Pm(1)"])):
        src = Genred(formula, aliases, axis=1).source("gpu")
        offsets = re.findall(r"_dr_sm \+ ([^;]+);", src)
        assert offsets and all(re.fullmatch(r"_w \* \d+", o) for o in offsets), offsets
        assert "const long long _w = ((long long)_tile + 3) & ~3LL;" in src
    for column_bytes in (4, 12, 16, 20, 28, 1028, 40_000):
        plan = plan_launch(1000, 10**6, column_bytes, sm_count=132, max_threads=256,
                           shared_optin=227 << 10)
        assert plan.tile % 4 == 0, (column_bytes, plan.tile)


@needs_nvcc
def test_aligned_shared_arrays_give_vector_loads(tmp_path):
    src = Genred("(x|y) * b", ["x = Vi(4)", "b = Vj(1)", "y = Vj(4)"],
                 axis=1).source("gpu", "float32")
    unaligned = src.replace("((long long)_tile + 3) & ~3LL", "(long long)_tile")
    counts = []
    for name, text in (("aligned", src), ("unaligned", unaligned)):
        (tmp_path / f"{name}.cu").write_text(text)
        subprocess.run([NVCC, f"-arch={ARCH}", "-ptx", str(tmp_path / f"{name}.cu"), "-o",
                        str(tmp_path / f"{name}.ptx")], check=True, capture_output=True)
        counts.append((tmp_path / f"{name}.ptx").read_text().count("ld.shared.v4.f32"))
    assert counts[0] >= counts[1] + 4, counts  # y's four components, per unrolled column


def test_generated_identifiers_only():
    # alias names never reach the code: only positions do
    g = Genred("Exp(-SqDist(alpha_i, beta_j)) * gamma_j",
               ["alpha_i = Vi(3)", "beta_j = Vj(3)", "gamma_j = Vj(1)"], axis=1)
    src = g.source("gpu")
    body = src.split("dredux_reduce(")[1]
    for name in ("alpha_i", "beta_j", "gamma_j"):
        assert name not in body


def test_kernel_pickles_as_program_and_options():
    g = reduction_routine("ArgKMin")
    kernel = g.kernel("gpu", "float32", fast_math=True, device_id=0)
    assert isinstance(kernel, CudaKernel) and kernel.backend == "gpu"
    src = kernel.source
    data = pickle.dumps(kernel)
    assert b"dredux_reduce" not in data  # neither source nor binary travels
    back = pickle.loads(data)
    assert back.program == kernel.program
    assert (back.device_id, back.fast_math) == (0, True)
    assert back.source == src and back.key == kernel.key


# ---------------------------------------------------------------------------
# launch geometry
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("m", [1, 31, 32, 33, 255, 256, 257, 10_000, 10**7])
@pytest.mark.parametrize("n", [1, 1023, 1024, 1025, 10**6, 10**9])
@pytest.mark.parametrize("column_bytes", [0, 16, 1028, 40_000])
def test_launch_plan_covers_the_columns(m, n, column_bytes):
    plan = plan_launch(m, n, column_bytes, sm_count=132, max_threads=256,
                       shared_optin=227 << 10)
    assert plan.threads % 32 == 0 and 32 <= plan.threads <= MAX_THREADS
    assert plan.blocks * plan.threads >= m > (plan.blocks - 1) * plan.threads
    assert plan.tile >= 1 and plan.span % plan.tile == 0
    assert plan.splits * plan.span >= n > (plan.splits - 1) * plan.span  # no empty split
    assert 1 <= plan.splits <= MAX_SPLITS
    assert plan.shared == plan.tile * column_bytes
    if column_bytes and column_bytes * 32 <= SHARED_DEFAULT:
        assert plan.shared <= SHARED_DEFAULT


def test_launch_plan_splits_columns_when_rows_are_few():
    few = plan_launch(100, 10**7, 16, sm_count=132, max_threads=256, shared_optin=227 << 10)
    assert few.splits > 100  # one block of rows: the columns fill the GPU
    many = plan_launch(10**6, 10**6, 16, sm_count=132, max_threads=256,
                       shared_optin=227 << 10)
    assert many.splits == 1
    small_threads = plan_launch(100, 10**6, 16, sm_count=132, max_threads=64,
                                shared_optin=227 << 10)
    assert small_threads.threads <= 64


@pytest.mark.parametrize("m", [1, 700, 33_000, 66_667, 270_000, 1_000_000, 1_300_000])
def test_launch_plan_fills_whole_waves(m):
    def waves(plan):  # launch time in units of one full-range column pass
        per_wave = 132 * (2048 // plan.threads)
        return -(-plan.blocks * plan.splits // per_wave) / plan.splits

    plan = plan_launch(m, 10**6, 16, sm_count=132, max_threads=256, shared_optin=227 << 10)
    single = plan_launch(m, 10**6, 16, sm_count=132, max_threads=256,
                         shared_optin=227 << 10, state_bytes=10**9)  # no room to split
    assert single.splits == 1
    assert waves(plan) <= waves(single)
    if m == 66_667:  # 261 blocks of 256 threads, 1056 resident: 4 splits fill one wave
        assert plan.splits == 4


def test_launch_plan_bounds_the_partial_states():
    plan = plan_launch(10_000, 10**7, 16, sm_count=132, max_threads=256,
                       shared_optin=227 << 10, state_bytes=4000)
    assert plan.splits * 10_000 * 4000 <= SPLIT_BYTES


def test_launch_plan_refuses_columns_wider_than_shared_memory():
    with pytest.raises(ShapeError, match="bytes per column"):
        plan_launch(10, 10, 300_000, sm_count=132, max_threads=256, shared_optin=227 << 10)


def test_kernels_past_the_per_thread_and_code_limits_are_refused():
    """The GPU kernel's per-thread arrays (its row state, its row, the formula's
    vectors) are local memory reserved for every resident thread; a big one,
    or code the compiler would take minutes over, is refused before any work."""
    from dredux import FormulaError, limits
    from dredux.codegen.cuda import cuda_code

    wide = Genred("Exp(x - y) * z", [f"x = Vi({limits.MAX_DIM})", "y = Vj(1)",
                                     f"z = Vi({limits.MAX_DIM})"], reduction_op="Max", axis=1)
    with pytest.raises(FormulaError, match="GPU kernel of this formula would keep"):
        cuda_code(wide.program("float32"))
    terms = " + ".join(f"Exp(x - y * {k + 1})" for k in range(512))
    big = Genred(terms, ["x = Vi(3)", "y = Vj(3)"], axis=1)
    with pytest.raises(FormulaError, match="GPU kernel of this formula would have about"):
        cuda_code(big.program("float32"))


HIGH_DIM = {
    "gaussian": ("Exp(-SqDist(x,y))*b", "Sum", None),
    "logsumexp": ("-SqDist(x,y)", "LogSumExp", None),
    "argkmin": ("SqDist(x,y)", "ArgKMin", 10),
    # the Jacobian's diagonal as vector operations, the scalars out of its sums:
    # 4 E S - 2 D E on the SqDist S (one sweep per component kept 16 KiB of
    # stack and spilled at D = 64 in float32, and was refused from D = 256 on)
    "laplacian": ("Laplacian(Exp(-SqDist(x,y)), x)*b", "Sum", None),
}


@needs_nvcc
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_high_dimensional_kernels_keep_no_stack_frame(dtype, tmp_path):
    """The benchmark kernels at D = 64 .. 4096: nothing in local memory, no spills
    (ptxas -v); the K-min family's K-list (K = 10) lives in registers too."""
    jobs = {(name, d): Genred(f, [f"x = Vi({d})", f"y = Vj({d})", "b = Vj(1)"],
                              reduction_op=red, opt_arg=k, axis=1).source("gpu", dtype)
            for name, (f, red, k) in HIGH_DIM.items() for d in (3, 64, 256, 1024, 4096)}
    found = ptxas_reduce_kernels(jobs, tmp_path)
    for (name, d), info in found.items():
        assert info["spill_stores"] == info["spill_loads"] == 0, (name, d, info)
        assert info["stack"] == 0, (name, d, info)


@needs_nvcc
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_kmin_merges_keep_their_lists_in_registers(dtype, tmp_path):
    """The merge kernel of the K-min family, for lists of up to 32 entries
    (K x components): both lists in registers, nothing in local memory
    (ptxas -v). Merging with running positions into both lists put them in
    local memory: 240 bytes of stack at K = 10 in float32. Two float64 lists
    of 32 take 256 registers: they spill (left out)."""
    ks = (1, 10, 16, 32) if dtype == "float32" else (1, 10, 16)
    cases = {("argkmin", k): ("SqDist(x,y)", "ArgKMin", k) for k in ks}
    cases["kmin-argkmin", 5] = ("x - y", "KMin_ArgKMin", 5)  # 3 lists of 5
    found = {}
    for (name, k), (formula, red, opt) in cases.items():
        source = Genred(formula, ["x = Vi(3)", "y = Vj(3)"], reduction_op=red, opt_arg=opt,
                        axis=1).source("gpu", dtype)
        found[name, k] = ptxas_reduce_kernel(source, tmp_path, f"{name}{k}", "dredux_merge")
    for key, info in found.items():
        assert info["stack"] == info["spill_stores"] == info["spill_loads"] == 0, (key, info)
    # longer lists (7 x 64 entries) are loops over local memory: the two lists
    # and no spills (unrolled, their loads took 16 KiB of stack and spilled 10 KiB)
    source = Genred("x - y", ["x = Vi(64)", "y = Vj(64)"], reduction_op="ArgKMin", opt_arg=7,
                    axis=1).source("gpu", dtype)
    info = ptxas_reduce_kernel(source, tmp_path, "wide", "dredux_merge")
    lists = 2 * 7 * 64 * ((8 if dtype == "float64" else 4) + 8)
    assert info["spill_stores"] == info["spill_loads"] == 0 and info["stack"] <= lists, info


# matrix products lowered to contractions (dredux/codegen/products.py): name ->
# (formula, reduction, K); s a (D, D) parameter matrix, t a (D, D) row matrix
PRODUCTS = {
    "metric-gaussian": ("Exp(-WeightedSqDist(s, x, y)) * b", "Sum", None),
    "projection": ("Exp(-SqNorm2(MatVecMult(s, x - y))) * b", "Sum", None),
    "projection-transposed": ("Exp(-SqNorm2(VecMatMult(x - y, s))) * b", "Sum", None),
    "projection-tensordot": ("Exp(-SqNorm2(TensorDot(s, x - y, [{d}, {d}], [{d}], [1], [0])))"
                             " * b", "Sum", None),
    "row-matrix-min": ("SqNorm2(MatVecMult(t, y - x))", "Min", None),
    "metric-knn": ("WeightedSqDist(s, x, y)", "ArgKMin", 10),
    "metric-gradient": ("Grad(Exp(-WeightedSqDist(s, x, y)), x, e)", "Sum", None),
}
# the gradient from D = 32 on keeps its wide output's accumulators in local
# memory (docs/design.md): left out here, checked by
# test_wide_outputs_keep_only_their_state_in_local_memory
PRODUCT_DIMS = {"float32": (16, 32, 64, 128), "float64": (16, 32, 64)}
PRODUCT_SPILLS = {("metric-gradient", dtype, d) for dtype in ("float32", "float64")
                  for d in (32, 64, 128)}


def _product_aliases(d):
    return [f"x = Vi({d})", f"y = Vj({d})", "b = Vj(1)", f"s = Pm({d * d})",
            f"t = Vi({d * d})", "e = Vi(1)"]


@needs_nvcc
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matrix_products_keep_no_stack_frame(dtype, tmp_path):
    """Matrix-vector and vector-matrix products of a parameter or row matrix
    with x - y (a Gaussian under a full metric, projections, K-NN under a
    metric, the gradient of the Gaussian): one
    contraction per output component, on tiles of as few columns as their
    partial sums need, and nothing in local memory (ptxas -v). Per pair, they
    were vectors of D values: 128 bytes of stack at D = 32, spills at D = 16."""
    jobs = {}
    for name, (f, red, k) in PRODUCTS.items():
        for d in PRODUCT_DIMS[dtype]:
            if (name, dtype, d) in PRODUCT_SPILLS:
                continue
            # .inner: the kernel float32 and float64 calls run (dredux/linear.py)
            jobs[name, d] = Genred(f.replace("{d}", str(d)), _product_aliases(d),
                                   reduction_op=red, opt_arg=k, axis=1).inner.source("gpu",
                                                                                     dtype)
    found = ptxas_reduce_kernels(jobs, tmp_path)
    for (name, d), info in found.items():
        assert info["spill_stores"] == info["spill_loads"] == 0, (name, d, info)
        assert info["stack"] == 0, (name, d, info)


WIDE_OUTPUTS = {
    "conv": ("Exp(-SqDist(x,y))*v", "{d}"),
    "conv-narrow-input": ("Exp(-SqDist(x,y))*v", "3"),
    "grad-x": ("Grad(Exp(-SqDist(x,y))*b, x, e)", "{d}"),
}


@needs_nvcc
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_wide_outputs_keep_only_their_state_in_local_memory(dtype, tmp_path):
    """Sums of D = 32 .. 4096 components (a Gaussian convolution of a D-channel
    signal, the gradient wrt x, the gradient of the Gaussian under a full
    metric): no spills, and the stack frame holds the row's state alone (D
    accumulators, updated once per tile and component), with no per-pair array
    of D values (ptxas -v). The metric gradient's products by S follow the
    sum (dredux/linear.py); in the kernel they took 400 bytes at D = 32 in
    float32 and spilled at D = 64 in float64."""
    jobs = {}
    for name, d in (("conv", 64), ("conv", 4096), ("conv-narrow-input", 1024),
                    ("grad-x", 256)):
        formula, din = WIDE_OUTPUTS[name]
        aliases = [f"x = Vi({din.format(d=d)})", f"y = Vj({din.format(d=d)})",
                   f"v = Vj({d})", "b = Vj(1)", "e = Vi(1)"]
        jobs[name, d] = Genred(formula, aliases, axis=1).source("gpu", dtype)
    formula = PRODUCTS["metric-gradient"][0]
    for d in PRODUCT_DIMS[dtype][1:]:
        jobs["metric-gradient", d] = Genred(formula, _product_aliases(d),
                                            axis=1).inner.source("gpu", dtype)
    found = ptxas_reduce_kernels(jobs, tmp_path)
    size = 8 if dtype == "float64" else 4
    for (name, d), info in found.items():
        assert info["spill_stores"] == info["spill_loads"] == 0, (name, d, info)
        assert info["stack"] <= d * size + 16, (name, d, info)


@pytest.mark.parametrize("outside, found", [("WeightedSqDist(s, x, y)", True),
                                            ("SqNorm2(MatVecMult(s, x - y))", False)])
def test_passes_are_found_inside_longer_sums(outside, found):
    """The quadratic form's sum inside a longer one that also reads it
    through another factor: the longer sum fails (its form is read outside
    it), the inner one, read twice, still takes passes; where the products'
    contractions are read outside every sum (by SqNorm2 of the product), none
    does."""
    from dredux.codegen.cuda import lowered, sum_passes
    from dredux.codegen.render import contractions, levels

    d = 32
    terms = " + ".join(f"(Elem(x, {k}) - Elem(y, {k})) * {k}.25" for k in range(d))
    g = Genred(f"({terms} + WeightedSqDist(s, x, y)) * {outside}",
               [f"x = Vi({d})", f"y = Vj({d})", f"s = Pm({d * d})"], reduction_op="Min",
               axis=1)
    program = lowered(g.program("float32"))
    level = levels(program.formulas)
    contracted = contractions(program.formulas, level)
    passes = sum_passes(program.formulas, contracted, level, "float")
    assert len(contracted) == d and (passes is not None) == found
    if found:
        assert len(passes.passes) == 2 and all(len(p) == 16 for p in passes.passes)
        assert [c for reads in passes.contractions for c in reads] == list(range(d))
