"""Fixtures of the CPU tier: fresh kernel caches, poisoned kernel states.

Every test compiles into the session's temporary cache folder (tests/conftest.py),
so that tests reuse each other's kernels; the cache tests ask for a fresh
folder of their own.
"""

from __future__ import annotations

import dask
import numpy as np
import pytest

from dredux.backends import cpu_available

if not cpu_available():  # pragma: no cover - the CI image has g++
    pytest.skip("no C++ compiler: the CPU backend cannot run", allow_module_level=True)

POISON_FLOAT = 7.7e33  # a value no test computes, so unwritten state shows
POISON_INDEX = -777


@pytest.fixture
def fresh_cache(tmp_path):
    """An empty cache folder, and no kernel loaded in this process from before."""
    from dredux.compile import cpp

    path = tmp_path / "cache"
    cpp.clear_memory_cache()
    with dask.config.set({"dredux.cache-dir": str(path)}):
        yield path
    cpp.clear_memory_cache()


@pytest.fixture(autouse=True)
def poisoned_states(monkeypatch):
    """Kernel state arrays start as garbage, so a row the kernel skips shows."""
    from dredux.compile import cpp

    def allocate(shape, dtype):
        fill = POISON_INDEX if np.dtype(dtype).kind == "i" else POISON_FLOAT
        return np.full(shape, fill, dtype=dtype)

    monkeypatch.setattr(cpp, "_allocate", allocate)
