"""A single self-contained HTML report for a noisefloor analysis.

The report is one file that can be mailed or archived on its own: figures are
embedded as base64 data URIs, the CSS is inline, and there is no script and
no external resource. Every piece of text that comes from the data (config
names, hyperparameter names, parameters, notes) is HTML-escaped, because
config names are user input.

The first screen is the answer: the question, the verdict table (baseline
first) and the noise floor. Everything else follows under "Details", each
term with its one-line definition from :class:`noisefloor.summary.Summary`.
This module only formats numbers the statistics computed; it does no
inference of its own.
"""

from __future__ import annotations

import base64
import os
from html import escape
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from .display import (
    fold_single_runs,
    BASELINE_COLOR,
    SPENDING_NAMES,
    VERDICT_COLORS,
    VERDICT_MEANINGS,
    correction_name,
    importance_color,
    importance_label,
    parts_words,
    same_config_words,
    format_diff,
    format_interval,
    format_level,
    format_p,
    format_plain,
    format_share,
    format_spread,
    format_variance,
    is_missing,
    shared_decimals,
    stopped_words,
    verdict_label,
)
from .io import write_text
from .pipeline import FIGURE
from .vocab import Verdict
from .summary import Adaptive, Summary

__all__ = ["render_report", "variant_sentence", "seeds_needed_sentence", "answer_sentence", "adaptive_sentence"]

# --------------------------------------------------------------------------
# sentences
# --------------------------------------------------------------------------


def _get(row: Mapping | pd.Series, key: str, default=None):
    try:
        value = row[key]
    except (KeyError, IndexError):
        return default
    return default if value is None else value


def variant_sentence(row: Mapping | pd.Series, summary: Summary, fraction: bool) -> str:
    """One plain sentence: a variant's difference, its simultaneous interval and its verdict.

    Example: ``"lr_hi: +3.00 pp (95 % simultaneous interval 0.35 to 5.65),
    better"``.  Unescaped text.
    """
    diff, lo, hi = _get(row, "diff"), _get(row, "ci_low"), _get(row, "ci_high")
    d = 2 if fraction else shared_decimals(diff, lo, hi)
    text = f"{_get(row, 'config', '?')}: {format_diff(diff, fraction, decimals=d)}"
    if not is_missing(lo) and not is_missing(hi):
        level = _get(row, "simultaneous_level")
        text += (f" ({float(level) * 100:g} % simultaneous interval "
                 f"{format_interval(lo, hi, fraction, decimals=d)})")
    text += f", {verdict_label(_get(row, 'verdict'))}"
    note = _get(row, "note")
    if isinstance(note, str) and note:
        text += f" ({note})"
    return text


def seeds_needed_sentence(row: Mapping | pd.Series, summary: Summary, fraction: bool) -> str:
    """What would decide an inconclusive variant, in seeds per config (unescaped text)."""
    config = _get(row, "config", "?")
    needed, upper, to = _get(row, "seeds_needed"), _get(row, "seeds_needed_upper"), _get(row, "seeds_needed_to")
    if is_missing(needed):
        return f"{config}: no number of seeds can be estimated."
    goal = ("for its interval to fit inside the margin" if to == "equivalence"
            else "for its interval to exclude 0 at the observed difference")
    power = f"{float(summary.power) * 100:g} %" if summary.power is not None else "80 %"
    text = f"{config}: about {int(needed)} seeds per config {goal}, from its own spread ({power} power"
    if not is_missing(upper):
        text += f"; {int(upper)} if the spreads are at the noise floor's upper bound"
    text += ")"
    margin_seeds = _get(row, "seeds_for_margin")
    if not is_missing(margin_seeds) and not is_missing(summary.equivalence_margin):
        text += (f"; {int(margin_seeds)} would detect a true difference of one margin "
                 f"(±{format_spread(summary.equivalence_margin, fraction)})")
    return text + "."


