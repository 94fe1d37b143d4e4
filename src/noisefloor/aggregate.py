"""Turn the runs an experiment asks for into one tidy table.

The table is built from the params (the (config, seed) grid), never by globbing
result folders: a config removed from params.yaml leaves no stale rows, and a
run whose files are missing or were made by other params is an error naming the
file, not a silently mixed table.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from .determinism import checked_run
from .errors import NoisefloorError
from .params import Params
from .records import ConfirmPlan, DecomposeRecord, SweepConfig, SweepRecord
from .runfiles import HISTORY_FILE, METRICS_FILE, RUN_COLUMNS, RunRecord, RunRecordError
from . import decompose as D, sweep as S


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


def read_metrics(params: Params, runs_dir: str | Path, config: str, seed: int) -> RunRecord:
    """Run (``config``, ``seed``)'s record; :class:`AggregateError` (one line, the file) unless it is there and
    made by these params."""
    path = run_dir(runs_dir, config, seed) / METRICS_FILE
    try:
        record = RunRecord.read(path)
    except FileNotFoundError:
        raise AggregateError(f"{path}: missing (run config={config} seed={seed} first)") from None
    except RunRecordError as exc:
        raise AggregateError(str(exc)) from None
    expected = params.resolve(config).config_hash
    if not record.made_by(expected, seed):
        raise AggregateError(f"{path}: written by other params (config hash {record.config_hash}, "
                             f"expected {expected}); retrain it or point --runs-dir elsewhere")
    return record


def search_scores(params: Params, runs_dir: str | Path) -> dict[str, float | None]:
    """Each sweep config's search score: its mean metric over the sweep's seeds (None when a run failed)."""
    metric = params.stats.metric
    scores = {}
    for config in params.sweep_configs:
        values = [read_metrics(params, runs_dir, config, s) for s in params.sweep.seeds]
        ok = [m.get(metric) for m in values if m.status == "ok"]
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
    return [seed for seed in seeds if finished_record(params, run_dir(runs_dir, config, seed), config, seed) is None]


def finished_record(params: Params, folder: str | Path, config: str, seed: int) -> RunRecord | None:
    """The ``metrics.json`` record in ``folder`` when it is run (``config``, ``seed``)'s, finished and current.

    Current: the same config hash, seed and code fingerprint as these params
    give it. A run skipped for want of CUDA is not finished once CUDA is here;
    the run ``program.check_determinism`` repeats is finished once its record
    holds the repeat's result.
    """
    try:
        m = RunRecord.read(Path(folder) / METRICS_FILE)
    except (OSError, RunRecordError):
        return None                          # missing, unfinished or broken: trained again
    return m if staleness(params, m, config, seed) is None else None


#: Why a finished record is not its run's current one (:func:`staleness`).
OTHER_RUN, PARAMS, CODE, CUDA, REPEAT = "other run", "params", "code", "cuda", "repeat"


def staleness(params: Params, m: RunRecord, config: str, seed: int) -> str | None:
    """Why the record ``m`` is not (``config``, ``seed``)'s finished, current run, or None when it is.

    One of :data:`OTHER_RUN` (another seed's record), :data:`PARAMS` (another
    config hash), :data:`CODE` (other code), :data:`CUDA` (skipped for want of
    CUDA, which is here now), :data:`REPEAT` (``program.check_determinism``'s
    repeat not yet recorded). The one decision behind :func:`finished_record`
    and ``noisefloor status``.
    """
    cfg = params.resolve(config)
    if m.seed != seed:
        return OTHER_RUN
    if m.config_hash != cfg.config_hash:
        return PARAMS
    if m.code_fingerprint != cfg.code_fingerprint:
        return CODE
    if m.status == "skipped" and _cuda():
        return CUDA
    if (config, seed) == checked_run(params) and "repeat_identical" not in m.values:
        return REPEAT
    return None


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def sweep_record(params: Params, runs_dir: str | Path) -> SweepRecord:
    """The search's record (``<runs>/sweep/sweep.json``): its configs, their scores, and the configs it confirms.

    Built once the search's runs are in; an empty record (``{"sweep": null}``) for params without a sweep.
    """
    sweep = params.sweep
    if sweep is None:
        return SweepRecord()
    scores = search_scores(params, runs_dir)
    return SweepRecord(
        method=sweep.method, sampler_seed=sweep.seed, seeds=tuple(sweep.seeds),
        metric=params.stats.metric, direction=params.stats.direction,
        configs={c: SweepConfig(dict(v), params.resolve(c).config_hash, scores[c])
                 for c, v in params.sweep_configs.items()},
        confirm=None if not sweep.confirm_top_k else ConfirmPlan(
            sweep.confirm_top_k, tuple(sweep.confirm_seeds), tuple(confirmed(params, runs_dir, scores))))


def decompose_record(params: Params) -> DecomposeRecord:
    """The decomposition's record (``<runs>/decompose/decompose.json``): its settings and configs (empty: none)."""
    d = params.decompose
    if d is None:
        return DecomposeRecord()
    return DecomposeRecord(tuple(d.seeds), tuple(d.sources), d.reference,
                           {c: {"sources": tuple(s), "config_hash": params.resolve(c).config_hash}
                            for c, s in params.decompose_configs.items()})


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
        record = m.to_dict()
        row.update({c: record[c] for c in RUN_COLUMNS if c in record})
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
