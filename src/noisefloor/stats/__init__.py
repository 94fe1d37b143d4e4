"""Statistics: is a hyperparameter "improvement" real, or random-seed noise?

Everything here is a pure function of in-memory data: no file I/O (writing
results is :mod:`noisefloor.io`'s job).  One module per concern:

- :mod:`.twosample`: effect sizes of a variant against the baseline;
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
- :mod:`.convergence`, :mod:`.expected_max`, :mod:`.winner`, :mod:`.marginal`,
  :mod:`.noise_sources`, :mod:`.sequential`: convergence, a search's payoff, the
  noise budget, the looks of an adaptive experiment;
- :mod:`.units`: whether the metric is shown in percent (decided once);
- :mod:`.sections`: the analysis' sections, each returning its part of the
  summary (:class:`noisefloor.summary.Summary`);
- :mod:`.analyze`: validation, exclusions and the sections composed.

Vocabulary follows scipy: ``alternative``, ``confidence_level``, ``pvalue``.
"""

from ._core import AnalysisError, ConfidenceInterval, ROUNDING, is_constant
from .analyze import AnalysisResult, analyze
from .sections import COMPARISON_COLUMNS
from .aso import ASOResult, aso, violation_ratio
from .convergence import still_improving
from .compare import (METHOD, ComparisonResult, FamilyResult, VariantComparisons, compare_to_baseline,
                      compare_variants, config_spreads, configs_by_seeds_block, decide_verdicts, seed_share,
                      simultaneous_intervals)
from .importance import IMPORTANCE_COLUMNS, hparam_importance, resolve_hparams
from .moderation import OUTLIER_LEVEL, ModeratedVariances, fit_prior, moderate_variances
from .multiplicity import (CORRECTIONS, SINGLE_STEP, adjust_pvalues, many_to_one_adjust, many_to_one_alpha,
                           many_to_one_coverage, per_comparison_alpha)
from .power import (SEEDS_NEEDED_CAP, comparison_power, comparison_se_df, detectable_difference, equivalence_power,
                    minimum_detectable_difference, seeds_for_equivalence, seeds_needed, seeds_to_detect, t_test_power,
                    welch_df)
from ..summary import Summary
from .twosample import cohens_d, prob_superior
from .variance import (CompleteBlock, NoiseFloorResult, OneWayAnovaResult, TwoWayAnovaResult, VarianceShareResult,
                       WelchAnovaResult, brown_forsythe_test, fixed_seed_signal, hp_variance_share,
                       largest_complete_block, noise_floor, one_way_anova, robust_sd, two_way_anova, welch_anova)

__all__ = [name for name in dir() if not name.startswith("_")]
