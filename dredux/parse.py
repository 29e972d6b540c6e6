"""Formula and alias text -> Expr, with ``ast.parse`` and a whitelisting visitor.

Nothing here ever calls ``eval``: the text is parsed by Python's own parser
into a syntax tree, and only the node kinds listed in :class:`_Builder` are
accepted (numbers, alias names, the whitelisted function calls of
``FUNCTIONS``, ``+ - * / | **`` and comparisons). Anything else is a
:class:`~dredux.errors.FormulaError` with a caret under the offending token.

Entry points: :func:`parse_aliases` and :func:`parse_formula`.
"""

from __future__ import annotations

import ast
import difflib
import functools
import math
import reprlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from . import limits
from .errors import FormulaError
from .functions import FUNCTIONS, Function
from .ir import OPS, Cat, DimError, Expr, Op, ParamError, const, var
from .ops import DERIVATIVE, LimitError

__all__ = ["ArgSpec", "Signature", "FUNCTIONS", "parse_aliases", "parse_formula"]

_FLOAT_MAX = int(sys.float_info.max)
_CATS = {"Vi": Cat.I, "Vx": Cat.I, "Vj": Cat.J, "Vy": Cat.J, "Pm": Cat.P}
_CAT_WORD = {Cat.I: "Vi", Cat.J: "Vj", Cat.P: "Pm"}


@dataclass(frozen=True)
class ArgSpec:
    """One positional argument of a routine."""

    pos: int
    dim: int
    cat: Cat
    name: str  # the alias, or "Var(pos,dim,cat)" for inline variables

    def describe(self) -> str:
        return f"'{self.name}' = {_CAT_WORD.get(self.cat, 'Var')}({self.dim})"


@dataclass
class Signature:
    """The routine's arguments: ``args[k]`` is the argument at position k."""

    args: list[ArgSpec]

    def names(self) -> dict[tuple[int, int], str]:
        return {(a.pos, int(a.cat)): a.name for a in self.args}

    def next_position(self) -> int:
        return 1 + max((a.pos for a in self.args), default=-1)


# --------------------------------------------------------------------------
# aliases
# --------------------------------------------------------------------------

def _span(text: str, node: ast.AST) -> tuple[int, int]:
    """Character span of an ast node in ``text`` (ast offsets are utf-8 bytes)."""
    lines = text.splitlines(keepends=True) or [""]

    def offset(lineno: int, col: int) -> int:
        before = sum(len(line) for line in lines[: lineno - 1])
        line = lines[lineno - 1] if lineno - 1 < len(lines) else ""
        return before + len(line.encode()[:col].decode(errors="ignore"))

    start = offset(node.lineno, node.col_offset)
    end_line = getattr(node, "end_lineno", None) or node.lineno
    end_col = getattr(node, "end_col_offset", None)
    end = offset(end_line, end_col) if end_col is not None else start + 1
    return start, end


def _syntax_error(text: str, exc: SyntaxError, what: str) -> FormulaError:
    start = None
    if exc.lineno is not None and exc.offset is not None:
        lines = text.splitlines(keepends=True) or [""]
        start = sum(len(line) for line in lines[: exc.lineno - 1]) + max(exc.offset - 1, 0)
        start = min(start, max(len(text) - 1, 0))
    return FormulaError(
        f"syntax error in {what}: {exc.msg}", text, start,
        hint="Formulas use KeOps syntax, e.g. \"Exp(-SqDist(x, y)) * b\".")


def _literal_int(text: str, node: ast.AST, what: str, limit: int = limits.MAX_PARAM,
                 low: int | None = None) -> int:
    """The integer literal at ``node``, checked to lie in [low, limit] (low
    defaults to -limit) before anything uses it."""
    sign = 1
    inner = node
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        sign = -1 if isinstance(node.op, ast.USub) else 1
        inner = node.operand
    start, end = _span(text, node)
    if (isinstance(inner, ast.Constant) and isinstance(inner.value, int)
            and not isinstance(inner.value, bool)):
        value = sign * inner.value
        low = -limit if low is None else low
        if not low <= value <= limit:
            raise FormulaError(
                f"{what} is {shown_integer(value)}, outside the limits {low} .. {limit}", text,
                start, end,
                hint="dredux refuses numbers it could not use exactly (docs/formulas.md "
                "lists the limits).")
        return value
    raise FormulaError(
        f"{what} must be an integer literal, got '{text[start:end]}'", text, start, end,
        hint="Write a whole number here, e.g. 3.")


