"""Tests for noisefloor.report: numbers, escaping, self-containedness, missing values."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from noisefloor.io import save_figure
from noisefloor.report import (
    format_metric_diff,
    render_report,
    seeds_needed_sentence,
    variant_sentence,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class StrictParser(HTMLParser):
    """Collects tags and <img> sources and fails on unbalanced markup."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[str] = []
        self.img_srcs: list[str] = []
        self.errors: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.img_srcs.append(dict(attrs).get("src", ""))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(html: str) -> StrictParser:
    parser = StrictParser()
    parser.feed(html)
    parser.close()
    assert parser.errors == []
    assert parser.stack == []
    return parser


def page_text(html: str) -> str:
    """Visible text, one space between text nodes (entities decoded), without the CSS."""
    html = re.sub(r"<style>.*?</style>", "", html, flags=re.S)
    chunks = [c.strip() for c in parse(html).text]
    return re.sub(r"\s+", " ", " ".join(c for c in chunks if c))


# ---------------------------------------------------------------------------
# inputs with hand-checkable numbers
# ---------------------------------------------------------------------------


def comparison_row(**values):
    row = {
        "config": "x", "baseline": "baseline", "n": 5, "n_baseline": 20, "n_paired": 5,
        "mean": 0.97, "std": 0.002, "baseline_mean": 0.97, "diff": 0.0, "ci_low": np.nan,
        "ci_high": np.nan, "confidence_level": 0.95, "diff_over_noise": np.nan, "test": "paired_t",
        "statistic": 1.0, "p_value": np.nan, "p_adjusted": np.nan, "correction": "holm",
        "effect_size": 0.5, "p_paired_t": np.nan, "p_wilcoxon": np.nan, "p_signflip": np.nan,
        "p_welch": np.nan, "p_mannwhitney": np.nan, "prob_superior": 0.6, "aso_eps": 0.3,
        "verdict": "within_noise", "mde": np.nan, "seeds_needed": np.nan,
    }
    row.update(values)
    return row


@pytest.fixture
def comparisons():
    return pd.DataFrame([
        comparison_row(config="lr_hi", mean=0.9741, diff=0.0041, ci_low=0.0012, ci_high=0.0070,
                       diff_over_noise=3.1, p_value=0.001, p_adjusted=0.004, verdict="better",
                       seeds_needed=13.2, mde=0.0035),
        comparison_row(config="lr_lo", mean=0.9547, diff=-0.0153, ci_low=-0.0190, ci_high=-0.0116,
                       diff_over_noise=-11.77, p_value=0.0001, p_adjusted=0.0002, verdict="worse",
                       seeds_needed=2.0, mde=0.0035),
        comparison_row(config="hidden_256", mean=0.9705, diff=0.0005, ci_low=-0.0021, ci_high=0.0031,
                       diff_over_noise=0.38, p_value=0.2, p_adjusted=0.41, verdict="within_noise",
                       seeds_needed=float("inf"), mde=0.0035),
    ])


@pytest.fixture
def summary():
    return {
        "metric": "val_acc", "direction": "max", "baseline": "baseline", "alpha": 0.05,
        "correction": "holm", "confidence_level": 0.95, "n_runs": 37, "n_configs": 4,
        "n_excluded": 3, "excluded_by_reason": {"diverged": 2, "nan_metric": 1},
        "noise_floor": 0.0023, "noise_floor_ci": [0.0018, 0.0034],
        "noise_floor_baseline": 0.0024, "noise_floor_baseline_ci": [0.0018, 0.0035],
        "test_sampling_floor": 0.0017, "signal": 0.0076, "signal_fixed_seed": 0.0071,
        "signal_over_noise": 3.3, "snr": 10.7, "f_stat": 85.2, "f_pvalue": 1e-9, "icc": 0.83,
        "best_config": "lr_hi", "best_diff": 0.0041, "best_p_adjusted": 0.004,
        "n_better": 1, "n_worse": 1, "var_config": 5.8e-5, "var_seed": 4e-6, "var_residual": 2.5e-6,
    }


@pytest.fixture
def importance():
    return pd.DataFrame([
        {"hparam": "hp.lr", "n_levels": 3, "n_runs": 15, "var_explained": 9.1e-5, "noise_var": 8e-6,
         "ratio": 11.4, "p_value": 1e-6, "verdict": "matters"},
        {"hparam": "hp.hidden_size", "n_levels": 2, "n_runs": 10, "var_explained": 3e-7,
         "noise_var": 8e-6, "ratio": 0.0375, "p_value": 0.61, "verdict": "within_noise"},
    ])


@pytest.fixture
def plot_files(tmp_path):
    paths = {}
    for name in ("noise_vs_signal", "differences"):
        fig = Figure(figsize=(3, 2))
        fig.add_subplot().plot([0, 1, 2], [1, 3, 2])
        paths[name] = tmp_path / "plots" / f"{name}.png"
        save_figure(paths[name], fig, dpi=50)
    return paths


