"""Fuzzing the formula grammar: every input gives a result or a dredux error.

Hypothesis writes formula texts from the grammar of the formula language (the
names, argument kinds and arities of ``dredux.functions.FUNCTIONS``, the
derivatives, inline variables, the infix operators, comparisons and literals,
hostile ones included: 400-digit integers, 2**64 + 3, -0.0, subnormals,
``nan``...), then mutates some of them (characters and tokens deleted, inserted
or swapped, unbalanced brackets, unicode, long chains, deep nesting), and
draws alias lists, valid and malformed. Each case is built with ``Genred`` and
called on small random float64 arrays with the "numpy" backend (no compiler):
the property is that it returns arrays of the shapes the reduction announces,
or raises a :class:`~dredux.errors.DreduxError` with a short message that does
not report a bug in dredux. Any other exception (``IndexError``,
``RecursionError``, ``UnicodeEncodeError``...) fails the test.

Profile: every test is derandomized and runs without the example database, so
a CI run draws the same examples every time; together they take well under a
minute on two cores. For a longer local hunt, multiply the number of examples
with ``DREDUX_FUZZ_SCALE=20 pytest tests/unit/test_fuzz_grammar.py`` (and add
``-p no:randomly --hypothesis-seed=N`` variations by editing ``derandomize``
if you want other examples). Bugs found by the fuzzer are kept as explicit
``@example`` cases and in ``REGRESSIONS`` below.
"""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dredux import Genred, limits
from dredux.errors import DreduxError
from dredux.functions import FUNCTIONS
from dredux.ir import OPS, Cat, walk
from dredux.ops import DERIVATIVE

M, N = 3, 4  # rows of the i- and j-variables of every call
_SCALE = float(os.environ.get("DREDUX_FUZZ_SCALE", "1"))


