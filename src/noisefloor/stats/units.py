"""How the metric is shown, decided once per analysis (``Summary.percent``), and what kind of number it is.

Every renderer (the CLI's answer line, the report, each figure, the tracker
file) reads ``Summary.percent``; none looks at the metric's values again.
Before this decision was stored, renderers judged from different numbers
and disagreed: a BLEU score (mean 25, noise floor 0.4) was "40.00 pp" where
only the noise floor was looked at, and "0.400" where the means were.
"""

from __future__ import annotations

import numpy as np


def in_percent(metric: str, values) -> bool:
    """Whether ``metric`` is a fraction in [0, 1], shown in percent (differences in percentage points).

    Parameters
    ----------
    metric : str
        The metric's name. A loss is never shown in percent, even when its
        values happen to lie in [0, 1].
    values : array_like
        Every analysed run's value of the metric (non-finite ones ignored).

    Returns
    -------
    bool
        True when no ``loss`` is in the name and every finite value lies in
        [0, 1]; with no finite value, when the name says accuracy, F1, AUC,
        precision or recall.
    """
    name = (metric or "").lower()
    if "loss" in name:
        return False
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    if v.size:
        return bool(np.all((v >= 0.0) & (v <= 1.0)))
    return any(key in name for key in ("acc", "f1", "auc", "precision", "recall"))


def is_proportion(metric: str, values) -> bool:
    """An accuracy: a share of evaluated examples in [0, 1], whose binomial sampling error is defined."""
    name = (metric or "").lower()
    v = np.asarray(values, dtype=float)
    return "acc" in name and "loss" not in name and bool(np.all((v >= 0) & (v <= 1)))
