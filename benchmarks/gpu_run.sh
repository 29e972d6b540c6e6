#!/usr/bin/env bash
# The GPU checks in one command, for the lent GPU machine (see ../shared/gpu/README.md).
#
# Here, once:    bash benchmarks/gpu_wheels.sh
#                (dask, distributed, dask-cuda and their missing dependencies as
#                wheels; pykeops/keopscore built from their source archives)
# Then, in one device call carrying ".whl", with timeout_s=600:
#                bash benchmarks/gpu_run.sh [all|tests|bench]
# The two stages are capped at 240 s and 300 s so that both fit the 600 s limit.
# Results are written under $OUT (the device tool brings them back):
#   environment.txt, nvidia-smi.txt, cuda_libraries.txt, cupy_config.txt,
#   pykeops_cuda.txt, gpu_tests.txt, gpu_tests.xml, gpu_vs_keops.md (the table)
#   and gpu_vs_keops.log. GPU_CASES="case;case" reruns some benchmark rows only.
# Exit status: 0 when the GPU tests pass and the benchmark ran cleanly.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 3
stage=${1:-all}
OUT=${OUT:-$PWD/benchmarks/results/gpu_run}
mkdir -p "$OUT"

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
  --target /tmp/site .whl/*.whl || { echo "error: installing .whl/*.whl failed" >&2; exit 3; }
export PYTHONPATH=$PWD:/tmp/site
# CuPy and KeOps look for the toolkit here (headers, NVRTC); the machine's nvcc says where
if [ -z "${CUDA_PATH:-}" ] && command -v nvcc >/dev/null; then
  CUDA_PATH=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")
  export CUDA_PATH
fi
export CUDA_HOME=${CUDA_HOME:-${CUDA_PATH:-}}

nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true
{
  echo "CUDA_PATH=${CUDA_PATH:-unset}"
  echo "CUDA libraries the loader finds:"
  ldconfig -p 2>/dev/null | grep -E 'libcuda\.so|libcudart|libnvrtc|libcublas' || echo "  none"
  ls "${CUDA_PATH:-/nonexistent}"/lib64 2>/dev/null | grep -E 'nvrtc|cudart' | sed 's/^/  /'
} > "$OUT/cuda_libraries.txt" 2>&1
timeout 60 python3 -c "import cupy; cupy.show_config()" > "$OUT/cupy_config.txt" 2>&1 || true
timeout 120 python3 - > "$OUT/pykeops_cuda.txt" 2>&1 <<'EOF' || true
# what KeOps detects (it falls back to CPU only when CUDA is not found)
import sys

import keopscore
import pykeops

print("pykeops", pykeops.__version__)
cuda = sys.modules["keopscore.config"].cuda_config  # keopscore 2.3's CUDA detection
cuda.print_all()
for name in ("get_use_cuda", "get_cuda_version", "get_libnvrtc_folder", "get_cuda_include_path"):
    try:
        print(name, getattr(cuda, name)())
    except Exception as exc:
        print(name, "failed:", exc)
EOF
python3 - <<'EOF' 2>&1 | tee "$OUT/environment.txt"
import importlib
import platform

import os
import shutil
import subprocess
import sysconfig

print("python", platform.python_version())
header = os.path.join(sysconfig.get_paths()["include"], "Python.h")
print("Python.h", "present" if os.path.exists(header) else "MISSING (KeOps cannot build)")
for tool in ("g++", "nvcc"):
    path = shutil.which(tool)
    out = subprocess.run([tool, "--version"], capture_output=True, text=True).stdout \
        if path else ""
    print(tool, (out.strip().splitlines() or ["MISSING"])[-1])
for name in ("numpy", "cupy", "dask", "distributed", "dask_cuda", "pykeops", "keopscore",
             "pybind11", "filelock", "platformdirs", "pytest"):
    try:
        module = importlib.import_module(name)
        print(name, getattr(module, "__version__", "?"))
    except Exception as exc:  # listed, so that a missing wheel shows at once
        print(name, "MISSING:", exc)
EOF

tests=0
bench=0
if [ "$stage" = all ] || [ "$stage" = tests ]; then
  # a test that hangs fails alone (pytest-timeout, among the wheels) instead of
  # using up the stage
  per_test=()
  python3 -c "import pytest_timeout" 2>/dev/null && per_test=(-p pytest_timeout --timeout=60)
  timeout 240 python3 -m pytest -m gpu -q -rs "${per_test[@]}" tests/gpu \
    --junitxml="$OUT/gpu_tests.xml" 2>&1 | tee "$OUT/gpu_tests.txt"
  tests=${PIPESTATUS[0]}
fi
if [ "$stage" = all ] || [ "$stage" = bench ]; then
  # GPU_CASES="gaussian D=3" ... reruns a subset; pykeops failing to build is a row
  # of the table, not the end of the run
  cases=()
  [ -n "${GPU_CASES:-}" ] && { IFS=';' read -r -a picked <<< "$GPU_CASES"; cases=(--cases "${picked[@]}"); }
  timeout 300 python3 benchmarks/gpu_vs_keops.py --out "$OUT/gpu_vs_keops.md" "${cases[@]}" \
    2>&1 | tee "$OUT/gpu_vs_keops.log"
  bench=${PIPESTATUS[0]}
fi
echo "gpu tests exit status: $tests; benchmark exit status: $bench"
[ "$tests" -eq 0 ] && [ "$bench" -eq 0 ]
