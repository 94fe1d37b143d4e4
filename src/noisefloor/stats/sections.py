"""The analysis' sections: each answers one question from the runs and returns its part of the summary.

:func:`noisefloor.stats.analyze` prepares the runs once (:class:`Runs`) and
composes the sections in order; a section reads the runs, the settings and
the parts before it, and returns its :class:`~noisefloor.summary.Summary`
fields (a mapping from field name to value; the field's definition is
written once, in the summary's glossary). Two sections also hand objects to
the ones after them: the noise floor (:class:`NoiseFloor`) and the verdicts
(:class:`Verdicts`, with the comparisons table).

A new statistic is one new section: a function here, its fields in
:class:`~noisefloor.summary.Summary`, one line in ``analyze``. Renderers
then read it from the summary; none computes it.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ._core import _int_or_none, _plain, _seed_sequence
from .aso import aso
from .compare import METHOD, ComparisonResult, compare_variants, seed_share
from .convergence import still_improving
from .expected_max import expected_max, expected_max_curve, search_sample, trials_worth
from .importance import hparam_importance
from .marginal import marginal_importance
from .moderation import OUTLIER_LEVEL
from .multiplicity import adjust_pvalues
from .noise_sources import noise_budget
from .power import detectable_difference, seeds_for_equivalence, seeds_to_detect
from .twosample import cohens_d, prob_superior
from .units import in_percent, is_proportion
from .variance import (brown_forsythe_test, fixed_seed_signal, hp_variance_share, noise_floor, robust_sd,
                       welch_anova)
from .winner import winner
from ..sweep import confirm_name
from ..vocab import Verdict, hp_column, hp_name, inert_sources

#: A part of the summary: field name -> value (every name a :class:`~noisefloor.summary.Summary` field).
Fields = Mapping[str, Any]

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


@dataclass(frozen=True)
class Settings:
    """How the analysis decides: :func:`~noisefloor.stats.analyze`'s keywords, validated."""

    direction: str
    alpha: float
    correction: str
    confidence_level: float
    power: float
    equivalence_margin: float | None
    n_boot: int
    eval_size: int | None
    random_state: int | None


@dataclass(frozen=True, eq=False)
class Runs:
    """The runs as every section reads them: the usable ones, as arrays, and what was left out.

    Attributes
    ----------
    metric, baseline : str
    usable : pandas.DataFrame
        The usable runs (status ok, finite metric), the metric as floats.
    excluded : pandas.DataFrame
        The rest, with a ``reason`` column.
    y, cfg, seeds : numpy.ndarray
        The usable runs' metric, config and seed.
    b : numpy.ndarray
        The baseline's usable values.
    variants : list
        Every config but the baseline, in the table's order (excluded runs' configs too).
    hp_columns : list of str
        The hyperparameter columns assessed.
    """

    metric: str
    baseline: str
    usable: pd.DataFrame
    excluded: pd.DataFrame
    y: np.ndarray
    cfg: np.ndarray
    seeds: np.ndarray
    b: np.ndarray
    variants: list
    hp_columns: list


# --------------------------------------------------------------------------- the question and the runs


def runs_section(r: Runs, s: Settings) -> Fields:
    """What was analysed, and how the metric is shown (decided here once: ``percent``)."""
    return dict(
        metric=r.metric, direction=s.direction, percent=in_percent(r.metric, r.y), baseline=r.baseline,
        alpha=s.alpha, correction=s.correction, confidence_level=s.confidence_level, power=s.power,
        n_runs=int(len(r.y)), n_configs=int(pd.unique(r.cfg).size), n_baseline=int(r.b.size),
        baseline_mean=float(r.b.mean()), n_excluded=int(len(r.excluded)),
        excluded_by_reason={str(k): int(v) for k, v in r.excluded["reason"].value_counts(sort=False).items()},
        seed_blind=_seed_blind(r),
        same_configs=_same_configs(r),
    )


