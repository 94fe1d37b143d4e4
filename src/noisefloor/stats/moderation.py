"""Each config's spread, moderated across configs (empirical Bayes).

A variant run at 4 seeds has a variance estimated from 3 degrees of
freedom: a test built on it alone needs a t critical value near 5 at the
per-comparison level of a family of four, and detects only large
differences.  Pooling every config's variance (Dunnett's test) buys the
degrees of freedom back but breaks when one config is much noisier than the
rest (a high learning rate), because its spread is then taken for the pool's.

Moderation is the middle way (Smyth 2004, limma's moderated t): the configs'
variances are modelled as drawn from a scaled inverse chi-square prior whose
centre ``s0^2`` and weight ``d0`` (its degrees of freedom) are estimated from
all configs by the method of moments on ``log s^2``.  Each config's posterior
variance is ``(d0 s0^2 + d s^2) / (d0 + d)`` on ``d0 + d`` degrees of
freedom: equal spreads pool (``d0`` large), unequal ones hardly do (``d0``
small).  Two guards make it hold in the small families a sweep has, where
limma assumes thousands of genes:

- the prior is estimated from the configs themselves, so it can carry no more
  information than they have: ``d0`` is capped at the other configs' degrees
  of freedom (full pooling then has the degrees of freedom of Dunnett's pooled
  variance, not those of a variance known without error);
- a config whose own spread is improbably large under the prior fitted
  without it (upper tail probability below :data:`OUTLIER_LEVEL` under
  ``F(d, d0)``) keeps its own variance and degrees of freedom (the role of
  Phipson et al. 2016's robust prior: one very noisy config is not pulled
  towards the others).

The prior is fitted to every config, a flagged one included, and centred as
limma centres it (on the log scale), which runs above the pooled variance
when spreads vary (14 % with 5 configs at 4 runs): both make the others'
intervals wider when one config is noisy, and both are part of what holds
the family's level then.  Measured with one variant 3x as noisy: the prior
fitted without the flagged config gave a family-wise error of 0.10; centred
on the pooled variance, 0.064 (docs/design.md).

The level was chosen by simulation with known truth (docs/design.md): it
keeps the family-wise error with one variant three times as noisy as the
rest, and costs little power when spreads are equal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special as _special
from scipy import stats as _sps

#: A config whose own variance has upper tail probability below this under the
#: prior fitted without it keeps its own variance (see the module's notes).
OUTLIER_LEVEL = 0.2


@dataclass(frozen=True)
class ModeratedVariances:
    """Posterior variances of a family of configs.

    Attributes
    ----------
    variance, df : numpy.ndarray
        Each config's moderated variance and its degrees of freedom (its own
        ``s^2`` and ``d`` where nothing is pooled).
    raw, raw_df : numpy.ndarray
        The configs' own variances and degrees of freedom.
    prior_variance, prior_df : float
        The fitted prior's centre ``s0^2`` and weight ``d0`` (``inf`` when the
        spreads are as alike as chance allows; before the cap).
    prior_weight : numpy.ndarray
        The prior degrees of freedom each config received (0: its own variance).
    outlying : numpy.ndarray of bool
        Configs that kept their own variance because it is improbably large.
    """

    variance: np.ndarray
    df: np.ndarray
    raw: np.ndarray
    raw_df: np.ndarray
    prior_variance: float
    prior_df: float
    prior_weight: np.ndarray
    outlying: np.ndarray


def _trigamma_inverse(x: float) -> float:
    """``y`` with ``trigamma(y) == x`` (Smyth's Newton iteration, as limma's ``trigammaInverse``)."""
    if x > 1e7:
        return 1.0 / math.sqrt(x)
    if x < 1e-6:
        return 1.0 / x
    y = 0.5 + 1.0 / x
    for _ in range(50):
        tri = float(_special.polygamma(1, y))
        step = tri * (1 - tri / x) / float(_special.polygamma(2, y))
        y += step
        if -step / y < 1e-8:
            break
    return y


def fit_prior(variances, df) -> tuple[float, float]:
    """Centre and degrees of freedom of the scaled inverse chi-square prior (limma's ``fitFDist``).

    Method of moments on ``log s^2``: its mean and variance, less what each
    config's own ``chi^2_d / d`` sampling contributes (``digamma`` and
    ``trigamma`` of ``d/2``).  Variances that are zero or not finite are
    left out.  Returns ``(s0^2, d0)``; ``d0`` is ``inf`` when the spreads vary
    no more than sampling explains, and ``(nan, nan)`` with fewer than two
    usable configs.
    """
    s2 = np.asarray(variances, dtype=float)
    d = np.asarray(df, dtype=float)
    keep = np.isfinite(s2) & (s2 > 0) & np.isfinite(d) & (d > 0)
    s2, d = s2[keep], d[keep]
    if s2.size < 2:
        return math.nan, math.nan
    e = np.log(s2) - _special.digamma(d / 2) + np.log(d / 2)
    mean = float(e.mean())
    excess = float(e.var(ddof=1) - _special.polygamma(1, d / 2).mean())
    if excess <= 0:
        return math.exp(mean), math.inf
    d0 = 2 * _trigamma_inverse(excess)
    return math.exp(mean + _special.digamma(d0 / 2) - math.log(d0 / 2)), d0


def moderate_variances(variances, df, *, outlier_level: float | None = None) -> ModeratedVariances:
    """Moderate each config's variance towards the family's (see the module's notes).

    Parameters
    ----------
    variances, df : array_like
        Each config's sample variance and its degrees of freedom (runs - 1);
        configs without a variance (NaN, or ``df < 1``) are passed through.
    outlier_level : float, optional
        Upper tail probability below which a config keeps its own variance
        (default :data:`OUTLIER_LEVEL`).

    Returns
    -------
    ModeratedVariances
    """
    if outlier_level is None:
        outlier_level = OUTLIER_LEVEL
    s2 = np.asarray(variances, dtype=float)
    d = np.asarray(df, dtype=float)
    usable = np.isfinite(s2) & (s2 >= 0) & np.isfinite(d) & (d >= 1)
    s0, d0 = fit_prior(s2[usable], d[usable])
    weight = np.zeros(s2.shape)
    outlying = np.zeros(s2.shape, dtype=bool)
    if np.isfinite(s0):
        total = float(d[usable & (s2 > 0)].sum())
        for i in np.flatnonzero(usable):
            weight[i] = min(d0, max(total - (d[i] if s2[i] > 0 else 0.0), 0.0))
            if s2[i] > 0 and weight[i] > 0:
                others = usable.copy()
                others[i] = False
                s0_i, d0_i = fit_prior(s2[others], d[others])
                if np.isfinite(s0_i):
                    d0_i = min(d0_i, 1e6)
                    if _sps.f.sf(s2[i] / s0_i, d[i], d0_i) < outlier_level:
                        weight[i], outlying[i] = 0.0, True
    post_df = np.where(usable, d + weight, d)
    with np.errstate(invalid="ignore", divide="ignore"):
        post = np.where(weight > 0, (weight * s0 + d * np.where(usable, s2, 0.0)) / post_df, s2)
    return ModeratedVariances(post, post_df, s2, d, float(s0), float(d0), weight, outlying)
