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


VERDICTS = {"lr_hi": "better", "lr_lo": "worse", "hidden_256": "within_noise",
            "wd_1e-4": "within_noise", "bs_64": "insufficient_runs"}


def make_comparisons(runs: pd.DataFrame, noise_floor: float) -> pd.DataFrame:
    """A comparison table shaped like the stats module's, with plausible values."""
    ok = runs[runs["status"] == "ok"]
    base = ok[ok["config"] == BASELINE]
    base_mean = base["val_acc"].mean()
    rows = []
    for config in CONFIGS:
        if config == BASELINE:
            continue
        v = ok[ok["config"] == config]["val_acc"]
        diff = v.mean() - base_mean
        half = 2.0 * noise_floor / np.sqrt(len(v))
        insufficient = VERDICTS[config] == "insufficient_runs"
        p = {"better": 0.004, "worse": 0.0002, "within_noise": 0.41, "insufficient_runs": np.nan}[VERDICTS[config]]
        rows.append({
            "config": config, "baseline": BASELINE, "n": len(v), "n_baseline": len(base),
            "n_paired": len(v), "mean": v.mean(), "std": v.std(ddof=1), "baseline_mean": base_mean,
            "diff": diff, "ci_low": np.nan if insufficient else diff - half,
            "ci_high": np.nan if insufficient else diff + half, "confidence_level": 0.95,
            "diff_over_noise": diff / noise_floor, "test": "paired_t", "statistic": 2.0,
            "p_value": p / 2 if np.isfinite(p) else np.nan, "p_adjusted": p, "correction": "holm",
            "effect_size": diff / noise_floor, "p_paired_t": p, "p_wilcoxon": p, "p_signflip": p,
            "p_welch": p, "p_mannwhitney": p, "prob_superior": 0.8, "aso_eps": 0.2,
            "verdict": VERDICTS[config], "mde": 2.8 * noise_floor / np.sqrt(len(v)),
            "seeds_needed": np.nan if insufficient else 12.0,
        })
    return pd.DataFrame(rows)


def make_importance() -> pd.DataFrame:
    return pd.DataFrame([
        {"hparam": "hp.lr", "n_levels": 3, "n_runs": 30, "var_explained": 9.1e-5,
         "noise_var": 8.0e-6, "ratio": 11.4, "p_value": 1e-6, "verdict": "matters"},
        {"hparam": "hp.batch_size", "n_levels": 2, "n_runs": 24, "var_explained": 4.0e-6,
         "noise_var": 8.0e-6, "ratio": 0.5, "p_value": 0.12, "verdict": "within_noise"},
        {"hparam": "hp.hidden_size", "n_levels": 2, "n_runs": 25, "var_explained": 3.0e-7,
         "noise_var": 8.0e-6, "ratio": 0.0375, "p_value": 0.61, "verdict": "within_noise"},
        {"hparam": "hp.weight_decay", "n_levels": 2, "n_runs": 25, "var_explained": 0.0,
         "noise_var": 8.0e-6, "ratio": 0.0, "p_value": 0.95, "verdict": "within_noise"},
    ])
