"""Figures for a noisefloor analysis.

Every public ``plot_*`` function takes already-computed data and an output
path, writes exactly one PNG through :func:`noisefloor.io.save_figure`, and
returns the path. The matching ``*_figure`` function builds and returns the
:class:`matplotlib.figure.Figure` without saving it, so tests (and notebooks)
can inspect axes directly.

Nothing here does inference: the only numbers computed are means and standard
deviations used to draw bands and to state the finding in a title. Runs whose
``status`` is not ``"ok"`` (or whose metric is missing) are left out and
counted in a footnote.

Figures are built on :class:`matplotlib.figure.Figure` rather than
``pyplot`` so rendering works under any backend and no global figure state
leaks between calls.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib import transforms
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .display import (
    BASELINE_COLOR,
    NEUTRAL_PALETTE,
    SEARCH_COLOR,
    Units,
    fold_single_runs,
    correction_name,
    importance_color,
    importance_label,
    is_missing,
    parts_words,
    verdict_color,
    verdict_label,
)
from .io import save_figure
from .summary import NotConverged, Summary
from .vocab import VERDICTS, Importance, Verdict, hp_column

__all__ = [
    "DPI",
    "plot_noise_vs_signal",
    "noise_vs_signal_figure",
    "plot_config_distributions",
    "config_distributions_figure",
    "plot_differences",
    "differences_figure",
    "plot_learning_curves",
    "learning_curves_figure",
    "plot_importance",
    "importance_figure",
    "plot_search_payoff",
    "search_payoff_figure",
    "plot_marginal_effects",
    "marginal_effects_figure",
    "plot_noise_budget",
    "noise_budget_figure",
]

#: Resolution of every PNG written by this module.
DPI = 120

_NOISE_COLOR = BASELINE_COLOR
_TITLE_SIZE = 12
#: Fewer runs than this are drawn as points and their mean, not as a box.
MIN_RUNS_FOR_BOX = 10
_FOOTNOTE_COLOR = "#555555"


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def _sig(value: float, digits: int = 3) -> str:
    """Format ``value`` with about ``digits`` significant digits, no exponent."""
    if value == 0 or not np.isfinite(value):
        return f"{value:g}" if not np.isfinite(value) else "0"
    decimals = max(0, digits - 1 - int(np.floor(np.log10(abs(value)))))
    return f"{value:.{min(decimals, 8)}f}"


def _ok_mask(frame: pd.DataFrame, metric: str) -> pd.Series:
    """Rows that can be plotted: status ok (if present) and a finite metric."""
    mask = pd.Series(True, index=frame.index)
    if "status" in frame.columns:
        mask &= frame["status"].astype(str).eq("ok")
    if metric in frame.columns:
        vals = pd.to_numeric(frame[metric], errors="coerce")
        mask &= np.isfinite(vals.to_numpy(dtype=float))
    else:
        mask &= False
    return mask


def _split_ok(frame: pd.DataFrame, metric: str) -> tuple[pd.DataFrame, int]:
    """Return the plottable rows of ``frame`` and how many were left out."""
    mask = _ok_mask(frame, metric)
    return frame.loc[mask].copy(), int((~mask).sum())


def _excluded_note(fig: Figure, n_excluded: int, what: str = "run") -> None:
    """Add a footnote saying how many items were left out (only when > 0)."""
    if n_excluded > 0:
        plural = "s" if n_excluded != 1 else ""
        # supxlabel takes part in constrained layout, so it never overlaps ticks.
        fig.supxlabel(
            f"{n_excluded} excluded/diverged {what}{plural} not shown",
            fontsize=9,
            color=_FOOTNOTE_COLOR,
            style="italic",
        )


def _new_figure(width: float, height: float, **kwargs) -> Figure:
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained", **kwargs)


def _empty_message(ax, message: str) -> None:
    ax.text(
        0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes,
        fontsize=11, color=_FOOTNOTE_COLOR, wrap=True,
    )


def _jitter(n: int, width: float = 0.12, seed: int = 0) -> np.ndarray:
    # A fixed generator keeps re-rendered figures byte-comparable.
    return np.random.default_rng(seed).uniform(-width, width, size=n)


def _seed_colors(seeds: Sequence) -> dict:
    """A colour per seed from the neutral palette (no verdict's, baseline's or search's colour)."""
    return {s: NEUTRAL_PALETTE[i % len(NEUTRAL_PALETTE)] for i, s in enumerate(seeds)}


def _config_colors(configs: Sequence, baseline: str) -> dict:
    """The baseline in its colour, the variants in the neutral palette: a config's colour is only its name."""
    variants = [c for c in configs if c != baseline]
    colors = {c: NEUTRAL_PALETTE[i % len(NEUTRAL_PALETTE)] for i, c in enumerate(variants)}
    colors[baseline] = BASELINE_COLOR
    return colors


def _n(count: int, word: str) -> str:
    """``"1 seed"``, ``"3 seeds"``."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def _t(text) -> str:
    """Text from the data, shown literally: a ``$`` would otherwise start mathtext."""
    return str(text).replace("$", r"\$")


def _baseline_tick(name: str) -> str:
    """Tick label for the baseline, tagged unless its name already says so."""
    return _t(name) if "baseline" in str(name).lower() else f"{_t(name)}\n(baseline)"


def _shorten(label: str, limit: int = 28) -> str:
    """Shorten one line of a tick label in the middle, keeping both distinguishing ends."""
    if len(label) <= limit:
        return label
    keep = (limit - 1) // 2
    return f"{label[:keep]}…{label[-keep:]}"


def _tick_room(labels: Sequence[str], width_in: float) -> float:
    """Extra figure height (inches) that rotated tick labels will need; 0 if they fit flat."""
    lines = [_shorten(part) for l in labels for part in str(l).split("\n")]
    longest = max((len(part) for part in lines), default=0)
    if (longest + 2) / 12 <= width_in / max(1, len(labels)):
        return 0.0
    one_line = max((len(" · ".join(_shorten(p) for p in str(l).split("\n"))) for l in labels), default=0)
    # Roughly 0.075 in per character, times sin(45°); never more than 3.5 in.
    return min(3.5, 0.055 * one_line)


def _style_category_ticks(ax, labels: Sequence[str], colors: Sequence | None = None,
                          width_in: float | None = None) -> None:
    """Category tick labels that do not collide.

    Horizontal when they fit, otherwise on one line rotated 45° (or 90° when
    the categories are packed tightly). Very long names are shortened in the
    middle; the report's tables carry the full names.
    """
    labels = ["\n".join(_shorten(part) for part in str(l).split("\n")) for l in labels]
    ax.set_xticks(range(len(labels)))
    if width_in is None:
        width_in = ax.figure.get_figwidth() * ax.get_position().width
    spacing = width_in / max(1, len(labels))
    longest = max((len(part) for l in labels for part in l.split("\n")), default=0)
    # About 12 characters of 10 pt text fit in an inch; leave a gap between labels.
    if (longest + 2) / 12 <= spacing:
        ax.set_xticklabels(labels)
    else:
        labels = [l.replace("\n", " · ") for l in labels]
        # A rotated label needs about text height / sin(angle) of horizontal room.
        angle = 45 if spacing >= 0.28 else 90
        ax.set_xticklabels(labels, rotation=angle, ha="right" if angle == 45 else "center",
                           rotation_mode="anchor" if angle == 45 else "default")
    if colors is not None:
        for tick, color in zip(ax.get_xticklabels(), colors):
            tick.set_color(color)


def _save(fig: Figure, path) -> Path:
    path = Path(path)
    save_figure(path, fig, dpi=DPI)
    return path


# --------------------------------------------------------------------------
# noise vs signal (headline)
# --------------------------------------------------------------------------


def noise_vs_signal_figure(
    runs: pd.DataFrame,
    metric: str,
    baseline: str,
    noise_seeds: Sequence[int],
    signal_seeds: Sequence[int],
    summary: Summary | Mapping[str, Any] | None = None,
    *,
    percent: bool,
) -> Figure:
    """Build the headline noise-vs-signal figure (see :func:`plot_noise_vs_signal`).

    Returns
    -------
    matplotlib.figure.Figure
        Figure with two axes sharing the y axis: ``fig.axes[0]`` is the noise
        panel, ``fig.axes[1]`` the signal panel.
    """
    if summary is not None and not isinstance(summary, Summary):
        summary = Summary.from_dict(summary)          # summary.json's content
    noise_seeds = list(noise_seeds)
    signal_seeds = list(signal_seeds)
    noise_all = runs[(runs["config"] == baseline) & runs["seed"].isin(noise_seeds)]
    signal_all = runs[runs["seed"].isin(signal_seeds)]
    noise, _ = _split_ok(noise_all, metric)
    signal, _ = _split_ok(signal_all, metric)
    # A run can sit in both conditions (baseline at a shared seed); count it once.
    shown_or_not = pd.concat([noise_all, signal_all]).drop_duplicates(subset=["config", "seed"])
    n_excluded = int((~_ok_mask(shown_or_not, metric)).sum())

    units = Units(metric, percent)
    s = units.scale

    n_signal_configs = signal["config"].nunique()
    fig_width = min(20.0, max(11.0, 5.0 + 0.45 * n_signal_configs))
    # The seed legend takes about 1.6 in to the right of the signal panel.
    signal_width = (fig_width - 1.6) * 2.6 / 3.6
    fig = _new_figure(fig_width, 5.4 + _tick_room([str(c) for c in pd.unique(signal["config"])], signal_width))
    gs = fig.add_gridspec(1, 2, width_ratios=[1, 2.6])
    ax_n = fig.add_subplot(gs[0])
    ax_s = fig.add_subplot(gs[1], sharey=ax_n)

    # ---- noise panel --------------------------------------------------------
    noise_vals = noise[metric].to_numpy(dtype=float) * s
    if summary is not None and not is_missing(summary.noise_floor):
        noise_std = float(summary.noise_floor) * s     # the analysis' own number, not a second one
    else:
        noise_std = float(np.std(noise_vals, ddof=1)) if noise_vals.size > 1 else np.nan
    noise_mean = float(np.mean(noise_vals)) if noise_vals.size else np.nan
    if noise_vals.size:
        ax_n.boxplot(
            [noise_vals], positions=[0], widths=0.5, showfliers=False, patch_artist=True,
            boxprops=dict(facecolor="#dbe7f3", edgecolor="#555555"),
            medianprops=dict(color="#333333"), whiskerprops=dict(color="#555555"),
            capprops=dict(color="#555555"),
        )
        ax_n.scatter(_jitter(noise_vals.size), noise_vals, s=22, color=_NOISE_COLOR,
                     alpha=0.75, edgecolor="white", linewidth=0.5, zorder=3)
        if np.isfinite(noise_std):
            for ax, alpha in ((ax_n, 0.18), (ax_s, 0.10)):
                ax.axhspan(noise_mean - noise_std, noise_mean + noise_std,
                           color=_NOISE_COLOR, alpha=alpha, lw=0, zorder=0)
                ax.axhline(noise_mean, color=_NOISE_COLOR, lw=1.2, ls="--", zorder=1)
    else:
        _empty_message(ax_n, "no successful\nbaseline runs\nat the noise seeds")
    ax_n.set_xlim(-0.6, 0.6)
    ax_n.set_xticks([0])
    ax_n.set_xticklabels([f"{_t(baseline)}\n{_n(noise_vals.size, 'seed')}"])
    ax_n.set_ylabel(units.axis_label())
    ax_n.set_title("Noise: same config, seed varies", fontsize=10.5)
    ax_n.grid(axis="y", alpha=0.3)

    # ---- signal panel -------------------------------------------------------
    if len(signal):
        means = signal.groupby("config")[metric].mean()
        variants = sorted((c for c in means.index if c != baseline), key=lambda c: -means[c])
        order = ([baseline] if baseline in means.index else []) + variants
        xpos = {c: i for i, c in enumerate(order)}
        seed_colors = _seed_colors([sd for sd in signal_seeds if sd in set(signal["seed"])])
        n_seeds = len(seed_colors)
        # Small horizontal offsets per seed keep coincident points visible.
        offsets = np.linspace(-0.18, 0.18, n_seeds) if n_seeds > 1 else np.zeros(1)
        for k, (sd, color) in enumerate(seed_colors.items()):
            sub = signal[signal["seed"] == sd]
            sub = sub.assign(_x=sub["config"].map(xpos)).sort_values("_x")
            x = sub["_x"].to_numpy(dtype=float) + offsets[k]
            y = sub[metric].to_numpy(dtype=float) * s
            ax_s.plot(x, y, color=color, lw=0.9, alpha=0.55, zorder=2)
            ax_s.scatter(x, y, color=color, s=30, edgecolor="white", linewidth=0.5,
                         zorder=3, label=f"seed {sd}")
        mean_vals = np.array([means[c] for c in order]) * s
        ax_s.scatter(range(len(order)), mean_vals, marker="_", s=600, color="black",
                     linewidth=2, zorder=4, label="config mean")
        labels = [_baseline_tick(c) if c == baseline else _t(c) for c in order]
        _style_category_ticks(ax_s, labels, width_in=signal_width)
        ax_s.set_xlim(-0.6, len(order) - 0.4)
        handles, lbls = ax_s.get_legend_handles_labels()
        if np.isfinite(noise_std):
            handles.append(Patch(color=_NOISE_COLOR, alpha=0.25, lw=0))
            lbls.append("baseline mean ± 1 std\n(noise condition)")
        ax_s.legend(handles, lbls, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                    fontsize=8.5, frameon=False, title="lines join a seed", title_fontsize=8.5)
        signal_std = float(np.std(mean_vals, ddof=1)) if len(order) > 1 else np.nan
        n_configs = len(order)
    else:
        _empty_message(ax_s, "no successful runs at the signal seeds")
        ax_s.set_xticks([])
        signal_std, n_configs, n_seeds = np.nan, 0, 0
    ax_s.tick_params(axis="y", labelleft=False)
    ax_s.set_title(f"Signal: seed fixed, config varies ({_n(n_configs, 'config')} × {_n(n_seeds, 'shared seed')})",
                   fontsize=10.5)
    ax_s.grid(axis="y", alpha=0.3)

    # ---- finding ------------------------------------------------------------
    # noise_std/signal_std are already in display units (pp for fractions).
    unit = " pp" if units.fraction else ""
    fmt = (lambda v: f"{v:.2f}") if units.fraction else _sig
    nf = fmt(noise_std) + unit if np.isfinite(noise_std) else "n/a"
    sg = fmt(signal_std) + unit if np.isfinite(signal_std) else "n/a"
    numbers = (f"noise floor: std {nf} over {_n(noise_vals.size, 'seed')}  |  "
               f"spread of the config means {sg} across {_n(n_configs, 'config')}")
    headline = f"{_t(metric)}: seed noise vs hyperparameter signal"
    if summary is not None and not is_missing(summary.noise_floor):
        # The analysis' own numbers, so the figure and the report agree.
        numbers = f"noise floor (baseline seed std): {fmt(float(summary.noise_floor) * s) + unit}"
        share = summary.hp_variance_share
        if not is_missing(share):
            lo, hi = summary.hp_variance_share_ci or [None, None]
            ci = "" if is_missing(lo) or is_missing(hi) else f" (CI {lo * 100:.0f} to {hi * 100:.0f} %)"
            headline = (f"Hyperparameters explain {share * 100:.0f} %{ci} of the spread of {_t(metric)} "
                        "across configs at a fixed seed")
    fig.suptitle(f"{headline}\n{numbers}", fontsize=_TITLE_SIZE)
    _excluded_note(fig, n_excluded)
    return fig


def plot_noise_vs_signal(
    runs: pd.DataFrame,
    metric: str,
    baseline: str,
    noise_seeds: Sequence[int],
    signal_seeds: Sequence[int],
    path: str | os.PathLike,
    *,
    summary: Summary | Mapping[str, Any] | None = None,
    percent: bool,
) -> Path:
    """Headline figure: the metric under the noise condition next to the signal condition.

    Left panel: the baseline at the noise seeds (points + box, dashed mean and
    a shaded mean ± 1 std band). Right panel: every config at the shared signal
    seeds; points of one seed share a colour and are joined by a line, so the
    pairing across configs is visible. Both panels share the y axis, and the
    noise band is repeated faintly behind the signal panel for comparison.

    Parameters
    ----------
    runs : pandas.DataFrame
        One row per run with at least ``config``, ``seed`` and ``metric``;
        rows whose ``status`` is not ``"ok"`` are left out and counted.
    metric : str
        Column to plot.
    baseline : str
        Name of the baseline config.
    noise_seeds, signal_seeds : sequence of int
        Seeds of the noise condition (baseline only) and of the signal
        condition (every config).
    path : str or os.PathLike
        Output PNG path.
    summary : Summary or mapping, optional
        The analysis summary (a mapping, such as ``summary.json``'s content,
        is read with ``Summary.from_dict``): when given, the noise band and
        the title use its ``noise_floor`` and ``hp_variance_share`` instead
        of numbers computed from the runs shown.
    percent : bool
        ``Summary.percent``: the analysis' decision to show the metric in percent
        (differences in percentage points) or in its own units.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    return _save(noise_vs_signal_figure(runs, metric, baseline, noise_seeds, signal_seeds, summary,
                                       percent=percent), path)


# --------------------------------------------------------------------------
# per-config distributions
# --------------------------------------------------------------------------


def _verdicts(comparisons: pd.DataFrame | None) -> dict:
    if comparisons is None or len(comparisons) == 0 or "verdict" not in comparisons:
        return {}
    return dict(zip(comparisons["config"].astype(str), comparisons["verdict"]))


def config_distributions_figure(
    runs: pd.DataFrame,
    comparisons: pd.DataFrame | None,
    metric: str,
    baseline: str,
    noise_floor: float | None,
    *,
    percent: bool,
) -> Figure:
    """Build the per-config distribution figure (see :func:`plot_config_distributions`)."""
    ok, n_excluded = _split_ok(runs, metric)
    units = Units(metric, percent)
    s = units.scale
    verdicts = _verdicts(comparisons)

    n_configs = max(1, ok["config"].nunique())
    fig_width = min(16.0, max(8.0, 3.0 + 1.4 * n_configs))
    # The legend to the right takes about 1.9 in of the figure width.
    axes_width = fig_width - 2.9
    config_names = [str(c) for c in pd.unique(ok["config"])]
    longest_verdict = max((verdict_label(v) for v in verdicts.values()), key=len, default="")
    probe = [f"{c}\n{longest_verdict}\nn=00" for c in config_names]
    fig = _new_figure(fig_width, 5.6 + _tick_room(probe, axes_width))
    ax = fig.add_subplot()
    if len(ok) == 0:
        _empty_message(ax, "no successful runs to show")
        fig.suptitle(f"{_t(metric)}: per-config distributions", fontsize=_TITLE_SIZE)
        _excluded_note(fig, n_excluded)
        return fig

    means = ok.groupby("config")[metric].mean()
    # Baseline first, then the variants from best-looking to worst-looking by diff
    # (from the comparison table when available, so the order matches the report).
    if comparisons is not None and len(comparisons) and "diff" in comparisons:
        diff = dict(zip(comparisons["config"].astype(str), comparisons["diff"]))
    else:
        diff = {}
    base_level = means.get(baseline, np.nan)

    def _order_key(config) -> float:
        d = diff.get(str(config))
        if is_missing(d):
            d = means[config] - base_level
        return -float(d) if not is_missing(d) else np.inf

    variants = sorted((c for c in means.index if c != baseline), key=_order_key)
    order = ([baseline] if baseline in means.index else []) + variants

    colors = [BASELINE_COLOR if c == baseline else verdict_color(verdicts.get(str(c))) for c in order]
    data = [ok.loc[ok["config"] == c, metric].to_numpy(dtype=float) * s for c in order]

    # Baseline band first so it sits behind everything.
    base_mean = means.get(baseline, np.nan) * s
    have_band = not is_missing(noise_floor) and np.isfinite(base_mean)
    if have_band:
        nf = float(noise_floor) * s
        ax.axhspan(base_mean - nf, base_mean + nf, color=BASELINE_COLOR, alpha=0.13, lw=0, zorder=0)
    if np.isfinite(base_mean):
        ax.axhline(base_mean, color=BASELINE_COLOR, lw=1.2, ls="--", zorder=1)

    # A box summarises a distribution only when there are enough runs to have one;
    # with a handful of runs the points themselves are the honest picture.
    boxed = [i for i, vals in enumerate(data) if vals.size >= MIN_RUNS_FOR_BOX]
    if boxed:
        bp = ax.boxplot([data[i] for i in boxed], positions=boxed, widths=0.55, showfliers=False,
                        patch_artist=True, medianprops=dict(color="#333333"))
        for patch, i in zip(bp["boxes"], boxed):
            patch.set_facecolor(colors[i])
            patch.set_alpha(0.22)
            patch.set_edgecolor("#555555")
    for i, vals in enumerate(data):
        if vals.size and vals.size < MIN_RUNS_FOR_BOX:
            ax.hlines(vals.mean(), i - 0.22, i + 0.22, color=colors[i], lw=2, zorder=2)
    for i, (vals, color) in enumerate(zip(data, colors)):
        ax.scatter(i + _jitter(vals.size, seed=i), vals, s=20, color=color, alpha=0.85,
                   edgecolor="white", linewidth=0.4, zorder=3)

    labels = []
    for c, vals in zip(order, data):
        name = _baseline_tick(c) if c == baseline else f"{_t(c)}\n{verdict_label(verdicts.get(str(c)))}"
        labels.append(f"{name}\nn={vals.size}")
    _style_category_ticks(ax, labels, colors, width_in=axes_width)
    ax.set_xlim(-0.6, len(order) - 0.4)
    ax.set_ylabel(units.axis_label())
    ax.set_xlabel("config (colour = verdict against the baseline)")
    ax.grid(axis="y", alpha=0.3)

    handles = [
        Line2D([], [], color=BASELINE_COLOR, ls="--", label=f"{_t(baseline)} mean"),
    ]
    if have_band:
        handles.append(Patch(color=BASELINE_COLOR, alpha=0.25, lw=0,
                             label=f"± noise floor ({units.fmt_spread(noise_floor)})"))
    present = [v for v in VERDICTS
               if v in {str(x) for x in verdicts.values()}]
    handles += [Patch(color=verdict_color(v), alpha=0.6, label=verdict_label(v)) for v in present]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8.5,
              frameon=False)

    fig.suptitle(f"{_t(metric)} of every run, per config, against {_t(baseline)}'s mean ± the noise floor",
                 fontsize=_TITLE_SIZE)
    ax.set_title(f"a box where a config has {MIN_RUNS_FOR_BOX} or more runs; a bar at the mean otherwise",
                 fontsize=9.5, color="#555555")
    _excluded_note(fig, n_excluded)
    return fig


