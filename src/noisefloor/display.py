"""Display conventions shared by the figures and the HTML report.

Both renderers must agree on how a number is written and on which colour
means which verdict, otherwise a reader comparing a figure with the report's
table would be misled. Whether the metric is shown in percent is not decided
here but by the analysis (``Summary.percent``); :class:`Units` carries that
decision to the figures. Nothing here computes statistics.
"""

from __future__ import annotations

import math
from .vocab import Importance, Verdict

#: Colour per comparison verdict (colour-blind friendly enough to tell apart,
#: and the usual green = good, red = bad reading).
VERDICT_COLORS = {
    Verdict.BETTER: "#1a9641",
    Verdict.WORSE: "#d7191c",
    Verdict.EQUIVALENT: "#2b83ba",
    Verdict.INCONCLUSIVE: "#7f7f7f",
    Verdict.INSUFFICIENT_RUNS: "#b8860b",
    # hyperparameter importance: one that matters takes the colour of its direction (importance_color);
    # this dark grey is for one that matters both ways, or over all runs (no baseline to be better than)
    Importance.MATTERS: "#404040",
    Importance.NEGLIGIBLE: "#2b83ba",
}

#: Plain-words label per verdict.
VERDICT_LABELS = {
    Verdict.BETTER: "better",
    Verdict.WORSE: "worse",
    Verdict.EQUIVALENT: "equivalent",
    Verdict.INCONCLUSIVE: "inconclusive",
    Verdict.INSUFFICIENT_RUNS: "too few runs",
    Importance.MATTERS: "matters",
    Importance.NEGLIGIBLE: "negligible",
}

#: What each verdict means, in one line (the report's legend).
VERDICT_MEANINGS = {
    Verdict.BETTER: "the whole simultaneous interval lies on the better side of 0",
    Verdict.WORSE: "the whole simultaneous interval lies on the worse side of 0",
    Verdict.EQUIVALENT: "the whole interval lies within ± the equivalence margin: any effect is smaller than that",
    Verdict.INCONCLUSIVE: "neither: the interval holds 0 and reaches past the margin; more seeds would decide",
    Verdict.INSUFFICIENT_RUNS: "fewer than two usable runs: no interval",
}

#: The spending functions of an adaptive experiment, in prose.
SPENDING_NAMES = {"obrien_fleming": "O'Brien-Fleming-type", "pocock": "Pocock-type"}

#: How an adaptive experiment's variant stopped, in words (the report's table and `noisefloor plan`); the
#: fields are its look's (:class:`noisefloor.summary.Look`, ``summary.adaptive.configs[name]``).
STOPPED_WORDS = {
    "decided": "round {round}",
    "futile": "stopped in round {round}: the cap would not decide it",
    "cap": "at the cap ({n} seeds)",
    "budget": "stopped in round {round}: the run budget",
    "open": "open after round {round}",
}


def stopped_words(look) -> str:
    """An adaptive variant's stop in words (:data:`STOPPED_WORDS`), from its :class:`~noisefloor.summary.Look`."""
    return STOPPED_WORDS[look.stopped].format(round=look.round, n=look.n)


#: Colour used for the baseline wherever it is drawn (not a verdict's colour).
BASELINE_COLOR = "#5e3c99"
#: Colour of a search (its configs, its expected-best curve) wherever it is drawn.
SEARCH_COLOR = "#d95f02"
#: Colours that only tell seeds or configs apart: none is a verdict's, the baseline's or the search's
#: (a test holds the figures to that), so a seed drawn green never reads as "better".
NEUTRAL_PALETTE = ("#8c564b", "#e377c2", "#bcbd22", "#17becf", "#393b79", "#c49c94", "#9edae5", "#dbdb8d")
#: The colours that carry a meaning: a verdict, the baseline, the search.
MEANING_COLORS = (*(VERDICT_COLORS[v] for v in Verdict), BASELINE_COLOR, SEARCH_COLOR)

_FALLBACK_COLOR = "#404040"


def verdict_color(verdict) -> str:
    """Return the display colour for ``verdict`` (dark grey if unknown)."""
    return VERDICT_COLORS.get(str(verdict), _FALLBACK_COLOR)


