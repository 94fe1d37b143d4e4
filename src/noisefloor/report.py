"""A single self-contained HTML report for a noisefloor analysis.

The report is one file that can be mailed or archived on its own: figures are
embedded as base64 data URIs, the CSS is inline, and there is no script and
no external resource. Every piece of text that comes from the data (config
names, hyperparameter names, parameters, notes) is HTML-escaped, because
config names are user input.

This module only formats numbers that the statistics module computed; it
does no inference of its own.
"""

from __future__ import annotations

import base64
import math
import os
from html import escape
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd

from .display import (
    BASELINE_COLOR,
    VERDICT_COLORS,
    correction_name,
    is_missing,
    metric_is_fraction,
    verdict_label,
)
from .io import write_text

__all__ = [
    "render_report",
    "variant_sentence",
    "seeds_needed_sentence",
    "format_metric_diff",
    "format_p",
    "correction_name",
    "PLOT_CAPTIONS",
]

#: One-line caption per known plot key; unknown keys get a generic caption.
PLOT_CAPTIONS = {
    "noise_vs_signal": (
        "Noise vs signal. Left: the baseline retrained under many seeds (spread = seed noise). "
        "Right: every config at the shared seeds, lines join runs with the same seed. "
        "Both panels share the y axis, so compare their spreads directly."
    ),
    "config_distributions": (
        "Every run of every config. The shaded band is the baseline mean ± the noise floor; "
        "colours give the verdict (green better, red worse, grey within noise)."
    ),
    "differences": (
        "Difference of each variant from the baseline with its confidence interval. "
        "An interval clear of the shaded ± noise-floor band and of zero is a real effect."
    ),
    "learning_curves": (
        "Learning curves. Left: the baseline under different seeds; right: every config at one seed. "
        "If the right-hand curves fan out no more than the left-hand ones, the configs differ by noise only."
    ),
    "importance": (
        "Variance each hyperparameter explains next to the seed-noise variance; "
        "a ratio above 1 (and a small p) means the hyperparameter matters more than the seed."
    ),
}

_DEFAULT_POWER = 0.8



# --------------------------------------------------------------------------
# number formatting
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


def _shared_decimals(*values) -> int:
    """Decimals giving about three significant digits to the largest of ``values``."""
    finite = [abs(float(v)) for v in values if not is_missing(v) and float(v) != 0.0]
    return _decimals_for(max(finite)) if finite else 2


def _number(value, metric_is_fraction: bool, *, signed: bool = False, decimals: int | None = None) -> str:
    """A metric-scale number in display units, without a unit suffix."""
    if is_missing(value):
        return "n/a"
    v = float(value)
    if metric_is_fraction:
        return _fmt_fixed(v * 100.0, 2 if decimals is None else decimals, signed)
    return _fmt_fixed(v, _decimals_for(v) if decimals is None else decimals, signed)


def format_metric_diff(value, metric_is_fraction: bool, *, signed: bool = True) -> str:
    """Format a difference (or spread) of the metric for display.

    Parameters
    ----------
    value : float or None
        Difference in metric units (a fraction for accuracies).
    metric_is_fraction : bool
        When True the metric lives in [0, 1] and the difference is shown in
        percentage points with two decimals (``0.0041`` -> ``"+0.41 pp"``);
        otherwise it is shown in metric units with about three significant
        digits (``-0.0123`` -> ``"-0.0123"``).
    signed : bool, default True
        Prefix positive values with ``+``. Use False for spreads (std).

    Returns
    -------
    str
        The formatted value, or ``"n/a"`` for None / NaN / inf.
    """
    text = _number(value, metric_is_fraction, signed=signed)
    if text == "n/a":
        return text
    return f"{text} pp" if metric_is_fraction else text


def _spread(value, fraction: bool) -> str:
    return format_metric_diff(value, fraction, signed=False)


def _level(value, fraction: bool) -> str:
    """A metric value (not a difference): percent for fractions."""
    text = _number(value, fraction)
    return f"{text} %" if fraction and text != "n/a" else text


