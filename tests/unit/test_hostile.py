"""Hostile and careless formulas: a result or a dredux error, never a crash.

Every number that reaches generated code is range-checked, every size that
could exhaust memory is limited before anything is allocated, long formulas
do not hit Python's recursion limit, and bad argument types get typed errors
that name the argument. References are NumPy in float64.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from dredux import FormulaError, Genred, KernelSolve, LazyTensor, Vi, Vj, limits, reduce
from dredux.errors import ArgumentError, ConfigError, DreduxError, DtypeError

X = ["x = Vi(1)"]
BIG = 2**64 + 3


@pytest.mark.parametrize("formula, aliases, literal", [
    (f"Pow(x, {BIG})", X, str(BIG)),
    (f"x**{BIG}", X, str(BIG)),
    (f"x**-{BIG}", X, f"-{BIG}"),
    (f"ClampInt(x, {2**64 + 1}, {2**64 + 2})", X, str(2**64 + 1)),
    (f"Pow(x, {limits.MAX_POW + 1})", X, str(limits.MAX_POW + 1)),
    ("Round(x, 400)", X, "400"),
    ("x * " + "9" * 400, X, "9" * 20),
    ("IntCst(" + "9" * 400 + ")", [], "9" * 20),
    ("IntInv(" + "9" * 400 + ")", [], "9" * 20),
    ("x", ["x = Vi(1000000000000, 3)"], "1000000000000"),
    ("Var(1000000000000, 3, 0)", [], "1000000000000"),
    ("x", ["x = Vi(10000000, 3)"], "10000000"),
    ("x", [f"x = Vi({limits.MAX_DIM + 1})"], str(limits.MAX_DIM + 1)),
    ("Exp(Zero(1000000000000))", [], "1000000000000"),
    ("ElemT(x, 1000000000000, 0)", X, "1000000000000"),
    ("SumT(x, 1000000000000)", X, "1000000000000"),
    ("OneHot(x, 1000000000000)", X, "1000000000000"),
    ("TensorProd(x, y)", ["x = Vi(300)", "y = Vj(300)"], "90000"),
    ("TensorDot(x, y, [1000000000000], [2], [], [])", ["x = Vi(2)", "y = Vj(2)"],
     "1000000000000"),
])
def test_numbers_past_the_limits_are_refused_with_the_literal(formula, aliases, literal):
    with pytest.raises(FormulaError) as info:
        Genred(formula, aliases, axis=1)
    message = str(info.value)
    assert literal in message and len(message) < 2000, message
    assert "limit" in message or "larger than any float" in message, message


def test_numbers_within_the_limits_compute_what_numpy_computes():
    """Big integers render exactly as NumPy rounds them; Pow's parity survives."""
    x = np.array([[-1.0], [-0.5], [1.0], [1.5]])
    p = limits.MAX_POW - 1  # odd
    out = Genred(f"Pow(x, {p})", X, axis=1)(x, backend="numpy")
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(out, x ** p)
    c = 2**53 - 1
    out = Genred(f"x * {c} + ClampInt(x, -{c}, {c})", X, axis=1)(x, backend="numpy")
    np.testing.assert_array_equal(out, x * float(c) + x)


@pytest.mark.parametrize("first", ["0", "0.0", "-0"])
def test_negative_zero_keeps_its_sign(first):
    """-0.0 is its own constant, even after a formula with 0 (equal as numbers)."""
    x = np.array([[-0.5], [2.0]])
    np.testing.assert_array_equal(Genred(f"Atan2({first}, x)", X, axis=1)(x, backend="numpy"),
                                  np.arctan2(0.0, x))
    out = Genred("Atan2(-0.0, x)", X, axis=1)(x, backend="numpy")
    np.testing.assert_array_equal(out, np.arctan2(-0.0, x))  # -pi for x < 0


def test_argument_positions_and_aliases_are_limited_before_allocating():
    many = ", ".join(f"Var({k}, 1, 0)" for k in (0, limits.MAX_ARGS - 1))
    with pytest.raises(FormulaError) as info:
        Genred(f"Concat({many})", [], axis=1)
    assert len(str(info.value)) < 2000 and "in all" in str(info.value)
    with pytest.raises(FormulaError, match="limit"):
        Genred("x", [f"x = Vi({limits.MAX_ARGS}, 3)"], axis=1)
    with pytest.raises(FormulaError, match="characters, more than the limit"):
        Genred("x" + " + x" * limits.MAX_FORMULA_CHARS, X, axis=1)


