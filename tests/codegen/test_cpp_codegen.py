"""C++ code generation: every op and every reduction renders and compiles; the hot loop
vectorises; hoisting and naming behave; templates are filled completely.

Compiles use ``-fsyntax-only`` (templates are instantiated, nothing is optimised)
except the vectorisation checks, which compile with the backend's real flags
plus GCC's ``-fopt-info-vec-optimized`` report. Nothing runs here: running the
kernels is the CPU tier's job.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from dredux import Genred
from dredux.codegen import templates
from dredux.codegen.cpp import cpp_source
from dredux.codegen.render import render
from dredux.compile.cpp import compile_flags, compiler_command
from dredux.errors import BackendUnavailable
from dredux.ir import Cat, Expr, Op, var, walk
from dredux.ops import PRIMITIVES
from dredux.reductions import REDUCTIONS

try:
    CXX = compiler_command()
except BackendUnavailable:  # pragma: no cover - the CI image has g++
    CXX = None
needs_cxx = pytest.mark.skipif(CXX is None, reason="no C++ compiler")

ALIASES = ["x = Vi(1)", "y = Vj(1)", "u = Vi(3)", "v = Vj(3)", "w = Vi(2)", "A = Vj(6)",
           "p = Pm(1)"]
# one term per op; together they use every op of the language
TERMS = [
    "x + y", "x - y", "x * y", "x / y", "Minus(Exp(x * y))", "Equal(x, y)", "NotEqual(x, y)",
    "LessThan(x, y)", "LessOrEqual(x, y)", "GreaterThan(x, 0.25)", "GreaterOrEqual(x, y)",
    "Log(x * y)", "XLogX(x * y)", "Sin(x * y)", "Cos(x * y)", "Asin(x * y)", "Acos(x * y)",
    "Atan(x * y)", "SinXDivX(x * y)", "Sqrt(x * y)", "Rsqrt(x * y)", "Square(x - y)",
    "Inv(x * y)", "Abs(x - y)", "Sign(x - y)", "Step(x - y)", "ReLU(x - y)", "Floor(x * y)",
    "Round(x * y, 2)", "Pow(x * y, 3)", "Powf(x, y)", "Atan2(x, y)", "Clamp(x, y, p)",
    "ClampInt(x * y, -1, 2)", "IfElse(x - y, x, y)", "Mod(x, y, p)", "Sum(u * v)",
    "SumT(x * y, 3)", "Max(u - v)", "Min(u - v)", "ArgMax(u - v)", "ArgMin(u - v)", "(u | v)",
    "Elem(u - v, 2)", "ElemT(x * y, 4, 1)", "Extract(u * v, 1, 2)", "ExtractT(x * y, 2, 4)",
    "OneHot(x * y, 3)", "MatVecMult(A, w)", "VecMatMult(w, A)", "TensorProd(w, v)",
    "TensorDot(A, u, [2, 3], [3], [1], [0])", "Complex(x * y, x - y)", "ComplexReal(A * A)",
    "ComplexImag(Concat(u, v))", "BSpline(A, x, 2)", "SoftDTW_SqDist(u, v, p)",
    "GradSoftDTW_SqDist(u, w, p, 1)",
]
ALL_OPS = TERMS[0]
for _term in TERMS[1:]:
    ALL_OPS = f"Concat({ALL_OPS}, {_term})"

GAUSS = ("Exp(-p * SqDist(x, y)) * b", ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "p = Pm(1)"])


def syntax_check(sources: dict, tmp_path) -> dict:
    """Compile each source with -fsyntax-only; name -> (status, log)."""
    def one(item):
        name, text = item
        path = tmp_path / f"{name}.cpp"
        path.write_text(text)
        done = subprocess.run([*CXX, *compile_flags(), "-fsyntax-only", str(path)],
                              capture_output=True, text=True)
        return name, (done.returncode, done.stderr)

    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        return dict(pool.map(one, sources.items()))


@needs_cxx
def test_every_op_renders_and_compiles_in_both_dtypes(tmp_path):
    g = Genred(ALL_OPS, ALIASES, axis=1)
    used = {n.op for f in g.program(np.float32).formulas for n in walk(f)}
    assert used >= PRIMITIVES, f"ops missing from the formula: {PRIMITIVES - used}"
    sources = {f"ops_{dt}": g.source("cpu", dt) for dt in ("float32", "float64")}
    for name, (status, log) in syntax_check(sources, tmp_path).items():
        assert status == 0, f"{name}:\n{log}"


def reduction_routines():
    """(label, Genred) covering every reduction, weights, schemes and dtype_acc (the axis
    only swaps the variables' roles; the CPU tier runs both)."""
    aliases = ["x = Vi(3)", "y = Vj(3)", "b = Vj(2)"]
    out = []
    for name in REDUCTIONS:
        weighted = name in ("LogSumExpWeight", "SumSoftMaxWeight", "Max_SumShiftExpWeight")
        scalar = name.startswith(("LogSumExp", "SumSoftMax", "Max_SumShift"))
        formula = "-SqDist(x, y)" if scalar else "x * y"
        out.append((name, Genred(
            formula, aliases if weighted else aliases[:2], reduction_op=name, axis=1,
            opt_arg=4 if "KMin" in name else None, formula2="b" if weighted else None)))
    for scheme in ("direct_sum", "block_sum", "kahan_scheme"):
        out.append((f"Sum-{scheme}", Genred("x * y", aliases[:2], axis=1, sum_scheme=scheme)))
        out.append((f"Softmax-{scheme}", Genred("-SqDist(x, y)", aliases,
                                                reduction_op="SumSoftMaxWeight", axis=1,
                                                formula2="b", sum_scheme=scheme)))
    out.append(("Sum-acc64", Genred("x * y", aliases[:2], axis=1, dtype_acc="float64")))
    return out


@needs_cxx
def test_every_reduction_renders_and_compiles_in_both_dtypes(tmp_path):
    sources = {}
    for label, g in reduction_routines():
        for dt in ("float32", "float64"):
            if label == "Sum-acc64" and dt == "float64":
                continue
            sources[f"{label}-{dt}"] = g.source("cpu", dt)
    sources["float16"] = Genred("x * y", ["x = Vi(3)", "y = Vj(3)"], axis=1).source(
        "cpu", "float16")
    results = syntax_check(sources, tmp_path)
    failed = {k: v[1] for k, v in results.items() if v[0] != 0}
    assert not failed, "\n".join(f"{k}:\n{v[:2000]}" for k, v in failed.items())


def loop_lines(source: str, start_marker: str) -> range:
    """Line numbers (1-based) of the loop that starts at the first ``start_marker``."""
    lines = source.splitlines()
    first = next(k for k, line in enumerate(lines) if start_marker in line)
    depth, k = 0, first
    while True:
        depth += lines[k].count("{") - lines[k].count("}")
        if depth == 0 and k > first:
            return range(first + 1, k + 2)
        k += 1


@needs_cxx
@pytest.mark.skipif(CXX is not None and "g++" not in os.path.basename(CXX[0]),
                    reason="-fopt-info-vec is a GCC option")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", ["gauss", "lse"])
def test_the_hot_loop_vectorises(case, dtype, tmp_path):
    formula, aliases = GAUSS
    g = (Genred(formula, aliases, axis=1) if case == "gauss" else
         Genred("-p * SqDist(x, y)", aliases[:2] + aliases[3:], reduction_op="LogSumExp",
                axis=1))
    src = g.source("cpu", dtype)
    path = tmp_path / "k.cpp"
    path.write_text(src)
    done = subprocess.run([*CXX, *compile_flags(), "-fopt-info-vec-optimized", "-o",
                           str(tmp_path / "k.so"), str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    vectorised = {int(m.group(1)) for m in re.finditer(r"k\.cpp:(\d+):\d+: optimized: loop "
                                                       r"vectorized", done.stderr)}
    hot = loop_lines(src, "for (int jj = 0; jj < nt; ++jj)")
    assert vectorised & set(hot), f"j-loop (lines {hot}) not vectorised:\n{done.stderr}"
    if case == "lse":  # the exp-sum pass of the reduction
        lines = src.splitlines()
        exp_pass = [k + 1 for k, line in enumerate(lines) if "add(ts, tc, l, _dr_exp" in line]
        assert vectorised & set(exp_pass), done.stderr


@needs_cxx
@pytest.mark.skipif(CXX is not None and "g++" not in os.path.basename(CXX[0]),
                    reason="the flag is GCC's")
def test_only_the_kernels_that_call_pow_compile_without_pre():
    # GCC's PRE leaves the table loads of pow masked behind a select of a
    # constant (Powf(ReLU(1 - r), p)), which keeps the whole j-loop scalar
    # (benchmarks: 3-4.5x slower); the other kernels keep it
    from dredux.compile.cpp import POW_FLAGS, _flag_groups

    aliases = ["x = Vi(3)", "y = Vj(3)", "p = Pm(1)"]

    def fixed(formula):
        return _flag_groups(CXX, Genred(formula, aliases, axis=1).program("float32"))[0]

    for formula in ("Powf(ReLU(1 - SqDist(x, y)), p)", "Pow(SqDist(x, y), 65)",
                    "Exp(x) * Pow(SqDist(x, y), -70)"):
        assert set(POW_FLAGS) <= set(fixed(formula)), formula
    for formula in ("Exp(-SqDist(x, y))", "Pow(SqDist(x, y), 64)", "Sqrt(SqDist(x, y))"):
        assert not set(POW_FLAGS) & set(fixed(formula)), formula


def column_and_row_parts(src: str) -> tuple[str, str]:
    """The j-loop body's column-only part (before the first per-row scope) and the rest."""
    body = src[src.index("#pragma omp simd", src.index('extern "C" int dredux_block')):]
    body = body.splitlines()[2:]
    first_scope = next(k for k, line in enumerate(body) if line.strip() == "{")
    return "\n".join(body[:first_scope]), "\n".join(body[first_scope:])


def test_hoisting_levels():
    aliases = ["x = Vi(3)", "y = Vj(3)", "a = Vj(1)", "p = Pm(1)"]
    src = Genred("Square(p - a) * Exp(x) * y + Exp(p)", aliases, axis=1).source("cpu")
    body = src[src.index('extern "C" int dredux_block'):]
    before_rows = body[:body.index("for (int64_t i0 = ia")]
    per_row = body[body.index("for (int64_t i0 = ia"):body.index("for (int64_t jt = ca")]
    assert before_rows.count("_dr_exp") == 1  # Exp(p): once per call
    assert per_row.count("_dr_exp(_x0_0[") == 3  # Exp(x), 3 components: once per row
    columns, pairs = column_and_row_parts(src)
    assert "_dr_exp" not in columns + pairs
    assert "_p0[0] - _y1[jj]" in columns  # Square(p - a): once per column
    assert "_y1[jj]" not in pairs


def test_rows_per_pass_shares_column_work():
    aliases = ["x = Vi(3)", "y = Vj(3)", "a = Vj(1)", "p = Pm(1)"]
    g = Genred("Square(p - a) * Exp(x + y)", aliases, axis=1)
    src = cpp_source(g.program(np.float32), rows_per_pass=4)
    columns, pairs = column_and_row_parts(src)
    assert "_p0[0] - _y1[jj]" in columns and "_y1[jj]" not in pairs  # once per pass
    assert pairs.count("_dr_exp") == 4 * 3  # the pair work once per row (3 components)
    assert all(f"_s{r}_{d} += " in pairs for r in range(4) for d in range(3))  # fused sum


def test_sums_fuse_into_the_j_loop_and_the_rest_keep_the_buffer():
    """Sum (not kahan_scheme, up to 8 components) accumulates in the j-loop as an OpenMP
    simd reduction; the other reductions write the formula buffer that their state
    (kernels/cpu/states/) folds."""
    aliases = ["x = Vi(9)", "y = Vj(9)"]

    def src(formula="x * y", **kwargs):
        return Genred(formula, aliases, axis=1, **kwargs).source("cpu")

    fused = src("Extract(x * y, 0, 8)")
    assert "#pragma omp simd reduction(+: _s0_0, " in fused and "_s3_7 += " in fused
    assert "fbuf" not in fused and "FusedSumState<8>" in fused
    assert "static const int TJ = 2048;" in fused
    whole_row = src("Extract(x * y, 0, 8)", sum_scheme="direct_sum")
    assert "FusedSumState<8>" in whole_row and f"TJ = {1 << 30};" in whole_row
    for other in (src(), src(sum_scheme="kahan_scheme"),  # 9 components; compensated
                  src(reduction_op="Max"), src("Sum(x * y)", reduction_op="LogSumExp")):
        assert "fbuf[0][jj] = " in other and "reduction(+:" not in other
        assert "FusedSumState" not in other.split("typedef ")[-1]


def test_only_parsed_alias_names_reach_the_source_in_its_title():
    """Alias names (Python identifiers, checked by the parser) are shown in the title
    comment, and nowhere else; non-ASCII letters are left out of it."""
    g = Genred("Exp(-SqDist(alias_with_secret_name, other_name)) * \u03bb",
               ["alias_with_secret_name = Vi(2)", "other_name = Vj(2)", "\u03bb = Vj(1)"],
               axis=1)
    for backend in ("cpu", "gpu"):
        src = g.source(backend)
        title = src.splitlines()[1]
        assert title.startswith("// Sum over j of Exp(-Sum(Square(alias_with_secret_name-"
                                "other_name)))*Var(2,1,1)  ["), title
        body = "\n".join(src.splitlines()[2:])
        assert "secret" not in body and "other_name" not in body
        assert src.isascii()


def test_constants_are_printed_from_numbers():
    g = Genred("x * 0.1 + 1e-300 * y", ["x = Vi(1)", "y = Vj(1)"], axis=1)
    src = g.source("cpu", "float64")
    assert "(T)0.1" in src and "(T)1e-300" in src


def test_renderer_inlines_single_reads_and_stores_the_rest():
    x, y = var(0, 2, Cat.I), var(1, 2, Cat.J)

    def ref(n, k):
        return f"V{n.params[0]}[{k}]"

    f = (x - y) * x
    lines, r = render([f], ref)  # read once: nothing stored, the root's text is read
    assert lines == [] and r.acc(f, 1) == "((V0[1] - V1[1]) * V0[1])"
    lines, r = render([f], ref, roots_read_once=False)  # hoisted: the root is stored
    assert lines == ["T _v0[2];", "_v0[0] = (V0[0] - V1[0]) * V0[0];",
                     "_v0[1] = (V0[1] - V1[1]) * V0[1];"]
    g = Expr(Op.EXP, (x - y,)) * Expr(Op.SQUARE, (x - y,))  # x - y read twice: stored
    lines, r = render([Expr(Op.SUM, (g,))], ref)
    assert lines[:3] == ["T _v0[2];", "_v0[0] = V0[0] - V1[0];", "_v0[1] = V0[1] - V1[1];"]
    assert lines[3] == ("const T _v1 = (_dr_exp(_v0[0]) * (_v0[0] * _v0[0])) + "
                        "(_dr_exp(_v0[1]) * (_v0[1] * _v0[1]));")
    lines, r = render([f], ref, prefix="_w", known={x - y: "_h0"})  # known nodes are read
    assert r.acc(f, 0) == "(_h0[0] * V0[0])"


def test_a_chain_of_concats_fills_one_array():
    """Concat(Concat(Concat(a0, a1), a2), ...): the inner Concats, read by the
    next one alone, are never stored; the outermost copies each part once
    (m copies, not the m^2 / 2 of an array per link), wide parts by a loop.
    An inner Concat read elsewhere too keeps its own array."""
    x, y = var(0, 40, Cat.I), var(1, 40, Cat.J)

    def ref(n, k):
        return f"V{n.params[0]}[{k}]"

    parts = [Expr(Op.ELEM, (x,), (k,)) * Expr(Op.ELEM, (y,), (k,)) for k in range(40)]
    chain = parts[0]
    for part in parts[1:]:
        chain = Expr(Op.CONCAT, (chain, part))
    lines, r = render([Expr(Op.SUM, (chain,))], ref)
    arrays = [line for line in lines if line.startswith("T _v") and "[" in line]
    assert len(arrays) == 1 and arrays[0].endswith("[40];")
    name = arrays[0][2:arrays[0].index("[")]
    assert sum(line.startswith(f"{name}[") for line in lines) == 40
    wide = Expr(Op.CONCAT, (Expr(Op.CONCAT, (x, parts[3])), y))  # 40 + 1 + 40 components
    lines, r = render([Expr(Op.SUM, (wide,))], ref, unroll=8)
    assert lines[2:6] == ["T _v2[81];",
                          "for (int _k1 = 0; _k1 < 40; ++_k1) { _v2[_k1] = V0[_k1]; }",
                          "_v2[40] = (_v0 * _v1);",
                          "for (int _k2 = 41; _k2 < 81; ++_k2) { _v2[_k2] = V1[(_k2 - 41)]; }"]
    inner = Expr(Op.CONCAT, (parts[0], parts[1]))
    shared = Expr(Op.CONCAT, (inner, parts[2])) * Expr(Op.SUM, (inner,))
    lines, r = render([Expr(Op.SUM, (shared,))], ref)
    assert [line for line in lines if line.startswith("T _v")] == ["T _v4[2];", "T _v7[3];"]


def test_templates_are_found_and_filled_strictly():
    text = templates.load("cpu/block.cpp")
    assert {"PAIR", "STATE", "MATH", "STATES"} <= templates.slots(text)
    with pytest.raises(KeyError, match="missing"):
        templates.fill(text, PAIR="")
    with pytest.raises(KeyError, match="unknown"):
        templates.fill("@@A@@", A="1", B="2")
    assert templates.fill("x @@A@@ y @@A@@", A="@@B@@") == "x @@B@@ y @@B@@"
    assert (templates.kernel_dir() / "cpu" / "math.hpp").is_file()


@needs_cxx
@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86 targets")
@pytest.mark.skipif(CXX is not None and "g++" not in os.path.basename(CXX[0]),
                    reason="GCC's -march names")
@pytest.mark.parametrize("march, register, sums", [("x86-64-v3", "ymm", 12),
                                                    ("x86-64-v4", "zmm", 24)])
def test_contraction_loops_take_the_targets_vector_width(march, register, sums, tmp_path):
    """The register-blocked loop of SqDist at D = 64 is written with vectors as
    wide as the target's registers: AVX2 FMAs on ymm, AVX-512 on zmm (compiled
    to assembly only: this machine need not run AVX-512), and keeps its
    partial sums in registers (no spill inside the loop): 12 with AVX2's 16
    registers, 24 with AVX-512's 32."""
    src = Genred(GAUSS[0], ["x = Vi(64)", "y = Vj(64)", "b = Vj(1)", "p = Pm(1)"],
                 axis=1).source("cpu")
    path = tmp_path / "k.cpp"
    path.write_text(src)
    flags = [f for f in compile_flags() if not f.startswith("-march") and f != "-shared"]
    done = subprocess.run([*CXX, *flags, f"-march={march}", "-S", "-o", str(tmp_path / "k.s"),
                           str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    asm = (tmp_path / "k.s").read_text().splitlines()
    # the block loop: the first loop whose body has `sums` FMAs
    labels = {line[:-1]: k for k, line in enumerate(asm) if re.fullmatch(r"\.L\d+:", line)}
    for end, line in enumerate(asm):
        jump = re.match(r"\s+j\w+\s+(\.L\d+)$", line)
        if not jump or labels.get(jump.group(1), end) >= end:
            continue  # not a loop's backward jump
        body = asm[labels[jump.group(1)]:end]
        fmas = [b for b in body if "vfmadd" in b and f"%{register}" in b]
        if len(fmas) >= 12:
            break
    else:
        raise AssertionError(f"no loop with 12 {register} FMAs in the assembly")
    assert len(fmas) == sums and len({f.split(",")[-1] for f in fmas}) == sums, "\n".join(body)
    assert not any("(%rsp)" in b for b in body), "\n".join(body)