def plot_config_distributions(
    runs: pd.DataFrame,
    comparisons: pd.DataFrame | None,
    metric: str,
    baseline: str,
    noise_floor: float | None,
    path: str | os.PathLike,
    *,
    percent: bool,
) -> Path:
    """Per-config distributions against the baseline's noise band.

    Each config gets a box and its individual runs as points, coloured by the
    verdict from ``comparisons`` (better green, worse red, equivalent blue, inconclusive grey).
    A horizontal band of the baseline mean ± ``noise_floor`` spans the plot so
    a reader sees at once which configs leave the band.

    Parameters
    ----------
    runs : pandas.DataFrame
        One row per run (``config``, ``seed``, ``status``, ``metric``).
    comparisons : pandas.DataFrame or None
        One row per variant with at least ``config`` and ``verdict``
        (``diff`` orders the configs when present).
    metric : str
        Column to plot.
    baseline : str
        Baseline config name.
    noise_floor : float or None
        Seed-noise standard deviation in metric units; no band when None.
    path : str or os.PathLike
        Output PNG path.
    percent : bool
        ``Summary.percent``: the analysis' decision to show the metric in percent
        (differences in percentage points) or in its own units.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    return _save(config_distributions_figure(runs, comparisons, metric, baseline, noise_floor, percent=percent),
                 path)


# --------------------------------------------------------------------------
# differences (forest plot)
# --------------------------------------------------------------------------


def _p_text(p) -> str:
    if is_missing(p):
        return "p n/a"
    p = float(p)
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def differences_figure(
    comparisons: pd.DataFrame,
    noise_floor: float | None,
    *,
    metric: str | None = None,
    margin: float | None = None,
    direction: str = "max",
    percent: bool,
) -> Figure:
    """Build the forest plot of differences (see :func:`plot_differences`)."""
    comp = comparisons.copy() if comparisons is not None else pd.DataFrame()
    n_folded = 0
    if len(comp):
        comp, folded = fold_single_runs(comp, direction)   # a search's single runs: the best few, as in the table
        comp, n_folded = comp.copy(), len(folded)
    units = Units(metric, percent)
    s = units.scale
    baseline = str(comp["baseline"].iloc[0]) if "baseline" in comp and len(comp) else "baseline"

    n = len(comp)
    fig = _new_figure(9.5, max(3.2, 1.6 + 0.42 * n))
    ax = fig.add_subplot()
    if n == 0:
        _empty_message(ax, "no variant comparisons to show")
        ax.set_axis_off()
        fig.suptitle("Differences from the baseline", fontsize=_TITLE_SIZE)
        return fig

    comp["_diff"] = pd.to_numeric(comp["diff"], errors="coerce") * s
    comp["_lo"] = pd.to_numeric(comp.get("ci_low"), errors="coerce") * s
    comp["_hi"] = pd.to_numeric(comp.get("ci_high"), errors="coerce") * s
    # Largest difference at the top; rows without a difference go to the bottom.
    comp = comp.sort_values("_diff", ascending=True, na_position="first").reset_index(drop=True)
    y = np.arange(n)

    band = noise_floor if is_missing(margin) else margin
    if not is_missing(band):
        what = "equivalence margin" if not is_missing(margin) and margin != noise_floor else \
            "equivalence margin = noise floor"
        ax.axvspan(-float(band) * s, float(band) * s, color=verdict_color(Verdict.EQUIVALENT), alpha=0.12, lw=0,
                   zorder=0, label=f"± {what} ({units.fmt_spread(band)})")
    ax.axvline(0, color="#333333", lw=1, zorder=1)

    for i, row in comp.iterrows():
        color = verdict_color(row.get("verdict"))
        if np.isfinite(row["_lo"]) and np.isfinite(row["_hi"]):
            ax.plot([row["_lo"], row["_hi"]], [i, i], color=color, lw=2.2, solid_capstyle="butt", zorder=2)
            ax.plot([row["_lo"]] * 2, [i - 0.15, i + 0.15], color=color, lw=1.5, zorder=2)
            ax.plot([row["_hi"]] * 2, [i - 0.15, i + 0.15], color=color, lw=1.5, zorder=2)
        if np.isfinite(row["_diff"]):
            ax.scatter([row["_diff"]], [i], s=55, color=color, edgecolor="white", zorder=3)

    ax.set_yticks(y)
    ax.set_yticklabels([_t(c) for c in comp["config"]])
    for tick, v in zip(ax.get_yticklabels(), comp.get("verdict", [None] * n)):
        tick.set_color(verdict_color(v))
    ax.set_ylim(-0.7, n - 0.3)

    # Right-hand annotation column (axes-x, data-y) outside the data area so it
    # never covers an interval.
    trans = transforms.blended_transform_factory(ax.transAxes, ax.transData)
    for i, row in comp.iterrows():
        corr = correction_name(row.get("correction"))
        p = row.get("p_adjusted", row.get("p_value"))
        text = verdict_label(row.get("verdict"))
        if not is_missing(p):
            text += f", {corr} {_p_text(p)}"
        ax.text(1.02, i, text, transform=trans, va="center", ha="left", fontsize=8.5,
                color=verdict_color(row.get("verdict")), clip_on=False)
    level = comp["simultaneous_level"].dropna().iloc[0] \
        if "simultaneous_level" in comp and comp["simultaneous_level"].notna().any() else None
    ci_label = f"{float(level) * 100:g} % simultaneous interval" if not is_missing(level) else "interval"
    ax.set_xlabel(units.diff_axis_label(f"difference from {_t(baseline)}, point = difference, bar = {ci_label}"))
    ax.grid(axis="x", alpha=0.3)
    if not is_missing(band):
        # Outside the axes: inside, it would sooner or later cover an interval.
        fig.legend(loc="outside lower center", fontsize=8.5, frameon=False)

    title = (f"Each variant's difference from {_t(baseline)}: better or worse when its interval misses 0, "
             "equivalent inside the band")
    if n_folded:
        title += f"\n({n_folded} more configs with one run each, no interval: not shown)"
    fig.suptitle(title, fontsize=_TITLE_SIZE)
    return fig


def plot_differences(
    comparisons: pd.DataFrame,
    noise_floor: float | None,
    path: str | os.PathLike,
    *,
    metric: str | None = None,
    margin: float | None = None,
    direction: str = "max",
    percent: bool,
) -> Path:
    """Forest plot of each variant's difference from the baseline.

    Each row is one variant: the point is the mean difference, the bar its
    confidence interval, the colour its verdict. A vertical zero line and a
    shaded ± noise-floor band show whether a difference is larger than what
    seeds alone produce. The verdict and the multiplicity-adjusted p value
    are written to the right of each row.

    Parameters
    ----------
    comparisons : pandas.DataFrame
        One row per variant (``config``, ``baseline``, ``diff``, ``ci_low``,
        ``ci_high``, ``confidence_level``, ``p_adjusted``, ``correction``,
        ``verdict``).
    noise_floor : float or None
        Seed-noise standard deviation in metric units; no band when None.
    path : str or os.PathLike
        Output PNG path.
    metric : str, optional
        Metric name, used for the axis label.
    direction : {"max", "min"}
        Which way the metric improves: a search's single-run configs are
        folded to the best few (:func:`noisefloor.display.fold_single_runs`).
    percent : bool
        ``Summary.percent``: the analysis' decision to show the metric in percent
        (differences in percentage points) or in its own units.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    return _save(differences_figure(comparisons, noise_floor, metric=metric, margin=margin, direction=direction,
                                    percent=percent),
                 path)


