"""Display conventions shared by the figures and the HTML report.

Both renderers must agree on when a metric is shown in percent, and on which
colour means which verdict, otherwise a reader comparing a figure with the
report's table would be misled. Nothing here computes statistics.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

#: Colour per comparison verdict (colour-blind friendly enough to tell apart,
#: and the usual green = good, red = bad reading).
VERDICT_COLORS = {
    "better": "#1a9641",
    "worse": "#d7191c",
    "within_noise": "#7f7f7f",
    "insufficient_runs": "#b8860b",
}

#: Plain-words label per verdict.
VERDICT_LABELS = {
    "better": "better",
    "worse": "worse",
    "within_noise": "within noise",
    "insufficient_runs": "too few runs",
}

#: Colour used for the baseline wherever it is drawn.
BASELINE_COLOR = "#2c7bb6"

_FALLBACK_COLOR = "#404040"


def verdict_color(verdict) -> str:
    """Return the display colour for ``verdict`` (dark grey if unknown)."""
    return VERDICT_COLORS.get(str(verdict), _FALLBACK_COLOR)


def verdict_label(verdict) -> str:
    """Return the plain-words label for ``verdict`` (the raw value if unknown)."""
    if verdict is None or (isinstance(verdict, float) and math.isnan(verdict)):
        return "no verdict"
    return VERDICT_LABELS.get(str(verdict), str(verdict).replace("_", " "))


_CORRECTION_NAMES = {
    "holm": "Holm",
    "bonferroni": "Bonferroni",
    "fdr_bh": "BH",
    "bh": "BH",
    "fdr": "BH",
    "benjamini-hochberg": "BH",
    "hochberg": "Hochberg",
    "none": "unadjusted",
    "": "unadjusted",
}


def correction_name(correction) -> str:
    """Display name of a multiple-comparison correction (``"holm"`` -> ``"Holm"``)."""
    if correction is None or (isinstance(correction, float) and math.isnan(correction)):
        return "unadjusted"
    key = str(correction).strip().lower()
    return _CORRECTION_NAMES.get(key, str(correction))


def metric_is_fraction(metric: str | None, values: Iterable | None = None) -> bool:
    """Decide whether ``metric`` is a fraction in [0, 1] that should be shown in percent.

    Parameters
    ----------
    metric : str or None
        Metric name, e.g. ``"val_acc"``. Losses are never treated as fractions,
        even when their values happen to lie in [0, 1].
    values : iterable of float, optional
        Observed values of the metric (means, per-run values, ...). When given,
        every finite value must lie in [0, 1].

    Returns
    -------
    bool
        True when the metric should be displayed in percent (differences in
        percentage points).
    """
    name = (metric or "").lower()
    if "loss" in name:
        return False
    if values is not None:
        arr = np.asarray(list(values), dtype=float).ravel()
        arr = arr[np.isfinite(arr)]
        if arr.size:
            return bool(np.all((arr >= 0.0) & (arr <= 1.0)))
    # No data to look at: fall back to the name.
    return any(key in name for key in ("acc", "f1", "auc", "precision", "recall"))


def is_missing(value) -> bool:
    """Return True for None, NaN and other values that cannot be shown as a number."""
    if value is None:
        return True
    try:
        return not math.isfinite(float(value))
    except (TypeError, ValueError):
        return True
