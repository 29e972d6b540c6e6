#!/usr/bin/env bash
# Prepares ./.whl for benchmarks/gpu_run.sh: the packages the GPU machine's image
# lacks, as wheels for its Python 3.12. pykeops and keopscore are published as
# source archives only, so they are built into wheels here (they are pure Python).
# Usage, from the project's root:   bash benchmarks/gpu_wheels.sh
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
mkdir -p .git/info .whl
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp "${platforms[@]}" -d .whl \
  "dask==2026.7.1" "distributed==2026.7.1" partd locket tblib tornado zict \
  "dask-cuda==26.10.0" "rapids-dask-dependency==26.10.0" pytest-timeout
sdist=$(mktemp -d)
python3 -m pip download -q --no-deps --no-binary=:all: -d "$sdist" pykeops==2.3 keopscore==2.3
python3 -m pip wheel -q --no-deps -w .whl "$sdist"/pykeops-2.3.tar.gz "$sdist"/keopscore-2.3.tar.gz
ls .whl
du -sh .whl
