#!/usr/bin/env bash
# A real-scale sweep through the Snakemake pipeline on one GPU, in one command (~5 minutes):
# benchmarks/params.gpu-sweep.yaml (Fashion-MNIST, the reference BiLSTM, 3 epochs,
# 32 noise seeds, 8 variants x 4 signal seeds; train.seed_batch 16 -> 10 training jobs).
#
#   bash benchmarks/gpu_sweep.sh               # the GPU sweep
#   bash benchmarks/gpu_sweep.sh --cpu-smoke   # the same plumbing on CPU, tiny (1 epoch, 600 training
#                                              # images, 8 noise + 2 signal seeds, seed_batch 4)
#
# Before: bash benchmarks/fetch_device_deps.sh on a machine with PyPI (fills .whl/ and .gpu/);
# carry .whl and .gpu with the working tree. Wheels in .whl/ (WHEELS=dir for others) are
# installed into /tmp/nf-site (NF_SITE), the package itself comes from this checkout's src/.
#
# Environment: PYTHON (default python3), OUT (the output folder, default benchmarks/out),
# SWEEP_TIMEOUT (seconds for the pipeline, default 300), CORES (Snakemake --cores; default 10,
# all training jobs at once; 2 with --cpu-smoke), SWEEP_DIR (scratch folder; default a new
# temporary one), PARAMS (another params file). Results go to $SWEEP_DIR/results, not results/.
#
# Writes to the output folder (at most 6 files): snakemake.log (its last 300 lines), runs.csv,
# summary.json, comparisons.csv, report.html (when under 5 MB) and timing.json (wall seconds,
# the runs' own wall_time_s, runs per train_step mode, model-steps/s over the pipeline's wall
# time, peak GPU memory and mean utilisation from nvidia-smi).
set -uo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
t_start=$(date +%s.%N)

mode=gpu
case "${1:-}" in
    --cpu-smoke) mode=cpu-smoke ;;
    "") ;;
    *) echo "usage: bash benchmarks/gpu_sweep.sh [--cpu-smoke]" >&2; exit 2 ;;
esac
py="${PYTHON:-python3}"
py="$(command -v "$py")" || { echo "gpu_sweep.sh: no Python at ${PYTHON:-python3}" >&2; exit 1; }
out="${OUT:-benchmarks/out}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
limit="${SWEEP_TIMEOUT:-300}"
scratch="${SWEEP_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/nf-sweep.XXXXXX")}"
mkdir -p "$scratch"
scratch="$(cd "$scratch" && pwd)"
results="$scratch/results"
wheels="${WHEELS:-.whl}"
site="${NF_SITE:-/tmp/nf-site}"

export PYTHONUNBUFFERED=1
export GIT_PYTHON_REFRESH=quiet        # GitPython (imported by Snakemake) without a git binary
# This sweep's own fork server: private to the scratch folder, stopped at the end.
export NOISEFLOOR_FORKSERVER_DIR="$scratch/forkserver"

# ---- dependencies: carried wheels, this checkout's package, a `noisefloor` command for the rules
pypath="$repo/src"
. benchmarks/_wheels.sh
install_wheels "$py" "$wheels" "$site"
case $? in
    0) pypath="$pypath:$site" ;;
    2) exit 1 ;;
esac
export PYTHONPATH="$pypath${PYTHONPATH:+:$PYTHONPATH}"
# Always this Python and this checkout (a `noisefloor` elsewhere on PATH may be another environment).
mkdir -p "$scratch/bin"
printf '#!/bin/sh\nexec "%s" -m noisefloor "$@"\n' "$py" > "$scratch/bin/noisefloor"
chmod +x "$scratch/bin/noisefloor"
export PATH="$scratch/bin:$PATH"

"$py" - <<'EOF' || exit 1
import sys
try:
    import snakemake, jsonschema, noisefloor  # noqa: F401
except ImportError as exc:
    sys.exit(f"gpu_sweep.sh: {exc}: run benchmarks/fetch_device_deps.sh and carry .whl/")
EOF

# ---- params: the GPU sweep as it is, or a tiny CPU version of it
params="${PARAMS:-benchmarks/params.gpu-sweep.yaml}"
if [ "$mode" = cpu-smoke ]; then
    # The first 1,000 training and 300 test images of the staged IDX files (validation is
    # carved from the training set, so a full one would cost two CPU minutes per job), in a
    # cache of its own: the cache knows files by name only and must not mix with data/.
    "$py" - "$params" "$scratch" <<'EOF' || exit 1
import gzip, os, struct, sys, yaml
src, scratch = sys.argv[1:]
d = yaml.safe_load(open(src))
root = d["data"]["root"] or "/usr/share/datasets/fashion-mnist"
small = os.path.join(scratch, "fashion-mnist-small")
os.makedirs(small, exist_ok=True)
for split, n in (("train", 1000), ("t10k", 300)):
    for kind, item in (("images-idx3", 784), ("labels-idx1", 1)):
        name = f"{split}-{kind}-ubyte"
        with gzip.open(os.path.join(root, name + ".gz")) as f:
            magic = f.read(4)
            ndim = magic[3]
            dims = list(struct.unpack(f">{ndim}I", f.read(4 * ndim)))
            body = f.read(n * item)
        dims[0] = n
        with gzip.open(os.path.join(small, name + ".gz"), "wb") as f:
            f.write(magic + struct.pack(f">{ndim}I", *dims) + body)
