"""Statistics: is a hyperparameter "improvement" real, or random-seed noise?

Everything here is a pure function of in-memory data: no file I/O (writing
results is :mod:`noisefloor.io`'s job).  The building blocks are one function
per statistic, vectorised with numpy where that pays off; :func:`analyze`
composes them over a runs table (one row per training run) and returns an
:class:`AnalysisResult`.

Vocabulary follows scipy: ``alternative``, ``confidence_level``, ``pvalue``;
single tests return frozen dataclasses in the spirit of
``scipy.stats._result_classes.TtestResult``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import special as _special
from scipy import stats as _sps

__all__ = [
    "AnalysisError",
    "AnalysisResult",
    "ASOResult",
    "CompleteBlock",
    "ConfidenceInterval",
    "NoiseFloorResult",
    "OneWayAnovaResult",
    "PermutationTestResult",
    "RankTestResult",
    "TTestResult",
    "TwoWayAnovaResult",
    "COMPARISON_COLUMNS",
    "IMPORTANCE_COLUMNS",
    "SEEDS_NEEDED_CAP",
    "adjust_pvalues",
    "analyze",
    "aso",
    "bootstrap_mean_diff_ci",
    "cohens_d",
    "decide_verdicts",
    "fixed_seed_signal",
    "hparam_importance",
    "largest_complete_block",
    "mannwhitney_test",
    "minimum_detectable_difference",
    "noise_floor",
    "one_way_anova",
    "paired_t_test",
    "permutation_anova_test",
    "prob_superior",
    "seeds_needed",
    "sign_flip_test",
    "t_test_power",
    "two_way_anova",
    "violation_ratio",
    "welch_t_test",
    "wilcoxon_test",
]

DIRECTIONS = ("max", "min")
CORRECTIONS = ("holm", "bh", "none")
ALTERNATIVES = ("two-sided", "less", "greater")
VERDICTS = ("better", "worse", "within_noise", "insufficient_runs")
IMPORTANCE_VERDICTS = ("matters", "within_noise", "insufficient_runs")

#: ``seeds_needed`` never searches beyond this many seeds per config; a value
#: equal to the cap means "at least this many" (in practice: not detectable).
SEEDS_NEEDED_CAP = 10_000

#: Columns of ``AnalysisResult.comparisons``, in order, whatever the arguments.
COMPARISON_COLUMNS = (
    "config", "baseline", "n", "n_baseline", "n_paired", "mean", "std",
    "baseline_mean", "diff", "ci_low", "ci_high", "confidence_level",
    "diff_over_noise", "test", "statistic", "p_value", "p_adjusted",
    "correction", "effect_size", "p_paired_t", "p_wilcoxon", "p_signflip",
    "p_welch", "p_mannwhitney", "prob_superior", "aso_eps", "verdict", "mde",
    "seeds_needed",
)

#: Columns of ``AnalysisResult.importance``, in order.
IMPORTANCE_COLUMNS = (
    "hparam", "column", "design", "n_levels", "n_runs", "var_explained",
    "noise_var", "ratio", "f_stat", "p_value", "p_adjusted", "verdict",
)


class AnalysisError(ValueError):
    """The runs table or an argument cannot be analysed.

    The message is a single line naming the column, config or argument at
    fault, so a command-line front end can print it as is.
    """


# ---------------------------------------------------------------------------
# Result types
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfidenceInterval:
    """A confidence interval ``[low, high]`` (arrays when the test was batched)."""

    low: Any
    high: Any


@dataclass(frozen=True)
class TTestResult:
    """Result of a paired or Welch t test (possibly batched over leading axes).

    Attributes
    ----------
    statistic : float or ndarray
        The t statistic.
    pvalue : float or ndarray
        The p-value for ``alternative``.
    df : float or ndarray
        Degrees of freedom (Welch-Satterthwaite for the Welch test).
    estimate : float or ndarray
        Mean difference ``x - y`` (paired: mean of the differences).
    standard_error : float or ndarray
        Standard error of ``estimate``.
    alternative : str
        ``"two-sided"``, ``"less"`` or ``"greater"``.
    """

    statistic: Any
    pvalue: Any
    df: Any
    estimate: Any
    standard_error: Any
    alternative: str

    def confidence_interval(self, confidence_level: float = 0.95) -> ConfidenceInterval:
        """t-based confidence interval for ``estimate``.

        One-sided alternatives give one-sided intervals, as in scipy.
        """
        _check_unit_interval("confidence_level", confidence_level)
        est = np.asarray(self.estimate, dtype=float)
        se = np.asarray(self.standard_error, dtype=float)
        if self.alternative == "two-sided":
            q = _sps.t.ppf(0.5 + confidence_level / 2, self.df)
            low, high = est - q * se, est + q * se
        elif self.alternative == "less":
            q = _sps.t.ppf(confidence_level, self.df)
            low, high = np.full_like(est, -np.inf), est + q * se
        else:
            q = _sps.t.ppf(confidence_level, self.df)
            low, high = est - q * se, np.full_like(est, np.inf)
        return ConfidenceInterval(_scalar(low), _scalar(high))


@dataclass(frozen=True)
class RankTestResult:
    """Result of a rank test (Wilcoxon signed-rank or Mann-Whitney U)."""

    statistic: float
    pvalue: float


@dataclass(frozen=True)
class PermutationTestResult:
    """Result of a sign-flip permutation test on paired differences.

    Attributes
    ----------
    statistic : float
        Mean of the paired differences.
    pvalue : float
        Exact p-value when all ``2**n`` sign patterns were enumerated,
        otherwise the Monte-Carlo estimate ``(count + 1) / (n_resamples + 1)``.
    exact : bool
        Whether the null distribution was enumerated.
    n_resamples : int
        Sign patterns evaluated.
    """

    statistic: float
    pvalue: float
    exact: bool
    n_resamples: int


@dataclass(frozen=True)
class ASOResult:
    """Result of the Almost Stochastic Order test.

    Attributes
    ----------
    eps_min : float
        Upper confidence bound on the violation ratio; ``eps_min < 0.5``
        means A is (almost) stochastically better than B, smaller is
        stronger evidence (deepsig recommends reporting ``eps_min < 0.2``).
    violation_ratio : float
        Point estimate of the violation ratio epsilon_W2.
    bootstrap_std : float
        Standard deviation of the bootstrapped violation ratios.
    confidence_level : float
        Confidence level actually used (after any Bonferroni adjustment).
    """

    eps_min: float
    violation_ratio: float
    bootstrap_std: float
    confidence_level: float


@dataclass(frozen=True)
class OneWayAnovaResult:
    """One-way (random-effects) ANOVA of a metric over groups.

    Attributes
    ----------
    statistic, pvalue : float
        F statistic ``ms_between / ms_within`` and its p-value.
    df_between, df_within : int
        ``k - 1`` and ``N - k``.
    ms_between, ms_within : float
        Mean squares.
    n0 : float
        Effective group size for unbalanced designs,
        ``(N - sum(n_i**2) / N) / (k - 1)``.
    var_between : float
        Between-group variance component ``max(0, (MSB - MSW) / n0)``.
    var_within : float
        Within-group variance ``MSW``.
    icc : float
        ICC(1) ``var_between / (var_between + var_within)``.
    snr : float
        ``var_between / var_within``.
    n_runs, n_groups : int
        ``N`` and ``k``.
    """

    statistic: float
    pvalue: float
    df_between: int
    df_within: int
    ms_between: float
    ms_within: float
    n0: float
    var_between: float
    var_within: float
    icc: float
    snr: float
    n_runs: int
    n_groups: int


@dataclass(frozen=True)
class NoiseFloorResult:
    """Pooled within-group standard deviation (the seed noise floor).

    Attributes
    ----------
    std : float
        ``sqrt(MS_within)``.
    variance : float
        ``MS_within``.
    df : int
        ``N - k`` (groups with a single run contribute nothing).
    n_runs : int
        Runs in groups with at least two runs.
    n_groups : int
        Groups with at least two runs.
    """

    std: float
    variance: float
    df: int
    n_runs: int
    n_groups: int

    def confidence_interval(self, confidence_level: float = 0.95) -> ConfidenceInterval:
        """Chi-square interval for the standard deviation.

        ``df * s**2 / sigma**2 ~ chi2(df)`` for normal noise, so the variance
        interval is ``[df s^2 / chi2_{1-a/2}, df s^2 / chi2_{a/2}]``; its
        square root is the interval for the std.
        """
        _check_unit_interval("confidence_level", confidence_level)
        if not self.df or not np.isfinite(self.variance):
            return ConfidenceInterval(math.nan, math.nan)
        a = 1.0 - confidence_level
        ss = self.df * self.variance
        low = math.sqrt(ss / _sps.chi2.ppf(1 - a / 2, self.df))
        high = math.sqrt(ss / _sps.chi2.ppf(a / 2, self.df))
        return ConfidenceInterval(low, high)


@dataclass(frozen=True)
class TwoWayAnovaResult:
    """Two-way ANOVA without replication (configs x seeds, one run per cell).

    Random-effects variance components from the expected mean squares:
    ``E[MS_config] = s2_res + n_seeds * s2_config`` and
    ``E[MS_seed] = s2_res + n_configs * s2_seed`` (negative estimates
    truncated at 0).
    """

    ms_config: float
    ms_seed: float
    ms_residual: float
    df_config: int
    df_seed: int
    df_residual: int
    f_config: float
    p_config: float
    f_seed: float
    p_seed: float
    var_config: float
    var_seed: float
    var_residual: float
    n_configs: int
    n_seeds: int


@dataclass(frozen=True)
class CompleteBlock:
    """A set of configs that all have every one of a set of seeds."""

    configs: tuple
    seeds: tuple


@dataclass(frozen=True, eq=False)
class AnalysisResult:
    """Everything :func:`analyze` found.

    Attributes
    ----------
    summary : dict
        JSON-serialisable (plain Python scalars, lists, dicts; ``None`` for
        anything undefined, never NaN or inf).
    comparisons : pandas.DataFrame
        One row per variant, columns :data:`COMPARISON_COLUMNS`.
    importance : pandas.DataFrame
        One row per hyperparameter, columns :data:`IMPORTANCE_COLUMNS`.
    excluded : pandas.DataFrame
        The input rows that were not used, with a ``reason`` column.
    """

    summary: dict
    comparisons: pd.DataFrame
    importance: pd.DataFrame
    excluded: pd.DataFrame


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------


def _scalar(x):
    """0-d arrays become Python floats so single results print nicely."""
    arr = np.asarray(x)
    return float(arr) if arr.ndim == 0 else arr


def _check_unit_interval(name: str, value: float) -> None:
    if not (isinstance(value, (int, float, np.floating)) and 0.0 < float(value) < 1.0):
        raise AnalysisError(f"{name} must be a number strictly between 0 and 1, got {value!r}")


def _check_alternative(alternative: str) -> None:
    if alternative not in ALTERNATIVES:
        raise AnalysisError(f"alternative must be one of {', '.join(ALTERNATIVES)}; got {alternative!r}")


def _t_pvalue(t, df, alternative: str):
    if alternative == "two-sided":
        return 2.0 * _sps.t.sf(np.abs(t), df)
    if alternative == "greater":
        return _sps.t.sf(t, df)
    return _sps.t.cdf(t, df)


def _rng(random_state) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    return np.random.default_rng(random_state)


def _seed_sequence(random_state) -> np.random.SeedSequence:
    # Independent child streams (per variant, per hyperparameter) keep one
    # comparison's random numbers from depending on how many others exist.
    if isinstance(random_state, np.random.SeedSequence):
        return random_state
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence(int(random_state.integers(2**63)))
    return np.random.SeedSequence(random_state)


# ---------------------------------------------------------------------------
# Two-sample tests
# ---------------------------------------------------------------------------


def paired_t_test(x, y, *, alternative: str = "two-sided", axis: int = -1) -> TTestResult:
    """Paired t test of ``mean(x - y) == 0``, vectorised over other axes.

    Parameters
    ----------
    x, y : array_like
        Paired samples (same shape along ``axis``, broadcastable elsewhere).
    alternative : {"two-sided", "less", "greater"}
        Alternative hypothesis about ``mean(x - y)``.
    axis : int
        Axis holding the pairs.

    Returns
    -------
    TTestResult
        Same p-values as ``scipy.stats.ttest_rel``.
    """
    _check_alternative(alternative)
    d = np.asarray(x, dtype=float) - np.asarray(y, dtype=float)
    n = d.shape[axis]
    est = d.mean(axis=axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = d.std(axis=axis, ddof=1) / np.sqrt(n)
        t = est / se
    df = np.full_like(np.asarray(est, dtype=float), n - 1.0)
    p = _t_pvalue(t, df, alternative)
    return TTestResult(_scalar(t), _scalar(p), _scalar(df), _scalar(est), _scalar(se), alternative)


def welch_t_test(x, y, *, alternative: str = "two-sided", axis: int = -1) -> TTestResult:
    """Welch's unequal-variance t test of ``mean(x) == mean(y)``.

    Parameters
    ----------
    x, y : array_like
        Independent samples (sizes may differ along ``axis``).
    alternative : {"two-sided", "less", "greater"}
        Alternative hypothesis about ``mean(x) - mean(y)``.
    axis : int
        Axis holding the observations.

    Returns
    -------
    TTestResult
        Same p-values as ``scipy.stats.ttest_ind(equal_var=False)``.
    """
    _check_alternative(alternative)
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    nx, ny = x.shape[axis], y.shape[axis]
    est = x.mean(axis=axis) - y.mean(axis=axis)
    vx = x.var(axis=axis, ddof=1) / nx
    vy = y.var(axis=axis, ddof=1) / ny
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(vx + vy)
        t = est / se
        df = (vx + vy) ** 2 / (vx**2 / (nx - 1) + vy**2 / (ny - 1))
    p = _t_pvalue(t, df, alternative)
    return TTestResult(_scalar(t), _scalar(p), _scalar(df), _scalar(est), _scalar(se), alternative)


def wilcoxon_test(d, *, alternative: str = "two-sided") -> RankTestResult:
    """Wilcoxon signed-rank test on paired differences ``d``.

    A thin wrapper over ``scipy.stats.wilcoxon`` (exact null distribution for
    small samples without ties, normal approximation otherwise; zero
    differences dropped), returning NaN instead of raising on degenerate
    input such as fewer than two differences.
    """
    _check_alternative(alternative)
    d = np.asarray(d, dtype=float)
    if d.size < 2:
        return RankTestResult(math.nan, math.nan)
    with warnings.catch_warnings():
        # All-zero differences make scipy divide 0/0; the NaN it yields is
        # the honest answer, the warning is noise for our callers.
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            res = _sps.wilcoxon(d, alternative=alternative)
        except ValueError:
            return RankTestResult(math.nan, math.nan)
    return RankTestResult(float(res.statistic), float(res.pvalue))


def mannwhitney_test(x, y, *, alternative: str = "two-sided") -> RankTestResult:
    """Mann-Whitney U test (wrapper over ``scipy.stats.mannwhitneyu``).

    ``statistic`` is U for ``x``; NaN when either sample is empty.
    """
    _check_alternative(alternative)
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.size == 0 or y.size == 0:
        return RankTestResult(math.nan, math.nan)
    res = _sps.mannwhitneyu(x, y, alternative=alternative)
    return RankTestResult(float(res.statistic), float(res.pvalue))


def sign_flip_test(
    d,
    *,
    alternative: str = "two-sided",
    n_resamples: int = 2000,
    random_state=None,
) -> PermutationTestResult:
    """Sign-flip permutation test of ``mean(d) == 0`` for paired differences.

    Under the null that each difference is symmetric about 0, every sign
    pattern is equally likely.  When ``2**n <= n_resamples`` all patterns are
    enumerated and the p-value is exact (the observed pattern included);
    otherwise ``n_resamples`` random patterns give the Monte-Carlo p-value
    ``(count + 1) / (n_resamples + 1)``, which is valid (never
    anti-conservative) by construction.

    Parameters
    ----------
    d : array_like
        Paired differences.
    alternative : {"two-sided", "less", "greater"}
        Alternative about the mean difference.
    n_resamples : int
        Budget of sign patterns.
    random_state : int, numpy.random.Generator or None
        Seed for the Monte-Carlo branch.

    Returns
    -------
    PermutationTestResult
    """
    _check_alternative(alternative)
    d = np.asarray(d, dtype=float)
    n = d.size
    if n == 0:
        return PermutationTestResult(math.nan, math.nan, False, 0)
    observed = d.sum()
    exact = n < 63 and 2**n <= n_resamples
    if exact:
        # Row i of `signs` is the binary expansion of i: every pattern once.
        codes = np.arange(2**n, dtype=np.int64)[:, None]
        signs = 1.0 - 2.0 * ((codes >> np.arange(n)) & 1)
    else:
        signs = _rng(random_state).choice(np.array([-1.0, 1.0]), size=(n_resamples, n))
    null = signs @ d
    # Sums equal to the observed one up to rounding must count as ties.
    tol = 1e-9 * max(1.0, float(np.abs(d).sum()))
    if alternative == "two-sided":
        count = np.count_nonzero(np.abs(null) >= abs(observed) - tol)
    elif alternative == "greater":
        count = np.count_nonzero(null >= observed - tol)
    else:
        count = np.count_nonzero(null <= observed + tol)
    if exact:
        p = count / signs.shape[0]
    else:
        p = (count + 1) / (n_resamples + 1)
    return PermutationTestResult(float(observed / n), float(min(p, 1.0)), bool(exact), int(signs.shape[0]))


def bootstrap_mean_diff_ci(
    x,
    y,
    *,
    paired: bool = False,
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    random_state=None,
    method: str = "expanded",
) -> ConfidenceInterval:
    """Bootstrap interval for ``mean(x) - mean(y)``.

    Parameters
    ----------
    x, y : array_like
        Samples.  With ``paired=True`` they are aligned (same seed order) and
        the seed pairs ``(x_i, y_i)`` are resampled together, i.e. the mean of
        the differences is bootstrapped; otherwise each group is resampled
        independently (as ``scipy.stats.bootstrap`` does for two samples).
    paired : bool
        See above.
    n_resamples : int
        Bootstrap resamples.
    confidence_level : float
        Coverage of the two-sided interval.
    random_state : int, numpy.random.Generator or None
        Seed.
    method : {"expanded", "percentile"}
        ``"percentile"``: the plain percentile interval (as
        ``scipy.stats.bootstrap(method="percentile")``).  ``"expanded"``
        (default): Hesterberg's expanded percentile interval (Hesterberg 2015,
        "What teachers should know about the bootstrap", The American
        Statistician 69(4)): the same resamples, read at the percentiles
        ``alpha'/2 = Phi(-c * t_{alpha/2, df})``.  The plain percentile interval
        is too narrow with few seeds (a mean's bootstrap spread uses the divisor
        n and normal tails: about 80 % coverage at n = 4 for a nominal 95 %);
        the expansion restores the t interval's width, up to the bootstrap's
        hard limit: no resample mean lies outside the data's range, so with n
        paired seeds coverage cannot exceed ``1 - 2**(1 - n)`` (87.5 % at
        n = 4, 97 % at n = 6).  One sample (paired):
        ``c = sqrt(n / (n - 1))``, ``df = n - 1``; two samples: ``c`` is the
        ratio of the unbiased to the plug-in standard error and ``df`` is
        Welch's.

    Returns
    -------
    ConfidenceInterval
        Not BCa: with a handful of seeds BCa's acceleration estimate is itself
        too noisy to be worth it.
    """
    _check_unit_interval("confidence_level", confidence_level)
    rng = _rng(random_state)
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if paired:
        d = x - y
        if d.size == 0:
            return ConfidenceInterval(math.nan, math.nan)
        idx = rng.integers(0, d.size, size=(n_resamples, d.size))
        boot = d[idx].mean(axis=1)
    else:
        if x.size == 0 or y.size == 0:
            return ConfidenceInterval(math.nan, math.nan)
        ix = rng.integers(0, x.size, size=(n_resamples, x.size))
        iy = rng.integers(0, y.size, size=(n_resamples, y.size))
        boot = x[ix].mean(axis=1) - y[iy].mean(axis=1)
    a = 1.0 - confidence_level
    if method == "expanded":
        a = _expanded_alpha(a, x - y if paired else None, None if paired else (x, y))
    elif method != "percentile":
        raise ValueError(f"method must be 'expanded' or 'percentile', not {method!r}")
    low, high = np.percentile(boot, [100 * a / 2, 100 * (1 - a / 2)])
    return ConfidenceInterval(float(low), float(high))


def _expanded_alpha(alpha: float, d, groups) -> float:
    """The tail level at which the expanded percentile interval reads the resamples."""
    if d is not None:
        n = d.size
        if n < 2:
            return alpha
        c, df = math.sqrt(n / (n - 1)), n - 1
    else:
        x, y = groups
        if x.size < 2 or y.size < 2:
            return alpha
        vx, vy = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
        plugin = x.var(ddof=0) / x.size + y.var(ddof=0) / y.size
        if plugin == 0:
            return alpha
        c = math.sqrt((vx + vy) / plugin)
        df = (vx + vy) ** 2 / (vx**2 / (x.size - 1) + vy**2 / (y.size - 1))
    return float(2 * _special.ndtr(-c * _sps.t.ppf(1 - alpha / 2, df)))


def cohens_d(x, y, *, paired: bool = False) -> float:
    """Cohen's d for ``x`` versus ``y``.

    Paired: ``d_z = mean(x - y) / sd(x - y)``.  Unpaired:
    ``(mean(x) - mean(y)) / pooled_sd`` with the pooled sd from both groups'
    ``ddof=1`` variances.  NaN when undefined (too few runs); +-inf when the
    spread is zero but the means differ.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        if paired:
            d = x - y
            if d.size < 2:
                return math.nan
            return float(d.mean() / d.std(ddof=1))
        nx, ny = x.size, y.size
        if nx < 1 or ny < 1 or nx + ny < 3:
            return math.nan
        ss = ((x - x.mean()) ** 2).sum() + ((y - y.mean()) ** 2).sum()
        pooled = math.sqrt(ss / (nx + ny - 2))
        return float(np.float64(x.mean() - y.mean()) / np.float64(pooled))