# --------------------------------------------------------------------------
# learning curves
# --------------------------------------------------------------------------


def _curves(histories: pd.DataFrame, metric: str, runs: pd.DataFrame | None) -> tuple[pd.DataFrame, int]:
    """Drop curves of excluded runs and curves that blew up; count the dropped runs."""
    h = histories.copy()
    h[metric] = pd.to_numeric(h[metric], errors="coerce")
    keys = h[["config", "seed"]].drop_duplicates()
    bad = set()
    if runs is not None and "status" in runs:
        not_ok = runs.loc[runs["status"].astype(str) != "ok", ["config", "seed"]]
        bad |= set(map(tuple, not_ok.itertuples(index=False, name=None)))
    # A curve with a non-finite value is a divergence even without a runs table;
    # drawing it would stretch the y axis until the other curves are flat lines.
    finite = np.isfinite(h[metric].to_numpy(dtype=float))
    bad |= set(map(tuple, h.loc[~finite, ["config", "seed"]].itertuples(index=False, name=None)))
    key_tuples = list(map(tuple, h[["config", "seed"]].itertuples(index=False, name=None)))
    keep = np.array([k not in bad for k in key_tuples], dtype=bool)
    n_bad = sum(1 for k in map(tuple, keys.itertuples(index=False, name=None)) if k in bad)
    return h.loc[keep].sort_values(["config", "seed", "epoch"]), n_bad


