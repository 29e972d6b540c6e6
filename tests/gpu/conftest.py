"""GPU tests: CuPy's kernel cache goes to a temporary folder, not the user's."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

if "CUPY_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="dredux-cupy-cache-")
    os.environ["CUPY_CACHE_DIR"] = _cache
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
