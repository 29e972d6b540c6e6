"""Pages generated from the code at every documentation build (docs/conf.py):

* ``generated/config.rst``: every ``dredux.*`` setting (``dredux.config.KEYS``):
  name, default, environment variable, meaning;
* ``generated/operations.rst``: every function of the formula language (the
  parser's table, built from the operation records) with its arguments and what
  the code knows of it (element-wise, derivative, a fast GPU spelling), and
  every reduction (its record: family, outputs, weights).

Nothing here is written by hand, so the pages list exactly what the code has.
"""

from __future__ import annotations

from pathlib import Path


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        lines.append(f"   * - {row[0]}")
        lines += [f"     - {cell}" for cell in row[1:]]
    return lines + [""]


def _literal(value) -> str:
    return f"``{value!r}``"


def config_page() -> str:
    from dredux.config import KEYS, environment_variable

    rows = [[f"``dredux.{key}``", _literal(default), f"``{environment_variable(key)}``",
             meaning] for key, (default, meaning) in KEYS.items()]
    return "\n".join([
        "Configuration reference", "=======================", "",
        "Every setting lives under the ``dredux`` key of ``dask.config`` and can be set "
        "in code (``with dask.config.set({'dredux.block-size': 4096}): ...``), in a Dask "
        "YAML file (``~/.config/dask/dredux.yaml``), or by its environment variable "
        "(read at import; ``DASK_DREDUX__BLOCK_SIZE`` works too). This table is "
        "generated from ``dredux.config.KEYS``.", "",
        *_table(["key", "default", "environment variable", "meaning"], rows)])


def operations_page() -> str:
    from dredux.functions import FUNCTIONS
    from dredux.ops import OPS
    from dredux.reductions import REDUCTIONS

    rows = []
    for name in sorted(FUNCTIONS, key=str.lower):
        function = FUNCTIONS[name]
        record = OPS.get(function.op) if function.op is not None else None
        kinds = {"e": "formula", "i": "integer", "l": "list of integers"}
        required, _, optional = function.signature.partition("|")
        args = [kinds[c] for c in required] + [f"[{kinds[c]}]" for c in optional]
        facts = []
        if record is None:
            facts.append("composite (expands into primitives)")
        else:
            if record.elementwise:
                facts.append("element-wise")
            facts.append("derivative" if record.vjp is not None else "no derivative")
            if record.fast:
                facts.append("fast GPU spelling")
        usage = function.usage or (record.usage if record is not None else "")
        rows.append([f"``{name}``", ", ".join(args) or "-",
                     f"``{usage}``" if usage else "", ", ".join(facts)])
    reductions = []
    layouts = {"val": "values", "idx": "indices (int64)", "val_idx": "values, indices",
               "log": "log of the weighted sum of exps", "softmax": "softmax-weighted mean",
               "raw": "the pair (max, shifted sum)"}
    for name, spec in REDUCTIONS.items():
        reductions.append([f"``{name}``", str(spec.family),
                           layouts.get(spec.layout, spec.layout), spec.weights])
    return "\n".join([
        "Formula reference", "=================", "",
        "Generated from the parser's function table and the operation and reduction "
        "records (``dredux/functions.py``, ``dredux/ops/``, ``dredux/reductions.py``): "
        "what each name takes. The meaning of each operation is in "
        ":doc:`../formulas`.", "",
        "Functions", "---------", "",
        *_table(["name", "arguments", "usage", "what the code knows"], rows),
        "Reductions", "----------", "",
        *_table(["reduction_op", "family", "outputs", "formula2 (weights)"], reductions)])


def write_references(folder: Path) -> None:
    """Write the generated pages into ``folder`` (only when their text changed)."""
    folder.mkdir(exist_ok=True)
    for name, text in (("config.rst", config_page()), ("operations.rst", operations_page())):
        path = folder / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
