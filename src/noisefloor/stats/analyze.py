"""``analyze``: a runs table in, the whole answer out (no I/O).

Validation and exclusions first, then the noise floor, the signal, every
variant against the baseline (:mod:`.compare`), hyperparameter importance
(:mod:`.importance`) and power (:mod:`.power`), gathered into a typed
:class:`~noisefloor.stats.summary.Summary` and three tables.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from ._core import AnalysisError, _check_direction, _check_unit_interval, _int_or_none, _plain, _seed_sequence
from .aso import aso
from .compare import METHOD, ComparisonResult, compare_variants, seed_share
from .expected_max import expected_max, search_sample, trials_worth
from .importance import hparam_importance, resolve_hparams
from .marginal import marginal_importance
from .noise_sources import noise_budget
from .moderation import OUTLIER_LEVEL
from .multiplicity import SINGLE_STEP
from .power import detectable_difference, seeds_for_equivalence, seeds_to_detect
from .summary import Summary
from .twosample import cohens_d, prob_superior
from .variance import (brown_forsythe_test, fixed_seed_signal, hp_variance_share, noise_floor, robust_sd,
                       welch_anova)
from .winner import winner
from ..runs_table import without_decomposition
from ..sweep import confirm_name

#: A search's marginal importance needs at least this many configs (fewer cannot tell a level from a run).
MIN_SEARCH_FOR_IMPORTANCE = 6

#: Columns of ``AnalysisResult.comparisons``, in order, whatever the arguments.
COMPARISON_COLUMNS = (
    "config", "baseline", "n", "n_baseline", "n_paired", "mean", "mean_raw", "std", "std_moderated",
    "baseline_mean",
    "diff", "ci_low", "ci_high", "simultaneous_level", "diff_over_noise", "method", "beta", "statistic",
    "df", "p_value", "p_adjusted", "correction", "verdict", "note", "mde", "mde_upper", "seeds_needed",
    "seeds_needed_upper", "seeds_needed_to", "seeds_for_margin", "effect_size", "prob_superior", "aso_eps",
)


@dataclass(frozen=True, eq=False)
class AnalysisResult:
    """Everything :func:`analyze` found.

    Attributes
    ----------
    summary : Summary
        The typed summary (``summary.to_dict()`` is ``summary.json``).
    comparisons : pandas.DataFrame
        One row per variant, columns :data:`COMPARISON_COLUMNS`.
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



