"""Pipeline overhead: the experiment's training under Snakemake vs a bare loop over the same runs.

Baseline ("bare"): ``--cores`` long-lived worker processes, torch already
imported and the data loaded before the clock starts, calling ``train_run``
for each (config, seed) of the params file: the pure training time.
Candidates, each in a fresh temporary directory, all runs from scratch:

- ``snakemake``: the whole default pipeline, ``snakemake --cores N``, with the
  fork server on (the default; its cold start is included: each pass starts a
  new server). Two times are taken from it: until the last training job ended
  (from Snakemake's log, 1 s resolution) and until the report was written.
- ``snakemake-no-server``: the same with ``NOISEFLOOR_FORKSERVER=0`` (one fresh
  interpreter per run: the per-process start-up cost).

It prints each wall time and its ratio to the bare loop, and checks that every
run's metrics.json is identical (timing fields aside) across all of them.
Passes are interleaved (bare, server, no server, bare, ...) so a changing load
on a shared machine affects all alike.

Usage::

    python benchmarks/bench_pipeline.py [--params params.yaml] [--cores 2] [--repeat 1] [--no-baseline-engine]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, child_env, machine, metrics_of, print_ratios, same_metrics, tool  # noqa: E402

_state: dict = {}


def _init_worker(params_path: str, barrier) -> None:
    """Everything a run needs except the run: imports, params, data."""
    import torch  # noqa: F401
    import torch._dynamo  # noqa: F401

    from noisefloor import params as P
    from noisefloor.data import load_dataset

    _state["p"] = P.load(params_path)
    _state["splits"] = load_dataset(_state["p"].data)
    barrier.wait()


def _train_one(job: tuple[str, int, str]) -> float:
    from noisefloor.aggregate import run_dir
    from noisefloor.train import train_run

    config, seed, runs_dir = job
    t = time.perf_counter()
    train_run(_state["p"].resolve(config), seed, run_dir(runs_dir, config, seed), splits=_state["splits"],
              log=lambda _line: None)
    return time.perf_counter() - t


def bare(params_path: Path, runs_dir: Path, cores: int) -> float:
    from noisefloor import params as P

    runs = P.load(params_path).runs()
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(cores + 1)
    with ctx.Pool(cores, initializer=_init_worker, initargs=(str(params_path), barrier)) as pool:
        barrier.wait()                       # every worker is warm: the clock starts now
        t = time.perf_counter()
        list(pool.imap_unordered(_train_one, [(c, s, str(runs_dir)) for c, s in runs], chunksize=1))
        return time.perf_counter() - t


STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")


def last_train_end(log: str) -> float:
    """Epoch seconds of the last 'Finished ... (Rule: train)' in a Snakemake log."""
    stamp, last = None, None
    for line in log.splitlines():
        m = STAMP.match(line.strip())
        if m:
            stamp = time.mktime(time.strptime(m.group(1), "%a %b %d %H:%M:%S %Y"))
        elif "(Rule: train)" in line and line.startswith("Finished") and stamp is not None:
            last = stamp
    if last is None:
        sys.exit("no finished training job found in Snakemake's log")
    return last


def snakemake(params_path: Path, work: Path, cores: int, server: bool) -> tuple[float, float]:
    """(seconds until the last training job ended, seconds until the pipeline ended)."""
    work.mkdir(parents=True)
    shutil.copy(params_path, work / "params.yaml")
    env = child_env(NOISEFLOOR_FORKSERVER="1" if server else "0",
                    NOISEFLOOR_FORKSERVER_DIR=str(work / "forkserver"))
    cmd = [tool("snakemake"), "-s", str(ROOT / "Snakefile"), "-d", str(work), "--cores", str(cores),
           "--config", "params=params.yaml"]
    start = time.time()
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    total = time.perf_counter() - t
    if server:
        from noisefloor import forkserver

        forkserver.stop(env)
    if proc.returncode != 0:
        sys.exit(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    # The last training job ended within the second of its stamp: round up.
    return min(total, last_train_end(proc.stdout + proc.stderr) + 1 - start), total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--no-baseline-engine", action="store_true",
                    help="skip the slow snakemake-no-server pass")
    args = ap.parse_args()
    params_path = Path(args.params).resolve()
    from noisefloor import params as P

    n_runs = len(P.load(params_path).runs())
    print(f"machine: {machine()}")
    print(f"experiment: {params_path} ({n_runs} runs), --cores {args.cores}, {args.repeat} pass(es), interleaved")
    engines = ["snakemake"] + ([] if args.no_baseline_engine else ["snakemake-no-server"])
    times: dict[str, list[float]] = {"bare": []}
    for e in engines:
        times[f"{e}: training"] = []
        times[f"{e}: whole pipeline"] = []
    with tempfile.TemporaryDirectory(prefix="nf-bench-pipeline-") as tmp:
        tmp = Path(tmp)
        reference = None
        for i in range(args.repeat):
            for name in ["bare", *engines]:
                work = tmp / f"{name}-{i}"
                if name == "bare":
                    t = bare(params_path, work / "results" / "runs", args.cores)
                    times["bare"].append(t)
                    print(f"  pass {i + 1}: {name:<20} {t:8.1f} s", flush=True)
                else:
                    t_train, t_all = snakemake(params_path, work, args.cores, server=(name == "snakemake"))
                    times[f"{name}: training"].append(t_train)
                    times[f"{name}: whole pipeline"].append(t_all)
                    print(f"  pass {i + 1}: {name:<20} {t_train:8.1f} s training, {t_all:8.1f} s in all",
                          flush=True)
                reference = same_metrics(name, metrics_of(work / "results" / "runs"), reference, n_runs)
        print_ratios(times, "bare", n_runs, width=36)
    return 0


if __name__ == "__main__":
    sys.exit(main())
