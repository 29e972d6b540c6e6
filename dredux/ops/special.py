"""Records of the operations computed by a loop of their own: B-splines and soft-DTW.

* ``BSpline(knots, x, order)``: the ``n - order - 1`` B-spline basis functions
  of the given order on ``n`` knots (non-decreasing), at the scalar ``x``:
  Cox-de Boor's recursion in place on one buffer of ``n - 1`` values, as KeOps
  computes it. Order 0 is the indicator of ``t_j <= x < t_{j+1}``; then
  ``B_{i,k} = w_{i,k} B_{i,k-1} + (1 - w_{i+1,k}) B_{i+1,k-1}`` with
  ``w_{i,k} = (x - t_i) / (t_{i+k} - t_i)``, taken as 0 unless ``t_i < t_{i+k}``
  (repeated knots). Its derivative in ``x`` is the classical one, written with
  the B-splines of the order below; there is none in the knots.
* ``SoftDTW_SqDist(x, y, gamma)``: the soft dynamic-time-warping discrepancy
  of the sequences ``x`` (dimension n) and ``y`` (dimension m) for the squared
  difference, with smoothing ``gamma > 0``: ``r(i, j) = (x_i - y_j)^2 +
  softmin_gamma(r(i-1, j-1), r(i-1, j), r(i, j-1))`` over the n x m grid, where
  ``softmin_gamma(a) = -gamma log sum_k exp(-a_k / gamma)``, the first row and
  column being plain cumulative sums (KeOps's convention), and the result is
  ``r(n-1, m-1)``. The forward pass walks the grid by anti-diagonals (their
  cells are independent) and keeps three of them (3 n values).
* ``GradSoftDTW_SqDist(x, y, gamma)``: its gradient in x then y (n + m
  components), by the backward pass over the stored grid (n m values);
  ``GradSoftDTW_SqDist(x, y, gamma, 1)`` appends the derivative in gamma,
  carried forward along the grid (each cell's softmin weights are the ones its
  value used). The derivative of ``SoftDTW_SqDist`` is this op; it has none.

The loops are C statements shared by the C++ and CUDA backends; their buffers
are counted in the kernel's per-thread arrays (``Renderer.array_elems``), so
that a grid too large for a thread is refused with the other limits.
"""

from __future__ import annotations

import numpy as np

from . import DimError, NoDerivative, OpDef, ParamError
from .elementwise import const, node

__all__ = ["DEFS"]


# ---------------------------------------------------------------------------
# B-splines
# ---------------------------------------------------------------------------

def _bspline_dims(dims, params):
    n, dx = dims
    (order,) = params
    if dx != 1:
        raise DimError(f"BSpline(knots, x, order) samples at a scalar x, got x of "
                       f"dimension {dx}")
    if order < 0:
        raise ParamError(f"BSpline(knots, x, order) needs order >= 0, got {order}")
    if n < order + 2:
        raise DimError(f"BSpline of order {order} needs at least {order + 2} knots, got a "
                       f"knot vector of dimension {n}")
    return n - order - 1


def _bspline_numpy(ctx, n, t, x):
    xp = ctx.xp
    (order,) = n.params
    lead = np.broadcast_shapes(t.shape[:-1], x.shape[:-1])
    t = xp.broadcast_to(t, lead + t.shape[-1:])
    x = xp.broadcast_to(x, lead + (1,))
    one = xp.ones((), dtype=ctx.dtype)
    basis = ((t[..., :-1] <= x) & (x < t[..., 1:])).astype(ctx.dtype)
    for k in range(1, order + 1):
        lo, hi = t[..., :-k], t[..., k:]
        inside = lo < hi
        w = xp.where(inside, (x - lo) / xp.where(inside, hi - lo, one), 0)
        basis = w[..., :-1] * basis[..., :-1] + (1 - w[..., 1:]) * basis[..., 1:]
    return basis.astype(ctx.dtype)