d["data"].update(root=small, cache_dir=os.path.join(scratch, "cache"), train_subset=600)
d["train"].update(device="cpu", epochs=1, seed_batch=4)
d["seeds"] = {"noise": list(range(8)), "signal": [0, 1]}
with open(os.path.join(scratch, "params.yaml"), "w") as f:
    f.write("# derived by benchmarks/gpu_sweep.sh --cpu-smoke from " + src + "\n")
    yaml.safe_dump(d, f, sort_keys=False)
EOF
    params="$scratch/params.yaml"
    cores="${CORES:-2}"
else
    cores="${CORES:-10}"
fi

# ---- environment
{
    echo "mode $mode; params $params; results $results; cores $cores; timeout ${limit}s"
    "$py" -c 'import sys, torch, snakemake; print("python", sys.version.split()[0], "| torch", torch.__version__,
"| cuda", torch.version.cuda, torch.cuda.is_available(),
torch.cuda.get_device_name(0) if torch.cuda.is_available() else "", "| snakemake", snakemake.__version__)'
    command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
} 2>&1 | tee "$scratch/env.txt"
if [ "$mode" = gpu ] && ! "$py" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())'; then
    echo "gpu_sweep.sh: no CUDA device (use --cpu-smoke on a CPU machine)" >&2
    exit 1
fi

smi_pid=""
if command -v nvidia-smi > /dev/null; then
    nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv,noheader,nounits -lms 500 \
        > "$scratch/gpu_samples.csv" 2> /dev/null &
    smi_pid=$!
fi

# ---- the pipeline
t0=$(date +%s.%N)
timeout -k 20 "$limit" "$py" -m snakemake --snakefile Snakefile --cores "$cores" \
    --scheduler greedy --keep-going --show-failed-logs \
    --config params="$params" results="$results" 2>&1 | tee "$scratch/snakemake.log"
rc=${PIPESTATUS[0]}
t1=$(date +%s.%N)
[ -n "$smi_pid" ] && kill "$smi_pid" 2> /dev/null
"$py" -m noisefloor.forkserver stop 2> /dev/null

# ---- what comes back
tail -n 300 "$scratch/snakemake.log" > "$out/snakemake.log"
for f in runs.csv analysis/summary.json analysis/comparisons.csv; do
    [ -f "$results/$f" ] && cp "$results/$f" "$out/"
done
if [ -f "$results/report.html" ] && [ "$(stat -c %s "$results/report.html")" -lt 5000000 ]; then
    cp "$results/report.html" "$out/"
fi
"$py" - "$results" "$params" "$scratch" "$rc" "$t0" "$t1" "$t_start" "$mode" > "$out/timing.json" <<'EOF'
import glob, json, os, sys, time
results, params, scratch, rc, t0, t1, t_start, mode = sys.argv[1:]
from noisefloor import params as P
p = P.load(params)
runs = [json.load(open(f)) for f in glob.glob(os.path.join(results, "runs", "*", "seed*", "metrics.json"))]
walls = [r["wall_time_s"] for r in runs if r.get("wall_time_s") is not None]
per_config = {}
for r in runs:
    per_config.setdefault(r.get("config", "?"), []).append(r.get("wall_time_s") or 0.0)
t = {
    "mode": mode,
    "snakemake_rc": int(rc),
    "timed_out": int(rc) in (124, 137),
    "pipeline_wall_s": round(float(t1) - float(t0), 1),
    "script_wall_s": round(time.time() - float(t_start), 1),
    "runs_expected": len(p.runs()),
    "runs_done": len(runs),
    "runs_wall_time_s_sum": round(sum(walls), 1),
    "runs_wall_time_s_max": round(max(walls), 1) if walls else None,
    "runs_wall_time_s_max_by_config": {c: round(max(v), 1) for c, v in sorted(per_config.items())},
    "devices": sorted({str(r.get("device")) for r in runs}),
    "train_steps": {m: sum(r.get("train_step") == m for r in runs) for m in sorted({str(r.get("train_step")) for r in runs})},
    "model_steps_per_s_whole_pipeline": round(sum(r["epochs_run"] * -(-r["n_train"] // r["resolved_config"]["train"]["batch_size"])
                                   for r in runs if r.get("n_train")) / (float(t1) - float(t0)), 1),
}
samples = os.path.join(scratch, "gpu_samples.csv")
if os.path.exists(samples):
    rows = [line.split(",") for line in open(samples) if line.count(",") == 1]
    try:
        mem = [float(a) for a, _ in rows]
        util = [float(b) for _, b in rows]
        t.update(gpu_samples=len(rows), gpu_mem_peak_mib=max(mem), gpu_util_mean_pct=round(sum(util) / len(util), 1))
    except ValueError:
        pass
print(json.dumps(t, indent=2))
EOF

echo "---- $(ls "$out" | tr '\n' ' ')-> $out"
cat "$out/timing.json"
if [ -f "$out/summary.json" ]; then
    "$py" - "$out" <<'EOF'
import csv, json, os, sys
s = json.load(open(os.path.join(sys.argv[1], "summary.json")))
keys = ["n_runs", "noise_floor", "noise_floor_ci", "hp_variance_share", "n_better", "n_worse", "n_equivalent", "n_inconclusive"]
print("summary:", {k: s.get(k) for k in keys})
with open(os.path.join(sys.argv[1], "comparisons.csv")) as f:
    for row in csv.DictReader(f):
        print("  " + ", ".join(f"{k}={row[k]}" for k in row if k in ("config", "diff", "ci_low", "ci_high", "verdict")))
EOF
fi
echo "gpu_sweep.sh: snakemake exit $rc; scratch $scratch"
exit "$rc"
