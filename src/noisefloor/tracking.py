"""The headline numbers of an analysis, flat, for experiment trackers.

``summary.json`` holds everything the report needs (intervals as lists,
counts by reason as mappings, settings as text). Trackers such as
``dvc exp show`` and ``dvc metrics diff`` show one column per key and compare
experiments key by key, so they get a small flat file instead:
:func:`headline_metrics` picks the answer's numbers out of the summary. It is a
pure function of the summary, so the two files can never disagree.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Mapping

from .summary import Summary

# Order = column order in `dvc exp show`: the answer first, then its support.
HEADLINE_KEYS = (
    "noise_floor",          # the baseline's seed-to-seed sd of the metric
    "noise_floor_ci_low",   # its confidence interval
    "noise_floor_ci_high",
    "hp_variance_share",    # share of the fixed-seed spread the hyperparameters explain (0 = nothing)
    "best_config",          # the variant with the best difference from the baseline
    "best_diff",            # its difference from the baseline
    "best_ci_low",          # its simultaneous interval
    "best_ci_high",
    "best_verdict",         # better / worse / equivalent / inconclusive
    "verdicts",             # the counts in words, e.g. "1 better, 2 inconclusive" (one column in `dvc exp show`)
    "n_better",             # verdict counts (simultaneous intervals over the variants)
    "n_worse",
    "n_equivalent",
    "n_inconclusive",
    "n_insufficient_runs",
    "n_runs",               # runs analysed (after exclusions)
)

#: Headline numbers in the metric's units: rounded to a thousandth of the noise floor's magnitude.
_METRIC_UNITS = ("noise_floor", "noise_floor_ci_low", "noise_floor_ci_high", "best_diff", "best_ci_low",
                 "best_ci_high")
#: Shares, rounded to 0.001.
_SHARES = ("hp_variance_share",)


def _plain(value: Any) -> Any:
    """A JSON scalar: numbers and text kept, missing or non-finite values as None.

    NumPy scalars become Python ones (the summary may come straight from the
    analysis, before its JSON round trip).
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)           # a vocabulary word (noisefloor.vocab) as its plain value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value) if math.isfinite(value) else None
    return None


def _ends(pair) -> list:
    """An interval's two ends (None for a missing one)."""
    return (list(pair or []) + [None, None])[:2]


def headline_metrics(summary: Summary | Mapping[str, Any]) -> dict[str, Any]:
    """The flat headline of an analysis summary.

    Parameters
    ----------
    summary : Summary or mapping
        The analysis summary (:class:`noisefloor.summary.Summary`) or the
        content of ``summary.json`` (read with ``Summary.from_dict``).

    Returns
    -------
    dict
        One scalar per key of :data:`HEADLINE_KEYS` (None where the summary
        has no value), plus ``metric``: the name of the compared column, so a
        table of experiments says what the numbers measure. Numbers in the
        metric's units are rounded to a thousandth of the noise floor's
        order of magnitude (four significant digits of the noise floor),
        shares to 0.001.
    """
    s = summary if isinstance(summary, Summary) else Summary.from_dict(summary)
    # The intervals unfolded into their ends and the counts in words; every other key is a field of the summary.
    counted = any(n is not None for n in s.verdict_counts().values())
    derived = {**dict(zip(("noise_floor_ci_low", "noise_floor_ci_high"), _ends(s.noise_floor_ci))),
               **dict(zip(("best_ci_low", "best_ci_high"), _ends(s.best_ci))),
               "verdicts": s.verdict_counts_text() if counted else None}
    out = {"metric": _plain(s.metric)}
    out.update({key: _plain(derived[key] if key in derived else getattr(s, key)) for key in HEADLINE_KEYS})
    # Every number to what it can mean: a difference of 2.8e-17 is 0.
    floor = out.get("noise_floor")
    decimals = 2 - math.floor(math.log10(floor)) + 1 if floor else 6
    for key in _METRIC_UNITS:
        if isinstance(out[key], float):
            out[key] = round(out[key], decimals) + 0.0       # + 0.0: no "-0.0"
    for key in _SHARES:
        if isinstance(out[key], float):
            out[key] = round(out[key], 3)
    return out
