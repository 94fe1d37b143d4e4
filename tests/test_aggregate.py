import json

import pytest

from noisefloor import params as P
from noisefloor.aggregate import AggregateError, collect_histories, collect_runs, run_dir
from tests.helpers import SMOKE


def _fake_runs(p, runs_dir, skip=()):
    """Metrics files as train_run writes them (content made up, hashes real)."""
    for i, (config, seed) in enumerate(p.runs()):
        if (config, seed) in skip:
            continue
        d = run_dir(runs_dir, config, seed)
        d.mkdir(parents=True)
        (d / "metrics.json").write_text(json.dumps({
            "config": config, "seed": seed, "config_hash": p.resolve(config).config_hash,
            "status": "ok", "val_acc": 0.5 + i / 100, "test_acc": 0.4, "n_val": 48}))
        (d / "history.csv").write_text("epoch,train_loss,val_loss,val_acc,time_s\n1,1.0,1.1,0.5,0.1\n")


def test_table_has_one_row_per_run_with_hyperparameters(tmp_path):
    p = P.load(SMOKE)
    _fake_runs(p, tmp_path)
    runs = collect_runs(p, tmp_path)
    assert list(zip(runs.config, runs.seed)) == p.runs()
    assert runs["val_acc"].tolist() == pytest.approx([0.5 + i / 100 for i in range(len(p.runs()))])
    assert set(runs.loc[runs.config == "lr_hi", "hp.lr"]) == {0.05}
    assert set(runs.loc[runs.config == "wide", "hp.hidden_size"]) == {12}
    h = collect_histories(p, tmp_path)
    assert len(h) == len(p.runs()) and set(h.columns) >= {"config", "seed", "epoch", "val_acc"}


def test_removed_config_leaves_no_stale_rows(tmp_path, smoke_raw, write_params):
    p = P.load(SMOKE)
    _fake_runs(p, tmp_path / "runs")
    del smoke_raw["configs"]["wide"]
    smaller = P.load(write_params(smoke_raw))
    runs = collect_runs(smaller, tmp_path / "runs")       # wide's folders still exist on disk
    assert "wide" not in set(runs.config) and len(runs) == 5


def test_missing_run_is_an_error_naming_the_file(tmp_path):
    p = P.load(SMOKE)
    _fake_runs(p, tmp_path, skip={("wide", 1)})
    with pytest.raises(AggregateError, match=r"wide/seed1/metrics.json: missing"):
        collect_runs(p, tmp_path)


def test_results_written_by_other_params_are_refused(tmp_path, smoke_raw, write_params):
    p = P.load(SMOKE)
    _fake_runs(p, tmp_path / "runs")
    smoke_raw["configs"]["lr_hi"]["lr"] = 0.2
    changed = P.load(write_params(smoke_raw))
    with pytest.raises(AggregateError, match=r"lr_hi/seed0/metrics.json: written by other params"):
        collect_runs(changed, tmp_path / "runs")
