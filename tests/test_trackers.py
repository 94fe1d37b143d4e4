"""Runs kept in an experiment tracker, read as the tracker's own client exports them.

The tables are written by the real clients (MLflow's tracking client with a
file store; W&B's client in offline mode, its run's ``summary`` and ``config``
documents flattened as W&B's export recipe does), never typed in by hand.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from noisefloor import cli

pytest.importorskip("mlflow")

# lr 0.003 is better than the baseline 0.001 by 3 noise floors; lr 0.0003 is no different.
SHIFT = {0.001: 0.0, 0.003: 0.03, 0.0003: 0.0}
SEEDS = {0.001: range(10), 0.003: range(4), 0.0003: range(4)}


def _accuracy(lr: float, seed: int) -> float:
    return 0.9 + SHIFT[lr] + float(np.random.default_rng([seed, int(lr * 1e4)]).normal(0, 0.01))


def _analyze(table, capsys, *args) -> tuple[int, dict, str]:
    out = table.parent / "analysis"
    capsys.readouterr()
    code = cli.main(["analyze", str(table), "--out", str(out), *args])
    err = capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text()) if code == 0 else {}
    return code, summary, err


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory):
    """An MLflow experiment logged by MLflow's client: 18 finished runs, one failed, one still running."""
    folder = tmp_path_factory.mktemp("mlflow")
    script = f"""
import mlflow
mlflow.set_tracking_uri({(folder / 'store').as_uri()!r})
mlflow.set_experiment("lr")
for lr, seeds in {dict((k, list(v)) for k, v in SEEDS.items())!r}.items():
    for seed in seeds:
        with mlflow.start_run():
            mlflow.log_params({{"lr": lr, "seed": seed, "batch_size": 64}})
            for epoch, gap in enumerate((0.05, 0.02, 0.0)):
                mlflow.log_metric("val_acc", {{acc}}[(lr, seed)] - gap, step=epoch)
with mlflow.start_run():
    mlflow.log_params({{"lr": 0.001, "seed": 99, "batch_size": 64}})
    mlflow.log_metric("val_acc", 0.1)
    mlflow.end_run(status="FAILED")
mlflow.start_run()
mlflow.log_params({{"lr": 0.003, "seed": 98, "batch_size": 64}})
mlflow.search_runs(experiment_names=["lr"]).to_csv({str(folder / 'search_runs.csv')!r}, index=False)
print(mlflow.get_experiment_by_name("lr").experiment_id)
"""
    acc = {(lr, s): _accuracy(lr, s) for lr, seeds in SEEDS.items() for s in seeds}
    env = dict(os.environ, MLFLOW_ALLOW_FILE_STORE="true")
    made = subprocess.run([sys.executable, "-c", script.replace("{acc}", repr(acc))], check=True, env=env,
                          cwd=folder, capture_output=True, text=True, timeout=600)
    experiment = made.stdout.split()[-1]
    subprocess.run([sys.executable, "-m", "mlflow", "experiments", "csv", "--experiment-id", experiment,
                    "--filename", str(folder / "experiments_csv.csv")], check=True, capture_output=True,
                   env=dict(env, MLFLOW_TRACKING_URI=(folder / "store").as_uri()), cwd=folder, timeout=600)
    return folder


@pytest.mark.parametrize("export, left_out", [
    ("search_runs.csv", {"failed": 1, "running": 1}),
    # exported after the client's process ended, which ended the running run (without a val_acc)
    ("experiments_csv.csv", {"failed": 1, "metric is NaN": 1}),
])
def test_an_unedited_mlflow_export_gives_verdicts_with_only_the_metric_name(mlflow_store, capsys, export, left_out):
    """mlflow.search_runs().to_csv() and `mlflow experiments csv`, as they come."""
    table = mlflow_store / export
    raw = pd.read_csv(table)
    assert {"status", "params.lr", "params.seed", "metrics.val_acc"} <= set(raw.columns)
    assert set(raw["status"]) >= {"FAILED", "FINISHED"}
    code, summary, err = _analyze(table, capsys, "--metric", "val_acc")
    assert code == 0, err
    assert summary["n_runs"] == 18 and summary["n_excluded"] == 2 and summary["excluded_by_reason"] == left_out
    assert summary["baseline"] == "lr=0.001" and summary["n_better"] == 1
    assert "metric 'val_acc' from column 'metrics.val_acc'" in err
    reasons = ", ".join(f"{n} {why}" for why, n in sorted(left_out.items()))
    assert f"18 runs (2 left out: {reasons})" in err


