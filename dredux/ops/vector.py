"""Records of the vector operations: reductions over a vector, indexing, products.

Their C spellings are statement generators ``(r, node, out) -> lines`` over the
renderer's interface (:class:`dredux.codegen.render.Renderer`): ``r.acc(n, k)``
reads component k of a node, ``out(k)`` is the lvalue of component k of the
result, ``r.each`` writes a body per component (unrolled up to ``r.unroll``
components, a loop above), ``r.fresh`` makes a local name, ``r.lit`` prints a
number. ``TensorDot`` is stored as an einsum (labels for each operand and the
output), so that its derivative is again a ``TensorDot`` with the labels
exchanged; it is parsed and printed with KeOps's parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import product

import numpy as np

from . import DimError, OpDef, ParamError
from .elementwise import node

__all__ = ["DEFS", "tensordot_node", "tensordot_keops_params", "ix"]

Index = int | str


def ix(base: Index, offset: int = 0, scale: int = 1) -> Index:
    """``base * scale + offset`` as an int when possible, else C text."""
    if isinstance(base, int):
        return base * scale + offset
    text = base if scale == 1 else f"{base} * {scale}"
    return text if offset == 0 else f"({text} + {offset})"


# ---------------------------------------------------------------------------
# dimension rules
# ---------------------------------------------------------------------------

def _scalar_out(dims, params):
    return 1


def _require_scalar(keops: str, d: int) -> None:
    if d != 1:
        raise DimError(f"{keops} needs its operand to be of dimension 1, got dimension {d}")


def _sumt_dims(dims, params):
    _require_scalar("SumT", dims[0])
    (d,) = params
    if d < 1:
        raise ParamError(f"SumT needs an output dimension >= 1, got {d}")
    return d


def _scalprod_dims(dims, params):
    if dims[0] != dims[1]:
        raise DimError(f"Scalprod (|) got operands of dimensions {dims[0]} and {dims[1]}; "
                       "expected equal dimensions")
    return 1


def _elem_dims(dims, params):
    (m,) = params
    if not 0 <= m < dims[0]:
        raise DimError(f"Elem index {m} is out of range for an operand of dimension "
                       f"{dims[0]}; expected 0 <= index < {dims[0]}")
    return 1


def _elemt_dims(dims, params):
    _require_scalar("ElemT", dims[0])
    n, m = params
    if n < 1 or not 0 <= m < n:
        raise ParamError(f"ElemT(f, n={n}, m={m}) needs n >= 1 and 0 <= m < n")
    return n


def _extract_dims(dims, params):
    start, d = params
    if d < 1 or start < 0 or start + d > dims[0]:
        raise DimError(
            f"Extract(f, start={start}, dim={d}) is out of range for an operand of "
            f"dimension {dims[0]}; expected start >= 0, dim >= 1 and start + dim <= "
            f"{dims[0]}")
    return d


def _extractt_dims(dims, params):
    start, d = params
    if start < 0 or start + dims[0] > d:
        raise DimError(
            f"ExtractT(f, start={start}, dim={d}) cannot place an operand of dimension "
            f"{dims[0]}; expected start >= 0 and start + {dims[0]} <= dim")
    return d


def _onehot_dims(dims, params):
    _require_scalar("OneHot", dims[0])
    (d,) = params
    if d < 1:
        raise ParamError(f"OneHot needs a length >= 1, got {d}")
    return d


def _matvec_dims(dims, params):
    a, v = dims
    if a % v:
        raise DimError(
            f"MatVecMult(A, v) got A of dimension {a} and v of dimension {v}; expected the "
            f"dimension of A to be a multiple of {v} (A is n x {v}, stored row by row)")
    return a // v


def _vecmat_dims(dims, params):
    v, a = dims
    if a % v:
        raise DimError(
            f"VecMatMult(v, A) got v of dimension {v} and A of dimension {a}; expected the "
            f"dimension of A to be a multiple of {v} (A is {v} x n, stored row by row)")
    return a // v


def _tensordot_dims(dims, params):
    dims_a, dims_b, sub_a, sub_b, sub_out, out_shape = params
    if len(set(sub_a) | set(sub_b)) > 26:  # einsum's labels of the NumPy reference
        raise ParamError(f"TensorDot got {len(dims_a)} + {len(dims_b)} axes with "
                       f"{len(set(sub_a) | set(sub_b))} distinct ones; at most 26 are "
                       "supported (merge axes of size 1 into their neighbours)")
    if math.prod(dims_a) != dims[0] or math.prod(dims_b) != dims[1]:
        raise DimError(
            f"TensorDot got operands of dimensions {dims[0]} and {dims[1]} but shapes "
            f"{list(dims_a)} and {list(dims_b)} (products {math.prod(dims_a)} and "
            f"{math.prod(dims_b)}); expected the shapes to multiply to the dimensions")
    return math.prod(out_shape)


# ---------------------------------------------------------------------------
# TensorDot: KeOps's parameters <-> einsum labels
# ---------------------------------------------------------------------------

def tensordot_node(fa, fb, sub_a, sub_b, sub_out, size):
    """A TENSORDOT node from einsum labels, labels renumbered canonically."""
    order: dict[int, int] = {}
    for label in [*sub_a, *sub_b, *sub_out]:
        order.setdefault(label, len(order))
    params = (
        tuple(size[label] for label in sub_a),
        tuple(size[label] for label in sub_b),
        tuple(order[label] for label in sub_a),
        tuple(order[label] for label in sub_b),
        tuple(order[label] for label in sub_out),
        tuple(size[label] for label in sub_out),
    )
    return node("TENSORDOT", fa, fb, params=params)


def transposed(a, n: int, m: int):
    """The transpose (m x n, row-major) of the n x m matrix ``a`` as a TensorDot
    with the scalar 1 (:func:`transpose_of` recognises it)."""
    from .elementwise import const

    return tensordot_node(a, const(1), (0, 1), (2,), (1, 0, 2), {0: n, 1: m, 2: 1})


def transpose_of(t):
    """``(a, n, m)`` when ``t`` is :func:`transposed` of the n x m matrix ``a``,
    else None."""
    from . import Op

    if t.op is not Op.TENSORDOT or t.args[1].op is not Op.CONST or t.args[1].params[0] != 1:
        return None
    dims_a, dims_b, sub_a, sub_b, sub_out, _ = t.params
    if dims_b != (1,) or len(dims_a) != 2 or (sub_a, sub_b, sub_out) != ((0, 1), (2,), (1, 0, 2)):
        return None
    return t.args[0], dims_a[0], dims_a[1]


def _tensordot_build(fa, fb, dimsfa, dimsfb, contfa, contfb, permute=None):
    """KeOps's TensorDot(a, b, dims a, dims b, axes a, axes b, permute) -> one node."""
    dimsfa, dimsfb = list(dimsfa), list(dimsfb)
    contfa, contfb = list(contfa), list(contfb)
    if len(contfa) != len(contfb):
        raise DimError(f"TensorDot contracts {len(contfa)} axes of a but {len(contfb)} "
                       "axes of b; expected the same number")
    for name, axes, shape in (("a", contfa, dimsfa), ("b", contfb, dimsfb)):
        if len(set(axes)) != len(axes) or any(not 0 <= k < len(shape) for k in axes):
            raise ParamError(f"TensorDot contraction axes {axes} of {name} are not distinct "
                           f"axes of its shape {shape}")
    for ka, kb in zip(contfa, contfb):
        if dimsfa[ka] != dimsfb[kb]:
            raise DimError(f"TensorDot contracts axis {ka} of a (length {dimsfa[ka]}) with "
                           f"axis {kb} of b (length {dimsfb[kb]}); lengths must agree")
    sub_a = list(range(len(dimsfa)))
    sub_b = list(range(len(dimsfa), len(dimsfa) + len(dimsfb)))
    for ka, kb in zip(contfa, contfb):
        sub_b[kb] = sub_a[ka]
    size = {label: n for label, n in zip(sub_a, dimsfa)}
    size.update({label: n for label, n in zip(sub_b, dimsfb)})
    keep = [label for k, label in enumerate(sub_a) if k not in contfa]
    keep += [label for k, label in enumerate(sub_b) if k not in contfb]
    permute = list(range(len(keep))) if permute is None else list(permute)
    if sorted(permute) != list(range(len(keep))):
        raise ParamError(f"TensorDot permutation {permute} is not a permutation of "
                       f"{list(range(len(keep)))}")
    inverse = sorted(range(len(permute)), key=permute.__getitem__)
    sub_out = [keep[k] for k in inverse]
    return tensordot_node(fa, fb, sub_a, sub_b, sub_out, size)