def fuzz_settings(examples: int):
    return settings(max_examples=max(1, int(examples * _SCALE)), deadline=None,
                    derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


# ---------------------------------------------------------------------------
# the property
# ---------------------------------------------------------------------------

def arrays_for(signature, seed: int = 0) -> list[np.ndarray]:
    """Small random float64 arguments of the shapes ``signature`` declares."""
    gen = np.random.default_rng(seed)
    out = []
    for spec in signature.args:
        if spec.cat == Cat.I:
            out.append(gen.uniform(-2, 2, (M, spec.dim)))
        elif spec.cat == Cat.J:
            out.append(gen.uniform(-2, 2, (N, spec.dim)))
        else:
            out.append(gen.uniform(-2, 2, (spec.dim,)))
    return out


def check(formula, aliases, reduction_op="Sum", axis=1, opt_arg=None, formula2=None):
    """Build and run the routine: arrays of the announced shapes, or a dredux error.

    Returns the output tuple, or the DreduxError. Any other exception propagates.
    """
    try:
        g = Genred(formula, aliases, reduction_op=reduction_op, axis=axis, opt_arg=opt_arg,
                   formula2=formula2)
        with np.errstate(all="ignore"):
            out = g(*arrays_for(g.signature), backend="numpy")
    except DreduxError as exc:
        message = str(exc)
        assert len(message) < 5000, f"{type(exc).__name__} of {len(message)} characters"
        assert "bug in dredux" not in message.lower(), message
        return exc
    out = out if isinstance(out, tuple) else (out,)
    out_cat = Cat.I if g.axis == 1 else Cat.J
    rows = M if out_cat == Cat.I else N
    if not any(spec.cat == out_cat for spec in g.signature.args):
        rows = 1  # no variable gives the output axis its length
    announced = g.reduction.outputs()
    assert len(out) == len(announced)
    for array, (shape, kind) in zip(out, announced):
        assert isinstance(array, np.ndarray)
        assert array.shape == (rows, *shape), (array.shape, rows, shape)
        assert array.dtype == (np.int64 if kind == "idx" else np.float64)
    return out


# ---------------------------------------------------------------------------
# the grammar
# ---------------------------------------------------------------------------

FUNCTION_NAMES = sorted(FUNCTIONS)
DERIVATIVES = sorted(r.keops for r in OPS.values() if r.kind == DERIVATIVE)
VAR_FORMS = ["Var", "Vi", "Vj", "Pm", "Vx", "Vy"]
INFIX = ["+", "-", "*", "/", "|", "<", "<=", ">", ">=", "==", "!="]
BAD_INFIX = ["%", "//", "@", "&", "^", "<<", ">>", "and", "or", "is", "in", "if", "not in"]

BIG = 2**64 + 3
# integers around every limit, and past them
HOSTILE_INTS = [
    0, 1, -1, 2, -2, 3, 7, 63, 64, 65, 300, 301, -300, -301, 1000, 4096,
    limits.MAX_DIM - 1, limits.MAX_DIM, limits.MAX_DIM + 1, limits.MAX_POW - 1,
    limits.MAX_POW, limits.MAX_POW + 1, -limits.MAX_POW, -limits.MAX_POW - 1,
    2**31 - 1, 2**31, -(2**31), 2**32, 2**53 - 1, 2**53, 2**53 + 1, -(2**53) - 1,
    2**63 - 1, 2**63, -(2**63), 2**64, BIG, -BIG, 2**1023, 2**1024, 10**308, 10**309,
    10**400, -(10**400),
]
# number spellings, valid and not: Python literal forms, non-finite spellings
HOSTILE_NUMBERS = [
    "0", "0.0", "-0.0", "+0.0", "-0", "00", "007", "1.", ".5", "1e3", "1E3", "1e+3",
    "1e-310", "-1e-310", "4.9e-324", "-4.9e-324", "2.5e-324", "1e-400", "2.2250738585072014e-308",
    "1.7976931348623157e308", "-1.7976931348623157e308", "1.7976931348623159e308", "1e308",
    "1e309", "-1e309", "1e400", "9" * 309, "9" * 400, "1" + "0" * 308, "1" + "0" * 309,
    str(BIG), f"-{BIG}", "2**64+3", "2**64", "(2**64+3)", "0x10", "0xFFFFFFFFFFFFFFFFFF",
    "0o17", "0b101", "1_000", "1__0", "1e", "1.2.3", "--1", "+-1", "-+-1", "1j", "1e3j",
    "nan", "NaN", "inf", "-inf", "Infinity", "float('nan')", "float('inf')", "1e1000*0",
    "0.1e-5", "3.141592653589793238462643383279502884197", "True", "None", "...", "'1'",
]


def int_text():
    return st.one_of(
        st.integers(0, 4).map(str),
        st.integers(-3, 8).map(str),
        st.sampled_from(HOSTILE_INTS).map(str),
        st.integers(-(2**70), 2**70).map(str),
        st.sampled_from(["1.5", "-0.0", "x", "2**3", "(1)", "[1]", "1e3", "True", ""]),
    )


def float_text():
    return st.floats(allow_nan=False, allow_infinity=False).map(repr)


def number_text():
    return st.one_of(
        st.integers(0, 9).map(str),
        st.sampled_from(["0.5", "2", "1.5", "3", "0.25", "-1"]),
        float_text(),
        st.sampled_from(HOSTILE_NUMBERS),
        st.sampled_from(HOSTILE_INTS).map(str),
    )


def int_list_text():
    valid = st.lists(st.integers(0, 3), max_size=4).map(lambda v: f"[{', '.join(map(str, v))}]")
    hostile = st.lists(int_text(), max_size=5).map(lambda v: f"[{', '.join(v)}]")
    # (at most 12 entries: TensorDots of more than 26 axes are a known bug, see REGRESSIONS)
    return st.one_of(valid, hostile, st.sampled_from(["()", "(2,)", "[[2]]", "[2,]", "2",
                                                     "[1]*30", "[x]", "[" + "1, " * 11 + "1]"]))


@st.composite
def inline_var(draw, free: int, dims: list[int]):
    """An inline variable: mostly at the next free position (valid), or hostile."""
    form = draw(st.sampled_from(VAR_FORMS))
    pos = draw(st.one_of(st.sampled_from([free, free, free + 1, 0]),
                         st.sampled_from(HOSTILE_INTS)))
    dim = draw(st.one_of(st.sampled_from(dims), st.sampled_from(HOSTILE_INTS)))
    if form == "Var":
        cat = draw(st.one_of(st.integers(0, 2), st.sampled_from([3, -1, BIG])))
        return f"Var({pos}, {dim}, {cat})"
    if draw(st.integers(0, 4)):
        return f"{form}({pos}, {dim})"
    return f"{form}({dim})"  # only the aliases may omit the position


@st.composite
def tensordot(draw, sub):
    """A TensorDot whose parameters fit (mostly): operands widened to the product
    of their shapes, contractions over axes of equal lengths, a permutation."""
    dims_a = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    dims_b = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    count = draw(st.integers(0, min(len(dims_a), len(dims_b))))
    axes_a = draw(st.permutations(range(len(dims_a))))[:count]
    axes_b = draw(st.permutations(range(len(dims_b))))[:count]
    for ka, kb in zip(axes_a, axes_b):
        dims_b[kb] = dims_a[ka]
    a = f"SumT(Sum({draw(sub)}), {int(np.prod(dims_a))})"
    b = f"SumT(Sum({draw(sub)}), {int(np.prod(dims_b))})"
    params = [list(dims_a), list(dims_b), list(axes_a), list(axes_b)]
    if draw(st.booleans()):
        params.append(list(draw(st.permutations(range(len(dims_a) + len(dims_b) - 2 * count)))))
    return f"TensorDot({a}, {b}, {', '.join(str(p) for p in params)})"


@st.composite
def expressions(draw, names: tuple[str, ...], free: int, dims: tuple[int, ...], depth: int = 3):
    """A formula text from the grammar over the alias ``names``."""
    leaves = [n for n in names] or ["IntCst(2)"]
    if depth <= 0 or draw(st.integers(0, 3)) == 0:
        kind = draw(st.sampled_from(["name"] * 5 + ["number"] * 2 + ["var", "unknown"]))
        if kind == "name":
            return draw(st.sampled_from(leaves))
        if kind == "number":
            return draw(number_text())
        if kind == "var":
            return draw(inline_var(free, list(dims)))
        return draw(st.sampled_from(["z", "Exp", "Var", "_", "xx", "é", "__import__", "e"]))
    sub = expressions(names, free, dims, depth - 1)
    kind = draw(st.sampled_from(["call"] * 6 + ["infix"] * 3 + ["unary", "power", "derivative",
                                                               "tensordot", "bad"]))
    if kind == "call":
        name = draw(st.sampled_from(FUNCTION_NAMES))
        required, _, optional = FUNCTIONS[name].signature.partition("|")
        letters = required + optional[:draw(st.integers(0, len(optional)))]
        args = []
        for letter in letters:
            if letter == "e":
                args.append(draw(sub))
            elif letter == "i":
                args.append(draw(int_text()))
            else:
                args.append(draw(int_list_text()))
        arity = draw(st.sampled_from(["ok"] * 8 + ["drop", "add"]))
        if arity == "drop" and args:
            args.pop(draw(st.integers(0, len(args) - 1)))
        elif arity == "add":
            args.append(draw(st.one_of(sub, int_text())))
        return f"{name}({', '.join(args)})"
    if kind == "infix":
        return f"({draw(sub)} {draw(st.sampled_from(INFIX))} {draw(sub)})"
    if kind == "unary":
        return f"{draw(st.sampled_from(['-', '+', '- -', '-+']))}{draw(sub)}"
    if kind == "power":
        exponent = draw(st.one_of(st.integers(-4, 5).map(str), st.sampled_from(
            ["0.5", "-0.5", "(-2)", "-(2)", "2.0", "x", "1.5", "--2", "-(-0.5)"]),
            st.sampled_from(HOSTILE_INTS).map(str)))
        return f"({draw(sub)}) ** {exponent}"
    if kind == "derivative":
        name = draw(st.sampled_from(DERIVATIVES))
        v = draw(st.one_of(st.sampled_from(leaves), sub))
        f = draw(sub)
        if name == "Laplacian":
            return f"Laplacian({f}, {v})"
        if name == "Grad" and draw(st.booleans()):
            return f"Grad({f}, {v})"
        return f"{name}({f}, {v}, {draw(sub)})"
    if kind == "tensordot":
        return draw(tensordot(sub))
    # constructs outside the grammar: other operators, Python syntax
    a, b = draw(sub), draw(sub)
    return draw(st.sampled_from([
        f"({a} {draw(st.sampled_from(BAD_INFIX))} {b})", f"({a} < {b} < {a})", f"~{a}",
        f"not {a}", f"{a}[0]", f"{a}.real", f"lambda: {a}", f"[{a}, {b}]", f"({a}, {b})",
        f"{{{a}}}", f"{a} if {b} else {a}", f"(y := {a})", f"Exp(*{a})", f"Exp(x={a})",
        f"Exp({a}, **{b})", f"f'{a}'", f"Exp({a})({b})", f"{a}; {b}", f"{a}\n{b}",
        f"await {a}", f"{a} # comment", f"[q for q in {a}]", "Exp()", "Var()",
        f"__import__('os').system({a})", f"{a}\\\n+{b}",
    ]))


ALIAS_NAMES = ["x", "y", "b", "p", "u", "v_1", "Xi", "é", "_", "a2", "ｗ"]


@st.composite
def valid_aliases(draw):
    """Distinct names of mostly compatible dimensions (1 and one common D)."""
    d = draw(st.sampled_from([1, 2, 3]))
    count = draw(st.integers(0, 4))
    names = draw(st.lists(st.sampled_from(ALIAS_NAMES), min_size=count, max_size=count,
                          unique=True))
    aliases, dims = [], []
    for name in names:
        cat = draw(st.sampled_from(["Vi", "Vj", "Pm", "Vi", "Vj"]))
        dim = draw(st.sampled_from([1, d, d]))
        aliases.append(f"{name} = {cat}({dim})")
        dims.append(dim)
    return aliases, tuple(names), tuple(sorted({1, d}))


@st.composite
def cases(draw, depth: int = 3):
    aliases, names, dims = draw(valid_aliases())
    formula = draw(expressions(names, len(aliases), dims, depth))
    return formula, aliases


# ---------------------------------------------------------------------------
# mutations of formula texts
# ---------------------------------------------------------------------------

ALPHABET = "()[],+-*/|<>=!.e0123456789 xyzbEVijPm_é\u00a0\t\n\r#'\"\\\0\ud800\U0001f600"
TOKENS = ["(", ")", "[", "]", ",", "+", "-", "*", "/", "**", "|", "<", "==", "Exp(", "Var(",
          "Vi(", "Grad(", "TensorDot(", "SumT(", " ", "1e309", "9" * 400, "-0.0", "nan",
          "x", "y", "é", "\ud800", "\0", "\n", "#", "lambda", ":", ";", "..."]
TOKEN_RE = re.compile(r"\w+|\*\*|[<>=!]=|\S")


@st.composite
def mutated(draw, text: str) -> str:
    """``text`` after one to three random edits."""
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["delete", "insert", "swap", "token", "retoken", "wrap",
                                     "chain", "truncate", "duplicate"]))
        size = len(text)
        at = draw(st.integers(0, size))
        if kind == "delete" and size:
            at = min(at, size - 1)
            text = text[:at] + text[at + 1:]
        elif kind == "insert":
            text = text[:at] + draw(st.sampled_from(ALPHABET)) + text[at:]
        elif kind == "swap" and size > 1:
            i, j = sorted((min(at, size - 1), draw(st.integers(0, size - 1))))
            text = text[:i] + text[j] + text[i + 1:j] + text[i] + text[j + 1:]
        elif kind == "token":
            text = text[:at] + draw(st.sampled_from(TOKENS)) + text[at:]
        elif kind == "retoken":
            tokens = TOKEN_RE.findall(text)
            if tokens:
                k = draw(st.integers(0, len(tokens) - 1))
                tokens[k] = draw(st.sampled_from(TOKENS + FUNCTION_NAMES))
                text = " ".join(tokens)
        elif kind == "wrap":
            depth = draw(st.sampled_from([1, 50, 180, 199, 200, 201, 1000]))
            close = depth + draw(st.sampled_from([0, 0, -1, 1]))
            fn = draw(st.sampled_from(["", "", "Exp", "Minus", "-"]))
            if fn == "-":
                text = "-" * depth + f"({text})"
            else:
                text = f"{fn}(" * depth + text + ")" * max(close, 0)
        elif kind == "chain":
            count = draw(st.sampled_from([2, 10, 300, 1000, 3000]))
            op = draw(st.sampled_from(["+", "*", "-", "**2", "|", "<"]))
            text = op.join([f"({text})"] * count) if op != "**2" else text + "**2" * count
        elif kind == "truncate":
            text = text[:at]
        elif kind == "duplicate" and size:
            i = min(at, size - 1)
            j = draw(st.integers(i, size))
            text = text[:j] + text[i:j] * draw(st.sampled_from([2, 3, 50])) + text[j:]
        if len(text) > 2 * limits.MAX_FORMULA_CHARS:
            text = text[: 2 * limits.MAX_FORMULA_CHARS]
    return text


