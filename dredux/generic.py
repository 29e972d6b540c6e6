"""Reductions named by their output: ``generic_sum``, ``generic_logsumexp``,
``generic_argmin`` and ``generic_argkmin``, the shorthands of ``pykeops.numpy``.

Each takes the formula, an *output alias* and the aliases of the arguments,
as separate strings, and returns a :class:`~dredux.Genred`:

>>> import numpy as np
>>> from dredux import generic_sum
>>> conv = generic_sum("Exp(-SqDist(x, y)) * b", "out = Vi(1)",
...                    "x = Vi(3)", "y = Vj(3)", "b = Vj(1)")
>>> conv.axis  # one output row per i: the reduction runs over j
1

The output alias ``"name = Vi(D)"`` (or ``Vj(D)``) says which index the
output rows follow, hence the reduced axis (``Vi``: the sum runs over j,
``axis=1``; ``Vj``: over i, ``axis=0``), and the width D of each output row,
checked against what the reduction returns. Its name is not used (it may be
left out: ``"Vi(1)"``).
"""

from __future__ import annotations

import inspect
import math
import reprlib

from . import limits
from .api import Genred
from .errors import ArgumentError, FormulaError
from .ir import Cat
from .parse import parse_aliases

__all__ = ["generic_sum", "generic_logsumexp", "generic_argmin", "generic_argkmin"]

# what the function fixes itself, and Genred's other options (passed on)
_FIXED = ("reduction_op", "axis")
_OPTIONS = tuple(name for name in inspect.signature(Genred.__init__).parameters
                 if name not in ("self", "formula", "aliases", *_FIXED))
_CALL_OPTIONS = ("backend", "device_id", "ranges", "out", "block_size", "split_every",
                 "scheduler")


def _output(function: str, output) -> tuple[Cat, int, str]:
    """(category, dimension, text) of the output alias; FormulaError naming it when
    it is not an alias of an i- or j-variable."""
    if not isinstance(output, str):
        raise FormulaError(
            f"{function}: the output alias must be a string like \"out = Vi(1)\", got "
            f"{type(output).__name__} {reprlib.repr(output)}",
            hint=f"Call {function}(formula, \"out = Vi(1)\", \"x = Vi(3)\", ...): the "
            "output alias comes second, before the aliases of the arguments.")
    try:
        _, signature = parse_aliases([output])
    except FormulaError as exc:
        problem, said = exc.problem, f"bad alias {output!r}"
        problem = problem[len(said):] if problem.startswith(said) else f": {problem}"
        raise FormulaError(f"{function}: bad output alias {output!r}{problem}",
                           exc.text, exc.start, exc.end, exc.hint) from None
    spec = signature.args[0]
    text = output.strip()
    if spec.cat == Cat.P:
        raise FormulaError(
            f"{function}: the output alias {output!r} is a parameter (Pm); the output "
            "has one row per i (Vi) or per j (Vj)", text, 0, len(text),
            hint=f"Write \"out = Vi({spec.dim})\" to reduce over j (one output row per i), "
            f"or \"out = Vj({spec.dim})\" to reduce over i.")
    return spec.cat, spec.dim, text


def _check_aliases(function: str, aliases) -> None:
    for index, alias in enumerate(aliases):
        if isinstance(alias, (list, tuple)):
            raise ArgumentError(
                f"{function}: argument {index + 2} is a {type(alias).__name__} "
                f"{reprlib.repr(alias)}; the aliases are separate strings, as in "
                f"{function}(formula, \"out = Vi(1)\", \"x = Vi(3)\", \"y = Vj(3)\") "
                f"(unpack a list with {function}(formula, output, *aliases))")


def _check_options(function: str, kwargs: dict) -> None:
    fixed = sorted(set(kwargs) & set(_FIXED))
    if fixed:
        raise ArgumentError(
            f"{function} got {', '.join(f'{k}=' for k in fixed)}: the function sets the "
            "reduction and the output alias sets the axis (\"out = Vi(D)\" reduces over j, "
            "\"out = Vj(D)\" over i); call Genred(...) to choose them yourself")
    unknown = sorted(set(kwargs) - set(_OPTIONS))
    if unknown:
        calls = sorted(set(unknown) & set(_CALL_OPTIONS))
        where = (f" ({', '.join(calls)}: an option of the call, routine(*arrays, "
                 f"{calls[0]}=...))") if calls else ""
        raise ArgumentError(f"{function} got unexpected keyword argument(s) "
                            f"{', '.join(unknown)}{where}; it takes Genred's options "
                            f"{', '.join(_OPTIONS)}")


def _make(function: str, reduction_op: str, formula, output, aliases, kwargs) -> Genred:
    cat, dim, text = _output(function, output)
    _check_aliases(function, aliases)
    _check_options(function, kwargs)
    axis = 1 if cat == Cat.I else 0
    if reduction_op == "ArgKMin":
        if dim > limits.MAX_K:
            raise FormulaError(
                f"{function}: the output alias {output!r} asks for K = {dim} indices per "
                f"row, more than the limit of {limits.MAX_K}", text, 0, len(text),
                hint="Ask for fewer neighbours, or sort the full rows with NumPy if you "
                "need them all.")
        given = kwargs.pop("opt_arg", None)
        if given is not None and given != dim:
            raise ArgumentError(
                f"{function} got opt_arg={reprlib.repr(given)}, but the output alias "
                f"{output!r} sets K = {dim}; leave opt_arg out (K is the output alias's "
                "dimension)")
        kwargs["opt_arg"] = dim
    routine = Genred(formula, list(aliases), reduction_op=reduction_op, axis=axis, **kwargs)
    if reduction_op != "ArgKMin":
        width = math.prod(routine.reduction.outputs()[0][0])
        if width != dim:
            word = "Vi" if cat == Cat.I else "Vj"
            what = {"Sum": f"the formula has dimension {width}",
                    "ArgMin": f"the formula has dimension {width} (one index per "
                              "component)",
                    "LogSumExp": f"the reduction returns rows of width {width}"}[reduction_op]
            raise FormulaError(
                f"{function}: the output alias {output!r} declares dimension {dim}, but "
                f"{what}", text, 0, len(text),
                hint=f"Write \"out = {word}({width})\", or check the formula "
                f"{reprlib.repr(formula)}.")
    return routine