def _argmap(labels_from, labels_to) -> list[int]:
    return [labels_from.index(label) for label in labels_to]


def tensordot_keops_params(params: tuple) -> tuple[list, list, list, list, list]:
    """The KeOps (dimfa, dimfb, contfa, contfb, permute) of a TENSORDOT node."""
    dims_a, dims_b, sub_a, sub_b, sub_out, _ = params
    contracted = [label for label in sub_a if label in sub_b]
    contfa = _argmap(sub_a, contracted)
    contfb = _argmap(sub_b, contracted)
    keep = [label for label in sub_a if label not in contracted]
    keep += [label for label in sub_b if label not in contracted]
    inverse = _argmap(keep, sub_out)  # out axis i is keep axis inverse[i]
    permute = [0] * len(inverse)
    for i, k in enumerate(inverse):
        permute[k] = i
    return list(dims_a), list(dims_b), contfa, contfb, permute


# ---------------------------------------------------------------------------
# NumPy references
# ---------------------------------------------------------------------------

def _lead(xp, *arrays):
    """Broadcast the leading axes of arrays, keeping each one's last axis."""
    lead = np.broadcast_shapes(*(a.shape[:-1] for a in arrays))
    return [xp.broadcast_to(a, lead + a.shape[-1:]) for a in arrays]


