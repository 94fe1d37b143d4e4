#!/usr/bin/env bash
# One-shot GPU check for a session with one H100 (or any CUDA GPU): under 10 minutes.
# Seed-batched training throughput (K = 1, 16, 64; eager, CUDA graphs, torch.compile),
# peak GPU memory, batched-vs-single equivalence on CUDA, and the fork server on CUDA.
# Synthetic 28x28 data only: no dataset is needed on the machine.
#
#   bash benchmarks/gpu_check.sh            # writes to $OUT (if set) or benchmarks/out/
#
# Needs a Python with a CUDA build of torch (PYTHON=/path/to/python to pick one);
# the package is imported from this checkout's src/.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-benchmarks/out}"
mkdir -p "$out"
py="${PYTHON:-python3}"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
# Packages the GPU image may lack (jsonschema, for the fork-server part), carried as wheels.
if compgen -G "benchmarks/wheels/*.whl" > /dev/null; then
    deps="$(mktemp -d)"
    "$py" -m pip install -q --no-index --no-deps --target "$deps" benchmarks/wheels/*.whl
    export PYTHONPATH="$PYTHONPATH:$deps"
fi
{
    date -u
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
    "$py" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())'
} 2>&1 | tee "$out/gpu_env.txt"
# 480 s of measurements at most (later optional parts are skipped), hard stop at 570 s.
timeout 570 "$py" benchmarks/gpu_check.py --budget 480 --json "$out/gpu_check.json" 2>&1 | tee "$out/gpu_check.txt"