def shown_integer(value: int) -> str:
    """An integer as the messages show it: a long one cut to 20 digits."""
    text = str(value)
    return text if len(text) <= 40 else f"{text[:20]}... ({len(text.lstrip('-'))} digits)"


def _var_from_call(text: str, call: ast.Call, implicit_pos: int | None) -> tuple[int, int, Cat]:
    """(pos, dim, cat) of ``Vi(dim)``, ``Vi(pos, dim)`` or ``Var(pos, dim, cat)``."""
    fname = call.func.id  # type: ignore[attr-defined]
    start, end = _span(text, call)
    if call.keywords:
        raise FormulaError(f"{fname}(...) takes no keyword arguments", text, start, end)
    # positions and dimensions alike: at most MAX_DIM (positions are then limited further)
    ints = [_literal_int(text, a, f"an argument of {fname}", limits.MAX_DIM)
            for a in call.args]
    if fname == "Var":
        if len(ints) != 3:
            raise FormulaError(
                f"Var takes 3 arguments (position, dimension, category), got {len(ints)}",
                text, start, end, hint="Write e.g. Var(0, 3, 0) for an i-variable of "
                "dimension 3 at position 0 (categories: 0 = Vi, 1 = Vj, 2 = Pm).")
        pos, dim, cat = ints
        if cat not in (0, 1, 2):
            raise FormulaError(
                f"Var category must be 0 (Vi), 1 (Vj) or 2 (Pm), got {cat}",
                text, start, end)
        cat = Cat(cat)
    else:
        cat = _CATS[fname]
        if len(ints) == 1 and implicit_pos is not None:
            pos, dim = implicit_pos, ints[0]
        elif len(ints) == 2:
            pos, dim = ints
        else:
            form = f"{fname}(dim) or {fname}(pos, dim)" if implicit_pos is not None \
                else f"{fname}(pos, dim)"
            raise FormulaError(
                f"{fname} takes {'1 or 2' if implicit_pos is not None else 2} integer "
                f"arguments, got {len(ints)}", text, start, end, hint=f"Write {form}.")
    if pos < 0:
        raise FormulaError(f"argument position must be >= 0, got {pos}", text, start, end)
    if pos >= limits.MAX_ARGS:
        raise FormulaError(f"argument position {pos} is past the limit of {limits.MAX_ARGS} "
                           f"arguments (positions 0 .. {limits.MAX_ARGS - 1})", text, start,
                           end, hint="Positions count the routine's arguments: 0, 1, 2...")
    if dim < 1:
        raise FormulaError(f"dimension must be >= 1, got {dim}", text, start, end,
                           hint="A variable holds at least one value per row.")
    return pos, dim, cat


_SHOWN = 80  # characters of a long text shown on each side of an error's caret
_MAX_PART = 1000  # characters of the problem and of the hint of an error message