def _same_configs(r: Runs) -> list[list[str]]:
    """Configs whose runs record the same config hash (one config under several names), baseline first."""
    if "config_hash" not in r.usable.columns:
        return []
    hashes = r.usable[["config", "config_hash"]].dropna().drop_duplicates()
    order = {c: i for i, c in enumerate([r.baseline, *r.variants])}
    groups = [sorted(g["config"].astype(str), key=lambda c: order.get(c, len(order)))
              for _, g in hashes.groupby("config_hash", sort=False)]
    return [g for g in groups if len(g) > 1]


#: Fewest different seeds whose identical results name a config seed-blind (two equal quantised accuracies are
#: common enough by chance; three equal to the last digit are not).
SEED_BLIND_SEEDS = 3


def _seed_blind(r: Runs) -> list[str]:
    """The configs whose runs at ``SEED_BLIND_SEEDS`` or more different seeds all gave the very same metric."""
    table = pd.DataFrame({"config": r.cfg, "seed": r.seeds, "y": r.y})
    found = table.groupby("config", sort=False).agg(seeds=("seed", "nunique"), values=("y", "nunique"))
    return [str(c) for c, row in found.iterrows() if row.seeds >= SEED_BLIND_SEEDS and row["values"] == 1]


# --------------------------------------------------------------------------- the noise floor


@dataclass(frozen=True, eq=False)
class NoiseFloor:
    """The baseline's spread across seeds, and what later sections take from it.

    ``sd`` and ``sd_upper`` are NaN when the baseline does not vary (power is
    then undefined); ``margin`` is the equivalence margin (the noise floor
    unless one was given).
    """

    result: Any
    sd: float
    sd_upper: float
    margin: float
    fields: Fields


def noise_floor_section(r: Runs, s: Settings) -> NoiseFloor:
    floor = noise_floor(r.b)
    ci = floor.confidence_interval(s.confidence_level)
    spread = floor.std > 0
    margin = float(s.equivalence_margin) if s.equivalence_margin is not None else floor.std
    # The binomial sampling error of an accuracy on the evaluation set: a floor no seed count lowers.
    sampling = None
    if s.eval_size is not None and len(r.y) and is_proportion(r.metric, r.y):
        p = float(r.b.mean())
        sampling = math.sqrt(p * (1 - p) / s.eval_size)
    on_test = r.metric.lower().startswith("test")
    return NoiseFloor(floor, sd=floor.std if spread else math.nan, sd_upper=ci.high if spread else math.nan,
                      margin=margin, fields=dict(
                          noise_floor=floor.std, noise_floor_ci=[ci.low, ci.high], noise_floor_df=floor.df,
                          noise_floor_robust=robust_sd(r.b), eval_size=s.eval_size,
                          val_sampling_floor=None if on_test else sampling,
                          test_sampling_floor=sampling if on_test else None,
                          equivalence_margin=margin,
                          equivalence_margin_source="noise floor" if s.equivalence_margin is None else "params"))


# --------------------------------------------------------------------------- the verdicts


@dataclass(frozen=True, eq=False)
class Verdicts:
    """Every variant against the baseline: the comparisons table and the family it was tested in.

    ``prior_df``/``prior_df_baseline``: the degrees of freedom the
    moderated spreads borrowed (the typical variant's, the baseline's), for
    the power of a variant not yet run.
    """

    comparisons: pd.DataFrame
    family: Any
    two_way: Any
    block: Any
    beta: float
    prior_df: float
    prior_df_baseline: float
    fields: Fields