def _bspline_vjp(n, g):
    # d/dx B_{i,k} = k (B_{i,k-1} / (t_{i+k} - t_i) - B_{i+1,k-1} / (t_{i+k+1} - t_{i+1})),
    # each ratio 0 where its knots coincide (the B-spline above it is 0 there)
    knots, x = n.args
    (order,) = n.params
    no_knots = NoDerivative("BSpline(knots, x, order) has no derivative with respect to "
                            "its knots; differentiate with respect to x only")
    if order == 0:
        return (no_knots, None)  # piecewise constant in x
    size = n.dim

    def inverse_gap(start: int):
        gap = (node("EXTRACT", knots, params=(start + order, size))
               - node("EXTRACT", knots, params=(start, size)))
        inside = node("GT", gap, const(0))
        return inside / (gap + (1 - inside))

    below = node("BSPLINE", knots, x, params=(order - 1,))
    slope = (node("EXTRACT", below, params=(0, size)) * inverse_gap(0)
             - node("EXTRACT", below, params=(1, size)) * inverse_gap(1)) * order
    return (no_knots, node("SUM", g * slope))


def _c_bspline(r, n, out):
    knots, x = n.args
    (order,) = n.params
    size = knots.dim - 1  # the buffer: the order-0 indicators, updated in place
    r.array_elems += size
    buf, xv, j, k, i = (r.fresh(s) for s in ("_bs", "_bx", "_j", "_o", "_i"))
    w1, w2 = r.fresh("_w"), r.fresh("_w")

    def t(index):
        return r.acc(knots, index)

    def ratio(lo: str) -> str:
        # w_{lo, k} = (x - t_lo) / (t_{lo+k} - t_lo), 0 unless t_lo < t_{lo+k}
        hi = f"({lo} + {k})"
        return f"(({t(lo)} < {t(hi)}) ? ({xv} - {t(lo)}) / ({t(hi)} - {t(lo)}) : (T)0)"

    lines = [f"T {buf}[{size}];",
             f"const T {xv} = {r.acc(x, 0)};",
             f"for (int {j} = 0; {j} < {size}; ++{j}) "
             f"{buf}[{j}] = ({t(j)} <= {xv} && {xv} < {t(f'({j} + 1)')}) ? (T)1 : (T)0;"]
    if order:
        lines.append(
            f"for (int {k} = 1; {k} <= {order}; ++{k}) {{ T {w1} = {ratio('0')}; "
            f"for (int {i} = 0; {i} < {size} - {k}; ++{i}) {{ "
            f"const T {w2} = {ratio(f'({i} + 1)')}; "
            f"{buf}[{i}] = {w1} * {buf}[{i}] + ((T)1 - {w2}) * {buf}[{i} + 1]; "
            f"{w1} = {w2}; }} }}")
    return [f"{{ {' '.join(lines)}",
            *r.each(n.dim, lambda q: f"{out(q)} = {buf}[{q}];"), "}"]


# ---------------------------------------------------------------------------
# soft-DTW
# ---------------------------------------------------------------------------

def _require_gamma(keops: str, dims) -> None:
    if dims[2] != 1:
        raise DimError(f"{keops}(x, y, gamma) needs a scalar gamma, got dimension {dims[2]}")


def _softdtw_dims(dims, params):
    _require_gamma("SoftDTW_SqDist", dims)
    return 1


def _grad_softdtw_dims(dims, params):
    _require_gamma("GradSoftDTW_SqDist", dims)
    flag = params[0] if params else 0
    if flag not in (0, 1):
        raise ParamError(f"GradSoftDTW_SqDist(x, y, gamma, with_gamma) takes with_gamma 0 or "
                       f"1, got {flag}")
    return dims[0] + dims[1] + flag


def _softmin_numpy(xp, gamma, a, b, c):
    """Value and weights of softmin_gamma(a, b, c), with the minimum subtracted."""
    low = xp.minimum(xp.minimum(a, b), c)
    ea, eb, ec = (xp.exp((low - v) / gamma) for v in (a, b, c))
    total = ea + eb + ec
    return low - gamma * xp.log(total), (ea / total, eb / total, ec / total)