def _cut(text: str, limit: int = _MAX_PART) -> str:
    """``text``, its middle left out when it is longer than ``limit``."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]} ... ({len(text)} characters) ... {text[-half:]}"


def _shortened(exc: FormulaError) -> FormulaError:
    """``exc``, or the same error with a long text cut to a window around its caret
    and a long problem or hint cut in the middle: messages stay short for formulas
    of any length (the ``text``, ``start`` and ``end`` are then the window's)."""
    text, start, end = exc.text, exc.start, exc.end
    if len(text) > 4 * _SHOWN:
        if start is None:
            text = text[:2 * _SHOWN] + "..."
        else:
            stop = start + 1 if end is None or end <= start else end
            low = max(0, start - _SHOWN)
            high = min(len(text), min(stop, start + _SHOWN) + _SHOWN)
            head, tail = "..." * (low > 0), "..." * (high < len(text))
            text = head + text[low:high] + tail
            start, end = start - low + len(head), min(stop, high) - low + len(head)
    problem, hint = _cut(exc.problem), _cut(exc.hint)
    if (text, problem, hint) == (exc.text, exc.problem, exc.hint):
        return exc
    return FormulaError(problem, text, start, end, hint)


def _short_messages(parse):
    """Decorator: the FormulaErrors that ``parse`` raises get short messages."""
    @functools.wraps(parse)
    def wrapper(*args, **kwargs):
        try:
            return parse(*args, **kwargs)
        except FormulaError as exc:
            short = _shortened(exc)
            if short is exc:
                raise
            raise short from None
    return wrapper


@_short_messages
def parse_aliases(aliases: Sequence[str]) -> tuple[dict[str, Expr], Signature]:
    """Parse KeOps aliases such as ``"x = Vi(3)"``, ``"y = Vj(1, 3)"``, ``"Pm(2, 1)"``.

    Returns
    -------
    names : dict
        Alias name -> ``VAR`` node.
    signature : Signature
        The declared arguments, by position (holes are checked later, once the
        formula's inline ``Var(...)`` are known).
    """
    if isinstance(aliases, str):
        raise FormulaError(
            "aliases must be a list of strings, got a single string", aliases,
            hint=f"Write [{aliases!r}] instead of {aliases!r}.")
    names: dict[str, Expr] = {}
    specs: dict[int, ArgSpec] = {}
    if not isinstance(aliases, Sequence) or isinstance(aliases, bytes):
        raise FormulaError(
            f"aliases must be a list of strings like [\"x = Vi(3)\"], got "
            f"{type(aliases).__name__}", hint="Pass one string per variable.")
    if len(aliases) > limits.MAX_ARGS:
        raise FormulaError(f"{len(aliases)} aliases, more than the limit of {limits.MAX_ARGS}")
    for index, alias in enumerate(aliases):
        if not isinstance(alias, str):
            raise FormulaError(
                f"alias number {index} must be a string like \"x = Vi(3)\", got "
                f"{reprlib.repr(alias)}")
        _check_text(alias, "alias")
        try:
            tree = ast.parse(alias.strip(), mode="exec")
        except SyntaxError as exc:
            raise _syntax_error(alias.strip(), exc, "alias") from None
        except (RecursionError, MemoryError):  # Python's parser nests one level per operator
            raise FormulaError(f"alias number {index} nests too deeply for Python's parser",
                               alias.strip()[:60] + "...", hint="Expected \"name = Vi(dim)\", "
                               "\"name = Vj(pos, dim)\", \"name = Pm(dim)\" or "
                               "\"name = Var(pos, dim, cat)\".") from None
        text = alias.strip()
        stmt = tree.body[0] if len(tree.body) == 1 else None
        name = None
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 \
                and isinstance(stmt.targets[0], ast.Name):
            name = stmt.targets[0].id
            call = stmt.value
        elif isinstance(stmt, ast.Expr):
            call = stmt.value
        else:
            raise FormulaError(
                f"bad alias {alias!r}", text, 0, len(text),
                hint="Expected \"name = Vi(dim)\", \"name = Vj(pos, dim)\", "
                "\"name = Pm(dim)\" or \"name = Var(pos, dim, cat)\".")
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                and call.func.id in (*_CATS, "Var")):
            start, end = _span(text, call)
            raise FormulaError(
                f"bad alias {alias!r}: the right-hand side must be Vi(...), Vj(...), "
                "Pm(...) or Var(...)", text, start, end,
                hint="Expected e.g. \"x = Vi(3)\" (i-variable of dimension 3).")
        pos, dim, cat = _var_from_call(text, call, implicit_pos=index)
        if name is not None:
            if name in FUNCTIONS or name in _CATS or name == "Var":
                raise FormulaError(
                    f"alias name '{name}' is the name of an operation", text, 0, len(name),
                    hint="Choose another name for this variable.")
            if name in names:
                raise FormulaError(
                    f"duplicate alias '{name}'", text, 0, len(name),
                    hint="Each alias name may be declared once.")
        else:
            name = f"Var({pos},{dim},{int(cat)})"
        if pos in specs:
            raise FormulaError(
                f"alias {alias!r} uses argument position {pos}, already used by "
                f"{specs[pos].describe()}", text, 0, len(text),
                hint="Give each argument its own position.")
        node = var(pos, dim, cat)
        names[name] = node
        specs[pos] = ArgSpec(pos, dim, cat, name)
    return names, Signature([specs[p] for p in sorted(specs)])