def render(tmp_path, summary, comparisons, importance, plots, **kwargs) -> str:
    out = render_report(summary, comparisons, importance, plots, tmp_path / "out" / "report.html", **kwargs)
    assert out == tmp_path / "out" / "report.html"
    return out.read_text(encoding="utf-8")


# ---------------------------------------------------------------------------
# number formatting
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("value, fraction, expected", [
    (0.0041, True, "+0.41 pp"),
    (-0.0153, True, "-1.53 pp"),
    (0.1, True, "+10.00 pp"),
    (-0.00001, True, "0.00 pp"),  # never "-0.00"
    (0.0123, False, "+0.0123"),
    (-12.345, False, "-12.3"),
    (1234.0, False, "+1234"),
    (None, True, "n/a"),
    (float("nan"), False, "n/a"),
    (float("inf"), True, "n/a"),
])
def test_format_metric_diff(value, fraction, expected):
    assert format_metric_diff(value, fraction) == expected


def test_format_metric_diff_unsigned_for_spreads():
    assert format_metric_diff(0.0023, True, signed=False) == "0.23 pp"


# ---------------------------------------------------------------------------
# sentences
# ---------------------------------------------------------------------------


def test_variant_sentences_for_known_input(comparisons, summary):
    rows = comparisons.to_dict("records")
    assert variant_sentence(rows[0], summary) == (
        "lr_hi: +0.41 pp (95 % CI 0.12 to 0.70), 3.1x the noise floor, better (Holm p = 0.004)")
    assert variant_sentence(rows[1], summary) == (
        "lr_lo: -1.53 pp (95 % CI -1.90 to -1.16), 11.8x the noise floor, worse (Holm p < 0.001)")
    assert variant_sentence(rows[2], summary) == (
        "hidden_256: +0.05 pp (95 % CI -0.21 to 0.31), 0.4x the noise floor, within noise (Holm p = 0.410)")


def test_variant_sentence_in_metric_units_for_a_loss():
    row = comparison_row(config="wd", mean=0.0877, baseline_mean=0.1, diff=-0.0123, ci_low=-0.02,
                         ci_high=-0.0046, diff_over_noise=-2.5, p_adjusted=0.03, correction="bonferroni",
                         verdict="better", confidence_level=0.9)
    sentence = variant_sentence(row, {"metric": "val_loss", "direction": "min"})
    assert sentence == ("wd: -0.0123 (90 % CI -0.0200 to -0.0046), 2.5x the noise floor, "
                        "better (Bonferroni p = 0.030)")


def test_variant_sentence_leaves_out_missing_parts():
    row = comparison_row(config="bs_64", diff=0.003, verdict="insufficient_runs")
    assert variant_sentence(row, {"metric": "val_acc"}) == "bs_64: +0.30 pp, too few runs"
    row = comparison_row(config="bs_64", diff=None, verdict=None, correction=None)
    assert variant_sentence(row, {}) == "bs_64: n/a, no verdict"


def test_seeds_needed_sentences(comparisons, summary):
    rows = comparisons.to_dict("records")
    assert seeds_needed_sentence(rows[0], summary) == (
        "lr_hi: to detect a difference of this size at 80 % power you need about 14 seeds per config "
        "(this comparison has 5); with the current n the smallest detectable difference is 0.35 pp.")
    assert seeds_needed_sentence(rows[2], summary).startswith(
        "hidden_256: a difference this small cannot be detected at 80 % power")
    nan_row = comparison_row(config="q", seeds_needed=np.nan, mde=np.nan)
    assert seeds_needed_sentence(nan_row, {"power": 0.9}) == (
        "q: the number of seeds needed could not be estimated.")


# ---------------------------------------------------------------------------
# the rendered page
# ---------------------------------------------------------------------------


def test_report_is_self_contained(tmp_path, summary, comparisons, importance, plot_files):
    html = render(tmp_path, summary, comparisons, importance, plot_files, params_text="seeds: 20")
    parser = parse(html)
    assert 'src="http' not in html and "href=" not in html
    assert "<script" not in html.lower() and "<link" not in html.lower()
    assert "url(" not in html  # no external resource from CSS either
    assert len(parser.img_srcs) == len(plot_files)
    for src in parser.img_srcs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == PNG_SIGNATURE
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["report.html"]  # no temp files


def test_report_contains_each_variant_sentence(tmp_path, summary, comparisons, importance, plot_files):
    text = page_text(render(tmp_path, summary, comparisons, importance, plot_files))
    for row in comparisons.to_dict("records"):
        assert variant_sentence(row, summary) in text
    assert "lr_hi: +0.41 pp (95 % CI 0.12 to 0.70), 3.1x the noise floor, better (Holm p = 0.004)" in text
    assert "you need about 14 seeds per config" in text