def verdicts_section(r: Runs, s: Settings, nf: NoiseFloor, looks: pd.DataFrame | None = None) -> Verdicts:
    """The verdict table (comparisons), with each variant's power and descriptive columns.

    ``looks``: an adaptive experiment's rows, each replacing its variant's
    comparison (the verdict and interval of the look that stopped it).
    """
    y, cfg, b, variants, baseline = r.y, r.cfg, r.b, r.variants, r.baseline
    n_base, sd, margin = int(b.size), nf.sd, nf.margin
    vc = compare_variants(y, cfg, r.seeds, baseline=baseline, variants=variants, alpha=s.alpha,
                          correction=s.correction, margin=margin, direction=s.direction)
    fam, verdict, two_way = vc.family, vc.verdicts, vc.two_way
    beta = seed_share(nf.result.variance, two_way)
    spread = {c: vc.spreads.get(c, (math.nan, math.nan, 0.0)) for c in [baseline] + variants}
    sd_v = np.sqrt(np.array([spread[c][0] for c in variants], dtype=float))
    prior_v = np.array([spread[c][2] for c in variants], dtype=float)
    sd_b = math.sqrt(spread[baseline][0]) if nf.result.std > 0 else math.nan
    prior_b = spread[baseline][2]
    df_v = np.array([spread[c][1] for c in variants], dtype=float)    # the df each spread rests on
    upper = nf.sd_upper / sd if sd > 0 else math.nan      # the noise floor at its upper bound, as a factor
    res = pd.DataFrame([x.__dict__ for x in vc.results], columns=list(ComparisonResult.__dataclass_fields__))
    n_v = res["n"].to_numpy(dtype=float)
    diff = res["estimate"].to_numpy(dtype=float)

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
                                        prior_df_baseline=prior_b, alpha=a1, power=s.power, flag_rate=OUTLIER_LEVEL)
        mde_up[ok] = mde[ok] * upper
        for_margin[ok] = seeds_to_detect(np.full(int(ok.sum()), margin), sd_v[ok], n_baseline=n_base, power=s.power,
                                         sd_baseline=sd_b, prior_df=prior_v[ok], prior_df_baseline=prior_b, alpha=a1,
                                         flag_rate=OUTLIER_LEVEL, sd_df=df_v[ok])

    def needed(scale):
        kw = dict(n_baseline=n_base, power=s.power, sd_baseline=sd_b * scale, **own)
        # Expected over what the variant's spread may truly be: one on 3 df may be far larger.
        detect = np.asarray(seeds_to_detect(diff, sd_v * scale, sd_df=df_v, flag_rate=OUTLIER_LEVEL, **kw),
                            dtype=float)
        equiv = np.asarray(seeds_for_equivalence(diff, sd_v * scale, margin, sd_df=df_v, **kw), dtype=float)
        best = np.fmin(detect, equiv)
        to = np.where(np.isnan(best), None, np.where(equiv <= np.nan_to_num(detect, nan=np.inf), "equivalence",
                                                      "detect"))
        undecided = (verdict == Verdict.INCONCLUSIVE) & (res["note"].to_numpy(dtype=object) == "")
        return np.where(undecided, best, np.nan), np.where(undecided, to, None)

    need, need_to = needed(1.0)
    need_up, _ = needed(upper)

    # --- descriptive columns (never a verdict's) -------------------------------
    child = _seed_sequence(s.random_state).spawn(max(1, len(variants)))
    sign = 1.0 if s.direction == "max" else -1.0
    descriptive = []
    for c, seq in zip(variants, child):
        v = y[cfg == c]
        enough = v.size >= 2
        descriptive.append({
            "std": float(v.std(ddof=1)) if enough else math.nan,
            "effect_size": cohens_d(v, b) if enough else math.nan,
            "prob_superior": prob_superior(v, b, direction=s.direction),
            "aso_eps": aso(sign * v, sign * b, confidence_level=s.confidence_level, num_bootstrap_iterations=s.n_boot,
                           random_state=np.random.default_rng(seq)).eps_min if enough else math.nan,
        })
    desc = pd.DataFrame(descriptive, columns=["std", "effect_size", "prob_superior", "aso_eps"])

    def counts(values):
        return pd.array(np.where(np.isnan(values), None, values), dtype="Int64")

    comp = pd.DataFrame({
        "config": variants, "baseline": baseline, "n": res["n"], "n_baseline": n_base, "n_paired": res["n_paired"],
        "mean": res["mean"], "mean_raw": res["mean_raw"], "std": desc["std"], "std_moderated": sd_v,
        "baseline_mean": float(b.mean()), "diff": diff, "ci_low": fam.ci_low, "ci_high": fam.ci_high,
        "simultaneous_level": 1.0 - s.alpha, "diff_over_noise": diff / sd, "method": METHOD, "beta": res["beta"],
        "statistic": res["statistic"], "df": res["df"], "p_value": res["pvalue"], "p_adjusted": fam.p_adjusted,
        "correction": s.correction, "verdict": verdict, "note": res["note"], "mde": mde, "mde_upper": mde_up,
        "seeds_needed": counts(need), "seeds_needed_upper": counts(need_up), "seeds_needed_to": need_to,
        "seeds_for_margin": counts(for_margin), "effect_size": desc["effect_size"],
        "prob_superior": desc["prob_superior"], "aso_eps": desc["aso_eps"],
    }, columns=list(COMPARISON_COLUMNS))
    if looks is not None and len(looks):
        comp = _with_looks(comp, looks, s.alpha)
    for col in ("n", "n_baseline", "n_paired"):
        comp[col] = comp[col].astype(int)
    comp = comp.reset_index(drop=True)

    verdicts = comp["verdict"]
    eligible = comp[comp["n"] >= 2]
    best = None
    if len(eligible) and eligible["diff"].notna().any():
        d = eligible["diff"].to_numpy(dtype=float)
        best = eligible.iloc[int(np.nanargmax(d) if s.direction == "max" else np.nanargmin(d))]
    block = vc.block
    return Verdicts(comp, fam, two_way, block, beta, prior_df=float(np.median(prior_v[ok])) if ok.any() else 0.0,
                    prior_df_baseline=prior_b, fields=dict(
                        n_variants=int(len(comp)), family_size=fam.family_size,
                        per_comparison_alpha=fam.per_comparison_alpha,
                        n_better=int((verdicts == Verdict.BETTER).sum()), n_worse=int((verdicts == Verdict.WORSE).sum()),
                        n_equivalent=int((verdicts == Verdict.EQUIVALENT).sum()),
                        n_inconclusive=int((verdicts == Verdict.INCONCLUSIVE).sum()),
                        n_insufficient_runs=int((verdicts == Verdict.INSUFFICIENT_RUNS).sum()),
                        best_config=None if best is None else best["config"],
                        best_diff=None if best is None else best["diff"],
                        best_ci=None if best is None else [best["ci_low"], best["ci_high"]],
                        best_verdict=None if best is None else best["verdict"],
                        var_config=None if two_way is None else two_way.var_config,
                        var_seed=None if two_way is None else two_way.var_seed,
                        var_residual=None if two_way is None else two_way.var_residual,
                        two_way_configs=None if block is None else list(block.configs),
                        two_way_n_seeds=None if two_way is None else two_way.n_seeds,
                        seed_share=beta if two_way is not None else None))