def answer_sentence(summary: Summary, comparisons: pd.DataFrame, fraction: bool) -> str:
    """The answer in plain words: the noise floor, then what the variants did (unescaped)."""
    s = summary
    parts = []
    if s.seed_blind:
        parts.append(seed_blind_sentence(s))
    if is_missing(s.noise_floor):
        parts.append(f"The noise floor of {s.metric} could not be estimated.")
    else:
        ci = s.noise_floor_ci or [None, None]
        what = f" ({', '.join(s.noise_floor_sources)})" if s.noise_floor_sources else ""
        parts.append(f"Seed noise alone{what} moves {s.metric} by ±{format_spread(s.noise_floor, fraction)} "
                     f"(standard deviation over the baseline's {s.n_baseline} seeds; "
                     f"{float(s.confidence_level) * 100:g} % CI {format_interval(ci[0], ci[1], fraction)}).")
        left_out = _left_out(s)
        if left_out:
            parts.append(f"It leaves out {', '.join(r.source for r in left_out)}, and {left_out[0].source} "
                         f"alone moves {s.metric} by ±{format_spread(left_out[0].sd, fraction)} (see where the "
                         "noise comes from, below).")
    for names in s.same_configs or []:
        parts.append(f"{same_config_words(names, str(s.baseline))} (their runs record the same config "
                     "hash: the same settings and code), so comparing them measures seed noise alone.")
    if s.not_converged:
        parts.append(convergence_sentence(s, fraction))
    # About reading a config's level, not its verdict: said after the verdicts.
    after = [sampling_floor_sentence(s, fraction)] if s.sampling_floor_notable else []
    if not s.n_variants:
        parts.append("No variant was compared with the baseline.")
        return " ".join(parts + after)
    parts.append(f"Of {s.n_variants} variant{'' if s.n_variants == 1 else 's'}: {s.verdict_counts_text()}.")
    decided = comparisons[comparisons["verdict"].isin([Verdict.BETTER, Verdict.WORSE])] if len(comparisons) else comparisons
    for _, r in decided.iterrows():
        parts.append(variant_sentence(r, s, fraction) + ".")
    if s.n_inconclusive:
        parts.append("Inconclusive means the data cannot yet tell; " + (
            "the table says where each variant stopped, and Details how many seeds would decide."
            if s.adaptive else "the table says how many seeds would decide."))
    confirmation_groups = {c.group for c in s.search_confirmed or []}
    # Only a winner invites acting on it: an undecided best needs no warning against selection.
    if (s.best_config is not None and s.n_variants > 1 and s.best_verdict == Verdict.BETTER
            and s.best_config not in confirmation_groups):
        parts.append(f"The best of the {s.n_variants} variants ({s.best_config}) is an optimistic pick until it is "
                     "confirmed on fresh seeds.")
    if s.search_trials and s.n_insufficient_runs and s.search_expected_best is not None:
        parts.append(search_sentence(s, fraction))
    elif s.search_confirmed:
        parts.append(confirmation_sentence(s, fraction))
    if s.search_importance:
        parts.append(search_driver_sentence(s))
    return " ".join(parts + after)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _names(names: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def convergence_sentence(s: Summary, fraction: bool) -> str:
    """The configs whose learning curves had not levelled off (read from the summary's ``not_converged``)."""
    rows = sorted(s.not_converged, key=lambda r: -r.gain)
    first, last = rows[0].first_epoch, rows[0].last_epoch
    # A summary written before the bound was kept has no gain_low: the gains alone, then.
    bounded = all(r.gain_low is not None for r in rows)
    level = f" at {float(s.confidence_level) * 100:g} % confidence" if bounded else ""
    if len(rows) <= 2:
        gains = "; ".join(f"{r.config} {format_diff(r.gain, fraction)}"
                          + (f", at least {format_diff(r.gain_low, fraction)}" if bounded else "") for r in rows)
    else:                   # many configs: their range, not a list of numbers
        gains = f"gains {format_diff(rows[-1].gain, fraction)} to {format_diff(rows[0].gain, fraction)}"
        if bounded:
            gains += f", each at least {format_diff(min(r.gain_low for r in rows), fraction)}"
    verb = "was" if len(rows) == 1 else "were"
    return (f"Not converged: {_names([r.config for r in rows])} {verb} still improving by more than the noise "
            f"floor over epochs {first} to {last} ({gains}{level}), so a difference may be partly "
            "how fast a config learns rather than where it ends; train longer (more epochs: train.epochs for the "
            "built-in model) before reading the verdicts as final.")


def sampling_floor_sentence(s: Summary, fraction: bool) -> str:
    """What the evaluation set's own sampling error means for reading the metric (when it is notable)."""
    which = "validation" if s.val_sampling_floor is not None else "test"
    size = f" of {s.eval_size} examples" if s.eval_size else ""
    than = "larger than" if s.sampling_floor > s.noise_floor else "comparable to"
    return (f"The {which} set{size} is small: which examples it holds moves an accuracy by "
            f"±{format_spread(s.sampling_floor, fraction)}, {than} the seed noise, so read a config's {s.metric} as "
            f"its accuracy on new data only to within about that; the differences between configs are measured "
            "on the same examples, and that error partly cancels in them.")


def seed_blind_sentence(s: Summary) -> str:
    """The warning that some configs' seed changes nothing (read from the summary's ``seed_blind``)."""
    names = " and of ".join([", ".join(s.seed_blind[:-1]), s.seed_blind[-1]] if len(s.seed_blind) > 1
                            else s.seed_blind)
    return (f"Every seed of {names} gave exactly the same {s.metric}: the seed changes nothing in "
            f"{'these runs' if len(s.seed_blind) > 1 else 'its runs'}, so the spread below is not seed noise "
            "and no verdict on them means anything. Check that the program receives {seed} and seeds its "
            "random number generators with it (noisefloor check-determinism tells).")


def search_driver_sentence(s: Summary) -> str:
    """The search's strongest hyperparameter: its share of the search's spread net of chance, with its interval
    and p (read from the summary's ``search_importance``, the same numbers as the importance table)."""
    top = s.search_importance[0]
    level = f"{float(s.confidence_level) * 100:g} %"
    numbers = (f"{format_share(top.net_share)} of the search's spread net of chance ({level} bootstrap interval "
               f"{format_share(top.net_share_ci_low)} to {format_share(top.net_share_ci_high)}; permutation p "
               f"{format_p(top.p_value)}, adjusted over the {len(s.search_importance)} it varies p "
               f"{format_p(top.p_adjusted)})")
    if top.p_adjusted is not None and top.p_adjusted < s.alpha:
        return f"What drives the search: {top.hparam} explains {numbers}."
    return (f"No hyperparameter the search varies is shown to move {s.metric} beyond chance; the strongest, "
            f"{top.hparam}, explains {numbers}.")


def search_sentence(s: Summary, fraction: bool) -> str:
    """What a search of one run per config can say (read from the summary's search fields)."""
    text = (f"The search ran {s.search_trials} configs at seed {s.search_seed} (the baseline's run there "
            f"included): a search that size is expected "
            f"to find {format_level(s.search_expected_best, fraction)}, re-rolling the baseline's seed as often "
            f"{format_level(s.noise_expected_best, fraction)}")
    if s.trials_worth is not None:
        text += f", and trials beyond {s.trials_worth} gain less than the noise floor"
    text += "."
    if s.search_winner_probability is not None:
        tied = " (tied with the runner-up)" if not s.search_winner_lead else ""
        # The baseline's run at the search seed is one of the searched: when it wins, say so in words.
        best = (f"Its best is the baseline itself ({s.search_winner}){tied}: no searched config beat it at that "
                "seed; it" if s.search_winner == s.baseline else f"Its best, {s.search_winner}{tied},")
        text += (f" {best} is the true best of the top {s.search_winner_top_k} with "
                 f"probability {format_plain(s.search_winner_probability, 2)} under the measured noise")
        text += "." if s.search_confirmed else (": one run each is too few for a verdict, so confirm the top "
                                                "configs on fresh seeds (sweep.confirm).")
    if s.search_confirmed:
        text += " " + confirmation_sentence(s, fraction)
    return text


def noise_budget_sentence(s: Summary, fraction: bool) -> str:
    """Where the noise comes from: each source alone, whether the parts add up, what the floor leaves out."""
    rows = [r for r in s.noise_sources if r.sd is not None]
    alone = sorted((r for r in rows if r.source != "all"), key=lambda r: -r.sd)
    whole = next((r for r in rows if r.source == "all"), None)
    items = [f"{r.source} ±{format_spread(r.sd, fraction)}"
             + (f" ({format_share(r.share)} of all together)" if r.share is not None else "") for r in alone]
    text = "Each source of randomness alone, the others held still: " + ", ".join(items)
    if whole is not None:
        text += f"; all together ±{format_spread(whole.sd, fraction)}"
    text += "."
    if s.noise_sources_largest is not None and len(alone) > 1:
        runner = alone[1].source if alone[0].source == s.noise_sources_largest else alone[0].source
        clear = f" (not clearly above {runner})" if s.noise_sources_largest_clear is False else ""
        text += f" The largest is {s.noise_sources_largest}{clear}."
    if s.noise_sources_adds_up is not None:
        lo, hi = s.noise_sources_sum_ratio_ci or [None, None]
        meaning = {"add up": " (within a factor of 2)",
                   "overlap": ": one source alone already reaches much of the whole spread, so each "
                   "share is what that source can cause alone, not a slice of the whole",
                   "fall short": ": the sources interact, or some randomness is not among them",
                   "cannot tell": ": too wide to tell whether the parts add up (that takes an interval within 0.5 "
                   "to 2)" + (f"; about {s.noise_sources_seeds_to_tell} seeds per source would tell"
                              if s.noise_sources_seeds_to_tell else "")}
        said = parts_words(s.noise_sources_adds_up)
        text += (f" {_capital(said)} (summed variances / all together "
                 f"{s.noise_sources_sum_ratio:.2f}, CI {lo:.2f} to {hi:.2f})"
                 f"{meaning[s.noise_sources_adds_up]}.")
    left_out = _left_out(s)
    if left_out:
        text += (f" The noise floor the verdicts use varies {', '.join(s.noise_floor_sources)} and leaves out "
                 f"{', '.join(r.source for r in left_out)}: add {'it' if len(left_out) == 1 else 'them'} to "
                 "seeds.sources to judge the configs against that noise too.")
    for source, why in (s.noise_sources_left_out or {}).items():
        text += f" {_capital(source)} is not measured: {why}, so nothing varies it."
    return text


def _left_out(s: Summary) -> list:
    """The measured sources the noise floor does not vary, largest first."""
    if not s.noise_floor_sources or not s.noise_sources:
        return []
    # (numeric noise is not a seed's to vary: it is left out of every noise floor alike)
    return sorted((r for r in s.noise_sources if r.source not in (*s.noise_floor_sources, "all", "numeric")
                   and r.sd is not None), key=lambda r: -r.sd)


def confirmation_sentence(s: Summary, fraction: bool) -> str:
    """The search's best configs at fresh seeds: their lead in the search against their verdict now (unescaped)."""
    rows = s.search_confirmed
    most = max(int(r.n) for r in rows)
    items = []
    for r in rows:
        lo, hi = r.ci
        d = 2 if fraction else shared_decimals(r.search_diff, r.diff, lo, hi)
        interval = f" (interval {format_interval(lo, hi, fraction, decimals=d)})" if not (is_missing(lo) or is_missing(hi)) \
            else ""
        fewer = f" ({r.n} usable runs)" if int(r.n) < most else ""
        items.append(f"{r.config} {format_diff(r.search_diff, fraction, decimals=d)} in the search, "
                     f"{format_diff(r.diff, fraction, decimals=d)}{interval} at fresh seeds{fewer}: "
                     f"{verdict_label(r.verdict)}")
    return (f"Run again at {most} fresh seeds and compared with the baseline there: " + "; ".join(items) + ".")


# --------------------------------------------------------------------------
# HTML pieces
# --------------------------------------------------------------------------

_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       color: #222; max-width: 1150px; margin: 1.2em auto; padding: 0 1.2em; line-height: 1.4; }
h1 { font-size: 1.5em; margin: 0 0 0.15em 0; }
h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
h3 { font-size: 1.05em; margin-top: 1.4em; }
.question { font-size: 1.02em; color: #333; margin: 0.2em 0 0.6em 0; }
.answer { font-size: 1.02em; background: #f4f7fb; border-left: 4px solid %(base)s;
          padding: 0.55em 0.9em; margin: 0.6em 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(240px, 1fr)); gap: 0.6em; margin: 0.6em 0; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.45em 0.7em; background: #fff; }
.card .label { font-size: 0.8em; color: #666; text-transform: uppercase; letter-spacing: 0.03em; }
.card .value { font-size: 1.2em; font-weight: 600; margin: 0.1em 0; }
.card .hint { font-size: 0.8em; color: #555; }
table { border-collapse: collapse; width: 100%%; font-size: 0.9em; margin: 0.4em 0; }
.table-wrap { overflow-x: auto; }
th, td { border-bottom: 1px solid #e3e3e3; padding: 0.3em 0.5em; text-align: right; }
td { white-space: nowrap; }
td:first-child { white-space: normal; }
th { background: #f4f4f4; }
th:first-child, td:first-child { text-align: left; }
td.verdict { text-align: left; font-weight: 600; }
tr.baseline td { background: #faf8fd; }
.badge { display: inline-block; padding: 0.05em 0.5em; border-radius: 0.8em; color: #fff; font-size: 0.9em; }
ul.sentences li { margin: 0.2em 0; }
dl.glossary dt { font-weight: 600; margin-top: 0.4em; }
dl.glossary dd { margin-left: 1.2em; color: #333; }
figure { margin: 1.2em 0; }
figure img { max-width: 100%%; height: auto; border: 1px solid #eee; }
figcaption { color: #444; font-size: 0.92em; margin-top: 0.3em; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
details summary { cursor: pointer; font-weight: 600; margin: 1em 0 0.4em 0; }
@media print { details { display: block; } figure { break-inside: avoid; } }
.muted { color: #666; font-size: 0.9em; }
/* A phone: each row of the verdict table is a card, its config and verdict on the first line; figures keep
   their drawn size (readable text) and scroll sideways inside their box. */
@media (max-width: 640px) {
  #verdicts thead { display: none; }
  #verdicts table, #verdicts tbody { display: block; }
  #verdicts tr { display: flex; flex-wrap: wrap; align-items: baseline; border: 1px solid #ddd;
                 border-radius: 6px; margin: 0.5em 0; padding: 0.3em 0.6em; }
  #verdicts td { display: block; border: none; padding: 0.1em 0; text-align: left; white-space: normal;
                 order: 2; flex: 1 0 100%%; }
  #verdicts td:first-child { order: 0; flex: 1 0 50%%; font-weight: 600; }
  #verdicts td.verdict { order: 1; flex: 0 0 auto; }
  #verdicts td:empty { display: none; }
  #verdicts td[data-label]:not(:first-child):not(.verdict)::before { content: attr(data-label) ": "; color: #666; }
  figure { overflow-x: auto; }
  figure img { max-width: none; }
}
""" % {"base": BASELINE_COLOR}


def _badge(verdict, color: str | None = None, label: str | None = None) -> str:
    color = color or VERDICT_COLORS.get(str(verdict), "#404040")
    return f'<span class="badge" style="background:{color}">{escape(label or verdict_label(verdict))}</span>'


def _card(label: str, value: str, hint: str = "") -> str:
    hint_html = f'<div class="hint">{escape(hint)}</div>' if hint else ""
    return (f'<div class="card"><div class="label">{escape(label)}</div>'
            f'<div class="value">{escape(value)}</div>{hint_html}</div>')


def _table(head: list[str] | None, rows: list[list[str]], *, verdict_col: int | None = None,
           row_classes: list[str] | None = None) -> str:
    ths = "".join(f"<th>{escape(h)}</th>" for h in head or [])
    body = []
    for i, cells in enumerate(rows):
        labels = [f' data-label="{escape(h)}"' if h else "" for h in head or []] + [""] * len(cells)
        tds = "".join(
            f'<td class="verdict"{labels[j]}>{c}</td>' if j == verdict_col else f"<td{labels[j]}>{escape(c)}</td>"
            for j, c in enumerate(cells))
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        body.append(f"<tr{cls}>{tds}</tr>")
    thead = f"<thead><tr>{ths}</tr></thead>" if head else ""
    # A wide table scrolls inside its box instead of widening the page on a narrow screen.
    return f'<div class="table-wrap"><table>{thead}<tbody>{"".join(body)}</tbody></table></div>'


def _n(x) -> str:
    """A count, or n/a."""
    return "n/a" if x is None else str(int(x))


def _question(s: Summary) -> str:
    better = {"max": " (higher is better)", "min": " (lower is better)"}.get(str(s.direction), "")
    ns = sorted({int(x.n) for x in (s.config_spreads or [])[1:] if x.n})
    seeds = f"{ns[0]}" if len(ns) == 1 else (f"{ns[0]} to {ns[-1]}" if ns else "no")
    question = (f"Does any variant change {escape(str(s.metric))}{better} beyond seed noise? "
                + ("The <b>baseline</b>" if str(s.baseline) == "baseline" else      # not "Baseline baseline"
                   f"Baseline <b>{escape(str(s.baseline))}</b>") + f" at {_n(s.n_baseline)} seeds")
    if not s.n_variants:
        return question + ", and no variant: how large is its seed noise?"
    return (question + f", {_n(s.n_variants)} variant{'' if s.n_variants == 1 else 's'} "
            f"at {seeds} seed{'' if seeds == '1' else 's'}; intervals hold for all variants at once with "
            f"{float(1 - s.alpha) * 100:g} % confidence ({escape(correction_name(s.correction))}).")


def _verdict_table(comparisons: pd.DataFrame, s: Summary, fraction: bool) -> str:
    base_mean = s.baseline_mean if s.baseline_mean is not None else (
        comparisons["baseline_mean"].iloc[0] if len(comparisons) else None)
    head = ["Config", "Runs", "Mean", "Difference", f"Simultaneous {float(1 - s.alpha) * 100:g} % interval",
            "× noise floor", "Verdict", "Decided at" if s.adaptive else "Seeds to decide"]
    label = str(s.baseline) if s.baseline == "baseline" else f"{s.baseline} (baseline)"
    late = frozenset(r.config for r in s.not_converged or [])
    if s.baseline in late:
        label += " (not converged)"
    rows = [[label, _n(s.n_baseline), format_level(base_mean, fraction), "", "", "",
             '<span class="muted">reference</span>', ""]]
    # A search's configs with one run each get no verdict: the best few stay in the table, the rest fold away.
    shown, folded = fold_single_runs(comparisons, s.direction or "max")
    table = _comparison_table(head, rows, shown, fraction, s.adaptive, late)
    if len(folded):
        table += (f'<details class="more"><summary>{len(folded)} more configs with one run each '
                  "(no verdict from one run; the search's figures show them all)</summary>"
                  + _comparison_table(head, [], folded, fraction, s.adaptive, late) + "</details>")
    unit = " in percentage points" if fraction else ""
    margin = format_spread(s.equivalence_margin, fraction)
    note = (f'<p class="muted">Difference = variant − baseline{unit}, adjusted for the luck of the '
            f"variant's seeds (mean = baseline mean + difference). Equivalence margin ±{escape(margin)} "
            f"({escape(str(s.equivalence_margin_source or 'n/a'))}). "
            + " ".join(f"<b>{escape(verdict_label(v))}</b>: {escape(m)}." for v, m in VERDICT_MEANINGS.items())
            + "</p>")
    return table + note + (f'<p class="muted">{escape(adaptive_sentence(s))}</p>' if s.adaptive else "")


def adaptive_sentence(s: Summary) -> str:
    """How an adaptive experiment was run: rounds, runs against the cap's, and what its intervals mean."""
    a = s.adaptive
    return (f"Adaptive seeds: {a.rounds} round{'' if a.rounds == 1 else 's'}, {a.step} more seeds per "
            f"round to each variant still open, at most {a.max_seeds}; {a.runs} runs trained, against "
            f"{a.runs_at_cap} with every config at the cap. Each round was tested at a group-sequential level "
            f"({SPENDING_NAMES.get(a.spending, a.spending)} spending), so the intervals hold for all variants and all "
            f"rounds at once; a variant's interval is the one of the round that stopped it.")


def _comparison_table(head: list[str], first: list[list[str]], comparisons: pd.DataFrame, fraction: bool,
                      adaptive: Adaptive | None = None, late: frozenset = frozenset()) -> str:
    """The verdict table's rows: ``first`` (the baseline's, already formatted), then one per comparison;
    a config in ``late`` (not converged) is marked so."""
    rows = list(first)
    for _, r in comparisons.iterrows():
        diff, lo, hi = _get(r, "diff"), _get(r, "ci_low"), _get(r, "ci_high")
        d = 2 if fraction else shared_decimals(diff, lo, hi)
        ratio = _get(r, "diff_over_noise")
        rows.append([
            str(_get(r, "config", "?")) + (" (not converged)" if str(_get(r, "config")) in late else ""),
            str(int(_get(r, "n", 0))),
            format_level(_get(r, "mean"), fraction),
            format_diff(diff, fraction, decimals=d),
            format_interval(lo, hi, fraction, decimals=d),
            "n/a" if is_missing(ratio) else f"{float(ratio):+.1f}",
            _badge(_get(r, "verdict")),
            _round_cell(r, adaptive) if adaptive else _decide_cell(r),
        ])
    return _table(head, rows, verdict_col=6, row_classes=["baseline"] * len(first) + [""] * len(comparisons))


def _round_cell(r, adaptive: Adaptive) -> str:
    """The round that stopped an adaptive experiment's variant, and why."""
    look = (adaptive.configs or {}).get(str(_get(r, "config")))
    return "" if look is None else escape(stopped_words(look))


def _decide_cell(r) -> str:
    """Seeds that would decide the row, or why no test is possible."""
    note = _get(r, "note")
    if isinstance(note, str) and note:
        return f"n/a: {note}"
    needed = _get(r, "seeds_needed")
    if is_missing(needed):
        return ""
    return f"{int(needed)}" + (" (to show equivalence)" if _get(r, "seeds_needed_to") == "equivalence" else "")


def _headline(s: Summary, fraction: bool) -> str:
    ci = s.noise_floor_ci or [None, None]
    robust = (f"; robust (MAD) {format_spread(s.noise_floor_robust, fraction)}"
              if s.noise_floor_robust is not None else "")
    share_ci = s.hp_variance_share_ci or [None, None]
    excluded = f"{s.n_excluded} excluded" if s.n_excluded else "none excluded"
    cards = [
        _card("Noise floor", format_spread(s.noise_floor, fraction),
              f"seed-to-seed sd of the baseline"
              f"{' (' + ', '.join(s.noise_floor_sources) + ')' if s.noise_floor_sources else ''}, "
              f"{float(s.confidence_level) * 100:g} % CI "
              f"{format_interval(ci[0], ci[1], fraction)}{robust}"),
        _card("Hyperparameters' share", format_share(s.hp_variance_share),
              f"of the spread across configs at a fixed seed (CI {format_share(share_ci[0])} to "
              f"{format_share(share_ci[1])}); 0 % when they do nothing"),
        _card("Do the configs differ?", f"p {format_p(s.configs_differ_pvalue)}",
              "Welch's ANOVA over all configs, unequal spreads allowed; small p: some config differs"),
        _card("Runs", f"{_n(s.n_runs)} in {_n(s.n_configs)} config{'' if s.n_configs == 1 else 's'}",
              f"{excluded}; a run is one (config, seed) training"),
    ]
    return '<div class="cards">' + "".join(cards) + "</div>"


def _details(s: Summary, comparisons: pd.DataFrame, importance: pd.DataFrame | None, fraction: bool) -> str:
    out = []
    # The noise floor, config by config.
    out.append('<h3 id="spreads">Run-to-run spread per config</h3>')
    rows = [[str(x.config), str(x.n), format_spread(x.sd, fraction),
             format_spread(x.sd_robust, fraction)] for x in (s.config_spreads or [])]
    out.append(_table(["Config", "Runs", "sd", "robust sd (MAD)"], rows))
    if s.noise_floor_pooled is not None:
        pooled = format_spread(s.noise_floor_pooled, fraction)
    elif s.equal_variance_pvalue is None:
        pooled = "not given: the spreads cannot be compared (too few runs, or none varies)"
    else:
        pooled = "not given: the equal-spread test rejects"
    out.append(f'<p class="muted">Brown-Forsythe test of equal spreads: p {format_p(s.equal_variance_pvalue)}. '
               f"Pooled noise floor: {escape(pooled)}.</p>")
    # Every statistic of the summary, with its definition.
    items = []
    for name, value in _detail_values(s, fraction):
        meta = Summary.describe(name)
        null = f" Null value: {meta['null']}." if meta.get("null") else ""
        items.append(f"<dt>{escape(meta['label'])}: {escape(value)}</dt><dd>{escape(meta['definition'])}.{escape(null)}</dd>")
    out.append('<h3 id="glossary">Numbers and what they mean</h3><dl class="glossary">' + "".join(items) + "</dl>")
    # The comparisons' test details.
    if len(comparisons):
        out.append('<h3 id="tests">The comparisons in full</h3>')
        rows = []
        for _, r in comparisons.iterrows():
            rows.append([str(r["config"]), str(int(r["n"])), str(int(r["n_paired"])),
                         format_level(r.get("mean_raw"), fraction), format_plain(r.get("beta"), 2),
                         format_plain(r.get("df"), 3), format_p(r.get("p_value")).lstrip("= "),
                         format_p(r.get("p_adjusted")).lstrip("= "), format_spread(r.get("mde"), fraction),
                         format_plain(r.get("effect_size")), format_plain(r.get("prob_superior"), 2),
                         format_plain(r.get("aso_eps"), 2)])
        out.append(_table(["Config", "Runs", "Shared seeds", "Plain mean", "β", "df", "p", "p adjusted",
                           "Detectable", "Cohen's d", "P(superior)", "ASO ε"], rows))
        out.append('<p class="muted">β: weight on the baseline\'s runs at the variant\'s seeds (0: the seed '
                   "effect is nil and every run counts alike). p adjusted: the family's single-step adjustment; "
                   "below α exactly when the interval misses 0. Detectable: the smallest difference this "
                   "variant's runs detect with the target power. Cohen's d, P(superior) (a variant run beats a "
                   "baseline run) and ASO ε (almost stochastic order, &lt; 0.5 favours the variant; says little "
                   "under about 10 runs a side) describe; they never decide a verdict.</p>")
        needed = [seeds_needed_sentence(r, s, fraction) for _, r in comparisons.iterrows()
                  if r.get("verdict") == Verdict.INCONCLUSIVE]
        if needed:
            out.append('<h3 id="seeds-needed">Seeds that would decide</h3><ul class="sentences">'
                       + "".join(f"<li>{escape(t)}</li>" for t in needed) + "</ul>")
    if s.noise_sources:
        out.append('<h3 id="noise-sources">Where the noise comes from</h3>')
        out.append(f"<p>{escape(noise_budget_sentence(s, fraction))}</p>")
        rows = [[("all sources together" if r.source == "all" else f"{r.source} alone"), _n(r.n),
                 format_spread(r.sd, fraction),
                 format_interval(*(r.sd_ci or [None, None]), fraction),
                 format_share(r.share) if r.share is not None else "",
                 (f"{format_share(r.share_ci[0])} to {format_share(r.share_ci[1])}"
                  if r.share_ci else "")] for r in s.noise_sources]
        out.append(_table(["Source", "Runs", "sd", "CI", "Share of all together", "CI"], rows))
    out.append('<h3 id="importance">Hyperparameters</h3>')
    out.append(_importance_table(importance, fraction))
    return "".join(out)


def _detail_values(s: Summary, fraction: bool):
    """(field, formatted value) for the glossary, in reading order."""
    ci = s.noise_floor_ci or [None, None]
    share_ci = s.hp_variance_share_ci or [None, None]
    df = s.configs_differ_df or [None, None]
    yield "noise_floor", f"{format_spread(s.noise_floor, fraction)} (CI {format_interval(ci[0], ci[1], fraction)})"
    yield "noise_floor_robust", format_spread(s.noise_floor_robust, fraction)
    if s.val_sampling_floor is not None:
        yield "val_sampling_floor", f"{format_spread(s.val_sampling_floor, fraction)} (N = {s.eval_size})"
    if s.test_sampling_floor is not None:
        yield "test_sampling_floor", f"{format_spread(s.test_sampling_floor, fraction)} (N = {s.eval_size})"
    yield "equivalence_margin", format_spread(s.equivalence_margin, fraction)
    yield "configs_differ_pvalue", (f"p {format_p(s.configs_differ_pvalue)} (F = {format_plain(s.configs_differ_f)}, "
                                    f"df {format_plain(df[0])} and {format_plain(df[1])})")
    yield "hp_variance_share", (f"{format_share(s.hp_variance_share)} (CI {format_share(share_ci[0])} to "
                                f"{format_share(share_ci[1])}; {s.hp_variance_share_method or 'n/a'})")
    yield "signal_fixed_seed", format_spread(s.signal_fixed_seed, fraction)
    for name in ("var_config", "var_seed", "var_residual"):
        yield name, format_variance(getattr(s, name), fraction)
    yield "seed_share", format_plain(s.seed_share, 2)
    if s.search_trials:
        yield "search_trials", f"{_n(s.search_trials)} at seed {s.search_seed}"
        yield "search_expected_best", (f"{format_level(s.search_expected_best, fraction)} (re-rolling the seed as "
                                       f"often: {format_level(s.noise_expected_best, fraction)})")
        yield "trials_worth", _n(s.trials_worth)
    if s.search_winner_probability is not None:
        lead = (f"ahead by {format_spread(s.search_winner_lead, fraction)}" if s.search_winner_lead
                else "tied with the runner-up")
        yield "search_winner_probability", (f"{format_plain(s.search_winner_probability, 2)}: {s.search_winner} "
                                            f"{lead} among the top {s.search_winner_top_k}")
    if s.search_confirmed:
        yield "search_confirmed", "; ".join(
            f"{r.config}: {format_diff(r.search_diff, fraction)} → {format_diff(r.diff, fraction)} "
            f"({verdict_label(r.verdict)})" for r in s.search_confirmed)
    if s.noise_floor_sources:
        yield "noise_floor_sources", ", ".join(s.noise_floor_sources)
    if s.noise_sources:
        yield "noise_sources", "; ".join(
            f"{r.source}: {format_spread(r.sd, fraction)} over {r.n} runs"
            + (f" (CI {format_interval(r.sd_ci[0], r.sd_ci[1], fraction)})" if r.sd_ci else "")
            + (f", {format_share(r.share)} of all" if r.share is not None else "")
            for r in s.noise_sources if r.sd is not None)
    if s.noise_sources_adds_up is not None:
        yield "noise_sources_adds_up", (f"{s.noise_sources_adds_up} (ratio {format_plain(s.noise_sources_sum_ratio, 2)})")
    if s.noise_sources_skipped:
        yield "noise_sources_skipped", ", ".join(s.noise_sources_skipped)
    yield "per_comparison_alpha", format_plain(s.per_comparison_alpha, 3)
    yield "mde", (f"{format_spread(s.mde, fraction)} (with {_n(s.mde_n)} runs; "
                  f"{format_spread(s.mde_upper, fraction)} at the noise floor's upper bound)")
    needed = "; ".join(f"{row.noise_floors:g} noise floors: {_n(row.seeds)} ({_n(row.seeds_upper)})"
                       for row in (s.seeds_needed_for or []))
    yield "seeds_needed_for", needed or "n/a"
    yield "seeds_for_equivalence", (f"{_n(s.seeds_for_equivalence)} ({_n(s.seeds_for_equivalence_upper)} at the "
                                    "upper bound)")


def _importance_table(importance: pd.DataFrame | None, fraction: bool) -> str:
    if importance is None or len(importance) == 0:
        return ('<p class="muted">No hyperparameter was varied over two or more levels.</p>')
    rows = []
    for _, r in importance.iterrows():
        configs, verdict, direction = r.get("configs"), r.get("verdict"), r.get("direction")
        where = "the search" if r.get("design") == "search" else "all runs"
        rows.append([str(r["hparam"]), configs if isinstance(configs, str) and configs else where,
                     format_spread(r.get("effect"), fraction), format_plain(r.get("effect_over_noise"), 2),
                     str(r.get("test", "")), format_p(r.get("p_adjusted")).lstrip("= "),
                     _badge(verdict, importance_color(verdict, direction), importance_label(verdict, direction))])
    return (_table(["Hyperparameter", "Variants", "Largest difference", "× noise floor", "Test", "p adjusted",
                    "Verdict"], rows, verdict_col=6)
            + '<p class="muted">A hyperparameter matters when one of its one-at-a-time variants is better or '
              "worse, and is negligible when all of them are equivalent: the same intervals as the verdict "
              "table.</p>")


def _runs_table(runs: pd.DataFrame, s: Summary, fraction: bool) -> str:
    """Every run, one row each, in a collapsed section."""
    cols = [c for c in ("config", "seed", s.metric, "epochs_run", "status", "wall_time_s") if c in runs]
    rows = []
    for _, r in runs[cols].iterrows():
        cells = []
        for c in cols:
            v = r[c]
            if c == s.metric:
                cells.append(format_level(v, fraction))
            elif c == "wall_time_s":
                cells.append("n/a" if is_missing(v) else f"{float(v):.1f} s")
            else:
                cells.append("n/a" if v is None or (isinstance(v, float) and v != v) else str(v))
        rows.append(cells)
    head = [{"epochs_run": "epochs", "wall_time_s": "wall time"}.get(c, c) for c in cols]
    return (f'<details id="runs"><summary>All {len(runs)} runs</summary>{_table(head, rows)}</details>')


_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
         ".svg": "image/svg+xml", ".gif": "image/gif", ".webp": "image/webp"}


def _figure(name: str, path) -> str:
    figure = FIGURE.get(name)
    title = figure.title if figure else name.replace("_", " ").capitalize()
    caption = f"<b>{escape(title)}.</b> {escape(figure.caption)}" if figure else escape(title)
    path = Path(path)
    if not path.is_file():
        return (f'<figure><p class="muted">Figure {escape(name)} is not available '
                f"({escape(str(path))}).</p></figure>")
    mime = _MIME.get(path.suffix.lower(), "application/octet-stream")
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure id="fig-{escape(name)}"><img src="data:{mime};base64,{data}" '
            f'alt="{escape(title)}"><figcaption>{caption}</figcaption></figure>')


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
    summary: Summary | Mapping,
    comparisons: pd.DataFrame | None,
    importance: pd.DataFrame | None,
    plots: Mapping[str, str | os.PathLike],
    out_path: str | os.PathLike,
    *,
    title: str = "noisefloor report",
    params_text: str | None = None,
    notes: str | Iterable[str] | None = None,
    runs: pd.DataFrame | None = None,
    provenance: Iterable[tuple[str, str]] | None = None,
) -> Path:
    """Write one self-contained HTML report.

    Parameters
    ----------
    summary : Summary or mapping
        The analysis summary (a mapping is read with ``Summary.from_dict``).
    comparisons : pandas.DataFrame or None
        One row per variant (``comparisons.csv``).
    importance : pandas.DataFrame or None
        Hyperparameter importance table; may be empty.
    plots : mapping of str to path
        Figure name -> image file, embedded in the given order.
    out_path : str or os.PathLike
        Where to write the HTML file (atomically).
    title : str
        Page title and heading.
    params_text : str, optional
        The parameters used, shown verbatim.
    notes : str or iterable of str, optional
        Extra notes listed at the end.
    runs : pandas.DataFrame, optional
        The runs table, listed run by run in a collapsed section.
    provenance : iterable of (label, value), optional
        Where the numbers come from (see :func:`noisefloor.provenance.provenance`).

    Returns
    -------
    pathlib.Path
        The written path.
    """
    s = summary if isinstance(summary, Summary) else Summary.from_dict(summary or {})
    comparisons = comparisons if comparisons is not None else pd.DataFrame()
    if len(comparisons) and "diff" in comparisons:
        key = pd.to_numeric(comparisons["diff"], errors="coerce") * (1 if s.direction != "min" else -1)
        comparisons = comparisons.assign(_k=key).sort_values("_k", ascending=False, na_position="last") \
                                 .drop(columns="_k")
    fraction = s.percent

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="question" id="question">{_question(s)}</p>',
        f'<p class="answer" id="answer">{escape(answer_sentence(s, comparisons, fraction))}</p>',
        '<div id="verdicts">', _verdict_table(comparisons, s, fraction), "</div>",
        '<div id="headline">', _headline(s, fraction), "</div>",
    ]
    if plots:
        parts.append('<h2 id="figures">Figures</h2>')
        parts += [_figure(str(name), path) for name, path in plots.items()]
    parts += ['<h2 id="details">Details</h2>', _details(s, comparisons, importance, fraction)]
    if provenance:
        parts.append('<h2 id="provenance">Provenance</h2>')
        parts.append(_table(None, [[k, v] for k, v in provenance]))
    if runs is not None and len(runs):
        parts.append(_runs_table(runs, s, fraction))
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