def test_report_headline_and_plain_words_answer(tmp_path, summary, comparisons, importance, plot_files):
    text = page_text(render(tmp_path, summary, comparisons, importance, plot_files))
    assert ("Seed noise alone moves val_acc by ±0.23 pp (std). Hyperparameters move it by 0.71 pp at a fixed seed. "
            "1 of 3 variants beat baseline beyond noise; 1 is worse beyond noise.") in text
    assert "95 % CI 0.18 to 0.34 pp" in text  # noise floor CI
    assert "Test-set sampling floor 0.17 pp" in text
    assert "F = 85.2, p < 0.001" in text
    assert "Signal / noise 3.30x" in text
    assert "ICC 0.830" in text
    assert "37 runs, 4 configs" in text


def test_report_shows_excluded_and_diverged_count(tmp_path, summary, comparisons, importance, plot_files):
    text = page_text(render(tmp_path, summary, comparisons, importance, plot_files))
    assert "Excluded / diverged runs 3 (diverged: 2, nan_metric: 1)" in text


def test_report_verdict_and_importance_tables(tmp_path, summary, comparisons, importance, plot_files):
    html = render(tmp_path, summary, comparisons, importance, plot_files)
    text = page_text(html)
    # Verdict table sorted by difference, best first.
    order = [text.index(f"{c} ") for c in ("lr_hi 5", "hidden_256 5", "lr_lo 5")]
    assert order == sorted(order)
    assert "97.41 %" in text and "+0.41 pp" in text
    assert "hp.lr 3 15 0.910 pp² 0.0800 pp² 11.4 < 0.001 matters" in text


def test_report_escapes_user_text(tmp_path, summary, comparisons, importance, plot_files):
    evil = "<script>alert(1)</script>"
    comparisons.loc[0, "config"] = evil
    importance.loc[0, "hparam"] = '<img src="x" onerror="alert(2)">'
    summary = {**summary, "best_config": evil, "excluded_by_reason": {"<b>oom</b>": 3}}
    html = render(tmp_path, summary, comparisons, importance, plot_files,
                  title="A & B <report>", params_text="lr: 1e-3 </pre><script>x</script>",
                  notes=["<i>note</i>"])
    parser = parse(html)
    assert "script" not in parser.tags
    assert "&lt;i&gt;note&lt;/i&gt;" in html
    assert parser.tags.count("img") == len(plot_files)  # only the figures
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;: +0.41 pp" in html
    text = page_text(html)
    assert f"{evil}: +0.41 pp (95 % CI 0.12 to 0.70)" in text
    assert "lr: 1e-3 </pre><script>x</script>" in text
    assert "A & B <report>" in text


def test_report_handles_none_values_and_empty_importance(tmp_path):
    summary = dict.fromkeys([
        "metric", "direction", "baseline", "alpha", "correction", "confidence_level", "n_runs",
        "n_configs", "n_excluded", "excluded_by_reason", "noise_floor", "noise_floor_ci",
        "noise_floor_baseline", "noise_floor_baseline_ci", "test_sampling_floor", "signal",
        "signal_fixed_seed", "signal_over_noise", "snr", "f_stat", "f_pvalue", "icc", "best_config",
        "best_diff", "best_p_adjusted", "n_better", "n_worse", "var_config", "var_seed", "var_residual",
    ])
    comparisons = pd.DataFrame([comparison_row(config="a", diff=None, mean=None, baseline_mean=None,
                                               verdict="insufficient_runs", n=None, effect_size=None,
                                               prob_superior=None, correction=None, test=None)])
    html = render(tmp_path, summary, comparisons, pd.DataFrame(), {})
    text = page_text(html)
    assert "nan" not in text.lower().replace("nan_", "")
    assert "None" not in text
    assert "The seed-noise floor of the metric could not be estimated." in text
    assert "No hyperparameter importance table" in text
    assert "a: n/a, too few runs" in text
    assert "Parameters were not recorded." in text
    # With no comparison table at all.
    html = render(tmp_path, {}, None, None, {})
    assert "No variant was compared with the baseline." in page_text(html)


def test_report_notes_a_missing_figure(tmp_path, summary, comparisons, importance, plot_files):
    plots = {**plot_files, "importance": tmp_path / "does_not_exist.png"}
    html = render(tmp_path, summary, comparisons, importance, plots)
    assert "Figure importance is not available" in page_text(html)
    assert len(parse(html).img_srcs) == len(plot_files)


def test_report_in_metric_units_for_a_loss(tmp_path):
    summary = {"metric": "val_loss", "direction": "min", "noise_floor": 0.0046, "signal": 0.0152,
               "n_better": 0, "n_worse": 0}
    comparisons = pd.DataFrame([comparison_row(config="wd", mean=0.0877, baseline_mean=0.1,
                                               diff=-0.0123, verdict="within_noise")])
    text = page_text(render(tmp_path, summary, comparisons, None, {}))
    assert "Seed noise alone moves val_loss by ±0.00460 (std). Hyperparameters move it by 0.0152." in text
    assert not re.search(r"\bpp\b", text)
    assert "lower is better" in text
