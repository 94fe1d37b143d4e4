"""The runner: a pool gives one process's records, train-ahead hands runs over exactly, the CLI launches nothing.

Pools are driven through the real ``noisefloor train`` in a subprocess: a pool
forks its process, which must not have run a torch op (this test process has).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from noisefloor import params as P, runner
from noisefloor.runfiles import HISTORY_FILE, METRICS_FILE
from tests.helpers import settle

ROOT = Path(__file__).resolve().parents[1]
TIMING = {"wall_time_s"}
TAKEN = "trained ahead; taken from"


def train(params: Path, runs: Path, config: str, *seeds: int, jobs: int, staging: Path | None = None,
          env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "noisefloor", "train", "--params", str(params), "--config", config,
           "--runs-dir", str(runs), "-j", str(jobs)]
    for s in seeds:
        cmd += ["--seed", str(s)]
    if staging is not None:
        cmd += ["--staging-dir", str(staging)]
    # No fork server: the pool is this subprocess's own (the server's worker would run the same code).
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, NOISEFLOOR_FORKSERVER="0", **(env or {})))
    return proc


def record(runs: Path, config: str, seed: int) -> dict:
    return json.loads((runs / config / f"seed{seed}" / METRICS_FILE).read_text())


def without_timing(m: dict) -> dict:
    return {k: v for k, v in m.items() if k not in TIMING}


def staged(staging: Path) -> dict[tuple[str, int], Path]:
    """Every finished run in the staging folder: {(config, seed): its folder}."""
    return {(p.parent.parent.name, int(p.parent.name.removeprefix("seed"))): p.parent
            for p in staging.glob(f"*/*/seed*/{METRICS_FILE}")}


def test_a_pool_gives_the_records_and_histories_one_process_gives(smoke_raw, write_params, tmp_path):
    params = write_params(smoke_raw)
    one = train(params, tmp_path / "one", "baseline", 0, 1, 2, jobs=1)
    two = train(params, tmp_path / "two", "baseline", 0, 1, 2, jobs=2)
    assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
    assert "3 runs, 2 at a time" in two.stderr and "at a time" not in one.stderr
    for seed in (0, 1, 2):
        assert without_timing(record(tmp_path / "one", "baseline", seed)) == \
            without_timing(record(tmp_path / "two", "baseline", seed))
        histories = [(tmp_path / d / "baseline" / f"seed{seed}" / HISTORY_FILE).read_text().splitlines()
                     for d in ("one", "two")]
        assert [line.rsplit(",", 1)[0] for line in histories[0]] == \
            [line.rsplit(",", 1)[0] for line in histories[1]]            # every column but time_s


def test_train_ahead_stages_the_next_runs_and_their_stage_takes_them_without_training(smoke_raw, write_params,
                                                                                     tmp_path):
    params = write_params(smoke_raw)
    runs, staging = tmp_path / "results" / "runs", tmp_path / "results" / ".staged"
    first = train(params, runs, "baseline", 0, jobs=3, staging=staging)
    assert first.returncode == 0, first.stderr
    # its own run in place; the next two of DVC's order (baseline seeds 1 and 2) trained into staging
    assert (runs / "baseline" / "seed0" / METRICS_FILE).is_file()
    assert "[baseline seed=1] training ahead into" in first.stderr and "at a time" not in first.stderr
    settle(staging)
    assert sorted(staged(staging)) == [("baseline", 1), ("baseline", 2)]
    assert not (runs / "baseline" / "seed1").exists()
    ahead = json.loads((staged(staging)[("baseline", 1)] / METRICS_FILE).read_text())

    second = train(params, runs, "baseline", 1, jobs=2, staging=staging)
    assert second.returncode == 0, second.stderr
    assert f"[baseline seed=1] ok: val_acc={ahead['val_acc']} ({ahead['wall_time_s']:.1f} s, {TAKEN}" \
        in second.stderr
    assert "[baseline seed=1] epoch 2/2" in second.stderr   # the run's training log, into this stage's log
    assert record(runs, "baseline", 1) == ahead              # the very record trained ahead, not trained again
    # taking its run, it keeps two training: the next two not staged yet (seed 2 is)
    assert "[lr_hi seed=0] training ahead into" in second.stderr
    assert "[lr_hi seed=1] training ahead into" in second.stderr
    settle(staging)
    assert sorted(staged(staging)) == [("baseline", 2), ("lr_hi", 0), ("lr_hi", 1)]

    # the same numbers as training the run where it belongs
    direct = train(params, tmp_path / "direct", "baseline", 1, jobs=1)
    assert direct.returncode == 0, direct.stderr
    assert without_timing(record(tmp_path / "direct", "baseline", 1)) == without_timing(ahead)


def test_a_staged_run_of_another_identity_is_never_used_and_is_removed(smoke_raw, write_params, tmp_path):
    params = write_params(smoke_raw)
    runs, staging = tmp_path / "runs", tmp_path / ".staged"
    assert train(params, runs, "baseline", 0, jobs=2, staging=staging).returncode == 0
    settle(staging)
    old = json.loads((staged(staging)[("baseline", 1)] / METRICS_FILE).read_text())

    smoke_raw["train"]["lr"] = 0.02                         # another baseline: every run's identity changes
    params = write_params(smoke_raw)
    again = train(params, runs, "baseline", 1, jobs=1, staging=staging)
    assert again.returncode == 0, again.stderr
    assert TAKEN not in again.stderr
    new = record(runs, "baseline", 1)
    assert new["config_hash"] == P.load(params).resolve("baseline").config_hash != old["config_hash"]
    assert not list(staging.iterdir())                      # the other identity's run is gone


def test_a_staging_folder_inside_the_runs_folder_is_refused(smoke_raw, write_params, tmp_path):
    params = write_params(smoke_raw)
    proc = train(params, tmp_path / "runs", "baseline", 0, jobs=1, staging=tmp_path / "runs" / ".staged")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("noisefloor: error: --staging-dir ")
    assert not (tmp_path / "runs").exists()


def test_the_order_ahead_is_dvcs_stage_order(smoke):
    # train_noise@<seed> for each noise seed, then train_signal@<config>-<seed> (dvc.yaml's matrix order)
    assert runner.stage_runs(smoke) == [("baseline", 0), ("baseline", 1), ("baseline", 2), ("lr_hi", 0),
                                        ("lr_hi", 1), ("wide", 0), ("wide", 1)]
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert list(stages)[:2] == ["train_noise", "train_signal"]
    assert list(stages["train_signal"]["matrix"]) == ["config", "seed"]


def test_jobs_default_to_the_cpus_over_each_runs_threads(smoke_raw, monkeypatch):
    assert [runner.default_jobs(t, cpus=8) for t in (1, 2, 3, 8, 16)] == [8, 4, 2, 1, 1]
    monkeypatch.setattr(runner, "available_cpus", lambda: 6)
    assert runner.jobs_for(P.from_dict(smoke_raw), None) == 6
    smoke_raw["configs"]["wide"]["threads"] = 2             # the most threaded config decides
    assert runner.jobs_for(P.from_dict(smoke_raw), None) == 3
    assert runner.jobs_for(P.from_dict(smoke_raw), 5) == 5  # -j wins


def test_available_cpus_follow_the_affinity():
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no CPU affinity here")
    assert runner.available_cpus() == len(os.sched_getaffinity(0))


def test_jobs_must_be_a_positive_whole_number(smoke_raw, write_params, tmp_path):
    params = write_params(smoke_raw)
    proc = subprocess.run([sys.executable, "-m", "noisefloor", "train", "--params", str(params), "--config",
                           "baseline", "--seed", "0", "--runs-dir", str(tmp_path), "-j", "0"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "argument -j/--jobs: expected a whole number of at least 1, got '0'" in proc.stderr


def test_the_cli_launches_nothing_itself():
    """Argument handling only: processes, pools and the fork server are the runner's."""
    tree = ast.parse((ROOT / "src" / "noisefloor" / "cli.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0] if node.level == 0 else f".{node.module or ''}")
            if node.level == 1 and node.module is None:
                imported |= {f".{alias.name}" for alias in node.names}
    assert ".runner" in imported
    assert not imported & {"subprocess", "multiprocessing", "concurrent", "threading", "pty", ".forkserver", ".train",
                           ".batched"}
    calls = {node.func.attr for node in ast.walk(tree) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Attribute)}
    assert not calls & {"fork", "Popen", "system", "spawn", "execv", "execvp"}


def test_a_config_that_is_the_baseline_under_another_name_takes_its_finished_run(tmp_path, smoke_raw, write_params):
    """Training is deterministic, so the baseline's finished run at a seed is the twin's run at that seed: it is
    copied (renamed), not trained again; a seed the baseline has not finished is trained."""
    from noisefloor import params as P, runner
    from noisefloor.aggregate import finished_record, run_dir

    smoke_raw["configs"]["wd_0"] = {"weight_decay": 0.0}         # the baseline's own value
    p = P.load(write_params(smoke_raw))
    assert p.same_configs == [["baseline", "wd_0"]]
    runs = tmp_path / "runs"
    lines = []
    list(runner.run(p, [("baseline", [0])], runs, jobs=1, log=lines.append))
    out = list(runner.run(p, [("wd_0", [0, 1])], runs, jobs=1, log=lines.append))
    assert [m["seed"] for m in out] == [0, 1]
    copied = finished_record(p, run_dir(runs, "wd_0", 0), "wd_0", 0)
    base = finished_record(p, run_dir(runs, "baseline", 0), "baseline", 0)
    assert copied.config == "wd_0" and copied.get("same_as") == "baseline"
    assert copied.get("val_acc") == base.get("val_acc") and copied.get("wall_time_s") == base.get("wall_time_s")
    assert (run_dir(runs, "wd_0", 0) / "history.csv").read_bytes() == \
        (run_dir(runs, "baseline", 0) / "history.csv").read_bytes()
    assert any("wd_0 seed 0: the same config as baseline" in line for line in lines)
    assert finished_record(p, run_dir(runs, "wd_0", 1), "wd_0", 1).get("same_as") is None     # trained
