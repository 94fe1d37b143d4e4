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


# --------------------------------------------------------------------------- straight from a tracker, and back


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real MLflow tracking server on 127.0.0.1 (sqlite store, artifacts served), for the module's tests."""
    import time
    import urllib.request

    folder = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    log = open(folder / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
                             f"sqlite:///{folder / 'mlflow.db'}", "--artifacts-destination", str(folder / "artifacts"),
                             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                            cwd=folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    # Ready when it answers its health check; the deadline only guards against a hang.
    deadline = time.monotonic() + 600
    while True:
        assert proc.poll() is None, (folder / "server.log").read_text()
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=5) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        assert time.monotonic() < deadline, (folder / "server.log").read_text()
        time.sleep(0.5)
    yield uri
    os.killpg(proc.pid, 15)
    proc.wait(timeout=60)
    log.close()


SERVER_RUNS = """
import sys
import mlflow
mlflow.set_tracking_uri(sys.argv[1])
mlflow.set_experiment("lr-server")
for (lr, seed), acc in {acc}.items():
    with mlflow.start_run():
        mlflow.log_params({{"lr": lr, "seed": seed}})
        mlflow.log_metric("val_acc", acc)
with mlflow.start_run():
    mlflow.log_params({{"lr": 0.001, "seed": 99}})
    mlflow.end_run(status="FAILED")
"""