def _variance(value, fraction: bool) -> str:
    """A variance: pp² for fractions, metric units² otherwise."""
    if is_missing(value):
        return "n/a"
    v = float(value) * (1e4 if fraction else 1.0)
    text = _fmt_fixed(v, _decimals_for(v), False)
    return f"{text} pp²" if fraction else text


def _plain(value, digits: int = 3) -> str:
    """A unitless statistic with about ``digits`` significant digits."""
    if is_missing(value):
        return "n/a"
    v = float(value)
    return _fmt_fixed(v, _decimals_for(v, digits), False)


def format_p(p) -> str:
    """Format a p value: ``"= 0.004"``, ``"< 0.001"`` or ``"n/a"`` (without the "p")."""
    if is_missing(p):
        return "n/a"
    p = float(p)
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def _p_cell(p) -> str:
    text = format_p(p)
    return text[2:] if text.startswith("= ") else text


def _confidence_percent(level) -> str:
    if is_missing(level):
        return "95"
    level = float(level)
    return f"{level * 100 if level <= 1 else level:g}"


def _get(row: Mapping | pd.Series, key: str, default=None):
    try:
        value = row[key]
    except (KeyError, IndexError):
        return default
    return default if value is None else value


def _row_fraction(row, summary: Mapping) -> bool:
    """Whether the metric is shown in percent, decided once for the whole report.

    ``render_report`` stores its decision in ``summary["metric_is_fraction"]``;
    a caller formatting a single row falls back to the row's own levels.
    """
    decided = summary.get("metric_is_fraction") if summary else None
    if decided is not None:
        return bool(decided)
    values = [_get(row, "mean"), _get(row, "baseline_mean")]
    values = [v for v in values if not is_missing(v)]
    return metric_is_fraction(summary.get("metric") if summary else None, values or None)


# --------------------------------------------------------------------------
# sentences
# --------------------------------------------------------------------------


def variant_sentence(row: Mapping | pd.Series, summary: Mapping) -> str:
    """One plain sentence stating a variant's difference from the baseline.

    Example: ``"lr_hi: +0.41 pp (95 % CI 0.12 to 0.70), 3.1x the noise floor,
    better (Holm p = 0.004)"``.

    Parameters
    ----------
    row : mapping or pandas.Series
        One row of the comparison table (``config``, ``diff``, ``ci_low``,
        ``ci_high``, ``confidence_level``, ``diff_over_noise``, ``verdict``,
        ``p_adjusted``, ``correction``). Missing values are left out of the
        sentence rather than printed as "nan".
    summary : mapping
        The analysis summary; ``metric`` (and ``metric_is_fraction`` if set)
        decide the units, ``correction`` and ``confidence_level`` are used
        when the row lacks them.

    Returns
    -------
    str
        Unescaped text; escape it before putting it in HTML.
    """
    fraction = _row_fraction(row, summary)
    diff, lo, hi = _get(row, "diff"), _get(row, "ci_low"), _get(row, "ci_high")
    # One number of decimals for the difference and its interval, so they line up.
    decimals = 2 if fraction else _shared_decimals(diff, lo, hi)
    diff_txt = _number(diff, fraction, signed=True, decimals=decimals)
    if fraction and diff_txt != "n/a":
        diff_txt += " pp"
    parts = [f"{_get(row, 'config', '?')}: {diff_txt}"]
    if not is_missing(lo) and not is_missing(hi):
        level = _get(row, "confidence_level", summary.get("confidence_level"))
        parts.append(
            f" ({_confidence_percent(level)} % CI {_number(lo, fraction, decimals=decimals)}"
            f" to {_number(hi, fraction, decimals=decimals)})"
        )
    ratio = _get(row, "diff_over_noise")
    if not is_missing(ratio):
        # The sign is already in the difference; "-3.1x the noise floor" reads oddly.
        parts.append(f", {abs(float(ratio)):.1f}x the noise floor")
    parts.append(f", {verdict_label(_get(row, 'verdict'))}")
    p_adj = _get(row, "p_adjusted")
    if not is_missing(p_adj):
        corr = correction_name(_get(row, "correction", summary.get("correction")))
        parts.append(f" ({corr} p {format_p(p_adj)})")
    return "".join(parts)


