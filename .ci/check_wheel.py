"""Check that a built wheel ships every kernel template of the repository.

    python .ci/check_wheel.py DIST_FOLDER

The kernels/ folder is mapped into the wheel as dredux/_kernels/ (pyproject.toml,
hatch force-include); a wheel without them installs a dredux that cannot
generate any kernel. Exits 1 naming the missing files.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(folder: str) -> int:
    wheels = sorted(Path(folder).glob("dredux-*.whl"))
    if len(wheels) != 1:
        print(f"expected one dredux wheel in {folder}, found {[w.name for w in wheels]}")
        return 1
    names = set(zipfile.ZipFile(wheels[0]).namelist())
    wanted = {"dredux/_kernels/" + p.relative_to(ROOT / "kernels").as_posix()
              for p in (ROOT / "kernels").rglob("*") if p.is_file() and p.suffix in
              (".cpp", ".hpp", ".cu", ".cuh")}
    missing = sorted(wanted - names)
    if not wanted or missing:
        print(f"{wheels[0].name} lacks kernel templates: {missing or 'none found'}")
        return 1
    print(f"{wheels[0].name}: {len(wanted)} kernel templates present")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
