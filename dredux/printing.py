"""Expr -> formula text in KeOps syntax (for messages, ``repr`` and docs).

The output parses back to the same Expr (``tests/unit/test_parse.py`` checks
the round trip), with variables written as ``Var(pos, dim, cat)`` unless a
``names`` mapping gives their aliases.
"""

from __future__ import annotations

import math

from .ir import OPS, Cat, Expr, Op, walk

__all__ = ["to_formula"]

_INFIX = {Op.ADD: ("+", 1), Op.SUB: ("-", 1), Op.MUL: ("*", 2), Op.DIV: ("/", 2)}
_ATOM = 4


def _number(value) -> str:
    if isinstance(value, int):
        return str(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"non-finite constant {value} has no formula spelling")
    return repr(float(value))


def _params_text(node: Expr) -> list[str]:
    shown = OPS[node.op].print_params
    if shown is not None:
        return [str(list(p)) for p in shown(node.params)]
    return [_number(p) for p in node.params]


def to_formula(root: Expr, names: dict[tuple[int, int], str] | None = None,
               limit: int | None = None) -> str:
    """Render ``root`` as a formula string.

    Parameters
    ----------
    root : Expr
    names : dict, optional
        ``{(pos, cat): alias}`` used to print variables by name.
    limit : int, optional
        Cut the text of every subformula after this many characters (``...``
        marks a cut; the text then no longer parses). The formula is a DAG
        printed as a tree, so its text can grow exponentially with its size
        (nested derivatives share subformulas): titles and messages set a limit.
    """
    names = names or {}
    text: dict[Expr, tuple[str, int]] = {}
    for node in walk(root):
        shown, prec = _render(node, text, names)
        if limit is not None and len(shown) > limit:
            shown, prec = shown[:limit] + "...", _ATOM
        text[node] = shown, prec
    return text[root][0]


def _render(node: Expr, text, names) -> tuple[str, int]:
    op = node.op
    if op is Op.VAR:
        pos, cat = node.params
        name = names.get((pos, cat))
        if name is not None:
            return name, _ATOM
        if cat == Cat.DUMMY:
            return f"_dummy{pos}", _ATOM
        return f"Var({pos},{node.dim},{cat})", _ATOM
    if op is Op.CONST:
        value = node.params[0]
        negative = math.copysign(1.0, value) < 0  # -0.0 too: it prints as itself
        if node.dim != 1:
            return ((f"Zero({node.dim})", _ATOM) if value == 0 and not negative
                    else (f"SumT({_number(value)},{node.dim})", _ATOM))
        if isinstance(value, int):
            return (f"IntCst({value})", _ATOM) if value < 0 else (str(value), _ATOM)
        return (f"({_number(value)})" if negative else _number(value)), _ATOM
    if op in _INFIX:
        symbol, prec = _INFIX[op]
        left, lp = text[node.args[0]]
        right, rp = text[node.args[1]]
        if lp < prec:
            left = f"({left})"
        if rp <= prec:
            right = f"({right})"
        return f"{left}{symbol}{right}", prec
    if op is Op.NEG:
        inner, ip = text[node.args[0]]
        if node.args[0].op is Op.CONST:  # "-0" would parse as the constant 0, not -0.0
            return f"Minus({inner})", _ATOM
        return (f"-{inner}" if ip >= 3 else f"-({inner})"), 3
    parts = [text[a][0] for a in node.args] + _params_text(node)
    return f"{op.value}({', '.join(parts)})", _ATOM