def seeds_needed_sentence(row: Mapping | pd.Series, summary: Mapping) -> str:
    """How many seeds a variant's difference needs, and what the current n can detect.

    Example: ``"lr_hi: to detect a difference of this size at 80 % power you
    need about 14 seeds per config (this comparison has 5); with the current n
    the smallest detectable difference is 0.35 pp."``

    Parameters
    ----------
    row : mapping or pandas.Series
        Comparison row with ``config``, ``n``, ``seeds_needed`` and ``mde``.
    summary : mapping
        Analysis summary; ``power`` (default 0.8) names the power the
        stats module planned for.

    Returns
    -------
    str
        Unescaped text.
    """
    fraction = _row_fraction(row, summary)
    power = summary.get("power", _DEFAULT_POWER) if summary else _DEFAULT_POWER
    power = _DEFAULT_POWER if is_missing(power) else float(power)
    power_txt = f"{power * 100:g} %"
    config = _get(row, "config", "?")
    needed = _get(row, "seeds_needed")
    n = _get(row, "n")
    n_txt = f" (this comparison has {int(n)})" if not is_missing(n) else ""
    if needed is not None and not (isinstance(needed, str)) and _is_pos_inf(needed):
        first = f"a difference this small cannot be detected at {power_txt} power with any practical number of seeds"
    elif is_missing(needed):
        first = "the number of seeds needed could not be estimated"
    else:
        first = (f"to detect a difference of this size at {power_txt} power you need about "
                 f"{int(math.ceil(float(needed)))} seeds per config{n_txt}")
    mde = _get(row, "mde")
    if is_missing(mde):
        return f"{config}: {first}."
    return (f"{config}: {first}; with the current n the smallest detectable difference is "
            f"{_spread(mde, fraction)}.")


def _is_pos_inf(value) -> bool:
    try:
        return math.isinf(float(value)) and float(value) > 0
    except (TypeError, ValueError):
        return False


def _answer_paragraph(summary: Mapping, comparisons: pd.DataFrame, fraction: bool) -> str:
    """The plain-words answer: noise, signal, how many variants beat the baseline."""
    metric = summary.get("metric") or "the metric"
    sentences = []
    nf = summary.get("noise_floor")
    if is_missing(nf):
        sentences.append(f"The seed-noise floor of {metric} could not be estimated.")
    else:
        sentences.append(f"Seed noise alone moves {metric} by ±{_spread(nf, fraction)} (std).")
    # The fixed-seed spread is the reference design's signal and the numerator of
    # signal/noise; the ANOVA component stands in when no seed is shared.
    signal = summary.get("signal_fixed_seed")
    how = " at a fixed seed"
    if is_missing(signal):
        signal, how = summary.get("signal"), ""
    if is_missing(signal):
        sentences.append("The spread caused by hyperparameters could not be estimated.")
    else:
        sentences.append(f"Hyperparameters move it by {_spread(signal, fraction)}{how}.")

    verdicts = list(comparisons["verdict"].astype(str)) if len(comparisons) and "verdict" in comparisons else []
    n_variants = len(comparisons)
    n_better = summary.get("n_better")
    n_better = verdicts.count("better") if is_missing(n_better) else int(n_better)
    n_worse = summary.get("n_worse")
    n_worse = verdicts.count("worse") if is_missing(n_worse) else int(n_worse)
    if n_variants == 0:
        sentences.append("No variant was compared with the baseline.")
    else:
        baseline = summary.get("baseline") or "the baseline"
        text = f"{n_better} of {n_variants} variants beat {baseline} beyond noise"
        if n_worse:
            text += f"; {n_worse} {'is' if n_worse == 1 else 'are'} worse beyond noise"
        sentences.append(text + ".")
    return " ".join(sentences)


# --------------------------------------------------------------------------
# HTML pieces
# --------------------------------------------------------------------------