def prob_superior(x, y, *, direction: str = "max") -> float:
    """Probability that a run of ``x`` beats a run of ``y`` (ties count 1/2).

    This is the common-language effect size ``U / (m n)`` of the
    Mann-Whitney U statistic of ``x``; for ``direction="min"`` "beats" means
    "is smaller".
    """
    _check_direction(direction)
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.size == 0 or y.size == 0:
        return math.nan
    if direction == "min":
        x, y = -x, -y
    cmp = x[:, None] - y[None, :]
    return float((np.count_nonzero(cmp > 0) + 0.5 * np.count_nonzero(cmp == 0)) / cmp.size)


# ---------------------------------------------------------------------------
# Almost Stochastic Order (del Barrio et al. 2018; Dror et al. 2019)
# ---------------------------------------------------------------------------


def _grid_weights(n_a: int, n_b: int, dt: float):
    """Quantile-index pairs on deepsig's grid, with their integration weights.

    The empirical quantile function is a step function, F^-1(t) =
    x_(ceil(n t)), so on the grid t = dt, 2 dt, ... < 1 the pair of order
    statistics (i_a, i_b) only changes ~n_a + n_b times.  Integrating over
    runs of equal pairs with weight count * dt gives the same sums as
    deepsig's point-by-point loop with far fewer terms.  deepsig leaves the
    first grid point out of the violation integral (but not out of the
    Wasserstein distance); ``w_violation`` does the same.
    """
    t = np.arange(dt, 1, dt)
    ia = np.clip(np.ceil(n_a * t).astype(np.int64) - 1, 0, n_a - 1)
    ib = np.clip(np.ceil(n_b * t).astype(np.int64) - 1, 0, n_b - 1)
    change = np.ones(t.size, dtype=bool)
    change[1:] = (ia[1:] != ia[:-1]) | (ib[1:] != ib[:-1])
    starts = np.flatnonzero(change)
    counts = np.diff(np.append(starts, t.size)).astype(float)
    w_violation = counts.copy()
    w_violation[0] -= 1
    return ia[starts], ib[starts], counts * dt, w_violation * dt