@pytest.mark.parametrize("formula, reference", [
    (" + ".join(["x"] * 600), lambda x: 600 * x),
    ("-" * 600 + "x", lambda x: x),
    ("-" * 601 + "x", lambda x: -x),
    (" * ".join(f"Exp(x * {k})" for k in range(300)), lambda x: np.exp(x * 44850)),
    (" - ".join(["x"] * 300) + " < " + " + ".join(["x"] * 300),
     lambda x: (-298 * x < 300 * x).astype(np.float64)),
])
def test_long_formulas_parse_compute_and_pickle(formula, reference):
    """Long operator chains are built without deep recursion, and the routine's
    programs pickle (they travel to Dask workers) whatever their depth."""
    x = np.array([[0.0025], [-0.005]])
    g = Genred(formula, X, axis=1)
    program = pickle.loads(pickle.dumps(g.program("float64")))
    assert program == g.program("float64") and program.key == g.program("float64").key
    np.testing.assert_allclose(g(x, backend="numpy"), reference(x), rtol=1e-9)


def test_chains_too_deep_for_the_parser_are_refused():
    with pytest.raises(FormulaError, match="nests too deeply"):
        Genred("+".join(["x"] * 20_000), X, axis=1)


def test_too_many_operations_are_refused():
    groups = ("(" + "+".join(f"x*{k}" for k in range(j, j + 100)) + ")"
              for j in range(2, limits.MAX_NODES // 2, 100))
    terms = "+".join(groups)
    with pytest.raises(FormulaError,
                       match=r"operations \(after differentiation\), more than the limit"):
        Genred(terms, X, axis=1)


@pytest.mark.parametrize("aliases", [None, "x = Vi(3)", 3, {"x": "Vi(3)"}, [b"x = Vi(3)"]])
def test_bad_alias_arguments_get_typed_errors(aliases):
    with pytest.raises(FormulaError, match="aliases must be a list|alias number 0"):
        Genred("x", aliases, axis=1)
    with pytest.raises(FormulaError, match="aliases must be a list|alias number 0"):
        reduce("x", aliases, np.ones((2, 3)))


def test_bad_formula_arguments_get_typed_errors():
    for formula in (None, 3, ["x"], b"x"):
        with pytest.raises(FormulaError, match="formula must be a string"):
            Genred(formula, X, axis=1)
        with pytest.raises(FormulaError, match="formula must be a string"):
            reduce(formula, X, np.ones((2, 1)))


def test_every_error_above_is_a_dredux_error():
    assert issubclass(FormulaError, DreduxError) and issubclass(FormulaError, ValueError)


@pytest.mark.parametrize("k", [limits.MAX_K + 1, 2**31, 2**64 + 3])
def test_k_past_the_limit_is_refused(k):
    with pytest.raises(FormulaError, match=f"K = {k} is more than the limit of"):
        Genred("SqDist(x, y)", ["x = Vi(1)", "y = Vj(1)"], reduction_op="ArgKMin",
               axis=1, opt_arg=k)


def test_formulas_too_wide_for_one_pair_are_refused():
    """A thousand 65,536-wide terms would hold 0.5 GB per pair in the NumPy backend."""
    terms = " + ".join(f"Sum(SumT(x, 65536) * {k})" for k in range(1, 300))
    with pytest.raises(FormulaError, match="components in all .*more than the limit"):
        Genred(terms, X, axis=1)
    x = np.array([[0.5], [2.0]])
    few = " + ".join(f"Sum(SumT(x, 65536) * {k})" for k in range(1, 4))
    np.testing.assert_allclose(Genred(few, X, axis=1)(x, backend="numpy"), 6 * 65536 * x)


@pytest.mark.parametrize("option", ["use_double_acc", "use_fast_math"])
def test_on_off_options_take_booleans_only(option):
    """They went through bool(): 'no', 'False' or [True] switched the option on
    silently. Booleans (NumPy's too), 0, 1 and None (off) are still taken."""
    for value in ("no", "False", 2, 0.5, [True]):
        with pytest.raises(FormulaError) as err:
            Genred("x", X, reduction_op="Sum", axis=1, **{option: value})
        for word in (option, repr(value), "True or False"):
            assert word in str(err.value), str(err.value)
    x = np.arange(3.0).reshape(3, 1)
    for value in (True, False, np.True_, 1, 0, None):
        routine = Genred("x", X, reduction_op="Sum", axis=1, **{option: value})
        assert getattr(routine, option) is bool(value)
        np.testing.assert_allclose(routine(x, backend="numpy"), x)


# --------------------------------------------------------------------------
# LazyTensor and the solvers: the same limits as the parser, typed errors
# --------------------------------------------------------------------------

XL = np.random.default_rng(3).uniform(-1, 1, (6, 2))
BL = np.random.default_rng(4).uniform(-1, 1, (6, 1))


def _lazy():
    return LazyTensor(XL[:, None, :]), LazyTensor(XL[None, :, :])


def _gaussian():
    xi, yj = _lazy()
    return (-(xi - yj).sqnorm2()).exp()


def _solver(**options):
    return KernelSolve("Exp(-SqDist(x, y)) * a", ["x = Vi(2)", "y = Vj(2)", "a = Vj(1)"],
                       "a", axis=1, **options)


def _reference(alpha):
    kernel = np.exp(-((XL[:, None] - XL[None]) ** 2).sum(-1))
    return np.linalg.solve(alpha * np.eye(len(XL)) + kernel, BL)


@pytest.mark.parametrize("build, formula, words", [
    (lambda xi: xi.round(400), "Round(x, 400)", "is 400, outside the limits -300 .. 300"),
    (lambda xi: xi.round(-400), "Round(x, -400)", "is -400, outside the limits -300 .. 300"),
    (lambda xi: xi.clamp(0, 2**60), f"ClampInt(x, 0, {2**60})",
     f"is {2**60}, outside the limits -{limits.MAX_PARAM} .. {limits.MAX_PARAM}"),
], ids=["round(400)", "round(-400)", "clamp(0, 2**60)"])
def test_lazytensor_integer_arguments_have_the_parsers_limits(build, formula, words):
    """round(400) reached the code generators (OverflowError), round(-400) gave NaN:
    LazyTensor checked every integer argument against MAX_DIM, not the op's limit."""
    xi, _ = _lazy()
    with pytest.raises(FormulaError) as parsed:
        Genred(formula, ["x = Vi(2)"], axis=1)
    with pytest.raises(FormulaError) as built:
        build(xi)
    assert words in str(parsed.value) and words in str(built.value), str(built.value)


def test_lazytensor_clamp_takes_the_bounds_clampint_takes():
    xi, yj = _lazy()
    bound = 70_000  # past MAX_DIM, within ClampInt's limit in a formula
    out = ((xi * 1e5).clamp(0, bound) + 0 * yj).sum(1, backend="numpy")
    np.testing.assert_allclose(out, len(XL) * np.clip(XL * 1e5, 0, bound))


@pytest.mark.parametrize("build", [
    lambda xi: LazyTensor(10**400),
    lambda xi: xi * 10**400,
    lambda xi: 10**400 + xi,
    lambda xi: LazyTensor([1.0, -(10**400)]),
], ids=["LazyTensor(10**400)", "xi * 10**400", "10**400 + xi", "a list"])
def test_integers_larger_than_any_float_are_refused_as_the_parser_does(build):
    xi, _ = _lazy()
    with pytest.raises(FormulaError) as parsed:
        Genred("x * " + "1" + "0" * 400, ["x = Vi(2)"], axis=1)
    with pytest.raises(FormulaError) as built:
        build(xi)
    for info in (parsed, built):
        assert "(401 digits)" in str(info.value) and "larger than any float" in str(info.value)


def test_solves_take_numpy_scalars_lists_and_huge_tolerances():
    """np.float32 alpha and eps were refused; a list b (Genred takes lists) raised
    AttributeError; eps=1e200 raised OverflowError."""
    K = _gaussian()
    ref = _reference(0.1)
    for alpha, eps in ((np.float32(0.1), np.float32(1e-10)), (np.float64(0.1), 1e-10)):
        np.testing.assert_allclose(K.solve(BL, alpha=alpha, eps=eps), ref, atol=1e-7)
        np.testing.assert_allclose(_solver()(XL, XL, BL, alpha=alpha, eps=eps), ref,
                                   atol=1e-7)
    np.testing.assert_allclose(_solver()(XL, XL, BL.tolist(), alpha=0.1, eps=1e-10), ref,
                               atol=1e-7)
    # a NumPy alpha leaves float32 iterates float32 (a NumPy float64 would promote them)
    x32, b32 = XL.astype(np.float32), BL.astype(np.float32)
    a32 = _solver()(x32, x32, b32, alpha=np.float64(0.1), eps=1e-4)
    assert a32.dtype == np.float32
    # every b is within a tolerance this large: a = 0
    np.testing.assert_array_equal(K.solve(BL, eps=1e200), 0 * BL)
    np.testing.assert_array_equal(_solver()(XL, XL, BL, eps=1e200), 0 * BL)


@pytest.mark.parametrize("solve, error, words", [
    (lambda K: K.solve("abc"), ArgumentError, "'abc'"),
    (lambda K: K.solve({}), ArgumentError, "dict"),
    (lambda K: K.solve(None), ArgumentError, "None"),
    (lambda K: K.solve(BL, call="no"), ArgumentError, "'no'"),
    (lambda K: K.solve(BL, frobnicate=1), ArgumentError, "frobnicate"),
    (lambda K: _solver(dtype="junk"), DtypeError, "'junk'"),  # deprecated in KeOps
    (lambda K: _solver(opt_arg="junk"), ArgumentError, "'junk'"),
], ids=["b='abc'", "b={}", "b=None", "call='no'", "frobnicate=1", "dtype='junk'",
        "opt_arg='junk'"])
def test_solve_arguments_of_the_wrong_kind_get_typed_errors(solve, error, words):
    """The first three raised ValueError or TypeError from NumPy, call='no' was
    taken as True, KernelSolve took any dtype= and opt_arg=."""
    with pytest.raises(error) as info:
        solve(_gaussian())
    assert words in str(info.value), str(info.value)


def _hostile_lazy_cases():
    def disagreeing_backends(xi, yj):
        xi.backend, yj.backend = "cpu", "numpy"
        return xi + yj

    arr = np.array([0, 1])
    return [
        ("xi + None", lambda xi, yj: xi + None, ArgumentError, "None"),
        ("LazyTensor(None)", lambda xi, yj: LazyTensor(None), ArgumentError, "None"),
        ("xi[0.5:2]", lambda xi, yj: xi[0.5:2], ArgumentError, "0.5"),
        ("xi['a':]", lambda xi, yj: xi["a":], ArgumentError, "'a'"),
        ("K @ 'abcd'", lambda xi, yj: (xi | yj) @ "abcd", ArgumentError, "'abcd'"),
        ("K @ ['a', 'b']", lambda xi, yj: (xi | yj) @ (["a"] * 6), ArgumentError, "'a'"),
        ("sum(axis=array)", lambda xi, yj: (xi - yj).sum(axis=arr), ArgumentError,
         "array([0, 1])"),
        ("sum(dim=array)", lambda xi, yj: (xi - yj).sum(dim=arr), ArgumentError,
         "array([0, 1])"),
        ("min(axis=array)", lambda xi, yj: (xi - yj).min(axis=arr), ArgumentError,
         "array([0, 1])"),
        ("sum_reduction(axis=1.0)", lambda xi, yj: (xi - yj).sum_reduction(axis=1.0),
         ArgumentError, "1.0"),
        ("norm(dim=array)", lambda xi, yj: (xi - yj).norm(dim=arr), ArgumentError,
         "array([0, 1])"),
        ("concatenate(axis=array)",
         lambda xi, yj: LazyTensor.concatenate((xi, yj), axis=arr), ArgumentError,
         "array([0, 1])"),
        ("LazyTensor(x, axis=array)", lambda xi, yj: LazyTensor(XL, axis=arr),
         ArgumentError, "array([0, 1])"),
        ("sum(call='no')", lambda xi, yj: (xi - yj).sum(dim=1, call="no"),
         ArgumentError, "'no'"),
        ("argKmin(K=array)", lambda xi, yj: (xi - yj).sqnorm2().argKmin(arr, dim=1),
         ArgumentError, "array([0, 1])"),
        ("LazyTensor('abc')", lambda xi, yj: LazyTensor("abc"), ArgumentError, "'abc'"),
        ("LazyTensor(LazyTensor)", lambda xi, yj: LazyTensor(LazyTensor), ArgumentError,
         "type"),
        ("LazyTensor(xi)", lambda xi, yj: LazyTensor(xi), ArgumentError, "use it directly"),
        ("sum(frobnicate=)", lambda xi, yj: (xi - yj).sum(1, frobnicate=1), ArgumentError,
         "frobnicate"),
        ("call(dtype_acc=)",
         lambda xi, yj: (xi - yj).sum(1, call=False)(dtype_acc="float64"), ArgumentError,
         "dtype_acc"),
        ("xi + 'a'", lambda xi, yj: xi + "a", ArgumentError, "'a'"),
        ("clamp('a', 1)", lambda xi, yj: xi.clamp("a", 1), ArgumentError, "'a'"),
        ("grad(xi, 'a')", lambda xi, yj: (xi - yj).sqnorm2().grad(xi, "a"), ArgumentError,
         "'a'"),
        ("logsumexp(weight='a')",
         lambda xi, yj: (xi - yj).sqnorm2().logsumexp(1, weight="a"), ArgumentError, "'a'"),
        ("backends", disagreeing_backends, ConfigError, "'cpu' and 'numpy'"),
    ]


@pytest.mark.parametrize("case", _hostile_lazy_cases(), ids=lambda case: case[0])
def test_lazytensor_arguments_of_the_wrong_kind_get_typed_errors(case):
    """They raised AttributeError, 'slice indices must be integers', 'truth value of
    an array is ambiguous', or plain TypeErrors; call='no' was taken as True.
    ArgumentError is a TypeError and ConfigError a ValueError, as before."""
    _, build, error, words = case
    with pytest.raises(error) as info:
        build(*_lazy())
    assert words in str(info.value) and len(str(info.value)) < 1000, str(info.value)


def test_lazytensors_and_their_reductions_pickle_at_any_depth():
    """5000 nested operations reduced fine but pickled recursively (RecursionError);
    a reduction made with call=False did not unpickle at all."""
    xi, yj = _lazy()
    deep = xi
    for _ in range(3000):
        deep = deep.sin()
    deep = deep - yj
    again = pickle.loads(pickle.dumps(deep))
    assert again.formula == deep.formula and again.shape == deep.shape
    # the Genred of its reduction too (its formula's nodes pickle flat)
    routine = deep.sum(1, call=False).routine()
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(routine))(XL, XL, backend="numpy"),
                                  routine(XL, XL, backend="numpy"))
    np.testing.assert_array_equal(again.sum(1, backend="numpy"), deep.sum(1, backend="numpy"))
    reduction = (xi - yj).sqnorm2().sum(1, call=False)
    loaded = pickle.loads(pickle.dumps(reduction))
    np.testing.assert_array_equal(loaded(backend="numpy"), reduction(backend="numpy"))
    symbolic = pickle.loads(pickle.dumps((Vi(0, 2) - Vj(1, 2)).sqnorm2().sum(1)))
    np.testing.assert_allclose(symbolic(XL, XL, backend="numpy"),
                               ((XL[:, None] - XL[None]) ** 2).sum(-1).sum(1, keepdims=True))


