"""``analyze``: a runs table in, the whole answer out (no I/O).

Validation and exclusions first; then the sections of :mod:`.sections`, in
order (the runs, the noise floor, the verdicts, signal against noise, power,
hyperparameter importance, the search, where the noise comes from,
convergence), each contributing its part of one typed
:class:`~noisefloor.summary.Summary`, beside three tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ._core import AnalysisError, _check_direction, _check_unit_interval, _plain
from .importance import resolve_hparams
from .multiplicity import SINGLE_STEP
from .sections import (Runs, Settings, convergence_section, importance_section, noise_budget_section,
                       noise_floor_section, power_section, runs_section, search_section, signal_section,
                       verdicts_section)
from ..runs_table import without_decomposition
from ..summary import Summary


@dataclass(frozen=True, eq=False)
class AnalysisResult:
    """Everything :func:`analyze` found.

    Attributes
    ----------
    summary : Summary
        The typed summary (``summary.to_dict()`` is ``summary.json``).
    comparisons : pandas.DataFrame
        One row per variant, columns :data:`~noisefloor.stats.sections.COMPARISON_COLUMNS`.
    importance : pandas.DataFrame
        One row per hyperparameter, columns
        :data:`~noisefloor.stats.importance.IMPORTANCE_COLUMNS`.
    excluded : pandas.DataFrame
        The input rows that were not used, with a ``reason`` column.
    """

    summary: Summary
    comparisons: pd.DataFrame
    importance: pd.DataFrame
    excluded: pd.DataFrame


def _validate_arguments(direction, correction, alpha, confidence_level, power, n_boot, eval_size,
                        equivalence_margin):
    _check_direction(direction)
    if correction not in SINGLE_STEP:
        raise AnalysisError(f"correction must be one of {', '.join(SINGLE_STEP)} (single-step, so that each "
                            f"variant's interval matches its verdict); got {correction!r}")
    if equivalence_margin is not None and not (
        isinstance(equivalence_margin, (int, float, np.floating)) and not isinstance(equivalence_margin, bool)
        and math.isfinite(equivalence_margin) and equivalence_margin > 0
    ):
        raise AnalysisError(f"equivalence_margin must be a positive number or None, got {equivalence_margin!r}")
    _check_unit_interval("alpha", alpha)
    _check_unit_interval("confidence_level", confidence_level)
    _check_unit_interval("power", power)
    for name, value in (("n_boot", n_boot),):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise AnalysisError(f"{name} must be a positive integer, got {value!r}")
    if eval_size is not None and (
        not isinstance(eval_size, (int, np.integer)) or isinstance(eval_size, bool) or eval_size < 1
    ):
        raise AnalysisError(f"eval_size must be a positive integer or None, got {eval_size!r}")


def _validate_table(runs, metric, baseline, hp_columns) -> pd.Series:
    """Check the table; return the metric as floats. Raises AnalysisError."""
    if not isinstance(runs, pd.DataFrame):
        raise AnalysisError(f"runs must be a pandas DataFrame, got {type(runs).__name__}")
    for col, role in (("config", "config name"), ("seed", "seed"), (metric, "metric")):
        if col not in runs.columns:
            have = ", ".join(map(str, runs.columns))
            raise AnalysisError(f"runs table has no {col!r} column (the {role}); columns: {have}")
    if len(runs) == 0:
        raise AnalysisError("runs table is empty")
    for col in ("config", "seed"):
        missing = runs[col].isna()
        if missing.any():
            row = _plain(runs.index[missing.to_numpy()][0])
            raise AnalysisError(f"column {col!r} has {int(missing.sum())} missing value(s), first at row {row!r}")
    values = runs[metric]
    if pd.api.types.is_bool_dtype(values) or not (
        pd.api.types.is_numeric_dtype(values) or values.dtype == object
    ):
        raise AnalysisError(f"metric column {metric!r} is not numeric (dtype {values.dtype})")
    if values.dtype == object:
        converted = pd.to_numeric(values, errors="coerce")
        bad = converted.isna() & values.notna()
        if bad.any():
            first = _plain(values[bad].iloc[0])
            where = _plain(runs.loc[bad, "config"].iloc[0])
            raise AnalysisError(f"metric column {metric!r} is not numeric: value {first!r} in config {where!r}")
        values = converted
    dup = runs.duplicated(["config", "seed"], keep=False)
    if dup.any():
        first = runs[dup].iloc[0]
        count = int(((runs["config"] == first["config"]) & (runs["seed"] == first["seed"])).sum())
        config, seed = _plain(first["config"]), _plain(first["seed"])
        raise AnalysisError(f"duplicate runs: config {config!r} seed {seed!r} appears {count} times")
    if not (runs["config"] == baseline).any():
        names = ", ".join(map(str, pd.unique(runs["config"])[:10]))
        raise AnalysisError(f"no rows for baseline config {baseline!r} in column 'config' (configs: {names})")
    for col in hp_columns:
        n_values = runs.groupby("config", sort=False)[col].nunique(dropna=False)
        varying = n_values[n_values > 1]
        if len(varying):
            config = _plain(varying.index[0])
            raise AnalysisError(f"hyperparameter column {col!r} is not constant within config {config!r}")
    return values.astype(float)


def _exclusion_reasons(runs: pd.DataFrame, values: pd.Series) -> pd.Series:
    reason = pd.Series(None, index=runs.index, dtype=object)
    if "status" in runs.columns:
        status = runs["status"]
        not_ok = status.astype(object).where(status.notna(), "status missing")
        reason = reason.where(status == "ok", not_ok.astype(str))
    v = values.to_numpy(dtype=float)
    metric_reason = np.where(np.isnan(v), "metric is NaN", np.where(np.isinf(v), "metric is infinite", None))
    reason = reason.where(reason.notna(), pd.Series(metric_reason, index=runs.index, dtype=object))
    return reason



def analyze(
    runs: pd.DataFrame,
    metric: str,
    *,
    direction: str = "max",
    baseline: str = "baseline",
    alpha: float = 0.05,
    correction: str = "sidak",
    confidence_level: float = 0.95,
    power: float = 0.8,
    equivalence_margin: float | None = None,
    n_boot: int = 2000,
    eval_size: int | None = None,
    hparams: Sequence[str] | None = None,
    random_state: int | None = 0,
    looks: pd.DataFrame | None = None,
    histories: pd.DataFrame | None = None,
    noise_sources_left_out: Mapping[str, str] | None = None,
) -> AnalysisResult:
    """Compare every config of a sweep with the baseline against seed noise.

    Parameters
    ----------
    runs : pandas.DataFrame
        One row per training run: ``config`` (str), ``seed``, the ``metric``
        column (numeric), optionally ``status`` and ``hp.<name>`` columns
        (constant within a config).  Other columns are ignored.
    metric : str
        Metric column.
    direction : {"max", "min"}
        Whether larger or smaller metric values are better.
    baseline : str
        Name of the baseline config (the noise condition).
    alpha : float
        Family-wise error rate of the verdicts; the variants' intervals are
        simultaneous at ``1 - alpha``.
    correction : {"sidak", "bonferroni", "none"}
        Single-step multiplicity adjustment over the variants.
    confidence_level : float
        Level of the noise floor's and the variance share's intervals.
    power : float
        Target power for ``mde`` and the seeds needed.
    equivalence_margin : float, optional
        A variant is ``equivalent`` when its interval lies inside
        ``+-equivalence_margin``; default: the noise floor.
    n_boot : int
        Bootstrap resamples of the almost-stochastic-order column.
    eval_size : int, optional
        Size of the evaluation set; enables the sampling floor of an
        accuracy-like metric.
    hparams : sequence of str, optional
        Hyperparameters to assess (``"lr"`` or ``"hp.lr"``); default all
        ``hp.*`` columns.
    random_state : int or None
        Seed of the only resampling (``aso_eps``); no verdict depends on it.
    looks : pandas.DataFrame, optional
        An adaptive experiment's rows (comparisons' columns, from
        :func:`noisefloor.stats.sequential.replay`): each replaces its
        variant's comparison here, the verdict and interval of the look that
        stopped it, simultaneous at ``1 - alpha`` across the looks.
    histories : pandas.DataFrame, optional
        Per-epoch records (``config``, ``seed``, ``epoch`` and the metric):
        the usable runs' curves are checked for convergence
        (``summary.not_converged``).
    noise_sources_left_out : mapping of str to str, optional
        Sources of randomness a decomposition asked for that nothing in the
        model varies, each with why (``summary.noise_sources_left_out``).

    Returns
    -------
    AnalysisResult

    Raises
    ------
    AnalysisError
        Missing ``config``/``seed``/metric column, non-numeric metric,
        missing config or seed values, duplicate (config, seed) rows, a
        hyperparameter varying within a config, a bad argument, no baseline
        rows, or fewer than two usable baseline runs.

    Notes
    -----
    *Exclusion.*  Rows whose ``status`` is not ``"ok"`` are excluded with the
    status as reason (``"status missing"`` for an empty one); then rows whose
    metric is NaN or infinite.  They are counted and returned in
    ``excluded``.

    *Comparisons* use every usable run of the variant and of the baseline,
    and the seed pairing as far as the sweep shows a seed effect (see
    :mod:`noisefloor.stats.compare`).  ``mean`` is the variant's
    seed-adjusted mean and ``diff == mean - baseline_mean`` in every row;
    ``mean_raw`` is the plain mean of its runs.  ``ci_low``/``ci_high`` are
    simultaneous intervals at ``simultaneous_level = 1 - alpha``; the verdict
    is ``better``/``worse`` exactly when the interval excludes 0.

    *Spreads.*  Each config's run-to-run variance is moderated across
    configs (:mod:`noisefloor.stats.moderation`): ``std_moderated`` is the
    variant's, the spread its test and its power use.

    *Power*, from each variant's own moderated spread and the baseline's.
    ``mde``: the smallest difference the variant's runs detect against the
    baseline's with probability ``power`` at the per-comparison level
    (``mde_upper``: with both spreads scaled to the noise floor's upper
    confidence bound).  ``seeds_for_margin``: seeds per config (variant and
    baseline, the baseline keeping at least its runs) at which the interval
    excludes 0 with probability ``power`` if the true difference is one
    equivalence margin: a named effect, for planning.  ``seeds_needed``
    (inconclusive rows only): the seeds per config that would settle the
    observed difference, whichever decision is nearer: excluding 0 at the
    observed difference, or fitting the margin (``seeds_needed_to`` says
    which).

    *Descriptive columns* (never used for a verdict): ``effect_size``
    (Cohen's d over all runs), ``prob_superior`` (P(a variant run beats a
    baseline run)), ``aso_eps`` (almost stochastic order, < 0.5 favours the
    variant; with fewer than about 10 runs a side it says little).
    """
    _validate_arguments(direction, correction, alpha, confidence_level, power, n_boot, eval_size,
                        equivalence_margin)
    s = Settings(direction=direction, alpha=alpha, correction=correction, confidence_level=confidence_level,
                 power=power, equivalence_margin=equivalence_margin, n_boot=n_boot, eval_size=eval_size,
                 random_state=random_state)
    r = _prepare(runs, metric, baseline, hparams)
    floor = noise_floor_section(r, s)
    verdicts = verdicts_section(r, s, floor, looks)
    summary = _compose(
        runs_section(r, s),
        floor.fields,
        verdicts.fields,
        signal_section(r, s, verdicts),
        power_section(r, s, floor, verdicts),
        search_section(r, s, floor, verdicts),
        # The decomposition's runs (stage "decompose") answer where the noise comes from, apart from the rest.
        noise_budget_section(runs, metric, s, noise_sources_left_out),   # (runs is a table: _prepare checked it)
        convergence_section(histories, r, s, floor),
    )
    return AnalysisResult(summary=summary, comparisons=verdicts.comparisons,
                          importance=importance_section(r, s, floor, verdicts, summary.search_importance),
                          excluded=r.excluded)


def _prepare(runs, metric: str, baseline: str, hparams) -> Runs:
    """The table checked, its exclusions made, as :class:`~.sections.Runs` (raises AnalysisError)."""
    if isinstance(runs, pd.DataFrame):
        runs = without_decomposition(runs)
    hp_columns = resolve_hparams(runs, hparams) if isinstance(runs, pd.DataFrame) else []
    values = _validate_table(runs, metric, baseline, hp_columns)

    reason = _exclusion_reasons(runs, values)
    usable_mask = reason.isna().to_numpy()
    excluded = runs.loc[~usable_mask].copy()
    excluded["reason"] = reason[~usable_mask].astype(str)
    usable = runs.loc[usable_mask].copy()
    usable[metric] = values[usable_mask]

    is_base = (usable["config"] == baseline).to_numpy()
    n_base = int(is_base.sum())
    if n_base < 2:
        n_out = int((runs["config"] == baseline).sum()) - n_base
        raise AnalysisError(
            f"baseline config {baseline!r} has {n_base} usable run(s) ({n_out} excluded); need at least 2"
        )
    y = usable[metric].to_numpy(dtype=float)
    return Runs(metric=metric, baseline=baseline, usable=usable, excluded=excluded, y=y,
                cfg=usable["config"].to_numpy(dtype=object), seeds=usable["seed"].to_numpy(dtype=object),
                b=y[is_base], variants=[c for c in pd.unique(runs["config"]) if c != baseline],
                hp_columns=hp_columns)


def _compose(*parts) -> Summary:
    """One summary from the sections' parts; a field set by two sections is a bug, caught here."""
    fields: dict = {}
    for part in parts:
        twice = fields.keys() & part.keys()
        if twice:
            raise AssertionError(f"summary fields set by two sections: {sorted(twice)}")
        fields.update(part)
    return Summary(**fields)._cleaned()
