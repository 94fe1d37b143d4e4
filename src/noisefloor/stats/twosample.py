"""Two-sample tests, intervals and effect sizes for one variant against the baseline."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special as _special
from scipy import stats as _sps

from ._core import (ConfidenceInterval, _check_alternative, _check_direction, _check_unit_interval, _rng,
                    _scalar, _t_pvalue)


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


# Two-sample tests


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