def _best_numpy(greater: bool, want_index: bool):
    """Max / Min / ArgMax / ArgMin as a left-to-right scan with a strict comparison.

    This is how the compiled backends (and KeOps) spell them: ties keep the first
    component, a NaN in component 0 sticks and a later NaN is skipped (NumPy's
    max and argmax would return the NaN wherever it is).
    """
    def fn(ctx, n, a):
        xp = ctx.xp
        best = a[..., :1]
        index = xp.zeros(best.shape, dtype=ctx.dtype)
        for k in range(1, a.shape[-1]):
            cur = a[..., k:k + 1]
            better = cur > best if greater else cur < best
            best = xp.where(better, cur, best)
            index = xp.where(better, k, index)
        return (index if want_index else best).astype(ctx.dtype)
    return fn


def _elemt_numpy(ctx, n, a):
    size, m = n.params
    out = ctx.xp.zeros(a.shape[:-1] + (size,), dtype=a.dtype)
    out[..., m] = a[..., 0]
    return out


def _extractt_numpy(ctx, n, a):
    start, d = n.params
    out = ctx.xp.zeros(a.shape[:-1] + (d,), dtype=a.dtype)
    out[..., start:start + a.shape[-1]] = a
    return out


def _onehot_numpy(ctx, n, a):
    (d,) = n.params
    k = ctx.xp.floor(a + 0.5)
    return (k == ctx.xp.arange(d, dtype=a.dtype)).astype(ctx.dtype)


def _matvec_numpy(ctx, n, a, v):
    rows, m = n.dim, v.shape[-1]
    return (a.reshape(a.shape[:-1] + (rows, m)) * v[..., None, :]).sum(-1)


