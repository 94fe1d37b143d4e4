"""The command line as a user runs it: real subprocesses, files in, files out, exit codes."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest


def nf(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "noisefloor", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)


def foreign_table(n_seeds=8, effect=0.03, seed=0):
    """A runs table as another tool would export it: other column names, extra columns."""
    rng = np.random.default_rng(seed)
    rows = []
    for config, shift, lr in (("base", 0.0, 0.001), ("lr_up", effect, 0.003), ("lr_down", 0.0, 0.0003)):
        for s in range(n_seeds):
            rows.append({"config": config, "seed": s, "accuracy": 0.9 + shift + rng.normal(0, 0.005),
                         "hp.lr": lr, "runtime_min": rng.uniform(1, 2), "notes": "x"})
    return pd.DataFrame(rows)


def test_analyze_any_table_writes_the_four_outputs(tmp_path):
    foreign_table().to_csv(tmp_path / "runs.csv", index=False)
    proc = nf("analyze", tmp_path / "runs.csv", "--out", tmp_path / "out", "--metric", "accuracy",
              "--baseline", "base", "--correction", "bonferroni", "--alpha", "0.01")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["baseline"] == "base" and summary["correction"] == "bonferroni" and summary["alpha"] == 0.01
    assert summary["n_runs"] == 24 and summary["val_sampling_floor"] is None   # no eval size known
    comp = pd.read_csv(tmp_path / "out" / "comparisons.csv").set_index("config")
    assert comp.loc["lr_up", "verdict"] == "better"          # +6 noise floors, 8 paired seeds
    assert comp.loc["lr_down", "verdict"] in ("equivalent", "inconclusive")
    assert "1 better" in proc.stderr and "noise floor" in proc.stderr      # the answer in one line
    imp = pd.read_csv(tmp_path / "out" / "importance.csv")
    assert imp.hparam.tolist() == ["lr"] and imp.verdict.tolist() == ["matters"]


def test_direction_min_turns_better_into_worse(tmp_path):
    foreign_table().to_csv(tmp_path / "runs.csv", index=False)
    proc = nf("analyze", tmp_path / "runs.csv", "--out", tmp_path / "out", "--metric", "accuracy",
              "--baseline", "base", "--direction", "min")
    assert proc.returncode == 0, proc.stderr
    comp = pd.read_csv(tmp_path / "out" / "comparisons.csv").set_index("config")
    assert comp.loc["lr_up", "verdict"] == "worse"


def test_nan_and_diverged_rows_are_excluded_and_reported(tmp_path):
    t = foreign_table()
    t["status"] = "ok"
    t.loc[3, "accuracy"] = np.nan
    t.loc[10, "status"] = "diverged"
    t.to_csv(tmp_path / "runs.csv", index=False)
    proc = nf("analyze", tmp_path / "runs.csv", "--out", tmp_path / "out", "--metric", "accuracy",
              "--baseline", "base")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["n_runs"] == 22 and summary["n_excluded"] == 2
    excluded = pd.read_csv(tmp_path / "out" / "excluded.csv")
    assert sorted(excluded.seed.tolist()) == [2, 3] and len(excluded.reason.unique()) == 2


@pytest.mark.parametrize("mutate,expected", [
    (lambda t: t.drop(columns="seed"), "seed"),
    (lambda t: t.drop(columns="accuracy"), "accuracy"),
    (lambda t: t.assign(accuracy="high"), "accuracy"),
    (lambda t: t[t.config != "base"], "base"),
    (lambda t: pd.concat([t, t.iloc[[0]]]), "duplicate"),
])
def test_garbage_in_gets_one_line_naming_the_problem(tmp_path, mutate, expected):
    mutate(foreign_table()).to_csv(tmp_path / "runs.csv", index=False)
    proc = nf("analyze", tmp_path / "runs.csv", "--out", tmp_path / "out", "--metric", "accuracy",
              "--baseline", "base")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("noisefloor: error:") and expected in lines[0].lower()
    assert not (tmp_path / "out" / "summary.json").exists()


def test_unreadable_inputs_are_refused(tmp_path):
    proc = nf("analyze", tmp_path / "missing.csv", "--out", tmp_path / "out")
    assert proc.returncode == 2 and "missing.csv: runs table not found" in proc.stderr
    (tmp_path / "empty.csv").write_text("")
    proc = nf("analyze", tmp_path / "empty.csv", "--out", tmp_path / "out")
    assert proc.returncode == 2 and "empty.csv: not a readable CSV" in proc.stderr


def test_help_says_what_each_subcommand_reads_and_writes():
    for sub in ("train", "aggregate", "analyze", "plot", "report"):
        proc = nf(sub, "--help")
        assert proc.returncode == 0 and "Reads" in proc.stdout and "writes" in proc.stdout


def test_a_table_without_seed_noise_is_analysed_not_a_crash(tmp_path):
    """All runs equal: the noise floor is 0 and the test has no value, which the summary line must survive."""
    pd.DataFrame({"config": ["baseline", "baseline", "v0"], "seed": [0, 1, 0],
                  "val_acc": [0.5, 0.5, 0.5]}).to_csv(tmp_path / "runs.csv", index=False)
    proc = nf("analyze", tmp_path / "runs.csv", "--out", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["noise_floor"] == 0 and summary["configs_differ_pvalue"] is None
    assert "noise floor 0.00 pp" in proc.stderr


def test_version_and_help_show_defaults():
    proc = nf("--version")
    assert proc.returncode == 0 and proc.stdout.strip().startswith("noisefloor ")
    help_text = " ".join(nf("analyze", "--help").stdout.split())
    assert "--json" in help_text and "default: sidak" in help_text and "default: the noise floor" in help_text
    assert "(default: params.yaml)" in nf("train", "--help").stdout


def test_a_foreign_table_goes_through_analyze_plot_and_report_without_params(tmp_path):
    foreign_table().to_csv(tmp_path / "runs.csv", index=False)
    proc = nf("analyze", tmp_path / "runs.csv", "--out", tmp_path / "a", "--metric", "accuracy",
              "--baseline", "base", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == json.loads((tmp_path / "a" / "summary.json").read_text())
    proc = nf("plot", "--runs", tmp_path / "runs.csv", "--analysis", tmp_path / "a", "--out", tmp_path / "p")
    assert proc.returncode == 0, proc.stderr
    assert "learning-curve figure is left out" in proc.stderr
    assert sorted(p.name for p in (tmp_path / "p").glob("*.png")) == [
        "config_distributions.png", "differences.png", "importance.png", "marginal_effects.png",
        "noise_budget.png", "noise_vs_signal.png", "search_payoff.png"]
    proc = nf("report", "--analysis", tmp_path / "a", "--plots", tmp_path / "p", "--out", tmp_path / "r.html")
    assert proc.returncode == 0, proc.stderr
    html = (tmp_path / "r.html").read_text()
    assert "Baseline <b>base</b> at 8 seeds, 2 variants at 8 seeds" in html
    assert 'id="fig-learning_curves"' not in html and "not available" not in html   # no curves: no figure


def test_missing_inputs_of_plot_and_report_are_one_line_errors(tmp_path):
    foreign_table().to_csv(tmp_path / "runs.csv", index=False)
    assert nf("analyze", tmp_path / "runs.csv", "--out", tmp_path / "a", "--metric", "accuracy",
              "--baseline", "base").returncode == 0
    proc = nf("report", "--analysis", tmp_path / "a", "--plots", tmp_path / "nowhere", "--out", tmp_path / "r.html")
    assert proc.returncode == 2 and "nowhere: plots folder not found" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "r.html").exists()
    proc = nf("plot", "--runs", tmp_path / "runs.csv", "--analysis", tmp_path / "none", "--out", tmp_path / "p")
    assert proc.returncode == 2 and "summary.json: analysis summary not found" in proc.stderr
    proc = nf("plot", "--runs", tmp_path / "runs.csv", "--histories", tmp_path / "h.csv", "--analysis",
              tmp_path / "a", "--out", tmp_path / "p")
    assert proc.returncode == 2 and "h.csv: histories table not found" in proc.stderr
    (tmp_path / "other.csv").write_text("config,seed,val_acc\nbase,0,0.9\n")
    proc = nf("plot", "--runs", tmp_path / "other.csv", "--analysis", tmp_path / "a", "--out", tmp_path / "p")
    assert proc.returncode == 2 and "no 'accuracy' column" in proc.stderr


def test_a_wandb_export_is_analysed_as_it_is(tmp_path):
    from tests.helpers import wandb_export

    t = wandb_export()
    t.loc[t["config/lr"] == 0.003, "val_acc"] += 0.03           # a real improvement
    t.to_csv(tmp_path / "export.csv", index=False)
    proc = nf("analyze", tmp_path / "export.csv", "--out", tmp_path / "a")
    assert proc.returncode == 0, proc.stderr
    assert "config built from lr" in proc.stderr and "baseline = lr=0.001" in proc.stderr
    comp = pd.read_csv(tmp_path / "a" / "comparisons.csv").set_index("config")
    assert comp.loc["lr=0.003", "verdict"] == "better" and comp.loc["lr=0.003", "n"] == 4
    imp = pd.read_csv(tmp_path / "a" / "importance.csv")
    assert imp.hparam.tolist() == ["lr"] and imp.verdict.tolist() == ["matters"]
    proc = nf("analyze", tmp_path / "export.csv", "--out", tmp_path / "b", "--config-col", "Nmae")
    assert proc.returncode == 2 and "no column 'Nmae' (--config-col)" in proc.stderr


def test_an_mlflow_export_with_params_columns(tmp_path):
    from tests.helpers import wandb_export

    t = wandb_export().rename(columns={"config/lr": "params.lr", "config/batch_size": "params.batch_size",
                                       "config/seed": "params.seed", "Name": "run_id", "val_acc": "metrics.val_acc"})
    t.loc[t["params.lr"] == 0.0003, "metrics.val_acc"] -= 0.04          # a real loss
    t.to_csv(tmp_path / "mlflow.csv", index=False)
    proc = nf("analyze", tmp_path / "mlflow.csv", "--out", tmp_path / "a", "--metric", "metrics.val_acc",
              "--baseline", "lr=0.001")
    assert proc.returncode == 0, proc.stderr
    comp = pd.read_csv(tmp_path / "a" / "comparisons.csv").set_index("config")
    assert comp.loc["lr=0.0003", "verdict"] == "worse"


def test_dvc_exp_show_csv_with_one_experiment_per_run(tmp_path):
    """`dvc exp show --csv` of a project whose experiments are single runs: params as train.lr, train.seed."""
    rng = np.random.default_rng(3)
    rows = []
    for lr in (0.003, 0.01):
        for seed in range(6):
            rows.append({"Experiment": f"exp-{lr}-{seed}", "rev": f"{seed:07x}", "typ": "branch_commit",
                         "State": "Success", "val_acc": 0.9 + (0.05 if lr == 0.01 else 0) + rng.normal(0, 0.005),
                         "train.lr": lr, "train.seed": seed})
    pd.DataFrame(rows).to_csv(tmp_path / "exps.csv", index=False)
    proc = nf("analyze", tmp_path / "exps.csv", "--out", tmp_path / "a", "--seed-col", "train.seed",
              "--hparams", "train.lr", "--baseline", "train.lr=0.003")
    assert proc.returncode == 0, proc.stderr
    comp = pd.read_csv(tmp_path / "a" / "comparisons.csv")
    assert comp.config.tolist() == ["train.lr=0.01"] and comp.verdict.tolist() == ["better"]
    assert pd.read_csv(tmp_path / "a" / "importance.csv").hparam.tolist() == ["train.lr"]


def test_train_on_a_device_this_machine_lacks_is_one_line_and_exit_2(smoke_raw, write_params, tmp_path):
    import os

    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: train.device cuda is no error here")
    smoke_raw["train"]["device"] = "cuda"
    params = write_params(smoke_raw)
    proc = subprocess.run([sys.executable, "-m", "noisefloor", "train", "--params", str(params), "--config",
                           "baseline", "--seed", "0", "--runs-dir", str(tmp_path / "runs")],
                          capture_output=True, text=True, env=dict(os.environ, NOISEFLOOR_FORKSERVER="0"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "noisefloor: error: train.device is 'cuda' but no CUDA device is available (use 'cpu' or 'auto')"]
    assert not (tmp_path / "runs").exists()                # refused before any run folder is made