def _one_way(verdict, direction) -> Verdict | None:
    """The direction a hyperparameter that matters one way matters in (better or worse), else None."""
    if str(verdict) == Importance.MATTERS and str(direction) in (Verdict.BETTER, Verdict.WORSE):
        return Verdict(str(direction))
    return None


def importance_color(verdict, direction=None) -> str:
    """A hyperparameter's colour: the direction of its verdict when it matters one way (better: green, worse:
    red), else its verdict's (negligible: blue as equivalent, inconclusive: grey)."""
    way = _one_way(verdict, direction)
    return VERDICT_COLORS[way] if way is not None else verdict_color(verdict)


def importance_label(verdict, direction=None) -> str:
    """A hyperparameter's verdict in words, with its direction when it matters one way (``matters (better)``)."""
    way = _one_way(verdict, direction)
    return verdict_label(verdict) + (f" ({way})" if way is not None else "")


def verdict_label(verdict) -> str:
    """Return the plain-words label for ``verdict`` (the raw value if unknown)."""
    if verdict is None or (isinstance(verdict, float) and math.isnan(verdict)):
        return "no verdict"
    return VERDICT_LABELS.get(str(verdict), str(verdict).replace("_", " "))


def same_config_words(names, baseline: str) -> str:
    """Configs that are one config under several names, in words (``wd_0 is the baseline under another name``)."""
    names = [str(n) for n in names]
    if baseline in names:
        others = [n for n in names if n != baseline]
        return f"{' and '.join(others)} {'is' if len(others) == 1 else 'are'} the baseline under another name"
    return f"{' and '.join(names)} are one config under {len(names)} names"


def parts_words(adds_up: str) -> str:
    """Whether a noise budget's parts add up, as a clause (``summary.noise_sources_adds_up`` in words)."""
    return ("cannot tell yet whether the parts add up" if adds_up == "cannot tell"
            else f"the parts {adds_up}")