def _with_looks(comp: pd.DataFrame, looks: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """``comp`` with each variant in ``looks`` given the row of the look that stopped it."""
    rows = looks.set_index("config")
    out = comp.set_index("config")
    for config in rows.index.intersection(out.index):
        out.loc[config, :] = rows.loc[config, out.columns]
        out.loc[config, "simultaneous_level"] = 1.0 - alpha
    return out.reset_index()[list(COMPARISON_COLUMNS)]


# --------------------------------------------------------------------------- signal against noise


def signal_section(r: Runs, s: Settings, v: Verdicts) -> Fields:
    """The spread of every config, whether configs differ, and the share of variance hyperparameters explain."""
    y, cfg, baseline = r.y, r.cfg, r.baseline
    spreads = []
    for c in [baseline] + [c for c in pd.unique(cfg) if c != baseline]:      # baseline first
        x = y[cfg == c]
        spreads.append({"config": c, "n": int(x.size), "sd": float(x.std(ddof=1)) if x.size >= 2 else None,
                        "sd_robust": robust_sd(x) if x.size >= 2 else None})
    bf_p = brown_forsythe_test(y, cfg)
    pooled = noise_floor(y, cfg)
    show_pooled = np.isfinite(bf_p) and bf_p >= s.alpha
    wa = welch_anova(y, cfg)
    # The share of the signal condition's variance that hyperparameters explain.
    if v.two_way is not None:
        share = hp_variance_share(two_way=v.two_way, confidence_level=s.confidence_level)
    else:
        frame = pd.DataFrame({"c": cfg, "s": r.seeds, "v": y})
        per_seed = frame.groupby("s", sort=False)["c"].nunique()
        busiest = per_seed.idxmax() if len(per_seed) and per_seed.max() >= 2 else None
        signal = frame.loc[frame["s"] == busiest, "v"].to_numpy() if busiest is not None else None
        share = hp_variance_share(signal_values=signal, noise_values=r.b, confidence_level=s.confidence_level)
    return dict(
        config_spreads=spreads, equal_variance_pvalue=bf_p,
        noise_floor_pooled=pooled.std if show_pooled else None, noise_floor_pooled_df=pooled.df if show_pooled else None,
        configs_differ_pvalue=wa.pvalue, configs_differ_f=wa.statistic, configs_differ_df=[wa.df_num, wa.df_den],
        hp_variance_share=share.share, hp_variance_share_ci=[share.ci_low, share.ci_high],
        hp_variance_share_method=share.method if np.isfinite(share.share) else None,
        signal_fixed_seed=fixed_seed_signal(y, cfg, r.seeds),
    )


# --------------------------------------------------------------------------- power


def power_section(r: Runs, s: Settings, nf: NoiseFloor, v: Verdicts) -> Fields:
    """What the design detects, and the seeds a difference of a given size would need."""
    comp, n_base, sd = v.comparisons, int(r.b.size), nf.sd
    typical = Counter(int(n) for n in comp["n"] if n >= 2).most_common(1)
    mde_n = typical[0][0] if typical else None
    # A variant as noisy as the baseline, its spread moderated as the typical variant's is (the flag
    # counts only where a spread is moderated: comparison_power).
    design = dict(alpha=v.family.per_comparison_alpha, power=s.power, prior_df=v.prior_df,
                  prior_df_baseline=v.prior_df_baseline)
    detect = dict(flag_rate=OUTLIER_LEVEL, **design)
    mde = mde_up = None
    if mde_n is not None:
        mde = detectable_difference(mde_n, n_base, sd=sd, **detect)
        mde_up = detectable_difference(mde_n, n_base, sd=nf.sd_upper, **detect)
    needed_for = [{"noise_floors": k, "diff": k * sd,
                   "seeds": _int_or_none(seeds_to_detect(k * sd, sd, n_baseline=n_base, **detect)),
                   "seeds_upper": _int_or_none(seeds_to_detect(k * sd, nf.sd_upper, n_baseline=n_base, **detect))}
                  for k in (0.5, 1.0, 2.0)]
    return dict(
        mde=mde, mde_upper=mde_up, mde_n=mde_n, seeds_needed_for=needed_for,
        seeds_for_equivalence=_int_or_none(seeds_for_equivalence(0.0, sd, nf.margin, n_baseline=n_base, **design)),
        seeds_for_equivalence_upper=_int_or_none(seeds_for_equivalence(0.0, nf.sd_upper, nf.margin,
                                                                       n_baseline=n_base, **design)),
    )


# --------------------------------------------------------------------------- importance


def importance_section(r: Runs, s: Settings, nf: NoiseFloor, v: Verdicts, search: list | None = None
                       ) -> pd.DataFrame:
    """Each hyperparameter's verdict (the importance table): from the variants' verdicts where it was varied alone,
    from the search's sample where a search varied it (``search``: the summary's ``search_importance``, so the
    table and the search's figure and answer are one test)."""
    marginal = pd.DataFrame([vars(x) for x in search]) if search else None
    return hparam_importance(r.usable, r.metric, v.comparisons, baseline=r.baseline, hparams=r.hp_columns,
                             noise_floor=nf.sd, alpha=s.alpha, correction=s.correction, search=marginal)


# --------------------------------------------------------------------------- the search


def search_section(r: Runs, s: Settings, nf: NoiseFloor, v: Verdicts) -> Fields:
    """A search (every config at one seed): its expected best against trials, its winner, what drives it."""
    b, direction = r.b, s.direction
    search_seed, searched_configs, searched = search_sample(r.y, r.cfg, r.seeds, r.baseline)
    n_trials = len(searched)
    lead = winner(searched_configs, searched, np.ones(n_trials), nf.result.std, direction=direction)
    marginal = None
    if n_trials >= MIN_SEARCH_FOR_IMPORTANCE and r.hp_columns:
        at = r.usable[r.usable["seed"] == search_seed].drop_duplicates("config").set_index("config")
        rows = at.loc[list(searched_configs)]
        marginal = marginal_importance(searched, {hp_name(c): rows[c] for c in r.hp_columns},
                                       random_state=_seed_sequence(s.random_state).spawn(1)[0],
                                       confidence_level=s.confidence_level)
        # the search's hyperparameters are one family: each one's p adjusted over them (the importance table's
        # verdict on them and the answer's sentence read this one number)
        marginal["p_adjusted"] = adjust_pvalues(marginal["p_value"].to_numpy(dtype=float), s.correction) \
            if len(marginal) else []
    curve = expected_max(searched, direction=direction)
    # The curves the search-payoff figure draws, with their bootstrap bands (the figure computes nothing).
    bands = [expected_max_curve(x, direction=direction, level=s.confidence_level) if n_trials else None
             for x in (searched, b)]
    confirmed = _confirmed(v.comparisons, direction)
    return dict(
        search_seed=search_seed, search_trials=n_trials or None,
        search_configs=[str(c) for c in searched_configs] if n_trials else None,
        search_curve=_curve(bands[0]), noise_curve=_curve(bands[1]),
        search_expected_best=curve[-1] if n_trials else None,
        noise_expected_best=expected_max(b, n_trials, direction=direction)[-1] if n_trials and len(b) else None,
        trials_worth=trials_worth(curve, nf.result.std) if n_trials else None,
        search_winner=None if lead is None else lead.config, search_winner_lead=None if lead is None else lead.lead,
        search_winner_top_k=None if lead is None else lead.top_k,
        search_winner_probability=None if lead is None else lead.probability,
        search_importance=None if marginal is None or not len(marginal) else marginal.to_dict("records"),
        search_confirmed=confirmed or None,
    )


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


def _curve(c) -> dict | None:
    """An expected-best curve as plain lists (``n``, ``estimate``, ``low``, ``high``)."""
    if c is None:
        return None
    return {"n": [int(n) for n in c.n], **{k: [float(x) for x in getattr(c, k)] for k in ("estimate", "low", "high")}}


# --------------------------------------------------------------------------- where the noise comes from


def noise_budget_section(runs: pd.DataFrame, metric: str, s: Settings,
                         left_out: Mapping[str, str] | None = None) -> Fields:
    """The noise by source, from the decomposition's runs (stage ``decompose``) and the baseline's ``sources``;
    ``left_out``: the sources asked for that nothing in the model varies, with why."""
    if "stage" not in runs.columns:
        return {}
    out = {}
    stage = runs["stage"].astype(str)
    if "sources" in runs.columns:
        noise = runs[stage == "noise"]
        floor = noise["sources"].dropna().unique()
        if len(floor) == 1:
            inert = _inert_sources(noise)
            out["noise_floor_sources"] = [x for x in str(floor[0]).split("+") if x not in inert]
    dec = runs[stage == "decompose"]
    if not len(dec) or "source" not in dec.columns or metric not in dec.columns:
        return out
    status = dec["status"].astype(str) if "status" in dec.columns else pd.Series("ok", index=dec.index)
    values = pd.to_numeric(dec[metric], errors="coerce")
    usable = (status == "ok") & np.isfinite(values)
    by_source = {str(k): values[usable & (dec["source"] == k)].to_numpy(dtype=float)
                 for k in pd.unique(dec["source"])}
    skipped = [k for k, x in by_source.items() if not len(x) and (status[dec["source"] == k] == "skipped").all()]
    budget = noise_budget({k: x for k, x in by_source.items() if len(x)}, confidence_level=s.confidence_level)
    out.update(
        noise_sources=[{"source": x.source, "n": x.n, "sd": x.sd, "sd_ci": list(x.sd_ci), "share": x.share,
                        "share_ci": None if x.share_ci is None else list(x.share_ci)} for x in budget.sources],
        noise_sources_sum_ratio=budget.sum_ratio,
        noise_sources_sum_ratio_ci=None if budget.sum_ratio_ci is None else list(budget.sum_ratio_ci),
        noise_sources_adds_up=budget.adds_up, noise_sources_seeds_to_tell=budget.seeds_to_tell,
        noise_sources_largest=budget.largest,
        noise_sources_largest_clear=budget.largest_clear, noise_sources_skipped=skipped or None,
        noise_sources_left_out=dict(left_out) if left_out else None)
    return out


def _inert_sources(noise: pd.DataFrame) -> dict[str, str]:
    """The sources the baseline's model cannot vary (dropout without dropout), read from its runs' recorded
    model (``hp.dropout``, ``hp.num_layers``); none when the table does not say."""
    shape = {}
    for name, default in (("dropout", None), ("num_layers", 2)):
        column = hp_column(name)
        values = pd.to_numeric(noise[column], errors="coerce").unique() if column in noise.columns else []
        shape[name] = float(values[0]) if len(values) == 1 and np.isfinite(values[0]) else default
    return {} if shape["dropout"] is None else inert_sources(shape["dropout"], int(shape["num_layers"]))


# --------------------------------------------------------------------------- convergence


def convergence_section(histories: pd.DataFrame | None, r: Runs, s: Settings, nf: NoiseFloor) -> Fields:
    """The usable runs' mean curves shown to gain more than the noise floor at the end (null: no curves)."""
    metric = r.metric
    if histories is None or metric not in histories.columns or not {"config", "seed", "epoch"} <= set(histories):
        return dict(not_converged=None)
    h = histories[["config", "seed", "epoch", metric]].copy()
    h[metric] = pd.to_numeric(h[metric], errors="coerce")
    keys = pd.MultiIndex.from_frame(h[["config", "seed"]].astype(str))
    ok = keys.isin(pd.MultiIndex.from_frame(r.usable[["config", "seed"]].astype(str)))
    # A curve with a non-finite value diverged: it says nothing about convergence.
    blew_up = pd.Series(~np.isfinite(h[metric].to_numpy(dtype=float)), index=keys).groupby(level=[0, 1]).any()
    h = h[ok & ~blew_up.reindex(keys).to_numpy()]
    if not len(h):
        return dict(not_converged=None)
    late = still_improving(h, metric, noise_floor=float(nf.sd), direction=s.direction,
                           confidence_level=s.confidence_level)
    rows = late.loc[late["not_converged"], ["config", "first_epoch", "last_epoch", "gain", "gain_low"]]
    return dict(not_converged=rows.to_dict("records"))
