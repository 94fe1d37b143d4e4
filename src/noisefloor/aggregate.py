"""Turn the runs an experiment asks for into one tidy table.

The table is built from the params (the (config, seed) grid), never by globbing
result folders: a config removed from params.yaml leaves no stale rows, and a
run whose files are missing or were made by other params is an error naming the
file, not a silently mixed table.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from .errors import NoisefloorError
from .params import Params
from .runfiles import HISTORY_FILE, METRICS_FILE
from . import decompose as D, sweep as S

RUN_COLUMNS = [
    "config", "seed", "status", "val_acc", "best_val_acc", "best_epoch", "test_acc",
    "val_loss", "test_loss", "train_loss", "epochs_run", "diverged_at_epoch",
    "n_train", "n_val", "n_test", "device", "threads", "train_step", "wall_time_s", "slurm_job_id", "config_hash",
    "code_fingerprint", "program", "repeat_identical", "repeat_note", "sources", "note",
]


class AggregateError(NoisefloorError, RuntimeError):
    """A run's output is missing or does not belong to these params."""


#: The configs the pipeline makes keep their runs in a folder of their own: (folder, who belongs there).
GROUPS = ((S.FOLDER, S.is_sweep_config), (D.FOLDER, D.is_decompose_config))


def group_folder(config: str) -> str | None:
    """The folder of ``config``'s group (a sweep's, the decomposition's), None for the others."""
    return next((folder for folder, member in GROUPS if member(config)), None)


def run_dir(runs_dir: str | Path, config: str, seed: int) -> Path:
    """Where the run (config, seed) keeps its outputs (the one path pattern of both engines).

    ``<runs>/<config>/seed<s>``, or ``<runs>/<group folder>/<config>/seed<s>``
    for a sweep's and the decomposition's configs (:data:`GROUPS`).
    """
    folder = group_folder(config)
    return Path(runs_dir) / (folder or "") / config / f"seed{seed}"