# --------------------------------------------- huge values named in messages

_HUGE = "Q" * 100_000
_XS = np.ones((5, 3))
_SUM = ["x = Vi(3)", "y = Vj(3)"]


@pytest.mark.parametrize("call", [
    lambda: Genred("Sum(x)", _SUM, axis=1)(_XS, _XS, backend=_HUGE),
    lambda: Genred("Sum(x)", _SUM, axis=1, sum_scheme=_HUGE),
    lambda: Genred("Sum(x)", _SUM, axis=1, dtype_acc=_HUGE),
    lambda: Genred("Sum(x)", _SUM, axis=1, dtype=_HUGE),
    lambda: Genred("Sum(x)", _SUM, axis=1, reduction_op=_HUGE),
    lambda: Genred("Sum(x)", _SUM, axis=1)(_XS, _XS, scheduler=_HUGE),
    lambda: Genred("Sum(x)", _SUM, axis=1)(_XS, _XS, block_size=_HUGE),
    lambda: Genred("Sum(x)", _SUM, axis=1)(_XS, _XS, split_every=_HUGE),
    lambda: Genred("Sum(x)", _SUM, axis=1)(_XS, _XS, device_id=_HUGE),
    lambda: KernelSolve("x * a", ["x = Vi(1)", "a = Vj(1)"], _HUGE, axis=1),
    lambda: (Vi(_XS) - Vj(_XS)).sum(-1).reduction(_HUGE, axis=1),
], ids=["backend", "sum_scheme", "dtype_acc", "dtype", "reduction_op", "scheduler",
        "block_size", "split_every", "device_id", "varinvalias", "lazy-reduction"])