def _is_proportion(metric: str, values: np.ndarray) -> bool:
    """An accuracy-like metric: a share of examples, in [0, 1]."""
    name = metric.lower()
    return "acc" in name and "loss" not in name and bool(np.all((values >= 0) & (values <= 1)))


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
    # The decomposition's runs (stage "decompose") answer where the noise comes from, apart from the rest.
    sources = _noise_sources(runs, metric, confidence_level)
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
    cfg = usable["config"].to_numpy(dtype=object)
    seeds = usable["seed"].to_numpy(dtype=object)
    b = y[is_base]

    # --- the noise floor: the baseline's own --------------------------------
    floor = noise_floor(b)
    floor_ci = floor.confidence_interval(confidence_level)
    sd = floor.std if floor.std > 0 else math.nan          # no spread: power is undefined
    sd_upper = floor_ci.high if floor.std > 0 else math.nan
    margin = float(equivalence_margin) if equivalence_margin is not None else floor.std

    # --- every variant against the baseline ---------------------------------
    variants = [c for c in pd.unique(runs["config"]) if c != baseline]
    vc = compare_variants(y, cfg, seeds, baseline=baseline, variants=variants, alpha=alpha,
                          correction=correction, margin=margin, direction=direction)
    fam, verdict, two_way, block = vc.family, vc.verdicts, vc.two_way, vc.block
    beta = seed_share(floor.variance, two_way)
    spread = {c: vc.spreads.get(c, (math.nan, math.nan, 0.0)) for c in [baseline] + variants}
    sd_v = np.sqrt(np.array([spread[c][0] for c in variants], dtype=float))
    prior_v = np.array([spread[c][2] for c in variants], dtype=float)
    sd_b = math.sqrt(spread[baseline][0]) if floor.std > 0 else math.nan
    prior_b = spread[baseline][2]
    df_v = np.array([spread[c][1] for c in variants], dtype=float)    # the df each spread rests on
    upper = sd_upper / sd if sd > 0 else math.nan      # the noise floor at its upper bound, as a factor
    res = pd.DataFrame([r.__dict__ for r in vc.results],
                       columns=list(ComparisonResult.__dataclass_fields__))
    n_v = res["n"].to_numpy(dtype=float)
    diff = res["estimate"].to_numpy(dtype=float)
    by_config = {c: np.flatnonzero(cfg == c) for c in variants}

    # --- power at the family's level ----------------------------------------
    a1 = fam.per_comparison_alpha
    ok = n_v >= 2
    mde = np.full(len(res), np.nan)
    mde_up = np.full(len(res), np.nan)
    for_margin = np.full(len(res), np.nan)
    # A variant whose spread is moderated is tested on its own degrees of freedom when its spread looks
    # improbably large, which happens at the flag's level even when it is not: power counts both.
    own = dict(prior_df=prior_v, prior_df_baseline=prior_b, alpha=a1)
    if ok.any():
        mde[ok] = detectable_difference(n_v[ok], n_base, sd=sd_v[ok], sd_baseline=sd_b, prior_df=prior_v[ok],
                                        prior_df_baseline=prior_b, alpha=a1, power=power, flag_rate=OUTLIER_LEVEL)
        mde_up[ok] = mde[ok] * upper
        for_margin[ok] = seeds_to_detect(np.full(int(ok.sum()), margin), sd_v[ok], n_baseline=n_base, power=power,
                                         sd_baseline=sd_b, prior_df=prior_v[ok], prior_df_baseline=prior_b, alpha=a1,
                                         flag_rate=OUTLIER_LEVEL, sd_df=df_v[ok])

    def needed(scale):
        kw = dict(n_baseline=n_base, power=power, sd_baseline=sd_b * scale, **own)
        # Expected over what the variant's spread may truly be: one on 3 df may be far larger.
        detect = np.asarray(seeds_to_detect(diff, sd_v * scale, sd_df=df_v, flag_rate=OUTLIER_LEVEL, **kw),
                            dtype=float)
        equiv = np.asarray(seeds_for_equivalence(diff, sd_v * scale, margin, sd_df=df_v, **kw), dtype=float)
        best = np.fmin(detect, equiv)
        to = np.where(np.isnan(best), None, np.where(equiv <= np.nan_to_num(detect, nan=np.inf), "equivalence",
                                                      "detect"))
        undecided = (verdict == "inconclusive") & (res["note"].to_numpy(dtype=object) == "")
        return np.where(undecided, best, np.nan), np.where(undecided, to, None)

    need, need_to = needed(1.0)
    need_up, _ = needed(upper)

    # --- descriptive columns -------------------------------------------------
    child = _seed_sequence(random_state).spawn(max(1, len(variants)))
    sign = 1.0 if direction == "max" else -1.0
    descriptive = []
    for c, seq in zip(variants, child):
        v = y[by_config[c]]
        enough = v.size >= 2
        descriptive.append({
            "std": float(v.std(ddof=1)) if enough else math.nan,
            "effect_size": cohens_d(v, b) if enough else math.nan,
            "prob_superior": prob_superior(v, b, direction=direction),
            "aso_eps": aso(sign * v, sign * b, confidence_level=confidence_level, num_bootstrap_iterations=n_boot,
                           random_state=np.random.default_rng(seq)).eps_min if enough else math.nan,
        })
    desc = pd.DataFrame(descriptive, columns=["std", "effect_size", "prob_superior", "aso_eps"])

    comp = pd.DataFrame({
        "config": variants,
        "baseline": baseline,
        "n": res["n"],
        "n_baseline": n_base,
        "n_paired": res["n_paired"],
        "mean": res["mean"],
        "mean_raw": res["mean_raw"],
        "std": desc["std"],
        "std_moderated": sd_v,
        "baseline_mean": float(b.mean()),
        "diff": diff,
        "ci_low": fam.ci_low,
        "ci_high": fam.ci_high,
        "simultaneous_level": 1.0 - alpha,
        "diff_over_noise": diff / sd,
        "method": METHOD,
        "beta": res["beta"],
        "statistic": res["statistic"],
        "df": res["df"],
        "p_value": res["pvalue"],
        "p_adjusted": fam.p_adjusted,
        "correction": correction,
        "verdict": verdict,
        "note": res["note"],
        "mde": mde,
        "mde_upper": mde_up,
        "seeds_needed": pd.array(np.where(np.isnan(need), None, need), dtype="Int64"),
        "seeds_needed_upper": pd.array(np.where(np.isnan(need_up), None, need_up), dtype="Int64"),
        "seeds_needed_to": need_to,
        "seeds_for_margin": pd.array(np.where(np.isnan(for_margin), None, for_margin), dtype="Int64"),
        "effect_size": desc["effect_size"],
        "prob_superior": desc["prob_superior"],
        "aso_eps": desc["aso_eps"],
    }, columns=list(COMPARISON_COLUMNS))
    if looks is not None and len(looks):
        comp = _with_looks(comp, looks, alpha)
    for col in ("n", "n_baseline", "n_paired"):
        comp[col] = comp[col].astype(int)

    # --- hyperparameter importance ------------------------------------------
    importance = hparam_importance(usable, metric, comp, baseline=baseline, hparams=hp_columns,
                                   noise_floor=sd, alpha=alpha, correction=correction)

    summary = _summary(
        metric=metric, direction=direction, baseline=baseline, alpha=alpha, correction=correction,
        confidence_level=confidence_level, power=power, y=y, cfg=cfg, seeds=seeds, b=b, floor=floor,
        floor_ci=floor_ci, sd=sd, sd_upper=sd_upper, margin=margin, margin_given=equivalence_margin is not None,
        excluded=excluded, two_way=two_way, block=block, beta=beta, comp=comp, fam=fam, eval_size=eval_size,
        usable=usable, hp_columns=hp_columns, random_state=random_state, noise_sources=sources,
        prior_df=float(np.median(prior_v[ok])) if ok.any() else 0.0, prior_df_baseline=prior_b)
    return AnalysisResult(summary=summary, comparisons=comp.reset_index(drop=True), importance=importance,
                          excluded=excluded)


