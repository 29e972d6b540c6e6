"""Shared helpers of the test suite: inputs, brute-force references, caret checks.

Everything here is plain NumPy written for the tests; nothing is imported from
the dredux modules under test except the public entry point :class:`Genred`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from dredux import Genred

# Sizes on block edges (2^k - 1, 2^k, 2^k + 1) plus the degenerate ones.
EDGE_SIZES = (0, 1, 2, 7, 8, 9)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def uniform(gen: np.random.Generator, shape, lo: float = -1.0, hi: float = 1.0,
            dtype=np.float64) -> np.ndarray:
    """Fresh random values in [lo, hi) (never an all-zero array)."""
    return gen.uniform(lo, hi, size=shape).astype(dtype)


def away_from(gen: np.random.Generator, shape, points=(0.0,), margin: float = 0.2,
              lo: float = -2.0, hi: float = 2.0) -> np.ndarray:
    """Random values in [lo, hi) at least ``margin`` away from every point (kinks)."""
    out = gen.uniform(lo, hi, size=shape)
    for _ in range(100):
        bad = np.zeros(out.shape, dtype=bool)
        for p in points:
            bad |= np.abs(out - p) < margin
        if not bad.any():
            return out
        out[bad] = gen.uniform(lo, hi, size=int(bad.sum()))
    raise RuntimeError("could not draw values away from the kinks")


# ---------------------------------------------------------------------------
# input domains: (generator, shape) -> values
# ---------------------------------------------------------------------------

DOMAINS: dict[str, Callable] = {
    "any": lambda g, s: g.uniform(-2.0, 2.0, s),
    "pos": lambda g, s: g.uniform(0.2, 2.0, s),
    "unit": lambda g, s: g.uniform(-0.9, 0.9, s),
    "nz": lambda g, s: away_from(g, s, (0.0,), 0.2),
    "int": lambda g, s: g.integers(-2, 3, s).astype(np.float64),
    "not1": lambda g, s: away_from(g, s, (-1.0, 1.0), 0.1),
    "low": lambda g, s: g.uniform(-1.0, -0.1, s),
    "high": lambda g, s: g.uniform(0.1, 1.0, s),
    "mod": lambda g, s: g.uniform(0.5, 2.0, s),
    "wide": lambda g, s: g.uniform(-6.0, 6.0, s),
    # integer-valued indices 0..3 blurred by less than 0.4 (OneHot rounds them)
    "hot": lambda g, s: g.integers(0, 4, s) + g.uniform(-0.4, 0.4, s),
    # away from integers and half-integers (Floor and Round jump there)
    "frac": lambda g, s: g.integers(-3, 3, s) + g.choice([0.1, 0.3, 0.7, 0.9], s)
    + g.uniform(-0.05, 0.05, s),
    # The domains below give the same jumps in float32 and float64: their values (and
    # the sums and products the cases take of them) are exact in float32, or far
    # enough from every jump that float32 rounding cannot cross it.
    # multiples of 1/4 in [-2, 2]: exact sums and differences, ties in ArgMax/ArgMin
    "grid": lambda g, s: g.integers(-8, 9, s) / 4,
    # multiples of 1/4 in [0.5, 2] (Mod's modulus: its jumps stay on the 1/4 grid)
    "dyadic": lambda g, s: g.integers(2, 9, s) / 4,
    # [-6, 6), 0.04 or more away from the multiples of 1/4
    "offgrid": lambda g, s: g.integers(-24, 24, s) / 4 + g.uniform(0.04, 0.21, s),
    # [-2, 2) with 100 x away from half-integers (Round(x, 2) jumps there)
    "cents": lambda g, s: (g.integers(-200, 200, s) + g.choice([0.1, 0.3, 0.7, 0.9], s)
                           + g.uniform(-0.05, 0.05, s)) / 100,
    # B-spline knots: multiples of 1/4 in [-2, 2], non-decreasing along the vector
    # (repeats included), and sample points 0.04 or more away from them
    "knots": lambda g, s: np.sort(g.integers(-8, 9, s) / 4, axis=-1),
    "between": lambda g, s: g.integers(-8, 8, s) / 4 + g.uniform(0.04, 0.21, s),
    # [-6, 6) away from +-5 (Round(x, -1) jumps there)
    "wide5": lambda g, s: away_from(g, s, (-5.0, 5.0), 0.1, -6.0, 6.0),
}


def numpy_run(formula: str, aliases, *args, reduction_op: str = "Sum", axis: int = 1,
              **kwargs):
    """``Genred(formula, aliases, ...)(*args, backend="numpy")``."""
    routine = Genred(formula, list(aliases), reduction_op=reduction_op, axis=axis, **kwargs)
    return routine(*args, backend="numpy")


def pairs(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """i-values as (M, 1, d) and j-values as (1, N, d) for broadcasting."""
    return x[:, None, :], y[None, :, :]


def assert_close(actual, expected, rtol: float = 1e-10, atol: float = 1e-12, what: str = ""):
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, (
        f"{what}: shape {actual.shape}, expected {expected.shape}")
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


def caret_span(message: str, text: str) -> tuple[int, int]:
    """(column, width) of the caret line printed under ``text`` in an error message.

    The message shows the offending text indented, then a line of ``^`` under
    the bad token; the column is relative to the start of ``text``.
    """
    lines = message.splitlines()
    for k, line in enumerate(lines[:-1]):
        if line.strip() == text.strip() and line.endswith(text.strip()):
            indent = len(line) - len(text.strip())
            carets = lines[k + 1]
            found = re.fullmatch(r"( *)(\^+)", carets)
            assert found, f"no caret line under {text!r} in:\n{message}"
            return len(found.group(1)) - indent, len(found.group(2))
    raise AssertionError(f"the message does not show {text!r}:\n{message}")


def assert_caret_under(message: str, text: str, token: str, occurrence: int = 0) -> None:
    """The caret line starts under ``token`` (its ``occurrence``-th match in ``text``)."""
    col, width = caret_span(message, text)
    starts = [m.start() for m in re.finditer(re.escape(token), text)]
    assert len(starts) > occurrence, f"{token!r} is not in {text!r}"
    expected = starts[occurrence]
    assert col == expected, (
        f"caret at column {col}, expected {expected} (under {token!r}) in:\n{message}")
    assert width >= 1
    assert col + width <= len(text), f"caret runs past the text in:\n{message}"


def gauss_reference(x, y, b, g: float = 1.0, step: int = 2048) -> np.ndarray:
    """out_i = sum_j exp(-g |x_i - y_j|^2) b_j in float64, shape (M, 1), computed
    in blocks of ``step`` rows and columns (bounded memory for large inputs)."""
    x, y, b = (np.asarray(a, dtype=np.float64) for a in (x, y, b))
    out = np.zeros((x.shape[0], 1))
    for i in range(0, x.shape[0], step):
        for j in range(0, y.shape[0], step):
            d2 = ((x[i:i + step, None, :] - y[None, j:j + step, :]) ** 2).sum(-1)
            out[i:i + step, 0] += np.exp(-g * d2) @ b[j:j + step, 0]
    return out


# ---------------------------------------------------------------------------
# block-sparse reductions: random patterns and masked references
# ---------------------------------------------------------------------------

def random_clusters(gen: np.random.Generator, size: int, count: int) -> np.ndarray:
    """(count, 2) int32 ranges cutting [0, size) into ``count`` consecutive
    clusters of random sizes (some may be empty)."""
    cuts = np.sort(gen.integers(0, size + 1, count - 1))
    bounds = np.concatenate([[0], cuts, [size]])
    return np.stack([bounds[:-1], bounds[1:]], axis=1).astype(np.int32)


def ranges_from_mask(ranges_i: np.ndarray, ranges_j: np.ndarray, keep: np.ndarray):
    """KeOps's 6-tuple for the kept blocks ``keep[ci, cj]`` of the clusters
    ``ranges_i`` x ``ranges_j``, written out here from the layout's definition
    (for each row cluster, the ranges of its kept column clusters; the other
    triple the same with the axes exchanged)."""
    def triple(r_out, r_red, k):
        red, ends = [], []
        for ci in range(len(r_out)):
            red.extend(r_red[cj] for cj in np.flatnonzero(k[ci]))
            ends.append(len(red))
        return (np.asarray(r_out, np.int32), np.asarray(ends, np.int32),
                np.asarray(red, np.int32).reshape(-1, 2))
    return (*triple(ranges_i, ranges_j, keep), *triple(ranges_j, ranges_i, keep.T))


def pair_mask(ranges_i: np.ndarray, ranges_j: np.ndarray, keep: np.ndarray, m: int,
              n: int) -> np.ndarray:
    """The (m, n) boolean matrix of the kept pairs."""
    mask = np.zeros((m, n), dtype=bool)
    for ci, (a, b) in enumerate(ranges_i):
        for cj, (c, d) in enumerate(ranges_j):
            if keep[ci, cj]:
                mask[a:b, c:d] = True
    return mask


def masked_reduction(name: str, f: np.ndarray, mask: np.ndarray, g: np.ndarray | None = None,
                     k: int = 1):
    """Reference of reduction ``name`` over axis 1 of the float64 pair values
    ``f`` (M, N, D) (weights ``g`` (M, N, E)) restricted to ``mask`` (M, N), in
    dredux's conventions for rows with nothing kept (0, -inf, +inf, index -1,
    NaN for SumSoftMaxWeight)."""
    m3 = mask[:, :, None]
    empty = ~mask.any(axis=1)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if name == "Sum":
            return np.where(m3, f, 0).sum(1)
        if name in ("Max", "Min", "ArgMax", "ArgMin", "Max_ArgMax", "Min_ArgMin"):
            big = name in ("Max", "ArgMax", "Max_ArgMax")
            vals = np.where(m3, f, -np.inf if big else np.inf)
            best = vals.max(1) if big else vals.min(1)
            idx = (vals.argmax(1) if big else vals.argmin(1)).astype(np.int64)
            idx[empty] = -1
            return {"Max": best, "Min": best, "ArgMax": idx, "ArgMin": idx}.get(
                name, (best, idx))
        if name in ("KMin", "ArgKMin", "KMin_ArgKMin"):
            vals = np.where(mask, f[:, :, 0], np.inf)
            order = np.argsort(vals, axis=1, kind="stable")[:, :k]
            best = np.take_along_axis(vals, order, axis=1)
            if best.shape[1] < k:  # fewer columns than K
                pad = k - best.shape[1]
                best = np.pad(best, ((0, 0), (0, pad)), constant_values=np.inf)
                order = np.pad(order, ((0, 0), (0, pad)), constant_values=-1)
            idx = np.where(np.isinf(best), -1, order).astype(np.int64)
            return {"KMin": best, "ArgKMin": idx}.get(name, (best, idx))
        fs = np.where(mask, f[:, :, 0], -np.inf)
        top = fs.max(1)
        shift = np.where(np.isfinite(top), top, 0)
        e = np.where(mask, np.exp(fs - shift[:, None]), 0)
        if name == "LogSumExp":
            return (np.log(e.sum(1)) + shift)[:, None]
        weighted = (e[:, :, None] * (g if g is not None else 0)).sum(1)
        if name == "LogSumExpWeight":
            return np.log(weighted) + shift[:, None]
        if name == "SumSoftMaxWeight":
            return weighted / e.sum(1)[:, None]
        if name == "Max_SumShiftExp":
            return np.stack([top, e.sum(1)], axis=1)
        if name == "Max_SumShiftExpWeight":
            return np.concatenate([top[:, None], weighted], axis=1)
    raise KeyError(name)