def generic_sum(formula: str, output: str, *aliases: str, **kwargs) -> Genred:
    """A :class:`~dredux.Genred` summing ``formula``, its axis given by ``output``.

    Parameters
    ----------
    formula : str
        The formula F, as for Genred.
    output : str
        ``"out = Vi(D)"``: one output row per i, the sum running over j (or
        ``"out = Vj(D)"``: per j, over i); D must be the formula's dimension.
    *aliases : str
        The arguments' aliases, one string each (``"x = Vi(3)"``...).
    **kwargs
        Genred's other options (``dtype``, ``dtype_acc``, ``sum_scheme``...).

    Returns
    -------
    Genred
        Called like any Genred: ``routine(x, y, b)`` has shape (M, D).

    Examples
    --------
    >>> import numpy as np
    >>> from dredux import generic_sum
    >>> conv = generic_sum("Exp(-SqDist(x, y))", "a = Vi(1)", "x = Vi(3)", "y = Vj(3)")
    >>> x, y = np.zeros((4, 3)), np.zeros((6, 3))
    >>> conv(x, y, backend="numpy").ravel().tolist()
    [6.0, 6.0, 6.0, 6.0]
    """
    return _make("generic_sum", "Sum", formula, output, aliases, kwargs)


def generic_logsumexp(formula: str, output: str, *aliases: str, **kwargs) -> Genred:
    """A :class:`~dredux.Genred` computing ``log sum exp(formula)``, its axis given
    by ``output``.

    Parameters
    ----------
    formula : str
        A scalar formula F (dimension 1).
    output : str
        ``"out = Vi(1)"`` (reduce over j) or ``"out = Vj(1)"`` (reduce over i);
        with weights ``formula2=`` of dimension E, ``"out = Vi(E)"``.
    *aliases : str
        The arguments' aliases, one string each.
    **kwargs
        Genred's other options (``formula2``, ``dtype``, ``sum_scheme``...).

    Examples
    --------
    >>> import numpy as np
    >>> from dredux import generic_logsumexp
    >>> lse = generic_logsumexp("-SqDist(x, y)", "a = Vi(1)", "x = Vi(1)", "y = Vj(1)")
    >>> x, y = np.zeros((2, 1)), np.zeros((3, 1))
    >>> bool(np.allclose(lse(x, y, backend="numpy"), np.log(3.0)))
    True
    """
    return _make("generic_logsumexp", "LogSumExp", formula, output, aliases, kwargs)


def generic_argmin(formula: str, output: str, *aliases: str, **kwargs) -> Genred:
    """A :class:`~dredux.Genred` returning where ``formula`` is smallest, its axis
    given by ``output``.

    Parameters
    ----------
    formula : str
        The formula F; the index is taken per component.
    output : str
        ``"out = Vi(D)"`` (the j of the minimum for each i) or ``"out = Vj(D)"``
        (the i for each j), D the formula's dimension (1 for a scalar formula).
    *aliases : str
        The arguments' aliases, one string each.
    **kwargs
        Genred's other options.

    Returns
    -------
    Genred
        Its call returns int64 indices of shape (M, D).

    Examples
    --------
    >>> import numpy as np
    >>> from dredux import generic_argmin
    >>> nearest = generic_argmin("SqDist(x, y)", "a = Vi(1)", "x = Vi(1)", "y = Vj(1)")
    >>> x, y = np.array([[0.0], [2.9]]), np.array([[3.0], [0.1], [1.0]])
    >>> nearest(x, y, backend="numpy").ravel().tolist()
    [1, 0]
    """
    return _make("generic_argmin", "ArgMin", formula, output, aliases, kwargs)


def generic_argkmin(formula: str, output: str, *aliases: str, **kwargs) -> Genred:
    """A :class:`~dredux.Genred` returning where ``formula`` takes its K smallest
    values, K and the axis given by ``output``.

    Parameters
    ----------
    formula : str
        The formula F (usually scalar: a distance).
    output : str
        ``"out = Vi(K)"``: for each i, the K indices j of the smallest values, in
        increasing order of the values (``"out = Vj(K)"``: for each j, over i).
    *aliases : str
        The arguments' aliases, one string each.
    **kwargs
        Genred's other options; ``opt_arg``, if given, must be K.

    Returns
    -------
    Genred
        Its call returns int64 indices of shape (M, K) (or (M, K, D) for a
        formula of dimension D > 1).

    Examples
    --------
    >>> import numpy as np
    >>> from dredux import generic_argkmin
    >>> knn = generic_argkmin("SqDist(x, y)", "a = Vi(2)", "x = Vi(1)", "y = Vj(1)")
    >>> x, y = np.array([[0.0], [2.9]]), np.array([[3.0], [0.1], [1.0]])
    >>> knn(x, y, backend="numpy").tolist()
    [[1, 2], [0, 2]]
    """
    return _make("generic_argkmin", "ArgKMin", formula, output, aliases, kwargs)