# Derivatives and variable declarations are special forms (their arguments are
# not all plain expressions); they are handled by _Builder and listed here for
# the "unknown function" suggestions. Derivatives stay placeholder nodes, which
# dredux.autodiff.differentiate replaces after parsing.
_DERIVATIVES = {record.keops: op for op, record in OPS.items() if record.kind == DERIVATIVE}
_SPECIAL = (*_DERIVATIVES, "Var", "Vi", "Vj", "Pm", "Vx", "Vy")

_BINOPS = {ast.Add: Op.ADD, ast.Sub: Op.SUB, ast.Mult: Op.MUL, ast.Div: Op.DIV,
           ast.BitOr: Op.SCALPROD}
_CMPOPS = {ast.Lt: Op.LT, ast.LtE: Op.LE, ast.Gt: Op.GT, ast.GtE: Op.GE,
           ast.Eq: Op.EQ, ast.NotEq: Op.NE}
_NODE_WORDS = {
    ast.Attribute: "attribute lookups", ast.Subscript: "subscripts", ast.List: "lists",
    ast.Lambda: "lambdas", ast.JoinedStr: "f-strings", ast.Dict: "dicts",
    ast.Set: "sets", ast.Tuple: "tuples", ast.IfExp: "conditional expressions",
    ast.BoolOp: "and/or", ast.Starred: "starred arguments", ast.Await: "await",
    ast.ListComp: "comprehensions", ast.GeneratorExp: "comprehensions",
    ast.NamedExpr: "assignment expressions",
}


# --------------------------------------------------------------------------
# the visitor
# --------------------------------------------------------------------------

