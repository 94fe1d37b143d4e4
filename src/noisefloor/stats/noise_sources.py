"""Where the noise comes from: the baseline's seed noise split by source.

The decomposition runs the baseline with one source of randomness varying
(its seed changing from run to run) and every other source held at a
reference seed, once per source, plus all the sources varying together.
Each source's runs give the standard deviation that source causes on its
own; the runs with all of them give the whole.

- **Each source alone**: the sample standard deviation of its runs, with the
  noise floor's interval (Bonett's, which holds when the noise is not normal).
- **Its share**: its variance over the all-sources variance, with the
  F interval of a ratio of two independent sample variances.
- **Do the parts add up?** Independent sources that act additively give
  ``sum(var_k) == var_all``. The ratio ``sum(var_k) / var_all`` is checked
  against 1 with an F interval whose numerator degrees of freedom are
  Welch-Satterthwaite's for a sum of variances. Training is chaotic, so a
  single source often moves a run about as much as all of them together
  (the ratio well above 1): the parts then overlap, and each share says how
  much that source can cause alone, not a slice of a whole. A ratio well
  below 1 means the sources interact or some randomness is not in the list.

References: Bouthillier et al. (2021), "Accounting for Variance in Machine
Learning Benchmarks" (the data sample often dominates); Summers & Dinneen
(2021), "Nondeterminism and Instability in Neural Network Optimization"
(any single source can produce nearly the whole variance).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from scipy import stats as _sps

from ._core import _check_unit_interval
from .variance import noise_floor

#: The name of the runs with every source varying at once.
ALL = "all"
#: "The parts add up" is said only when the ratio's interval lies within this range: the summed parts
#: are then within a factor of 2 of the whole. A wider interval that holds 1 cannot tell yet.
ADDS_UP_WITHIN = (0.5, 2.0)


@dataclass(frozen=True)
class SourceNoise:
    """One source's noise on its own (or, for :data:`ALL`, every source together)."""

    source: str
    n: int
    sd: float
    sd_ci: tuple[float, float]
    share: float | None            # var / var_all (None for ALL itself)
    share_ci: tuple[float, float] | None


@dataclass(frozen=True)
class NoiseBudget:
    """The decomposition: each source's noise, the whole, and whether the parts add up.

    Attributes
    ----------
    sources : list of SourceNoise
        Each source in the order given, then :data:`ALL` when it ran.
    sum_ratio : float or None
        ``sum(var_k) / var_all``: 1 when the parts add up.
    sum_ratio_ci : (float, float) or None
    adds_up : str or None
        ``"add up"`` (the interval holds 1 and lies within
        :data:`ADDS_UP_WITHIN`), ``"overlap"`` (the parts sum to more than the
        whole), ``"fall short"`` (to less), ``"cannot tell"`` (the interval
        holds 1 but is too wide to say), None without the all-sources runs.
    seeds_to_tell : int or None
        With ``"cannot tell"``: about how many seeds per source (and for all
        together) would tell, were the ratio what it is now.
    largest : str or None
        The source with the largest standard deviation.
    largest_clear : bool or None
        Whether its variance is larger than the runner-up's beyond chance
        (two-sided F test of the top two at ``1 - confidence_level``; with
        more than two sources, picking the top two makes it conservative).
    """

    sources: list
    sum_ratio: float | None
    sum_ratio_ci: tuple[float, float] | None
    adds_up: str | None
    largest: str | None
    largest_clear: bool | None
    seeds_to_tell: int | None = None


def _sd(values, confidence_level):
    v = np.asarray(values, dtype=float)
    if v.size < 2:
        return math.nan, (math.nan, math.nan), math.nan, 0
    nf = noise_floor(v)
    ci = nf.confidence_interval(confidence_level)
    return nf.std, (ci.low, ci.high), nf.variance, nf.df


def _ratio_ci(ratio: float, df_num: float, df_den: float, confidence_level: float) -> tuple[float, float]:
    """Interval of a ratio of two independent variance estimates (``ratio / F`` quantiles)."""
    if not (math.isfinite(ratio) and df_num > 0 and df_den > 0):
        return math.nan, math.nan
    a = 1.0 - confidence_level
    return (ratio / _sps.f.ppf(1 - a / 2, df_num, df_den), ratio / _sps.f.ppf(a / 2, df_num, df_den))


