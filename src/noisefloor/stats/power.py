"""Power: the smallest difference a design detects, and the seeds a difference needs."""

from __future__ import annotations

import numpy as np
from scipy import special as _special

from ._core import _check_unit_interval, _scalar

#: The seeds-needed searches never go beyond this many seeds per config; a
#: value equal to the cap means "at least this many" (in practice: never).
SEEDS_NEEDED_CAP = 10_000


# Power


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


def welch_df(n1, n2):
    """Satterthwaite's df of a two-sample comparison when both groups are equally noisy.

    ``(1/n1 + 1/n2)**2 / (1/(n1**2 (n1 - 1)) + 1/(n2**2 (n2 - 1)))``: the degrees
    of freedom the comparisons use for two configs of equal spread (their df
    guard), lower than the pooled ``n1 + n2 - 2`` when the groups differ in size.
    """
    n1, n2 = np.asarray(n1, dtype=float), np.asarray(n2, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (1 / n1 + 1 / n2) ** 2 / (1 / (n1**2 * (n1 - 1)) + 1 / (n2**2 * (n2 - 1)))


def t_test_power(effect_size, nobs, *, alpha: float = 0.05, paired: bool = True, nobs2=None,
                 welch: bool = False):
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
    welch : bool
        Unpaired only: the df of the comparisons' test (:func:`welch_df`)
        instead of the pooled ``n1 + n2 - 2``.

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
        df = welch_df(n1, n2) if welch else n1 + n2 - 2
        eff_n = n1 * n2 / (n1 + n2)
    with np.errstate(invalid="ignore"):
        out = np.where(df >= 1, _power_from_ncp(d * np.sqrt(eff_n), np.maximum(df, 1), alpha), np.nan)
    return _scalar(out)


def minimum_detectable_difference(
    sd, nobs, *, nobs2=None, paired: bool = True, alpha: float = 0.05, power: float = 0.8, welch: bool = False
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
        return np.asarray(t_test_power(d, n1v, alpha=alpha, paired=paired, nobs2=n2v, welch=welch))

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

    out = _smallest_n(ok, d.shape, cap)
    return _scalar(np.where(valid, out, np.nan))


def _smallest_n(ok, shape, cap: int) -> np.ndarray:
    """Smallest integer n in [2, cap] with ``ok(n)`` (vectorised bisection); ``cap`` where none is."""
    lo = np.ones(shape)
    hi = np.full(shape, float(cap))
    reachable = ok(hi)
    while np.any(hi - lo > 1):
        mid = np.floor((lo + hi) / 2)
        good = ok(np.maximum(mid, 2))
        hi = np.where(good, mid, hi)
        lo = np.where(good, lo, mid)
    return np.where(reachable, np.maximum(hi, 2), float(cap))


#: Equal-probability points of a sampling distribution, for a power averaged over it.
_ASSURANCE_POINTS = (np.arange(32) + 0.5) / 32


def _mean_over_points(value_at, ndim: int):
    """The mean of ``value_at(q)`` over :data:`_ASSURANCE_POINTS` (a quadrature over a probability).

    ``value_at`` is evaluated once, on the points laid along a new leading axis
    in front of ``ndim`` trailing ones, so it must broadcast.
    """
    return np.mean(value_at(_ASSURANCE_POINTS.reshape((-1,) + (1,) * ndim)), axis=0)


def comparison_se_df(n, n_baseline, *, sd, sd_baseline=None, prior_df=0.0, prior_df_baseline=0.0):
    """Standard error and degrees of freedom of a variant's comparison with ``n`` runs against ``n_baseline``.

    ``se = sqrt(sd^2 / n + sd_baseline^2 / n_baseline)``; the degrees of
    freedom are Satterthwaite's with the comparisons' guard (each side taken
    as noisy as the noisier one) on ``n - 1 + prior_df`` and ``n_baseline - 1
    + prior_df_baseline``: the prior degrees of freedom a moderated spread
    carries (:mod:`~noisefloor.stats.moderation`).  With equal spreads and no
    prior this is :func:`welch_df`.  Seed pairing is ignored, so the standard
    error errs on the large side.
    """
    n = np.asarray(n, dtype=float)
    nb = np.asarray(n_baseline, dtype=float)
    sd = np.asarray(sd, dtype=float)
    sd_b = sd if sd_baseline is None else np.asarray(sd_baseline, dtype=float)
    se = np.sqrt(sd**2 / n + sd_b**2 / nb)
    with np.errstate(divide="ignore", invalid="ignore"):
        df_v, df_b = n - 1 + prior_df, nb - 1 + prior_df_baseline
        df = (1 / n + 1 / nb) ** 2 / (1 / (n**2 * df_v) + 1 / (nb**2 * df_b))
    return se, df


def comparison_power(diff, n, n_baseline, *, sd, sd_baseline=None, prior_df=0.0, prior_df_baseline=0.0,
                     alpha: float = 0.05, flag_rate: float = 0.0):
    """Probability that a variant's interval at level ``alpha`` excludes 0 (see :func:`comparison_se_df`).

    ``flag_rate``: the chance that a variant with a moderated spread is
    found improbably noisy and tested on its own spread and degrees of
    freedom instead (:data:`~noisefloor.stats.moderation.OUTLIER_LEVEL` by
    construction when its spread is like the others'); the power is then the
    mixture of the two tests'.  A flagged variant's own variance is one from
    the upper ``flag_rate`` tail of its sampling distribution, so its
    interval is wider than its true spread warrants: that test's power is
    averaged over that tail (the difference taken as normal with its true
    standard error); the pooled test's over the rest of it.
    """
    se, df = comparison_se_df(n, n_baseline, sd=sd, sd_baseline=sd_baseline, prior_df=prior_df,
                              prior_df_baseline=prior_df_baseline)
    with np.errstate(divide="ignore", invalid="ignore"):
        ncp = np.abs(np.asarray(diff, dtype=float)) / se
    if not flag_rate:
        return _power_from_ncp(ncp, np.maximum(df, 1.0), alpha)
    n = np.asarray(n, dtype=float)
    nb = np.asarray(n_baseline, dtype=float)
    sd = np.asarray(sd, dtype=float)
    sd_b = sd if sd_baseline is None else np.asarray(sd_baseline, dtype=float)
    _, own_df = comparison_se_df(n, nb, sd=sd, sd_baseline=sd_b, prior_df_baseline=prior_df_baseline)
    d_own = np.maximum(n - 1, 1.0)
    w = np.asarray(prior_df, dtype=float)

    def rejects(ratio, test_df):
        # The test on a variance estimated at `ratio` times the variant's true one.
        se_est = np.sqrt(sd**2 * ratio / n + sd_b**2 / nb)
        with np.errstate(divide="ignore", invalid="ignore"):
            half = _special.stdtrit(np.maximum(test_df, 1.0), 1 - alpha / 2) * se_est / se
        return _special.ndtr(ncp - half) + _special.ndtr(-ncp - half)

    # Flagged: its own variance, from the upper flag_rate tail of chi2(n - 1) / (n - 1).
    nd = max(np.ndim(x) for x in (ncp, df, own_df, w))
    own = _mean_over_points(lambda q: rejects(_special.chdtri(d_own, flag_rate * (1 - q)) / d_own, own_df), nd)
    # Not flagged: a variance from the rest of it, moderated towards the prior with its weight.
    pooled = _mean_over_points(lambda q: rejects(
        (w + _special.chdtri(d_own, 1 - (1 - flag_rate) * q)) / (w + d_own), df), nd)
    rate = np.where(w > 0, flag_rate, 0.0)
    plain = _power_from_ncp(ncp, np.maximum(df, 1.0), alpha)
    return np.where(w > 0, (1 - rate) * pooled + rate * own, plain)


def detectable_difference(n, n_baseline, *, sd, sd_baseline=None, prior_df=0.0, prior_df_baseline=0.0,
                          alpha: float = 0.05, power: float = 0.8, flag_rate: float = 0.0):
    """The smallest ``|difference|`` :func:`comparison_power` detects with probability ``power``."""
    _check_unit_interval("power", power)
    kw = dict(sd=sd, sd_baseline=sd_baseline, prior_df=prior_df, prior_df_baseline=prior_df_baseline)
    se, df = comparison_se_df(n, n_baseline, **kw)
    se, df = np.broadcast_arrays(np.asarray(se, dtype=float), np.asarray(df, dtype=float))
    valid = np.isfinite(se) & (se > 0) & np.isfinite(df) & (df >= 1)
    unit = np.where(valid, se, 1.0)

    def pw(delta):
        return np.where(valid, comparison_power(delta * unit, n, n_baseline, alpha=alpha, flag_rate=flag_rate, **kw),
                        1.0)

    lo, hi = np.zeros(se.shape), np.full(se.shape, 1.0)
    for _ in range(60):
        short = pw(hi) < power
        if not short.any():
            break
        hi = np.where(short, hi * 2, hi)
    while np.any(hi - lo > 1e-10 * hi):
        mid = (lo + hi) / 2
        good = pw(mid) >= power
        hi, lo = np.where(good, mid, hi), np.where(good, lo, mid)
    return _scalar(np.where(valid, hi * unit, np.nan))


def _expected(power_at, sd_df, shape):
    """``power_at(f)`` averaged over the factor ``f = sigma / sd`` of a spread estimated on ``sd_df`` df.

    ``sigma^2 = sd^2 sd_df / chi2(sd_df)`` at :data:`_ASSURANCE_POINTS`; ``sd_df=None`` (or infinite)
    takes the estimate as the truth (``f = 1``).
    """
    if sd_df is None:
        return power_at(np.ones(shape))
    dfs = np.broadcast_to(np.asarray(sd_df, dtype=float), shape)
    finite = np.isfinite(dfs) & (dfs > 0)
    safe = np.where(finite, dfs, 1.0)
    return _mean_over_points(lambda q: power_at(np.where(finite, np.sqrt(safe / _special.chdtri(safe, 1 - q)), 1.0)),
                             len(shape))


def _spreads(sd, sd_baseline):
    """The baseline's spread (default: the variant's) and where the two allow a test: finite, not negative,
    and not both 0 (a variant without spread is still testable against a baseline that has one)."""
    sd_b = sd if sd_baseline is None else np.broadcast_to(np.asarray(sd_baseline, dtype=float), sd.shape)
    return sd_b, np.isfinite(sd) & (sd >= 0) & np.isfinite(sd_b) & (sd_b >= 0) & ((sd > 0) | (sd_b > 0))


def seeds_to_detect(diff, sd, *, n_baseline: int, alpha: float = 0.05, power: float = 0.8,
                    cap: int = SEEDS_NEEDED_CAP, sd_baseline=None, prior_df=0.0, prior_df_baseline=0.0,
                    flag_rate: float = 0.0, sd_df=None):
    """Seeds a variant needs for its interval to exclude 0 with the given power.

    The smallest ``n`` such that the comparison of a variant with ``n`` runs
    against a baseline with ``max(n_baseline, n)`` runs (the baseline keeps
    the runs it has, and gets at least as many as the variant) detects
    ``|diff|`` at level ``alpha`` (give the family's per-comparison level)
    with probability ``power`` (:func:`comparison_power`).  ``sd`` is the
    variant's seed noise and ``sd_baseline`` the baseline's (default: the
    same); ``prior_df`` and ``prior_df_baseline`` the degrees of freedom
    their moderated spreads carry besides their own runs, ``flag_rate`` as
    in :func:`comparison_power`.  ``sd_df``: the degrees of freedom ``sd``
    is estimated on; given, the power is the one *expected* over what the
    true spread may be (``sigma^2 = sd^2 sd_df / chi2(sd_df)``, 32
    equal-probability points: an assurance, O'Hagan & Stevens 2001), so a
    variant whose spread rests on 3 degrees of freedom is not promised a
    decision its spread may well not allow.  Ignores any gain
    from seed pairing, so it errs on the side of more seeds.  NaN where
    ``diff`` is 0 or an input is not finite; ``cap`` means "at least
    ``cap``".
    """
    _check_unit_interval("power", power)
    diff, sd = np.broadcast_arrays(np.asarray(diff, dtype=float), np.asarray(sd, dtype=float))
    sd_b, testable = _spreads(sd, sd_baseline)
    valid = np.isfinite(diff) & (diff != 0) & testable
    diff_v, sd_v, sd_bv = np.where(valid, diff, 1.0), np.where(valid, sd, 1.0), np.where(valid, sd_b, 1.0)

    def ok(n):
        return _expected(lambda f: comparison_power(diff_v, n, np.maximum(n, n_baseline), sd=sd_v * f,
                                                    sd_baseline=sd_bv, prior_df=prior_df,
                                                    prior_df_baseline=prior_df_baseline, alpha=alpha,
                                                    flag_rate=flag_rate), sd_df, sd.shape) >= power

    return _scalar(np.where(valid, _smallest_n(ok, diff.shape, cap), np.nan))


def equivalence_power(diff, sd, margin, n, n_baseline, *, alpha: float = 0.05, sd_baseline=None, prior_df=0.0,
                      prior_df_baseline=0.0):
    """Probability that the interval at level ``alpha`` lies inside ``+-margin``.

    For a true difference ``diff``, noise ``sd`` (the baseline's:
    ``sd_baseline``, default the same), ``n`` variant runs and ``n_baseline``
    baseline runs: with ``se`` and the degrees of freedom of
    :func:`comparison_se_df` and ``q`` their t quantile, the estimate must
    fall within ``+-(margin - q se)``; normal approximation for the estimate.
    """
    se, df = comparison_se_df(n, n_baseline, sd=sd, sd_baseline=sd_baseline, prior_df=prior_df,
                              prior_df_baseline=prior_df_baseline)
    q = _special.stdtrit(np.maximum(df, 1.0), 1 - alpha / 2)
    half = margin - q * se
    with np.errstate(divide="ignore", invalid="ignore"):
        p = _special.ndtr((half - np.abs(diff)) / se) - _special.ndtr((-half - np.abs(diff)) / se)
    return np.where(half > 0, np.maximum(p, 0.0), 0.0)


def seeds_for_equivalence(diff, sd, margin, *, n_baseline: int, alpha: float = 0.05, power: float = 0.8,
                          cap: int = SEEDS_NEEDED_CAP, sd_baseline=None, prior_df=0.0, prior_df_baseline=0.0,
                          sd_df=None):
    """Seeds a variant needs for its interval to fit inside ``+-margin`` with the given power.

    As :func:`seeds_to_detect` (the baseline at ``max(n_baseline, n)`` runs;
    ``sd_df`` likewise averages over the spread's uncertainty), with
    :func:`equivalence_power`.  NaN where ``|diff| >= margin`` (an effect
    that large is never shown equivalent) or an input is not finite.
    """
    _check_unit_interval("power", power)
    diff, sd = np.broadcast_arrays(np.asarray(diff, dtype=float), np.asarray(sd, dtype=float))
    sd_b, testable = _spreads(sd, sd_baseline)
    valid = np.isfinite(diff) & testable & np.isfinite(margin) & (np.abs(diff) < margin)
    d = np.where(valid, diff, 0.0)
    s = np.where(valid, sd, 1.0)
    sb = np.where(valid, sd_b, 1.0)

    def ok(n):
        return _expected(lambda f: equivalence_power(d, s * f, margin, n, np.maximum(n, n_baseline), alpha=alpha,
                                                     sd_baseline=sb, prior_df=prior_df,
                                                     prior_df_baseline=prior_df_baseline), sd_df, d.shape) >= power

    return _scalar(np.where(valid, _smallest_n(ok, d.shape, cap), np.nan))