class _Builder:
    """Walks a whitelisted Python syntax tree and builds the Expr."""

    def __init__(self, text: str, names: dict[str, Expr], signature: Signature):
        self.text = text
        self.names = names
        self.signature = signature
        self.specs = {a.pos: a for a in signature.args}
        self.done: dict[int, Expr] = {}  # operator nodes built ahead (see visit_deep)

    def visit_deep(self, root: ast.AST) -> Expr:
        """``visit(root)`` without deep recursion: a long chain of operators (a sum
        of 600 terms is 600 nested BinOp nodes) is built innermost first, each
        operator node once, so that visiting an operator finds its operands done.
        (Calls nest at most as deep as Python's parser allows parentheses.)"""
        order, stack = [], [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            stack.append((node, True))
            stack.extend((child, False) for child in ast.iter_child_nodes(node))
        for node in order:
            if isinstance(node, (ast.BinOp, ast.UnaryOp, ast.Compare)):
                self.done[id(node)] = self.visit(node)
        return self.visit(root)

    def error(self, node: ast.AST, problem: str, hint: str = "") -> FormulaError:
        start, end = _span(self.text, node)
        return FormulaError(problem, self.text, start, end, hint)

    def source(self, node: ast.AST) -> str:
        start, end = _span(self.text, node)
        return self.text[start:end]

    def dims(self, node: ast.AST, build: Callable[[], Expr]) -> Expr:
        try:
            return build()
        except LimitError as exc:
            raise self.error(node, f"'{self.source(node)}' is too large: {exc}",
                             "docs/formulas.md lists the limits.") from None
        except DimError as exc:
            # a ParamError is about the argument itself, not the aliases' dimensions
            about_dims = not isinstance(exc, ParamError)
            raise self.error(node, f"{'dimension mismatch' if about_dims else 'invalid call'} "
                             f"in '{self.source(node)}': {exc}",
                             "Check the dimensions declared in the aliases." if about_dims
                             else "See docs/formulas.md for the operation's arguments."
                             ) from None

    # dispatch --------------------------------------------------------------
    def visit(self, node: ast.AST) -> Expr:
        done = self.done.get(id(node))
        if done is not None:
            return done
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.BinOp):
            return self.binop(node)
        if isinstance(node, ast.UnaryOp):
            return self.unaryop(node)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        what = _NODE_WORDS.get(type(node), f"'{type(node).__name__}' expressions")
        raise self.error(
            node, f"{what} are not allowed in a formula: '{self.source(node)}'",
            "A formula is built from numbers, alias names, operations such as "
            "Exp(...) and the operators + - * / | ** < <= > >=.")

    def constant(self, node: ast.Constant) -> Expr:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(node, f"{type(value).__name__} literals are not allowed in a "
                             f"formula: {self.source(node)}",
                             "Only integer and float numbers may appear in a formula.")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.error(node, f"non-finite number {value} in formula")
        if isinstance(value, int) and abs(value) > _FLOAT_MAX:
            raise self.error(node, f"the integer {shown_integer(value)} is larger than any "
                             "float", "Numbers of a formula are "
                             "floats: write one below 1.8e308.")
        return const(value)

    def name(self, node: ast.Name) -> Expr:
        found = self.names.get(node.id)
        if found is not None:
            return found
        declared = ", ".join(sorted(self.names)) or "none"
        near = difflib.get_close_matches(node.id, list(self.names), n=1)
        hint = f"Did you mean '{near[0]}'? " if near else ""
        if node.id in FUNCTIONS or node.id in _SPECIAL:
            hint += f"'{node.id}' is an operation: call it, e.g. {node.id}(...). "
        raise self.error(node, f"unknown variable '{node.id}'",
                         f"{hint}Declared variables: {declared}. Declare it in the "
                         f"aliases, e.g. \"{node.id} = Vi(3)\".")

    def binop(self, node: ast.BinOp) -> Expr:
        if isinstance(node.op, ast.Pow):
            return self.power(node)
        op = _BINOPS.get(type(node.op))
        if op is None:
            symbol = {ast.Mod: "%", ast.FloorDiv: "//", ast.MatMult: "@",
                      ast.BitAnd: "&", ast.BitXor: "^", ast.LShift: "<<",
                      ast.RShift: ">>"}.get(type(node.op), type(node.op).__name__)
            raise self.error(node, f"operator '{symbol}' is not allowed in a formula",
                             "Allowed operators: + - * / | (scalar product) ** "
                             "(integer power) and comparisons; use Mod(f, n, d) for "
                             "modulo.")
        left, right = self.visit(node.left), self.visit(node.right)
        return self.dims(node, lambda: Expr(op, (left, right)))

    def power(self, node: ast.BinOp) -> Expr:
        base = self.visit(node.left)
        exponent = node.right
        sign = 1
        if isinstance(exponent, ast.UnaryOp) and isinstance(exponent.op, ast.USub):
            sign, exponent = -1, exponent.operand
        if isinstance(exponent, ast.Constant) and not isinstance(exponent.value, bool):
            value = exponent.value
            if isinstance(value, int):
                power = _literal_int(self.text, node.right, "the exponent of '**'",
                                     OPS[Op.POW].param_limits[0])
                return Expr(Op.POW, (base,), (power,))
            if isinstance(value, float) and value == 0.5:
                return Expr(Op.SQRT if sign > 0 else Op.RSQRT, (base,))
        raise self.error(
            node.right, f"exponent '{self.source(node.right)}' is not an integer",
            "'**' takes an integer exponent (or 0.5 / -0.5 for Sqrt / Rsqrt); "
            "use Powf(f, g) for other exponents.")

    def unaryop(self, node: ast.UnaryOp) -> Expr:
        if isinstance(node.op, ast.USub):
            if isinstance(node.operand, ast.Constant):
                self.constant(node.operand)  # checks the literal
                return const(-node.operand.value)  # -0.0 stays -0.0
            return Expr(Op.NEG, (self.visit(node.operand),))
        if isinstance(node.op, ast.UAdd):
            return self.visit(node.operand)
        raise self.error(node, f"unary operator in '{self.source(node)}' is not allowed",
                         "Only unary minus (and plus) are allowed in a formula.")

    def compare(self, node: ast.Compare) -> Expr:
        if len(node.ops) != 1:
            raise self.error(node, f"chained comparison '{self.source(node)}' is not "
                             "allowed", "Compare two expressions at a time, e.g. "
                             "(a < b) * (b < c).")
        op = _CMPOPS.get(type(node.ops[0]))
        if op is None:
            raise self.error(node, f"comparison in '{self.source(node)}' is not allowed",
                             "Allowed comparisons: < <= > >= == !=.")
        left, right = self.visit(node.left), self.visit(node.comparators[0])
        return self.dims(node, lambda: Expr(op, (left, right)))

    # calls -----------------------------------------------------------------
    def call(self, node: ast.Call) -> Expr:
        if not isinstance(node.func, ast.Name):
            raise self.error(node.func, f"'{self.source(node.func)}' is not an operation "
                             "name", "Call operations by their plain names, e.g. Exp(x).")
        fname = node.func.id
        if node.keywords:
            raise self.error(node.keywords[0].value if node.keywords else node,
                             f"{fname}(...) takes no keyword arguments",
                             "Pass arguments by position, as in KeOps.")
        if fname in ("Var", "Vi", "Vj", "Pm", "Vx", "Vy"):
            return self.inline_var(node)
        if fname in _DERIVATIVES:
            return self.derivative(node, fname)
        function = FUNCTIONS.get(fname)
        if function is None:
            near = difflib.get_close_matches(fname, [*FUNCTIONS, *_SPECIAL], n=3)
            hint = f"Did you mean {' or '.join(near)}? " if near else ""
            raise self.error(node.func, f"unknown function '{fname}'",
                             f"{hint}The operations are listed in docs/formulas.md.")
        return self.apply(node, fname, function)

    def arity_error(self, node: ast.Call, fname: str, function: Function) -> FormulaError:
        sig = function.signature
        required = len(sig.split("|")[0])
        total = len(sig.replace("|", ""))
        count = f"{required}" if required == total else f"{required} to {total}"
        usage = function.usage or f"{fname}({', '.join('f' + str(k) for k in range(total))})"
        return self.error(node, f"{fname} takes {count} argument"
                          f"{'s' if total > 1 else ''}, got {len(node.args)}",
                          f"Usage: {usage}.")

    def apply(self, node: ast.Call, fname: str, function: Function) -> Expr:
        required, _, optional = function.signature.partition("|")
        if not len(required) <= len(node.args) <= len(required) + len(optional):
            raise self.arity_error(node, fname, function)
        values = []
        for letter, arg in zip(required + optional, node.args):
            if letter == "e":
                values.append(self.visit(arg))
            elif letter == "i":
                values.append(_literal_int(self.text, arg, f"argument '{self.source(arg)}'"
                                           f" of {fname}", function.limit(len(values))))
            else:
                values.append(self.int_list(arg, fname))
        return self.dims(node, lambda: function.build(*values))

    def int_list(self, node: ast.AST, fname: str) -> list[int]:
        if not isinstance(node, (ast.List, ast.Tuple)):
            raise self.error(node, f"{fname} expects a list of integers here, got "
                             f"'{self.source(node)}'", "Write e.g. [2, 3].")
        return [_literal_int(self.text, e, f"an entry of a {fname} list", limits.MAX_DIM)
                for e in node.elts]

    def inline_var(self, node: ast.Call) -> Expr:
        pos, dim, cat = _var_from_call(self.text, node, implicit_pos=None)
        spec = self.specs.get(pos)
        if spec is not None and (spec.dim, spec.cat) != (dim, cat):
            raise self.error(node, f"'{self.source(node)}' uses argument position {pos}, "
                             f"declared as {spec.describe()}",
                             "Use the alias, or a position that no alias uses.")
        if spec is None:
            spec = ArgSpec(pos, dim, cat, f"Var({pos},{dim},{int(cat)})")
            self.specs[pos] = spec
            self.signature.args.append(spec)
            self.signature.args.sort(key=lambda a: a.pos)
        return var(pos, dim, cat)

    def variable_arg(self, node: ast.AST, fname: str) -> Expr:
        found = self.visit(node)
        if found.op is not Op.VAR:
            raise self.error(node, f"{fname} differentiates with respect to a variable, "
                             f"got '{self.source(node)}'",
                             f"Write e.g. {fname}(F, x, ...) with x an alias name.")
        return found

    def derivative(self, node: ast.Call, fname: str) -> Expr:
        """A Grad / Diff / Laplacian / Divergence / GradMatrix placeholder node
        (differentiated after parsing)."""
        op = _DERIVATIVES[fname]
        record = OPS[op]
        # Grad(F, v) creates its gradient input: it takes 2 or 3 arguments
        nargs = (2, 3) if op is Op.GRAD else (record.arity, record.arity)
        if not nargs[0] <= len(node.args) <= nargs[1]:
            raise self.error(node, f"{fname} takes {' or '.join(map(str, sorted(set(nargs))))}"
                             f" arguments, got {len(node.args)}", f"Usage: {record.usage}.")
        formula = self.visit(node.args[0])
        v = self.variable_arg(node.args[1], fname)
        if op is not Op.GRAD:
            rest = tuple(self.visit(a) for a in node.args[2:])
            return self.dims(node, lambda: Expr(op, (formula, v, *rest)))
        if len(node.args) == 3:
            e = self.visit(node.args[2])
        else:
            if v.params[1] == Cat.P:
                raise self.error(node, "Grad(F, v) without a gradient input needs v to be "
                                 "an i- or j-variable", "Pass the gradient input: "
                                 "Grad(F, v, e).")
            pos = self.signature.next_position()
            cat = Cat.J if v.params[1] == Cat.I else Cat.I
            e = self.inline_var_spec(pos, formula.dim, cat)
        return self.dims(node, lambda: Expr(op, (formula, v, e)))

    def inline_var_spec(self, pos: int, dim: int, cat: Cat) -> Expr:
        spec = ArgSpec(pos, dim, cat, f"Var({pos},{dim},{int(cat)})")
        self.specs[pos] = spec
        self.signature.args.append(spec)
        return var(pos, dim, cat)