def noise_budget(runs: Mapping[str, Sequence[float]], *, confidence_level: float = 0.95,
                 outside: Sequence[str] = ("numeric",)) -> NoiseBudget:
    """The noise each source causes alone, its share of the whole, and whether the parts add up.

    Parameters
    ----------
    runs : mapping of source -> values
        The metric of each decomposition run, by the source that varied
        (:data:`ALL` for the runs with every source varying).
    confidence_level : float
    outside : sequence of str
        Sources measured but not among those the :data:`ALL` runs vary (the
        numeric noise of non-deterministic kernels): their noise is reported,
        not shared out of the whole nor summed with the parts.

    Returns
    -------
    NoiseBudget
    """
    _check_unit_interval("confidence_level", confidence_level)
    whole = runs.get(ALL)
    sd_all, ci_all, var_all, df_all = _sd(whole if whole is not None else [], confidence_level)
    rows, parts = [], []
    for source, values in runs.items():
        if source == ALL:
            continue
        sd, ci, var, df = _sd(values, confidence_level)
        share = share_ci = None
        if source in outside:
            rows.append(SourceNoise(source, int(len(values)), sd, ci, None, None))
            continue
        if whole is not None and var_all > 0 and math.isfinite(var):
            share = var / var_all
            share_ci = _ratio_ci(share, df, df_all, confidence_level)
        rows.append(SourceNoise(source, int(len(values)), sd, ci, share, share_ci))
        if df:
            parts.append((source, var, df))
    if whole is not None:
        rows.append(SourceNoise(ALL, int(len(whole)), sd_all, ci_all, None, None))

    ratio = ratio_ci = adds = seeds_to_tell = None
    if whole is not None and parts and var_all > 0:
        total = sum(v for _, v, _ in parts)
        ratio = total / var_all
        # Welch-Satterthwaite: the degrees of freedom of a sum of independent variance estimates
        denom = sum(v * v / df for _, v, df in parts)
        df_sum = total * total / denom if denom > 0 else math.nan
        ratio_ci = _ratio_ci(ratio, df_sum, df_all, confidence_level)
        if all(map(math.isfinite, ratio_ci)):      # (no interval when no part varies at all)
            adds = _adds_up(ratio_ci)
            if adds == "cannot tell":
                seeds_to_tell = _seeds_to_tell(ratio, df_sum, df_all, confidence_level)

    largest = clear = None
    ranked = sorted(((v, s, df) for s, v, df in parts), key=lambda t: -t[0])
    if ranked and ranked[0][0] > 0:            # (no source varies: none is the largest)
        largest = ranked[0][1]
        if len(ranked) > 1 and ranked[1][0] > 0:
            (v1, _, d1), (v2, _, d2) = ranked[0], ranked[1]
            p = 2 * min(_sps.f.sf(v1 / v2, d1, d2), _sps.f.cdf(v1 / v2, d1, d2))
            clear = bool(p < 1 - confidence_level)
        elif len(ranked) > 1:
            clear = True                       # the runner-up does not vary at all
    return NoiseBudget(rows, ratio, ratio_ci, adds, largest, clear, seeds_to_tell)


def _adds_up(ratio_ci) -> str:
    lo, hi = ratio_ci
    if lo > 1:
        return "overlap"
    if hi < 1:
        return "fall short"
    return "add up" if ADDS_UP_WITHIN[0] <= lo and hi <= ADDS_UP_WITHIN[1] else "cannot tell"


def _seeds_to_tell(ratio: float, df_sum: float, df_all: float, confidence_level: float,
                   most: int = 1000) -> int | None:
    """Seeds per source at which the ratio's interval, at the ratio observed, would no longer be "cannot tell".

    Every degree of freedom grows with the seeds as it does now (df_sum in
    proportion to df_all = seeds - 1). None when even ``most`` seeds would not.
    """
    per = df_sum / df_all
    for n in range(int(df_all) + 2, most + 1):
        if _adds_up(_ratio_ci(ratio, per * (n - 1), n - 1, confidence_level)) != "cannot tell":
            return n
    return None