def _grid_numpy(ctx, x, y, gamma, with_gamma: bool):
    """The whole grid r (..., n, m) and, if asked, q = dr/dgamma at its last cell."""
    xp = ctx.xp
    lead = np.broadcast_shapes(x.shape[:-1], y.shape[:-1], gamma.shape[:-1])
    nx, my = x.shape[-1], y.shape[-1]
    x = xp.broadcast_to(x, lead + (nx,))
    y = xp.broadcast_to(y, lead + (my,))
    gamma = xp.broadcast_to(gamma, lead + (1,))[..., 0]
    d2 = (x[..., :, None] - y[..., None, :]) ** 2
    r = xp.empty(lead + (nx, my), dtype=ctx.dtype)
    q = xp.zeros(lead + (nx, my), dtype=ctx.dtype) if with_gamma else None
    r[..., :, 0] = xp.cumsum(d2[..., :, 0], axis=-1)
    r[..., 0, :] = xp.cumsum(d2[..., 0, :], axis=-1)
    for j in range(1, my):
        for i in range(1, nx):
            a, b, c = r[..., i - 1, j - 1], r[..., i, j - 1], r[..., i - 1, j]
            s, (pa, pb, pc) = _softmin_numpy(xp, gamma, a, b, c)
            r[..., i, j] = d2[..., i, j] + s
            if with_gamma:
                q[..., i, j] = ((s - (pa * a + pb * b + pc * c)) / gamma
                                + pa * q[..., i - 1, j - 1] + pb * q[..., i, j - 1]
                                + pc * q[..., i - 1, j])
    return r, d2, gamma, q


def _softdtw_numpy(ctx, n, x, y, gamma):
    r, _, _, _ = _grid_numpy(ctx, x, y, gamma, False)
    return r[..., -1, -1:]


def _grad_softdtw_numpy(ctx, n, x, y, gamma):
    xp = ctx.xp
    with_gamma = bool(n.params and n.params[0])
    r, d2, g, q = _grid_numpy(ctx, x, y, gamma, with_gamma)
    nx, my = r.shape[-2:]
    e = xp.zeros(r.shape, dtype=ctx.dtype)
    e[..., -1, -1] = 1
    for j in range(my - 1, -1, -1):
        for i in range(nx - 1, -1, -1):
            # E(i, j): the successors' E times their weight for (i, j), which is
            # exp((r(s) - d(s) - r(i, j)) / gamma) for every successor s (1 on the
            # first row and column, whose cells have one predecessor)
            for si, sj in ((i + 1, j), (i, j + 1), (i + 1, j + 1)):
                if si < nx and sj < my:
                    w = xp.exp((r[..., si, sj] - d2[..., si, sj] - r[..., i, j]) / g)
                    e[..., i, j] += e[..., si, sj] * w
    diff = 2 * (xp.broadcast_to(x, r.shape[:-2] + (nx,))[..., :, None]
                - xp.broadcast_to(y, r.shape[:-2] + (my,))[..., None, :])
    weighted = e * diff
    parts = [weighted.sum(-1), -weighted.sum(-2)]
    if with_gamma:
        parts.append(q[..., -1, -1:])
    return xp.concatenate(parts, axis=-1).astype(ctx.dtype)


def _softdtw_vjp(n, g, needed):
    x, y, gamma = n.args
    nx, my = x.dim, y.dim
    # the derivative in gamma is carried along the grid only when it is asked for
    with_gamma = needed[2]
    grad = node("GRADSOFTDTW", x, y, gamma, params=(1,) if with_gamma else ()) * g
    d_gamma = (node("ELEM", grad, params=(nx + my,)) if with_gamma else None)
    return (node("EXTRACT", grad, params=(0, nx)), node("EXTRACT", grad, params=(nx, my)),
            d_gamma)


def _grad_softdtw_vjp(n, g):
    return (NoDerivative("GradSoftDTW_SqDist has no derivative: a soft-DTW can be "
                         "differentiated once"),) * 3


def _c_softmin(r, gamma: str, a: str, b: str, c: str, low: str, ea: str, eb: str,
               ec: str) -> str:
    """Statements: the minimum and the three exponentials of softmin_gamma(a, b, c);
    ``gamma`` names 1 / gamma. The minimum is two selects (GCC's vminsd, no branch
    to mispredict on random data)."""
    return (f"const T {low}_ab = {a} < {b} ? {a} : {b}; "
            f"const T {low} = {low}_ab < {c} ? {low}_ab : {c}; "
            f"const T {ea} = _dr_exp(({low} - {a}) * {gamma}); "
            f"const T {eb} = _dr_exp(({low} - {b}) * {gamma}); "
            f"const T {ec} = _dr_exp(({low} - {c}) * {gamma});")


