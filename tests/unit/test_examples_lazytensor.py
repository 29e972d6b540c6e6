"""The LazyTensor examples (ports of KeOps's NumPy tutorials) run at a small
size, on NumPy and on dask arrays, and pass their own checks against NumPy."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RUNS = {
    "kmeans": ["--n", "1500", "--k", "12", "--iterations", "4"],
    "knn": ["--n", "1500", "--grid", "30"],
    "rbf_interpolation": ["--n", "300"],
}


def load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("dask", [False, True], ids=["numpy", "dask"])
@pytest.mark.parametrize("name", sorted(RUNS))
def test_example_runs_and_checks_itself(name, dask, capsys):
    code = load(name).main(RUNS[name] + (["--dask"] if dask else []))
    out = capsys.readouterr().out
    assert code == 0, out
    assert "False" not in out and out.strip(), out
