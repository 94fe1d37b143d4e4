"""No-op re-run: how long an engine takes to find that 100 finished runs need nothing.

Builds a 100-run experiment of tiny runs (60 noise seeds + 4 variants x 10
signal seeds; 1 epoch of a 4-unit LSTM on 100 digits), runs it once, then
times re-runs that have nothing to do. The baseline is the same no-op re-run
of a 2-run experiment (the engine's fixed cost), so the ratio and the
difference show what each extra run costs when nothing changed.

- Snakemake: ``snakemake --cores 2 results/runs.csv`` (training and aggregation).
- DVC: ``dvc repro`` in a fresh git + DVC repository, when this checkout has a
  ``dvc.yaml`` (skipped otherwise, with a note).

Usage::

    python benchmarks/bench_noop.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, child_env, machine, timed, tool  # noqa: E402


def tiny_params(n_noise: int, n_variants: int, n_signal: int) -> dict:
    variants = {f"v{i}": {"lr": round(0.004 + 0.001 * i, 4)} for i in range(n_variants)}
    return {
        "data": {"dataset": "digits", "train_subset": 100},
        "model": {"hidden_size": 4, "num_layers": 1, "bidirectional": False},
        "train": {"lr": 0.003, "batch_size": 100, "epochs": 1, "device": "cpu"},
        "configs": variants,
        "seeds": {"noise": list(range(n_noise)), "signal": list(range(n_signal))},
        "stats": {"n_boot": 200, "n_perm": 200},
    }


def snakemake_cmd(work: Path) -> list[str]:
    return [tool("snakemake"), "-s", str(ROOT / "Snakefile"), "-d", str(work), "--cores", "2",
            "--config", "params=params.yaml", "--quiet", "all", "--", "results/runs.csv"]


def dvc_setup(work: Path, env: dict) -> str | None:
    """A git + DVC repository with this checkout's dvc.yaml; None when ready, else why not."""
    if not (ROOT / "dvc.yaml").exists():
        return "no dvc.yaml in this checkout"
    shutil.copy(ROOT / "dvc.yaml", work / "dvc.yaml")
    for cmd in (["git", "init", "-q"], [tool("dvc"), "init", "-q"]):
        proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            return f"{' '.join(cmd)} failed: {proc.stderr.strip()[-300:]}"
    proc = subprocess.run([tool("dvc"), "repro", "-q"], cwd=work, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        return f"dvc repro failed: {(proc.stderr or proc.stdout).strip()[-300:]}"
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"machine: {machine()}")
    sizes = {"2 runs (baseline)": tiny_params(2, 0, 1), "100 runs": tiny_params(60, 4, 10)}
    with tempfile.TemporaryDirectory(prefix="nf-bench-noop-") as tmp:
        env = child_env(NOISEFLOOR_FORKSERVER_DIR=str(Path(tmp) / "forkserver"))
        engines = {"snakemake": {}, "dvc": {}}
        skip_dvc = None
        for label, raw in sizes.items():
            for engine in engines:
                work = Path(tmp) / f"{engine}-{label.split()[0]}"
                work.mkdir()
                (work / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
                if engine == "snakemake":
                    timed(snakemake_cmd(work), env)             # the real first run
                else:
                    skip_dvc = skip_dvc or dvc_setup(work, env)
                engines[engine][label] = work
        from noisefloor import forkserver

        forkserver.stop(env)
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.repeat):                            # interleaved
            for engine, works in engines.items():
                if engine == "dvc" and skip_dvc:
                    continue
                for label, work in works.items():
                    cmd = snakemake_cmd(work) if engine == "snakemake" else [tool("dvc"), "repro", "-q"]
                    times.setdefault((engine, label), []).append(timed(cmd, env, cwd=work))
        for engine in engines:
            if engine == "dvc" and skip_dvc:
                print(f"\ndvc: skipped ({skip_dvc})")
                continue
            base = statistics.median(times[(engine, "2 runs (baseline)")])
            big = statistics.median(times[(engine, "100 runs")])
            print(f"\n{engine}: no-op re-run, median of {args.repeat}")
            print(f"  2 runs (baseline) {base:7.2f} s")
            print(f"  100 runs          {big:7.2f} s   ratio {big / base:.2f}, "
                  f"{1000 * (big - base) / 98:.1f} ms per extra run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