def _violation_ratio_sorted(sorted_a: np.ndarray, sorted_b: np.ndarray, dt: float) -> np.ndarray:
    # Ratio of the squared 2-Wasserstein distance where B's quantile exceeds
    # A's (stochastic order "A >= B" violated) to the whole distance; 0.5
    # when the samples coincide (deepsig's convention).  Sorted along the
    # last axis; leading axes are independent samples (bootstrap replicates).
    ua, ub, w_all, w_viol = _grid_weights(sorted_a.shape[-1], sorted_b.shape[-1], dt)
    diff = sorted_b[..., ub] - sorted_a[..., ua]
    squared_w2 = diff**2 @ w_all
    int_violation = np.maximum(diff, 0.0) ** 2 @ w_viol
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(squared_w2 == 0, 0.5, int_violation / squared_w2)


def violation_ratio(scores_a, scores_b, *, dt: float = 0.005) -> float:
    """Violation ratio epsilon_W2 of "A stochastically dominates B".

    The share of the squared 2-Wasserstein distance between the two empirical
    quantile functions that comes from quantiles where B beats A (higher is
    better).  0 means A's quantiles are everywhere at least B's; 1 the
    reverse; 0.5 when the samples are identical.
    """
    a = np.sort(np.asarray(scores_a, dtype=float))
    b = np.sort(np.asarray(scores_b, dtype=float))
    return float(_violation_ratio_sorted(a, b, dt))


