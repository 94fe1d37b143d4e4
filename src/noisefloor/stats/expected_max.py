"""Expected best score against the number of trials (Dodge et al., 2019, "Show Your Work").

A search of N configs ran once; what would a search of n <= N trials have
found? The expected maximum of n draws (with replacement) from the N observed
scores answers it without rerunning anything:

    E[max of n] = sum_i v_(i) * ((i / N)^n - ((i - 1) / N)^n),   v_(1) <= ... <= v_(N).

Beside the search's curve, the same curve for the noise condition (the
baseline under N seeds) shows what re-rolling the seed alone would have found:
a search pays only where its curve rises above that one. The curve flattens
as n grows; :func:`trials_worth` is the number of trials after which the
expected best gains less than the noise floor over the whole search's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def expected_max(values, n_max: int | None = None, *, direction: str = "max", at=None) -> np.ndarray:
    """The expected best of n draws from ``values``, for n = 1 .. ``n_max`` (default: len(values)).

    ``direction="min"`` gives the expected best when smaller is better (the
    expected minimum). ``at``: only these n (a figure of a large search needs
    a few dozen points, not every n).
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    n = np.arange(1, (n_max or v.size) + 1) if at is None else np.asarray(at)
    if v.size == 0:
        return np.full(len(n), np.nan)
    sign = 1.0 if direction == "max" else -1.0
    v = np.sort(sign * v)
    big_n = v.size
    i = np.arange(1, big_n + 1)[None, :]
    weights = (i / big_n) ** n[:, None] - ((i - 1) / big_n) ** n[:, None]
    return sign * (weights @ v)


@dataclass(frozen=True)
class ExpectedMaxCurve:
    """The expected best against the number of trials, with a bootstrap band.

    Attributes
    ----------
    n : array of int
        Trials, 1 .. N.
    estimate, low, high : arrays
        The curve and its percentile bootstrap band (resampling the observed scores).
    """

    n: np.ndarray
    estimate: np.ndarray
    low: np.ndarray
    high: np.ndarray


#: Beyond this many trials a curve is drawn at about this many log-spaced n.
CURVE_POINTS = 80


def expected_max_curve(values, *, direction: str = "max", level: float = 0.95, n_boot: int = 1000,
                       random_state=0) -> ExpectedMaxCurve:
    """:func:`expected_max` over n = 1 .. N, with a percentile bootstrap band at ``level``.

    With more than :data:`CURVE_POINTS` trials the curve is evaluated at
    log-spaced n (1 and N included): the same values where it is drawn, at a
    fraction of the cost (1,000 trials: seconds instead of minutes).
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    n = np.arange(1, v.size + 1)
    if v.size > CURVE_POINTS:
        n = np.unique(np.round(np.geomspace(1, v.size, CURVE_POINTS)).astype(int))
    estimate = expected_max(v, direction=direction, at=n)
    rng = np.random.default_rng(random_state)
    if v.size < 2:
        return ExpectedMaxCurve(n, estimate, estimate.copy(), estimate.copy())
    boots = np.stack([expected_max(rng.choice(v, size=v.size), direction=direction, at=n) for _ in range(n_boot)])
    tail = (1 - level) / 2
    return ExpectedMaxCurve(n, estimate, np.quantile(boots, tail, axis=0), np.quantile(boots, 1 - tail, axis=0))


def trials_worth(curve, noise_floor: float | None) -> int | None:
    """The fewest trials whose expected best is within one noise floor of the whole search's.

    Beyond it, each further trial is expected to gain less than seed noise
    moves a single run. None when the noise floor is unknown or the curve is empty.
    """
    curve = np.asarray(curve, dtype=float)
    if curve.size == 0 or noise_floor is None or not math.isfinite(noise_floor):
        return None
    gap = np.abs(curve[-1] - curve)
    return int(np.flatnonzero(gap <= noise_floor)[0]) + 1


#: A search is at least this many configs with one run each.
MIN_SEARCH = 3


def search_sample(values, configs, seeds, baseline=None) -> tuple[object, np.ndarray, np.ndarray]:
    """The search as observed: the configs with one run each, at the seed they share, and the baseline there.

    The signal condition of the reference design is many configs at one
    fixed seed, one run each. Configs with several runs are compared by the
    verdicts, not here: an experiment of a few variants at several seeds has
    no search. Returns (seed, configs, scores), the seed being the one most
    single-run configs ran at (the first among ties); (None, empty, empty)
    with fewer than :data:`MIN_SEARCH` single-run configs.
    """
    v = np.asarray(values, dtype=float)
    configs, seeds = np.asarray(configs, dtype=object), np.asarray(seeds, dtype=object)
    names, counts = np.unique(configs.astype(str), return_counts=True)
    single = set(names[counts == 1]) - {str(baseline)}
    is_single = np.array([str(c) in single for c in configs], dtype=bool)
    if is_single.sum() < MIN_SEARCH:
        return None, np.array([], dtype=object), np.array([])
    order = list(dict.fromkeys(seeds[is_single].tolist()))
    busiest = max(order, key=lambda s: int(np.sum(is_single & (seeds == s))))
    at = (seeds == busiest) & (is_single | (configs.astype(str) == str(baseline)))
    # one score per config at that seed (the first, should a table repeat a run)
    _, first = np.unique(configs[at].astype(str), return_index=True)
    first = np.sort(first)
    return busiest, configs[at][first], v[at][first]
