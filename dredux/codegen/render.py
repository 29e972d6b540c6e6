"""Expr -> C statements, through a per-backend spelling table.

The renderer walks the formula DAG once (children first) and gives every node
a local array ``T _vN[dim]``; variables and constants are not stored but read
through accessors. Each op is spelled by one row of a :class:`Spelling`:

* elementwise ops by an *expression* template, ``fn(args, node) -> str``,
  applied component by component (dimension-1 operands broadcast);
* the other ops by a *statement* generator, ``fn(r, node, out) -> lines``.

Components are written out one by one (constant indices, which compilers turn
into registers and vectorise across the surrounding j loop) for dimensions up
to ``unroll``, and as ``for`` loops above that. A backend subclasses
:class:`Spelling` and overrides rows (``codegen/cpp.py``, ``codegen/cuda.py``);
``tests/unit/test_tables.py`` fails when a table misses an op.

Only parsed nodes reach this module: every identifier in the output is
generated here, every number is printed from a Python ``int`` or ``float``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import product

import numpy as np

from ..ir import OPS, Cat, Expr, Op, walk
from ..printing import to_formula

__all__ = ["Spelling", "Renderer", "render", "Index"]

Index = int | str


def _ix(base: Index, offset: int = 0, scale: int = 1) -> Index:
    """``base * scale + offset`` as an int when possible, else C text."""
    if isinstance(base, int):
        return base * scale + offset
    text = base if scale == 1 else f"{base} * {scale}"
    return text if offset == 0 else f"({text} + {offset})"


# --------------------------------------------------------------------------
# statement generators shared by C-like backends
# --------------------------------------------------------------------------

def _sum_of(r: Renderer, terms: Callable[[Index], str], count: int, out: str) -> list[str]:
    """``out = sum_k terms(k)`` for k < count."""
    if count <= r.unroll:
        return [f"{out} = {' + '.join(terms(k) for k in range(count))};"]
    k = r.fresh("_k")
    return [f"{out} = {r.lit(0)};",
            f"for (int {k} = 0; {k} < {count}; ++{k}) {out} += {terms(k)};"]


def _st_sum(r, n, out):
    (a,) = n.args
    return _sum_of(r, lambda k: r.acc(a, k), a.dim, f"{out}[0]")


def _st_sumt(r, n, out):
    (a,) = n.args
    return r.each(n.dim, lambda k: f"{out}[{k}] = {r.acc(a, 0)};")


def _st_scalprod(r, n, out):
    a, b = n.args
    return _sum_of(r, lambda k: f"{r.acc(a, k)} * {r.acc(b, k)}", a.dim, f"{out}[0]")


def _st_best(greater: bool, want_index: bool):
    def gen(r, n, out):
        (a,) = n.args
        cmp = ">" if greater else "<"
        best, idx = r.fresh("_best"), r.fresh("_arg")
        lines = [f"{r.T} {best} = {r.acc(a, 0)};"]
        if want_index:
            lines.append(f"{r.T} {idx} = {r.lit(0)};")

        def step(k):
            cur = r.acc(a, k)
            line = ""
            if want_index:
                line = f"{idx} = ({cur} {cmp} {best}) ? ({r.T})({k}) : {idx}; "
            return line + f"{best} = ({cur} {cmp} {best}) ? {cur} : {best};"

        if a.dim > 1:
            lines += r.each_from(1, a.dim, step)
        lines.append(f"{out}[0] = {idx if want_index else best};")
        return lines
    return gen


def _st_elem(r, n, out):
    (a,) = n.args
    return [f"{out}[0] = {r.acc(a, n.params[0])};"]


def _st_elemt(r, n, out):
    (a,) = n.args
    _, m = n.params

    def body(k):
        if isinstance(k, int):
            return f"{out}[{k}] = {r.acc(a, 0) if k == m else r.lit(0)};"
        return f"{out}[{k}] = ({k} == {m}) ? {r.acc(a, 0)} : {r.lit(0)};"
    return r.each(n.dim, body)


def _st_extract(r, n, out):
    (a,) = n.args
    start = n.params[0]
    return r.each(n.dim, lambda k: f"{out}[{k}] = {r.acc(a, _ix(k, start))};")


def _st_extractt(r, n, out):
    (a,) = n.args
    start = n.params[0]
    stop = start + a.dim

    def body(k):
        if isinstance(k, int):
            value = r.acc(a, k - start) if start <= k < stop else r.lit(0)
            return f"{out}[{k}] = {value};"
        return (f"{out}[{k}] = ({k} >= {start} && {k} < {stop}) ? "
                f"{r.acc(a, f'({k} - {start})')} : {r.lit(0)};")
    return r.each(n.dim, body)


def _st_concat(r, n, out):
    a, b = n.args

    def body(k):
        if isinstance(k, int):
            value = r.acc(a, k) if k < a.dim else r.acc(b, k - a.dim)
            return f"{out}[{k}] = {value};"
        return (f"{out}[{k}] = ({k} < {a.dim}) ? {r.acc(a, k)} : "
                f"{r.acc(b, f'({k} - {a.dim})')};")
    return r.each(n.dim, body)


def _st_onehot(r, n, out):
    (a,) = n.args
    pos = r.fresh("_hot")
    lines = [f"{r.T} {pos} = {r.call('floor', f'{r.acc(a, 0)} + {r.lit(0.5)}')};"]
    return lines + r.each(n.dim, lambda k: f"{out}[{k}] = ({r.T})({pos} == ({r.T})({k}));")


def _loop_sum(r, out, i, count, term) -> str:
    k = r.fresh("_k")
    return (f"{out}[{i}] = {r.lit(0)}; "
            f"for (int {k} = 0; {k} < {count}; ++{k}) {out}[{i}] += {term(k)};")


def _st_matvec(r, n, out):
    """out[i] = sum_k A[i * m + k] v[k] (A is n x m, row by row)."""
    a, v = n.args
    m = v.dim

    def body(i):
        if m <= r.unroll:
            terms = " + ".join(f"{r.acc(a, _ix(i, k, m))} * {r.acc(v, k)}" for k in range(m))
            return f"{out}[{i}] = {terms};"
        return _loop_sum(r, out, i, m,
                         lambda k: f"{r.acc(a, f'({_ix(i, 0, m)} + {k})')} * {r.acc(v, k)}")
    return r.each(n.dim, body)


def _st_vecmat(r, n, out):
    """out[i] = sum_k v[k] A[k * cols + i] (A is m x cols, row by row)."""
    v, a = n.args
    m, cols = v.dim, n.dim

    def body(i):
        if m <= r.unroll:
            terms = " + ".join(f"{r.acc(v, k)} * {r.acc(a, _ix(i, k * cols))}"
                               for k in range(m))
            return f"{out}[{i}] = {terms};"
        return _loop_sum(r, out, i, m,
                         lambda k: f"{r.acc(v, k)} * {r.acc(a, f'({k} * {cols} + {i})')}")
    return r.each(n.dim, body)


def _st_tensorprod(r, n, out):
    a, b = n.args
    db = b.dim
    if n.dim <= r.unroll:
        return [f"{out}[{k * db + l}] = {r.acc(a, k)} * {r.acc(b, l)};"
                for k in range(a.dim) for l in range(db)]
    k, l = r.fresh("_k"), r.fresh("_l")
    return [f"for (int {k} = 0; {k} < {a.dim}; ++{k}) for (int {l} = 0; {l} < {db}; ++{l}) "
            f"{out}[{k} * {db} + {l}] = {r.acc(a, k)} * {r.acc(b, l)};"]


def _strides(shape: Sequence[int]) -> list[int]:
    out, acc = [], 1
    for s in reversed(shape):
        out.append(acc)
        acc *= s
    return out[::-1]


def _st_tensordot(r, n, out):
    a, b = n.args
    dims_a, dims_b, sub_a, sub_b, sub_out, out_shape = n.params
    size = dict(zip(sub_a, dims_a)) | dict(zip(sub_b, dims_b))
    contracted = [label for label in sub_a if label in sub_b and label not in sub_out]
    st_a, st_b, st_o = _strides(dims_a), _strides(dims_b), _strides(out_shape)
    lines = []
    for out_index in product(*(range(size[label]) for label in sub_out)):
        fixed = dict(zip(sub_out, out_index))
        flat_o = sum(i * s for i, s in zip(out_index, st_o))
        terms = []
        for c_index in product(*(range(size[label]) for label in contracted)):
            where = fixed | dict(zip(contracted, c_index))
            flat_a = sum(where[label] * s for label, s in zip(sub_a, st_a))
            flat_b = sum(where[label] * s for label, s in zip(sub_b, st_b))
            terms.append(f"{r.acc(a, flat_a)} * {r.acc(b, flat_b)}")
        lines.append(f"{out}[{flat_o}] = {' + '.join(terms) or r.lit(0)};")
    return lines


# --------------------------------------------------------------------------
# the spelling table
# --------------------------------------------------------------------------

def _c_expressions() -> dict[Op, Callable[[list[str], Expr], str]]:
    """C spellings of the elementwise ops (shared by C++ and CUDA)."""
    def fn(name):
        return lambda a, n, _name=name: f"{_name}({', '.join(a)})"

    return {
        Op.ADD: lambda a, n: f"({a[0]} + {a[1]})",
        Op.SUB: lambda a, n: f"({a[0]} - {a[1]})",
        Op.MUL: lambda a, n: f"({a[0]} * {a[1]})",
        Op.DIV: lambda a, n: f"({a[0]} / {a[1]})",
        Op.NEG: lambda a, n: f"(-{a[0]})",
        Op.EQ: lambda a, n: f"(T)({a[0]} == {a[1]})",
        Op.NE: lambda a, n: f"(T)({a[0]} != {a[1]})",
        Op.LT: lambda a, n: f"(T)({a[0]} < {a[1]})",
        Op.LE: lambda a, n: f"(T)({a[0]} <= {a[1]})",
        Op.GT: lambda a, n: f"(T)({a[0]} > {a[1]})",
        Op.GE: lambda a, n: f"(T)({a[0]} >= {a[1]})",
        Op.EXP: fn("_dr_exp"),
        Op.LOG: fn("_dr_log"),
        Op.XLOGX: lambda a, n: f"(({a[0]} == (T)0) ? (T)0 : {a[0]} * _dr_log({a[0]}))",
        Op.SIN: fn("_dr_sin"),
        Op.COS: fn("_dr_cos"),
        Op.ASIN: fn("_dr_asin"),
        Op.ACOS: fn("_dr_acos"),
        Op.ATAN: fn("_dr_atan"),
        Op.SINXDIVX: lambda a, n: f"(({a[0]} == (T)0) ? (T)1 : _dr_sin({a[0]}) / {a[0]})",
        Op.SQRT: fn("_dr_sqrt"),
        Op.RSQRT: lambda a, n: f"(({a[0]} == (T)0) ? (T)0 : _dr_rsqrt({a[0]}))",
        Op.SQUARE: lambda a, n: f"({a[0]} * {a[0]})",
        Op.INV: lambda a, n: f"((T)1 / {a[0]})",
        Op.ABS: fn("_dr_abs"),
        Op.SIGN: lambda a, n: f"(T)(({a[0]} > (T)0) - ({a[0]} < (T)0))",
        Op.STEP: lambda a, n: f"(({a[0]} < (T)0) ? (T)0 : (T)1)",
        Op.RELU: lambda a, n: f"(({a[0]} < (T)0) ? (T)0 : {a[0]})",
        Op.FLOOR: fn("_dr_floor"),
        Op.ROUND: lambda a, n: (f"_dr_round({a[0]})" if n.params[0] == 0 else
                                f"(_dr_round({a[0]} * (T){10.0 ** n.params[0]!r}) / "
                                f"(T){10.0 ** n.params[0]!r})"),
        Op.POW: lambda a, n: _powi(a[0], n.params[0]),
        Op.POWF: fn("_dr_pow"),
        Op.ATAN2: fn("_dr_atan2"),
        Op.CLAMP: lambda a, n: (f"(({a[0]} < {a[1]}) ? {a[1]} : "
                                f"(({a[0]} > {a[2]}) ? {a[2]} : {a[0]}))"),
        Op.CLAMPINT: lambda a, n: (f"(({a[0]} < (T){n.params[0]}) ? (T){n.params[0]} : "
                                   f"(({a[0]} > (T){n.params[1]}) ? (T){n.params[1]} : "
                                   f"{a[0]}))"),
        Op.IFELSE: lambda a, n: f"(({a[0]} >= (T)0) ? {a[1]} : {a[2]})",
        Op.MOD: lambda a, n: f"({a[0]} - {a[1]} * _dr_floor(({a[0]} - {a[2]}) / {a[1]}))",
    }


def _powi(x: str, p: int) -> str:
    """x**p by repeated squaring, written out (p is a small integer)."""
    if p == 0:
        return "(T)1"
    if p < 0:
        return f"((T)1 / {_powi(x, -p)})"
    if p > 64:
        return f"_dr_pow({x}, (T){p})"
    factors, base = [], x
    while p:
        if p & 1:
            factors.append(base)
        p >>= 1
        if p:
            base = f"({base} * {base})"
    return "(" + " * ".join(factors) + ")"


_STATEMENTS = {
    Op.SUM: _st_sum,
    Op.SUMT: _st_sumt,
    Op.MAX: _st_best(True, False),
    Op.MIN: _st_best(False, False),
    Op.ARGMAX: _st_best(True, True),
    Op.ARGMIN: _st_best(False, True),
    Op.SCALPROD: _st_scalprod,
    Op.ELEM: _st_elem,
    Op.ELEMT: _st_elemt,
    Op.EXTRACT: _st_extract,
    Op.EXTRACTT: _st_extractt,
    Op.CONCAT: _st_concat,
    Op.ONEHOT: _st_onehot,
    Op.MATVECMULT: _st_matvec,
    Op.VECMATMULT: _st_vecmat,
    Op.TENSORPROD: _st_tensorprod,
    Op.TENSORDOT: _st_tensordot,
}


@dataclass
class Spelling:
    """How one backend spells ops; subclasses override rows of the two tables.

    ``T`` in expression templates is the computation type: templates include
    ``typedef <type> T;`` (or the backend defines it) before the rendered code.
    """

    name: str = "c"
    expressions: dict = field(default_factory=_c_expressions)
    statements: dict = field(default_factory=lambda: dict(_STATEMENTS))

    def literal(self, value, ctype: str) -> str:
        if isinstance(value, int) and abs(value) < 2**24:
            return f"(({ctype}){value})"
        text = repr(float(value))
        if not math.isfinite(float(value)):
            raise ValueError(f"non-finite constant {value} cannot be rendered")
        return f"(({ctype}){text}{'f' if ctype == 'float' else ''})"

    def covers(self) -> set[Op]:
        return set(self.expressions) | set(self.statements) | {Op.VAR, Op.CONST}


class Renderer:
    """State of one rendering: names of nodes, fresh identifiers, the mode."""

    def __init__(self, spelling: Spelling, var_ref: Callable[[Expr, Index], str],
                 ctype: str, unroll: int = 32, prefix: str = "_v",
                 known: dict[Expr, str] | None = None, fused=frozenset()):
        self.spelling = spelling
        # elementwise nodes written into their reader's expression, never stored
        self.fused = fused
        self.var_ref = var_ref
        self.T = ctype
        self.unroll = unroll
        self.prefix = prefix
        # nodes computed elsewhere (e.g. hoisted out of a loop), read by name
        self.names: dict[Expr, str] = dict(known or {})
        self._count = 0
        self._fresh = 0

    def fresh(self, stem: str) -> str:
        """A new local identifier; renderings with distinct prefixes never clash."""
        self._fresh += 1
        tag = "" if self.prefix == "_v" else self.prefix
        return f"{stem}{tag}{self._fresh}"

    def lit(self, value) -> str:
        return self.spelling.literal(value, self.T)

    def call(self, name: str, *args: str) -> str:
        return f"_dr_{name}({', '.join(args)})"

    def acc(self, node: Expr, k: Index) -> str:
        """C expression of component ``k`` of ``node`` (dimension 1 broadcasts)."""
        if node.op is Op.CONST:
            return self.lit(node.params[0])
        if node.dim == 1:
            k = 0
        if node.op is Op.VAR:
            return self.var_ref(node, k)
        if node in self.fused:
            return self.spelling.expressions[node.op]([self.acc(a, k) for a in node.args], node)
        return f"{self.names[node]}[{k}]"

    def each(self, dim: int, body: Callable[[Index], object]) -> list[str]:
        return self.each_from(0, dim, body)

    def each_from(self, start: int, stop: int, body: Callable[[Index], object]) -> list[str]:
        """``body(k)`` for k in [start, stop): written out, or one loop."""
        if stop - start <= self.unroll:
            lines: list[str] = []
            for k in range(start, stop):
                out = body(k)
                lines.extend(out if isinstance(out, list) else [out])
            return lines
        k = self.fresh("_k")
        out = body(k)
        inner = " ".join(out) if isinstance(out, list) else out
        return [f"for (int {k} = {start}; {k} < {stop}; ++{k}) {{ {inner} }}"]

    def node(self, n: Expr) -> list[str]:
        if n in self.fused:
            return []
        name = f"{self.prefix}{self._count}"
        self._count += 1
        self.names[n] = name
        lines = [f"{self.T} {name}[{n.dim}];"]
        expr = self.spelling.expressions.get(n.op)
        if expr is not None and OPS[n.op].elementwise:
            lines += self.each(n.dim, lambda k: f"{name}[{k}] = "
                               f"{expr([self.acc(a, k) for a in n.args], n)};")
            return lines
        return lines + self.spelling.statements[n.op](self, n, name)


def render(roots: Sequence[Expr], spelling: Spelling, var_ref: Callable[[Expr, Index], str],
           ctype: str, unroll: int = 32, *, prefix: str = "_v",
           known: dict[Expr, str] | None = None,
           fused=frozenset()) -> tuple[list[str], Renderer]:
    """C statements computing every node of ``roots`` (shared nodes once).

    Parameters
    ----------
    roots : sequence of Expr
    spelling : Spelling
    var_ref : callable
        ``var_ref(var_node, k)`` -> C expression of component ``k`` of a variable.
    ctype : str
        The computation type (``float`` or ``double``).
    unroll : int
        Dimensions up to this are written component by component.
    prefix : str
        Stem of the arrays that hold the nodes' values (``_v0``, ``_v1``...);
        renderings that share a scope need distinct prefixes.
    known : dict, optional
        Nodes already computed by an earlier rendering (node -> array name):
        they are read, not recomputed, and their subtrees are not visited.
    fused : set of Expr, optional
        Elementwise nodes not stored but written into their reader's expression
        (``codegen/cuda.py`` fuses wide single-use chains).

    Returns
    -------
    lines : list of str
    renderer : Renderer
        ``renderer.acc(root, k)`` reads component k of a root afterwards.
    """
    r = Renderer(spelling, var_ref, ctype, unroll, prefix=prefix, known=known, fused=fused)
    lines: list[str] = []
    seen: set[Expr] = set(r.names)
    for root in roots:
        for n in walk(root, seen):
            if n.op in (Op.VAR, Op.CONST):
                continue
            lines += r.node(n)
    return lines, r


# ---------------------------------------------------------------------------
# pieces shared by the C++ and CUDA kernel generators
# ---------------------------------------------------------------------------

SUM_SCHEMES = {"direct_sum": 0, "block_sum": 1}  # kahan_scheme: 2


def sum_mode(reduction, sum_scheme: str) -> int:
    """The summation scheme number of the kernels' sum states."""
    return 2 if reduction.kahan else SUM_SCHEMES.get(sum_scheme, 1)


