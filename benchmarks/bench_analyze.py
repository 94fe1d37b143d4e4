"""Time ``noisefloor.stats.analyze`` on a 10,000-run sweep.

100 configs (a 10 x 10 grid over two hyperparameters, the baseline one of
them) x 100 shared seeds.  As a yardstick measured in the same process, the
script also times the bare scipy calls a hand-rolled analysis would make on
the same data (``f_oneway`` once plus ``ttest_rel`` for every variant) and
prints the ratio.

Run from the repository root::

    PYTHONPATH=src python benchmarks/bench_analyze.py
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from scipy import stats

from noisefloor.stats import analyze

N_SEEDS = 100
LRS = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0, 3.0]
HIDDEN = [32, 64, 96, 128, 192, 256, 384, 512, 768, 1024]


def make_runs(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    lr, hidden = np.meshgrid(LRS, HIDDEN, indexing="ij")
    lr, hidden = lr.ravel(), hidden.ravel()
    n_cfg = lr.size
    names = np.array([f"lr{a:g}_h{h}" for a, h in zip(lr, hidden)], dtype=object)
    names[n_cfg // 2] = "baseline"
    effect = -0.01 * (np.log10(lr) + 2.5) ** 2 + 0.002 * np.log2(hidden / 32)
    seed_effect = rng.normal(0, 0.004, N_SEEDS)
    acc = 0.85 + effect[:, None] + seed_effect[None, :] + rng.normal(0, 0.006, (n_cfg, N_SEEDS))
    runs = pd.DataFrame({
        "config": np.repeat(names, N_SEEDS),
        "seed": np.tile(np.arange(N_SEEDS), n_cfg),
        "val_acc": acc.ravel(),
        "status": "ok",
        "hp.lr": np.repeat(lr, N_SEEDS),
        "hp.hidden_size": np.repeat(hidden, N_SEEDS),
    })
    return runs


def scipy_yardstick(runs: pd.DataFrame, metric: str) -> float:
    t0 = time.perf_counter()
    groups = {c: g.sort_values("seed")[metric].to_numpy() for c, g in runs.groupby("config", sort=False)}
    stats.f_oneway(*groups.values())
    base = groups["baseline"]
    for name, values in groups.items():
        if name != "baseline":
            stats.ttest_rel(values, base)
    return time.perf_counter() - t0


def main() -> None:
    runs = make_runs()
    t0 = time.perf_counter()
    result = analyze(runs, "val_acc")
    t_analyze = time.perf_counter() - t0
    t_scipy = scipy_yardstick(runs, "val_acc")
    s = result.summary
    print(f"runs: {len(runs)}  configs: {s.n_configs}  seeds: {N_SEEDS}")
    print(f"analyze (n_boot=2000): {t_analyze:.2f} s")
    print(f"scipy f_oneway + {s.n_variants} x ttest_rel: {t_scipy:.3f} s")
    print(f"ratio: {t_analyze / t_scipy:.0f}x")
    print(f"noise floor {s.noise_floor:.4f}, better {s.n_better}, worse {s.n_worse}")


if __name__ == "__main__":
    main()
