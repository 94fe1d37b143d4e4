"""The flat headline file for experiment trackers (results/analysis/metrics.json)."""

import json

import numpy as np
import pytest

from noisefloor import cli
from noisefloor.tracking import HEADLINE_KEYS, headline_metrics
from tests.synthetic import make_runs


@pytest.fixture
def analysed(tmp_path):
    """`noisefloor analyze` on a realistic synthetic sweep (one diverged run)."""
    runs = make_runs()
    runs.to_csv(tmp_path / "runs.csv", index=False)
    assert cli.main([
        "analyze", str(tmp_path / "runs.csv"), "--out", str(tmp_path / "analysis"), "--correction", "bonferroni",
    ]) == 0
    return tmp_path / "analysis"


def test_the_cli_writes_the_headline_of_its_summary(analysed):
    summary = json.loads((analysed / "summary.json").read_text())
    text = (analysed / "metrics.json").read_text()
    metrics = json.loads(text)
    assert metrics == headline_metrics(summary)
    # the answer first, in a fixed order (the column order of `dvc exp show`)
    assert list(metrics) == ["metric", *HEADLINE_KEYS]
    assert metrics["metric"] == "val_acc"
    assert metrics["noise_floor"] == pytest.approx(summary["noise_floor"], rel=1e-3) and metrics["noise_floor"] > 0
    assert [metrics["noise_floor_ci_low"], metrics["noise_floor_ci_high"]] == pytest.approx(
        summary["noise_floor_ci"], rel=1e-3)
    assert metrics["hp_variance_share"] == round(summary["hp_variance_share"], 3) > 0
    assert metrics["best_config"] == "lr_hi"          # the synthetic sweep's real improvement
    assert metrics["best_verdict"] == "better"
    assert [metrics[k] for k in ("n_better", "n_worse", "n_equivalent", "n_inconclusive")] == [1, 1, 0, 3]
    assert metrics["verdicts"] == "1 better, 1 worse, 3 inconclusive"     # the counts that occur, in words
    assert metrics["n_runs"] == summary["n_runs"] == len(make_runs()) - 1   # the diverged run is out
    # flat: one scalar per key, nothing a tracker would have to unfold
    assert all(v is None or isinstance(v, (int, float, str)) for v in metrics.values())


def test_missing_and_non_finite_values_become_null_and_numpy_scalars_plain():
    summary = {
        "metric": "val_loss", "noise_floor": np.float64(0.02), "hp_variance_share": float("nan"),
        "best_diff": float("inf"), "best_config": None, "n_runs": np.int64(12),
        "noise_floor_ci": [0.01, 0.03], "excluded_by_reason": {"diverged": 1},
    }
    m = headline_metrics(summary)
    assert m == {"metric": "val_loss", "noise_floor": 0.02, "noise_floor_ci_low": 0.01, "noise_floor_ci_high": 0.03,
                 "hp_variance_share": None, "best_config": None, "best_diff": None, "best_ci_low": None,
                 "best_ci_high": None, "best_verdict": None, "verdicts": None, "n_better": None, "n_worse": None,
                 "n_equivalent": None, "n_inconclusive": None, "n_insufficient_runs": None, "n_runs": 12}
    assert type(m["n_runs"]) is int and type(m["noise_floor"]) is float
    json.dumps(m, allow_nan=False)                    # valid strict JSON


def test_numbers_are_rounded_to_what_they_can_mean():
    m = headline_metrics({"noise_floor": 0.015014317, "best_diff": 2.7756e-17, "best_ci": [-0.00012345678, 0.0561],
                          "hp_variance_share": 0.67027177})
    assert m["noise_floor"] == 0.01501                 # four significant digits of the noise floor
    assert m["best_diff"] == 0.0 and str(m["best_diff"]) == "0.0"
    assert m["best_ci_low"] == -0.00012 and m["best_ci_high"] == 0.0561
    assert m["hp_variance_share"] == 0.67


def test_the_verdict_counts_in_words_name_only_the_verdicts_that_occur():
    from noisefloor.summary import Summary

    def words(**counts):
        zero = dict(n_better=0, n_worse=0, n_equivalent=0, n_inconclusive=0, n_insufficient_runs=0)
        return Summary.from_dict({**zero, **counts}).verdict_counts_text()

    assert words() == "none"
    assert words(n_better=2, n_insufficient_runs=1) == "2 better, 1 with too few runs"
    assert words(n_worse=1, n_equivalent=3, n_inconclusive=1) == "1 worse, 3 equivalent, 1 inconclusive"