def aso(
    scores_a,
    scores_b,
    *,
    confidence_level: float = 0.95,
    num_bootstrap_iterations: int = 1000,
    dt: float = 0.005,
    num_comparisons: int = 1,
    random_state=None,
) -> ASOResult:
    """Almost Stochastic Order test: how far is A from dominating B?

    Re-implements deepsig's ``aso`` (version 1.2.x) vectorised: the violation
    ratio of the two empirical score distributions, plus a bootstrap estimate
    of its spread (each sample resampled with replacement,
    ``num_bootstrap_iterations`` times), giving the upper confidence bound

    ``eps_min = clip(vr - sigma_hat / c * Phi^-1(1 - confidence_level), 0, 1)``

    with ``c = sqrt(n_a n_b / (n_a + n_b))`` and ``sigma_hat`` the std of
    ``c * (vr_boot - vr)``.  ``num_comparisons > 1`` raises the confidence
    level Bonferroni-style to ``cl + (1 - cl) / num_comparisons``, as deepsig
    does.  Higher scores are better; negate both samples for a metric where
    lower is better.

    Parameters
    ----------
    scores_a, scores_b : array_like
        Scores of the candidate (A) and the reference (B).
    confidence_level : float
        Confidence level of the bound (deepsig's default 0.95).
    num_bootstrap_iterations : int
        Bootstrap resamples.
    dt : float
        Integration step over quantile levels.
    num_comparisons : int
        Comparisons for the Bonferroni adjustment.
    random_state : int, numpy.random.Generator or None
        Seed.  The value is Monte-Carlo: it matches deepsig's up to
        bootstrap noise, not bit for bit.

    Returns
    -------
    ASOResult
        ``eps_min < 0.5``: A is better than B; deepsig suggests
        ``eps_min < 0.2`` for a confident claim.
    """
    _check_unit_interval("confidence_level", confidence_level)
    a = np.sort(np.asarray(scores_a, dtype=float))
    b = np.sort(np.asarray(scores_b, dtype=float))
    if a.size == 0 or b.size == 0:
        return ASOResult(math.nan, math.nan, math.nan, confidence_level)
    if num_comparisons > 1:
        confidence_level = confidence_level + (1 - confidence_level) / num_comparisons
    rng = _rng(random_state)
    vr = float(_violation_ratio_sorted(a, b, dt))
    # Drawing from the empirical quantile function at U(0,1) levels is the
    # same as drawing indices uniformly: an ordinary bootstrap resample.
    boot_a = np.sort(a[rng.integers(0, a.size, size=(num_bootstrap_iterations, a.size))], axis=1)
    boot_b = np.sort(b[rng.integers(0, b.size, size=(num_bootstrap_iterations, b.size))], axis=1)
    samples = _violation_ratio_sorted(boot_a, boot_b, dt)
    const = math.sqrt(a.size * b.size / (a.size + b.size))
    sigma_hat = float(np.std(const * (samples - vr)))
    eps = vr - (1 / const) * sigma_hat * _sps.norm.ppf(1 - confidence_level)
    return ASOResult(float(np.clip(eps, 0.0, 1.0)), vr, sigma_hat / const, float(confidence_level))


# ---------------------------------------------------------------------------
# Multiple testing and verdicts
# ---------------------------------------------------------------------------


def adjust_pvalues(pvalues, method: str = "holm", *, axis: int = -1) -> np.ndarray:
    """Adjust a family of p-values for multiple testing.

    Parameters
    ----------
    pvalues : array_like
        p-values; the family runs along ``axis`` (other axes are independent
        families, e.g. simulated sweeps).  NaN entries are left out of the
        family (``m`` counts only finite p-values) and stay NaN.
    method : {"holm", "bh", "none"}
        Holm's step-down FWER control, Benjamini-Hochberg FDR control, or
        no adjustment.  Equal to statsmodels ``multipletests`` with
        ``"holm"`` / ``"fdr_bh"``.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values, same shape.
    """
    if method not in CORRECTIONS:
        raise AnalysisError(f"correction must be one of {', '.join(CORRECTIONS)}; got {method!r}")
    p = np.moveaxis(np.asarray(pvalues, dtype=float), axis, -1)
    if method == "none" or p.shape[-1] == 0:
        return np.moveaxis(p.copy(), -1, axis)
    valid = np.isfinite(p)
    m = valid.sum(axis=-1, keepdims=True)
    # NaNs sort last, so ranks 1..m are exactly the family members.
    order = np.argsort(np.where(valid, p, np.inf), axis=-1, kind="stable")
    ps = np.take_along_axis(np.where(valid, p, np.inf), order, axis=-1)
    rank = np.arange(1, p.shape[-1] + 1)
    if method == "holm":
        with np.errstate(invalid="ignore"):  # inf * 0 past the family's end
            adj = np.minimum(1.0, (m - rank + 1) * ps)
        adj = np.where(rank <= m, adj, -np.inf)
        adj = np.maximum.accumulate(adj, axis=-1)
    else:
        adj = np.minimum(1.0, m * ps / rank)
        adj = np.where(rank <= m, adj, np.inf)
        adj = np.flip(np.minimum.accumulate(np.flip(adj, -1), axis=-1), -1)
    out = np.empty_like(adj)
    np.put_along_axis(out, order, adj, axis=-1)
    out = np.where(valid, out, np.nan)
    return np.moveaxis(out, -1, axis)


def decide_verdicts(diff, p_adjusted, *, alpha: float = 0.05, direction: str = "max") -> np.ndarray:
    """Verdict per comparison: ``"better"``, ``"worse"`` or ``"within_noise"``.

    Significant (``p_adjusted < alpha``) differences are called better or
    worse according to the sign of ``diff`` and ``direction``; everything
    else, including NaN p-values, is within the noise.  (``analyze`` marks
    variants with fewer than two runs ``"insufficient_runs"`` itself.)
    """
    _check_direction(direction)
    diff = np.asarray(diff, dtype=float)
    sig = np.asarray(p_adjusted, dtype=float) < alpha
    up = diff > 0 if direction == "max" else diff < 0
    down = diff < 0 if direction == "max" else diff > 0
    out = np.full(np.broadcast(diff, sig).shape, "within_noise", dtype=object)
    out[sig & up] = "better"
    out[sig & down] = "worse"
    return out


# ---------------------------------------------------------------------------
# Variance decomposition
# ---------------------------------------------------------------------------


def one_way_anova(values, groups) -> OneWayAnovaResult:
    """One-way ANOVA and random-effects variance components.

    Parameters
    ----------
    values : array_like
        Metric values, one per run.
    groups : array_like
        Group label per run (e.g. config name).

    Returns
    -------
    OneWayAnovaResult
        F and p equal ``scipy.stats.f_oneway`` on the same groups.
    """
    y = np.asarray(values, dtype=float)
    codes, _ = pd.factorize(np.asarray(groups, dtype=object), sort=False)
    k = int(codes.max()) + 1 if codes.size else 0
    N = y.size
    counts = np.bincount(codes, minlength=k).astype(float)
    means = np.bincount(codes, weights=y, minlength=k) / np.maximum(counts, 1)
    grand = y.mean() if N else math.nan
    ssb = float((counts * (means - grand) ** 2).sum())
    ssw = float(((y - means[codes]) ** 2).sum())
    dfb, dfw = k - 1, N - k
    nan = math.nan
    msb = ssb / dfb if dfb > 0 else nan
    msw = ssw / dfw if dfw > 0 else nan
    with np.errstate(divide="ignore", invalid="ignore"):
        F = float(np.float64(msb) / np.float64(msw))
    p = float(_sps.f.sf(F, dfb, dfw)) if dfb > 0 and dfw > 0 and not math.isnan(F) else nan
    n0 = (N - (counts**2).sum() / N) / dfb if dfb > 0 else nan
    var_b = max(0.0, (msb - msw) / n0) if dfb > 0 and dfw > 0 else nan
    total = var_b + msw
    icc = var_b / total if total > 0 else nan
    snr = var_b / msw if msw > 0 else nan
    return OneWayAnovaResult(F, p, dfb, dfw, msb, msw, float(n0), var_b, msw, icc, snr, N, k)


def noise_floor(values, groups=None) -> NoiseFloorResult:
    """Seed noise floor: pooled within-group standard deviation.

    ``sqrt(MS_within)`` of a one-way ANOVA, i.e. the spread you get from
    re-running the same config with another seed, pooled over every group
    with at least two runs (degrees of freedom ``N - k``).  With
    ``groups=None`` all values are one group and this is the sample std.
    """
    y = np.asarray(values, dtype=float)
    if groups is None:
        groups = np.zeros(y.size, dtype=int)
    codes, _ = pd.factorize(np.asarray(groups, dtype=object), sort=False)
    k = int(codes.max()) + 1 if codes.size else 0
    counts = np.bincount(codes, minlength=k)
    means = np.bincount(codes, weights=y, minlength=k) / np.maximum(counts, 1)
    ssw = float(((y - means[codes]) ** 2).sum())
    keep = counts >= 2
    n_runs = int(counts[keep].sum())
    n_groups = int(keep.sum())
    df = n_runs - n_groups
    var = ssw / df if df > 0 else math.nan
    return NoiseFloorResult(math.sqrt(var) if df > 0 else math.nan, var, df, n_runs, n_groups)