@st.composite
def mutated_cases(draw):
    formula, aliases = draw(cases(depth=3))
    return draw(mutated(formula)), aliases


# ---------------------------------------------------------------------------
# malformed aliases
# ---------------------------------------------------------------------------

BAD_NAMES = ["1x", "x-y", "x y", "", "Exp", "Var", "Vi", "Grad", "x.y", "x[0]", "lambda",
             "None", "True", "__class__", "\ud800", "x\0", "ｘ", "x" * 1000, "é", "_"]


@st.composite
def alias_text(draw, index: int):
    name = draw(st.one_of(st.sampled_from(ALIAS_NAMES), st.sampled_from(BAD_NAMES)))
    form = draw(st.sampled_from(VAR_FORMS * 2 + ["Exp", "vi", "VI", "Var"]))
    numbers = draw(st.one_of(
        st.sampled_from([["1"], ["2"], ["3"], [str(index), "2"], [str(index), "1", "1"]]),
        st.lists(st.one_of(st.sampled_from([str(index), "1", "2", "3"]), int_text()),
                 max_size=4)))
    text = f"{name} = {form}({', '.join(numbers)})"
    kind = draw(st.sampled_from(["plain"] * 8 + ["nameless", "spaces", "mutate", "junk"]))
    if kind == "nameless":
        text = f"{form}({', '.join(numbers)})"
    elif kind == "spaces":
        text = f"  {name}={form}( {' , '.join(numbers)} )  "
    elif kind == "mutate":
        text = draw(mutated(text))
    elif kind == "junk":
        text = draw(st.one_of(
            st.text(max_size=30),
            st.sampled_from(["x = Vi(1); y = Vj(1)", "x = y = Vi(1)", "x, y = Vi(1)",
                             "x: int = Vi(1)", "x += Vi(1)", "x = Vi(1)\ny = Vj(1)",
                             "x = Vi(1) # c", "x = Vi(1) + 1", "x = Vi", "x = 3",
                             "x = Vi(1)(2)", "x = os.Vi(1)", "x = Vi(*a)", "x = Vi(d=1)",
                             "def f(): pass", "import os", "x = Vi(2**64)", "x = Vi(-(1))"])))
    return text


