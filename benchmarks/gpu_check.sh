#!/usr/bin/env bash
# The whole GPU check in one command, for a machine with one H100 (or any CUDA GPU): under 10 minutes.
#
#   1. benchmarks/gpu_check.py (at most 300 s): seed-batched training throughput against the
#      cuDNN baseline and four baseline processes measured in the same run; CUDA graphs vs eager;
#      peak GPU memory; batched-vs-single equivalence and the fork server on CUDA.
#   2. benchmarks/gpu_sweep.sh (at most 270 s): the real-scale Fashion-MNIST sweep through the
#      Snakemake pipeline (benchmarks/params.gpu-sweep.yaml), when .gpu/fashion-mnist exists.
#
# Before, on a machine with PyPI: bash benchmarks/fetch_device_deps.sh (fills .whl/ and .gpu/,
# about 40 MiB); take both folders along with the checkout. Then:
#
#   bash benchmarks/gpu_check.sh               # 8 files to $OUT (default benchmarks/out)
#   bash benchmarks/gpu_check.sh --cpu-smoke   # both parts' plumbing on a CPU machine, tiny sizes
#
# Files: gpu_check.txt, gpu_check.json, and the sweep's snakemake.log, runs.csv, summary.json,
# comparisons.csv, report.html, timing.json. PYTHON picks the interpreter (default python3).
set -uo pipefail
cd "$(dirname "$0")/.."
smoke=()
case "${1:-}" in
    --cpu-smoke) smoke=(--cpu-smoke) ;;
    "") ;;
    *) echo "usage: bash benchmarks/gpu_check.sh [--cpu-smoke]" >&2; exit 2 ;;
esac
out="${OUT:-benchmarks/out}"
mkdir -p "$out"
py="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1
site="${NF_SITE:-/tmp/nf-site}"
pypath="$PWD/src"
# Packages the GPU image lacks (jsonschema for the fork-server part, Snakemake for the sweep).
wheels="${WHEELS:-.whl}"
. benchmarks/_wheels.sh
install_wheels "$py" "$wheels" "$site" && pypath="$pypath:$site"
{
    date -u
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
    PYTHONPATH="$pypath" "$py" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())'
} 2>&1 | tee "$out/gpu_check.txt"

# 1. Measurements stop starting after 180 s (optional parts are skipped), hard stop at 300 s.
PYTHONPATH="$pypath${PYTHONPATH:+:$PYTHONPATH}" timeout -k 10 300 \
    "$py" benchmarks/gpu_check.py "${smoke[@]}" --budget 180 --json "$out/gpu_check.json" 2>&1 | tee -a "$out/gpu_check.txt"

# 2. The sweep (it finds its wheels installed already).
#    What part 1 could not show working on this GPU stays off for it: the fork server when its
#    CUDA check did not pass, CUDA graphs when graph-mode train_batch failed or disagreed with eager.
read -r fs_ok graphs_ok < <("$py" - "$out/gpu_check.json" <<'EOF' 2>/dev/null || echo "0 0"
import json, sys
checks = json.load(open(sys.argv[1]))["checks"]
fs = checks.get("forkserver_cuda", {})
graph = checks.get("train_batch_graph_vs_eager_k32", {})
print(int(bool(fs.get("forked") and fs.get("identical"))),
      int(graph.get("max_rel_loss_diff", 1.0) < 1e-4 and "train_batch K=32_error" not in checks))
EOF
)
if [ "${fs_ok:-0}" != 1 ]; then
    export NOISEFLOOR_FORKSERVER=0
    echo "sweep: fork server off (its CUDA check did not pass)" | tee -a "$out/gpu_check.txt"
fi
if [ "${graphs_ok:-0}" != 1 ]; then
    export NOISEFLOOR_CUDA_GRAPHS=0
    echo "sweep: CUDA graphs off (graph-mode train_batch did not pass)" | tee -a "$out/gpu_check.txt"
fi
if [ -d .gpu/fashion-mnist ]; then
    SWEEP_TIMEOUT="${SWEEP_TIMEOUT:-270}" NF_SITE="$site" WHEELS="$wheels" OUT="$out" bash benchmarks/gpu_sweep.sh "${smoke[@]}"
else
    echo "sweep skipped: no .gpu/fashion-mnist (run benchmarks/fetch_device_deps.sh)" | tee -a "$out/gpu_check.txt"
fi