def test_huge_values_are_named_but_cut_in_messages(call):
    # every message named a 100,000-character value in full: 100 KB messages
    with pytest.raises(DreduxError) as info:
        call()
    message = str(info.value)
    assert len(message) < 2_000, len(message)
    assert "Q" * 50 in message and "100,00" in message, message
    assert str(pickle.loads(pickle.dumps(info.value))) == message


_LIST = list(range(100_000))


@pytest.mark.parametrize("call", [
    lambda: Genred("Sum(x)", _SUM, axis=1)(_XS, _XS, backend=_LIST),
    lambda: Genred("Sum(x)", _SUM, axis=1)(_XS, _XS, scheduler=_LIST),
    lambda: Genred("Sum(x)", _SUM, axis=1)(_XS, _XS, block_size=_LIST),
    lambda: Genred("Sum(x)", _SUM, axis=1)(_XS, _XS, split_every=_LIST),
    lambda: Genred("Sum(x)", _SUM, axis=1)(_XS, _XS, device_id=_LIST),
    lambda: Genred("Sum(x)", _SUM, axis=1, sum_scheme=_LIST),
    lambda: Genred("Sum(x)", _SUM, axis=1, dtype_acc=_LIST),
    lambda: Genred("Sum(x)", _SUM, axis=1, dtype=_LIST),
    lambda: Genred("Sum(x)", _SUM, axis=1, use_double_acc=_LIST),
    lambda: Genred("Sum(x)", _SUM, axis=1, use_fast_math=_LIST),
], ids=["backend", "scheduler", "block_size", "split_every", "device_id", "sum_scheme",
        "dtype_acc", "dtype", "use_double_acc", "use_fast_math"])