def read_metrics(params: Params, runs_dir: str | Path, config: str, seed: int) -> dict:
    path = run_dir(runs_dir, config, seed) / METRICS_FILE
    try:
        metrics = json.loads(path.read_text())
    except FileNotFoundError:
        raise AggregateError(f"{path}: missing (run config={config} seed={seed} first)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise AggregateError(f"{path}: unreadable metrics ({exc})") from None
    expected = params.resolve(config).config_hash
    if metrics.get("config_hash") != expected or metrics.get("seed") != seed:
        raise AggregateError(f"{path}: written by other params (config hash {metrics.get('config_hash')}, "
                             f"expected {expected}); retrain it or point --runs-dir elsewhere")
    return metrics


def search_scores(params: Params, runs_dir: str | Path) -> dict[str, float | None]:
    """Each sweep config's search score: its mean metric over the sweep's seeds (None when a run failed)."""
    metric = params.stats.metric
    scores = {}
    for config in params.sweep_configs:
        values = [read_metrics(params, runs_dir, config, s) for s in params.sweep.seeds]
        ok = [m.get(metric) for m in values if m.get("status") == "ok"]
        finite = len(ok) == len(values) and all(isinstance(v, (int, float)) and math.isfinite(v) for v in ok)
        scores[config] = float(sum(ok) / len(ok)) if finite else None
    return scores


def confirmed(params: Params, runs_dir: str | Path, scores: dict | None = None) -> list[str]:
    """The sweep configs to confirm at fresh seeds, best first (from the search's finished runs, or their
    ``scores`` when already read)."""
    sweep = params.sweep
    if sweep is None or not sweep.confirm_top_k:
        return []
    scores = search_scores(params, runs_dir) if scores is None else scores
    return S.select(scores, sweep.confirm_top_k, params.stats.direction)


def stale_seeds(params: Params, runs_dir: str | Path, config: str, seeds) -> list[int]:
    """The seeds of ``config`` whose run is missing, unfinished, or made by other params or other code."""
    cfg = params.resolve(config)
    out = []
    for seed in seeds:
        try:
            m = json.loads((run_dir(runs_dir, config, seed) / METRICS_FILE).read_text())
        except (OSError, json.JSONDecodeError):
            out.append(seed)
            continue
        if (m.get("config_hash"), m.get("seed"), m.get("code_fingerprint")) != \
                (cfg.config_hash, seed, cfg.code_fingerprint) or (m.get("status") == "skipped" and _cuda()):
            out.append(seed)           # (a run skipped for want of CUDA runs once CUDA is here)
    return out


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def sweep_record(params: Params, runs_dir: str | Path) -> dict:
    """The search's record (``<runs>/sweep/sweep.json``): its configs, their scores, and the configs it confirms.

    Written once the search's runs are in; ``{"sweep": null}`` for params without a sweep.
    """
    sweep = params.sweep
    if sweep is None:
        return {"sweep": None}
    scores = search_scores(params, runs_dir)
    return {
        "method": sweep.method, "sampler_seed": sweep.seed, "seeds": list(sweep.seeds),
        "metric": params.stats.metric, "direction": params.stats.direction,
        "configs": {c: {"values": dict(v), "config_hash": params.resolve(c).config_hash, "score": scores[c]}
                    for c, v in params.sweep_configs.items()},
        "confirm": None if not sweep.confirm_top_k else {
            "top_k": sweep.confirm_top_k, "seeds": list(sweep.confirm_seeds),
            "configs": confirmed(params, runs_dir, scores)},
    }


def decompose_record(params: Params) -> dict:
    """The decomposition's record (``<runs>/decompose/decompose.json``): its settings and configs, or null."""
    d = params.decompose
    if d is None:
        return {"decompose": None}
    return {"seeds": list(d.seeds), "sources": list(d.sources), "reference": d.reference,
            "configs": {c: {"sources": list(s), "config_hash": params.resolve(c).config_hash}
                        for c, s in params.decompose_configs.items()}}


def experiment_runs(params: Params, runs_dir: str | Path) -> list[tuple[str, int, str]]:
    """Every (config, seed, stage) of the experiment, the confirmation's once the search has run.

    Stages: ``noise`` (the baseline), ``signal`` (a named variant), ``search``
    (a sweep config at the sweep's seeds), ``confirm`` (a chosen sweep config
    at the fresh seeds), ``decompose`` (the baseline with one source varying,
    or all of them: :mod:`noisefloor.decompose`).
    """
    if params.adaptive is not None:
        from .adaptive import experiment_runs as rounds_runs     # (the rounds' runs: known from the runs)

        return rounds_runs(params, runs_dir)

    def stage(config):
        if config == params.baseline:
            return "noise"
        return {S.FOLDER: "search", D.FOLDER: "decompose"}.get(group_folder(config), "signal")

    runs = [(c, s, stage(c)) for c, s in params.runs()]
    return runs + [(c, s, "confirm") for c in confirmed(params, runs_dir) for s in params.sweep.confirm_seeds]


def collect_runs(params: Params, runs_dir: str | Path, runs: list | None = None) -> pd.DataFrame:
    """One row per run of the experiment, with its ``stage`` and ``hp.*`` hyperparameter columns.

    A confirmation's runs form a group of their own (``config`` is
    :func:`noisefloor.sweep.confirm_name`), so every reader of the table
    compares them with the baseline apart from the search run that chose them.
    ``runs``: :func:`experiment_runs`, when already listed.
    """
    rows = []
    for config, seed, stage in runs if runs is not None else experiment_runs(params, runs_dir):
        m = read_metrics(params, runs_dir, config, seed)
        # A user's program adds its own numbers (program_metrics), ahead of the record's columns.
        row = {c: m.get(c) for c in m.get("program_metrics", [])}
        # The record's columns it has (a program's run has no test set, epochs setting or device of its own).
        row.update({c: m[c] for c in RUN_COLUMNS if c in m})
        row.update(config=S.confirm_name(config) if stage == "confirm" else config, stage=stage)
        if stage == "decompose":
            row["source"] = D.source_of(config)
        row.update(params.resolve(config).hyperparameters())
        rows.append(row)
    return pd.DataFrame(rows)


def collect_histories(params: Params, runs_dir: str | Path, runs: list | None = None) -> pd.DataFrame:
    """All runs' per-epoch histories, with ``config`` and ``seed`` columns (named as in the runs table)."""
    frames = []
    for config, seed, stage in runs if runs is not None else experiment_runs(params, runs_dir):
        path = run_dir(runs_dir, config, seed) / HISTORY_FILE
        try:
            h = pd.read_csv(path)
        except FileNotFoundError:
            raise AggregateError(f"{path}: missing (run config={config} seed={seed} first)") from None
        frames.append(h.assign(config=S.confirm_name(config) if stage == "confirm" else config, seed=seed))
    # The built-in model's columns, or whatever a user's program records per epoch (columns in first-seen order).
    cols = ["config", "seed", "epoch"]
    for frame in frames:
        cols += [c for c in frame.columns if c not in cols]
    return pd.concat(frames, ignore_index=True)[cols] if frames else \
        pd.DataFrame(columns=cols + ["train_loss", "val_loss", "val_acc", "time_s"])