def two_way_anova(table) -> TwoWayAnovaResult:
    """Two-way ANOVA without replication on a complete configs x seeds table.

    Parameters
    ----------
    table : array_like, shape (n_configs, n_seeds)
        One run per (config, seed) cell, no missing cells.

    Returns
    -------
    TwoWayAnovaResult
        Mean squares equal statsmodels ``anova_lm`` of
        ``metric ~ C(config) + C(seed)``.
    """
    y = np.asarray(table, dtype=float)
    r, c = y.shape
    if r < 2 or c < 2:
        raise AnalysisError(f"two-way ANOVA needs at least 2 configs x 2 seeds, got {r} x {c}")
    grand = y.mean()
    row = y.mean(axis=1, keepdims=True)
    col = y.mean(axis=0, keepdims=True)
    ss_c = float(c * ((row - grand) ** 2).sum())
    ss_s = float(r * ((col - grand) ** 2).sum())
    ss_e = float(((y - row - col + grand) ** 2).sum())
    df_c, df_s, df_e = r - 1, c - 1, (r - 1) * (c - 1)
    ms_c, ms_s, ms_e = ss_c / df_c, ss_s / df_s, ss_e / df_e
    with np.errstate(divide="ignore", invalid="ignore"):
        f_c = float(np.float64(ms_c) / ms_e)
        f_s = float(np.float64(ms_s) / ms_e)
    p_c = float(_sps.f.sf(f_c, df_c, df_e)) if not math.isnan(f_c) else math.nan
    p_s = float(_sps.f.sf(f_s, df_s, df_e)) if not math.isnan(f_s) else math.nan
    return TwoWayAnovaResult(
        ms_config=ms_c, ms_seed=ms_s, ms_residual=ms_e,
        df_config=df_c, df_seed=df_s, df_residual=df_e,
        f_config=f_c, p_config=p_c, f_seed=f_s, p_seed=p_s,
        var_config=max(0.0, (ms_c - ms_e) / c),
        var_seed=max(0.0, (ms_s - ms_e) / r),
        var_residual=ms_e, n_configs=r, n_seeds=c,
    )


def largest_complete_block(configs, seeds) -> CompleteBlock | None:
    """Find a large set of configs that all share a set of seeds.

    Seeds are ranked by how many configs ran them (ties: first appearance);
    for every prefix of that ranking, the configs having all of the prefix's
    seeds form a complete block, and the block with the most cells
    (configs x seeds, ties to more configs) wins.  This greedy search is not
    guaranteed to find the largest biclique in general, but it is exact for
    the layouts sweeps produce (a common seed range, some configs with extra
    seeds, some configs missing a few).

    Returns
    -------
    CompleteBlock or None
        Configs in first-appearance order and seeds sorted; None when no
        block of at least 2 configs x 2 seeds exists.
    """
    cfg_codes, cfg_names = pd.factorize(np.asarray(configs, dtype=object), sort=False)
    seed_codes, seed_names = pd.factorize(np.asarray(seeds, dtype=object), sort=False)
    present = np.zeros((len(cfg_names), len(seed_names)), dtype=bool)
    present[cfg_codes, seed_codes] = True
    order = np.argsort(-present.sum(axis=0), kind="stable")
    has_all = np.logical_and.accumulate(present[:, order], axis=1)  # configs x prefix length
    n_cfg = has_all.sum(axis=0)
    n_seed = np.arange(1, len(order) + 1)
    ok = (n_cfg >= 2) & (n_seed >= 2)
    if not ok.any():
        return None
    area = np.where(ok, n_cfg * n_seed, -1)
    best = max(np.flatnonzero(area == area.max()), key=lambda j: n_cfg[j])
    chosen_cfg = [cfg_names[i] for i in np.flatnonzero(has_all[:, best])]
    chosen_seeds = sorted((seed_names[j] for j in order[: best + 1]), key=_sort_key)
    return CompleteBlock(tuple(chosen_cfg), tuple(chosen_seeds))


def _sort_key(x):
    # Seeds are usually ints; fall back to strings so mixed labels still sort.
    return (0, x, "") if isinstance(x, (int, float, np.integer, np.floating)) else (1, 0, str(x))


def fixed_seed_signal(values, configs, seeds) -> float:
    """Spread across configs at a fixed seed, averaged over shared seeds.

    For every seed that at least two configs ran, take the sample std
    (``ddof=1``) of those configs' values at that seed; return the mean over
    such seeds, or NaN when no seed is shared.  Holding the seed fixed
    removes the part of seed noise that is common to all configs.
    """
    df = pd.DataFrame({"v": np.asarray(values, dtype=float), "c": list(configs), "s": list(seeds)})
    wide = df.pivot(index="s", columns="c", values="v").to_numpy(dtype=float)
    shared = np.count_nonzero(~np.isnan(wide), axis=1) >= 2
    if not shared.any():
        return math.nan
    return float(np.nanstd(wide[shared], axis=1, ddof=1).mean())


# ---------------------------------------------------------------------------
# Power
# ---------------------------------------------------------------------------


def _power_from_ncp(ncp, df, alpha):
    # Two-sided power of a t test: both rejection tails (as statsmodels).
    # scipy.special's nctdtr/stdtrit are the functions behind scipy.stats.nct
    # and t, without the distribution framework's per-call overhead (power
    # is evaluated inside root searches).
    ncp = np.asarray(ncp, dtype=float)
    crit = _special.stdtrit(df, 1 - alpha / 2)
    finite = np.where(np.isfinite(ncp), ncp, 0.0)
    upper = 1.0 - _special.nctdtr(df, finite, crit)
    lower = _special.nctdtr(df, finite, -crit)
    # The noncentral t can come back NaN for far-tail arguments (tail
    # probabilities ~1e-100); the normal approximation is exact enough there.
    upper = np.where(np.isnan(upper), _special.ndtr(finite - crit), upper)
    lower = np.where(np.isnan(lower), _special.ndtr(-crit - finite), lower)
    return np.where(np.isinf(ncp), 1.0, upper + lower)


def t_test_power(effect_size, nobs, *, alpha: float = 0.05, paired: bool = True, nobs2=None):
    """Two-sided power of a t test for a standardised effect size.

    Parameters
    ----------
    effect_size : array_like
        ``|difference| / sd`` (paired: sd of the differences).
    nobs : array_like
        Pairs (paired) or runs in the first group (unpaired).
    alpha : float
        Two-sided significance level.
    paired : bool
        One-sample t on differences (``df = n - 1``, ``ncp = d sqrt(n)``) or
        the equal-variance two-sample t (``df = n1 + n2 - 2``,
        ``ncp = d sqrt(n1 n2 / (n1 + n2))``), as statsmodels ``TTestPower`` /
        ``TTestIndPower``.
    nobs2 : array_like, optional
        Runs in the second group (unpaired; defaults to ``nobs``).

    Returns
    -------
    numpy.ndarray or float
    """
    d = np.asarray(effect_size, dtype=float)
    n1 = np.asarray(nobs, dtype=float)
    if paired:
        df = n1 - 1
        eff_n = n1
    else:
        n2 = n1 if nobs2 is None else np.asarray(nobs2, dtype=float)
        df = n1 + n2 - 2
        eff_n = n1 * n2 / (n1 + n2)
    with np.errstate(invalid="ignore"):
        out = np.where(df >= 1, _power_from_ncp(d * np.sqrt(eff_n), np.maximum(df, 1), alpha), np.nan)
    return _scalar(out)


def minimum_detectable_difference(
    sd, nobs, *, nobs2=None, paired: bool = True, alpha: float = 0.05, power: float = 0.8
):
    """Smallest |difference| a two-sided t test detects with the given power.

    Solves ``t_test_power(delta / sd, ...) == power`` for ``delta`` with the
    noncentral t (vectorised bisection) and
    returns it in metric units (relative precision 1e-11).

    Parameters
    ----------
    sd : array_like
        Standard deviation in metric units (paired: of the seed-paired
        differences; unpaired: the noise floor).
    nobs, nobs2, paired, alpha
        As in :func:`t_test_power`.
    power : float
        Target power.

    Returns
    -------
    numpy.ndarray or float
        NaN where the test has no degrees of freedom or ``sd`` is not finite.
    """
    _check_unit_interval("power", power)
    sd, n1 = np.broadcast_arrays(np.asarray(sd, dtype=float), np.asarray(nobs, dtype=float))
    n2 = n1 if nobs2 is None else np.broadcast_to(np.asarray(nobs2, dtype=float), n1.shape)
    df = n1 - 1 if paired else n1 + n2 - 2
    valid = (df >= 1) & np.isfinite(sd)
    n1v = np.where(valid, n1, 2.0)
    n2v = np.where(valid, n2, 2.0)

    def pw(d):
        return np.asarray(t_test_power(d, n1v, alpha=alpha, paired=paired, nobs2=n2v))

    # Bracket around the normal-theory answer, widen until it holds the root,
    # then bisect (power is increasing in the effect size).
    eff_n = n1v if paired else n1v * n2v / (n1v + n2v)
    guess = (_special.ndtri(1 - alpha / 2) + _special.ndtri(power)) / np.sqrt(eff_n)
    lo, hi = guess / 2, guess * 2
    for _ in range(60):
        short = pw(hi) < power
        if not short.any():
            break
        lo = np.where(short, hi, lo)
        hi = np.where(short, hi * 4, hi)
    for _ in range(60):
        over = pw(lo) >= power
        if not over.any():
            break
        hi = np.where(over, lo, hi)
        lo = np.where(over, lo / 4, lo)
    while np.any(hi - lo > 1e-11 * hi):
        mid = (lo + hi) / 2
        ok = pw(mid) >= power
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid)
    return _scalar(np.where(valid, hi * sd, np.nan))