def _vecmat_numpy(ctx, n, v, a):
    m, cols = v.shape[-1], n.dim
    return (v[..., :, None] * a.reshape(a.shape[:-1] + (m, cols))).sum(-2)


def _tensorprod_numpy(ctx, n, a, b):
    out = a[..., :, None] * b[..., None, :]
    return out.reshape(out.shape[:-2] + (n.dim,))


def _tensordot_numpy(ctx, n, a, b):
    dims_a, dims_b, sub_a, sub_b, sub_out, _ = n.params
    a, b = _lead(ctx.xp, a, b)
    lead = a.shape[:-1]
    letters = "abcdefghijklmnopqrstuvwxyz"
    spec = "...{},...{}->...{}".format(*("".join(letters[k] for k in s)
                                          for s in (sub_a, sub_b, sub_out)))
    out = ctx.xp.einsum(spec, a.reshape(lead + dims_a), b.reshape(lead + dims_b))
    return out.reshape(lead + (n.dim,))


# ---------------------------------------------------------------------------
# derivatives
# ---------------------------------------------------------------------------

def _best_vjp(pick: str):
    def rule(n, g):
        (a,) = n.args
        return (node("ONEHOT", node(pick, a), params=(a.dim,)) * g,)
    return rule


def _tensordot_vjp(n, g):
    a, b = n.args
    dims_a, dims_b, sub_a, sub_b, sub_out, _ = n.params
    size = dict(zip(sub_a, dims_a)) | dict(zip(sub_b, dims_b))
    return (tensordot_node(g, b, sub_out, sub_b, sub_a, size),
            tensordot_node(g, a, sub_out, sub_a, sub_b, size))


def _none(n, g):
    return (None,) * len(n.args)


# ---------------------------------------------------------------------------
# C statements
# ---------------------------------------------------------------------------

def _sum_of(r, terms: Callable[[Index], str], count: int, target: str) -> list[str]:
    """``target = sum_k terms(k)`` for k < count."""
    if count <= r.unroll:
        return [f"{target} = {' + '.join(terms(k) for k in range(count))};"]
    k = r.fresh("_k")
    return [f"{target} = (T)0;",
            f"for (int {k} = 0; {k} < {count}; ++{k}) {target} += {terms(k)};"]


def _c_sum(r, n, out):
    (a,) = n.args
    return _sum_of(r, lambda k: r.acc(a, k), a.dim, out(0))


def _c_sumt(r, n, out):
    (a,) = n.args
    return r.each(n.dim, lambda k: f"{out(k)} = {r.acc(a, 0)};")


def _c_scalprod(r, n, out):
    a, b = n.args
    return _sum_of(r, lambda k: f"{r.acc(a, k)} * {r.acc(b, k)}", a.dim, out(0))


def _c_best(greater: bool, want_index: bool):
    def gen(r, n, out):
        (a,) = n.args
        if a.dim == 1:
            return [f"{out(0)} = {'(T)0' if want_index else r.acc(a, 0)};"]
        cmp = ">" if greater else "<"
        best, idx = r.fresh("_best"), r.fresh("_arg")
        lines = [f"T {best} = {r.acc(a, 0)};"]
        if want_index:
            lines.append(f"T {idx} = (T)0;")

        def step(k):
            cur = r.acc(a, k)
            line = f"{idx} = ({cur} {cmp} {best}) ? (T){k} : {idx}; " if want_index else ""
            return line + f"{best} = ({cur} {cmp} {best}) ? {cur} : {best};"

        lines += r.each_from(1, a.dim, step)
        lines.append(f"{out(0)} = {idx if want_index else best};")
        return lines
    return gen


def _c_elem(r, n, out):
    (a,) = n.args
    return [f"{out(0)} = {r.acc(a, n.params[0])};"]


