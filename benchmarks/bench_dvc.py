"""DVC against Snakemake on the same experiment: does ``dvc repro`` keep the cores busy?

Baseline: ``snakemake --cores N`` (the whole default pipeline) in a fresh
folder holding the params file. Candidate: ``dvc repro`` on the same params in
a fresh git copy of this checkout (its own code, as a clone has it), whose
per-run stages train ahead (``--staging-dir``; ``-j`` left at its default,
the CPUs over ``train.threads``). With ``--sequential``, a second candidate:
the same copy with ``-j 1`` in the per-run stages, one run per stage (DVC
before training ahead).

Both start with no fork server running (each pass gets a server directory of
its own; its start-up is included). Passes are interleaved (snakemake, dvc,
snakemake, ...) so a changing load on a shared machine affects all alike. It
prints each wall time and the ratio to Snakemake, and checks that every run's
metrics.json is identical (timing fields aside) in every pass.

Usage::

    python benchmarks/bench_dvc.py [--params params.yaml] [--cores 2] [--repeat 1] [--sequential]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (ROOT, child_env, dvc_project, machine, metrics_of, print_ratios, same_metrics,  # noqa: E402
                     timed, tool)

STAGING = "--staging-dir results/.staged\n"


def snakemake(params_path: Path, work: Path, cores: int) -> float:
    work.mkdir(parents=True)
    shutil.copy(params_path, work / "params.yaml")
    env = child_env(NOISEFLOOR_FORKSERVER_DIR=str(work / "forkserver"))
    try:
        return timed([tool("snakemake"), "-s", str(ROOT / "Snakefile"), "-d", str(work), "--cores", str(cores),
                      "--config", "params=params.yaml"], env)
    finally:
        _stop_server(env)


def dvc(params_path: Path, work: Path, sequential: bool) -> float:
    work.mkdir(parents=True)
    project = dvc_project(work, params_path.read_text())
    if sequential:
        text = (project / "dvc.yaml").read_text()
        if text.count(STAGING) != 2:
            sys.exit("dvc.yaml: the two per-run stages' commands no longer end with the staging folder")
        (project / "dvc.yaml").write_text(text.replace(STAGING, STAGING.rstrip("\n") + " -j 1\n"))
    env = dict(child_env(NOISEFLOOR_FORKSERVER_DIR=str(work / "forkserver"), DVC_NO_ANALYTICS="1"),
               PYTHONPATH=str(project / "src"))
    try:
        return timed([tool("dvc"), "repro", "-q"], env, cwd=project)
    finally:
        _stop_server(env)


def _stop_server(env: dict) -> None:
    from noisefloor import forkserver

    forkserver.stop(env)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--cores", type=int, default=2, help="snakemake --cores")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--sequential", action="store_true", help="also time dvc repro with one run per stage (-j 1)")
    args = ap.parse_args()
    params_path = Path(args.params).resolve()
    from noisefloor import params as P, runner

    n_runs = len(P.load(params_path).runs())
    jobs = runner.jobs_for(P.load(params_path), None)
    print(f"machine: {machine()}")
    print(f"experiment: {params_path} ({n_runs} runs); snakemake --cores {args.cores}; dvc repro trains "
          f"{jobs} at a time; {args.repeat} pass(es), interleaved")
    engines = ["snakemake", "dvc"] + (["dvc -j 1"] if args.sequential else [])
    times: dict[str, list[float]] = {e: [] for e in engines}
    with tempfile.TemporaryDirectory(prefix="nf-bench-dvc-") as tmp:
        reference = None
        for i in range(args.repeat):
            for name in engines:
                work = Path(tmp) / f"{name.replace(' ', '')}-{i}"
                if name == "snakemake":
                    t = snakemake(params_path, work, args.cores)
                else:
                    t = dvc(params_path, work, sequential=(name == "dvc -j 1"))
                times[name].append(t)
                print(f"  pass {i + 1}: {name:<10} {t:8.1f} s", flush=True)
                reference = same_metrics(name, metrics_of(work / "results" / "runs"), reference, n_runs)
    print_ratios(times, "snakemake", n_runs, width=28)
    return 0


if __name__ == "__main__":
    sys.exit(main())