_CORRECTION_NAMES = {
    "sidak": "Šidák",
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


def is_missing(value) -> bool:
    """Return True for None, NaN and other values that cannot be shown as a number."""
    if value is None:
        return True
    try:
        return not math.isfinite(float(value))
    except (TypeError, ValueError):
        return True


# --------------------------------------------------------------------------
# numbers: one formatting for the CLI, the report and the figures
# --------------------------------------------------------------------------


def _decimals_for(value: float, digits: int = 3) -> int:
    """Decimals that show about ``digits`` significant digits of ``value``."""
    if value == 0 or not math.isfinite(value):
        return digits - 1
    return int(min(8, max(0, digits - 1 - math.floor(math.log10(abs(value))))))


def _fmt_fixed(value: float, decimals: int, signed: bool) -> str:
    text = f"{value:.{decimals}f}"
    if float(text) == 0.0:
        # Never print "-0.00" (or "+0.00" for a value that rounds to nothing).
        return f"{0.0:.{decimals}f}"
    if signed and value > 0:
        return "+" + text
    return text


def shared_decimals(*values) -> int:
    """Decimals giving about three significant digits to the largest of ``values``."""
    finite = [abs(float(v)) for v in values if not is_missing(v) and float(v) != 0.0]
    return _decimals_for(max(finite)) if finite else 2


def format_number(value, fraction: bool, *, signed: bool = False, decimals: int | None = None) -> str:
    """A metric-scale number in display units (percent for fractions), without a unit suffix."""
    if is_missing(value):
        return "n/a"
    v = float(value)
    if fraction:
        return _fmt_fixed(v * 100.0, 2 if decimals is None else decimals, signed)
    return _fmt_fixed(v, _decimals_for(v) if decimals is None else decimals, signed)


def format_diff(value, fraction: bool, *, signed: bool = True, decimals: int | None = None) -> str:
    """A difference of the metric: ``"+0.41 pp"`` for a fraction, ``"-0.0123"`` otherwise; ``"n/a"`` if missing."""
    text = format_number(value, fraction, signed=signed, decimals=decimals)
    return f"{text} pp" if fraction and text != "n/a" else text


def format_spread(value, fraction: bool) -> str:
    """A standard deviation of the metric (unsigned difference units)."""
    return format_diff(value, fraction, signed=False)


def format_level(value, fraction: bool) -> str:
    """A metric value (not a difference): percent for fractions."""
    text = format_number(value, fraction)
    return f"{text} %" if fraction and text != "n/a" else text


def format_variance(value, fraction: bool) -> str:
    """A variance: pp² for fractions, metric units² otherwise."""
    if is_missing(value):
        return "n/a"
    v = float(value) * (1e4 if fraction else 1.0)
    text = _fmt_fixed(v, _decimals_for(v), False)
    return f"{text} pp²" if fraction else text


def format_plain(value, digits: int = 3) -> str:
    """A unitless statistic with about ``digits`` significant digits."""
    if is_missing(value):
        return "n/a"
    v = float(value)
    return _fmt_fixed(v, _decimals_for(v, digits), False)


def format_p(p) -> str:
    """A p-value: ``"= 0.004"``, ``"< 0.001"`` or ``"n/a"`` (without the "p")."""
    if is_missing(p):
        return "n/a"
    p = float(p)
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def format_interval(low, high, fraction: bool, *, decimals: int | None = None) -> str:
    """``"0.35 to 5.65"`` in display units (no unit suffix); ``"n/a"`` if either end is missing."""
    if is_missing(low) or is_missing(high):
        return "n/a"
    d = decimals if decimals is not None else (2 if fraction else shared_decimals(low, high))
    return f"{format_number(low, fraction, decimals=d)} to {format_number(high, fraction, decimals=d)}"


def format_share(value) -> str:
    """A share in [0, 1] as a percentage (``"67 %"``)."""
    return "n/a" if is_missing(value) else f"{float(value) * 100:.0f} %"


class Units:
    """How a figure writes the metric: the analysis' decision (``Summary.percent``) as scale and labels.

    Parameters
    ----------
    metric : str
        The metric's name (axis labels).
    percent : bool
        ``Summary.percent``: values in percent, differences and spreads in
        percentage points; otherwise the metric's own units.
    """

    def __init__(self, metric: str | None, percent: bool):
        self.metric = str(metric or "metric").replace("$", r"\$")
        self.fraction = bool(percent)
        self.scale = 100.0 if self.fraction else 1.0

    @classmethod
    def of(cls, summary) -> "Units":
        """The units of an analysis' summary."""
        return cls(summary.metric, summary.percent)

    def axis_label(self, what: str | None = None) -> str:
        base = what or self.metric
        return f"{base} (%)" if self.fraction else base

    def diff_axis_label(self, what: str) -> str:
        return f"{what} (percentage points)" if self.fraction else f"{what} ({self.metric} units)"

    def fmt_spread(self, value) -> str:
        """A spread or an unsigned difference, with its unit (:func:`format_spread`)."""
        return format_spread(value, self.fraction)


#: A search's single-run configs shown (in the verdict table, the differences figure) before the rest fold away.
SINGLE_RUNS_SHOWN = 5


def fold_single_runs(comparisons, direction: str = "max"):
    """``(shown, folded)``: every single-run config beyond the best :data:`SINGLE_RUNS_SHOWN` folded away.

    One run has no interval and no verdict; a search has many such configs.
    "The best" are those with the best difference in ``direction``; every
    renderer folds through here, so the table and the figure show the same
    configs. Nothing is folded unless at least two rows would be; ``shown``
    keeps the order it was given.
    """
    if not len(comparisons):
        return comparisons, comparisons.iloc[:0]
    import pandas as pd

    single = comparisons[(comparisons["n"] <= 1) & (comparisons["verdict"] == Verdict.INSUFFICIENT_RUNS)]
    sign = -1.0 if direction == "min" else 1.0
    best_first = single.assign(_k=sign * pd.to_numeric(single["diff"], errors="coerce")) \
        .sort_values("_k", ascending=False, na_position="last", kind="stable")
    folded = best_first.iloc[SINGLE_RUNS_SHOWN:] if len(single) > SINGLE_RUNS_SHOWN + 1 else single.iloc[:0]
    return comparisons.drop(index=folded.index), comparisons.loc[folded.index]