def _c_diagonal(k: str, nx: int, my: int, lo: str, hi: str) -> str:
    """The bounds ``lo <= i <= hi`` of the cells (i, k - i) of anti-diagonal k."""
    return (f"const int {lo} = {k} - {my - 1} > 0 ? {k} - {my - 1} : 0; "
            f"const int {hi} = {k} < {nx - 1} ? {k} : {nx - 1};")


def _c_ring(ring: str, k: str, nx: int, names, steps) -> str:
    """Pointers into a ring of three anti-diagonals of ``nx`` values:
    ``names[t]`` is diagonal ``k + steps[t]`` (``steps`` taken mod 3)."""
    return " ".join(f"{'T* const' if step == 0 else 'const T* const'} {name} = "
                    f"{ring} + (({k} + {step % 3}) % 3) * {nx};"
                    for name, step in zip(names, steps))


def _c_softdtw(r, n, out):
    """The forward pass by anti-diagonals k = i + j, three of them kept in a ring
    (``ring[(k % 3) * n + i] = r(i, k - i)``): the cells of one diagonal are
    independent, so the processor overlaps their exponentials, where a column's
    cells form one chain of dependent softmins (3x slower at n = m = 16)."""
    x, y, gamma = n.args
    nx, my = x.dim, y.dim
    r.array_elems += 3 * nx
    ring, gm, k, i, lo, hi, at0, at1, at2 = (
        r.fresh(s) for s in ("_dz", "_dg", "_dk", "_di", "_dl", "_dh", "_d0", "_d1", "_d2"))
    low, ea, eb, ec, d = (r.fresh(s) for s in ("_dm", "_da", "_db", "_de", "_dd"))
    xs, ys = (lambda q: r.acc(x, q)), (lambda q: r.acc(y, q))
    diag_a, up_b, left_c = f"{at2}[{i} - 1]", f"{at1}[{i} - 1]", f"{at1}[{i}]"
    return [
        f"{{ T {ring}[{3 * nx}]; const T {gm} = {r.acc(gamma, 0)}, {gm}_inv = (T)1 / {gm};",
        f"for (int {k} = 0; {k} < {nx + my - 1}; ++{k}) {{",
        _c_ring(ring, k, nx, (at0, at1, at2), (0, -1, -2)),
        _c_diagonal(k, nx, my, lo, hi),
        # the first row (i = 0) and the first column (j = 0): plain sums
        f"if ({lo} == 0) {{ const T {d} = {xs(0)} - {ys(k)}; "
        f"{at0}[0] = {d} * {d} + ({k} > 0 ? {at1}[0] : (T)0); }}",
        f"if ({hi} == {k} && {k} > 0) {{ const T {d} = {xs(k)} - {ys(0)}; "
        f"{at0}[{k}] = {d} * {d} + {at1}[{k} - 1]; }}",
        f"for (int {i} = ({lo} > 1 ? {lo} : 1); {i} <= ({hi} < {k} - 1 ? {hi} : {k} - 1); "
        f"++{i}) {{ "
        + _c_softmin(r, f"{gm}_inv", diag_a, up_b, left_c, low, ea, eb, ec)
        + f" const T {d} = {xs(i)} - {ys(f'({k} - {i})')}; "
        f"{at0}[{i}] = {d} * {d} + {low} - {gm} * _dr_log({ea} + {eb} + {ec}); }} }}",
        f"{out(0)} = {ring}[({nx + my - 2} % 3) * {nx} + {nx - 1}]; }}",
    ]