def test_huge_objects_are_named_by_their_start(call):
    # a 100,000-item list was printed whole: 689 KB messages
    with pytest.raises(DreduxError) as info:
        call()
    message = str(info.value)
    assert len(message) < 1_000 and "[0, 1, 2, 3, 4, 5, ...]" in message, message[:300]


def test_long_products_in_sums_simplify_without_deep_recursion():
    # scalar factors moved out of a product one level per rewrite, each rewrite
    # simplified in a nested call: a RecursionError at 1,000 factors, and every
    # nested call walked the whole DAG below it (quadratic)
    n = 1_000
    formula = "Sum(x" + " * (t * y)" * n + ")"
    routine = Genred(formula, ["x = Vi(3)", "y = Vj(3)", "t = Vj(1)"], axis=1)
    x = np.arange(6.0).reshape(2, 3)
    y, t = np.ones((4, 3)), np.ones((4, 1))
    np.testing.assert_allclose(routine(x, y, t, backend="numpy"), 4 * x.sum(1, keepdims=True))
    scaled = "x" + "".join(f" * Sum(x * {k})" for k in range(1, n))
    with pytest.raises(FormulaError, match="more operations before simplification"):
        Genred(f"Laplacian(Sum({scaled}), x)", ["x = Vi(8)", "y = Vj(1)"], axis=1)