@st.composite
def alias_lists(draw):
    count = draw(st.integers(0, 5))
    items = [draw(st.one_of(alias_text(k), alias_text(k), alias_text(k),
                            st.sampled_from([3, None, b"x = Vi(1)", 1.5, ["x = Vi(1)"],
                                             {"x": 1}, object()])))
             for k in range(count)]
    container = draw(st.sampled_from(["list"] * 14 + ["tuple", "str", "dict", "none", "set",
                                                      "gen", "bytes"]))
    if container == "tuple":
        return tuple(items)
    if container == "str":
        return "x = Vi(1)"
    if container == "dict":
        return {"x": "Vi(1)"}
    if container == "none":
        return None
    if container == "set":
        return {"x = Vi(1)"}
    if container == "gen":
        return (a for a in ["x = Vi(1)"])
    if container == "bytes":
        return b"x = Vi(1)"
    return items


def alias_names(aliases) -> tuple[str, ...]:
    found = []
    for a in aliases if isinstance(aliases, (list, tuple)) else ():
        if isinstance(a, str):
            match = re.match(r"\s*(\w+)\s*=", a)
            if match:
                found.append(match.group(1))
    return tuple(found)


# ---------------------------------------------------------------------------
# the tests
# ---------------------------------------------------------------------------

@fuzz_settings(1000)
@given(case=cases(depth=4), seed=st.integers(0, 3))
@example(case=("x + \ud800", ["x = Vi(1)"]), seed=0)
@example(case=("Exp(" * 60 + "x" + ")" * 60, ["x = Vi(1)"]), seed=0)
def test_grammar_formulas_give_a_result_or_a_dredux_error(case, seed):
    formula, aliases = case
    check(formula, aliases)


