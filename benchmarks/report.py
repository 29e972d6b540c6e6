"""The markdown report the benchmarks write with ``--write``."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path


def write_report(path: Path, template: str, script: str, argv, lines: list[str]) -> None:
    """``template`` (with ``{command}`` and ``{body}``) filled with the command line
    that ran ``script`` (``argv``, or this process's arguments) and the printed
    ``lines``, written to ``path``."""
    args = argv if argv is not None else sys.argv[1:]
    command = " ".join(["python", f"benchmarks/{script}", *(shlex.quote(a) for a in args)])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(template.format(command=command, body="\n".join(lines)))


def rate_and_ratio(ours: float, other: float | None) -> str:
    """Two table cells: another implementation's rate and ours as a multiple of it,
    or dashes when it has no rate (it failed or was skipped)."""
    return f"{other:14.3e} {ours / other:8.1f}" if other else f"{'-':>14} {'-':>8}"