WANDB_EXPORT = """
import json, os, sys
import pandas as pd
import wandb

folder, runs = sys.argv[1], json.loads(sys.argv[2])
rows = []
for lr, seed, acc in runs:
    run = wandb.init(mode="offline", dir=folder, project="lr", config={"lr": lr, "seed": seed})
    run.log({"val_acc": acc})
    # W&B's export recipe: each run's summary and config (no keys starting with _), flattened.
    rows.append({"name": f"run-{lr}-{seed}", "state": "finished",
                 "summary": {k: v for k, v in dict(run.summary).items() if not k.startswith("_")},
                 "config": {k: v for k, v in run.config.as_dict().items() if not k.startswith("_")}})
    run.finish()
pd.json_normalize(rows).to_csv(os.path.join(folder, "wandb_api.csv"), index=False)
"""


def test_a_w_and_b_export_is_read_as_its_client_documents_it(tmp_path, capsys):
    pytest.importorskip("wandb")
    runs = [(lr, s, _accuracy(lr, s)) for lr, seeds in SEEDS.items() for s in seeds]
    # W&B's client in a process of its own (it hooks the interpreter's exit), offline: nothing leaves the machine.
    subprocess.run([sys.executable, "-c", WANDB_EXPORT, str(tmp_path), json.dumps(runs)], check=True,
                   env=dict(os.environ, WANDB_SILENT="true", WANDB_MODE="offline"), capture_output=True,
                   timeout=600)
    api = pd.read_csv(tmp_path / "wandb_api.csv")
    assert {"summary.val_acc", "config.lr", "config.seed", "state"} <= set(api.columns)
    code, summary, err = _analyze(tmp_path / "wandb_api.csv", capsys, "--metric", "val_acc")
    assert code == 0, err
    assert summary["n_runs"] == 18 and summary["n_better"] == 1 and summary["baseline"] == "lr=0.001"

    # The web UI's CSV: bare columns, as W&B writes them (State, config keys, summary keys).
    ui = pd.DataFrame({"Name": api["name"], "State": api["state"], "lr": api["config.lr"],
                       "seed": api["config.seed"], "val_acc": api["summary.val_acc"]})
    ui.to_csv(tmp_path / "wandb_ui.csv", index=False)
    code, _, err = _analyze(tmp_path / "wandb_ui.csv", capsys, "--metric", "val_acc")
    assert code == 2 and "name the hyperparameters with --hparams (e.g. --hparams lr)" in err
    code, summary, err = _analyze(tmp_path / "wandb_ui.csv", capsys, "--metric", "val_acc", "--hparams", "lr")
    assert code == 0, err
    assert summary["n_better"] == 1 and "status from column 'State': 18 finished" in err


def test_a_metric_that_is_not_a_number_is_named_by_line_and_left_out(mlflow_store, tmp_path, capsys):
    raw = pd.read_csv(mlflow_store / "search_runs.csv")
    raw["metrics.val_acc"] = raw["metrics.val_acc"].astype(object)
    raw.loc[3, "metrics.val_acc"] = "n/a"
    raw.to_csv(tmp_path / "runs.csv", index=False)
    code, summary, err = _analyze(tmp_path / "runs.csv", capsys, "--metric", "val_acc")
    assert code == 0, err
    assert "1 value(s) of 'val_acc' are not numbers (line 5: 'n/a'): those runs are left out" in err
    assert summary["n_runs"] == 17


@pytest.mark.parametrize("runs, out, message", [
    ("{folder}", "{folder}/out", "a folder, not a runs table (a CSV file)"),
    ("{table}", "/proc/nope", "/proc/nope"),
])
def test_a_bad_path_is_one_line_not_a_traceback(tmp_path, capsys, runs, out, message):
    table = tmp_path / "runs.csv"
    pd.DataFrame({"config": ["a"] * 3 + ["b"] * 3, "seed": [0, 1, 2] * 2,
                  "val_acc": [0.9, 0.91, 0.92, 0.93, 0.94, 0.95]}).to_csv(table, index=False)
    argv = ["analyze", runs, "--out", out, "--baseline", "a"]
    assert cli.main([a.format(folder=tmp_path, table=table) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("noisefloor: error: ") and message in err[0]
