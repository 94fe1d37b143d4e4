"""Realistic synthetic inputs for the plot and report tests.

The numbers mimic a small image classifier: val_acc around 97 %, seed noise
of roughly 0.3 pp, a shared per-seed offset (so paired comparisons make
sense), one diverged run, and per-epoch histories.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

BASELINE = "baseline"
NOISE_SEEDS = list(range(20))
SIGNAL_SEEDS = [0, 1, 2, 3, 4]

# config -> (true shift of val_acc, hyperparameters)
CONFIGS = {
    BASELINE: (0.0, {"lr": 1e-3, "hidden_size": 128, "batch_size": 128, "weight_decay": 0.0}),
    "lr_hi": (0.008, {"lr": 3e-3, "hidden_size": 128, "batch_size": 128, "weight_decay": 0.0}),
    "lr_lo": (-0.015, {"lr": 3e-4, "hidden_size": 128, "batch_size": 128, "weight_decay": 0.0}),
    "hidden_256": (0.001, {"lr": 1e-3, "hidden_size": 256, "batch_size": 128, "weight_decay": 0.0}),
    "wd_1e-4": (0.0, {"lr": 1e-3, "hidden_size": 128, "batch_size": 128, "weight_decay": 1e-4}),
    "bs_64": (0.003, {"lr": 1e-3, "hidden_size": 128, "batch_size": 64, "weight_decay": 0.0}),
}
DIVERGED = ("lr_hi", 3)


def make_runs(seed: int = 0) -> pd.DataFrame:
    """Run table: the baseline at every noise seed, the variants at the signal seeds."""
    rng = np.random.default_rng(seed)
    seed_effect = {s: rng.normal(0, 0.0025) for s in NOISE_SEEDS}
    rows = []
    for config, (shift, hp) in CONFIGS.items():
        seeds = NOISE_SEEDS if config == BASELINE else SIGNAL_SEEDS
        for s in seeds:
            acc = 0.97 + shift + seed_effect[s] + rng.normal(0, 0.0015)
            status = "ok"
            if (config, s) == DIVERGED:
                status, acc = "diverged", np.nan
            rows.append({
                "config": config, "seed": s, "status": status,
                "val_acc": acc, "best_val_acc": acc + 0.001 if status == "ok" else np.nan,
                "test_acc": acc - 0.002 if status == "ok" else np.nan,
                "val_loss": 0.1 - (acc - 0.97) * 2 if status == "ok" else np.nan,
                "train_loss": 0.05, "epochs_run": 10 if status == "ok" else 4,
                "wall_time_s": 30.0 + rng.normal(0, 1),
                **{f"hp.{k}": v for k, v in hp.items()},
            })
    return pd.DataFrame(rows)


def make_histories(runs: pd.DataFrame, seed: int = 1) -> pd.DataFrame:
    """Per-epoch curves ending near each run's final val_acc; the diverged run explodes."""
    rng = np.random.default_rng(seed)
    rows = []
    for r in runs.itertuples(index=False):
        n_epochs = int(r.epochs_run)
        final = r.val_acc if np.isfinite(r.val_acc) else 0.5
        for e in range(1, n_epochs + 1):
            frac = 1 - np.exp(-e / 2.5)
            val_acc = 0.1 + (final - 0.1) * frac + rng.normal(0, 0.002)
            val_loss = 2.3 * (1 - frac) + 0.1 + rng.normal(0, 0.01)
            train_loss = 2.3 * (1 - frac) + 0.05
            if r.status != "ok" and e >= 3:
                val_acc, val_loss, train_loss = 0.1, np.inf, np.nan
            rows.append({"config": r.config, "seed": r.seed, "epoch": e,
                         "train_loss": train_loss, "val_loss": val_loss, "val_acc": val_acc})
    return pd.DataFrame(rows)


def analysis(runs: pd.DataFrame, histories: pd.DataFrame | None = None):
    """The real analysis of the synthetic runs (so the figures and the report see consistent numbers)."""
    from noisefloor.stats import analyze

    # A margin of 0.35 pp (as a user would set in params) makes one variant "equivalent".
    return analyze(runs, "val_acc", baseline=BASELINE, eval_size=2000, n_boot=200, equivalence_margin=0.0035,
                   histories=histories)


def make_search(confirm: int = 0) -> pd.DataFrame:
    """A search: 30 configs at seed 0 (lr log-uniform, opt adam/sgd; the score peaks at lr 0.003), the
    baseline ``base`` at 20 seeds, and the best ``confirm`` configs run again at seeds 1-3 (their confirmation)."""
    from noisefloor.sweep import confirm_name

    rng = np.random.default_rng(0)
    rows = [{"config": "base", "seed": s, "acc": 0.95 + rng.normal(0, 0.004), "hp.lr": 0.003, "hp.opt": "adam"}
            for s in range(20)]
    for i in range(30):
        lr = float(np.exp(rng.uniform(np.log(3e-4), np.log(3e-2))))
        rows.append({"config": f"sweep_{i:03d}", "seed": 0, "acc": 0.95 - 0.02 * (np.log10(lr) + 2.5) ** 2,
                     "hp.lr": lr, "hp.opt": str(rng.choice(["adam", "sgd"]))})
    for r in sorted(rows[20:], key=lambda r: -r["acc"])[:confirm]:
        rows += [{**r, "config": confirm_name(r["config"]), "seed": s, "acc": r["acc"] + rng.normal(0, 0.004)}
                 for s in (1, 2, 3)]
    return pd.DataFrame(rows)