def _draw_curves(ax_n, ax_s, base, at_seed, metric, scale, baseline, legends: bool) -> None:
    """Draw the noise (baseline, every seed) and signal (every config, every shared seed) curves."""
    seeds = list(pd.unique(base["seed"]))
    colors = _seed_colors(seeds)
    for sd in seeds:
        c = base[base["seed"] == sd]
        ax_n.plot(c["epoch"], c[metric] * scale, color=colors[sd], lw=1.0, alpha=0.7)
    if len(base):
        by_epoch = base.groupby("epoch")[metric]
        mean = by_epoch.mean() * scale
        std = by_epoch.std(ddof=1).fillna(0.0) * scale
        ax_n.fill_between(mean.index, mean - std, mean + std, color="black", alpha=0.10, lw=0,
                          label="mean ± 1 std")
        ax_n.plot(mean.index, mean, color="black", lw=2.2, label=f"mean over {_n(len(seeds), 'seed')}")
        if legends:
            ax_n.legend(loc="best", fontsize=8.5, framealpha=0.9)
    else:
        _empty_message(ax_n, f"no learning curves for {_t(baseline)}")

    configs = list(pd.unique(at_seed["config"]))
    # Baseline drawn last so it stays visible on top of the variants.
    configs = [c for c in configs if c != baseline] + ([baseline] if baseline in configs else [])
    ccolors = _config_colors(configs, baseline)
    for c in configs:
        cur = at_seed[at_seed["config"] == c]
        is_base = c == baseline
        # Every seed of the config as a thin line, its mean over those seeds bold.
        for _, one in cur.groupby("seed", sort=False):
            ax_s.plot(one["epoch"], one[metric] * scale, color=ccolors[c], lw=0.7, alpha=0.35,
                      zorder=1, label="_nolegend_")
        mean = cur.groupby("epoch")[metric].mean() * scale
        ax_s.plot(mean.index, mean.to_numpy(), color=ccolors[c], lw=2.4 if is_base else 1.6,
                  label=_baseline_tick(c).replace("\n", " ") if is_base else _t(c), zorder=3 if is_base else 2)
    if not configs:
        _empty_message(ax_s, "no learning curves at the shared seeds")
    elif legends:
        ax_s.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8.5, frameon=False,
                    title="config (bold: mean)", title_fontsize=8.5)
    ax_s.tick_params(axis="y", labelleft=False)
    for ax in (ax_n, ax_s):
        ax.grid(alpha=0.3)