def _c_grad_softdtw(r, n, out):
    """The forward pass storing the grid, then the backward pass: ``E(i, j)`` (the
    derivative of the result in ``r(i, j)``) from its successors on the two
    diagonals after it, kept in a ring of three, accumulated into the gradients.
    Both passes walk anti-diagonals k = i + j, whose cells are independent (see
    ``_c_softdtw``), and the grid is stored by diagonals (``g[o_k + i] = r(i, k -
    i)``, ``o_k`` the cells before diagonal k, less its first i), so that a
    diagonal's cells and their neighbours are contiguous and the compiler
    vectorises the cells of a diagonal. ``dr/dgamma``, if asked, is carried in a
    ring of diagonals along the forward pass."""
    x, y, gamma = n.args
    nx, my = x.dim, y.dim
    with_gamma = bool(n.params and n.params[0])
    r.array_elems += nx * my + 3 * nx + (3 * nx if with_gamma else 0)
    names = ("_gg", "_gm", "_gd", "_gi", "_gj", "_gk", "_gl", "_gh", "_gr", "_gs", "_gq",
             "_gn", "_ga", "_gb", "_gx", "_gt", "_ge", "_g0", "_g1", "_g2", "_go", "_gc")
    (grid, gm, d, i, j, k, lo, hi, ering, s, qring, low, ea, eb, ec, tot, e0, p0, p1, p2,
     o, count) = (r.fresh(q) for q in names)
    xs, ys = (lambda q: r.acc(x, q)), (lambda q: r.acc(y, q))
    last = nx + my - 2

    def at(base, ii):
        return f"{grid}[{base} + {ii}]"

    def d2(ii, jj):  # ii, jj are index expressions: an access renders j * n + jj
        return f"(({xs(f'({ii})')} - {ys(f'({jj})')}) * ({xs(f'({ii})')} - {ys(f'({jj})')}))"

    # o0, o1, o2: the offsets of diagonals k, k -/+ 1, k -/+ 2 (forward/backward)
    o0, o1, o2 = f"{o}0", f"{o}1", f"{o}2"
    a, b, c = at(o2, f"{i} - 1"), at(o1, i), at(o1, f"{i} - 1")
    cell = (_c_softmin(r, f"{gm}_inv", a, b, c, low, ea, eb, ec)
            + f" const T {s} = {low} - {gm} * _dr_log({ea} + {eb} + {ec}); "
            f"{at(o0, i)} = {d2(i, j)} + {s};")
    # q(i, j) = dr(i, j)/dgamma = (S - sum_k p_k a_k) / gamma + sum_k p_k q_k with
    # p_k = e_k / (ea + eb + ec); 0 on the first row and column (plain sums).
    # p0 is diagonal k, p1 diagonal k - 1 (q(i, j - 1) at i, q(i - 1, j) at i - 1),
    # p2 diagonal k - 2 (q(i - 1, j - 1) at i - 1)
    edge_q = ""
    if with_gamma:
        cell += (f" const T {tot} = {ea} + {eb} + {ec}; "
                 f"{p0}[{i}] = ({s} - ({ea} * {a} + {eb} * {b} + {ec} * {c}) / {tot}) "
                 f"* {gm}_inv + ({ea} * {p2}[{i} - 1] + {eb} * {p1}[{i}] + {ec} * "
                 f"{p1}[{i} - 1]) / {tot};")
        edge_q = " {0}[{1}] = (T)0;"
    forward = [
        f"{{ T {grid}[{nx * my}]; const T {gm} = {r.acc(gamma, 0)}, {gm}_inv = (T)1 / {gm};",
        *([f"T {qring}[{3 * nx}];"] if with_gamma else []),
        f"int {count} = 0, {o0} = 0, {o1} = 0, {o2} = 0;",
        f"for (int {k} = 0; {k} <= {last}; ++{k}) {{",
        _c_diagonal(k, nx, my, lo, hi),
        f"{o2} = {o1}; {o1} = {o0}; {o0} = {count} - {lo}; {count} += {hi} - {lo} + 1;",
        *([_c_ring(qring, k, nx, (p0, p1, p2), (0, -1, -2))] if with_gamma else []),
        # the first row (i = 0) and the first column (j = 0): plain sums
        f"if ({lo} == 0) {{ {at(o0, 0)} = {d2(0, k)} + ({k} > 0 ? {at(o1, 0)} : (T)0);"
        f"{edge_q.format(p0, 0)} }}",
        f"if ({hi} == {k} && {k} > 0) {{ {at(o0, k)} = {d2(k, 0)} + "
        f"{at(o1, f'{k} - 1')};{edge_q.format(p0, k)} }}",
        f"for (int {i} = ({lo} > 1 ? {lo} : 1); {i} <= ({hi} < {k} - 1 ? {hi} : {k} - 1); "
        f"++{i}) {{ const int {j} = {k} - {i}; {cell} }} }}",
    ]

    # backward: E(n-1, m-1) = 1; E(i, j) = sum over successors s of E(s) times
    # exp((r(s) - d(s) - r(i, j)) / gamma). e0 is diagonal k, e0_1 diagonal k + 1
    # (E(i + 1, j) at i + 1, E(i, j + 1) at i), e0_2 diagonal k + 2 (E(i + 1, j + 1))
    def weight(base, si, sj):
        return f"_dr_exp(({at(base, si)} - {d2(si, sj)} - {at(o0, i)}) * {gm}_inv)"

    down, right, both = (f"{e0}_1[{i} + 1] * {weight(o1, f'{i} + 1', j)}",
                         f"{e0}_1[{i}] * {weight(o1, i, f'{j} + 1')}",
                         f"{e0}_2[{i} + 1] * {weight(o2, f'{i} + 1', f'{j} + 1')}")

    def body(total):
        return (f"{{ const int {j} = {k} - {i}; {total} "
                f"const T {d} = (T)2 * ({xs(i)} - {ys(j)}) * {tot}; "
                f"{out(i)} += {d}; {out(f'({nx} + {j})')} -= {d}; {e0}[{i}] = {tot}; }}")

    # a cell on the last row (i = n - 1) or column (j = m - 1) lacks successors:
    # the first and last cells of a diagonal are done apart, the loop between has
    # no branch
    edge = body(f"T {tot} = {k} == {last} ? (T)1 : (T)0; "
                f"if ({i} + 1 < {nx}) {tot} += {down}; "
                f"if ({j} + 1 < {my}) {tot} += {right}; "
                f"if ({i} + 1 < {nx} && {j} + 1 < {my}) {tot} += {both};")
    inner_lo, inner_hi = f"{lo}_in", f"{hi}_in"
    backward = [
        f"T {ering}[{3 * nx}];",
        *r.each(n.dim, lambda q: f"{out(q)} = (T)0;"),
        f"for (int {k} = {last}; {k} >= 0; --{k}) {{",
        _c_diagonal(k, nx, my, lo, hi),
        f"{o2} = {o1}; {o1} = {o0}; {count} -= {hi} - {lo} + 1; {o0} = {count} - {lo};",
        _c_ring(ering, k, nx, (e0, f"{e0}_1", f"{e0}_2"), (0, 1, 2)),
        f"const int {inner_lo} = {lo} + ({k} >= {my - 1}), "
        f"{inner_hi} = {hi} - ({hi} == {nx - 1});",
        f"for (int {i} = {inner_lo}; {i} <= {inner_hi}; ++{i}) "
        + body(f"const T {tot} = {down} + {right} + {both};"),
        f"if ({lo} < {inner_lo}) {{ const int {i} = {lo}; {edge} }}",
        f"if ({hi} > {inner_hi} && {hi} >= {inner_lo}) {{ const int {i} = {hi}; {edge} }} }}",
    ]
    tail = ([f"{out(nx + my)} = {qring}[{last % 3 * nx + nx - 1}];"] if with_gamma else [])
    return forward + backward + tail + ["}"]