def seeds_needed(
    diff, sd, *, paired: bool = True, alpha: float = 0.05, power: float = 0.8, cap: int = SEEDS_NEEDED_CAP
):
    """Seeds per config needed to detect ``diff`` with the given power.

    The smallest integer ``n >= 2`` whose two-sided t test power (paired: ``n``
    seed pairs; unpaired: ``n`` runs in each of the two groups) reaches
    ``power`` for effect size ``|diff| / sd``.

    Returns
    -------
    numpy.ndarray or float
        Float array holding integers; NaN where ``diff`` is 0 or either input
        is not finite; ``cap`` where even ``cap`` seeds would not suffice
        (read it as "at least ``cap``").
    """
    _check_unit_interval("power", power)
    diff, sd = np.broadcast_arrays(np.asarray(diff, dtype=float), np.asarray(sd, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.abs(diff) / sd
    valid = np.isfinite(diff) & (diff != 0) & ~np.isnan(d)
    d = np.where(valid, d, 1.0)

    def ok(n):
        return np.asarray(t_test_power(d, n, alpha=alpha, paired=paired)) >= power

    lo = np.ones(d.shape)  # n = 1 never works (no degrees of freedom)
    hi = np.full(d.shape, float(cap))
    reachable = ok(hi)
    while np.any(hi - lo > 1):
        mid = np.floor((lo + hi) / 2)
        good = ok(np.maximum(mid, 2))
        hi = np.where(good, mid, hi)
        lo = np.where(good, lo, mid)
    out = np.where(reachable, np.maximum(hi, 2), float(cap))
    return _scalar(np.where(valid, out, np.nan))


# ---------------------------------------------------------------------------
# Hyperparameter importance
# ---------------------------------------------------------------------------


def permutation_anova_test(values, groups, *, n_resamples: int = 2000, random_state=None):
    """Permutation test of "the group labels don't matter" for a one-way layout.

    The statistic is the between-group sum of squares (equivalent to F, as
    the total sum of squares is fixed under permutation); the null shuffles
    the labels across runs ``n_resamples`` times (vectorised, in chunks) and
    the p-value is ``(count + 1) / (n_resamples + 1)``.

    Returns
    -------
    RankTestResult
        ``statistic`` is the observed F; ``pvalue`` the permutation p-value.
    """
    y = np.asarray(values, dtype=float)
    codes, _ = pd.factorize(np.asarray(groups, dtype=object), sort=False)
    k = int(codes.max()) + 1 if codes.size else 0
    if k < 2 or y.size <= k:
        return RankTestResult(math.nan, math.nan)
    rng = _rng(random_state)
    counts = np.bincount(codes, minlength=k).astype(float)
    onehot = np.zeros((y.size, k))
    onehot[np.arange(y.size), codes] = 1.0
    # Centre first: SSB = sum_g S_g^2 / n_g with S_g the centred group sums.
    yc = y - y.mean()

    def ssb(sums):
        return (sums**2 / counts).sum(axis=-1)

    observed = float(ssb(yc @ onehot))
    tol = 1e-9 * max(float((yc**2).sum()), 1e-300)
    chunk = max(1, min(n_resamples, 2_000_000 // y.size))
    count = 0
    done = 0
    while done < n_resamples:
        m = min(chunk, n_resamples - done)
        perm = rng.permuted(np.broadcast_to(yc, (m, y.size)), axis=1)
        count += int(np.count_nonzero(ssb(perm @ onehot) >= observed - tol))
        done += m
    F = one_way_anova(y, codes).statistic
    return RankTestResult(float(F), (count + 1) / (n_resamples + 1))


def _equal_or_both_nan(series: pd.Series, value) -> np.ndarray:
    if pd.isna(value):
        return series.isna().to_numpy()
    return (series == value).to_numpy()


def hparam_importance(
    runs: pd.DataFrame,
    metric: str,
    *,
    baseline: str = "baseline",
    hparams: Sequence[str] | None = None,
    alpha: float = 0.05,
    correction: str = "holm",
    n_perm: int = 2000,
    random_state=None,
) -> pd.DataFrame:
    """Does each hyperparameter move the metric beyond the seed noise?

    Design (one factor at a time): for hyperparameter ``h`` we keep the runs
    whose *other* hyperparameters equal the baseline's values, i.e. the
    baseline plus the variants that change only ``h``, so that differences
    between levels of ``h`` are not confounded with other changes.  If that
    leaves fewer than two levels of ``h`` (e.g. a full grid without the
    baseline's values), all runs are used instead (``design="all_runs"``);
    the within-level spread then also contains the other hyperparameters'
    effects, which makes the test conservative.

    Runs are grouped by the level of ``h``; ``var_explained`` is the
    between-level variance component (as for ``signal``:
    ``max(0, (MSB - MSW) / n0)``), ``noise_var`` the within-level (seed)
    variance ``MSW`` and ``ratio`` their quotient.  The p-value comes from a
    permutation null shuffling level labels across runs
    (:func:`permutation_anova_test`), adjusted across hyperparameters with
    ``correction``; ``verdict`` is ``"matters"`` when ``p_adjusted < alpha``,
    ``"insufficient_runs"`` when no level has two runs, else
    ``"within_noise"``.

    Parameters
    ----------
    runs : pandas.DataFrame
        Usable runs only (``config``, the metric, ``hp.*`` columns).
    metric : str
        Metric column.
    baseline : str
        Baseline config, whose hyperparameter values anchor the design.
    hparams : sequence of str, optional
        Hyperparameters to assess, as ``"lr"`` or ``"hp.lr"``; default every
        ``hp.*`` column.  Columns with a single value are skipped.
    alpha, correction, n_perm, random_state
        As in :func:`analyze`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`IMPORTANCE_COLUMNS`.
    """
    columns = _resolve_hparams(runs, hparams)
    base_rows = runs[runs["config"] == baseline]
    rows = []
    child_seeds = _seed_sequence(random_state).spawn(max(1, len(columns)))
    for col, child in zip(columns, child_seeds):
        if runs[col].nunique(dropna=False) < 2:
            continue
        others = [c for c in columns if c != col]
        mask = np.ones(len(runs), dtype=bool)
        if len(base_rows):
            for o in others:
                mask &= _equal_or_both_nan(runs[o], base_rows[o].iloc[0])
        design = "one_at_a_time"
        sub = runs[mask]
        if not len(base_rows) or sub[col].nunique(dropna=False) < 2:
            sub, design = runs, "all_runs"
        y = sub[metric].to_numpy(dtype=float)
        levels = sub[col].astype(object).where(sub[col].notna(), "<NA>").to_numpy()
        an = one_way_anova(y, levels)
        perm = permutation_anova_test(y, levels, n_resamples=n_perm, random_state=np.random.default_rng(child))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = float(np.float64(an.var_between) / np.float64(an.var_within))
        rows.append({
            "hparam": col[3:] if col.startswith("hp.") else col,
            "column": col,
            "design": design,
            "n_levels": an.n_groups,
            "n_runs": an.n_runs,
            "var_explained": an.var_between,
            "noise_var": an.var_within,
            "ratio": ratio,
            "f_stat": an.statistic,
            "p_value": perm.pvalue,
        })
    out = pd.DataFrame(rows, columns=[c for c in IMPORTANCE_COLUMNS if c not in ("p_adjusted", "verdict")])
    p_adj = adjust_pvalues(out["p_value"].to_numpy(dtype=float), correction)
    out["p_adjusted"] = p_adj
    verdict = np.where(p_adj < alpha, "matters", "within_noise").astype(object)
    verdict[np.isnan(out["p_value"].to_numpy(dtype=float))] = "insufficient_runs"
    out["verdict"] = verdict
    return out[list(IMPORTANCE_COLUMNS)]


def _resolve_hparams(runs: pd.DataFrame, hparams) -> list[str]:
    if hparams is None:
        return [c for c in runs.columns if isinstance(c, str) and c.startswith("hp.")]
    out = []
    for name in hparams:
        if name in runs.columns:
            out.append(name)
        elif f"hp.{name}" in runs.columns:
            out.append(f"hp.{name}")
        else:
            raise AnalysisError(f"hyperparameter {name!r} has no column 'hp.{name}' in the runs table")
    return out


# ---------------------------------------------------------------------------
# The entry point
# ---------------------------------------------------------------------------


def _check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise AnalysisError(f"direction must be 'max' or 'min'; got {direction!r}")


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
        return x
    if isinstance(x, dict):
        return {str(k): _json_value(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, np.ndarray)):
        return [_json_value(v) for v in x]
    return str(x)


def _plain(x):
    # numpy scalars print as np.int64(2) in messages; users wrote 2.
    return x.item() if isinstance(x, np.generic) else x


def _int_or_none(x):
    return None if x is None or not np.isfinite(x) else int(x)


def _validate_arguments(direction, correction, alpha, confidence_level, power, n_boot, n_perm, eval_size):
    _check_direction(direction)
    if correction not in CORRECTIONS:
        raise AnalysisError(f"correction must be one of {', '.join(CORRECTIONS)}; got {correction!r}")
    _check_unit_interval("alpha", alpha)
    _check_unit_interval("confidence_level", confidence_level)
    _check_unit_interval("power", power)
    for name, value in (("n_boot", n_boot), ("n_perm", n_perm)):
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


def _compare_variant(name, v, vs, b, bs, *, baseline, direction, confidence_level, n_boot, n_perm, seed_seq):
    """All per-variant statistics except the multiplicity adjustment."""
    n, nb = v.size, b.size
    shared = sorted(set(vs.tolist()) & set(bs.tolist()), key=_sort_key)
    row = dict.fromkeys(COMPARISON_COLUMNS, math.nan)
    row.update(config=name, baseline=baseline, n=n, n_baseline=nb, n_paired=len(shared),
               confidence_level=confidence_level, test=None)
    row["mean"] = float(v.mean()) if n else math.nan
    row["std"] = float(v.std(ddof=1)) if n >= 2 else math.nan
    row["baseline_mean"] = float(b.mean())
    row["diff"] = row["mean"] - row["baseline_mean"]
    row["prob_superior"] = prob_superior(v, b, direction=direction)
    row["_sd_paired"] = math.nan
    if n < 2:
        row["verdict"] = "insufficient_runs"
        return row
    boot_rng, flip_rng, aso_rng = (np.random.default_rng(s) for s in seed_seq.spawn(3))
    if len(shared) >= 2:
        # Same seed => same init/data order: pairing removes that shared part
        # of the noise, so use it whenever at least two seeds overlap.
        vmap = dict(zip(vs.tolist(), v))
        bmap = dict(zip(bs.tolist(), b))
        xv = np.array([vmap[s] for s in shared])
        xb = np.array([bmap[s] for s in shared])
        d = xv - xb
        tt = paired_t_test(xv, xb)
        ci = bootstrap_mean_diff_ci(xv, xb, paired=True, n_resamples=n_boot,
                                    confidence_level=confidence_level, random_state=boot_rng)
        row.update(test="paired_t", diff=float(d.mean()), statistic=tt.statistic, p_value=tt.pvalue,
                   p_paired_t=tt.pvalue, effect_size=cohens_d(xv, xb, paired=True),
                   p_wilcoxon=wilcoxon_test(d).pvalue,
                   p_signflip=sign_flip_test(d, n_resamples=n_perm, random_state=flip_rng).pvalue)
        row["_sd_paired"] = float(d.std(ddof=1))
    else:
        tt = welch_t_test(v, b)
        ci = bootstrap_mean_diff_ci(v, b, paired=False, n_resamples=n_boot,
                                    confidence_level=confidence_level, random_state=boot_rng)
        row.update(test="welch", statistic=tt.statistic, p_value=tt.pvalue, p_welch=tt.pvalue,
                   effect_size=cohens_d(v, b), p_mannwhitney=mannwhitney_test(v, b).pvalue)
    row["ci_low"], row["ci_high"] = ci.low, ci.high
    sign = 1.0 if direction == "max" else -1.0
    row["aso_eps"] = aso(sign * v, sign * b, confidence_level=confidence_level,
                         num_bootstrap_iterations=n_boot, random_state=aso_rng).eps_min
    return row


def analyze(
    runs: pd.DataFrame,
    metric: str,
    *,
    direction: str = "max",
    baseline: str = "baseline",
    alpha: float = 0.05,
    correction: str = "holm",
    confidence_level: float = 0.95,
    power: float = 0.8,
    n_boot: int = 2000,
    n_perm: int = 2000,
    eval_size: int | None = None,
    hparams: Sequence[str] | None = None,
    random_state: int | None = 0,
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
        Name of the baseline config.
    alpha : float
        Significance level for verdicts (after correction).
    correction : {"holm", "bh", "none"}
        Multiplicity adjustment over the variants' primary p-values (and,
        separately, over the hyperparameters' p-values).
    confidence_level : float
        For the bootstrap CIs of ``diff``, the noise-floor intervals and ASO.
    power : float
        Target power for ``mde`` and ``seeds_needed``.
    n_boot : int
        Bootstrap resamples for the ``diff`` CIs and for ASO.
    n_perm : int
        Sign patterns for the sign-flip test (exact when ``2**n <= n_perm``)
        and label shuffles for the importance test.
    eval_size : int, optional
        Size of the evaluation set; enables ``test_sampling_floor`` for
        metrics in [0, 1] (accuracy-like proportions).
    hparams : sequence of str, optional
        Hyperparameters to assess (``"lr"`` or ``"hp.lr"``); default all
        ``hp.*`` columns.
    random_state : int or None
        Seed for every resampling; the same seed gives the same result.

    Returns
    -------
    AnalysisResult

    Raises
    ------
    AnalysisError
        Missing ``config``/``seed``/metric column, non-numeric metric,
        missing config or seed values, duplicate (config, seed) rows, a
        hyperparameter varying within a config, unknown ``direction`` or
        ``correction``, no baseline rows, or fewer than two usable baseline
        runs.

    Notes
    -----
    *Exclusion.*  Rows whose ``status`` is not ``"ok"`` are excluded with the
    status as reason (``"status missing"`` for an empty one); then rows whose
    metric is NaN (``"metric is NaN"``) or infinite (``"metric is
    infinite"``).  They are counted in the summary and returned in
    ``excluded``.

    *Comparisons.*  One row per variant (every config but the baseline, in
    first-appearance order, also those with no usable run).  ``diff`` is in
    metric units and signed as measured (variant minus baseline); whether
    that is better depends on ``direction``.  When the variant and baseline
    share at least two seeds the comparison is paired on the shared seeds:
    ``diff`` is the mean seed-paired difference and the primary test the
    paired t test, with Wilcoxon signed-rank and sign-flip p-values
    alongside.  Otherwise ``diff = mean - baseline_mean`` over all runs,
    Welch's t test is primary and Mann-Whitney alongside.  Columns that do
    not apply are NaN.  ``ci_low``/``ci_high`` is a percentile bootstrap
    interval (seed pairs resampled when paired, each group independently
    otherwise).  ``effect_size`` is Cohen's d (d_z when paired);
    ``prob_superior`` is P(a variant run beats a baseline run) over all runs,
    ties 1/2; ``aso_eps`` the ASO eps_min of variant over baseline
    (direction-aware, ``n_boot`` resamples, not multiplicity-adjusted;
    < 0.5 favours the variant).  ASO is reported, never used for the
    verdict: with 10 runs per side, two samples from the *same*
    distribution give eps_min < 0.5 about 18 % of the time (deepsig
    recommends the stricter eps_min < 0.2, ~2-5 %).

    *Verdicts.*  ``p_adjusted < alpha`` and the sign of ``diff`` give
    ``"better"``/``"worse"``; otherwise ``"within_noise"`` (also when the
    test is degenerate, e.g. zero spread and zero difference).  A variant
    with fewer than two usable runs gets ``"insufficient_runs"``, NaN tests,
    and is left out of the multiplicity family.

    *Power.*  ``mde`` is the smallest |difference| the primary test would
    detect with probability ``power`` at ``alpha`` (two-sided) with the
    current runs: paired with the sd of the paired differences and
    ``n_paired`` pairs; otherwise the equal-variance two-sample t with the
    noise floor and ``n``, ``n_baseline`` runs (an approximation for Welch).
    ``seeds_needed`` is the number of seeds per config needed to detect the
    observed |diff| at that power with the same test family (nullable
    integer; missing when diff is 0; ``SEEDS_NEEDED_CAP`` means "at least
    that many").

    *Summary keys.*  ``noise_floor`` is sqrt(MS_within) of a one-way ANOVA
    over configs (pooled seed std) with a chi-square ``noise_floor_ci``
    (df = N - k); ``noise_floor_baseline`` the baseline's own sample std;
    ``signal`` the between-config std component; ``signal_fixed_seed`` the
    std across configs at a shared seed, averaged over shared seeds, and
    ``signal_over_noise`` its ratio to the noise floor; ``snr`` and ``icc``
    from the variance components; ``f_stat``/``f_pvalue`` the one-way ANOVA
    F test.  ``best_config`` is the variant (with at least two runs) whose
    mean is best in ``direction``.  ``var_config``/``var_seed``/
    ``var_residual`` decompose a complete configs x seeds block (see
    :func:`largest_complete_block`) by two-way ANOVA; None without one.
    ``mde`` is the unpaired minimum detectable difference with
    ``n_baseline`` runs per group and the noise floor; ``seeds_needed_for``
    lists the seeds per config needed for differences of 0.5, 1 and 2 noise
    floors.
    """
    _validate_arguments(direction, correction, alpha, confidence_level, power, n_boot, n_perm, eval_size)
    hp_columns = _resolve_hparams(runs, hparams) if isinstance(runs, pd.DataFrame) else []
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
    b, bs = y[is_base], seeds[is_base]

    anova = one_way_anova(y, cfg)
    floor = noise_floor(y, cfg)
    floor_b = noise_floor(b)

    # --- per-variant comparisons -------------------------------------------
    variants = [c for c in pd.unique(runs["config"]) if c != baseline]
    root = _seed_sequence(random_state)
    variant_root, importance_root = root.spawn(2)
    variant_seqs = variant_root.spawn(max(1, len(variants)))
    by_config = {c: idx for c, idx in pd.Series(np.arange(len(cfg))).groupby(cfg, sort=False).groups.items()}
    rows = []
    for name, seq in zip(variants, variant_seqs):
        idx = np.asarray(by_config.get(name, []), dtype=int)
        rows.append(_compare_variant(
            name, y[idx], seeds[idx], b, bs, baseline=baseline, direction=direction,
            confidence_level=confidence_level, n_boot=n_boot, n_perm=n_perm, seed_seq=seq))
    comp = pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS) + ["_sd_paired"])
    comp["correction"] = correction
    comp["p_adjusted"] = adjust_pvalues(comp["p_value"].to_numpy(dtype=float), correction)
    enough = comp["n"].to_numpy() >= 2
    verdict = decide_verdicts(comp["diff"], comp["p_adjusted"], alpha=alpha, direction=direction)
    comp["verdict"] = np.where(enough, verdict, "insufficient_runs")
    with np.errstate(divide="ignore", invalid="ignore"):
        comp["diff_over_noise"] = comp["diff"].to_numpy(dtype=float) / floor.std

    paired = (comp["test"] == "paired_t").to_numpy()
    sd_paired = comp["_sd_paired"].to_numpy(dtype=float)
    n_v = comp["n"].to_numpy(dtype=float)
    mde = np.full(len(comp), np.nan)
    needed = np.full(len(comp), np.nan)
    diff = comp["diff"].to_numpy(dtype=float)
    if paired.any():
        n_pairs = comp["n_paired"].to_numpy(dtype=float)[paired]
        mde[paired] = minimum_detectable_difference(
            sd_paired[paired], n_pairs, paired=True, alpha=alpha, power=power)
        needed[paired] = seeds_needed(diff[paired], sd_paired[paired], paired=True, alpha=alpha, power=power)
    unpaired = ~paired & (n_v >= 1)
    if unpaired.any():
        mde[unpaired] = minimum_detectable_difference(
            floor.std, n_v[unpaired], nobs2=n_base, paired=False, alpha=alpha, power=power)
        needed[unpaired] = seeds_needed(diff[unpaired], floor.std, paired=False, alpha=alpha, power=power)
    comp["mde"] = mde
    comp["seeds_needed"] = pd.array(np.where(np.isnan(needed), None, needed), dtype="Int64")
    comp = comp[list(COMPARISON_COLUMNS)]
    for col in ("n", "n_baseline", "n_paired"):
        comp[col] = comp[col].astype(int)

    # --- hyperparameter importance -----------------------------------------
    importance = hparam_importance(
        usable, metric, baseline=baseline, hparams=hp_columns, alpha=alpha, correction=correction,
        n_perm=n_perm, random_state=importance_root)

    summary = _summary(
        usable, metric, y, cfg, seeds, b, comp, anova, floor, floor_b, excluded,
        direction=direction, baseline=baseline, alpha=alpha, correction=correction,
        confidence_level=confidence_level, power=power, eval_size=eval_size)
    return AnalysisResult(summary=summary, comparisons=comp.reset_index(drop=True),
                          importance=importance, excluded=excluded)


def _summary(usable, metric, y, cfg, seeds, b, comp, anova, floor, floor_b, excluded, *,
             direction, baseline, alpha, correction, confidence_level, power, eval_size) -> dict:
    floor_ci = floor.confidence_interval(confidence_level)
    floor_b_ci = floor_b.confidence_interval(confidence_level)
    sampling_floor = None
    if eval_size is not None and len(y) and np.all((y >= 0) & (y <= 1)):
        p = float(b.mean())
        sampling_floor = math.sqrt(p * (1 - p) / eval_size)
    signal_fixed = fixed_seed_signal(y, cfg, seeds)
    with np.errstate(divide="ignore", invalid="ignore"):
        sig_over_noise = float(np.float64(signal_fixed) / np.float64(floor.std))

    eligible = comp[comp["n"] >= 2]
    best = None
    if len(eligible):
        means = eligible["mean"].to_numpy(dtype=float)
        best = eligible.iloc[int(np.argmax(means) if direction == "max" else np.argmin(means))]

    block = largest_complete_block(cfg, seeds)
    two_way = None
    if block is not None:
        frame = pd.DataFrame({"c": cfg, "s": seeds, "v": y})
        frame = frame[frame["c"].isin(block.configs) & frame["s"].isin(block.seeds)]
        table = frame.pivot(index="c", columns="s", values="v").loc[list(block.configs), list(block.seeds)]
        two_way = two_way_anova(table.to_numpy(dtype=float))

    n_base = b.size
    mde = minimum_detectable_difference(floor.std, n_base, nobs2=n_base, paired=False, alpha=alpha, power=power)
    needed_for = []
    for k in (0.5, 1.0, 2.0):
        needed_for.append({
            "noise_floors": k,
            "diff": k * floor.std,
            "seeds": _int_or_none(seeds_needed(k * floor.std, floor.std, paired=False, alpha=alpha, power=power)),
        })

    verdicts = comp["verdict"]
    summary = {
        "metric": metric,
        "direction": direction,
        "baseline": baseline,
        "alpha": alpha,
        "correction": correction,
        "confidence_level": confidence_level,
        "power": power,
        "n_runs": int(len(y)),
        "n_configs": int(pd.unique(cfg).size),
        "n_variants": int(len(comp)),
        "n_baseline": int(n_base),
        "n_excluded": int(len(excluded)),
        "excluded_by_reason": {str(k): int(v) for k, v in excluded["reason"].value_counts(sort=False).items()},
        "noise_floor": floor.std,
        "noise_floor_df": floor.df,
        "noise_floor_ci": [floor_ci.low, floor_ci.high],
        "noise_floor_baseline": floor_b.std,
        "noise_floor_baseline_ci": [floor_b_ci.low, floor_b_ci.high],
        "test_sampling_floor": sampling_floor,
        "eval_size": eval_size,
        "signal": math.sqrt(anova.var_between) if not math.isnan(anova.var_between) else None,
        "signal_fixed_seed": signal_fixed,
        "signal_over_noise": sig_over_noise,
        "snr": anova.snr,
        "icc": anova.icc,
        "f_stat": anova.statistic,
        "f_pvalue": anova.pvalue,
        "best_config": None if best is None else best["config"],
        "best_diff": None if best is None else best["diff"],
        "best_p_adjusted": None if best is None else best["p_adjusted"],
        "best_verdict": None if best is None else best["verdict"],
        "n_better": int((verdicts == "better").sum()),
        "n_worse": int((verdicts == "worse").sum()),
        "n_within_noise": int((verdicts == "within_noise").sum()),
        "n_insufficient_runs": int((verdicts == "insufficient_runs").sum()),
        "var_config": None if two_way is None else two_way.var_config,
        "var_seed": None if two_way is None else two_way.var_seed,
        "var_residual": None if two_way is None else two_way.var_residual,
        "two_way_n_configs": None if two_way is None else two_way.n_configs,
        "two_way_n_seeds": None if two_way is None else two_way.n_seeds,
        "two_way_configs": None if block is None else list(block.configs),
        "mde": mde,
        "seeds_needed_for": needed_for,
    }
    return {k: _json_value(v) for k, v in summary.items()}
