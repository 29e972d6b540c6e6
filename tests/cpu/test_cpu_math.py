"""Accuracy of the CPU kernels' own vectorised exp, log, sin, cos and pow (kernels/cpu/math.hpp).

Each value is computed as a ``Sum`` over a single column, which returns the
formula's value unchanged, and compared with NumPy's exp/log evaluated in
float64 (float32 case) or in extended precision where available. The error is
counted in ulp of the exact result in the tested dtype.

exp flushes results below the smallest normal number to +0 (as CUDA does with
-ftz); the tests state that rule: every normal result is within ``MAX_ULP``,
every result below the smallest normal is +0 except just below it (a relative
``FTZ_EDGE``, where the rounding of the range reduction decides), where it may
also be the correctly rounded subnormal.
"""

from __future__ import annotations

import numpy as np
import pytest

from dredux import Genred

ALIASES = ["x = Vi(1)", "y = Vj(1)"]
EXP = Genred("Exp(x * y)", ALIASES, axis=1)
LOG = Genred("Log(x * y)", ALIASES, axis=1)
MAX_ULP = 2.0
FTZ_EDGE = 1e-5


def values(routine, x, dtype):
    """The formula at (x_i, 1) for every i, through the CPU kernel."""
    x = np.asarray(x, dtype=dtype).reshape(-1, 1)
    return routine(x, np.ones((1, 1), dtype), backend="cpu")[:, 0]


def exact(fn, x, dtype):
    if np.dtype(dtype) == np.float32:
        return fn(x.astype(np.float64))
    ld = np.longdouble
    if np.finfo(ld).nmant < 60:  # pragma: no cover - platforms without 80-bit long double
        pytest.skip("no extended precision to check float64 results against")
    return fn(x.astype(ld))


def ulp_error(got, ref, dtype):
    """|got - ref| in units of the spacing of ``dtype`` at ``ref`` (subnormals included)."""
    tiny = np.finfo(dtype).smallest_subnormal
    spacing = np.spacing(np.abs(ref.astype(dtype))).astype(ref.dtype)
    return np.abs(got.astype(ref.dtype) - ref) / np.maximum(spacing, tiny)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_is_within_two_ulp_and_flushes_subnormal_results(dtype):
    info = np.finfo(dtype)
    lo = np.log(info.smallest_subnormal) * 0.999
    hi = np.log(info.max) * 0.999
    edge = np.log(info.smallest_normal)
    gen = np.random.default_rng(0)
    x = np.concatenate([np.linspace(lo, hi, 200_001), gen.uniform(-1, 1, 100_000),
                        gen.uniform(lo, hi, 100_000),
                        np.linspace(edge - 0.01, edge + 0.01, 20_001),  # the flush edge
                        np.linspace(hi - 0.1, hi / 0.999 + 0.5, 20_001)]).astype(dtype)
    got = values(EXP, x, dtype)
    ref = exact(np.exp, x, dtype)
    wide = ref.dtype.type  # float64, or extended precision for float64 results
    overflow = ref > wide(info.max) * (1 + wide(info.eps))
    assert overflow.any() and np.all(got[overflow] == np.inf)
    normal = (ref >= info.smallest_normal) & (ref <= info.max)
    err = ulp_error(got[normal], ref[normal], dtype)
    assert err.max() <= MAX_ULP, (float(err.max()), x[normal][np.argmax(err)])
    flushed = ref < info.smallest_normal * (1 - FTZ_EDGE)
    near = (ref < info.smallest_normal) & ~flushed  # just below the smallest normal
    assert flushed.sum() > 1000 and near.any()  # both rules are exercised
    assert np.all(got[flushed] == 0) and not np.signbit(got[flushed]).any(), \
        x[flushed][got[flushed] != 0][:5]
    near_err = ulp_error(got[near], ref[near], dtype)
    assert np.all((got[near] == 0) | (near_err <= MAX_ULP)), near_err.max()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_is_within_two_ulp(dtype):
    info = np.finfo(dtype)
    gen = np.random.default_rng(1)
    logs = np.concatenate([np.linspace(np.log(info.smallest_subnormal), np.log(info.max),
                                       200_001), gen.uniform(-2, 2, 100_000)])
    with np.errstate(over="ignore"):
        x = np.exp(logs).astype(dtype)
    x = np.concatenate([x, (1 + gen.uniform(-0.3, 0.3, 100_000)).astype(dtype)])
    x = x[(x > 0) & np.isfinite(x)]
    got = values(LOG, x, dtype)
    err = ulp_error(got, exact(np.log, x, dtype), dtype)
    assert err.max() <= MAX_ULP, (float(err.max()), x[np.argmax(err)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_special_values(dtype):
    info = np.finfo(dtype)
    big = np.log(info.max) * 1.01
    tiny = np.log(info.smallest_subnormal) * 1.01
    subnormal = np.log(info.smallest_normal) - 1.0  # e^x is subnormal: flushed to +0
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, big, tiny, 1.0, subnormal])
    with np.errstate(over="ignore", under="ignore"):
        want = np.exp(x).astype(dtype)
    want[-1] = 0.0
    got = values(EXP, x, dtype)
    np.testing.assert_array_equal(got, want)
    assert not np.signbit(got[[3, 7, 9]]).any()  # +0, not -0
    x = np.array([0.0, -1.0, np.inf, np.nan, 1.0, info.smallest_subnormal, -np.inf])
    with np.errstate(divide="ignore", invalid="ignore"):
        want = np.log(x.astype(dtype))
    got = values(LOG, x, dtype)
    np.testing.assert_array_equal(got[[0, 1, 2, 3, 4, 6]], want[[0, 1, 2, 3, 4, 6]])
    assert abs(got[5] - want[5]) <= np.spacing(abs(want[5]))