def test_analyze_reads_an_experiment_straight_from_a_tracking_server(mlflow_server, tmp_path, capsys):
    acc = {(lr, s): _accuracy(lr, s) for lr, seeds in SEEDS.items() for s in seeds}
    subprocess.run([sys.executable, "-c", SERVER_RUNS.format(acc=repr(acc)), mlflow_server], check=True,
                   capture_output=True, timeout=600)
    out = tmp_path / "analysis"
    code = cli.main(["analyze", "--mlflow", "lr-server", "--tracking-uri", mlflow_server, "--metric", "val_acc",
                     "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_runs"] == 18 and summary["excluded_by_reason"] == {"failed": 1}
    assert summary["baseline"] == "lr=0.001" and summary["n_better"] == 1
    assert "18 runs (1 left out: 1 failed)" in err
    # the table as read, for the figures and the report
    assert cli.main(["plot", "--runs", str(out / "runs.csv"), "--analysis", str(out), "--out",
                     str(tmp_path / "plots")]) == 0
    assert (tmp_path / "plots" / "differences.png").stat().st_size > 0


@pytest.mark.parametrize("argv, message", [
    (["--mlflow", "nope", "--tracking-uri", "{uri}"], "--mlflow: no experiment named 'nope' at {uri}"),
    (["--mlflow", "lr", "--tracking-uri", "http://127.0.0.1:{closed}"], "--mlflow: cannot read http://127.0.0.1"),
    (["{table}", "--mlflow", "lr"], "give the runs as one of RUNS.csv, --mlflow EXPERIMENT or --wandb"),
    (["--wandb", "me/nope"], "--wandb: cannot read me/nope"),
    (["--mlflow", "lr", "--tracking-uri", "sqlite:///{tmp}/typo.db"], "--mlflow: no MLflow store at sqlite:///"),
])
def test_a_tracker_that_cannot_be_read_is_one_line(mlflow_server, tmp_path, capsys, monkeypatch, argv, message):
    # No W&B login here (and no network): its client refuses before it asks anything.
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    fill = dict(uri=mlflow_server, closed=_free_port(), table=tmp_path / "runs.csv", tmp=tmp_path)
    code = cli.main(["analyze", *[a.format(**fill) for a in argv], "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message.format(**fill) in err[0], err
    assert not (tmp_path / "typo.db").exists()          # reading never creates a store


def test_only_a_local_store_that_is_not_there_is_refused(tmp_path):
    from noisefloor.trackers import _missing_local_store

    (tmp_path / "a b.db").write_text("")
    there = [f"sqlite:///{tmp_path}/a b.db", f"sqlite:///{tmp_path}/a b.db?mode=ro", "sqlite:///:memory:",
             tmp_path.as_uri(), str(tmp_path), "databricks", "databricks://profile", "http://127.0.0.1:5000",
             "postgresql://user@host/db"]
    assert [_missing_local_store(u) for u in there] == [None] * len(there)
    assert _missing_local_store(f"sqlite:///{tmp_path}/none.db") == f"{tmp_path}/none.db"
    assert _missing_local_store(f"{tmp_path.as_uri()}/mlruns") == f"{tmp_path}/mlruns"


def test_mlflow_s_default_store_that_is_not_there_is_named_and_not_created(tmp_path, capsys, monkeypatch):
    # No --tracking-uri and no MLFLOW_TRACKING_URI: MLflow's default, a mlflow.db in the current folder.
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    code = cli.main(["analyze", "--mlflow", "lr", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "--mlflow: no MLflow store at sqlite:///" in err[0] and "give the store's --tracking-uri" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == []            # no mlflow.db, no mlruns, no out


def wandb_records(folder) -> dict[str, dict]:
    """What W&B's client wrote offline, read back: {run id: its name, config, history rows, summary}.

    A ``.wandb`` file is a LevelDB-style log of W&B's protobuf records (a 7-byte
    header, then 32 KiB blocks of chunks, each with a 7-byte header: checksum,
    length, type); the records are parsed with W&B's own protobuf classes.
    """
    import struct

    from wandb.proto import wandb_internal_pb2 as pb

    out = {}
    for path in sorted(folder.glob("wandb/offline-run-*/run-*.wandb")):
        data = path.read_bytes()
        assert data[:4] == b":W&B"
        pos, block, payload, records = 7, 32768, b"", []
        while pos + 7 <= len(data):
            if block - pos % block < 7:                 # a block's tail too short for a header is padding
                pos += block - pos % block
                continue
            _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
            payload += data[pos + 7:pos + 7 + length]
            pos += 7 + length
            if kind in (1, 4):                          # a whole record, or the last chunk of one
                record = pb.Record()
                record.ParseFromString(payload)
                records.append(record)
                payload = b""
        run = {"history": [], "summary": {}, "config": {}}
        for r in records:
            which = r.WhichOneof("record_type")
            if which == "run":
                run.update(id=r.run.run_id, name=r.run.display_name, project=r.run.project)
                run["config"].update({i.key: json.loads(i.value_json) for i in r.run.config.update})
            elif which == "config":
                run["config"].update({i.key: json.loads(i.value_json) for i in r.config.update})
            elif which == "history":
                run["history"].append({i.key or "/".join(i.nested_key): json.loads(i.value_json)
                                       for i in r.history.item})
            elif which == "summary":
                run["summary"].update({i.key or "/".join(i.nested_key): json.loads(i.value_json)
                                       for i in r.summary.update})
        out[run["id"]] = run
    return out


def _tracked_params(smoke_text: str, uri: str) -> str:
    import yaml

    raw = yaml.safe_load(smoke_text)
    raw["tracking"] = {"mlflow": {"tracking_uri": uri, "experiment": "smoke"},
                       "wandb": {"project": "smoke", "mode": "offline"}}
    return yaml.safe_dump(raw, sort_keys=False)


@pytest.mark.slow
def test_the_pipeline_logs_its_runs_and_analysis_to_mlflow_and_wandb(mlflow_server, tmp_path, capsys, monkeypatch):
    """The smoke experiment with a tracking section, under Snakemake: every run with its learning curve, and the
    analysis with the report, in a real MLflow server and in W&B's offline files; read back with their clients."""
    from mlflow.tracking import MlflowClient

    from tests.helpers import SMOKE, snakemake

    pytest.importorskip("wandb")
    (tmp_path / "params.yaml").write_text(_tracked_params(SMOKE.read_text(), mlflow_server))
    proc = snakemake(tmp_path)
    # what the trackers got is on the console (and in the report step's log)
    console = proc.stdout + proc.stderr
    log = (tmp_path / "results" / "logs" / "report.log").read_text()
    for said in ("report: mlflow: 7 new runs logged (0 there already), the analysis logged",
                 "report: wandb: 7 new runs logged (0 there already), the analysis logged"):
        assert said in log and said in console, console
    runs = pd.read_csv(tmp_path / "results" / "runs.csv")
    histories = pd.read_csv(tmp_path / "results" / "histories.csv")
    analysis = tmp_path / "results" / "analysis"
    comparisons = pd.read_csv(analysis / "comparisons.csv")
    headline = json.loads((analysis / "metrics.json").read_text())

    # MLflow: one run per training run, its params, its curve, its final metrics; the analysis beside them
    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("smoke")
    logged = client.search_runs([experiment.experiment_id])
    by_name = {r.info.run_name: r for r in logged}
    assert len(logged) == 8 and all(r.info.status == "FINISHED" for r in logged)
    for _, row in runs.iterrows():
        run = by_name[f"{row['config']}-seed{row['seed']}"]
        assert run.data.tags["noisefloor.config"] == row["config"] and run.data.params["seed"] == str(row["seed"])
        assert run.data.tags["noisefloor.stage"] == row["stage"] and float(run.data.params["lr"]) == row["hp.lr"]
        assert "config" not in run.data.params and "stage" not in run.data.params    # not hyperparameters
        assert run.data.tags["noisefloor.config_hash"] == row["config_hash"]
        assert run.data.metrics["test_acc"] == pytest.approx(row["test_acc"])
        curve = histories[(histories.config == row["config"]) & (histories.seed == row["seed"])]
        steps = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "val_acc"))
        assert steps == [(int(e), pytest.approx(v)) for e, v in zip(curve.epoch, curve.val_acc)]
    result = by_name["analysis"]
    assert result.data.metrics["noise_floor"] == headline["noise_floor"]
    assert {c: result.data.tags[f"verdict.{c}"] for c in comparisons.config} == \
        dict(zip(comparisons.config, comparisons.verdict))
    assert {a.path for a in client.list_artifacts(result.info.run_id)} >= {"report.html", "params.yaml"}

    # ... and what was logged reads back into the same answer
    capsys.readouterr()
    assert cli.main(["analyze", "--mlflow", "smoke", "--tracking-uri", mlflow_server,
                     "--out", str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "summary.json").read_text())
    mine = json.loads((analysis / "summary.json").read_text())
    assert again["noise_floor"] == pytest.approx(mine["noise_floor"])
    verdicts = pd.read_csv(tmp_path / "again" / "comparisons.csv")
    assert list(zip(verdicts.config, verdicts.verdict)) == list(zip(comparisons.config, comparisons.verdict))

    # W&B offline: the same runs, their curves and the analysis, in the files W&B syncs
    wandb_runs = {r["name"]: r for r in wandb_records(tmp_path / "results").values()}
    assert len(wandb_runs) == 8 and {r["project"] for r in wandb_runs.values()} == {"smoke"}
    for _, row in runs.iterrows():
        run = wandb_runs[f"{row['config']}-seed{row['seed']}"]
        assert run["config"]["config"] == row["config"] and run["config"]["lr"] == row["hp.lr"]
        curve = histories[(histories.config == row["config"]) & (histories.seed == row["seed"])]
        assert [(h["epoch"], h["val_acc"]) for h in run["history"]] == \
            [(int(e), pytest.approx(v)) for e, v in zip(curve.epoch, curve.val_acc)]
        assert run["summary"]["test_acc"] == pytest.approx(row["test_acc"])
    summary = wandb_runs["analysis"]["summary"]
    assert summary["noise_floor"] == headline["noise_floor"] and summary["verdicts"] == headline["verdicts"]

    # Logging again adds nothing: every run is there already.
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert cli.main(["track"]) == 0
    err = capsys.readouterr().err
    assert "mlflow: 0 new runs logged (7 there already), analysis already logged" in err
    assert "wandb: 0 new runs logged (7 there already), analysis already logged" in err
    assert len(client.search_runs([experiment.experiment_id])) == 8


def test_a_tracker_that_is_down_costs_no_result_and_track_logs_it_later(mlflow_server, tmp_path, capsys):
    """The report step with MLflow unreachable: the report is written, one line says what was not logged;
    `noisefloor track` logs it once the server is named correctly (as after it came back)."""
    import yaml

    from tests.synthetic import make_runs

    runs = make_runs()
    # a name MLflow's keys cannot spell as it is (a search's confirmation is named like this)
    runs["config"] = runs["config"].replace({"lr_hi": "sweep_003 (fresh seeds)"})
    runs.to_csv(tmp_path / "runs.csv", index=False)
    assert cli.main(["analyze", str(tmp_path / "runs.csv"), "--out", str(tmp_path / "analysis")]) == 0
    assert cli.main(["plot", "--runs", str(tmp_path / "runs.csv"), "--analysis", str(tmp_path / "analysis"),
                     "--out", str(tmp_path / "plots")]) == 0
    from tests.helpers import SMOKE

    params = yaml.safe_load(SMOKE.read_text())
    params["tracking"] = {"mlflow": {"tracking_uri": f"http://127.0.0.1:{_free_port()}", "experiment": "down"}}
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    capsys.readouterr()
    report = tmp_path / "report.html"
    assert cli.main(["report", "--params", str(params_file), "--runs", str(tmp_path / "runs.csv"),
                     "--analysis", str(tmp_path / "analysis"), "--plots", str(tmp_path / "plots"),
                     "--out", str(report)]) == 0
    err = capsys.readouterr().err
    assert report.stat().st_size > 0
    assert "report: mlflow: not logged (" in err and "`noisefloor track` logs what is missing" in err
    # `noisefloor track` while it is still down: exit 1, the same line
    track = ["track", "--params", str(params_file), "--runs", str(tmp_path / "runs.csv"),
             "--histories", str(tmp_path / "none.csv"),      # no learning curves: the final metrics alone
             "--analysis", str(tmp_path / "analysis"), "--report", str(report)]
    assert cli.main(track) == 1
    assert "track: mlflow: not logged (" in capsys.readouterr().err
    # back (here: named where it runs): every finished run and the analysis, once
    params["tracking"]["mlflow"]["tracking_uri"] = mlflow_server
    params_file.write_text(yaml.safe_dump(params))
    n_ok = int((runs["status"] == "ok").sum())
    assert cli.main(track) == 0
    assert f"mlflow: {n_ok} new runs logged (0 there already), the analysis logged" in capsys.readouterr().err
    assert cli.main(track) == 0
    assert f"mlflow: 0 new runs logged ({n_ok} there already), analysis already logged" in capsys.readouterr().err
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("down").experiment_id
    logged = client.search_runs([experiment])
    analysis = next(r for r in logged if r.info.run_name == "analysis")
    assert analysis.data.tags["verdict.sweep_003 _fresh seeds_"] == "better"
    # A run cut short (the server went down while it was logged) has no key yet: the next call logs it again
    # and deletes the partial one.
    cut = next(r for r in logged if r.info.run_name == "baseline-seed0")
    client.delete_tag(cut.info.run_id, "noisefloor.key")
    assert cli.main(track) == 0
    assert f"mlflow: 1 new runs logged ({n_ok - 1} there already)" in capsys.readouterr().err
    again = client.search_runs([experiment])
    assert len(again) == len(logged) and cut.info.run_id not in {r.info.run_id for r in again}


def test_track_without_a_tracker_in_the_params_is_one_line(tmp_path, capsys):
    from tests.helpers import SMOKE

    (tmp_path / "params.yaml").write_text(SMOKE.read_text())
    assert cli.main(["track", "--params", str(tmp_path / "params.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "tracking: no tracker named (add tracking.mlflow or tracking.wandb)" in err[0]
