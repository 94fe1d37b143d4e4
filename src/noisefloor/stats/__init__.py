"""Statistics: is a hyperparameter "improvement" real, or random-seed noise?

Everything here is a pure function of in-memory data: no file I/O (writing
results is :mod:`noisefloor.io`'s job).  One module per concern:

- :mod:`.twosample`: two-sample tests, intervals and effect sizes;
- :mod:`.aso`: almost stochastic order;
- :mod:`.multiplicity`: adjusted p-values and the per-comparison level;
- :mod:`.variance`: noise floor, variance components, tests across configs,
  the hyperparameters' share of the variance;
- :mod:`.moderation`: each config's spread moderated across configs
  (empirical Bayes);
- :mod:`.compare`: each variant against the baseline, simultaneous
  intervals and verdicts;
- :mod:`.power`: minimum detectable difference and seeds needed;
- :mod:`.importance`: which hyperparameters matter;
- :mod:`.summary`: the typed summary, the glossary the renderers read;
- :mod:`.analyze`: the orchestration over a runs table.

Vocabulary follows scipy: ``alternative``, ``confidence_level``, ``pvalue``.
"""

from ._core import AnalysisError, ConfidenceInterval, ROUNDING, is_constant
from .analyze import COMPARISON_COLUMNS, AnalysisResult, analyze
from .aso import ASOResult, aso, violation_ratio
from .convergence import still_improving
from .compare import (METHOD, VERDICTS, ComparisonResult, FamilyResult, VariantComparisons, compare_to_baseline,
                      compare_variants, config_spreads, configs_by_seeds_block, decide_verdicts, seed_share,
                      simultaneous_intervals)
from .importance import IMPORTANCE_COLUMNS, IMPORTANCE_VERDICTS, hparam_importance, resolve_hparams
from .moderation import OUTLIER_LEVEL, ModeratedVariances, fit_prior, moderate_variances
from .multiplicity import (CORRECTIONS, SINGLE_STEP, adjust_pvalues, many_to_one_adjust, many_to_one_alpha,
                           many_to_one_coverage, per_comparison_alpha)
from .power import (SEEDS_NEEDED_CAP, comparison_power, comparison_se_df, detectable_difference, equivalence_power,
                    minimum_detectable_difference, seeds_for_equivalence, seeds_needed, seeds_to_detect, t_test_power,
                    welch_df)
from .summary import Summary
from .twosample import (PermutationTestResult, RankTestResult, TTestResult, bootstrap_mean_diff_ci, cohens_d,
                        mannwhitney_test, paired_t_test, prob_superior, sign_flip_test, welch_t_test,
                        wilcoxon_test)
from .variance import (CompleteBlock, NoiseFloorResult, OneWayAnovaResult, TwoWayAnovaResult, VarianceShareResult,
                       WelchAnovaResult, brown_forsythe_test, fixed_seed_signal, hp_variance_share,
                       largest_complete_block, noise_floor, one_way_anova, robust_sd, two_way_anova, welch_anova)

DIRECTIONS = ("max", "min")

__all__ = [name for name in dir() if not name.startswith("_")]