def _c_elemt(r, n, out):
    (a,) = n.args
    _, m = n.params

    def body(k):
        if isinstance(k, int):
            return f"{out(k)} = {r.acc(a, 0) if k == m else '(T)0'};"
        return f"{out(k)} = ({k} == {m}) ? {r.acc(a, 0)} : (T)0;"
    return r.each(n.dim, body)


def _c_extract(r, n, out):
    (a,) = n.args
    start = n.params[0]
    return r.each(n.dim, lambda k: f"{out(k)} = {r.acc(a, ix(k, start))};")


def _c_extractt(r, n, out):
    (a,) = n.args
    start = n.params[0]
    stop = start + a.dim

    def body(k):
        if isinstance(k, int):
            value = r.acc(a, k - start) if start <= k < stop else "(T)0"
            return f"{out(k)} = {value};"
        return (f"{out(k)} = ({k} >= {start} && {k} < {stop}) ? "
                f"{r.acc(a, f'({k} - {start})' if start else k)} : (T)0;")
    return r.each(n.dim, body)


def _c_concat(r, n, out):
    """Each operand copied to its place; a chain of Concats is copied as one:
    its inner Concats, read by it alone, are never stored
    (:func:`dredux.codegen.render.inlined_nodes`), so that ``Concat(Concat(a,
    b), c)`` fills one array instead of copying a and b twice."""
    parts, stack = [], [(n.args[1], n.args[0].dim), (n.args[0], 0)]
    while stack:  # left to right, without recursion (chains may be long)
        part, start = stack.pop()
        if part.op is n.op and part in r.inline:  # an inner Concat
            stack += [(part.args[1], start + part.args[0].dim), (part.args[0], start)]
        else:
            parts.append((part, start))
    lines = []
    for part, start in parts:
        def body(k, part=part, start=start):
            at = k - start if isinstance(k, int) else f"({k} - {start})" if start else k
            return f"{out(k)} = {r.acc(part, at)};"
        lines += r.each_from(start, start + part.dim, body)
    return lines


def _c_onehot(r, n, out):
    (a,) = n.args
    hot = r.fresh("_hot")
    lines = [f"const T {hot} = _dr_floor({r.acc(a, 0)} + (T)0.5);"]
    return lines + r.each(n.dim, lambda k: f"{out(k)} = (T)({hot} == (T){k});")


def _loop_sum(r, target: str, count: int, term: Callable[[str], str]) -> str:
    k = r.fresh("_k")
    return (f"{target} = (T)0; "
            f"for (int {k} = 0; {k} < {count}; ++{k}) {target} += {term(k)};")


def _c_matvec(r, n, out):
    """out[i] = sum_k A[i * m + k] v[k] (A is n x m, row by row)."""
    a, v = n.args
    m = v.dim

    def body(i):
        if m <= r.unroll:
            terms = " + ".join(f"{r.acc(a, ix(i, k, m))} * {r.acc(v, k)}" for k in range(m))
            return f"{out(i)} = {terms};"
        return _loop_sum(r, out(i), m, lambda k: f"{r.acc(a, f'({ix(i, 0, m)} + {k})')} * "
                                                 f"{r.acc(v, k)}")
    return r.each(n.dim, body)


def _c_vecmat(r, n, out):
    """out[i] = sum_k v[k] A[k * cols + i] (A is m x cols, row by row)."""
    v, a = n.args
    m, cols = v.dim, n.dim

    def body(i):
        if m <= r.unroll:
            terms = " + ".join(f"{r.acc(v, k)} * {r.acc(a, ix(i, k * cols))}"
                               for k in range(m))
            return f"{out(i)} = {terms};"
        return _loop_sum(r, out(i), m,
                         lambda k: f"{r.acc(v, k)} * {r.acc(a, f'({k} * {cols} + {i})')}")
    return r.each(n.dim, body)