def _reserve_inline_positions(tree: ast.AST, text: str, signature: Signature,
                              builder: _Builder) -> None:
    """Register inline Var(...) before building, so Grad(F, v) numbers past them."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in ("Var", "Vi", "Vj", "Pm", "Vx", "Vy"):
            builder.inline_var(node)


@_short_messages
def parse_formula(formula: str, names: dict[str, Expr], signature: Signature,
                  what: str = "formula") -> Expr:
    """Parse ``formula`` against the aliases of :func:`parse_aliases`.

    Inline ``Var(...)`` and the variables that ``Grad(F, v)`` creates are
    appended to ``signature``. Returns the Expr as written: derivatives are
    placeholder nodes (:func:`dredux.autodiff.differentiate` replaces them),
    nothing is simplified.
    """
    if not isinstance(formula, str):
        raise FormulaError(f"the {what} must be a string, got {type(formula).__name__}",
                           hint="Write the formula as text, e.g. \"Exp(-SqDist(x,y))\".")
    _check_text(formula, what)
    text = formula.strip()
    if not text:
        raise FormulaError(f"the {what} is empty", formula,
                           hint="Write a formula, e.g. \"Exp(-SqDist(x,y))\".")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise _syntax_error(text, exc, what) from None
    except (RecursionError, MemoryError):  # Python's parser nests one level per operator
        raise FormulaError(f"the {what} nests too deeply for Python's parser", text[:60]
                           + "...", hint="Group long chains of operators with parentheses, "
                           "e.g. (a + b + ...) + (c + d + ...), or use vector operations."
                           ) from None
    builder = _Builder(text, names, signature)
    _reserve_inline_positions(tree, text, signature, builder)
    expr = builder.visit_deep(tree.body)
    _check_positions(signature, text)
    return expr


def _check_text(text: str, what: str) -> None:
    """Refuse texts past the length limit, and texts Python's parser cannot encode."""
    if len(text) > limits.MAX_FORMULA_CHARS:
        raise FormulaError(f"the {what} has {len(text)} characters, more than the limit of "
                           f"{limits.MAX_FORMULA_CHARS}", text[:60] + "...",
                           hint="Split the computation into several reductions.")
    try:
        text.encode()
    except UnicodeEncodeError as exc:  # a lone surrogate, e.g. "\ud800"
        shown = text.encode(errors="backslashreplace").decode()  # printable message
        bad = text[exc.start].encode(errors="backslashreplace").decode()
        raise FormulaError(f"the {what} holds the character '{bad}', which is not valid "
                           "Unicode (a lone surrogate)", shown, exc.start,
                           exc.start + len(bad), hint="Remove the character, or decode "
                           "the text with the right encoding.") from None


def _check_positions(signature: Signature, text: str) -> None:
    positions = [a.pos for a in signature.args]
    missing = sorted(set(range(max(positions, default=-1) + 1)) - set(positions))
    if missing:
        shown = ", ".join(map(str, missing[:10]))
        if len(missing) > 10:
            shown += f", ... ({len(missing)} in all)"
        raise FormulaError(
            f"argument position{'s' if len(missing) > 1 else ''} "
            f"{shown} {'are' if len(missing) > 1 else 'is'} not "
            "declared by any alias or Var(...)", text,
            hint="Positions must be 0, 1, ..., n-1 with no gap: one argument each.")
