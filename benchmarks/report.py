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