def _c_tensorprod(r, n, out):
    a, b = n.args
    db = b.dim
    if n.dim <= r.unroll:
        return [f"{out(k * db + l)} = {r.acc(a, k)} * {r.acc(b, l)};"
                for k in range(a.dim) for l in range(db)]
    k, l = r.fresh("_k"), r.fresh("_l")
    return [f"for (int {k} = 0; {k} < {a.dim}; ++{k}) for (int {l} = 0; {l} < {db}; ++{l}) "
            f"{out(f'{k} * {db} + {l}')} = {r.acc(a, k)} * {r.acc(b, l)};"]


def _strides(shape: Sequence[int]) -> list[int]:
    out, acc = [], 1
    for s in reversed(shape):
        out.append(acc)
        acc *= s
    return out[::-1]


def _c_tensordot(r, n, out):
    a, b = n.args
    dims_a, dims_b, sub_a, sub_b, sub_out, out_shape = n.params
    size = dict(zip(sub_a, dims_a)) | dict(zip(sub_b, dims_b))
    contracted = [label for label in sub_a if label in sub_b and label not in sub_out]
    st_a, st_b, st_o = _strides(dims_a), _strides(dims_b), _strides(out_shape)
    terms_in_all = n.dim * math.prod(size[label] for label in contracted)
    if terms_in_all > 8 * r.unroll:  # loops: the source grows with the formula, not n^3
        return _c_tensordot_loops(r, n, out, size, contracted, st_a, st_b, st_o)
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
        lines.append(f"{out(flat_o)} = {' + '.join(terms) or '(T)0'};")
    return lines


def _c_tensordot_loops(r, n, out, size, contracted, st_a, st_b, st_o):
    """TensorDot as nested loops over the output's and the contracted indices."""
    a, b = n.args
    _, _, sub_a, sub_b, sub_out, _ = n.params
    var = {label: r.fresh("_t") for label in (*sub_out, *contracted)}

    def flat(labels, strides):
        parts = [var[label] if s == 1 else f"{var[label]} * {s}"
                 for label, s in zip(labels, strides) if size[label] > 1]
        return f"({' + '.join(parts)})" if parts else 0

    def loops(labels):
        return "".join(f"for (int {var[label]} = 0; {var[label]} < {size[label]}; "
                       f"++{var[label]}) " for label in labels)

    total = r.fresh("_dot")
    term = f"{r.acc(a, flat(sub_a, st_a))} * {r.acc(b, flat(sub_b, st_b))}"
    return [f"{loops(sub_out)}{{ T {total} = (T)0; {loops(contracted)}{total} += {term}; "
            f"{out(flat(sub_out, st_o))} = {total}; }}"]


# ---------------------------------------------------------------------------
# the records
# ---------------------------------------------------------------------------

def _vector(name, keops, arity, dims, numpy, vjp, c, *, signature=None, usage="",
            linear=(), additive=False, reads_once=False, build=None,
            print_params=None) -> OpDef:
    return OpDef(name, keops, arity, dims, numpy=numpy, vjp=vjp, c=c,
                 signature=signature or "e" * arity, usage=usage, linear=linear,
                 additive=additive, reads_once=reads_once, build=build,
                 print_params=print_params)