def learning_curves_figure(
    histories: pd.DataFrame,
    metric: str,
    baseline: str,
    signal_seeds: Sequence[int],
    *,
    runs: pd.DataFrame | None = None,
    noise_floor: float | None = None,
    not_converged: list[NotConverged] | None = None,
    percent: bool,
) -> Figure:
    """Build the learning-curve figure (see :func:`plot_learning_curves`).

    Returns
    -------
    matplotlib.figure.Figure
        ``fig.axes[0]`` noise (baseline, all seeds) and ``fig.axes[1]`` signal
        (all configs at every shared seed, with their means), sharing y. When there are at
        least four epochs, ``fig.axes[2]`` and ``fig.axes[3]`` repeat them
        zoomed on the last third of training, again sharing y.
    """
    if metric not in histories.columns or histories[metric].notna().sum() == 0:
        # A user's program that writes no history.csv (or none with this metric): say so, in the figure's place.
        fig = _new_figure(12, 2.4)
        _empty_message(fig.add_subplot(1, 1, 1),
                       f"No learning curves: the runs recorded no per-epoch {metric} "
                       "(a program writes them as history.csv, one row per epoch)")
        fig.axes[0].set_axis_off()
        return fig
    h, n_bad = _curves(histories, metric, runs)
    units = Units(metric, percent)
    s = units.scale
    signal_seeds = list(signal_seeds)
    base = h[h["config"] == baseline]
    # Every config at the seeds they share: the same seeds for all, so the spread is comparable.
    at_seed = h[h["seed"].isin(signal_seeds)]
    n_seeds = base["seed"].nunique()
    n_configs = at_seed["config"].nunique()

    max_epoch = int(h["epoch"].max()) if len(h) else 0
    # Early epochs dominate the y range, hiding the spread that matters at the
    # end of training; a zoomed second row shows it.
    zoom = max_epoch >= 4
    fig = _new_figure(12, 8.6 if zoom else 5.0)
    nrows = 2 if zoom else 1
    ax_n = fig.add_subplot(nrows, 2, 1)
    ax_s = fig.add_subplot(nrows, 2, 2, sharey=ax_n, sharex=ax_n)
    _draw_curves(ax_n, ax_s, base, at_seed, metric, s, baseline, legends=True)
    ax_n.set_title(f"Noise: {_t(baseline)}, {_n(n_seeds, 'seed')} (one colour per seed)", fontsize=10.5)
    ax_s.set_title(f"Signal: {_n(n_configs, 'config')} at {_n(len(signal_seeds), 'shared seed')} "
                   "(thin: each seed, bold: mean)", fontsize=10.5)
    ax_n.set_ylabel(units.axis_label())
    bottom = [ax_n, ax_s]
    if zoom:
        first = max_epoch - int(np.ceil(max_epoch / 3)) + 1
        zn = fig.add_subplot(2, 2, 3)
        zs = fig.add_subplot(2, 2, 4, sharey=zn, sharex=zn)
        _draw_curves(zn, zs, base[base["epoch"] >= first], at_seed[at_seed["epoch"] >= first],
                     metric, s, baseline, legends=False)
        zn.set_title(f"Noise, zoomed on epochs {first}–{max_epoch}", fontsize=10.5)
        zs.set_title(f"Signal, zoomed on epochs {first}–{max_epoch}", fontsize=10.5)
        zn.set_ylabel(units.axis_label())
        bottom = [zn, zs]
    for ax in bottom:
        ax.set_xlabel("epoch")
    for ax in fig.axes:
        # Epochs are whole numbers; never label 2.5.
        ax.xaxis.get_major_locator().set_params(integer=True)
    title = f"{_t(metric)} during training: spread between seeds (left) vs between configs (right)"
    late = not_converged or []
    if not is_missing(noise_floor) and len(h):
        if len(late):
            r = late[0]
            warning = (f"NOT CONVERGED: {', '.join(_t(c.config) for c in late)} still improved by more than "
                       f"the noise floor ({units.fmt_spread(noise_floor)}) over epochs {int(r.first_epoch)}–"
                       f"{int(r.last_epoch)}: consider more epochs")
            # Wrapped to the figure's width: a long list of configs must not run off the image.
            title += "\n" + "\n".join(textwrap.wrap(warning, 120))
    fig.suptitle(title, fontsize=_TITLE_SIZE)
    _excluded_note(fig, n_bad)
    return fig


