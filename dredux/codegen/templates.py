"""Kernel templates: where they are, and how their named slots are filled.

The templates live in the repository's top-level ``kernels/`` folder; a wheel
ships the same folder as ``dredux/_kernels`` (``tool.hatch...force-include``
in pyproject.toml). :func:`kernel_dir` finds whichever is present, so the same
code works in an editable install, a wheel and a source checkout.

A template marks each slot as ``@@NAME@@`` (upper case, digits, underscores).
:func:`fill` replaces every slot and refuses a missing or unknown one, so a
template and its generator cannot drift apart silently. Slot values are built
by the code generators from the parsed formula tree only.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

__all__ = ["kernel_dir", "load", "states", "fill", "slots", "choose"]

_SLOT = re.compile(r"@@([A-Z][A-Z0-9_]*)@@")
_CHOICE = re.compile(r"^#if @@([A-Z][A-Z0-9_]*)@@\n(.*?)^#else\n(.*?)^#endif\n",
                     re.MULTILINE | re.DOTALL)


@functools.cache
def kernel_dir() -> Path:
    """The folder holding ``cpu/`` and ``cuda/`` templates."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "_kernels", package.parent / "kernels"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"dredux's kernel templates are missing: looked for {package / '_kernels'} "
        f"(wheel install) and {package.parent / 'kernels'} (source checkout); "
        "reinstall dredux")


@functools.cache
def load(name: str) -> str:
    """Text of the template ``name``, relative to :func:`kernel_dir` (e.g. ``cpu/block.cpp``)."""
    return (kernel_dir() / name).read_text(encoding="utf-8")


def states(backend: str, snippets: tuple[str, ...]) -> str:
    """The state code a kernel needs: ``<backend>/states/base`` then ``snippets``
    (the files a reduction family names, :class:`dredux.reductions.DeviceState`)."""
    suffix = ".hpp" if backend == "cpu" else ".cuh"
    names = [f"base{suffix}", *dict.fromkeys(snippets)]
    return "\n".join(load(f"{backend}/states/{name}") for name in names)


def slots(text: str) -> set[str]:
    """Names of the slots of a template."""
    return set(_SLOT.findall(text))


def fill(text: str, **values: str) -> str:
    """``text`` with every ``@@NAME@@`` replaced by ``values[NAME]``.

    Raises
    ------
    KeyError
        A slot of the template has no value, or a value names no slot.
    """
    wanted = slots(text)
    missing = sorted(wanted - set(values))
    extra = sorted(set(values) - wanted)
    if missing or extra:
        raise KeyError(f"template slots do not match: missing {missing}, unknown {extra}")
    return _SLOT.sub(lambda m: values[m.group(1)], text)


def choose(text: str, **flags: bool) -> str:
    """``text`` with each ``#if @@NAME@@ / #else / #endif`` section replaced by
    its first branch when ``flags[NAME]`` is true, else by its second (the
    generated source then holds only the code that runs)."""
    def pick(match):
        name = match.group(1)
        if name not in flags:
            raise KeyError(f"template choice {name!r} has no flag")
        return match.group(2) if flags[name] else match.group(3)

    return _CHOICE.sub(pick, text)