_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       color: #222; max-width: 1150px; margin: 2em auto; padding: 0 1.2em; line-height: 1.45; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; }
h2 { font-size: 1.3em; margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.answer { font-size: 1.15em; background: #f4f7fb; border-left: 4px solid %(base)s;
          padding: 0.8em 1em; margin: 1em 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); gap: 0.7em; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.6em 0.8em; background: #fff; }
.card .label { font-size: 0.82em; color: #666; text-transform: uppercase; letter-spacing: 0.03em; }
.card .value { font-size: 1.25em; font-weight: 600; margin: 0.15em 0; }
.card .hint { font-size: 0.82em; color: #666; }
table { border-collapse: collapse; width: 100%%; font-size: 0.9em; margin: 0.6em 0; }
th, td { border-bottom: 1px solid #e3e3e3; padding: 0.35em 0.5em; text-align: right; }
th { background: #f4f4f4; }
th:first-child, td:first-child { text-align: left; }
td.verdict { text-align: left; font-weight: 600; }
.badge { display: inline-block; padding: 0.05em 0.5em; border-radius: 0.8em; color: #fff; font-size: 0.9em; }
ul.sentences li { margin: 0.25em 0; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%%; height: auto; border: 1px solid #eee; }
figcaption { color: #444; font-size: 0.92em; margin-top: 0.3em; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
.muted { color: #777; }
""" % {"base": BASELINE_COLOR}


def _badge(verdict) -> str:
    color = VERDICT_COLORS.get(str(verdict), "#404040")
    return f'<span class="badge" style="background:{color}">{escape(verdict_label(verdict))}</span>'


def _card(label: str, value: str, hint: str = "") -> str:
    hint_html = f'<div class="hint">{escape(hint)}</div>' if hint else ""
    return (f'<div class="card"><div class="label">{escape(label)}</div>'
            f'<div class="value">{escape(value)}</div>{hint_html}</div>')


def _ci_text(ci, fraction: bool, level) -> str:
    if ci is None or isinstance(ci, (str, bytes)):
        return ""
    try:
        lo, hi = list(ci)[:2]
    except (TypeError, ValueError):
        return ""
    if is_missing(lo) or is_missing(hi):
        return ""
    return f"{_confidence_percent(level)} % CI {_number(lo, fraction)} to {_spread(hi, fraction)}"


def _excluded_text(summary: Mapping) -> str:
    n = summary.get("n_excluded")
    reasons = summary.get("excluded_by_reason") or {}
    if is_missing(n):
        n = sum(int(v) for v in reasons.values() if not is_missing(v)) if reasons else None
    if n is None:
        return "n/a"
    n = int(n)
    # Plain text: the card escapes its value.
    parts = [f"{k}: {int(v)}" for k, v in sorted(reasons.items(), key=lambda kv: str(kv[0]))
             if not is_missing(v)]
    return f"{n} ({', '.join(parts)})" if parts else str(n)


def _headline(summary: Mapping, fraction: bool) -> str:
    level = summary.get("confidence_level")
    cards = []
    nf = summary.get("noise_floor")
    cards.append(_card("Noise floor (seed std)", _spread(nf, fraction),
                       _ci_text(summary.get("noise_floor_ci"), fraction, level)
                       or "spread of the metric when only the seed changes"))
    nfb = summary.get("noise_floor_baseline")
    if not is_missing(nfb) or summary.get("noise_floor_baseline_ci") is not None:
        cards.append(_card("Noise floor, baseline only", _spread(nfb, fraction),
                           _ci_text(summary.get("noise_floor_baseline_ci"), fraction, level)
                           or "from the baseline's noise seeds"))
    cards.append(_card("Test-set sampling floor", _spread(summary.get("test_sampling_floor"), fraction),
                       "std expected from the finite test set alone"))
    cards.append(_card("Signal (hyperparameter spread)", _spread(summary.get("signal"), fraction),
                       "spread of the config means"))
    sfs = summary.get("signal_fixed_seed")
    if not is_missing(sfs):
        cards.append(_card("Signal at one fixed seed", _spread(sfs, fraction),
                           "spread across configs at a single shared seed"))
    son = summary.get("signal_over_noise")
    cards.append(_card("Signal / noise", "n/a" if is_missing(son) else f"{float(son):.2f}x",
                       "above 1: hyperparameters move the metric more than seeds"))
    cards.append(_card("SNR", _plain(summary.get("snr")), "variance-based signal-to-noise ratio"))
    f_stat, f_p = summary.get("f_stat"), summary.get("f_pvalue")
    f_text = "n/a" if is_missing(f_stat) else f"F = {_plain(f_stat)}, p {format_p(f_p)}"
    cards.append(_card("F test (config effect)", f_text, "one-way ANOVA across configs"))
    cards.append(_card("ICC", _plain(summary.get("icc")),
                       "share of variance due to the config (0 = all seed noise)"))
    n_runs, n_configs = summary.get("n_runs"), summary.get("n_configs")
    runs_text = "n/a" if is_missing(n_runs) else str(int(n_runs))
    if not is_missing(n_configs):
        runs_text += f" runs, {int(n_configs)} configs"
    cards.append(_card("Runs analysed", runs_text))
    cards.append(_card("Excluded / diverged runs", _excluded_text(summary),
                       "left out of every statistic and figure"))
    best = summary.get("best_config")
    if best is not None and not is_missing(summary.get("best_diff")):
        hint = ""
        if not is_missing(summary.get("best_p_adjusted")):
            hint = f"{correction_name(summary.get('correction'))} p {format_p(summary.get('best_p_adjusted'))}"
        cards.append(_card("Best config", f"{best}: {format_metric_diff(summary.get('best_diff'), fraction)}",
                           hint))
    comps = [(k, summary.get(k)) for k in ("var_config", "var_seed", "var_residual")]
    if any(not is_missing(v) for _, v in comps):
        text = ", ".join(f"{k.split('_', 1)[1]} {_variance(v, fraction)}" for k, v in comps)
        cards.append(_card("Variance components", text, "config, seed and residual variance"))
    return '<div class="cards">' + "".join(cards) + "</div>"


def _sorted_comparisons(comparisons: pd.DataFrame) -> pd.DataFrame:
    if len(comparisons) == 0 or "diff" not in comparisons:
        return comparisons
    key = pd.to_numeric(comparisons["diff"], errors="coerce")
    return comparisons.assign(_key=key).sort_values("_key", ascending=False, na_position="last").drop(columns="_key")


def _verdict_table(comparisons: pd.DataFrame, summary: Mapping, fraction: bool) -> str:
    if len(comparisons) == 0:
        return '<p class="muted">No variant was compared with the baseline.</p>'
    level = _confidence_percent(summary.get("confidence_level"))
    head = ["Config", "n", "Mean", "Diff vs baseline", f"{level} % CI", "× noise floor", "Test",
            "p", "p adjusted", "Effect size", "P(superior)", "Verdict"]
    rows = []
    for _, r in comparisons.iterrows():
        diff, lo, hi = _get(r, "diff"), _get(r, "ci_low"), _get(r, "ci_high")
        d = 2 if fraction else _shared_decimals(diff, lo, hi)
        ci = ("n/a" if is_missing(lo) or is_missing(hi)
              else f"{_number(lo, fraction, decimals=d)} to {_number(hi, fraction, decimals=d)}")
        diff_txt = _number(diff, fraction, signed=True, decimals=d)
        if fraction and diff_txt != "n/a":
            diff_txt += " pp"
        ratio = _get(r, "diff_over_noise")
        n = _get(r, "n")
        cells = [
            str(_get(r, "config", "?")),
            "n/a" if is_missing(n) else str(int(n)),
            _level(_get(r, "mean"), fraction),
            diff_txt,
            ci,
            "n/a" if is_missing(ratio) else f"{float(ratio):+.1f}",
            str(_get(r, "test", "")).replace("_", " "),
            _p_cell(_get(r, "p_value")),
            _p_cell(_get(r, "p_adjusted")),
            _plain(_get(r, "effect_size")),
            _plain(_get(r, "prob_superior"), 2),
        ]
        tds = "".join(f"<td>{escape(c)}</td>" for c in cells)
        rows.append(f'<tr>{tds}<td class="verdict">{_badge(_get(r, "verdict"))}</td></tr>')
    ths = "".join(f"<th>{escape(h)}</th>" for h in head)
    corr = correction_name(summary.get("correction"))
    note = (f'<p class="muted">p adjusted: {escape(corr)} correction over all variants. '
            f"Differences are variant minus baseline"
            f"{' in percentage points' if fraction else ''}.</p>")
    return f"<table><thead><tr>{ths}</tr></thead><tbody>{''.join(rows)}</tbody></table>{note}"


def _importance_table(importance: pd.DataFrame | None, fraction: bool) -> str:
    if importance is None or len(importance) == 0:
        return ('<p class="muted">No hyperparameter importance table: no hyperparameter was '
                "varied over two or more levels.</p>")
    head = ["Hyperparameter", "Levels", "Runs", "Variance explained", "Seed-noise variance",
            "Ratio", "p", "Verdict"]
    rows = []
    for _, r in importance.iterrows():
        levels, n_runs = _get(r, "n_levels"), _get(r, "n_runs")
        cells = [
            str(_get(r, "hparam", "?")),
            "n/a" if is_missing(levels) else str(int(levels)),
            "n/a" if is_missing(n_runs) else str(int(n_runs)),
            _variance(_get(r, "var_explained"), fraction),
            _variance(_get(r, "noise_var"), fraction),
            _plain(_get(r, "ratio")),
            _p_cell(_get(r, "p_value")),
            str(_get(r, "verdict", "")).replace("_", " "),
        ]
        rows.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    ths = "".join(f"<th>{escape(h)}</th>" for h in head)
    return f"<table><thead><tr>{ths}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
         ".svg": "image/svg+xml", ".gif": "image/gif", ".webp": "image/webp"}


def _figure(name: str, path) -> str:
    caption = PLOT_CAPTIONS.get(name, name.replace("_", " ").capitalize())
    path = Path(path)
    if not path.is_file():
        return (f'<figure><p class="muted">Figure {escape(name)} is not available '
                f"({escape(str(path))}).</p></figure>")
    mime = _MIME.get(path.suffix.lower(), "application/octet-stream")
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure id="fig-{escape(name)}"><img src="data:{mime};base64,{data}" '
            f'alt="{escape(caption)}"><figcaption>{escape(caption)}</figcaption></figure>')


def _how_to_read(summary: Mapping, fraction: bool) -> str:
    metric = summary.get("metric") or "the metric"
    unit = " Differences are in percentage points (pp) because the metric is a fraction." if fraction else ""
    items = [
        f"<b>Noise floor</b>: the standard deviation of {escape(str(metric))} when the same config is "
        "retrained with different random seeds. A change smaller than this is indistinguishable "
        f"from rerunning with another seed.{escape(unit)}",
        "<b>Signal</b>: how much the config means differ from each other. Signal / noise well above 1 "
        "means the hyperparameters matter more than the seed.",
        "<b>Verdict</b>: <i>better</i> / <i>worse</i> means the difference from the baseline is "
        "significant after the multiple-comparison correction; <i>within noise</i> means it is not; "
        "<i>too few runs</i> means there were not enough successful seeds to test.",
        "<b>CI</b>: the range of differences compatible with the data for this one comparison "
        "(a bootstrap over seeds, expanded for small samples). If it includes zero, the variant may be "
        "no different from the baseline. It is not adjusted for testing several variants: an interval "
        "clear of zero can still be <i>within noise</i> once the correction is applied, and with very "
        "few seeds no interval is reliable (see seeds needed).",
        "<b>Seeds needed</b>: how many seeds per config a difference of the observed size needs to be "
        "detected reliably. The smallest detectable difference says what the current number of seeds "
        "can resolve.",
        "<b>Excluded runs</b> (diverged or failed) are left out of every number and figure; check "
        "them if one config has many.",
    ]
    return "<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def _notes_html(notes) -> str:
    if not notes:
        return ""
    if isinstance(notes, str):
        notes = [notes]
    items = "".join(f"<li>{escape(str(n))}</li>" for n in notes)
    return f"<h2>Notes</h2><ul>{items}</ul>"


# --------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------


def render_report(
    summary: Mapping[str, Any],
    comparisons: pd.DataFrame | None,
    importance: pd.DataFrame | None,
    plots: Mapping[str, str | os.PathLike],
    out_path: str | os.PathLike,
    *,
    title: str = "noisefloor report",
    params_text: str | None = None,
    notes: str | Iterable[str] | None = None,
) -> Path:
    """Write one self-contained HTML report.

    Parameters
    ----------
    summary : mapping
        Analysis summary (``metric``, ``noise_floor``, ``signal``, ...). Any
        value may be None; it is shown as "n/a" or its line is left out.
    comparisons : pandas.DataFrame or None
        One row per variant (see :func:`variant_sentence`).
    importance : pandas.DataFrame or None
        Hyperparameter importance table; may be empty.
    plots : mapping of str to path
        Figure name -> image file, embedded in the given order. Known names
        (``noise_vs_signal``, ``config_distributions``, ``differences``,
        ``learning_curves``, ``importance``) get a specific caption.
    out_path : str or os.PathLike
        Where to write the HTML file (atomically).
    title : str, default "noisefloor report"
        Page title and heading.
    params_text : str, optional
        The parameters used (e.g. the YAML config), shown verbatim in a
        ``<pre>`` block.
    notes : str or iterable of str, optional
        Extra notes listed at the end.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    summary = dict(summary or {})
    comparisons = comparisons if comparisons is not None else pd.DataFrame()
    comparisons = _sorted_comparisons(comparisons)
    if summary.get("metric_is_fraction") is None:
        levels = []
        for col in ("mean", "baseline_mean"):
            if col in comparisons:
                levels += list(pd.to_numeric(comparisons[col], errors="coerce"))
        summary["metric_is_fraction"] = metric_is_fraction(summary.get("metric"), levels or None)
    fraction = bool(summary["metric_is_fraction"])

    metric = summary.get("metric") or "metric"
    direction = summary.get("direction")
    direction_txt = {"max": "higher is better", "min": "lower is better"}.get(str(direction), "")
    baseline = summary.get("baseline") or "baseline"
    subtitle = f"Metric: {metric}" + (f" ({direction_txt})" if direction_txt else "") + f" · baseline: {baseline}"
    alpha = summary.get("alpha")
    if not is_missing(alpha):
        subtitle += f" · α = {float(alpha):g}"

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="muted">{escape(subtitle)}</p>',
        f'<p class="answer" id="answer">{escape(_answer_paragraph(summary, comparisons, fraction))}</p>',
        '<h2 id="headline">Headline numbers</h2>',
        _headline(summary, fraction),
        '<h2 id="verdicts">Verdicts</h2>',
        _verdict_table(comparisons, summary, fraction),
    ]
    if len(comparisons):
        sentences = "".join(f"<li>{escape(variant_sentence(r, summary))}</li>" for _, r in comparisons.iterrows())
        parts.append(f'<ul class="sentences" id="variant-sentences">{sentences}</ul>')
        parts.append('<h2 id="seeds-needed">Seeds needed</h2>')
        needed = "".join(f"<li>{escape(seeds_needed_sentence(r, summary))}</li>"
                         for _, r in comparisons.iterrows())
        parts.append(f'<ul class="sentences">{needed}</ul>')
    parts += ['<h2 id="importance">Hyperparameter importance</h2>', _importance_table(importance, fraction)]
    if plots:
        parts.append('<h2 id="figures">Figures</h2>')
        parts += [_figure(str(name), path) for name, path in plots.items()]
    parts += ['<h2 id="how-to-read">How to read this</h2>', _how_to_read(summary, fraction)]
    parts.append('<h2 id="params">Parameters</h2>')
    if params_text:
        parts.append(f"<pre>{escape(str(params_text))}</pre>")
    else:
        parts.append('<p class="muted">Parameters were not recorded.</p>')
    parts.append(_notes_html(notes))
    parts.append("</body></html>\n")

    out_path = Path(out_path)
    write_text(out_path, "\n".join(p for p in parts if p))
    return out_path
