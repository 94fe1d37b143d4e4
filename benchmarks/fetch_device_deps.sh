#!/usr/bin/env bash
# Prepares what benchmarks/gpu_sweep.sh needs on a GPU machine without a network:
#   .whl/                      wheels for Snakemake and jsonschema (and what they need)
#                              that an image with torch, numpy, pandas, scipy, matplotlib,
#                              pyyaml, jinja2, requests, psutil, ... lacks
#   .gpu/fashion-mnist/        the four Fashion-MNIST IDX files (.gz, as Debian ships them)
# Run it from a checkout on a machine that reaches PyPI; carry .whl and .gpu with the tree.
#
#   bash benchmarks/fetch_device_deps.sh                       # wheels for CPython 3.12
#   bash benchmarks/fetch_device_deps.sh --python-version 3.11 --dest /tmp/whl311
#
# Versions are pinned to the project's tested environment (.venv, `make install`).
# Left out on purpose:
#   PuLP (16 MB with its solver binaries): Snakemake imports it only for its ILP scheduler;
#     gpu_sweep.sh passes --scheduler greedy.
#   greenlet (0.6 MB): SQLAlchemy needs it only for asyncio, which Snakemake's database does not use.
set -euo pipefail
cd "$(dirname "$0")/.."

pyver=3.12
dest=.whl
data_src="${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}"
while [ $# -gt 0 ]; do
    case "$1" in
        --python-version) pyver="$2"; shift 2 ;;
        --dest) dest="$2"; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "fetch_device_deps.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
py="${PYTHON:-python3}"

# The closure of snakemake==9.27.1 and jsonschema's Requires-Dist (markers for Linux x86-64),
# less what the GPU image already has (see benchmarks/README.md); connection_pool below.
WHEELS=(
    snakemake==9.27.1
    snakemake-interface-common==1.23.0
    snakemake-interface-executor-plugins==9.4.0
    snakemake-interface-logger-plugins==2.1.0
    snakemake-interface-report-plugins==1.3.0
    snakemake-interface-scheduler-plugins==2.0.2
    snakemake-interface-storage-plugins==4.4.1
    annotated-types==0.8.0
    argparse-dataclass==2.0.0
    conda-inject==1.3.2
    ConfigArgParse==1.9.0
    docutils==0.22.4
    dpath==2.2.0
    fastjsonschema==2.22.3
    gitdb==4.0.12
    GitPython==3.2.1
    humanfriendly==10.0
    immutables==0.21
    jsonschema==4.26.0
    jsonschema-specifications==2025.9.1
    jupyter_core==5.9.1
    nbformat==5.11.1
    packaging==25.0             # on the image too, at a version not read; snakemake-interface-common wants < 26
    platformdirs==4.14.8
    pydantic==2.14.4
    pydantic_core==2.50.5
    referencing==0.37.0
    rpds-py==2026.9.1
    smart_open==7.7.1
    smmap==5.0.3
    SQLAlchemy==2.0.58
    sqlmodel==0.0.37
    tenacity==9.2.1
    throttler==1.2.3
    traitlets==5.16.1
    typing-inspection==0.4.5
    typing_extensions==4.16.0   # on the image too, but pydantic-core needs >= 4.16.0
    yte==1.9.4
)

mkdir -p "$dest"
"$py" -m pip download -q --no-deps --only-binary=:all: \
    --python-version "$pyver" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$dest" "${WHEELS[@]}"
# connection_pool is published as an sdist only (pure Python): build its wheel here.
"$py" -m pip wheel -q --no-deps -w "$dest" connection_pool==0.0.3

# Fashion-MNIST: Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist).
mkdir -p .gpu/fashion-mnist
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    if [ -f "$data_src/$f.gz" ]; then
        cp -u "$data_src/$f.gz" .gpu/fashion-mnist/
    elif [ -f "$data_src/$f" ]; then
        gzip -9c "$data_src/$f" > ".gpu/fashion-mnist/$f.gz"
    else
        echo "fetch_device_deps.sh: $data_src/$f[.gz] not found" \
             "(apt-get install dataset-fashion-mnist, or set FASHION_MNIST_DIR)" >&2
        exit 1
    fi
done

echo "wheels in $dest/ ($(ls "$dest"/*.whl | wc -l) files):"
ls -l "$dest"/*.whl | awk '{printf "  %8.0f KiB  %s\n", $5 / 1024, $NF}'
du -sh "$dest" .gpu | sed 's/^/total /'