REDUCTIONS = [("Sum", None), ("Max_ArgMax", None), ("ArgMin", None), ("KMin_ArgKMin", 2),
              ("ArgKMin", 5), ("LogSumExp", None), ("Min", None), ("SumSoftMaxWeight", None),
              ("KMin", 0), ("Sum", -1), ("NotAReduction", None)]


@fuzz_settings(400)
@given(case=cases(depth=3), reduction=st.sampled_from(REDUCTIONS), axis=st.sampled_from([0, 1]),
       weights=st.sampled_from([None, "1", "x", "Exp(x)", "y ** 2"]))
def test_grammar_formulas_under_every_reduction(case, reduction, axis, weights):
    formula, aliases = case
    name, opt_arg = reduction
    check(formula, aliases, reduction_op=name, axis=axis, opt_arg=opt_arg, formula2=weights)


@fuzz_settings(800)
@given(case=mutated_cases())
def test_mutated_formulas_give_a_result_or_a_dredux_error(case):
    formula, aliases = case
    check(formula, aliases)


@fuzz_settings(500)
@given(aliases=alias_lists(), data=st.data())
def test_malformed_aliases_give_a_result_or_a_dredux_error(aliases, data):
    names = alias_names(aliases)
    formula = data.draw(expressions(names, len(names), (1, 2, 3), 2))
    check(formula, aliases)


