"""Turn the runs an experiment asks for into one tidy table.

The table is built from the params (the (config, seed) grid), never by globbing
result folders: a config removed from params.yaml leaves no stale rows, and a
run whose files are missing or were made by other params is an error naming the
file, not a silently mixed table.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .errors import NoisefloorError
from .params import Params
from .runfiles import HISTORY_FILE, METRICS_FILE

RUN_COLUMNS = [
    "config", "seed", "status", "val_acc", "best_val_acc", "best_epoch", "test_acc",
    "val_loss", "test_loss", "train_loss", "epochs_run", "diverged_at_epoch",
    "n_train", "n_val", "n_test", "device", "threads", "train_step", "wall_time_s", "slurm_job_id", "config_hash",
    "code_fingerprint", "program", "repeat_identical", "repeat_note",
]


class AggregateError(NoisefloorError, RuntimeError):
    """A run's output is missing or does not belong to these params."""


def run_dir(runs_dir: str | Path, config: str, seed: int) -> Path:
    """Where the run (config, seed) keeps its outputs (the one path pattern of both engines)."""
    return Path(runs_dir) / config / f"seed{seed}"


def read_metrics(params: Params, runs_dir: str | Path, config: str, seed: int) -> dict:
    path = run_dir(runs_dir, config, seed) / METRICS_FILE
    try:
        metrics = json.loads(path.read_text())
    except FileNotFoundError:
        if config in params.sweep_configs:
            raise AggregateError(f"{path}: missing: the sweep's configs are trained by Snakemake "
                                 "(`snakemake --cores N`); DVC does not expand a sweep yet (docs/dvc.md)") from None
        raise AggregateError(f"{path}: missing (run config={config} seed={seed} first)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise AggregateError(f"{path}: unreadable metrics ({exc})") from None
    expected = params.resolve(config).config_hash
    if metrics.get("config_hash") != expected or metrics.get("seed") != seed:
        raise AggregateError(f"{path}: written by other params (config hash {metrics.get('config_hash')}, "
                             f"expected {expected}); retrain it or point --runs-dir elsewhere")
    return metrics


def collect_runs(params: Params, runs_dir: str | Path) -> pd.DataFrame:
    """One row per (config, seed) of the experiment, with ``hp.*`` hyperparameter columns."""
    rows = []
    for config, seed in params.runs():
        m = read_metrics(params, runs_dir, config, seed)
        # A user's program adds its own numbers (program_metrics), ahead of the record's columns.
        row = {c: m.get(c) for c in m.get("program_metrics", [])}
        # The record's columns it has (a program's run has no test set, epochs setting or device of its own).
        row.update({c: m[c] for c in RUN_COLUMNS if c in m})
        row.update(params.resolve(config).hyperparameters())
        rows.append(row)
    return pd.DataFrame(rows)


def collect_histories(params: Params, runs_dir: str | Path) -> pd.DataFrame:
    """All runs' per-epoch histories, with ``config`` and ``seed`` columns."""
    frames = []
    for config, seed in params.runs():
        path = run_dir(runs_dir, config, seed) / HISTORY_FILE
        try:
            h = pd.read_csv(path)
        except FileNotFoundError:
            raise AggregateError(f"{path}: missing (run config={config} seed={seed} first)") from None
        frames.append(h.assign(config=config, seed=seed))
    # The built-in model's columns, or whatever a user's program records per epoch (columns in first-seen order).
    cols = ["config", "seed", "epoch"]
    for frame in frames:
        cols += [c for c in frame.columns if c not in cols]
    return pd.concat(frames, ignore_index=True)[cols] if frames else \
        pd.DataFrame(columns=cols + ["train_loss", "val_loss", "val_acc", "time_s"])
