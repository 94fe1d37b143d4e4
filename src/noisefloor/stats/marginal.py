"""Which hyperparameters drive a search: each one's marginal share of the search's spread, with a calibrated null.

A random search gives each config its own value of a continuous
hyperparameter, so no two runs share a level and the one-at-a-time
comparisons (:mod:`noisefloor.stats.importance`) have nothing to compare. Here
each hyperparameter is judged on its own against the search's scores: its
values are grouped into levels (its categories, or quantile bins of a
numeric one), and its *share* is the part of the scores' variance between
those levels (eta squared). Grouping always explains something, even for a
hyperparameter that does nothing, so the share is reported net of what the
same grouping explains when the scores are shuffled (the permutation null),
and its p-value is the permutation test's: a dummy hyperparameter comes out
near 0 and not significant (checked by simulation in the tests).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

#: Quantile bins of a numeric hyperparameter with more distinct values than this.
BINS = 4
MARGINAL_COLUMNS = ("hparam", "n_levels", "n_configs", "share", "null_share", "net_share", "p_value",
                    "net_share_ci_low", "net_share_ci_high", "effect")
#: Bootstrap resamples of the searched configs behind the net share's interval.
N_BOOT = 1000


def _levels(x: pd.Series) -> np.ndarray:
    """Integer level codes: the categories, or ``BINS`` quantile bins of a many-valued number.

    Equal values always share a level (a grid's or the baseline's repeated
    value is one level, never split between bins).
    """
    numeric = pd.to_numeric(x, errors="coerce")
    if numeric.notna().all() and numeric.nunique() > BINS:
        return pd.factorize(pd.qcut(numeric, BINS, labels=False, duplicates="drop"), sort=True)[0]
    return pd.factorize(x.astype(str))[0]


def _eta2(y: np.ndarray, codes: np.ndarray, n_levels: int) -> np.ndarray:
    """Between-level share of the variance of each row of ``y`` (rows: the observed scores and their shuffles)."""
    counts = np.bincount(codes, minlength=n_levels)
    sums = np.stack([np.bincount(codes, weights=row, minlength=n_levels) for row in y])
    centred = y - y.mean(axis=1, keepdims=True)
    total = (centred ** 2).sum(axis=1)
    between = (sums ** 2 / np.maximum(counts, 1)).sum(axis=1) - y.sum(axis=1) ** 2 / y.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, between / total, np.nan)


def _boot_shares(y: np.ndarray, codes: np.ndarray, n_levels: int, rng, n_boot: int) -> np.ndarray:
    """The share over ``n_boot`` resamples of the configs (with replacement, each config keeping its level):
    :func:`_eta2`'s sums, each resample's levels counted in a block of bins of its own."""
    picks = rng.integers(0, len(y), size=(n_boot, len(y)))
    ys, bins = y[picks], (codes[picks] + n_levels * np.arange(n_boot)[:, None]).ravel()
    counts = np.bincount(bins, minlength=n_boot * n_levels).reshape(n_boot, n_levels)
    sums = np.bincount(bins, weights=ys.ravel(), minlength=n_boot * n_levels).reshape(n_boot, n_levels)
    total = ((ys - ys.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    between = (sums ** 2 / np.maximum(counts, 1)).sum(axis=1) - ys.sum(axis=1) ** 2 / ys.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, between / total, np.nan)


def marginal_importance(scores, hparams: Mapping[str, pd.Series | list], *, n_perm: int = 2000,
                        random_state=0, confidence_level: float = 0.95) -> pd.DataFrame:
    """Each hyperparameter's marginal share of ``scores`` (one per searched config), net of chance.

    Parameters
    ----------
    scores : array
        The metric of each searched config (its run at the search seed).
    hparams : mapping of name -> values
        Each hyperparameter's value per config, aligned with ``scores``. One
        that takes a single value is left out.
    n_perm : int
        Shuffles of the scores for the null (the same shuffles for every hyperparameter).

    Returns
    -------
    pandas.DataFrame
        :data:`MARGINAL_COLUMNS`, the largest net share first: ``share``
        (eta squared), ``null_share`` (its mean over shuffles), ``net_share``
        (the difference, floored at 0) with a percentile bootstrap interval over
        the configs (``net_share_ci_low``, ``net_share_ci_high``: the
        resampled shares net of the same null), the permutation ``p_value``,
        and ``effect``: the range of its levels' mean scores (metric units).
    """
    y = np.asarray(scores, dtype=float)
    rng = np.random.default_rng(random_state)
    shuffled = np.stack([y] + [rng.permutation(y) for _ in range(n_perm)])
    rows = []
    for name, values in hparams.items():
        x = pd.Series(list(values))
        if len(x) != len(y) or x.astype(str).nunique() < 2 or len(y) < 3:
            continue
        codes = _levels(x)
        n_levels = int(codes.max()) + 1
        eta = _eta2(shuffled, codes, n_levels)
        observed, null = eta[0], eta[1:]
        if not np.isfinite(observed):       # the scores do not vary: nothing to share out
            continue
        null_share = float(np.nanmean(null))
        boot = _boot_shares(y, codes, n_levels, rng, N_BOOT) - null_share
        a = (1 - confidence_level) / 2
        lo, hi = (np.nanquantile(boot, [a, 1 - a]) if np.isfinite(boot).any() else (np.nan, np.nan))
        means = pd.Series(y).groupby(codes).mean()
        rows.append({"hparam": name, "n_levels": n_levels, "n_configs": len(y), "share": observed,
                     "null_share": null_share, "net_share": max(0.0, observed - null_share),
                     "net_share_ci_low": max(0.0, float(lo)), "net_share_ci_high": max(0.0, float(hi)),
                     "p_value": float((1 + np.sum(null >= observed - 1e-12)) / (1 + n_perm)),
                     "effect": float(means.max() - means.min())})
    table = pd.DataFrame(rows, columns=list(MARGINAL_COLUMNS))
    return table.sort_values("net_share", ascending=False, kind="stable").reset_index(drop=True)
