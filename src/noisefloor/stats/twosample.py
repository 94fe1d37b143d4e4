"""Effect sizes for one variant against the baseline."""

from __future__ import annotations

import math

import numpy as np

from ._core import _check_direction


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
