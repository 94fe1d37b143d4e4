"""A search at scale: 1,000 sweep configs x 1 seed + 200 noise seeds, against the shipped experiment.

Times, for the shipped ``params.yaml`` (baseline) and for the same experiment
with a 1,000-config random sweep and 200 noise seeds (candidate), in one run:

- building the workflow's DAG (``snakemake -n``, nothing trained);
- ``noisefloor analyze``, ``plot`` and ``report`` on a synthetic runs table of
  that shape (the metric a known function of the learning rate plus noise,
  quantised to a 2,000-example validation set);

and prints each time, the ratio, and the report's size. Run from the
repository root::

    PYTHONPATH=src .venv/bin/python benchmarks/bench_search_scale.py
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from _common import ROOT, child_env, machine, timed, tool

SWEEP = {"method": "random", "count": 1000, "seed": 0, "seeds": [0], "parameters": {
    "lr": {"distribution": "log_uniform_values", "min": 0.0003, "max": 0.03},
    "batch_size": {"values": [50, 100, 200]},
    "hidden_size": {"values": [64, 128, 256]},
    "weight_decay": {"distribution": "log_uniform_values", "min": 0.000001, "max": 0.001}}}


def params_files(folder: Path) -> dict[str, Path]:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    base = folder / "baseline.yaml"
    base.write_text(yaml.safe_dump(raw, sort_keys=False))
    big = dict(raw, sweep=SWEEP, seeds={"noise": list(range(200)), "signal": raw["seeds"]["signal"]})
    cand = folder / "search.yaml"
    cand.write_text(yaml.safe_dump(big, sort_keys=False))
    return {"baseline": base, "search": cand}


def runs_table(params: Path, path: Path, seed: int = 0) -> None:
    """A runs table of the experiment's shape: accuracy = f(lr) + seed noise, quantised."""
    from noisefloor import params as P

    p = P.load(params)
    rng = np.random.default_rng(seed)
    rows = []
    for config, s in p.runs():
        cfg = p.resolve(config)
        acc = 0.95 - 0.01 * (np.log10(cfg.train.lr) + 2.5) ** 2 + rng.normal(0, 0.004)
        rows.append({"config": config, "seed": s, "val_acc": round(acc * 2000) / 2000, "status": "ok",
                     "n_val": 2000, **cfg.hyperparameters()})
    pd.DataFrame(rows).to_csv(path, index=False)


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    print(machine())
    env = child_env(NOISEFLOOR_FORKSERVER="0")
    snakemake, noisefloor = tool("snakemake"), tool("noisefloor")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results: dict[str, dict[str, float]] = {}
        for name, params in params_files(folder).items():
            work = folder / name
            work.mkdir()
            t = results.setdefault(name, {})
            t["dag"] = timed([snakemake, "-n", "-s", str(ROOT / "Snakefile"), "-d", str(work), "--cores", "2",
                              "--config", f"params={params}"], env)
            runs = work / "runs.csv"
            runs_table(params, runs)
            t["analyze"] = timed([noisefloor, "analyze", str(runs), "--out", str(work / "a")], env)
            t["plot"] = timed([noisefloor, "plot", "--runs", str(runs), "--analysis", str(work / "a"),
                               "--out", str(work / "p")], env)
            t["report"] = timed([noisefloor, "report", "--runs", str(runs), "--analysis", str(work / "a"),
                                 "--plots", str(work / "p"), "--out", str(work / "r.html")], env)
            t["report MB"] = (work / "r.html").stat().st_size / 1e6
            t["runs"] = len(pd.read_csv(runs))
        print(f"{'':12}{'baseline':>12}{'search':>12}{'ratio':>8}")
        for key in ("runs", "dag", "analyze", "plot", "report", "report MB"):
            b, c = results["baseline"][key], results["search"][key]
            unit = "" if key in ("runs", "report MB") else " s"
            print(f"{key:12}{b:>10.1f}{unit:2}{c:>10.1f}{unit:2}{c / b:>7.1f}x")


if __name__ == "__main__":
    main()
