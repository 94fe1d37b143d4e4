"""How the metric is shown: decided once by the analysis (Summary.percent), read by every renderer."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from noisefloor import cli, plots
from noisefloor.stats import analyze
from noisefloor.stats.units import in_percent
from tests.helpers import ROOT

SRC = ROOT / "src" / "noisefloor"


def test_a_fraction_is_shown_in_percent_and_anything_else_in_its_units():
    assert in_percent("val_acc", [0.91, 0.93])
    assert in_percent("f1", [0.5])
    assert not in_percent("bleu", [25.1, 24.7])          # a score above 1: its own units
    assert not in_percent("bleu", [0.4, 25.0])           # one value outside [0, 1] decides
    assert not in_percent("val_loss", [0.2, 0.3])        # a loss never, even inside [0, 1]
    assert in_percent("val_acc", [np.nan, 0.9])          # non-finite values are ignored
    assert in_percent("test_accuracy", []) and not in_percent("perplexity", [])   # no values: the name


def _bleu_runs(seed=0) -> pd.DataFrame:
    """A BLEU-like metric: mean 25, seed noise 0.4 (values far from [0, 1], a noise floor inside it)."""
    rng = np.random.default_rng(seed)
    rows = [{"config": "baseline", "seed": s, "bleu": 25 + 0.4 * rng.standard_normal()} for s in range(10)]
    rows += [{"config": c, "seed": s, "bleu": 25 + shift + 0.4 * rng.standard_normal()}
             for c, shift in (("beam8", 1.5), ("lr_hi", 0.0)) for s in range(4)]
    return pd.DataFrame(rows)


def _texts(fig) -> list[str]:
    """Every piece of text a figure shows: titles, labels, tick labels, legends, annotations."""
    return [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")) if t.get_text()]


def test_a_bleu_like_metric_is_shown_in_its_units_by_the_cli_the_report_and_every_figure(tmp_path, monkeypatch,
                                                                                          capsys):
    runs = tmp_path / "runs.csv"
    _bleu_runs().to_csv(runs, index=False)
    analysis, figures, report = tmp_path / "analysis", tmp_path / "plots", tmp_path / "report.html"

    assert cli.main(["analyze", str(runs), "--metric", "bleu", "--baseline", "baseline",
                     "--out", str(analysis)]) == 0
    answer = capsys.readouterr()
    line = (answer.out + answer.err).strip().splitlines()
    summary = cli._read_summary(analysis)
    assert summary.percent is False
    floor = summary.noise_floor
    assert 0 < floor < 1                                   # the trap: a noise floor that looks like a fraction
    said = cli.answer_line(summary)
    assert "pp" not in said and f"{floor:.3f}"[:4] in said, said
    assert any(said in text for text in line)

    shown = []
    real_save = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: (shown.append((Path(path).name, _texts(fig))),
                                                          real_save(fig, path))[1])
    assert cli.main(["plot", "--runs", str(runs), "--analysis", str(analysis), "--out", str(figures)]) == 0
    assert len(shown) >= 6
    for name, texts in shown:
        for text in texts:
            assert " pp" not in text and "percentage points" not in text and "(%)" not in text, (name, text)

    assert cli.main(["report", "--runs", str(runs), "--analysis", str(analysis), "--plots", str(figures),
                     "--out", str(report)]) == 0
    html = report.read_text()
    assert " pp" not in html and "percentage points" not in html
    assert f"{floor:.3f}" in html or f"{floor:.2f}" in html


def test_a_fraction_is_shown_in_percentage_points_by_the_same_renderers(tmp_path):
    runs = _bleu_runs()
    runs["val_acc"] = runs.pop("bleu") / 100                 # the same runs as a fraction
    res = analyze(runs, "val_acc", baseline="baseline")
    assert res.summary.percent is True
    assert "pp" in cli.answer_line(res.summary)


def _names_used(tree) -> set[str]:
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            used |= {a.name for a in node.names}
        elif isinstance(node, ast.Name):
            used.add(node.id)
        elif isinstance(node, ast.Attribute):
            used.add(node.attr)
    return used


def test_the_display_decision_is_made_in_one_place():
    """Only the analysis (its runs section) calls the decision; no other module decides percent."""
    callers = sorted(str(path.relative_to(SRC)) for path in SRC.rglob("*.py")
                     if path.name != "units.py" and "in_percent" in _names_used(ast.parse(path.read_text())))
    assert callers == ["stats/sections.py"]
    # The old per-renderer decisions are gone for good.
    for path in SRC.rglob("*.py"):
        names = _names_used(ast.parse(path.read_text()))
        assert not names & {"metric_is_fraction", "_fraction", "_Units"}, path


@pytest.mark.parametrize("percent", [True, False])
def test_figures_take_the_decision_they_are_given(percent):
    runs = _bleu_runs()
    res = analyze(runs, "bleu", baseline="baseline")
    fig = plots.differences_figure(res.comparisons, res.summary.noise_floor, metric="bleu", percent=percent)
    label = fig.axes[0].get_xlabel()
    assert ("percentage points" in label) is percent
