"""The summary of an analysis: one typed result, and the glossary every renderer reads.

:class:`Summary` is what ``summary.json`` holds.  Each field carries its
definition (``Summary.describe(name)``): the CLI, the report, the figures
and the experiment-tracker file read the numbers *and* their meaning from
here, so no renderer defines a statistic of its own.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from ._core import _json_value


def _f(label: str, definition: str, null: str | None = None, default: Any = None):
    """A summary field: its short label, one-line definition and (for a statistic) its null value."""
    return field(default=default, metadata={"label": label, "definition": definition, "null": null})


@dataclass(frozen=True)
class Summary:
    """Everything :func:`noisefloor.stats.analyze` concludes, in plain values.

    Fields are plain Python values (``None`` for anything undefined, never
    NaN or infinity), so ``to_dict()`` is valid JSON.  Differences and
    spreads are in the metric's units.
    """

    # --- the question ------------------------------------------------------
    metric: str = _f("metric", "the runs-table column compared across configs")
    direction: str = _f("direction", "max: larger is better; min: smaller is better")
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

    # --- the noise floor ---------------------------------------------------
    noise_floor: float = _f("noise floor", "standard deviation of the metric across the baseline's seeds: "
                                           "how much it moves when only the seed changes")
    noise_floor_ci: list = _f("noise floor interval", "chi-square confidence interval of the noise floor "
                                                      "(normal runs assumed)")
    noise_floor_df: int = _f("noise floor df", "degrees of freedom of the noise floor (baseline runs - 1)")
    noise_floor_robust: float = _f("robust noise floor", "1.4826 x the median absolute deviation of the "
                                                         "baseline's runs: the noise floor without the pull "
                                                         "of one bad run")
    config_spreads: list = _f("spread per config", "each config's run count, standard deviation and "
                                                   "robust (MAD) standard deviation")
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
                                          "seed (same initial weights and data order)", null="0")
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
    search_importance: list = _f("what drives the search", "each swept hyperparameter's share of the "
                                                           "search's spread (eta squared over its levels: "
                                                           "categories or 4 quantile bins), net of what the "
                                                           "same levels explain by chance (shuffled scores), "
                                                           "with a permutation p-value")
    search_winner: str = _f("search winner", "the config with the best run at the search seed")
    search_winner_lead: float = _f("winner's lead", "its lead over the runner-up at that seed")
    search_winner_top_k: int = _f("winner's rivals", "how many of the search's best configs it is judged "
                                                     "against, itself included")
    search_winner_probability: float = _f("P(winner is real)", "the probability that the winner is the truly "
                                                               "best of those, under the measured noise (true "
                                                               "means spread as the search shows, shrunk for "
                                                               "luck; 1/k: a draw)", null="1/k")
    search_confirmed: list = _f("confirmed at fresh seeds", "each of the search's best configs run again at "
                                                            "seeds the search never saw: its difference from the "
                                                            "baseline in the search (its own row of the verdict "
                                                            "table) beside its difference at the fresh seeds (the "
                                                            "row '<config> (fresh seeds)'), with that row's "
                                                            "interval and verdict; the fall from one to the other "
                                                            "is the winner's curse")

    # --- where the noise comes from (the decomposition by source) ---------
    noise_floor_sources: list = _f("noise floor's sources", "the sources of randomness the baseline's seeds "
                                                            "varied: the noise floor includes these and no others")
    noise_sources: list = _f("noise by source", "each source of randomness alone: the baseline run with only "
                                                "that source's seed changing and every other source held at a "
                                                "reference seed; its runs, standard deviation (chi-square "
                                                "interval) and share of the variance of all sources together "
                                                "(F interval); 'all' is every source varying at once")
    noise_sources_sum_ratio: float = _f("do the parts add up?", "the sources' variances summed, over the "
                                                               "variance of all of them together: 1 when "
                                                               "independent sources add up")
    noise_sources_sum_ratio_ci: list = _f("its interval", "an F interval, the sum's degrees of freedom by "
                                                          "Welch-Satterthwaite")
    noise_sources_adds_up: str = _f("the parts", "add up (the interval holds 1); overlap (above 1: one "
                                                 "source alone already reaches much of the whole spread, as "
                                                 "chaotic training does, so each share is what a source can "
                                                 "cause alone, not a slice); fall short (below 1: the sources "
                                                 "interact, or some randomness is not among them)")
    noise_sources_largest: str = _f("largest source", "the source whose noise alone is largest")
    noise_sources_largest_clear: bool = _f("clearly largest", "whether its variance exceeds the runner-up's "
                                                              "beyond chance (two-sided F test at 1 - the "
                                                              "confidence level)")
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

    # --- power -------------------------------------------------------------
    mde: float = _f("minimum detectable difference", "smallest difference a variant with mde_n runs "
                                                     "and the baseline's spread (moderated as the typical "
                                                     "variant's) detects against the baseline's runs with "
                                                     "the target power at the per-comparison level (each "
                                                     "variant's own, from its own spread: comparisons.csv)")
    mde_upper: float = _f("minimum detectable difference (upper)", "the same with the noise floor's upper "
                                                                   "confidence bound")
    mde_n: int = _f("variant runs", "the run count of a typical variant, used for mde")
    seeds_needed_for: list = _f("seeds needed", "seeds per config for a variant's interval to exclude 0 "
                                                "with the target power, for differences of 0.5, 1 and 2 "
                                                "noise floors (estimate and upper bound)")
    seeds_for_equivalence: int = _f("seeds for equivalence", "seeds per config for a variant with no effect "
                                                             "to be shown equivalent with the target power")
    seeds_for_equivalence_upper: int = _f("seeds for equivalence (upper)",
                                          "the same with the noise floor's upper confidence bound")

    # --- adaptive seeds ----------------------------------------------------
    adaptive: dict = _f("adaptive seeds", "an adaptive experiment's rounds (null for a fixed design): spending, "
                                          "max_seeds, step, rounds analysed, runs trained, runs_at_cap (every "
                                          "config at the cap), and per variant the round that stopped it, why "
                                          "(decided, futile: the cap would not decide it, cap, budget: the next round "
                                          "would pass max_runs, open), its seeds "
                                          "and that look's per-comparison level; next_round: the runs the next "
                                          "round adds")

    # ------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain JSON values, in field order."""
        return {f.name: _json_value(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def _cleaned(self) -> "Summary":
        """The same summary holding plain JSON values only (NaN and infinities become None)."""
        return Summary.from_dict(self.to_dict())

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Summary":
        """Read a summary back (unknown keys are ignored, missing ones are None)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @classmethod
    def describe(cls, name: str) -> dict:
        """``{"label", "definition", "null"}`` of a field."""
        for f in dataclasses.fields(cls):
            if f.name == name:
                return dict(f.metadata)
        raise KeyError(name)

    def get(self, name: str, default=None):
        """Mapping-style access for renderers that look a field up by name."""
        value = getattr(self, name, default)
        return default if value is None else value

    def __getitem__(self, name: str):
        return getattr(self, name)


def finite_or_none(x):
    """A float, or None when missing or not finite."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None