SIN = Genred("Sin(x * y)", ALIASES, axis=1)
COS = Genred("Cos(x * y)", ALIASES, axis=1)


def _every_range_of_floats(count: int) -> np.ndarray:
    """Random float32s of every exponent (bit patterns below +inf, both signs),
    the first periods, and the integers near multiples of pi/2 up to 2^24."""
    gen = np.random.default_rng(3)
    patterns = gen.integers(0, 0x7F800000, count, dtype=np.int64).astype(np.int32)
    signs = gen.choice(np.array([1, -1], np.float32), count)
    near = np.round(np.arange(1, 2 ** 24, 2 ** 24 // 5_000) * np.pi / 2)
    return np.concatenate([patterns.view(np.float32) * signs,
                           gen.uniform(-10, 10, count).astype(np.float32),
                           near.astype(np.float32), np.float32(2 ** 24) * near[:100],
                           [np.finfo(np.float32).max, -np.finfo(np.float32).max,
                            np.finfo(np.float32).smallest_subnormal]]).astype(np.float32)


@pytest.mark.parametrize("name", ["sin", "cos"])
def test_float_sine_and_cosine_are_within_an_ulp_for_every_float(name):
    # the kernels reduce a float modulo 2 pi exactly, through a table, up to
    # the largest float (kernels/cpu/math.hpp): no loss for large arguments
    x = _every_range_of_floats(400_000)
    routine, fn = (SIN, np.sin) if name == "sin" else (COS, np.cos)
    got = values(routine, x, np.float32)
    err = ulp_error(got, fn(x.astype(np.float64)), np.float32)
    assert err.max() <= 1.0, (float(err.max()), x[np.argmax(err)])
    with np.errstate(invalid="ignore"):
        special = np.array([np.inf, -np.inf, np.nan, 0.0], np.float32)
        np.testing.assert_array_equal(values(routine, special, np.float32),
                                      fn(special.astype(np.float64)).astype(np.float32))


def test_the_tables_in_math_hpp_are_the_ones_their_script_writes():
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parents[2] / "kernels" / "cpu" / "tables.py"
    done = subprocess.run([sys.executable, str(script), "--check"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("name", ["sin", "cos"])
def test_double_sine_and_cosine_keep_their_digits_near_multiples_of_half_pi(name):
    # below 2^30 the kernels' own reduction (r in two doubles), above it the C
    # library through a SIMD clone (kernels/cpu/math.hpp); the doubles nearest
    # to k pi / 2 have results down to 1e-18, where a one-double reduction
    # loses every digit
    gen = np.random.default_rng(4)
    k = np.unique(np.concatenate([np.arange(1, 20_000), gen.integers(1, 2 ** 31, 100_000)]))
    half_pi = np.longdouble("1.57079632679489661923132169163975144")  # 64 bits, not np.pi's 53
    if np.finfo(np.longdouble).nmant < 60:  # pragma: no cover - no 80-bit long double
        pytest.skip("no extended precision to place the doubles nearest k pi / 2")
    near = (k.astype(np.longdouble) * half_pi).astype(np.float64)
    x = np.concatenate([near, np.nextafter(near, 0), gen.uniform(-10, 10, 200_000),
                        np.exp(gen.uniform(-700, 700, 200_000)) * gen.choice([-1, 1], 200_000),
                        [np.finfo(np.float64).max, np.finfo(np.float64).smallest_subnormal]])
    routine, fn = (SIN, np.sin) if name == "sin" else (COS, np.cos)
    got = values(routine, x, np.float64)
    err = ulp_error(got, exact(fn, x, np.float64), np.float64)
    assert err.max() <= 1.5, (float(err.max()), x[np.argmax(err)])
    with np.errstate(invalid="ignore"):
        special = np.array([np.inf, -np.inf, np.nan, 0.0])
        np.testing.assert_array_equal(values(routine, special, np.float64), fn(special))


POW = Genred("Powf(x, y)", ALIASES, axis=1)


def pow_values(x, y, dtype):
    """Powf(x_i, y_i) for every i through the CPU kernel: x_i against the single
    column y_i, one call per distinct y (the columns are the exponents)."""
    x, y = np.asarray(x, dtype), np.asarray(y, dtype)
    out = np.empty_like(x)
    for value in np.unique(y[~np.isnan(y)]).tolist() + ([np.nan] if np.isnan(y).any() else []):
        at = np.isnan(y) if value != value else y == value
        out[at] = POW(x[at].reshape(-1, 1), np.array([[value]], dtype), backend="cpu")[:, 0]
    return out


def _pow_cases(gen, dtype, groups, count):
    """``groups`` exponents y of every magnitude (up to 2^22 in float, 2^50 in
    double: there x^y is a number only for x next to 1, where log x must keep its
    digits), ``count`` bases x each with x^y a normal number spread over the whole
    range; and integer exponents of negative bases."""
    fin = np.finfo(dtype)
    big = float(np.log(fin.max)) * 0.999
    top = 22 if dtype == np.float32 else 50
    xs, ys = [], []
    for _ in range(groups):
        y = np.exp2(gen.uniform(-8, top)) * gen.choice([-1.0, 1.0])
        y = float(np.asarray(y, dtype))
        span = big * min(1.0, abs(y))  # so that x = e^(t / y) is a normal number too
        t = gen.uniform(-span, span, count)  # log(x^y)
        x = np.exp(t / y).astype(dtype)
        xs.append(x)
        ys.append(np.full(count, y, dtype))
    for n in gen.integers(-40, 40, groups // 4):
        xs.append(-gen.uniform(0.05, 8, count).astype(dtype))
        ys.append(np.full(count, n, dtype))
    x, y = np.concatenate(xs), np.concatenate(ys)
    with np.errstate(over="ignore", under="ignore", divide="ignore"):
        ref = np.abs(np.power(x.astype(np.longdouble), y.astype(np.longdouble)))
    keep = (ref > fin.tiny) & (ref < fin.max) & (x != 1)
    return x[keep], y[keep]


@pytest.mark.parametrize("dtype, bound", [(np.float32, 1.0), (np.float64, 2.5)])
def test_pow_is_accurate_over_the_range_and_next_to_one(dtype, bound):
    # float computes in double (0.51 ulp measured); double carries log x in two
    # doubles, since e^t turns t's absolute error into a relative one (2.1 ulp
    # measured, most of it _dr_exp's); x near 1 with |y| up to 2^50 is where a
    # one-double log loses every digit
    gen = np.random.default_rng(7)
    x, y = _pow_cases(gen, dtype, 64, 4000)
    assert x.size > 200_000  # (nearly all are kept: the results lie in range)
    got = pow_values(x, y, dtype)
    ref = exact(lambda v: np.power(v, y.astype(v.dtype)), x, dtype)
    err = ulp_error(got, ref, dtype)
    assert err.max() <= bound, (float(err.max()), x[np.argmax(err)], y[np.argmax(err)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pow_special_values_follow_c(dtype):
    # every pair of zeros, ones, infinities, NaN, integers odd and even (2^53
    # is an even one), halves and a subnormal, against NumPy's power (C's pow);
    # double results below 2^-1022 are flushed to +0, as exp's
    tiny = np.finfo(dtype).smallest_subnormal
    values = np.array([0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 3.0, -3.0, 2.5, -2.5,
                       np.inf, -np.inf, np.nan, 2.0 ** 53, -(2.0 ** 53), tiny, -tiny], dtype)
    x, y = (a.ravel() for a in np.meshgrid(values, values))
    got = pow_values(x, y, dtype)
    with np.errstate(all="ignore"):
        ref = np.power(x, y)
    flushed = (dtype == np.float64) & (np.abs(ref) < np.finfo(dtype).tiny) & (got == 0)
    same = (got == ref) & (np.signbit(got) == np.signbit(ref)) | (np.isnan(got) & np.isnan(ref))
    close = np.isclose(got, ref, rtol=4 * np.finfo(dtype).eps, atol=0)
    bad = ~(same | flushed | close)
    assert not bad.any(), list(zip(x[bad], y[bad], got[bad], ref[bad]))[:10]


def _signed_values(routine, x, column=None, dtype=np.float32):
    """The routine's formula at (x_i, column) as a Max over the single column:
    the value itself with the sign of a zero (a Sum's 0 + -0 is +0), NaN
    excepted (a NaN never wins a Max)."""
    column = np.ones((1, 1), dtype) if column is None else np.asarray(column, dtype)
    best = Genred(routine.formula, ALIASES, reduction_op="Max", axis=1)
    return best(np.asarray(x, dtype).reshape(-1, 1), column, backend="cpu")[:, 0]


ATAN = Genred("Atan(x * y)", ALIASES, axis=1)
ASIN = Genred("Asin(x * y)", ALIASES, axis=1)
ACOS = Genred("Acos(x * y)", ALIASES, axis=1)
ATAN2 = Genred("Atan2(x, y)", ALIASES, axis=1)


@pytest.mark.parametrize("name", ["atan", "asin", "acos"])
def test_float_inverse_trig_is_within_an_ulp_for_every_float(name):
    # computed in double, rounded once (0.5 ulp measured); for asin and acos
    # |x| > 1 is NaN, so are inf and NaN; atan(+-inf) = +-pi/2; the signs of 0 kept
    routine, fn = {"atan": (ATAN, np.arctan), "asin": (ASIN, np.arcsin),
                   "acos": (ACOS, np.arccos)}[name]
    x = _every_range_of_floats(3_000_000)
    if name != "atan":
        gen = np.random.default_rng(5)
        x = np.concatenate([x[np.abs(x) <= 1], gen.uniform(-1, 1, 1_000_000).astype(np.float32),
                            np.float32([0.5, -0.5, 1, -1, np.nextafter(np.float32(0.5), 1)])])
    got = values(routine, x, np.float32)
    err = ulp_error(got, fn(x.astype(np.float64)), np.float32)
    assert err.max() <= 1.0, (float(err.max()), x[np.argmax(err)])
    special = np.float32([np.inf, -np.inf, np.nan, 0.0, -0.0, 1.0000001, -1.0000001])
    with np.errstate(invalid="ignore"):
        want = fn(special.astype(np.float64)).astype(np.float32)
    np.testing.assert_array_equal(values(routine, special, np.float32), want)
    signed = _signed_values(routine, special)
    number = ~np.isnan(want)
    assert np.array_equal(np.signbit(signed[number]), np.signbit(want[number]))


def test_float_atan2_is_within_an_ulp_with_cs_special_values():
    y = _every_range_of_floats(400_000)
    out, ref = [], []
    for x in np.float32([0.7, -3.0, 1e-30, -2e30, 1.0]):  # one column each
        out.append(ATAN2(y.reshape(-1, 1), np.float32([[x]]), backend="cpu")[:, 0])
        ref.append(np.arctan2(y.astype(np.float64), np.float64(x)))
    err = ulp_error(np.concatenate(out), np.concatenate(ref), np.float32)
    assert err.max() <= 1.0, float(err.max())
    # every pair of zeros, infinities, NaN, tiny and huge values, both signs
    edges = np.float32([0.0, -0.0, 1.0, -1.0, 1e-40, -1e-40, 3e38, -3e38, np.inf, -np.inf,
                        np.nan])
    for x in edges:
        col = np.float32([[x]])
        got = ATAN2(edges.reshape(-1, 1), col, backend="cpu")[:, 0]
        signed = _signed_values(ATAN2, edges, col)
        want = np.arctan2(edges.astype(np.float64), np.float64(x)).astype(np.float32)
        same = ((got == want) & (np.signbit(signed) == np.signbit(want))) | (
            np.isnan(got) & np.isnan(want))
        assert same.all(), (x, edges[~same], got[~same], want[~same])


@pytest.mark.parametrize("name", ["atan", "asin", "acos", "atan2"])
def test_double_inverse_trig_is_within_two_ulp(name):
    # the same reductions as in float, in more steps, with the base angles and
    # pi/2 in two doubles and the square root's rounding carried (an FMA residual)
    gen = np.random.default_rng(8)
    count = 400_000
    every = gen.integers(0, 0x7FF0000000000000, count, dtype=np.int64).view(np.float64)
    every = every * gen.choice([-1.0, 1.0], count)
    unit = np.concatenate([gen.uniform(-1, 1, count),
                           0.5 + gen.choice([-1, 1], count) * np.exp2(-gen.uniform(1, 45, count)),
                           1 - np.exp2(-gen.uniform(1, 52, count)), [0.5, -0.5, 1.0, -1.0]])
    if name == "atan2":
        # y against columns of every magnitude; y of nearby magnitudes too
        got, ref = [], []
        for x in [0.7, -3.0, 1e-300, -2e300, 1.0, 5e-324, -1e-310]:
            y = np.concatenate([every[:50_000], x * gen.uniform(-4, 4, 50_000)])
            got.append(ATAN2(y.reshape(-1, 1), np.array([[x]]), backend="cpu")[:, 0])
            ref.append(exact(lambda v: np.arctan2(v, np.longdouble(x)), y, np.float64))
        err = ulp_error(np.concatenate(got), np.concatenate(ref), np.float64)
    else:
        routine, fn = {"atan": (ATAN, np.arctan), "asin": (ASIN, np.arcsin),
                       "acos": (ACOS, np.arccos)}[name]
        x = np.concatenate([every, unit, unit * 3]) if name == "atan" else unit
        got = values(routine, x, np.float64)
        err = ulp_error(got, exact(fn, x, np.float64), np.float64)
    # measured over 3e7 values: 0.85, 1.52, 1.03, 1.46 ulp (asin without the square
    # root's residual: 2.01)
    bound = {"atan": 1.25, "asin": 1.75, "acos": 1.5, "atan2": 1.75}[name]
    assert err.max() <= bound, float(err.max())


@pytest.mark.parametrize("name", ["atan", "asin", "acos", "atan2"])
def test_double_inverse_trig_special_values_follow_c(name):
    edges = np.array([0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1e-310, -1e-310, 1.7e308, -1.7e308,
                      np.inf, -np.inf, np.nan, np.nextafter(1.0, 2), np.nextafter(1.0, 0)])
    if name == "atan2":
        pairs = [(edges, np.full_like(edges, x)) for x in edges]
    else:
        pairs = [(edges, None)]
    fn = {"atan": np.arctan, "asin": np.arcsin, "acos": np.arccos, "atan2": np.arctan2}[name]
    routine = {"atan": ATAN, "asin": ASIN, "acos": ACOS, "atan2": ATAN2}[name]
    for y, x in pairs:
        with np.errstate(invalid="ignore"):
            want = fn(y) if x is None else fn(y, x)
        column = np.ones((1, 1)) if x is None else np.array([[x[0]]])
        got = routine(y.reshape(-1, 1), column, backend="cpu")[:, 0]
        signed = _signed_values(routine, y, column, np.float64)
        same = (np.isclose(got, want, rtol=4.5e-16, atol=0) &
                (np.signbit(signed) == np.signbit(want))) | (np.isnan(got) & np.isnan(want))
        assert same.all(), (x if x is None else x[0], y[~same], got[~same], want[~same])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ifelse_blends_by_bits_with_the_select_semantics(dtype):
    # IfElse is a blend of the operands' bits (both computed for every pair):
    # a where c >= 0 (-0 included), b otherwise and for a NaN c; infinities and
    # NaN operands pass through unchanged, never mixed into the other's value
    c = np.array([1.0, -1.0, 0.0, -0.0, np.nan, 2.0, -2.0, 3.0], dtype)
    a = np.array([np.inf, np.inf, -np.inf, 5.0, 1.0, np.nan, np.nan, -0.0], dtype)
    b = np.array([1.0, 1.0, 2.0, np.inf, np.nan, 3.0, -np.inf, 4.0], dtype)
    routine = Genred("IfElse(c, a, b * y)", ["c = Vi(1)", "a = Vi(1)", "b = Vi(1)", "y = Vj(1)"],
                     reduction_op="Max", axis=1)
    got = routine(c[:, None], a[:, None], b[:, None], np.ones((1, 1), dtype),
                  backend="cpu")[:, 0]
    want = np.where(c >= 0, a, b)
    # (a Max over one column: the value itself, the sign of a zero kept, NaN as -inf)
    want = np.where(np.isnan(want), -np.inf, want)
    np.testing.assert_array_equal(got, want)
    assert np.array_equal(np.signbit(got), np.signbit(want))
