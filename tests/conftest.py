"""Session-wide settings for the test suite.

Kernels compiled by tests go to a temporary cache folder, never to the user's
``~/.cache/dredux``. The folder is set through ``DREDUX_CACHE_DIR`` as well as
``dask.config``, so that worker processes started by tests inherit it.
Tiers that need their own folder (cache tests) override it locally.
"""

from __future__ import annotations

import os

import dask
import pytest


@pytest.fixture(scope="session", autouse=True)
def _kernel_cache(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dredux-cache")
    old = os.environ.get("DREDUX_CACHE_DIR")
    os.environ["DREDUX_CACHE_DIR"] = str(folder)
    with dask.config.set({"dredux.cache-dir": str(folder)}):
        yield folder
    if old is None:
        os.environ.pop("DREDUX_CACHE_DIR", None)
    else:
        os.environ["DREDUX_CACHE_DIR"] = old