def compute_dtype(program) -> np.dtype:
    """dtype the formula is computed in: float32 for float16 and float32 inputs."""
    return np.dtype(np.float64 if program.dtype == "float64" else np.float32)


def var_slots(program) -> dict[Expr, tuple[str, int]]:
    """Kernel argument of each variable: ("x", k) row, ("y", k) column, ("p", k)
    parameter."""
    slots: dict[Expr, tuple[str, int]] = {}
    for kind, group in (("x", program.row_vars), ("y", program.col_vars),
                        ("p", program.param_vars)):
        for k, v in enumerate(group):
            slots[v] = (kind, k)
    return slots


def levels(formulas: Sequence[Expr]) -> dict[Expr, str]:
    """'const', 'row', 'col' or 'pair' for every node, from the categories below it."""
    cats: dict[Expr, frozenset] = {}
    level: dict[Expr, str] = {}
    seen: set[Expr] = set()
    for f in formulas:
        for node in walk(f, seen):
            if node.op is Op.VAR:
                cat = Cat(node.params[1])
                if cat not in (Cat.I, Cat.J, Cat.P):
                    raise ValueError(f"variable {node} of category {cat.name} cannot be "
                                     "bound to a kernel argument")
                below = frozenset((cat,))
            else:
                below = frozenset().union(*(cats[a] for a in node.args))
            cats[node] = below
            has_i, has_j = Cat.I in below, Cat.J in below
            level[node] = ("pair" if has_i and has_j else "row" if has_i
                           else "col" if has_j else "const")
    return level


def hoisted_roots(formulas: Sequence[Expr], level: dict[Expr, str], which) -> list[Expr]:
    """Nodes whose level is in ``which`` that a node of another level (or the
    output) reads: the largest subtrees to compute outside the inner loop."""
    out: list[Expr] = []
    seen: set[Expr] = set()

    def want(node):
        if node.op in (Op.VAR, Op.CONST) or level[node] not in which or node in seen:
            return
        seen.add(node)
        out.append(node)

    for f in formulas:
        want(f)
        for node in walk(f):
            if level[node] not in which:
                for child in node.args:
                    want(child)
    return out


def indent(lines: list[str], depth: int) -> str:
    pad = "    " * depth
    return "\n".join(pad + line for line in lines)


def title(program, limit: int = 300) -> str:
    """A one-line description of the kernel for its source's first comment
    (printable ASCII, no backslash, which would continue a // comment)."""
    text = "; ".join(to_formula(f) for f in program.formulas)
    text = "".join(ch for ch in text if 32 <= ord(ch) < 127 and ch != "\\")
    if len(text) > limit:
        text = text[:limit] + "..."
    return (f"{program.reduction.name} over j of {text}  "
            f"[{program.dtype}, acc {program.acc_dtype}, {program.sum_scheme}]")