def plot_learning_curves(
    histories: pd.DataFrame,
    metric: str,
    baseline: str,
    signal_seeds: Sequence[int],
    path: str | os.PathLike,
    *,
    runs: pd.DataFrame | None = None,
    noise_floor: float | None = None,
    not_converged: list[NotConverged] | None = None,
    percent: bool,
) -> Path:
    """Learning curves under the noise and the signal condition, same y axis.

    Left: every baseline run, one colour per seed, with the per-epoch mean
    ± 1 std. Right: every config at every shared seed (thin lines) and its
    mean (bold), one colour per config. If the curves on the right fan out no more than those on the left,
    the configs differ by no more than seed noise. With four or more epochs a
    second row repeats both panels zoomed on the last third of training.

    Parameters
    ----------
    histories : pandas.DataFrame
        Per-epoch history of every run: ``config``, ``seed``, ``epoch`` and
        ``metric``.
    metric : str
        History column to plot (``val_acc``, ``val_loss``, ``train_loss``).
    baseline : str
        Baseline config name.
    signal_seeds : sequence of int
        Shared seeds: the right panel shows every config at these.
    path : str or os.PathLike
        Output PNG path.
    runs : pandas.DataFrame, optional
        Run table; runs whose ``status`` is not ``"ok"`` are left out. Curves
        with non-finite values are always left out. Both are counted in a
        footnote.
    noise_floor : float, optional
        The analysis' noise floor of ``metric``, quoted where configs are
        flagged "not converged".
    not_converged : list of NotConverged, optional
        ``Summary.not_converged``: the configs whose mean curve still gained
        more than the noise floor over the last third of training.
    percent : bool
        ``Summary.percent``: the analysis' decision to show the metric in percent
        (differences in percentage points) or in its own units.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    return _save(learning_curves_figure(histories, metric, baseline, signal_seeds, runs=runs, percent=percent,
                                        noise_floor=noise_floor, not_converged=not_converged), path)


# --------------------------------------------------------------------------
# importance
# --------------------------------------------------------------------------


def importance_figure(
    importance: pd.DataFrame | None, *, alpha: float = 0.05, metric: str | None = None
) -> Figure:
    """Build the hyperparameter-importance figure (see :func:`plot_importance`)."""
    what = _t(metric) if metric else "the metric"
    if importance is None or len(importance) == 0:
        fig = _new_figure(6, 2.2)
        ax = fig.add_subplot()
        ax.set_axis_off()
        _empty_message(ax, "No hyperparameter importance to show:\n"
                           "no hyperparameter was varied over two or more levels.")
        fig.suptitle("Hyperparameter importance", fontsize=_TITLE_SIZE)
        return fig

    imp = importance.copy()
    imp["_x"] = pd.to_numeric(imp.get("effect_over_noise"), errors="coerce")
    imp = imp.sort_values("_x", ascending=True, na_position="first").reset_index(drop=True)
    n = len(imp)
    y = np.arange(n)
    x = imp["_x"].to_numpy(dtype=float)
    fig = _new_figure(10, max(3.0, 1.7 + 0.5 * n))
    ax = fig.add_subplot()
    directions = imp["direction"] if "direction" in imp else [None] * n
    colors = [importance_color(v, d) for v, d in zip(imp["verdict"], directions)]
    ax.barh(y, np.nan_to_num(x), height=0.6, color=colors)
    ax.axvline(1.0, color="#333333", lw=1, ls="--", label="1 noise floor")
    ax.set_yticks(y)
    ax.set_yticklabels([_t(h) for h in imp["hparam"]])
    ax.set_xlim(0, max(1.5, float(np.nanmax(x)) * 1.15 if np.isfinite(x).any() else 1.5))
    ax.set_xlabel("largest difference from the baseline, in noise floors (dashed line: one noise floor)")
    ax.grid(axis="x", alpha=0.3)
    # Annotations in a column right of the axes, so they never cross a bar.
    trans = transforms.blended_transform_factory(ax.transAxes, ax.transData)
    for i in range(n):
        p_adj = imp["p_adjusted"].iloc[i] if "p_adjusted" in imp else None
        label = importance_label(imp["verdict"].iloc[i], directions[i])
        if not is_missing(p_adj):
            label += f", adjusted {_p_text(p_adj)}"
        ax.text(1.02, i, label, transform=trans, va="center", ha="left", fontsize=8.5, color=colors[i],
                clip_on=False)
    matters = [_t(h) for h, v in zip(imp["hparam"][::-1], imp["verdict"][::-1]) if v == Importance.MATTERS]
    if matters:
        title = f"{len(matters)} of {n} hyperparameters move {what} beyond seed noise: {', '.join(matters)}"
    else:
        title = f"None of {n} hyperparameters is shown to move {what} beyond seed noise"
    fig.suptitle(title, fontsize=_TITLE_SIZE)
    return fig


def plot_importance(
    importance: pd.DataFrame | None,
    path: str | os.PathLike,
    *,
    alpha: float = 0.05,
    metric: str | None = None,
) -> Path:
    """Each hyperparameter's largest difference from the baseline, in noise floors, coloured by its verdict's
    direction.

    The verdict and the adjusted p-value come from the importance table,
    which takes them from the variants' comparisons (the same intervals as
    the verdict table). An empty table yields a small figure saying there is
    nothing to show.

    Parameters
    ----------
    importance : pandas.DataFrame or None
        Columns ``hparam``, ``effect_over_noise``, ``p_adjusted``, ``verdict``.
    path : str or os.PathLike
        Output PNG path.
    alpha : float, default 0.05
        Family-wise level (kept for the caller's symmetry; the verdicts are read from the table).
    metric : str, optional
        Metric name for the title.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    return _save(importance_figure(importance, alpha=alpha, metric=metric), path)


# --------------------------------------------------------------------------
# the search's payoff: expected best against the number of trials
# --------------------------------------------------------------------------

#: The search's colour (the baseline's purple is the noise condition's).
_SEARCH_COLOR = SEARCH_COLOR


def search_payoff_figure(runs: pd.DataFrame, metric: str, baseline: str, summary) -> Figure:
    """Build the search-payoff figure (see :func:`plot_search_payoff`).

    Returns
    -------
    matplotlib.figure.Figure
        ``fig.axes[0]``: the expected best of n trials for the search (every
        config at the search seed) and for re-rolling the baseline's seed, each
        with its bootstrap band, and the trials worth running marked.
    """
    direction = summary.direction or "max"
    ok, n_bad = _split_ok(runs, metric)
    units = Units.of(summary)
    s = units.scale
    fig = _new_figure(10, 5.2)
    ax = fig.add_subplot(1, 1, 1)
    search, noise = summary.search_curve, summary.noise_curve
    if search is None or noise is None or len(noise.n) < 2:
        ax.set_axis_off()
        _empty_message(ax, "No search to show: a search is several configs with one run each "
                           "(a sweep section), beside the baseline's seeds")
        return fig
    level = summary.confidence_level or 0.95
    curves = [(f"search: {_n(summary.search_trials, 'config')} at seed {_t(summary.search_seed)}", search,
               _SEARCH_COLOR),
              (f"re-rolling the seed: {_t(baseline)} at {_n(summary.n_baseline, 'seed')}", noise, BASELINE_COLOR)]
    for label, c, color in curves:
        n, low, high, estimate = (np.asarray(v, dtype=float) for v in (c.n, c.low, c.high, c.estimate))
        ax.fill_between(n, low * s, high * s, color=color, alpha=0.18, linewidth=0)
        ax.plot(n, estimate * s, color=color, linewidth=2.2, marker="o" if len(n) <= 30 else None,
                markersize=3.5, label=f"{label} ({int(round(100 * level))} % bootstrap band)")
    worth = summary.trials_worth
    if worth is not None:
        ax.axvline(worth, color=_FOOTNOTE_COLOR, linestyle=":", linewidth=1.2)
        ax.annotate(f"{_n(worth, 'trial')}: within one noise floor\nof the whole search's best",
                    xy=(worth, 0.03), xycoords=("data", "axes fraction"), xytext=(6, 0),
                    textcoords="offset points", fontsize=9, color=_FOOTNOTE_COLOR)
    if max(search.n[-1], noise.n[-1]) >= 50:
        ax.set_xscale("log")
    ax.set_xlabel("trials (configs tried, or seeds re-rolled)")
    ax.set_ylabel(units.axis_label(f"expected best {metric}"))
    ax.xaxis.get_major_locator().set_params(integer=True) if ax.get_xscale() == "linear" else None
    ax.legend(loc="lower right", fontsize=9, frameon=False)
    ax.grid(alpha=0.3)
    word = "highest" if direction == "max" else "lowest"
    title = f"Expected {word} {_t(metric)} after n trials: the search against re-rolling the seed"
    if worth is not None:
        title += (f"\nbeyond {_n(worth, 'trial')}, each further trial is expected to gain less than the noise "
                  f"floor ({units.fmt_spread(summary.noise_floor)})")
    if summary.search_winner_probability is not None:
        lead = (f"ahead by {units.fmt_spread(summary.search_winner_lead)}" if summary.search_winner_lead
                else "tied with the runner-up")
        title += (f"\nbest at seed {_t(summary.search_seed)}: {_t(summary.search_winner)}, {lead}; "
                  f"P = {summary.search_winner_probability:.2f} that it is truly the best of the top "
                  f"{summary.search_winner_top_k}")
    fig.suptitle(title, fontsize=_TITLE_SIZE)
    _excluded_note(fig, n_bad)
    return fig


def plot_search_payoff(runs: pd.DataFrame, metric: str, baseline: str, path: str | os.PathLike, *,
                       summary) -> Path:
    """Expected best score against the number of trials (Dodge et al. 2019), search vs seed re-rolls.

    The search is every config's run at the seed the most configs ran at (the
    signal condition at a fixed seed); the other curve is the baseline's
    seeds (the noise condition). A search pays where its curve rises above
    re-rolling the seed. The dotted line is ``summary.trials_worth``.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    return _save(search_payoff_figure(runs, metric, baseline, summary), path)


# --------------------------------------------------------------------------
# the search: each hyperparameter's marginal effect
# --------------------------------------------------------------------------

#: Panels of the marginal-effects figure (the hyperparameters with the largest net share).
MAX_MARGINAL_PANELS = 6


def marginal_effects_figure(runs: pd.DataFrame, comparisons: pd.DataFrame, metric: str, baseline: str,
                            summary) -> Figure:
    """Build the marginal-effects figure (see :func:`plot_marginal_effects`)."""
    ok, n_bad = _split_ok(runs, metric)
    table = summary.search_importance or []
    if not table:
        fig = _new_figure(10, 2.4)
        ax = fig.add_subplot(1, 1, 1)
        ax.set_axis_off()
        _empty_message(ax, "No search to break down: it takes at least 6 configs with one run each "
                           "(a sweep section) whose hyperparameters vary")
        return fig
    # The search as the analysis took it: its configs' runs at the search seed.
    at = ok[ok["seed"].astype(str) == str(summary.search_seed)].drop_duplicates("config") \
        .set_index("config").loc[summary.search_configs]
    seed, scores = summary.search_seed, at[metric].to_numpy(dtype=float)
    units = Units.of(summary)
    s = units.scale
    panels = table[:MAX_MARGINAL_PANELS]
    ncols = min(3, len(panels))
    nrows = int(np.ceil(len(panels) / ncols))
    fig = _new_figure(4.2 * ncols + 0.6, 3.6 * nrows + 0.8)
    base_mean = None
    if "baseline_mean" in comparisons.columns and comparisons["baseline_mean"].notna().any():
        base_mean = float(comparisons["baseline_mean"].dropna().iloc[0])
    for k, row in enumerate(panels):
        ax = fig.add_subplot(nrows, ncols, k + 1, sharey=fig.axes[0] if k else None)
        column = hp_column(row.hparam) if hp_column(row.hparam) in at.columns else row.hparam
        values = at[column]
        numeric = pd.to_numeric(values, errors="coerce")
        if base_mean is not None and not is_missing(summary.noise_floor):
            lo, hi = (base_mean - summary.noise_floor) * s, (base_mean + summary.noise_floor) * s
            ax.axhspan(lo, hi, color=_NOISE_COLOR, alpha=0.12, linewidth=0,
                       label=f"{_t(baseline)} mean ± noise floor")
        if numeric.notna().all():
            ax.scatter(numeric, scores * s, s=22, color=_SEARCH_COLOR, alpha=0.8, edgecolor="none")
            positive = numeric[numeric > 0]
            if len(positive) >= 2 and positive.max() / positive.min() >= 20 and (numeric >= 0).all():
                # a log axis; a zero (the baseline's "no weight decay") on a linear stretch near it
                if (numeric > 0).all():
                    ax.set_xscale("log")
                else:
                    ax.set_xscale("symlog", linthresh=float(positive.min()))
        else:
            cats = list(dict.fromkeys(values.astype(str)))
            pos = values.astype(str).map({c: i for i, c in enumerate(cats)}).to_numpy(dtype=float)
            jitter = (np.random.default_rng(0).random(len(pos)) - 0.5) * 0.2
            ax.scatter(pos + jitter, scores * s, s=22, color=_SEARCH_COLOR, alpha=0.8, edgecolor="none")
            ax.set_xticks(range(len(cats)), [_t(c) for c in cats])
        ax.set_xlabel(_t(row.hparam))
        ax.set_title(f"{_t(row.hparam)}: {100 * row.net_share:.0f} % of the spread (p {row.p_value:.3g})",
                     fontsize=10)
        ax.grid(alpha=0.3)
        if k % ncols == 0:
            ax.set_ylabel(units.axis_label())
        if k == 0 and base_mean is not None:
            ax.legend(loc="lower left", fontsize=8, frameon=False)
    title = (f"What drives the search: {_t(metric)} against each hyperparameter "
             f"({_n(len(scores), 'config')} at seed {_t(seed)}; share net of chance, permutation p)")
    fig.suptitle("\n".join(textwrap.wrap(title, int(11 * fig.get_figwidth()))), fontsize=_TITLE_SIZE)
    _excluded_note(fig, n_bad)
    return fig


def plot_marginal_effects(runs: pd.DataFrame, comparisons: pd.DataFrame, metric: str, baseline: str,
                          path: str | os.PathLike, *, summary) -> Path:
    """The search's score against each swept hyperparameter, with the noise band and each one's net share.

    One panel per hyperparameter of ``summary.search_importance`` (the
    largest net shares, at most :data:`MAX_MARGINAL_PANELS`); a log axis for a
    positive hyperparameter spanning 20x or more. The band is the baseline's
    mean ± the noise floor: points inside it are within seed noise of the baseline.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    return _save(marginal_effects_figure(runs, comparisons, metric, baseline, summary), path)


# --------------------------------------------------------------------------
# where the noise comes from: the noise budget by source
# --------------------------------------------------------------------------

# (from the neutral palette: a source's bar is no verdict)
_SOURCE_COLOR = NEUTRAL_PALETTE[3]
_ALL_SOURCES_COLOR = NEUTRAL_PALETTE[0]


def noise_budget_figure(summary) -> Figure:
    """Build the noise-budget figure (see :func:`plot_noise_budget`).

    Returns
    -------
    matplotlib.figure.Figure
        ``fig.axes[0]``: one bar per source (the standard deviation it causes
        alone, with its interval), then all sources together, and the noise
        floor the verdicts use as a line with its band.
    """
    rows = summary.noise_sources or []
    units = Units.of(summary)
    s = units.scale
    fig = _new_figure(10, 5.2)
    ax = fig.add_subplot(1, 1, 1)
    measured = [r for r in rows if r.sd is not None]
    if not measured:
        ax.set_axis_off()
        _empty_message(ax, "No noise budget: for the built-in model, a decompose section runs the baseline once "
                           "per source of randomness (init, order, dropout, data) with the others held still")
        return fig
    level = int(round(100 * (summary.confidence_level or 0.95)))
    x = np.arange(len(measured))
    ax.bar(x, [r.sd * s for r in measured], width=0.6, alpha=0.85,
           color=[_ALL_SOURCES_COLOR if r.source == "all" else _SOURCE_COLOR for r in measured])
    for i, r in enumerate(measured):
        lo, hi = r.sd_ci
        if lo is not None and hi is not None:
            ax.errorbar(i, r.sd * s, yerr=[[(r.sd - lo) * s], [(hi - r.sd) * s]], color="black",
                        capsize=5, linewidth=1.2)
        share = r.share
        text = units.fmt_spread(r.sd) + (f"\n{100 * share:.0f} % of all" if share is not None else "")
        ax.annotate(text, xy=(i, (hi if hi is not None else r.sd) * s), xytext=(0, 4),
                    textcoords="offset points", ha="center", va="bottom", fontsize=9)
    floor, floor_ci = summary.noise_floor, summary.noise_floor_ci or [None, None]
    if floor is not None:
        included = " + ".join(summary.noise_floor_sources or []) or "the noise condition's sources"
        if floor_ci[0] is not None and floor_ci[1] is not None:
            ax.axhspan(floor_ci[0] * s, floor_ci[1] * s, color=_NOISE_COLOR, alpha=0.12, linewidth=0)
        ax.axhline(floor * s, color=_NOISE_COLOR, linestyle="--", linewidth=1.6,
                   label=f"the noise floor the verdicts use: {included}, {_n(summary.n_baseline or 0, 'seed')} "
                         f"({units.fmt_spread(floor)}, {level} % CI shaded)")
        ax.legend(loc="upper left", fontsize=9, frameon=False)
    labels = [("all sources\ntogether" if r.source == "all" else f"{r.source}\nalone") + f"\n{r.n} runs"
              for r in measured]
    ax.set_xticks(x, labels)
    ax.set_xlim(-0.6, len(measured) - 0.4)
    ax.set_ylabel(units.diff_axis_label(f"standard deviation of {summary.metric}"))
    top = max([(r.sd_ci[1] or r.sd) for r in measured] + [floor_ci[1] or 0, floor or 0]) * s
    ax.set_ylim(0, top * 1.35 if top > 0 else 1)
    ax.grid(axis="y", alpha=0.3)
    title = f"Where the noise comes from: each source of randomness alone ({level} % intervals)"
    if summary.noise_sources_largest is not None:
        title += f"\nlargest alone: {_t(summary.noise_sources_largest)}"
        if summary.noise_sources_largest_clear is False:  # (None: nothing to compare it with)
            title += " (not clearly above the next)"
    if summary.noise_sources_adds_up is not None:
        title += (f"\n{parts_words(summary.noise_sources_adds_up)} (sum of the variances / all together = "
                  f"{summary.noise_sources_sum_ratio:.2f})")
    fig.suptitle(title, fontsize=_TITLE_SIZE)
    notes = [f"{name}: {why}" for name, why in (summary.noise_sources_left_out or {}).items()]
    if summary.noise_sources_skipped:
        notes.append(f"{', '.join(summary.noise_sources_skipped)}: numeric noise needs CUDA (CPU kernels are "
                     "deterministic)")
    if notes:
        ax.text(0.99, 0.97, "not measured here:\n" + "\n".join(notes), transform=ax.transAxes, ha="right",
                va="top", fontsize=8.5, color=_FOOTNOTE_COLOR)
    return fig


def plot_noise_budget(path: str | os.PathLike, *, summary) -> Path:
    """The noise budget by source beside the noise floor (from ``summary.noise_sources``).

    Returns
    -------
    pathlib.Path
        The written path.
    """
    return _save(noise_budget_figure(summary), path)