DEFS: list[OpDef] = [
    _vector("SUM", "Sum", 1, _scalar_out, lambda c, n, a: a.sum(-1, keepdims=True),
            lambda n, g: (node("SUMT", g, params=(n.args[0].dim,)),), _c_sum,
            linear=(0,), reads_once=True),
    _vector("SUMT", "SumT", 1, _sumt_dims,
            lambda c, n, a: c.xp.broadcast_to(a, a.shape[:-1] + (n.dim,)),
            lambda n, g: (node("SUM", g),), _c_sumt, signature="ei", usage="SumT(f, dim)",
            linear=(0,)),
    _vector("MAX", "Max", 1, _scalar_out, _best_numpy(True, False), _best_vjp("ARGMAX"),
            _c_best(True, False)),
    _vector("MIN", "Min", 1, _scalar_out, _best_numpy(False, False), _best_vjp("ARGMIN"),
            _c_best(False, False)),
    _vector("ARGMAX", "ArgMax", 1, _scalar_out, _best_numpy(True, True), _none,
            _c_best(True, True)),
    _vector("ARGMIN", "ArgMin", 1, _scalar_out, _best_numpy(False, True), _none,
            _c_best(False, True)),
    _vector("SCALPROD", "Scalprod", 2, _scalprod_dims,
            lambda c, n, a, b: (a * b).sum(-1, keepdims=True),
            lambda n, g: (g * n.args[1], g * n.args[0]), _c_scalprod, linear=(0, 1),
            reads_once=True),
    _vector("ELEM", "Elem", 1, _elem_dims,
            lambda c, n, a: a[..., n.params[0]:n.params[0] + 1],
            lambda n, g: (node("ELEMT", g, params=(n.args[0].dim, n.params[0])),), _c_elem,
            signature="ei", usage="Elem(f, index)", linear=(0,), reads_once=True),
    _vector("ELEMT", "ElemT", 1, _elemt_dims, _elemt_numpy,
            lambda n, g: (node("ELEM", g, params=(n.params[1],)),), _c_elemt,
            signature="eii", usage="ElemT(f, dim, index)", linear=(0,)),
    _vector("EXTRACT", "Extract", 1, _extract_dims,
            lambda c, n, a: a[..., n.params[0]:n.params[0] + n.params[1]],
            lambda n, g: (node("EXTRACTT", g, params=(n.params[0], n.args[0].dim)),),
            _c_extract, signature="eii", usage="Extract(f, start, dim)", linear=(0,),
            reads_once=True),
    _vector("EXTRACTT", "ExtractT", 1, _extractt_dims, _extractt_numpy,
            lambda n, g: (node("EXTRACT", g, params=(n.params[0], n.args[0].dim)),),
            _c_extractt, signature="eii", usage="ExtractT(f, start, dim)", linear=(0,)),
    _vector("CONCAT", "Concat", 2, lambda dims, params: dims[0] + dims[1],
            lambda c, n, a, b: c.xp.concatenate(_lead(c.xp, a, b), axis=-1),
            lambda n, g: (node("EXTRACT", g, params=(0, n.args[0].dim)),
                          node("EXTRACT", g, params=(n.args[0].dim, n.args[1].dim))),
            _c_concat, additive=True, reads_once=True),
    _vector("ONEHOT", "OneHot", 1, _onehot_dims, _onehot_numpy, _none, _c_onehot,
            signature="ei", usage="OneHot(f, dim)"),
    _vector("MATVECMULT", "MatVecMult", 2, _matvec_dims, _matvec_numpy,
            lambda n, g: (node("TENSORPROD", g, n.args[1]), node("VECMATMULT", g, n.args[0])),
            _c_matvec, linear=(0, 1)),
    _vector("VECMATMULT", "VecMatMult", 2, _vecmat_dims, _vecmat_numpy,
            lambda n, g: (node("MATVECMULT", n.args[1], g), node("TENSORPROD", n.args[0], g)),
            _c_vecmat, linear=(0, 1)),
    _vector("TENSORPROD", "TensorProd", 2, lambda dims, params: dims[0] * dims[1],
            _tensorprod_numpy,
            lambda n, g: (node("MATVECMULT", g, n.args[1]), node("VECMATMULT", n.args[0], g)),
            _c_tensorprod, linear=(0, 1)),
    _vector("TENSORDOT", "TensorDot", 2, _tensordot_dims, _tensordot_numpy, _tensordot_vjp,
            _c_tensordot, signature="eellll|l", linear=(0, 1), build=_tensordot_build,
            usage="TensorDot(a, b, [dims a], [dims b], [axes a], [axes b], [perm])",
            print_params=tensordot_keops_params),
]
