"""Runs tables as trackers export them: W&B, MLflow, this project's own."""

import pandas as pd
import pytest

from noisefloor.runs_table import TableError, busiest_config, normalize
from tests.helpers import wandb_export


def test_a_wandb_export_gets_its_seed_hyperparameters_and_configs():
    t = normalize(wandb_export(), source="export.csv")
    runs = t.runs
    assert t.config_built and t.notes == ["status from column 'State': 18 finished", "seed from column 'config/seed'",
                                          "config built from lr"]
    assert {"hp.lr", "hp.batch_size", "seed", "config"} <= set(runs.columns)
    assert "config/lr" not in runs.columns and "hp.seed" not in runs.columns
    assert sorted(runs.config.unique()) == ["lr=0.0003", "lr=0.001", "lr=0.003"]
    assert busiest_config(runs) == "lr=0.001"
    # runs with equal hyperparameters share a config, and seeds are kept as they were
    assert runs.groupby("config").seed.apply(list)["lr=0.003"] == [0, 1, 2, 3]


def test_an_mlflow_export_with_a_named_config_column():
    t = wandb_export().rename(columns={"config/lr": "params.lr", "config/batch_size": "params.batch_size",
                                       "config/seed": "params.seed", "Name": "run_name"})
    t["group"] = t["params.lr"].map({0.001: "baseline", 0.003: "lr_hi", 0.0003: "lr_lo"})
    out = normalize(t, config_col="group", seed_col="params.seed")
    assert not out.config_built and set(out.runs.config) == {"baseline", "lr_hi", "lr_lo"}
    assert (out.runs.seed == t["params.seed"]).all() and "hp.lr" in out.runs.columns


def test_this_projects_table_passes_unchanged():
    runs = pd.DataFrame({"config": ["baseline", "a"], "seed": [0, 0], "val_acc": [0.9, 0.91], "hp.lr": [1, 2]})
    out = normalize(runs)
    pd.testing.assert_frame_equal(out.runs, runs)
    assert out.notes == [] and not out.config_built


@pytest.mark.parametrize("table, kwargs, message", [
    (pd.DataFrame({"config": ["a"], "val_acc": [0.9]}), {}, "export.csv: no 'seed' column (name it with --seed-col)"),
    (pd.DataFrame({"seed": [0], "val_acc": [0.9]}), {}, "export.csv: no 'config' column and no hyperparameter"),
    (pd.DataFrame({"config": ["a"], "seed": [0]}), {"config_col": "group"}, "export.csv: no column 'group' (--config-col)"),
    (pd.DataFrame({"config": ["a"], "seed": [0], "hp.lr": [1], "config/lr": [1]}), {}, "'hp.lr' is given twice"),
])
def test_bad_tables_are_one_line_errors_naming_file_and_column(table, kwargs, message):
    with pytest.raises(TableError) as info:
        normalize(table, source="export.csv", **kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)