DEFS: list[OpDef] = [
    # cost per step (order x knots of them): measured 2.4e-9 to 3.9e-9 s on a
    # 2.9 GHz core at orders 3 and 1, a division a step
    OpDef("BSPLINE", "BSpline", 2, _bspline_dims, numpy=_bspline_numpy, vjp=_bspline_vjp,
          c=_c_bspline, signature="eei", usage="BSpline(knots, x, order)", cost=150),
    # cost per cell: measured 6e-9 s a cell (value) and 7e-9 s per counted cell
    # (gradient, which counts 2 n m) on a 2.9 GHz core, 300 x the CPU calibration's
    # unit: a diagonal is a short vector, where other kernels fill every lane
    OpDef("SOFTDTW", "SoftDTW_SqDist", 3, _softdtw_dims, numpy=_softdtw_numpy,
          vjp=_softdtw_vjp, vjp_needs=True, c=_c_softdtw, signature="eee",
          usage="SoftDTW_SqDist(x, y, gamma)", cost=300),
    OpDef("GRADSOFTDTW", "GradSoftDTW_SqDist", 3, _grad_softdtw_dims,
          numpy=_grad_softdtw_numpy, vjp=_grad_softdtw_vjp, c=_c_grad_softdtw,
          signature="eee|i", usage="GradSoftDTW_SqDist(x, y, gamma[, with_gamma])",
          cost=300),
]
