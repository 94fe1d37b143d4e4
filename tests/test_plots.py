"""Tests for noisefloor.plots: every figure renders, reads correctly and survives bad runs."""

from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex
from matplotlib.patches import Rectangle

import synthetic as sy
from noisefloor import plots
from noisefloor.display import VERDICT_COLORS
from noisefloor.stats import IMPORTANCE_COLUMNS, analyze

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def runs():
    return sy.make_runs()


@pytest.fixture(scope="module")
def histories(runs):
    return sy.make_histories(runs)


@pytest.fixture(scope="module")
def noise_floor(result):
    return result.summary.noise_floor


@pytest.fixture(scope="module")
def comparisons(result):
    return result.comparisons


@pytest.fixture(scope="module")
def importance(result):
    return result.importance


def assert_readable_png(path, min_width=400):
    """A real PNG of a sensible size whose pixels are not all one colour."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, "not a PNG"
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[1] >= min_width
    rgb = img[..., :3]
    assert rgb.std() > 0.02, "image is (nearly) blank"
    # Some real ink: a noticeable share of pixels is not background white.
    non_white = (rgb.min(axis=2) < 0.9).mean()
    assert non_white > 0.01


def footnote(fig) -> str:
    label = fig._supxlabel  # set by the module for the excluded-runs note
    return label.get_text() if label is not None else ""


# ---------------------------------------------------------------------------
# every plot writes a valid, non-blank PNG
# ---------------------------------------------------------------------------


def test_every_plot_writes_a_nonblank_png(tmp_path, runs, histories, comparisons, noise_floor, importance):
    written = [
        plots.plot_noise_vs_signal(runs, "val_acc", sy.BASELINE, sy.NOISE_SEEDS, sy.SIGNAL_SEEDS,
                                   tmp_path / "a" / "noise_vs_signal.png", percent=True),
        plots.plot_config_distributions(runs, comparisons, "val_acc", sy.BASELINE, noise_floor,
                                        tmp_path / "config_distributions.png", percent=True),
        plots.plot_differences(comparisons, noise_floor, tmp_path / "differences.png", metric="val_acc", percent=True),
        plots.plot_learning_curves(histories, "val_acc", sy.BASELINE, sy.SIGNAL_SEEDS,
                                   tmp_path / "learning_curves.png", runs=runs, percent=True),
        plots.plot_importance(importance, tmp_path / "importance.png", metric="val_acc"),
    ]
    for path in written:
        assert path.exists()
        assert_readable_png(path)
    # Atomic writes leave no temporary files behind.
    leftovers = [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_empty_importance_table_renders_a_message(tmp_path):
    path = plots.plot_importance(pd.DataFrame(columns=list(IMPORTANCE_COLUMNS)), tmp_path / "importance.png")
    assert_readable_png(path, min_width=300)
    fig = plots.importance_figure(pd.DataFrame())
    texts = " ".join(t.get_text() for ax in fig.axes for t in ax.texts)
    assert "No hyperparameter importance" in texts


# ---------------------------------------------------------------------------
# headline figure
# ---------------------------------------------------------------------------


def test_noise_and_signal_panels_share_the_y_axis(runs):
    fig = plots.noise_vs_signal_figure(runs, "val_acc", sy.BASELINE, sy.NOISE_SEEDS, sy.SIGNAL_SEEDS, percent=True)
    fig.canvas.draw()
    noise_ax, signal_ax = fig.axes[:2]
    assert noise_ax.get_ylim() == signal_ax.get_ylim()
    # And that common range holds every plotted value of both conditions (in percent).
    ok = runs[runs["status"] == "ok"]
    lo, hi = noise_ax.get_ylim()
    assert lo <= ok["val_acc"].min() * 100 and ok["val_acc"].max() * 100 <= hi
    assert "(%)" in noise_ax.get_ylabel()


def test_noise_panel_shows_exactly_the_baseline_at_noise_seeds(runs):
    fig = plots.noise_vs_signal_figure(runs, "val_acc", sy.BASELINE, sy.NOISE_SEEDS, sy.SIGNAL_SEEDS, percent=True)
    noise_ax = fig.axes[0]
    points = np.concatenate([c.get_offsets()[:, 1] for c in noise_ax.collections])
    expected = runs[(runs["config"] == sy.BASELINE) & runs["seed"].isin(sy.NOISE_SEEDS)]["val_acc"] * 100
    np.testing.assert_allclose(np.sort(points), np.sort(expected.to_numpy()))


def test_signal_panel_colours_and_labels_each_shared_seed(runs):
    fig = plots.noise_vs_signal_figure(runs, "val_acc", sy.BASELINE, sy.NOISE_SEEDS, sy.SIGNAL_SEEDS, percent=True)
    signal_ax = fig.axes[1]
    labels = [t.get_text() for t in signal_ax.get_legend().get_texts()]
    for seed in sy.SIGNAL_SEEDS:
        assert f"seed {seed}" in labels
    # One joining line per seed, through one point per config that ran it successfully.
    lines = [l for l in signal_ax.get_lines() if l.get_linestyle() == "-"]  # not the dashed mean
    ok = runs[(runs["status"] == "ok") & runs["seed"].isin(sy.SIGNAL_SEEDS)]
    assert sorted(len(l.get_xdata()) for l in lines) == sorted(ok.groupby("seed").size().tolist())
    # Config tick labels, baseline first.
    ticks = [t.get_text() for t in signal_ax.get_xticklabels()]
    assert ticks[0] == sy.BASELINE and set(ticks) == set(sy.CONFIGS)


def test_headline_title_states_noise_floor_and_signal_spread(runs):
    fig = plots.noise_vs_signal_figure(runs, "val_acc", sy.BASELINE, sy.NOISE_SEEDS, sy.SIGNAL_SEEDS, percent=True)
    title = fig.get_suptitle()
    base = runs[(runs["config"] == sy.BASELINE) & (runs["status"] == "ok")]["val_acc"]
    assert f"std {base.std(ddof=1) * 100:.2f} pp over 20 seeds" in title
    ok = runs[(runs["status"] == "ok") & runs["seed"].isin(sy.SIGNAL_SEEDS)]
    spread = ok.groupby("config")["val_acc"].mean().std(ddof=1) * 100
    assert f"{spread:.2f} pp across 6 configs" in title


def test_diverged_runs_are_left_out_and_counted(runs):
    fig = plots.noise_vs_signal_figure(runs, "val_acc", sy.BASELINE, sy.NOISE_SEEDS, sy.SIGNAL_SEEDS, percent=True)
    assert footnote(fig) == "1 excluded/diverged run not shown"
    clean = runs[runs["status"] == "ok"]
    fig = plots.noise_vs_signal_figure(clean, "val_acc", sy.BASELINE, sy.NOISE_SEEDS, sy.SIGNAL_SEEDS, percent=True)
    assert footnote(fig) == ""


def test_all_runs_diverged_still_renders(tmp_path, runs, comparisons):
    dead = runs.assign(status="diverged")
    path = plots.plot_noise_vs_signal(dead, "val_acc", sy.BASELINE, sy.NOISE_SEEDS, sy.SIGNAL_SEEDS,
                                      tmp_path / "nvs.png", percent=True)
    assert_readable_png(path)
    fig = plots.config_distributions_figure(dead, comparisons, "val_acc", sy.BASELINE, 0.002, percent=True)
    assert footnote(fig) == f"{len(dead)} excluded/diverged runs not shown"


def test_loss_metric_is_not_shown_in_percent(runs):
    fig = plots.noise_vs_signal_figure(runs, "val_loss", sy.BASELINE, sy.NOISE_SEEDS, sy.SIGNAL_SEEDS, percent=False)
    assert fig.axes[0].get_ylabel() == "val_loss"
    assert "pp" not in fig.get_suptitle()


# ---------------------------------------------------------------------------
# per-config distributions
# ---------------------------------------------------------------------------


def test_config_distributions_colour_configs_by_verdict(runs, comparisons, noise_floor):
    fig = plots.config_distributions_figure(runs, comparisons, "val_acc", sy.BASELINE, noise_floor, percent=True)
    ax = fig.axes[0]
    colour_of = {t.get_text().split("\n")[0]: to_hex(t.get_color()) for t in ax.get_xticklabels()}
    for config, verdict in zip(comparisons["config"], comparisons["verdict"]):
        assert colour_of[config] == VERDICT_COLORS[verdict], config
    assert fig.get_suptitle() == "val_acc of every run, per config, against baseline's mean ± the noise floor"
    # n = 20 is drawn as a box, n = 4 or 5 as points and a bar at the mean
    boxes = [p for p in ax.patches if p.__class__.__name__ == "PathPatch"]
    assert len(boxes) == 1


def test_config_distributions_shade_baseline_mean_plus_minus_noise_floor(runs, comparisons, noise_floor):
    fig = plots.config_distributions_figure(runs, comparisons, "val_acc", sy.BASELINE, noise_floor, percent=True)
    ax = fig.axes[0]
    base_mean = runs[(runs["config"] == sy.BASELINE) & (runs["status"] == "ok")]["val_acc"].mean() * 100
    bands = [p for p in ax.patches if isinstance(p, Rectangle)
             and np.isclose(p.get_y(), base_mean - noise_floor * 100)
             and np.isclose(p.get_height(), 2 * noise_floor * 100)]
    assert len(bands) == 1
    # Spans the full width of the axes (axes coordinates 0..1).
    assert bands[0].get_x() == 0 and bands[0].get_width() == 1


def test_config_distributions_without_noise_floor_or_comparisons(tmp_path, runs):
    path = plots.plot_config_distributions(runs, None, "val_acc", sy.BASELINE, None, tmp_path / "cd.png", percent=True)
    assert_readable_png(path)


# ---------------------------------------------------------------------------
# differences
# ---------------------------------------------------------------------------


def test_differences_orders_rows_and_annotates_adjusted_p(comparisons, noise_floor):
    fig = plots.differences_figure(comparisons, noise_floor, metric="val_acc", percent=True)
    ax = fig.axes[0]
    rows = [t.get_text() for t in ax.get_yticklabels()]
    # Largest difference at the top (last tick), most negative at the bottom.
    assert rows[-1] == "lr_hi" and rows[0] == "lr_lo"
    notes = [t.get_text() for t in ax.texts]
    assert "better, Šidák p < 0.001" in notes
    assert "worse, Šidák p < 0.001" in notes
    assert "percentage points" in ax.get_xlabel() and "95 % simultaneous interval" in ax.get_xlabel()
    # The intervals drawn are the table's.
    drawn = {tuple(np.round(line.get_xdata(), 9)) for line in ax.get_lines() if len(line.get_xdata()) == 2}
    for _, r in comparisons.dropna(subset=["ci_low"]).iterrows():
        assert tuple(np.round([r["ci_low"] * 100, r["ci_high"] * 100], 9)) in drawn
    # The band is ± the equivalence margin (the noise floor by default) around zero, in pp.
    lo, hi = noise_floor * -100, noise_floor * 100    # (no margin given to the figure: the noise floor)
    spans = [p for p in ax.patches if isinstance(p, Rectangle) and np.isclose(p.get_x(), lo)
             and np.isclose(p.get_x() + p.get_width(), hi)]
    assert len(spans) == 1
    wide = plots.differences_figure(comparisons, noise_floor, metric="val_acc", margin=2 * noise_floor, percent=True)
    assert any(isinstance(p, Rectangle) and np.isclose(p.get_x(), 2 * lo) for p in wide.axes[0].patches)


def test_differences_with_no_comparisons(tmp_path):
    path = plots.plot_differences(pd.DataFrame(), None, tmp_path / "d.png", percent=True)
    assert path.read_bytes()[:8] == PNG_SIGNATURE


# ---------------------------------------------------------------------------
# learning curves
# ---------------------------------------------------------------------------


def test_learning_curve_panels_share_y_per_row(histories, runs):
    fig = plots.learning_curves_figure(histories, "val_acc", sy.BASELINE, sy.SIGNAL_SEEDS, runs=runs, percent=True)
    fig.canvas.draw()
    assert len(fig.axes) == 4
    assert fig.axes[0].get_ylim() == fig.axes[1].get_ylim()
    assert fig.axes[2].get_ylim() == fig.axes[3].get_ylim()
    # The zoomed row really zooms: a narrower range than the full row.
    full = np.diff(fig.axes[0].get_ylim())[0]
    zoom = np.diff(fig.axes[2].get_ylim())[0]
    assert zoom < full / 2


def test_learning_curves_drop_diverged_runs(histories, runs):
    diverged_config, diverged_seed = sy.DIVERGED
    for kwargs in ({"runs": runs}, {}):  # by status, and by non-finite values alone
        fig = plots.learning_curves_figure(histories, "val_loss", sy.BASELINE, [diverged_seed], **kwargs, percent=False)
        signal_ax = fig.axes[1]
        labels = [l.get_label() for l in signal_ax.get_lines() if not l.get_label().startswith("_")]
        assert diverged_config not in labels
        assert len(labels) == len(sy.CONFIGS) - 1
        assert footnote(fig) == "1 excluded/diverged run not shown"
        assert fig.axes[0].get_ylabel() == "val_loss"


def test_learning_curves_show_every_config_at_every_shared_seed(histories, runs):
    fig = plots.learning_curves_figure(histories, "val_acc", sy.BASELINE, sy.SIGNAL_SEEDS, runs=runs, percent=True)
    lines = fig.axes[1].get_lines()
    means = [l for l in lines if not l.get_label().startswith("_")]
    thin = [l for l in lines if l.get_label().startswith("_")]
    assert len(means) == len(sy.CONFIGS)
    # one thin line per (config, shared seed), less the diverged run
    assert len(thin) == len(sy.CONFIGS) * len(sy.SIGNAL_SEEDS) - 1
    lr_hi = next(l for l in means if l.get_label() == "lr_hi")
    ok = histories[(histories.config == "lr_hi") & histories.seed.isin(sy.SIGNAL_SEEDS)
                   & (histories.seed != sy.DIVERGED[1])]
    np.testing.assert_allclose(lr_hi.get_ydata(), ok.groupby("epoch").val_acc.mean() * 100)


def test_learning_curves_noise_panel_has_one_line_per_baseline_seed(histories):
    fig = plots.learning_curves_figure(histories, "val_acc", sy.BASELINE, sy.SIGNAL_SEEDS, percent=True)
    lines = fig.axes[0].get_lines()
    # One per seed plus the bold mean curve.
    assert len(lines) == len(sy.NOISE_SEEDS) + 1
    assert lines[-1].get_label() == "mean over 20 seeds"


# ---------------------------------------------------------------------------
# importance
# ---------------------------------------------------------------------------


def test_importance_shows_the_tables_verdicts(importance):
    fig = plots.importance_figure(importance, metric="val_acc")
    assert fig.get_suptitle() == "1 of 4 hyperparameters move val_acc beyond seed noise: lr"
    ax = fig.axes[0]
    notes = {t.get_text() for t in ax.texts}
    assert "matters, adjusted p < 0.001" in notes
    assert "inconclusive, adjusted p = 0.118" in notes
    # one bar per hyperparameter, coloured by its verdict, in the table's order of effect
    order = importance.assign(x=importance["effect_over_noise"]).sort_values("x", na_position="first")
    colours = [to_hex(b.get_facecolor()) for b in ax.patches]
    assert colours == [VERDICT_COLORS[v] for v in order["verdict"]]


def test_names_with_dollar_signs_render_literally(tmp_path, runs, comparisons, noise_floor):
    odd = runs.replace({"config": {"lr_hi": "lr$x$_hi"}})
    comp = comparisons.replace({"config": {"lr_hi": "lr$x$_hi"}})
    path = plots.plot_config_distributions(odd, comp, "val_acc", sy.BASELINE, noise_floor, tmp_path / "d.png", percent=True)
    assert_readable_png(path)
    fig = plots.differences_figure(comp, noise_floor, percent=True)
    assert r"lr\$x\$_hi" in [t.get_text() for t in fig.axes[0].get_yticklabels()]


def test_noise_vs_signal_title_quotes_the_analysis_summary(runs):
    summary = {"noise_floor": 0.01, "hp_variance_share": 0.67, "hp_variance_share_ci": [0.23, 0.95]}
    fig = plots.noise_vs_signal_figure(runs, "val_acc", sy.BASELINE, sy.NOISE_SEEDS, sy.SIGNAL_SEEDS,
                                       summary=summary, percent=True)
    title = fig._suptitle.get_text()
    assert "Hyperparameters explain 67 % (CI 23 to 95 %) of the spread" in title
    assert "noise floor (baseline seed std): 1.00 pp" in title
    assert "×" not in title            # no ratio whose null value is 1
    # without a summary the figure still states what it computed itself
    own = plots.noise_vs_signal_figure(runs, "val_acc", sy.BASELINE, sy.NOISE_SEEDS, sy.SIGNAL_SEEDS, percent=True)
    assert "spread of the config means" in own._suptitle.get_text()


def test_learning_curves_flag_the_configs_the_analysis_found_still_improving(histories, runs):
    # The synthetic curves still climb about 1.5 pp over the last third of training: more than the noise floor.
    s = analyze(runs, "val_acc", baseline=sy.BASELINE, histories=histories).summary
    assert s.not_converged and all(r.gain > s.noise_floor for r in s.not_converged)
    flagged = plots.learning_curves_figure(histories, "val_acc", sy.BASELINE, sy.SIGNAL_SEEDS, runs=runs,
                                           noise_floor=s.noise_floor, not_converged=s.not_converged, percent=True)
    assert "NOT CONVERGED" in flagged.get_suptitle() and "consider more epochs" in flagged.get_suptitle()
    assert s.not_converged[0].config in flagged.get_suptitle()
    # Curves that levelled off: every epoch at its run's last value.
    flat = histories.copy()
    flat["val_acc"] = flat.groupby(["config", "seed"])["val_acc"].transform("last")
    calm = analyze(runs, "val_acc", baseline=sy.BASELINE, histories=flat).summary
    assert calm.not_converged == []
    drawn = plots.learning_curves_figure(flat, "val_acc", sy.BASELINE, sy.SIGNAL_SEEDS, runs=runs,
                                         noise_floor=calm.noise_floor, not_converged=calm.not_converged, percent=True)
    assert "NOT CONVERGED" not in drawn.get_suptitle()
    assert analyze(runs, "val_acc", baseline=sy.BASELINE).summary.not_converged is None


# --------------------------------------------------------------------------- one colour code


def _drawn_colours(fig):
    """Every colour a figure draws with: (artist, RGB), from the matplotlib artists themselves."""
    from matplotlib.collections import Collection
    from matplotlib.colors import to_rgba
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.text import Text

    out = []
    for artist in fig.findobj():
        if isinstance(artist, Line2D):
            colours = [artist.get_color(), artist.get_markerfacecolor()]
        elif isinstance(artist, Collection):
            colours = [*artist.get_facecolors(), *artist.get_edgecolors()]
        elif isinstance(artist, Patch):
            colours = [artist.get_facecolor(), artist.get_edgecolor()]
        elif isinstance(artist, Text) and artist.get_text():
            colours = [artist.get_color()]
        else:
            continue
        for c in colours:
            if isinstance(c, str) and c == "none":
                continue
            rgba = to_rgba(c)
            if rgba[3] > 0:
                out.append((artist, np.array(rgba[:3])))
    return out


def _clashes(fig, meanings):
    """The drawn colours within a small distance of a colour that means something (a verdict, the search)."""
    from matplotlib.colors import to_rgb

    targets = {name: np.array(to_rgb(c)) for name, c in meanings.items()}
    return [(type(a).__name__, getattr(a, "get_label", lambda: "")(), name)
            for a, rgb in _drawn_colours(fig) for name, t in targets.items() if np.linalg.norm(rgb - t) < 0.12]


def test_seeds_and_configs_never_wear_a_verdicts_or_the_searchs_colour(runs, histories, result):
    """The noise-vs-signal figure colours seeds and the learning curves colour configs: neither may use green,
    red, blue, grey, amber (the verdicts) or orange (the search), whatever the number of seeds or configs."""
    from noisefloor.display import NEUTRAL_PALETTE, SEARCH_COLOR, VERDICT_COLORS as VC
    from noisefloor.vocab import Verdict

    meanings = {**{str(v): VC[v] for v in Verdict}, "search": SEARCH_COLOR}
    assert not _clashes(_palette_figure(NEUTRAL_PALETTE), meanings)
    many = pd.concat([runs, *[runs[runs["config"] == sy.BASELINE].assign(config=f"extra_{i}") for i in range(9)]])
    for fig in (plots.noise_vs_signal_figure(runs, "val_acc", sy.BASELINE, sy.NOISE_SEEDS, sy.SIGNAL_SEEDS,
                                             summary=result.summary, percent=True),
                plots.noise_vs_signal_figure(many, "val_acc", sy.BASELINE, sy.NOISE_SEEDS, sy.NOISE_SEEDS[:12],
                                             percent=True),
                plots.learning_curves_figure(histories, "val_acc", sy.BASELINE, sy.SIGNAL_SEEDS, runs=runs,
                                             noise_floor=result.summary.noise_floor, percent=True),
                plots.noise_budget_figure(_budget_summary())):              # sources' bars: no verdict either
        assert _clashes(fig, meanings) == []


def _budget_summary():
    rng = np.random.default_rng(1)
    runs = sy.make_runs()
    budget = pd.DataFrame([{"config": f"decompose_{k}", "seed": i, "stage": "decompose", "source": k,
                            "status": "ok", "val_acc": 0.97 + rng.normal(0, sd)}
                           for k, sd in (("init", 0.002), ("order", 0.001), ("all", 0.003)) for i in range(5)])
    return analyze(pd.concat([runs.assign(stage="noise"), budget], ignore_index=True), "val_acc",
                   baseline=sy.BASELINE, n_boot=200).summary


def _palette_figure(colours):
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    for i, c in enumerate(colours):
        ax.plot([0, 1], [i, i], color=c)
    return fig


def test_a_hyperparameter_that_matters_is_coloured_by_the_direction_of_its_verdict():
    from matplotlib.colors import to_hex
    from matplotlib.patches import Rectangle

    from noisefloor.display import VERDICT_COLORS as VC
    from noisefloor.vocab import Importance, Verdict

    rows = [("lr", Importance.MATTERS, "better", 3.0), ("wd", Importance.MATTERS, "worse", 2.5),
            ("bs", Importance.MATTERS, "both", 2.0), ("hidden", Importance.NEGLIGIBLE, None, 0.2),
            ("dropout", Importance.INCONCLUSIVE, None, 0.8)]
    table = pd.DataFrame([dict.fromkeys(IMPORTANCE_COLUMNS) | {"hparam": h, "verdict": v, "direction": d,
                                                                "effect_over_noise": x, "p_adjusted": 0.01}
                          for h, v, d, x in rows])
    fig = plots.importance_figure(table, metric="val_acc")
    ax = fig.axes[0]
    bars = [p for p in ax.patches if isinstance(p, Rectangle)]
    by_name = {label.get_text(): to_hex(bar.get_facecolor()) for label, bar in zip(ax.get_yticklabels(), bars)}
    assert by_name["lr"] == VC[Verdict.BETTER] and by_name["wd"] == VC[Verdict.WORSE]
    assert by_name["hidden"] == VC[Verdict.EQUIVALENT] and by_name["dropout"] == VC[Verdict.INCONCLUSIVE]
    assert by_name["bs"] not in {VC[v] for v in Verdict}                # both ways: no direction to show
