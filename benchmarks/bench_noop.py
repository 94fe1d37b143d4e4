"""No-op re-run: how long an engine takes to find that 100 finished runs need nothing.

Builds a 100-run experiment of tiny runs (60 noise seeds + 4 variants x 10
signal seeds; 2 epochs of an 8-unit LSTM on 200 digits), runs the whole pipeline
once, then times re-runs that have nothing to do. The baseline is the same
no-op re-run of a 4-run experiment (2 noise seeds + 1 variant x 2 seeds: the
engine's fixed cost), so the ratio and the difference show what each extra run
costs when nothing changed.

- Snakemake: ``snakemake --cores 2`` (the whole default pipeline).
- DVC: ``dvc repro`` in a git copy of this checkout (skipped, with a note, when
  the checkout has no ``dvc.yaml``).

Usage::

    python benchmarks/bench_noop.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, child_env, dvc_project, machine, timed, tool  # noqa: E402

SIZES = {"4 runs (baseline)": (2, 1, 2), "100 runs": (60, 4, 10)}


def tiny_params(n_noise: int, n_variants: int, n_signal: int) -> dict:
    """Everything written out: DVC sees only what the file holds."""
    variants = {f"v{i}": {"lr": round(0.004 + 0.001 * i, 4)} for i in range(n_variants)}
    return {
        "data": {"dataset": "digits", "train_subset": 200},
        "model": {"hidden_size": 8, "num_layers": 1, "bidirectional": False},
        "train": {"lr": 0.01, "batch_size": 100, "epochs": 2, "device": "cpu"},
        "configs": variants,
        "seeds": {"noise": list(range(n_noise)), "signal": list(range(n_signal))},
        "stats": {"baseline": "baseline", "n_boot": 200},
    }


def snakemake_cmd(work: Path) -> list[str]:
    return [tool("snakemake"), "-s", str(ROOT / "Snakefile"), "-d", str(work), "--cores", "2",
            "--config", "params=params.yaml", "--quiet", "all"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"machine: {machine()}")
    have_dvc = (ROOT / "dvc.yaml").exists()
    with tempfile.TemporaryDirectory(prefix="nf-bench-noop-") as tmp:
        tmp = Path(tmp)
        server_dir = str(tmp / "forkserver")
        works: dict[tuple[str, str], tuple[list[str], dict, Path]] = {}
        for label, size in SIZES.items():
            raw = tiny_params(*size)
            work = tmp / f"snakemake-{size[0]}"
            work.mkdir()
            (work / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
            env = child_env(NOISEFLOOR_FORKSERVER_DIR=server_dir)
            works[("snakemake", label)] = (snakemake_cmd(work), env, work)
            if have_dvc:
                work = dvc_project(tmp / f"dvc-{size[0]}", yaml.safe_dump(raw, sort_keys=False))
                env = dict(child_env(NOISEFLOOR_FORKSERVER_DIR=server_dir, DVC_NO_ANALYTICS="1"),
                           PYTHONPATH=str(work / "src"))
                works[("dvc", label)] = ([tool("dvc"), "repro", "-q"], env, work)
        for (engine, label), (cmd, env, work) in works.items():
            t = timed(cmd, env, cwd=work)                       # the real first run
            print(f"  first run, {engine}, {label}: {t:.1f} s", flush=True)
        from noisefloor import forkserver

        forkserver.stop(child_env(NOISEFLOOR_FORKSERVER_DIR=server_dir))
        times: dict[tuple[str, str], list[float]] = {k: [] for k in works}
        for _ in range(args.repeat):                            # interleaved
            for key, (cmd, env, work) in works.items():
                times[key].append(timed(cmd, env, cwd=work))
        for engine in ("snakemake", "dvc"):
            if engine == "dvc" and not have_dvc:
                print("\ndvc: skipped (no dvc.yaml in this checkout)")
                continue
            base = statistics.median(times[(engine, "4 runs (baseline)")])
            big = statistics.median(times[(engine, "100 runs")])
            print(f"\n{engine}: no-op re-run, median of {args.repeat}")
            print(f"  4 runs (baseline) {base:7.2f} s")
            print(f"  100 runs          {big:7.2f} s   ratio {big / base:.2f}, "
                  f"{1000 * (big - base) / 96:.1f} ms per extra run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
