"""Each variant against the baseline: one estimate from every run, simultaneous intervals, four verdicts.

The model
---------
A run's metric is ``y = mu_config + s_seed + e``: the seed effect ``s`` (shared
by every config run at that seed: same initial weights, same data order)
has variance ``tau2``, and each config has its own residual variance.  The
baseline's runs at the variant's seeds tell how lucky those seeds were, so
the estimate of ``mu_variant - mu_baseline`` is

    diff = mean(variant) - sum_j c_j * y_baseline_j

with weight ``c = (1 - beta m / n) / n_b + beta / n`` on each of the
baseline's runs at one of the ``m`` seeds it shares with the variant (``n``
variant runs, ``n_b`` baseline runs) and ``c = (1 - beta m / n) / n_b`` on
the others.  ``beta = tau2 / var(baseline)`` is the optimal weight (it
minimises the variance of ``diff`` when the variant's seeds are among the
baseline's), estimated from the sweep's largest configs x seeds block with
the variant's own runs left out (:func:`seed_share`), so that the variant's
noise cannot decide how it is tested.  With no seed
effect ``beta = 0`` and ``diff`` is the difference of the plain means over
every run (Welch); with a strong one it approaches the seed-paired
difference; in a balanced design (every config at the same seeds) it *is*
the paired difference whatever ``beta``.

Its variance is estimated from the data without assuming equal variances
(see :func:`compare_to_baseline` for the two estimates and how one is
chosen).  Degrees of freedom come from Satterthwaite's
formula with one guard: for the degrees of freedom only, each of the two
configs is taken as at least as noisy as the noisier one.  A variant with 4 runs has a
variance estimated from 3 degrees of freedom; when that estimate happens to
be small, plain Welch-Satterthwaite raises the degrees of freedom exactly when
the statistic is large, and rejects about twice as often as it should at the
small per-comparison levels a family needs (measured: 0.023 instead of
0.0125 with 4 runs against 20).  The guard removes that and keeps the
estimate and its standard error unchanged.

Simultaneous intervals
----------------------
Each comparison is tested at the single-step level
:func:`~noisefloor.stats.multiplicity.per_comparison_alpha` (Sidak by
default), and its interval is the t interval at that level.  The intervals
hold for all variants at once with probability at least ``1 - alpha``, and a
variant's interval excludes 0 exactly when its adjusted p-value is below
``alpha``: the verdict, the interval, the figure and the sentence are the
same fact.  Nothing is resampled, so no verdict depends on Monte-Carlo noise.

Verdicts
--------
``better``/``worse``: the interval excludes 0 (sign by ``direction``);
``equivalent``: it lies inside ``(-margin, +margin)`` (two one-sided tests at
the family's level, Schuirmann 1987; the default margin is the baseline's
noise floor, so "equivalent" means "any effect is smaller than seed noise");
``inconclusive``: neither, including a test that is undefined because the
runs do not vary; ``insufficient_runs``: fewer than two usable runs.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as _sps

from ._core import ROUNDING, _check_direction, _sort_key, is_constant
from .moderation import moderate_variances
from .multiplicity import adjust_pvalues, many_to_one_adjust, many_to_one_alpha, per_comparison_alpha
from .variance import largest_complete_block, two_way_anova
from ..vocab import Verdict


#: The comparison's method, as written in ``comparisons.csv``.
METHOD = "seed_adjusted"


@dataclass(frozen=True)
class ComparisonResult:
    """One variant against the baseline (before the family's adjustment).

    Attributes
    ----------
    estimate : float
        ``mean - baseline_mean``: the variant's difference from the baseline.
    mean : float
        The variant's seed-adjusted mean: ``baseline_mean + estimate``, what
        the variant would average over the baseline's seeds.
    mean_raw : float
        The plain mean of the variant's runs.
    baseline_mean : float
        The plain mean of every baseline run.
    standard_error, df, statistic, pvalue : float
        The test of ``estimate == 0``; NaN when undefined.
    n, n_baseline, n_paired : int
        Runs of the variant, of the baseline, and seeds they share.
    beta : float
        The weight given to the baseline's runs at the shared seeds.
    note : str
        Why the test is undefined, or "".
    baseline_share : float
        The part of ``standard_error**2`` that is the baseline's own noise
        (its runs' weights squared times its variance net of the seed
        effect), as a share: the squared loading of this comparison's
        correlation with the others through the baseline.
    """

    estimate: float
    mean: float
    mean_raw: float
    baseline_mean: float
    standard_error: float
    df: float
    statistic: float
    pvalue: float
    n: int
    n_baseline: int
    n_paired: int
    beta: float
    note: str
    baseline_share: float = math.nan


def seed_share(baseline_variance: float, two_way) -> float:
    """``beta``: the seed effect's share of the baseline's run-to-run variance.

    ``tau2 / var(baseline)`` with ``tau2 = max(0, (MS_seed - MS_residual) /
    n_configs)`` from the two-way ANOVA of the largest configs x seeds block
    (unbiased also when configs have unequal residual variances); 0 without
    such a block.  Clipped to [0, 1].
    """
    if two_way is None or not np.isfinite(baseline_variance) or baseline_variance <= 0:
        return 0.0
    tau2 = two_way.var_seed
    if not np.isfinite(tau2):
        return 0.0
    return float(min(1.0, max(0.0, tau2 / baseline_variance)))


def _var_or(x: np.ndarray, fallback: float, fallback_df: float):
    """Sample variance of ``x`` and its df, or the fallback when ``x`` is too short."""
    if x.size >= 2:
        return float(x.var(ddof=1)), float(x.size - 1)
    return fallback, fallback_df


def _satterthwaite(parts, dfs) -> float:
    """Degrees of freedom of a sum of independent mean-square terms (negative terms allowed)."""
    den = sum(p**2 / d for p, d in zip(parts, dfs))
    return sum(parts) ** 2 / den if den > 0 else math.nan


def compare_to_baseline(v, v_seeds, b, b_seeds, *, two_way=None, variance=None,
                        baseline_variance=None, level: float | None = None) -> ComparisonResult:
    """The seed-adjusted difference of a variant from the baseline, with its t test.

    Parameters
    ----------
    v, v_seeds : array_like
        The variant's usable runs and their seeds.
    b, b_seeds : array_like
        The baseline's usable runs (at least two) and their seeds.
    two_way : TwoWayAnovaResult, optional
        The two-way ANOVA of the sweep's largest configs x seeds block: the
        seed effect's estimate (see :func:`seed_share`).  Without it, or with
        fewer than two shared seeds, every run counts as independent.
    variance, baseline_variance : (float, float), optional
        The variant's and the baseline's run-to-run variance with its degrees
        of freedom, moderated across configs
        (:func:`~noisefloor.stats.moderation.moderate_variances`); default:
        each one's own sample variance on ``n - 1``.
    level : float, optional
        The per-comparison level the test will be read at.  Given, and with
        a seed effect to use, the seed-adjusted estimate is set against the
        plain difference of means (``beta = 0``), and the one whose interval
        is expected to be shorter *for a variant as noisy as the baseline*
        is returned: with few shared seeds the seed effect is estimated on
        so few degrees of freedom that pairing costs more than it saves.

    Returns
    -------
    ComparisonResult

    Notes
    -----
    With at least two shared seeds, the variance of ``diff`` has two
    estimates.  *Empirical*: the sample variance of the per-seed terms over
    the shared seeds (``m - 1`` df; it sees the seed effect directly).
    *Model-based*: the variant's and the baseline's own variances less the
    covariance the seed effect gives them, taken from the whole block
    (more df when the block is large and the seed effect small).  The one
    with more degrees of freedom *for a variant as noisy as the baseline* is
    used.  This choice, and the one between the seed-adjusted and the plain
    estimate, read the design, the baseline, the block and the degrees of
    freedom the moderation gives each spread (the variant's spread is among
    those the prior is fitted to, and the outlier flag is its own), never the
    variant's difference from the baseline: for normal runs the spreads are
    independent of the means, so the choice cannot favour a verdict.
    """
    v = np.asarray(v, dtype=float)
    b = np.asarray(b, dtype=float)
    v_seeds, b_seeds = list(v_seeds), list(b_seeds)
    n_v, n_b = v.size, b.size
    base_mean = float(b.mean())
    shared = sorted(set(v_seeds) & set(b_seeds), key=_sort_key)
    m = len(shared)
    nan = math.nan
    if n_v == 0:
        return ComparisonResult(nan, nan, nan, base_mean, nan, nan, nan, nan, 0, n_b, 0, nan, "no usable run")
    s2_b_raw = float(b.var(ddof=1))
    beta = seed_share(s2_b_raw, two_way) if m >= 2 else 0.0
    chosen, width = _compare_at(beta, v, v_seeds, b, b_seeds, shared, two_way, variance, baseline_variance, level)
    if level is not None and beta > 0:
        plain, plain_width = _compare_at(0.0, v, v_seeds, b, b_seeds, shared, two_way, variance, baseline_variance,
                                         level)
        if plain_width < width:
            return plain
    return chosen


def _compare_at(beta, v, v_seeds, b, b_seeds, shared, two_way, variance, baseline_variance, level):
    """:func:`compare_to_baseline` at a given ``beta``: the result and its expected half-width (see there)."""
    n_v, n_b, m = v.size, b.size, len(shared)
    base_mean = float(b.mean())
    nan = math.nan
    s2_b_raw = float(b.var(ddof=1))

    # One weight per baseline run: the baseline's mean, tilted towards its runs
    # at the variant's seeds by beta (weights sum to 1).
    beta_v = beta * m / n_v
    c_shared = (1 - beta_v) / n_b + beta / n_v
    c_other = (1 - beta_v) / n_b
    in_shared = set(shared)
    b_is_shared = np.array([s in in_shared for s in b_seeds], dtype=bool)
    weights = np.where(b_is_shared, c_shared, c_other)
    mean = base_mean + float(v.mean() - weights @ b)
    estimate = mean - base_mean          # so that diff == mean - baseline_mean exactly

    def result(se=nan, df=nan, t=nan, p=nan, note=""):
        return ComparisonResult(estimate, mean, float(v.mean()), base_mean, se, df, t, p, n_v, n_b, m, beta, note)

    if n_v < 2:
        return result(note="fewer than 2 usable runs"), math.inf

    s2_v, df_v = variance if variance is not None else (float(v.var(ddof=1)), n_v - 1.0)
    s2_b, df_b = baseline_variance if baseline_variance is not None else (s2_b_raw, n_b - 1.0)
    tau2 = beta * s2_b_raw
    b_only = b[~b_is_shared]
    v_only = np.array([x for x, s in zip(v, v_seeds) if s not in in_shared])
    n_bo, n_vo = b_only.size, v_only.size

    # Each variance estimate: its parts (independent mean squares), their df, and
    # shape(var_v, var_b): the same parts if the configs' run-to-run variances were
    # var_v and var_b (the seed terms as estimated).
    if m >= 2:
        v_at, b_at = dict(zip(v_seeds, v)), dict(zip(b_seeds, b))
        terms = np.array([v_at[s] for s in shared]) / n_v - c_shared * np.array([b_at[s] for s in shared])
        parts, dfs = [m * float(terms.var(ddof=1))], [m - 1.0]      # the terms are independent across seeds
        if n_bo:
            var_bo, df_bo = _var_or(b_only, s2_b, df_b)
            parts.append(n_bo * c_other**2 * var_bo)
            dfs.append(df_bo)
        if n_vo:
            var_vo, df_vo = _var_or(v_only, s2_v, df_v)
            parts.append(n_vo * var_vo / n_v**2)
            dfs.append(df_vo)

        def empirical_shape(var_v, var_b):
            out = [m * max(0.0, var_v / n_v**2 + c_shared**2 * var_b - 2 * c_shared * tau2 / n_v)]
            return out + ([n_bo * c_other**2 * var_b] if n_bo else []) + ([n_vo * var_v / n_v**2] if n_vo else [])

        candidates = [(parts, dfs, empirical_shape)]
        # Model-based: var(v)/n + (baseline weights^2) var(b) - the covariance the seed effect gives them.
        coef_b = m * c_shared**2 + n_bo * c_other**2
        seed_terms, seed_dfs = [], []
        if 0 < beta < 1:
            k = 2 * m * c_shared / (n_v * two_way.n_configs)   # tau2 = (MS_seed - MS_res) / n_configs
            seed_terms = [-k * two_way.ms_seed, k * two_way.ms_residual]
            seed_dfs = [float(two_way.df_seed), float(two_way.df_residual)]

        def model_shape(var_v, var_b):
            return [var_v / n_v, coef_b * var_b] + seed_terms

        model = model_shape(s2_v, s2_b)
        if beta < 1 and sum(model) > 0 and sum(model_shape(s2_b, s2_b)) > 0:
            candidates.append((model, [df_v, df_b] + seed_dfs, model_shape))
        # The one with more df for a variant as noisy as the baseline: decided by the
        # design, the baseline and the spreads' degrees of freedom, never by the variant's difference.
        parts, dfs, shape = max(candidates, key=lambda c: _satterthwaite(c[2](s2_b, s2_b), c[1]))
    else:
        # Fewer than two shared seeds: nothing to learn the seed effect from;
        # every run counts as independent (Welch).
        def shape(var_v, var_b):
            return [var_v / n_v, var_b / n_b]

        parts, dfs = shape(s2_v, s2_b), [df_v, df_b]

    var = float(sum(parts))
    scale = max(float(np.abs(v).max()), float(np.abs(b).max()))
    if not math.sqrt(max(var, 0.0)) > ROUNDING * max(scale, 1e-300):
        if is_constant(v, scale=scale) and is_constant(b, scale=scale):
            return result(note="the runs do not vary (beyond rounding): no test is possible"), math.inf
        return result(note="the differences from the baseline are the same at every seed: no spread to "
                           "test against"), math.inf
    se = math.sqrt(var)
    # The guard: for the df only, each config is taken as at least as noisy as the
    # noisier of the two, so that a small variance estimate on either side cannot
    # raise the df exactly when the statistic is large.
    noisier = max(s2_v, s2_b)
    df = _satterthwaite([p if p < 0 else max(p, r) for p, r in zip(parts, shape(noisier, noisier))], dfs)
    t = estimate / se
    p = float(2 * _sps.t.sf(abs(t), df))
    # The baseline's own noise in var(diff): its weights squared times its variance net of the seed effect.
    own_b = float(weights @ weights) * (1 - beta) * s2_b
    share = min(1.0, max(0.0, own_b / var))
    out = dataclasses.replace(result(se, float(df), float(t), p), baseline_share=share)
    # The interval's expected half-width for a variant as noisy as the baseline (design quantities only).
    width = math.inf
    if level is not None:
        like = shape(s2_b, s2_b)
        like_df = _satterthwaite(like, dfs)
        if sum(like) > 0 and like_df >= 1:
            width = float(_sps.t.ppf(1 - level / 2, like_df)) * math.sqrt(sum(like))
    return out, width


@dataclass(frozen=True)
class FamilyResult:
    """The family's adjustment applied to every comparison (arrays, one entry per variant)."""

    per_comparison_alpha: float
    family_size: int
    critical_value: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    p_adjusted: np.ndarray


def simultaneous_intervals(estimate, standard_error, df, pvalue, *, alpha: float = 0.05,
                           correction: str = "sidak", baseline_share=None) -> FamilyResult:
    """Single-step simultaneous intervals and adjusted p-values over the defined tests.

    The family is every comparison with a finite standard error; the others
    get NaN.  ``ci = estimate -+ t_{1 - a/2, df} * standard_error`` with ``a =
    per_comparison_alpha(alpha, family_size, correction)``; with
    ``correction="dunnett"`` (a library option the verdicts do not use, see
    :mod:`~noisefloor.stats.multiplicity`) ``a`` is
    :func:`~noisefloor.stats.multiplicity.many_to_one_alpha` with loadings
    ``sqrt(baseline_share)``.
    """
    est = np.asarray(estimate, dtype=float)
    se = np.asarray(standard_error, dtype=float)
    df = np.asarray(df, dtype=float)
    defined = np.isfinite(se) & np.isfinite(df) & np.isfinite(est)
    m = int(defined.sum())
    p = np.where(defined, np.asarray(pvalue, dtype=float), np.nan)
    if correction == "dunnett" and baseline_share is not None and m >= 2:
        share = np.nan_to_num(np.asarray(baseline_share, dtype=float)[defined], nan=0.0)
        loadings = np.sqrt(np.clip(share, 0.0, 1.0))
        a = many_to_one_alpha(alpha, loadings)
        full = np.zeros(est.shape)
        full[defined] = loadings
        p_adj = many_to_one_adjust(p, full)
    else:
        single = "sidak" if correction == "dunnett" else correction
        a = per_comparison_alpha(alpha, max(m, 1), single)
        p_adj = adjust_pvalues(p, single)
    crit = np.full(est.shape, np.nan)
    crit[defined] = _sps.t.ppf(1 - a / 2, df[defined])
    return FamilyResult(a, m, crit, est - crit * se, est + crit * se, p_adj)


def decide_verdicts(ci_low, ci_high, *, margin: float, direction: str = "max") -> np.ndarray:
    """``better``/``worse`` when the interval excludes 0, ``equivalent`` inside ``+-margin``, else ``inconclusive``.

    A NaN interval (an undefined test) is ``inconclusive``; so is every
    interval when ``margin`` is not a positive number and 0 is inside it.
    """
    _check_direction(direction)
    lo = np.asarray(ci_low, dtype=float)
    hi = np.asarray(ci_high, dtype=float)
    out = np.full(lo.shape, Verdict.INCONCLUSIVE, dtype=object)
    up, down = lo > 0, hi < 0
    out[up] = Verdict.BETTER if direction == "max" else Verdict.WORSE
    out[down] = Verdict.WORSE if direction == "max" else Verdict.BETTER
    if np.isfinite(margin) and margin > 0:
        out[~up & ~down & (lo > -margin) & (hi < margin)] = Verdict.EQUIVALENT
    return out


@dataclass(frozen=True, eq=False)
class VariantComparisons:
    """Every variant against the baseline, adjusted as one family.

    Attributes
    ----------
    variants : list
        Variant names, in order.
    results : list of ComparisonResult
        One per variant.
    family : FamilyResult
        Simultaneous intervals and adjusted p-values.
    verdicts : numpy.ndarray
        One of :data:`noisefloor.vocab.VERDICTS` per variant.
    block : CompleteBlock or None
        The configs x seeds block the seed effect was estimated from.
    two_way : TwoWayAnovaResult or None
        Its two-way ANOVA.
    spreads : dict
        Each config's moderated run-to-run variance and its degrees of
        freedom, ``{config: (variance, df, prior_weight)}`` (configs with at least two runs).
    """

    variants: list
    results: list
    family: FamilyResult
    verdicts: np.ndarray
    block: object
    two_way: object
    spreads: dict = dataclasses.field(default_factory=dict)


def configs_by_seeds_block(values, configs, seeds):
    """The largest complete configs x seeds block and its two-way ANOVA (``(None, None)`` without one)."""
    block = largest_complete_block(configs, seeds)
    if block is None:
        return None, None
    row = {c: i for i, c in enumerate(block.configs)}
    col = {s: j for j, s in enumerate(block.seeds)}
    table = np.full((len(row), len(col)), np.nan)
    for v, c, s in zip(np.asarray(values, dtype=float), configs, seeds):
        if c in row and s in col:
            table[row[c], col[s]] = v
    return block, two_way_anova(table)


def config_spreads(values, configs) -> dict:
    """Every config's run-to-run variance moderated across configs: ``{config: (variance, df, prior_weight)}``.

    Configs with fewer than two runs have no variance and are left out (a
    search's single runs among them).
    """
    y = np.asarray(values, dtype=float)
    cfg = np.asarray(configs, dtype=object)
    names = [c for c in pd.unique(cfg) if (cfg == c).sum() >= 2]
    if not names:
        return {}
    s2 = np.array([y[cfg == c].var(ddof=1) for c in names])
    d = np.array([(cfg == c).sum() - 1.0 for c in names])
    mod = moderate_variances(s2, d)
    return {c: (float(mod.variance[i]), float(mod.df[i]), float(mod.prior_weight[i])) for i, c in enumerate(names)}


def compare_variants(values, configs, seeds, *, baseline: str, variants=None, alpha: float = 0.05,
                     correction: str = "sidak", margin: float | None = None,
                     direction: str = "max") -> VariantComparisons:
    """Compare every variant with the baseline: estimates, simultaneous intervals, verdicts.

    Parameters
    ----------
    values, configs, seeds : array_like
        One entry per usable run.
    baseline : str
        The baseline config (at least two runs).
    variants : list, optional
        The variants, in order (default: every other config, in order of
        appearance); a variant without runs gets ``insufficient_runs``.
    alpha, correction
        Family-wise level and single-step adjustment.
    margin : float, optional
        Equivalence margin (default: the baseline's standard deviation).
    direction : {"max", "min"}

    Returns
    -------
    VariantComparisons
    """
    y = np.asarray(values, dtype=float)
    cfg = np.asarray(configs, dtype=object)
    sd = np.asarray(seeds, dtype=object)
    if variants is None:
        variants = [c for c in pd.unique(cfg) if c != baseline]
    is_base = cfg == baseline
    b, bs = y[is_base], sd[is_base]
    block, two_way = configs_by_seeds_block(y, cfg, sd)
    spreads = config_spreads(y, cfg)
    # The level each comparison will be read at (Sidak's for the variants that can be tested).
    testable = sum(1 for c in variants if (cfg == c).sum() >= 2)
    level = per_comparison_alpha(alpha, max(testable, 1), "sidak" if correction == "dunnett" else correction)

    def spread(c):
        return spreads[c][:2] if c in spreads else None

    results = []
    for c in variants:
        idx = cfg == c
        # The seed effect used for a variant is estimated without that variant's runs,
        # so its own noise cannot choose how it is tested.
        _, others = configs_by_seeds_block(y[~idx], cfg[~idx], sd[~idx]) if idx.any() else (None, two_way)
        results.append(compare_to_baseline(y[idx], sd[idx], b, bs, two_way=others, variance=spread(c),
                                           baseline_variance=spread(baseline), level=level))
    fam = simultaneous_intervals([r.estimate for r in results], [r.standard_error for r in results],
                                 [r.df for r in results], [r.pvalue for r in results], alpha=alpha,
                                 correction=correction, baseline_share=[r.baseline_share for r in results])
    if margin is None:
        margin = float(b.std(ddof=1))
    verdicts = decide_verdicts(fam.ci_low, fam.ci_high, margin=margin, direction=direction)
    verdicts[np.array([r.n < 2 for r in results], dtype=bool)] = Verdict.INSUFFICIENT_RUNS
    return VariantComparisons(list(variants), results, fam, verdicts, block, two_way, spreads)