@fuzz_settings(400)
@given(number=st.one_of(number_text(), int_text()), template=st.sampled_from([
    "x * {0}", "{0}", "-{0}", "x ** {0}", "Pow(x, {0})", "Round(x, {0})", "Elem(x, {0})",
    "ClampInt(x, {0}, {0})", "ClampInt(x, -{0}, {0})", "IntCst({0})", "IntInv({0})",
    "Zero({0})", "SumT(x, {0})", "OneHot(x, {0})", "Extract(x, {0}, 1)", "ExtractT(x, 0, {0})",
    "ElemT(x, {0}, 0)", "Var({0}, 1, 0)", "Vi({0}, 1)", "Var(1, {0}, 1)", "Var(1, 1, {0})",
    "Atan2({0}, x)", "Exp(-{0} * x)", "Powf(x, {0})", "Mod(x, {0}, 0)", "IfElse({0}, x, -x)",
    "x / {0}", "{0} / x", "Sqrt({0})", "Log({0})", "Inv({0})", "Grad(Exp({0} * x), x)",
    "TensorDot(x, x, [{0}], [{0}], [0], [0])", "x < {0}", "Clamp(x, {0}, {0})",
]), alias=st.sampled_from(["x = Vi(1)", "x = Vj(2)", "x = Pm(1)", "x = Vi({0})"]))
def test_hostile_literals_give_a_result_or_a_dredux_error(number, template, alias):
    check(template.format(number), [alias.format(number)])


