"""Expr -> C statements, from the C spellings of the op records.

The renderer walks the formula DAG once (children first). Each op is spelled
by its record (:mod:`dredux.ops`): elementwise ops by an expression template
applied component by component (dimension-1 operands broadcast), the others by
a statement generator. A node is either

* *inlined*: an elementwise node read by a single reader that reads each of its
  components once is not stored; its expression is written into the reader's
  (``Exp(x + y)`` becomes ``_dr_exp(_x0[0] + _y0[jj])``), or
* *stored*: in a ``const T`` scalar (dimension 1) or a ``T name[dim]`` array
  (components written out up to ``unroll``, a loop above), read by name.

Variables and constants are not stored but read through accessors. Both
backends share this module: ``codegen/cpp.py`` and ``codegen/cuda.py`` give
the variable accessors and the templates; CUDA may ask for the fast-math
spellings of the records.

Only parsed nodes reach this module: every identifier in the output is
generated here, every number is printed by :meth:`Renderer.lit` from a Python
``int`` or ``float``.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Sequence

import numpy as np

from .. import limits
from ..errors import FormulaError
from ..ir import OPS, Cat, Expr, Op, walk, walk_all
from ..ops.vector import ix, transpose_of
from ..printing import to_formula

__all__ = ["Renderer", "render", "inlined_nodes", "Index", "literal", "bare", "compute_dtype",
           "variable_slice",
           "var_slots", "levels", "hoisted_roots", "indent", "title", "code_operations",
           "check_kernel_stack", "check_kernel_code", "contractions", "contraction_term",
           "CONTRACTION_MIN_DIM",
           "streamed_weights"]

Index = int | str
_INLINE_TEXT = 600  # most characters an inlined expression may grow to
_MARK = "\x00{}\x00"  # stands for operand k while counting a template's reads


def literal(value) -> str:
    """A number of the formula as C text of type ``T`` (the template's type)."""
    if isinstance(value, int) and abs(value) < 2**53:
        return f"(T){value}"
    number = float(value)
    if not math.isfinite(number):  # simplify never folds into one: a bug if seen
        raise ValueError(f"non-finite constant {value} cannot be rendered")
    return f"(T){number!r}"


def bare(text: str) -> str:
    """``text`` without its outer parentheses when they enclose all of it (where
    it stands alone: a right-hand side, a function argument)."""
    if not (text.startswith("(") and text.endswith(")")):
        return text
    depth = 0
    for k, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and k < len(text) - 1:
            return text  # "(a) + (b)": the first group closes early
    return text[1:-1]


@functools.cache
def _delimited(template: str) -> frozenset:
    """Operand slots of a template that stand alone (a function argument)."""
    return frozenset(int(k) for k in re.findall(r"[(,] ?\{(\d)\} ?(?=[),])", template))


def _expression(record, fast: bool):
    return record.fast if fast and record.fast else record.c


def _reads(r: Renderer | None, node: Expr, fast: bool) -> list[int]:
    """How many times the elementwise spelling of ``node`` reads each operand."""
    spelling = _expression(OPS[node.op], fast)
    marks = [_MARK.format(k) for k in range(len(node.args))]
    text = spelling.format(*marks) if isinstance(spelling, str) else spelling(
        r or _Counting(), marks, node)
    return [text.count(mark) for mark in marks]


class _Counting:
    """Stand-in renderer for counting a spelling's reads (numbers only)."""

    @staticmethod
    def lit(value) -> str:
        return literal(value)


def inlined_nodes(roots: Sequence[Expr], known=(), roots_read_once: bool = True,
                  fast: bool = False, unroll: int = 32) -> frozenset:
    """Elementwise nodes of ``roots`` to write into their single reader.

    A node is inlined when exactly one place reads it and that place reads each
    of its components once: an elementwise reader of the same dimension whose
    spelling names it once, a statement that reads its operands once (``Sum``,
    ``Elem``...), or the consumer of a root (``roots_read_once``). A node wider
    than ``unroll`` is inlined even where its reader's spelling names it twice
    (``Square(x - y)``): its components would otherwise go through an array in
    memory (local memory on a GPU), which costs more than a subtraction. ``known``
    nodes are computed elsewhere and read by name.
    """
    readers: dict[Expr, list] = {}
    order: list[Expr] = []
    seen: set[Expr] = set(known)
    for root in roots:
        readers.setdefault(root, []).append(None)
        for node in walk(root, seen):
            if node.op in (Op.VAR, Op.CONST):
                continue
            order.append(node)
            for child in node.args:
                readers.setdefault(child, []).append(node)
    size: dict[Expr, int] = {}
    inline: set[Expr] = set()
    for node in order:  # children first
        record = OPS[node.op]
        users = readers.get(node, [])
        if (node.op is Op.CONCAT and node not in known and len(users) == 1
                and users[0] is not None and users[0].op is Op.CONCAT
                and users[0].args.count(node) == 1):
            inline.add(node)  # copied into its reader's array as parts (ops/vector.py)
            continue
        if not record.elementwise or node in known or len(users) != 1:
            continue
        user = users[0]
        if user is None:
            if not roots_read_once:
                continue
        elif user.args.count(node) != 1 or not OPS[user.op].reads_once:
            continue
        elif OPS[user.op].elementwise and (  # a broadcast operand is read per component
                node.dim != user.dim or (node.dim <= unroll and _reads(
                    None, user, fast)[user.args.index(node)] != 1)):
            continue
        marks = [_MARK.format(k) for k in range(len(node.args))]
        spelling = _expression(record, fast)
        shape = spelling.format(*marks) if isinstance(spelling, str) else spelling(
            _Counting(), marks, node)
        grown = len(shape) + sum(shape.count(mark) * (size.get(child, 24) - len(mark))
                                 for mark, child in zip(marks, node.args))
        if grown <= _INLINE_TEXT:
            inline.add(node)
            size[node] = grown
    return frozenset(inline)


class Renderer:
    """State of one rendering: names of nodes, fresh identifiers, the mode.

    Parameters
    ----------
    var_ref : callable
        ``var_ref(var_node, k)`` -> C expression of component ``k`` of a variable.
    unroll : int
        Dimensions up to this are written component by component.
    prefix : str
        Stem of the names of stored nodes (``_v0``, ``_v1``...); renderings that
        share a scope need distinct prefixes.
    known : dict, optional
        Nodes computed by an earlier rendering (node -> name), read by name.
    inline : set of Expr, optional
        Nodes written into their reader's expression (:func:`inlined_nodes`).
    fast : bool
        Use the records' fast-math spellings (CUDA, float32).
    """

    def __init__(self, var_ref: Callable[[Expr, Index], str], unroll: int = 32,
                 prefix: str = "_v", known: dict[Expr, str] | None = None,
                 inline=frozenset(), fast: bool = False):
        self.var_ref = var_ref
        self.unroll = unroll
        self.prefix = prefix
        self.names: dict[Expr, str] = dict(known or {})
        self.inline = inline
        self.fast = fast
        self._count = 0
        self._fresh = 0
        self.array_elems = 0  # components of the arrays declared (they live on the stack)

    def fresh(self, stem: str) -> str:
        """A new local identifier; renderings with distinct prefixes never clash."""
        self._fresh += 1
        tag = "" if self.prefix == "_v" else self.prefix
        return f"{stem}{tag}{self._fresh}"

    @staticmethod
    def lit(value) -> str:
        return literal(value)

    def acc(self, node: Expr, k: Index) -> str:
        """C expression of component ``k`` of ``node`` (dimension 1 broadcasts)."""
        if node.op is Op.CONST:
            return literal(node.params[0])
        if node.dim == 1:
            k = 0
        if node.op is Op.VAR:
            return self.var_ref(node, k)
        if node in self.inline:
            if node.op is Op.EXTRACT:  # a slice, read in place (a product's matrix rows)
                a, start = node.args[0], node.params[0]
                t = transpose_of(a) if a in self.inline else None
                if t is not None and start % t[1] == 0 and node.dim == t[1]:
                    src, n, m = t  # row r of the transpose of an n x m matrix: its column r
                    return self.acc(src, ix(k, start // n, m))
                return self.acc(a, ix(k, start))
            return self.expression(node, k)
        name = self.names[node]
        return name if node.dim == 1 else f"{name}[{k}]"

    def expression(self, node: Expr, k: Index) -> str:
        """Component ``k`` of an elementwise node, from its operands."""
        spelling = _expression(OPS[node.op], self.fast)
        args = [self.acc(a, k) for a in node.args]
        if not isinstance(spelling, str):
            return spelling(self, args, node)
        alone = _delimited(spelling)
        return spelling.format(*(bare(a) if s in alone else a for s, a in enumerate(args)))

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
        """The lines that compute and store ``n`` (none when it is inlined)."""
        if n in self.inline:
            return []
        name = f"{self.prefix}{self._count}"
        self._count += 1
        self.names[n] = name
        record = OPS[n.op]
        if n.dim == 1:
            if record.elementwise:
                return [f"const T {name} = {bare(self.expression(n, 0))};"]
            lines = record.c(self, n, lambda k: name)
            if len(lines) == 1 and lines[0].startswith(f"{name} = "):
                return [f"const T {lines[0]}"]
            return [f"T {name};", *lines]
        lines = [f"T {name}[{n.dim}];"]
        self.array_elems += n.dim
        if record.elementwise:
            return lines + self.each(
                n.dim, lambda k: f"{name}[{k}] = {bare(self.expression(n, k))};")
        return lines + record.c(self, n, lambda k: f"{name}[{k}]")


def render(roots: Sequence[Expr], var_ref: Callable[[Expr, Index], str], unroll: int = 32, *,
           prefix: str = "_v", known: dict[Expr, str] | None = None,
           roots_read_once: bool = True, fast: bool = False) -> tuple[list[str], Renderer]:
    """C statements computing every node of ``roots`` (shared nodes once).

    ``roots_read_once``: the caller reads each component of each root once
    (a root may then be inlined into that read); hoisted values, read by many
    pairs, are rendered with False. The other parameters are the
    :class:`Renderer`'s.

    Returns
    -------
    lines : list of str
    renderer : Renderer
        ``renderer.acc(root, k)`` reads component k of a root afterwards.
    """
    known = dict(known or {})
    inline = inlined_nodes(roots, known, roots_read_once, fast, unroll)
    r = Renderer(var_ref, unroll, prefix=prefix, known=known, inline=inline, fast=fast)
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


# Contractions: Sum and Scalprod over at least this many components, of terms
# made of these element-wise ops, are computed by register-blocked loops
# (codegen/cpp.py). Below it the pair loop's unrolled code is faster.
CONTRACTION_MIN_DIM = 16
_TERM_OPS = frozenset((Op.ADD, Op.SUB, Op.MUL, Op.NEG, Op.SQUARE))


def contractions(formulas: Sequence[Expr], level: dict[Expr, str],
                 min_dim: int = CONTRACTION_MIN_DIM, col_slices: bool = False) -> list[Expr]:
    """The pair-level ``Sum``/``Scalprod`` nodes of ``formulas`` over at least
    ``min_dim`` components whose terms are arithmetic (``+ - *``, ``Square``,
    ``Minus``) of variables, constants and subtrees that depend on the row or
    the parameters only: ``SqDist(x, y)``, ``(x|y)``, ``WeightedSqDist`` and
    the same shapes in gradients. A GEMM-like loop computes them, streaming
    the D components of x and y once per block of pairs. With ``col_slices``
    (the CPU kernels), a term may also be a slice of a column variable (the
    row of a column matrix, :mod:`dredux.codegen.products`)."""
    out: list[Expr] = []
    seen: set[Expr] = set()
    for f in formulas:
        for node in walk(f, seen):
            if (node.op in (Op.SUM, Op.SCALPROD) and level[node] == "pair"
                    and node.args[0].dim >= min_dim
                    and all(contraction_term(a, a.dim, level, col_slices)
                            for a in node.args)):
                out.append(node)
    return out


def contraction_term(node: Expr, dim: int, level: dict[Expr, str],
                     col_slices: bool = False) -> bool:
    """Whether ``node`` can be summed by a contraction loop over ``dim``
    components: arithmetic of variables, constants and row- or
    parameter-only subtrees (each read by component); with ``col_slices``,
    also slices of column variables (:func:`variable_slice`)."""
    if node.op in (Op.VAR, Op.CONST) or level[node] in ("row", "const"):
        return True
    if col_slices and level[node] == "col" and node.dim == dim and variable_slice(node):
        return True
    return (node.op in _TERM_OPS and node.dim == dim
            and all(contraction_term(a, dim, level, col_slices) for a in node.args))


def variable_slice(node: Expr) -> bool:
    """Whether ``node`` is a variable, a slice of one or the transpose of a
    matrix of them (``Extract`` of an ``Extract``... of a variable): values a
    kernel can read in place."""
    while True:
        if node.op is Op.EXTRACT:
            node = node.args[0]
            continue
        t = transpose_of(node)
        if t is None:
            return node.op is Op.VAR
        node = t[0]


def streamed_weights(program, level: dict[Expr, str]) -> list[Expr] | None:
    """The scalar pair values ("weights") of a wide output that the kernels sum
    component by component, or None when they cannot.

    A sum of at least 16 components (``Exp(-SqDist(x, y)) * v``, a gradient
    wrt x...) whose formula is element-wise over the output dimension, of
    variables, row-only or parameter-only subtrees and scalar values that
    depend on the column: the pair loop stores those scalars for the tile, and
    then, for each component d, one loop over the tile's columns adds up
    ``F_d`` (a dot product: the weights are reused by every component) and
    hands the state one sum per tile (codegen/cpp.py: a vectorised loop over
    the contiguous component d of the column variables; codegen/cuda.py:
    registers, the column variables staged in shared memory chunk by chunk).
    Written this way the sum streams its operands once per tile instead of
    going through a buffer of the tile's ``D`` values per pair.
    """
    red = program.reduction
    root = program.formulas[0]
    if (len(program.formulas) > 1 or red.dim < CONTRACTION_MIN_DIM
            or not red.family.streams(red) or level[root] != "pair"):
        return None
    weights: list[Expr] = []

    def visit(node: Expr) -> bool:
        if node.op in (Op.VAR, Op.CONST) or level[node] in ("row", "const"):
            return True
        if node.dim == 1:
            if node not in weights:
                weights.append(node)
            return True
        return (OPS[node.op].elementwise and node.dim == red.dim
                and all(visit(a) for a in node.args))

    return weights if visit(root) else None


def code_operations(lines: list[str]) -> int:
    """About how many operations the compiler sees in ``lines`` (arithmetic and
    comparisons, the inlined ``_dr_exp`` and ``_dr_log`` counted as the
    operations of their bodies): its optimisation time grows with this number,
    faster than linearly in one loop body."""
    text = "\n".join(lines)
    return len(_OPERATION.findall(text)) + (_MATH_OPERATIONS - 1) * len(_MATH.findall(text))


_OPERATION = re.compile(r"[-+*/?<>]=?|\b_dr_\w+\(")
_MATH = re.compile(r"\b_dr_(?:exp|log)\(")
_MATH_OPERATIONS = 25


def check_kernel_stack(program, nbytes: int, device: str) -> None:
    """Refuse a kernel whose per-thread arrays would overflow a thread's stack
    (CPU) or take more local memory than a GPU gives its threads."""
    if nbytes > limits.MAX_KERNEL_STACK:
        raise FormulaError(
            f"the {device} kernel of this formula would keep {nbytes >> 10} KiB of vectors "
            f"per thread, more than the limit of {limits.MAX_KERNEL_STACK >> 10} KiB "
            f"(its vectors have up to {max(n.dim for n in walk_all(program.formulas))} "
            f"components)", title(program, 80),
            hint="Use smaller vectors (split the formula into several reductions), or "
            "backend=\"numpy\", which has no such limit.")


def check_kernel_code(program, operations: int, device: str) -> None:
    """Refuse a kernel that would take the compiler too long."""
    if operations > limits.MAX_KERNEL_OPERATIONS:
        raise FormulaError(
            f"the {device} kernel of this formula would have about {operations} operations, "
            f"more than the limit of {limits.MAX_KERNEL_OPERATIONS} (compiling it would "
            f"take many minutes)", title(program, 80),
            hint="Split the formula into several reductions and add their results, or "
            "write repeated terms as vector operations (loops in the kernel).")


def indent(lines: list[str], depth: int) -> str:
    pad = "    " * depth
    return "\n".join(pad + line for line in lines)


def title(program, limit: int = 300) -> str:
    """A one-line description of the kernel for its source's first comment, with
    the user's alias names (printable ASCII, no backslash, which would continue
    a // comment)."""
    # aliases are identifiers (the parser checks them); non-ASCII ones print as Var()
    names = {k: v for k, v in program.alias_names().items() if v.isascii()}
    text = "; ".join(to_formula(f, names, limit) for f in program.formulas)
    text = "".join(ch for ch in text if 32 <= ord(ch) < 127 and ch != "\\")
    if len(text) > limit:
        text = text[:limit] + "..."
    red = program.reduction
    return (f"{red.name} over j of {text}  "
            f"[{program.dtype}, acc {program.acc_dtype}, {red.sum_scheme}]")
