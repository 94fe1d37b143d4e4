"""The summary of an analysis: one typed result, and the glossary every renderer reads.

It sits outside :mod:`noisefloor.stats`: the statistics write it, the
renderers read it, and neither side needs the other's code.

:class:`Summary` is what ``summary.json`` holds.  Each field carries its
definition (``Summary.describe(name)``): the CLI, the report, the figures
and the experiment-tracker file read the numbers *and* their meaning from
here, so no renderer defines a statistic of its own.

Its nested fields hold typed rows (:class:`ConfigSpread`, :class:`Curve`,
:class:`Adaptive`, ...), one small frozen class per kind, so a renderer reads
``row.sd``, never ``row["sd"]``.  In ``summary.json`` each row is a plain
object with its attributes as keys: :meth:`Summary.to_dict` writes them and
:meth:`Summary.from_dict` reads them back.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from .vocab import VERDICTS


def _json_value(x):
    """Plain Python scalar for JSON; None for missing, NaN or infinite."""
    if x is None:
        return None
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, str):
        return str(x)           # a vocabulary word (noisefloor.vocab) as its plain value
    if isinstance(x, _Row):
        return x.to_dict()
    if isinstance(x, dict):
        return {str(k): _json_value(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, np.ndarray)):
        return [_json_value(v) for v in x]
    return str(x)


def _f(label: str, definition: str, null: str | None = None, default: Any = None, *, row: type | None = None,
       rows: type | None = None):
    """A summary field: its short label, one-line definition and (for a statistic) its null value.

    ``row``: the field holds one record of that row class; ``rows``: a list of them.
    """
    return field(default=default, metadata={"label": label, "definition": definition, "null": null,
                                            "row": row, "rows": rows})


# --------------------------------------------------------------------------
# the rows of the nested fields
# --------------------------------------------------------------------------


class _Row:
    """A summary row: a frozen record whose JSON object has its attributes as keys, in their order."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]):
        """Read a row back (unknown keys are ignored, missing ones are None), as :meth:`Summary.from_dict`."""
        return cls(**{f.name: data.get(f.name) for f in dataclasses.fields(cls)})

    def to_dict(self) -> dict:
        """Plain JSON values, in field order."""
        return {f.name: _json_value(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _typed(cls: type, value, where: str):
    """``value`` as a ``cls`` row: kept when it is one, read when it is a mapping."""
    if isinstance(value, cls):
        return value
    if isinstance(value, Mapping):
        return cls.from_dict(value)
    raise TypeError(f"{where}: expected a {cls.__name__} or a mapping, got {type(value).__name__}")


@dataclass(frozen=True)
class ConfigSpread(_Row):
    """One config's run-to-run spread (:attr:`Summary.config_spreads`, the baseline first).

    Attributes
    ----------
    config : str
        The config.
    n : int
        Its usable runs.
    sd : float or None
        The standard deviation of its runs; None under two runs.
    sd_robust : float or None
        1.4826 x their median absolute deviation; None under two runs.
    """

    config: str
    n: int
    sd: float | None
    sd_robust: float | None


@dataclass(frozen=True)
class SeedsNeeded(_Row):
    """The seeds per config to detect a difference of some noise floors (:attr:`Summary.seeds_needed_for`).

    Attributes
    ----------
    noise_floors : float
        The difference in noise floors (0.5, 1 or 2).
    diff : float or None
        The same difference in the metric's units.
    seeds : int or None
        Seeds per config for a variant's interval to exclude 0 with the
        target power; None when it cannot be estimated.
    seeds_upper : int or None
        The same with the noise floor at its upper confidence bound.
    """

    noise_floors: float
    diff: float | None
    seeds: int | None
    seeds_upper: int | None


@dataclass(frozen=True)
class SearchImportance(_Row):
    """One swept hyperparameter's marginal share of the search's spread (:attr:`Summary.search_importance`).

    Attributes
    ----------
    hparam : str
        The hyperparameter (without the ``hp.`` prefix).
    n_levels : int
        Its levels: categories, or quantile bins of a many-valued number.
    n_configs : int
        The searched configs the share is computed over.
    share : float
        Eta squared: the share of the scores' variance between its levels.
    null_share : float
        The share's mean over shuffled scores (what the levels explain by chance).
    net_share : float
        ``share - null_share``, floored at 0.
    p_value : float
        The permutation p-value of ``share``.
    net_share_ci_low, net_share_ci_high : float
        A percentile bootstrap interval of the net share (the configs resampled) at the confidence level.
    effect : float
        The range of its levels' mean scores (metric units).
    p_adjusted : float
        ``p_value`` adjusted over the search's hyperparameters (the correction of the verdicts); below alpha,
        the hyperparameter moves the metric beyond chance (the importance table's ``matters``).
    """

    hparam: str
    n_levels: int
    n_configs: int
    share: float
    null_share: float
    net_share: float
    p_value: float
    net_share_ci_low: float | None = None
    net_share_ci_high: float | None = None
    effect: float | None = None
    p_adjusted: float | None = None


@dataclass(frozen=True)
class Confirmation(_Row):
    """One of the search's best configs run again at fresh seeds (:attr:`Summary.search_confirmed`).

    Attributes
    ----------
    config : str
        The searched config.
    group : str
        The runs-table group of its fresh runs (``"<config> (fresh seeds)"``).
    search_diff : float or None
        Its difference from the baseline in the search (its verdict-table row).
    n : int
        Its usable runs at the fresh seeds.
    diff : float or None
        Its difference from the baseline at the fresh seeds.
    ci : list of two floats or None
        That difference's simultaneous interval (an end is None when undefined).
    verdict : str
        That row's verdict (:class:`noisefloor.vocab.Verdict`).
    """

    config: str
    group: str
    search_diff: float | None
    n: int
    diff: float | None
    ci: list | None
    verdict: str | None


@dataclass(frozen=True)
class NoiseSource(_Row):
    """One source of randomness alone, or ``"all"`` of them at once (:attr:`Summary.noise_sources`).

    Attributes
    ----------
    source : str
        The source (``init``, ``order``, ``dropout``, ``data``, ``numeric``) or ``"all"``.
    n : int
        Its usable runs.
    sd : float or None
        The metric's standard deviation when only this source varies.
    sd_ci : list of two floats or None
        Its chi-square confidence interval.
    share : float or None
        Its variance over the variance of all sources together.
    share_ci : list of two floats or None
        The share's F interval; None without the all-sources runs.
    """

    source: str
    n: int
    sd: float | None
    sd_ci: list | None
    share: float | None
    share_ci: list | None


@dataclass(frozen=True)
class NotConverged(_Row):
    """A config whose learning curves were shown to gain more than the noise floor at the end
    (:attr:`Summary.not_converged`).

    Attributes
    ----------
    config : str
        The config.
    first_epoch, last_epoch : int
        The window: the last third of training.
    gain : float
        What its seeds gained over the window, on average, in the better direction (metric units).
    gain_low : float
        The gain's one-sided lower bound at the summary's confidence level (above the noise floor, or the config
        would not be here).
    """

    config: str
    first_epoch: int
    last_epoch: int
    gain: float
    gain_low: float


@dataclass(frozen=True)
class Curve(_Row):
    """An expected-best curve against the number of trials (:attr:`Summary.search_curve`, ``noise_curve``).

    Attributes
    ----------
    n : tuple of int
        The numbers of trials, 1 to the sample's size.
    estimate : tuple of float
        The expected best of ``n`` draws from the observed scores.
    low, high : tuple of float
        Its percentile bootstrap band at the summary's confidence level.
    """

    n: tuple
    estimate: tuple
    low: tuple
    high: tuple

    def __post_init__(self):
        for f in dataclasses.fields(self):      # tuples, whether read from JSON lists or given
            value = getattr(self, f.name)
            if value is not None:
                object.__setattr__(self, f.name, tuple(value))


@dataclass(frozen=True)
class Look(_Row):
    """Where an adaptive experiment's variant stands (a value of :attr:`Adaptive.configs`).

    Attributes
    ----------
    round : int
        The round of its last look: the one that stopped it, or the last analysed.
    stopped : str
        Why it stopped: ``decided``, ``futile`` (the cap would not decide it),
        ``cap``, ``budget`` (the next round would pass ``max_runs``) or ``open``.
    n : int
        Its seeds at that look.
    level : float
        That look's per-comparison level.
    """

    round: int
    stopped: str
    n: int
    level: float


@dataclass(frozen=True)
class Adaptive(_Row):
    """An adaptive experiment's rounds (:attr:`Summary.adaptive`).

    Attributes
    ----------
    spending : str
        The spending function (``obrien_fleming`` or ``pocock``).
    max_seeds : int
        The cap on a variant's seeds.
    step : int
        The seeds a round adds to each variant still open.
    rounds : int
        The rounds analysed.
    runs : int
        The runs those rounds trained.
    runs_at_cap : int
        The runs with every config at the cap.
    configs : dict of str to Look
        Each variant's last look, by config name.
    next_round : list of [str, int]
        The (config, seed) runs the next round adds; empty when none.
    """

    spending: str
    max_seeds: int
    step: int
    rounds: int
    runs: int
    runs_at_cap: int
    configs: dict
    next_round: list

    def __post_init__(self):
        if self.configs is not None:
            object.__setattr__(self, "configs", {str(name): _typed(Look, look, f"Adaptive.configs[{name!r}]")
                                                 for name, look in self.configs.items()})
        if self.next_round is not None:
            object.__setattr__(self, "next_round", [list(pair) for pair in self.next_round])


@dataclass(frozen=True)
class Summary:
    """Everything :func:`noisefloor.stats.analyze` concludes, in plain values.

    Fields are plain Python values (``None`` for anything undefined, never
    NaN or infinity), so ``to_dict()`` is valid JSON.  Differences and
    spreads are in the metric's units.  A nested field holds typed rows
    (e.g. ``config_spreads[0].sd``, ``adaptive.configs[name].stopped``),
    built from plain dicts when it is given those; intervals are lists of
    two values (an end is None when undefined).
    """

    # --- the question ------------------------------------------------------
    metric: str = _f("metric", "the runs-table column compared across configs")
    direction: str = _f("direction", "max: larger is better; min: smaller is better")
    percent: bool = _f("in percent", "the metric is a fraction shown in percent, its differences and spreads in "
                                     "percentage points (no 'loss' in its name and every analysed run in [0, 1]); "
                                     "otherwise in its own units. Decided here once; every renderer reads it",
                       default=False)
    baseline: str = _f("baseline", "the config every variant is compared with")
    alpha: float = _f("alpha", "family-wise error rate of the verdicts: the chance that any verdict "
                               "'better' or 'worse' is wrong when no variant differs")
    correction: str = _f("correction", "single-step multiplicity adjustment over the variants "
                                       "(sidak, bonferroni or none)")
    confidence_level: float = _f("confidence level", "level of the noise floor's and the variance share's intervals")
    power: float = _f("power", "target probability of a decision, for the minimum detectable difference "
                               "and the seeds needed")

    # --- the runs ----------------------------------------------------------
    n_runs: int = _f("runs", "runs analysed (after exclusions)")
    n_configs: int = _f("configs", "configs with at least one usable run, the baseline included")
    n_variants: int = _f("variants", "configs compared with the baseline")
    n_baseline: int = _f("baseline runs", "usable runs of the baseline (the noise condition)")
    baseline_mean: float = _f("baseline mean", "the mean of the baseline's usable runs (the verdict table's "
                                               "baseline_mean)")
    n_excluded: int = _f("excluded runs", "runs left out: diverged, failed, or a metric that is NaN or infinite")
    excluded_by_reason: dict = _f("excluded by reason", "excluded runs counted by reason")
    same_configs: list = _f("one config, several names", "groups of configs whose runs record the same config "
                                                          "hash (the same settings and code), the baseline "
                                                          "first when among them")
    seed_blind: list = _f("seed-blind configs", "configs whose usable runs gave exactly the same metric at 3 or more "
                                            "different seeds: their seed changes nothing, so their spread, and "
                                            "any verdict on them, says nothing about seed noise")

    # --- the noise floor ---------------------------------------------------
    noise_floor: float = _f("noise floor", "standard deviation of the metric across the baseline's seeds: "
                                           "how much it moves when only the seed changes")
    noise_floor_ci: list = _f("noise floor interval", "chi-square confidence interval of the noise floor "
                                                      "(normal runs assumed)")
    noise_floor_df: int = _f("noise floor df", "degrees of freedom of the noise floor (baseline runs - 1)")
    noise_floor_robust: float = _f("robust noise floor", "1.4826 x the median absolute deviation of the "
                                                         "baseline's runs: the noise floor without the pull "
                                                         "of one bad run")
    config_spreads: list[ConfigSpread] = _f("spread per config",
                                            "each config's run count, standard deviation and robust (MAD) standard "
                                            "deviation", rows=ConfigSpread)
    equal_variance_pvalue: float = _f("equal spreads p", "Brown-Forsythe test that every config has the "
                                                         "same run-to-run spread", null="equal spreads")
    noise_floor_pooled: float = _f("pooled noise floor", "within-config standard deviation pooled over "
                                                         "every config; given only when the equal-spread "
                                                         "test does not reject")
    noise_floor_pooled_df: int = _f("pooled noise floor df", "its degrees of freedom (runs - configs)")
    eval_size: int = _f("evaluation set", "examples in the set the metric is measured on")
    val_sampling_floor: float = _f("validation sampling floor", "sqrt(p (1 - p) / N) over the validation set: "
                                                                "how much a fixed model's accuracy moves "
                                                                "from which N examples were drawn")
    test_sampling_floor: float = _f("test sampling floor", "sqrt(p (1 - p) / N) over the test set")

    # --- the signal --------------------------------------------------------
    configs_differ_pvalue: float = _f("configs differ p", "Welch's ANOVA: do the config means differ at all "
                                                          "(unequal spreads allowed)", null="all means equal")
    configs_differ_f: float = _f("Welch F", "Welch's ANOVA statistic")
    configs_differ_df: list = _f("Welch df", "its numerator and denominator degrees of freedom")
    hp_variance_share: float = _f("variance share of the hyperparameters",
                                  "share of the spread across configs at a fixed seed that the "
                                  "hyperparameters explain: var_hp / (var_hp + var_residual)", null="0")
    hp_variance_share_ci: list = _f("variance share interval", "F-based confidence interval of the share")
    hp_variance_share_method: str = _f("variance share method",
                                       "two_way: configs x seeds block with the seed effect removed; "
                                       "noise_condition: configs at one seed against the baseline's seed "
                                       "variance (assumes no seed effect shared across configs)")
    signal_fixed_seed: float = _f("spread at a fixed seed", "standard deviation across configs at one seed, "
                                                            "averaged over shared seeds; contains seed noise, "
                                                            "so it is about the noise floor, not 0, when "
                                                            "hyperparameters do nothing (an input to the "
                                                            "share, not a verdict)")
    var_config: float = _f("config variance", "two-way ANOVA component: variance of the config means")
    var_seed: float = _f("seed variance", "two-way ANOVA component: variance shared by all configs at one "
                                          "seed (whatever the seed fixes: the built-in model's initial weights "
                                          "and data order; a program's own randomness)", null="0")
    var_residual: float = _f("residual variance", "two-way ANOVA component: what neither config nor seed "
                                                  "explains")
    two_way_configs: list = _f("two-way configs", "the configs of the block the components come from")
    two_way_n_seeds: int = _f("two-way seeds", "the seeds of that block")
    seed_share: float = _f("seed share", "seed variance / the baseline's variance: the weight the "
                                         "comparisons give to the baseline's runs at a variant's seeds", null="0")

    # --- the search (expected best against the number of trials) -----------
    search_seed: Any = _f("search seed", "the seed at which the most configs ran: the search is every "
                                         "config's run at it")
    search_trials: int = _f("search trials", "configs in the search (their runs at the search seed)")
    search_configs: list = _f("search configs", "the search's configs, in the order of search_curve's draws")
    search_curve: Curve = _f("search curve",
                             "the search's expected best against the number of trials: n, estimate, and the "
                             "percentile bootstrap band low/high at the confidence level (resampling the observed "
                             "scores)", row=Curve)
    noise_curve: Curve = _f("re-rolling curve",
                            "the same curve for the baseline's seeds alone", row=Curve)
    search_expected_best: float = _f("expected best of the search", "the best score a search of that many "
                                                                    "trials is expected to find (Dodge et al. "
                                                                    "2019: the expected best of n draws from "
                                                                    "the observed scores)")
    noise_expected_best: float = _f("expected best of re-rolling the seed",
                                    "the same for as many draws from the baseline's seeds alone: what "
                                    "trying that many seeds of one config is expected to find")
    trials_worth: int = _f("trials worth running", "the fewest trials whose expected best is within one "
                                                   "noise floor of the whole search's; each trial beyond "
                                                   "it is expected to gain less than seed noise")
    search_importance: list[SearchImportance] = _f("what drives the search",
                                                   "each swept hyperparameter's share of the search's spread (eta "
                                                   "squared over its levels: categories or 4 quantile bins), net of "
                                                   "what the same levels explain by chance (shuffled scores), with a "
                                                   "permutation p-value", rows=SearchImportance)
    search_winner: str = _f("search winner", "the config with the best run at the search seed")
    search_winner_lead: float = _f("winner's lead", "its lead over the runner-up at that seed")
    search_winner_top_k: int = _f("winner's rivals", "how many of the search's best configs it is judged "
                                                     "against, itself included")
    search_winner_probability: float = _f("P(winner is real)", "the probability that the winner is the truly "
                                                               "best of those, under the measured noise (true "
                                                               "means spread as the search shows, shrunk for "
                                                               "luck; 1/k: a draw)", null="1/k")
    search_confirmed: list[Confirmation] = _f("confirmed at fresh seeds",
                                              "each of the search's best configs run again at seeds the search never "
                                              "saw: its difference from the baseline in the search (its own row of "
                                              "the verdict table) beside its difference at the fresh seeds (the row "
                                              "'<config> (fresh seeds)'), with that row's interval and verdict; the "
                                              "fall from one to the other is the winner's curse", rows=Confirmation)

    # --- where the noise comes from (the decomposition by source) ---------
    noise_floor_sources: list = _f("noise floor's sources", "the sources of randomness the baseline's seeds "
                                                            "varied: the noise floor includes these and no others "
                                                            "(a source its model cannot vary, dropout without "
                                                            "dropout, is not named)")
    noise_sources: list[NoiseSource] = _f("noise by source",
                                          "each source of randomness alone: the baseline run with only that source's "
                                          "seed changing and every other source held at a reference seed; its runs, "
                                          "standard deviation (chi-square interval) and share of the variance of all "
                                          "sources together (F interval); 'all' is every source varying at once",
                                          rows=NoiseSource)
    noise_sources_sum_ratio: float = _f("do the parts add up?", "the sources' variances summed, over the "
                                                               "variance of all of them together: 1 when "
                                                               "independent sources add up")
    noise_sources_sum_ratio_ci: list = _f("its interval", "an F interval, the sum's degrees of freedom by "
                                                          "Welch-Satterthwaite")
    noise_sources_adds_up: str = _f("the parts", "add up (the interval holds 1 and lies within 0.5 to 2: the "
                                                 "parts within a factor of 2 of the whole); cannot tell (it holds "
                                                 "1 but is wider); overlap (above 1: one "
                                                 "source alone already reaches much of the whole spread, as "
                                                 "chaotic training does, so each share is what a source can "
                                                 "cause alone, not a slice); fall short (below 1: the sources "
                                                 "interact, or some randomness is not among them)")
    noise_sources_seeds_to_tell: int = _f("seeds to tell", "with 'cannot tell': about how many seeds per source "
                                                           "would tell, were the ratio what it is now")
    noise_sources_largest: str = _f("largest source", "the source whose noise alone is largest")
    noise_sources_largest_clear: bool = _f("clearly largest", "whether its variance exceeds the runner-up's "
                                                              "beyond chance (two-sided F test at 1 - the "
                                                              "confidence level)")
    noise_sources_left_out: dict = _f("sources left out", "sources the decomposition was asked for that nothing in "
                                                          "this model varies (dropout without dropout), each "
                                                          "with why")
    noise_sources_skipped: list = _f("sources not measured", "sources asked for but not measured here "
                                                             "(numeric: only on CUDA, where kernels can be "
                                                             "non-deterministic)")

    # --- the verdicts ------------------------------------------------------
    family_size: int = _f("family", "variants whose comparison is defined (the multiplicity family)")
    per_comparison_alpha: float = _f("per-comparison level", "the level each comparison is tested at so "
                                                             "that the family keeps alpha")
    equivalence_margin: float = _f("equivalence margin", "a variant is 'equivalent' when its whole interval "
                                                         "lies within ± this difference")
    equivalence_margin_source: str = _f("margin source", "noise floor (the default) or params")
    n_better: int = _f("better", "variants whose simultaneous interval lies entirely on the better side of 0")
    n_worse: int = _f("worse", "variants whose simultaneous interval lies entirely on the worse side of 0")
    n_equivalent: int = _f("equivalent", "variants whose simultaneous interval lies within ± the margin")
    n_inconclusive: int = _f("inconclusive", "variants whose interval neither excludes 0 nor fits the "
                                             "margin: more seeds would decide")
    n_insufficient_runs: int = _f("too few runs", "variants with fewer than two usable runs")
    best_config: str = _f("best variant", "the variant with the best difference from the baseline "
                                          "(optimistic: the best of several is confirmed only on fresh seeds)")
    best_diff: float = _f("best difference", "its difference from the baseline")
    best_ci: list = _f("best interval", "its simultaneous interval")
    best_verdict: str = _f("best verdict", "its verdict")

    # --- convergence ---------------------------------------------------------
    not_converged: list[NotConverged] = _f("not converged",
                                           "configs whose learning curves were shown to gain more than the noise "
                                           "floor over the last third of training (the one-sided lower bound of the "
                                           "seeds' mean gain above it; config, first_epoch, last_epoch, gain, "
                                           "gain_low); "
                                           "empty when every curve levelled off, null without per-epoch histories of "
                                           "the metric", rows=NotConverged)

    # --- power -------------------------------------------------------------
    mde: float = _f("minimum detectable difference", "smallest difference a variant with mde_n runs "
                                                     "and the baseline's spread (moderated as the typical "
                                                     "variant's) detects against the baseline's runs with "
                                                     "the target power at the per-comparison level (each "
                                                     "variant's own, from its own spread: comparisons.csv)")
    mde_upper: float = _f("minimum detectable difference (upper)", "the same with the noise floor's upper "
                                                                   "confidence bound")
    mde_n: int = _f("variant runs", "the run count of a typical variant, used for mde")
    seeds_needed_for: list[SeedsNeeded] = _f("seeds needed",
                                             "seeds per config for a variant's interval to exclude 0 with the target "
                                             "power, for differences of 0.5, 1 and 2 noise floors (estimate and "
                                             "upper bound)", rows=SeedsNeeded)
    seeds_for_equivalence: int = _f("seeds for equivalence", "seeds per config for a variant with no effect "
                                                             "to be shown equivalent with the target power")
    seeds_for_equivalence_upper: int = _f("seeds for equivalence (upper)",
                                          "the same with the noise floor's upper confidence bound")

    # --- adaptive seeds ----------------------------------------------------
    adaptive: Adaptive = _f("adaptive seeds",
                            "an adaptive experiment's rounds (null for a fixed design): spending, max_seeds, step, "
                            "rounds analysed, runs trained, runs_at_cap (every config at the cap), and per variant "
                            "the round that stopped it, why (decided, futile: the cap would not decide it, cap, "
                            "budget: the next round would pass max_runs, open), its seeds and that look's "
                            "per-comparison level; next_round: the runs the next round adds", row=Adaptive)

    # ------------------------------------------------------------------------
    def __post_init__(self):
        # The nested fields typed however the summary was built: the analysis and from_dict pass plain
        # dicts, a caller may pass rows (kept as they are).
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if f.metadata["row"] is not None:
                object.__setattr__(self, f.name, _typed(f.metadata["row"], value, f"Summary.{f.name}"))
            elif f.metadata["rows"] is not None:
                object.__setattr__(self, f.name, [_typed(f.metadata["rows"], v, f"Summary.{f.name}[{i}]")
                                                  for i, v in enumerate(value)])

    def to_dict(self) -> dict:
        """Plain JSON values, in field order (a row as an object with its attributes as keys)."""
        return {f.name: _json_value(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def _cleaned(self) -> "Summary":
        """The same summary holding plain JSON values only (NaN and infinities become None)."""
        return Summary.from_dict(self.to_dict())

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Summary":
        """Read a summary back (unknown keys are ignored, missing ones are None; rows become typed)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @classmethod
    def describe(cls, name: str) -> dict:
        """``{"label", "definition", "null"}`` of a field."""
        for f in dataclasses.fields(cls):
            if f.name == name:
                return {key: f.metadata[key] for key in ("label", "definition", "null")}
        raise KeyError(name)

    def verdict_counts(self) -> dict:
        """``{verdict: variants}`` in reading order (:data:`noisefloor.vocab.VERDICTS`)."""
        return {v: getattr(self, f"n_{v}") for v in VERDICTS}

    @property
    def sampling_floor(self) -> float | None:
        """The sampling floor of the set the metric is measured on (validation or test), or None."""
        return self.val_sampling_floor if self.val_sampling_floor is not None else self.test_sampling_floor

    @property
    def sampling_floor_notable(self) -> bool:
        """The evaluation set's sampling error is at least half the noise floor: the first screen says so."""
        return (self.sampling_floor is not None and self.noise_floor is not None
                and self.sampling_floor >= 0.5 * self.noise_floor)

    def verdict_counts_text(self) -> str:
        """The verdict counts in words, the verdicts that occur only: ``1 better, 2 inconclusive``.

        The one wording of the counts: the report's answer, the CLI's answer line
        and the headline's ``verdicts`` (the column ``dvc exp show`` shows) read it.
        """
        words = {"insufficient_runs": "with too few runs"}
        said = [f"{n} {words.get(v, v)}" for v, n in self.verdict_counts().items() if n]
        return ", ".join(said) if said else "none"

