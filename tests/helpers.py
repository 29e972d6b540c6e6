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