def nested(template: str, inner: str, depth: int) -> str:
    for _ in range(depth):
        inner = template.format(inner)
    return inner


# Bugs the fuzzer found: the minimal reproducers, each a result or a dredux error.
REGRESSIONS = [
    # lone surrogates could not be encoded for Python's parser (UnicodeEncodeError)
    ("x + \ud800", ["x = Vi(1)"]),
    ("\udfff", []),
    ("x", ["\ud800 = Vi(1)"]),
    # errors in long formulas had messages of the formula's length (the caret line,
    # and the offending source or name in the problem)
    ("(" + "x+" * 20000 + "x", ["x = Vi(1)"]),
    ("<".join(["(IntCst(2))"] * 1000), []),
    ("Exp(x, " + "x, " * 20000 + "x)", ["x = Vi(1)"]),
    ("x + " + "Q" * 50000 + "(x)", ["x = Vi(1)"]),
    ("y" * 50000, ["x = Vi(1)"]),
    ("x", ["x = Vi(1, 2, 3)" + " " * 50000 + ")"]),
    # aliases too deep for Python's parser were a MemoryError or a RecursionError
    ("x", ["x = Vi(1)" + "**2" * 3000]),
    ("x", ["x = Vi(1)" + "+1" * 30000]),
    # derivatives grew without bound before the size limit could refuse them: nested
    # derivatives (exponential in the depth) and Laplacians (one derivative per
    # component of the variable) took minutes and gigabytes
    # (and test_derivatives_past_the_size_limit_are_refused_with_a_message)
    ("Laplacian(Sum(Exp(x * x)), x)", ["x = Vi(65536)"]),
    ("Laplacian(Sum(Exp(Var(0, 20000, 0))), Var(0, 20000, 0))", []),
    # a TensorDot of more axes than einsum has letters was an IndexError
    ("TensorDot(x, y, [" + ", ".join(["1"] * 14) + "], [" + ", ".join(["1"] * 14) + "], [], [])",
     ["x = Vi(1)", "y = Vj(1)"]),
]


@pytest.mark.parametrize("formula, aliases", REGRESSIONS)
def test_regressions(formula, aliases):
    check(formula, aliases)


def test_derivatives_past_the_size_limit_are_refused_with_a_message():
    with pytest.raises(DreduxError, match="before simplification than the limit"):
        Genred(nested("Grad({}, x)", "Exp(Sin(x) * x)", 60), ["x = Vi(1)"], axis=1)
    # (a Concat mixes the components: one derivative of the gradient per component)
    with pytest.raises(DreduxError, match="65536 components of v"):
        Genred("Laplacian(Sum(Exp(Concat(Extract(x, 1, 65535), Extract(x, 0, 1)) * x)), x)",
               ["x = Vi(65536)"], axis=1)
    # element-wise, the Laplacian is one vector expression, at any dimension
    lap = Genred("Laplacian(Sum(Exp(x * x)), x)", ["x = Vi(65536)"], axis=1)
    assert sum(1 for _ in walk(lap.formulas[0])) < 20
    # within the limits, derivatives of any depth still compute
    x = np.array([[0.25], [-0.5]])
    out = Genred(nested("Grad({}, x, 1)", "Exp(x)", 12), ["x = Vi(1)"], axis=1)(
        x, backend="numpy")
    np.testing.assert_allclose(out, np.exp(x), rtol=1e-12)


def test_messages_of_long_formulas_show_a_window_around_the_caret():
    group = "(" + " + ".join(["x"] * 100) + ")"
    formula = " * ".join([group] * 15 + ["(x + zz)"] + [group] * 15)
    with pytest.raises(DreduxError) as info:
        Genred(formula, ["x = Vi(1)"], axis=1)
    message = str(info.value)
    assert len(message) < 1000 and "unknown variable 'zz'" in message
    line, carets = message.splitlines()[1:3]
    assert line[carets.index("^"):].startswith("zz") and carets.strip() == "^^"
    assert line.strip().startswith("...") and line.endswith("...")
