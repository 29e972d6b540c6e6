"""Exceptions raised by dredux.

Every message names the offending value, what was expected and how to fix it.
The classes also derive from the built-in exception a NumPy user would catch
(``ValueError`` for bad formulas and shapes, ``TypeError`` for dtypes), so
code written against KeOps's ``ValueError`` keeps working.
"""

from __future__ import annotations

import re
import reprlib

__all__ = [
    "DreduxError",
    "FormulaError",
    "ShapeError",
    "DtypeError",
    "ArgumentError",
    "BackendUnavailable",
    "KernelCompileError",
    "CacheError",
    "ConfigError",
    "SolveError",
]


# A message names the offending value, which may be any string or object a user
# passed (a 100,000-character backend name, a huge list): runs of non-space
# characters longer than this are cut to their two ends, so that every message
# stays readable, whatever site built it. Paths and formulas of usual lengths
# are far below it.
LONG_TOKEN = 500
_LONG = re.compile(r"\S{" + str(LONG_TOKEN + 1) + ",}")


LONG_MESSAGE = 8_000  # past this (after the cuts above), a message keeps its two ends
_SHOWN = reprlib.Repr()
_SHOWN.maxstring = LONG_TOKEN  # strings inside containers (a string value is
_SHOWN.maxother = 200  # shown whole: shorten cuts it, with its length)


def shorten(text: str) -> str:
    """``text`` with every run of more than :data:`LONG_TOKEN` non-space characters
    cut to its first 200 and last 100 characters and its length; a text still
    longer than :data:`LONG_MESSAGE` keeps its beginning (the problem) and end
    (the fix)."""
    if len(text) <= LONG_TOKEN:
        return text
    text = _LONG.sub(lambda m: f"{m[0][:200]}...{m[0][-100:]} ({len(m[0]):,} characters)",
                     text)
    if len(text) > LONG_MESSAGE:
        cut = len(text) - 6_000
        text = f"{text[:4_000]}\n... ({cut:,} characters of this message left out) ...\n" \
               f"{text[-2_000:]}"
    return text


def shown(value) -> str:
    """``value`` as a message names it: its repr, a long container or object cut
    (``[0, 1, 2, 3, 4, 5, ...]``), a string whole (:func:`shorten` cuts it)."""
    return repr(value) if isinstance(value, str) else _SHOWN.repr(value)


class DreduxError(Exception):
    """Base class of every error dredux raises on purpose."""

    def __init__(self, *args):
        if args and isinstance(args[0], str):
            args = (shorten(args[0]), *args[1:])
        super().__init__(*args)


def caret_line(text: str, start: int, end: int | None = None) -> str:
    """Return ``text`` with a line of carets under the characters [start, end).

    Multi-line texts show only the line that holds ``start``.
    """
    end = start + 1 if end is None or end <= start else end
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", start)
    line_end = len(text) if line_end < 0 else line_end
    line = text[line_start:line_end]
    col = start - line_start
    width = max(1, min(end, line_end) - start)
    return f"    {line}\n    {' ' * col}{'^' * width}"


class FormulaError(DreduxError, ValueError):
    """A formula or an alias could not be understood.

    Attributes
    ----------
    text : str
        The formula (or alias) as the user wrote it.
    start, end : int or None
        Character span of the offending token in ``text``.
    problem : str
        What is wrong, naming the bad token.
    hint : str
        What was expected and how to fix it.
    """

    def __init__(self, problem: str, text: str = "", start: int | None = None,
                 end: int | None = None, hint: str = ""):
        self.problem = shorten(problem)
        self.text = text
        self.start = start
        self.end = end
        self.hint = shorten(hint)
        # the caret line stays as built (a cut source line would move the carets)
        Exception.__init__(self, self._message())

    def _message(self) -> str:
        parts = [self.problem]
        if self.text:
            if self.start is None:
                parts.append(f"    {self.text}")
            else:
                parts.append(caret_line(self.text, self.start, self.end))
        if self.hint:
            parts.append(self.hint)
        return "\n".join(parts)

    def __reduce__(self):
        return (type(self), (self.problem, self.text, self.start, self.end, self.hint))


class ShapeError(DreduxError, ValueError):
    """An argument's shape does not match its alias or the other arguments."""


class DtypeError(DreduxError, TypeError):
    """An argument's dtype is not supported or differs from the others."""


class ArgumentError(DreduxError, TypeError):
    """An argument of the wrong kind (a string where a number or an array is
    expected, None, an unknown keyword)."""


class SolveError(DreduxError, ArithmeticError):
    """A conjugate-gradient solve (``KernelSolve``, ``LazyTensor.solve``) broke
    down (the operator is not positive definite) or did not converge."""


class BackendUnavailable(DreduxError, RuntimeError):
    """The requested backend cannot run here (no compiler, no CuPy, no GPU)."""


class CacheError(DreduxError, RuntimeError):
    """The kernel cache folder is unsafe or unusable."""


class ConfigError(DreduxError, ValueError):
    """A dredux setting (environment variable, config key or option) has a bad value."""


class KernelCompileError(DreduxError, RuntimeError):
    """The compiler rejected generated code.

    This is a bug in dredux for any formula that parsed; the error carries
    everything needed to report it.

    Attributes
    ----------
    source : str
        The generated source that failed to compile.
    log : str
        The compiler's output.
    options : tuple of str
        The compiler command line or options.
    """

    def __init__(self, message: str, source: str = "", log: str = "",
                 options: tuple[str, ...] = ()):
        self.message = message
        self.source = source
        self.log = log
        self.options = tuple(options)
        super().__init__(self._format())

    def _format(self) -> str:
        log = self.log.strip()
        if len(log) > 4000:
            log = log[:4000] + "\n... (log truncated; the full log is in .log)"
        return (
            f"{self.message}\ncompiler command: {' '.join(self.options)}\n"
            f"compiler log:\n{log}\n"
            "This is a bug in dredux: please report it with this message; the "
            "generated source is in the exception's .source attribute."
        )

    def __reduce__(self):
        return (type(self), (self.message, self.source, self.log, self.options))