def _with_looks(comp: pd.DataFrame, looks: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """``comp`` with each variant in ``looks`` given the row of the look that stopped it."""
    rows = looks.set_index("config")
    out = comp.set_index("config")
    for config in rows.index.intersection(out.index):
        out.loc[config, :] = rows.loc[config, out.columns]
        out.loc[config, "simultaneous_level"] = 1.0 - alpha
    return out.reset_index()[list(COMPARISON_COLUMNS)]


def _noise_sources(runs, metric, confidence_level) -> dict:
    """The summary's noise-by-source fields, from the decomposition's runs and the baseline's ``sources``."""
    if not isinstance(runs, pd.DataFrame) or "stage" not in runs.columns:
        return {}
    out = {}
    stage = runs["stage"].astype(str)
    if "sources" in runs.columns:
        floor = runs.loc[stage == "noise", "sources"].dropna().unique()
        if len(floor) == 1:
            out["noise_floor_sources"] = str(floor[0]).split("+")
    dec = runs[stage == "decompose"]
    if not len(dec) or "source" not in dec.columns or metric not in dec.columns:
        return out
    status = dec["status"].astype(str) if "status" in dec.columns else pd.Series("ok", index=dec.index)
    values = pd.to_numeric(dec[metric], errors="coerce")
    usable = (status == "ok") & np.isfinite(values)
    by_source = {str(k): values[usable & (dec["source"] == k)].to_numpy(dtype=float)
                 for k in pd.unique(dec["source"])}
    skipped = [k for k, v in by_source.items() if not len(v) and (status[dec["source"] == k] == "skipped").all()]
    budget = noise_budget({k: v for k, v in by_source.items() if len(v)}, confidence_level=confidence_level)
    out.update(
        noise_sources=[{"source": r.source, "n": r.n, "sd": r.sd, "sd_ci": list(r.sd_ci), "share": r.share,
                        "share_ci": None if r.share_ci is None else list(r.share_ci)} for r in budget.sources],
        noise_sources_sum_ratio=budget.sum_ratio,
        noise_sources_sum_ratio_ci=None if budget.sum_ratio_ci is None else list(budget.sum_ratio_ci),
        noise_sources_adds_up=budget.adds_up, noise_sources_largest=budget.largest,
        noise_sources_largest_clear=budget.largest_clear, noise_sources_skipped=skipped or None)
    return out


def _confirmed(comp, direction) -> list[dict]:
    """Each searched config run again at fresh seeds (best first): its row in the search beside its row there.

    Both differences are the verdict table's (``diff``: seed-adjusted, variant minus baseline).
    """
    rows = comp.set_index("config")
    out = []
    for config in rows.index:
        group = confirm_name(str(config))
        if group not in rows.index:
            continue
        r = rows.loc[group]
        out.append({"config": str(config), "group": group, "search_diff": _plain(rows.loc[config, "diff"]),
                    "n": int(r["n"]), "diff": _plain(r["diff"]), "ci": [_plain(r["ci_low"]), _plain(r["ci_high"])],
                    "verdict": r["verdict"]})
    sign = -1.0 if direction == "max" else 1.0
    return sorted(out, key=lambda r: sign * r["search_diff"] if np.isfinite(r["search_diff"]) else np.inf)


def _summary(*, metric, direction, baseline, alpha, correction, confidence_level, power, y, cfg, seeds, b,
             floor, floor_ci, sd, sd_upper, margin, margin_given, excluded, two_way, block, beta, comp, fam,
             eval_size, usable, hp_columns, random_state, noise_sources, prior_df=0.0,
             prior_df_baseline=0.0) -> Summary:
    n_base = b.size
    # Spread per config, baseline first.
    spreads = []
    for c in [baseline] + [c for c in pd.unique(cfg) if c != baseline]:
        v = y[cfg == c]
        spreads.append({"config": c, "n": int(v.size), "sd": float(v.std(ddof=1)) if v.size >= 2 else None,
                        "sd_robust": robust_sd(v) if v.size >= 2 else None})
    bf_p = brown_forsythe_test(y, cfg)
    pooled = noise_floor(y, cfg)
    show_pooled = np.isfinite(bf_p) and bf_p >= alpha
    wa = welch_anova(y, cfg)

    # The share of the signal condition's variance that hyperparameters explain.
    if two_way is not None:
        share = hp_variance_share(two_way=two_way, confidence_level=confidence_level)
    else:
        frame = pd.DataFrame({"c": cfg, "s": seeds, "v": y})
        counts = frame.groupby("s", sort=False)["c"].nunique()
        busiest = counts.idxmax() if len(counts) and counts.max() >= 2 else None
        signal = frame.loc[frame["s"] == busiest, "v"].to_numpy() if busiest is not None else None
        share = hp_variance_share(signal_values=signal, noise_values=b, confidence_level=confidence_level)

    sampling = None
    if eval_size is not None and len(y) and _is_proportion(metric, y):
        p = float(b.mean())
        sampling = math.sqrt(p * (1 - p) / eval_size)
    on_test = metric.lower().startswith("test")

    # The search: every config at one seed, its expected best against the number of trials.
    search_seed, searched_configs, searched = search_sample(y, cfg, seeds, baseline)
    n_trials = len(searched)
    lead = winner(searched_configs, searched, np.ones(n_trials), floor.std, direction=direction)
    marginal = None
    if n_trials >= MIN_SEARCH_FOR_IMPORTANCE and hp_columns:
        at = usable[usable["seed"] == search_seed].drop_duplicates("config").set_index("config")
        rows = at.loc[list(searched_configs)]
        marginal = marginal_importance(searched, {c.removeprefix("hp."): rows[c] for c in hp_columns},
                                       random_state=_seed_sequence(random_state).spawn(1)[0])
    search_curve = expected_max(searched, direction=direction)
    confirmed = _confirmed(comp, direction)
    noise_best = expected_max(b, n_trials, direction=direction)[-1] if n_trials and len(b) else None

    verdicts = comp["verdict"]
    eligible = comp[comp["n"] >= 2]
    best = None
    if len(eligible) and eligible["diff"].notna().any():
        d = eligible["diff"].to_numpy(dtype=float)
        best = eligible.iloc[int(np.nanargmax(d) if direction == "max" else np.nanargmin(d))]

    a1 = fam.per_comparison_alpha
    typical = Counter(int(n) for n in comp["n"] if n >= 2).most_common(1)
    mde_n = typical[0][0] if typical else None
    mde = mde_up = None
    # A variant as noisy as the baseline, its spread moderated as the typical variant's is (the flag
    # counts only where a spread is moderated: comparison_power).
    design = dict(alpha=a1, power=power, prior_df=prior_df, prior_df_baseline=prior_df_baseline)
    detect = dict(flag_rate=OUTLIER_LEVEL, **design)
    if mde_n is not None:
        mde = detectable_difference(mde_n, n_base, sd=sd, **detect)
        mde_up = detectable_difference(mde_n, n_base, sd=sd_upper, **detect)
    needed_for = []
    for k in (0.5, 1.0, 2.0):
        needed_for.append({
            "noise_floors": k,
            "diff": k * sd,
            "seeds": _int_or_none(seeds_to_detect(k * sd, sd, n_baseline=n_base, **detect)),
            "seeds_upper": _int_or_none(seeds_to_detect(k * sd, sd_upper, n_baseline=n_base, **detect)),
        })

    return Summary(
        metric=metric, direction=direction, baseline=baseline, alpha=alpha, correction=correction,
        confidence_level=confidence_level, power=power,
        n_runs=int(len(y)), n_configs=int(pd.unique(cfg).size), n_variants=int(len(comp)), n_baseline=int(n_base),
        baseline_mean=float(b.mean()),
        n_excluded=int(len(excluded)),
        excluded_by_reason={str(k): int(v) for k, v in excluded["reason"].value_counts(sort=False).items()},
        noise_floor=floor.std, noise_floor_ci=[floor_ci.low, floor_ci.high], noise_floor_df=floor.df,
        noise_floor_robust=robust_sd(b), config_spreads=spreads, equal_variance_pvalue=bf_p,
        noise_floor_pooled=pooled.std if show_pooled else None,
        noise_floor_pooled_df=pooled.df if show_pooled else None,
        eval_size=eval_size,
        val_sampling_floor=None if on_test else sampling, test_sampling_floor=sampling if on_test else None,
        configs_differ_pvalue=wa.pvalue, configs_differ_f=wa.statistic, configs_differ_df=[wa.df_num, wa.df_den],
        hp_variance_share=share.share, hp_variance_share_ci=[share.ci_low, share.ci_high],
        hp_variance_share_method=share.method if np.isfinite(share.share) else None,
        signal_fixed_seed=fixed_seed_signal(y, cfg, seeds),
        var_config=None if two_way is None else two_way.var_config,
        var_seed=None if two_way is None else two_way.var_seed,
        var_residual=None if two_way is None else two_way.var_residual,
        two_way_configs=None if block is None else list(block.configs),
        two_way_n_seeds=None if two_way is None else two_way.n_seeds,
        seed_share=beta if two_way is not None else None,
        search_seed=search_seed, search_trials=n_trials or None,
        search_expected_best=search_curve[-1] if n_trials else None, noise_expected_best=noise_best,
        trials_worth=trials_worth(search_curve, floor.std) if n_trials else None,
        search_winner=None if lead is None else lead.config, search_winner_lead=None if lead is None else lead.lead,
        search_winner_top_k=None if lead is None else lead.top_k,
        search_winner_probability=None if lead is None else lead.probability,
        search_importance=None if marginal is None or not len(marginal) else marginal.to_dict("records"),
        search_confirmed=confirmed or None,
        **noise_sources,
        family_size=fam.family_size, per_comparison_alpha=a1,
        equivalence_margin=margin, equivalence_margin_source="params" if margin_given else "noise floor",
        n_better=int((verdicts == "better").sum()), n_worse=int((verdicts == "worse").sum()),
        n_equivalent=int((verdicts == "equivalent").sum()), n_inconclusive=int((verdicts == "inconclusive").sum()),
        n_insufficient_runs=int((verdicts == "insufficient_runs").sum()),
        best_config=None if best is None else best["config"],
        best_diff=None if best is None else best["diff"],
        best_ci=None if best is None else [best["ci_low"], best["ci_high"]],
        best_verdict=None if best is None else best["verdict"],
        mde=mde, mde_upper=mde_up, mde_n=mde_n, seeds_needed_for=needed_for,
        seeds_for_equivalence=_int_or_none(seeds_for_equivalence(0.0, sd, margin, n_baseline=n_base, **design)),
        seeds_for_equivalence_upper=_int_or_none(seeds_for_equivalence(0.0, sd_upper, margin, n_baseline=n_base,
                                                                       **design)),
    )._cleaned()
