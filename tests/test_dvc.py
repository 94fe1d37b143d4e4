"""End to end: the real `dvc` on the shipped dvc.yaml, in a temporary git copy of the project.

The copy holds the project's files (as in a fresh clone) with the tiny smoke
params as its params.yaml, and runs its own copy of the code: DVC hashes
src/noisefloor/*.py as dependencies, so the code it hashes is the code it runs.
The experiments are built once, in module fixtures; a test that changes a
project changes a copy of one, so the tests run in any order.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from noisefloor.tracking import headline_metrics
from tests.helpers import ROOT, SMOKE, SNAKEMAKE, git, make_project

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
DVC = shutil.which("dvc", path=str(BIN)) or shutil.which("dvc")
TIMING_COLUMNS = {"wall_time_s", "time_s"}   # the only columns allowed to differ between two runs


# --------------------------------------------------------------------------- helpers


def env_for(project: Path) -> dict[str, str]:
    # noisefloor must be on PATH for the stages, and import from the copy.
    return dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                PYTHONPATH=str(project / "src"), DVC_NO_ANALYTICS="1")


def run(project: Path, *cmd: str, check: bool = True, timeout: int = 900) -> str:
    proc = subprocess.run(list(cmd), cwd=project, capture_output=True, text=True,
                          env=env_for(project), timeout=timeout)
    out = proc.stdout + proc.stderr
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out}")
    return out


def dvc(project: Path, *args: str, check: bool = True) -> str:
    return run(project, DVC, *args, check=check)


def ran_stages(output: str) -> list[str]:
    """Stages whose command DVC ran (not skipped, not restored from its run-cache)."""
    return re.findall(r"Running stage '([^']+)'", output)


def trained(output: str) -> list[str]:
    """The (config, seed) training stages DVC ran (train_sweep and train_decompose, which read the whole params
    file and train only what is missing, run after any edit of it: see test_a_sweep_and_its_confirmation_...)."""
    return [s for s in ran_stages(output) if s.startswith(("train_noise", "train_signal"))]


def experiments(project: Path) -> dict[str, dict]:
    """`dvc exp show --json` as {experiment name (or workspace / branch): its data}."""
    out = {}
    for entry in json.loads(dvc(project, "exp", "show", "--json")):
        out[entry["name"] or entry["rev"]] = entry["data"]
        for exp in entry.get("experiments") or []:
            for rev in exp["revs"]:
                out[rev["name"]] = {**rev["data"], "executor": exp.get("executor")}
    return out


def headline(data: dict) -> dict:
    return data["metrics"]["results/analysis/metrics.json"]["data"]


def read(project: Path, rel: str) -> bytes:
    return (project / rel).read_bytes()


def train_logs(project: Path) -> dict[str, int]:
    """The training processes' logs (not those of the sweep's, the decomposition's and the adaptive stages,
    which run after any params edit)."""
    return {str(p.relative_to(project)): p.stat().st_mtime_ns
            for p in (project / "results" / "logs" / "train").rglob("*.log")
            if p.name not in ("sweep.log", "decompose.log", "adaptive.log")}


def set_params(project: Path, edit) -> None:
    raw = yaml.safe_load((project / "params.yaml").read_text())
    edit(raw)
    (project / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


# --------------------------------------------------------------------------- the shipped pipeline


@pytest.fixture(scope="module")
def dvc_required():
    if DVC is None:
        pytest.skip("dvc is not installed")


def test_dry_run_of_the_shipped_pipeline_lists_every_run(dvc_required, tmp_path):
    project = make_project(tmp_path, (ROOT / "params.yaml").read_text())
    out = dvc(project, "repro", "--dry", check=False)
    stages = ran_stages(out)
    train = [s for s in stages if s.startswith(("train_noise", "train_signal"))]
    assert len(train) == 36                                  # 20 noise seeds + 4 variants x 4 signal seeds
    assert [s for s in train if s.startswith("train_noise@")] == [f"train_noise@{s}" for s in range(20)]
    assert {s for s in train if s.startswith("train_signal@")} == {
        f"train_signal@{c}-{s}" for c in ("lr_hi", "hidden_64", "batch_50", "wd_1e3") for s in range(4)}
    # the stage passes only the name and the seed: the CLI reads the values itself
    assert ("noisefloor train --params params.yaml --config wd_1e3 --seed 3 --runs-dir results/runs "
            "--staging-dir results/.staged 2> results/logs/train/wd_1e3/seed3.log") in out
    # A dry run stops at the first stage whose inputs do not exist yet (DVC issue #9021); the
    # rest of the pipeline is in the stage list.
    assert "ERROR" not in out or "failed to reproduce 'train_adaptive': [Errno 2] No such file" in out
    names = dvc(project, "stage", "list", "--name-only").split()
    assert names == train + ["train_sweep", "train_decompose", "train_adaptive", "aggregate", "analyze", "plot",
                             "report_html"]
    assert not (project / "results").exists()


def test_a_params_file_without_the_keys_dvc_reads_is_refused_naming_the_key(dvc_required, tmp_path):
    raw = yaml.safe_load(SMOKE.read_text())
    del raw["stats"]["baseline"]      # fine for the loader (it has a default), invisible to DVC
    project = make_project(tmp_path, yaml.safe_dump(raw))
    out = dvc(project, "repro", "--dry", check=False)
    assert "stats.baseline" in out and "Running stage" not in out


# --------------------------------------------------------------------------- one experiment, step by step


def copy_project(prepared: Path, dest: Path) -> Path:
    """A copy of a prepared project (git history, experiments, DVC cache and run-cache) for one test to change."""
    shutil.copytree(prepared, dest, symlinks=True)
    return dest


@pytest.fixture(scope="module")
def smoke_experiment(dvc_required, tmp_path_factory):
    """The smoke experiment run once with `dvc exp run`; tests read it or change a copy (`project`)."""
    project = make_project(tmp_path_factory.mktemp("dvc"), SMOKE.read_text())
    out = dvc(project, "exp", "run", "-n", "smoke")
    assert len(trained(out)) == 7
    return project


@pytest.fixture(scope="module")
def lr_experiment(smoke_experiment, tmp_path_factory):
    """The smoke experiment, then `dvc exp run -n lr-0.03` changing lr_hi's lr: the project and that run's output."""
    project = copy_project(smoke_experiment, tmp_path_factory.mktemp("dvc-lr") / "project")
    return project, dvc(project, "exp", "run", "-n", "lr-0.03", "-S", "configs.lr_hi.lr=0.03")


@pytest.fixture
def project(smoke_experiment, tmp_path):
    """A copy of the smoke experiment's project, this test's to change."""
    return copy_project(smoke_experiment, tmp_path / "project")


@pytest.fixture
def lr_project(lr_experiment, tmp_path):
    """A copy of the project after the lr-0.03 experiment, this test's to change."""
    return copy_project(lr_experiment[0], tmp_path / "project")


def test_exp_show_reports_the_headline_of_the_analysis(project):
    exps = experiments(project)
    summary = json.loads(read(project, "results/analysis/summary.json"))
    metrics = headline(exps["smoke"])
    assert metrics == headline_metrics(summary)
    assert metrics == json.loads(read(project, "results/analysis/metrics.json"))
    assert metrics["n_runs"] == 7 and metrics["noise_floor"] > 0 and metrics["best_config"] in {"lr_hi", "wide"}
    assert exps["smoke"]["params"]["params.yaml"]["data"]["configs"]["lr_hi"]["lr"] == 0.05
    runs = pd.read_csv(project / "results" / "runs.csv")
    assert list(zip(runs.config, runs.seed)) == [("baseline", 0), ("baseline", 1), ("baseline", 2),
                                                 ("lr_hi", 0), ("lr_hi", 1), ("wide", 0), ("wide", 1)]
    assert (project / "results" / "report.html").stat().st_size > 0
    # results/ stays out of git: no .gitignore dropped into output folders, nothing to commit there
    assert not list((project / "results").rglob(".gitignore"))
    assert "results/" not in git(project, "status", "--porcelain", "--untracked-files=all")
    # a second reproduction does nothing
    assert ran_stages(dvc(project, "repro")) == []


def readme_exp_show() -> list[str]:
    """The README's `dvc exp show` command (docs/dvc.md gives the same one)."""
    import shlex

    command = re.search(r"`(dvc exp show --only-changed [^`]+)`", (ROOT / "README.md").read_text()).group(1)
    assert command in (ROOT / "docs" / "dvc.md").read_text()
    return shlex.split(command)


def test_the_readmes_exp_show_fits_120_columns_and_shows_the_verdicts_and_the_changed_param(project):
    # docs/dvc.md's worked comparison: the committed results, then an experiment changing the weight decay
    # (every run retrains: the noise floor, the best difference and the param all change).
    git(project, "add", "dvc.lock")
    git(project, "commit", "-q", "-m", "smoke experiment: results")
    dvc(project, "exp", "run", "-n", "wd-1e3", "-S", "++train.weight_decay=0.001")
    cmd = readme_exp_show()
    proc = subprocess.run([DVC, *cmd[1:], "--no-pager"], cwd=project, capture_output=True, text=True,
                          env={**env_for(project), "COLUMNS": "120"}, timeout=300)
    table = proc.stdout
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in table.splitlines() if line.strip()]
    assert max(len(line) for line in lines) <= 120, table
    assert "…" not in table, table                      # DVC folds the columns that do not fit into "…"
    header = lines[1].split()
    assert header == ["Experiment", "noise_floor", "best_diff", "best_verdict", "verdicts", "train.weight_decay"]
    wd = json.loads(read(project, "results/analysis/metrics.json"))
    row = next(line for line in lines if "[wd-1e3]" in line)
    assert wd["best_verdict"] in row and wd["verdicts"] in row and "0.001" in row, table


def test_same_params_give_the_same_results_under_snakemake(project, tmp_path):
    if SNAKEMAKE is None:
        pytest.skip("snakemake is not installed")
    other = tmp_path / "snakemake"
    git(tmp_path, "clone", "-q", str(project), str(other))      # the same commit: the same code and params
    run(other, SNAKEMAKE, "--cores", "2")
    for table in ("results/runs.csv", "results/histories.csv"):
        a, b = pd.read_csv(project / table), pd.read_csv(other / table)
        assert list(a.columns) == list(b.columns)
        keep = [c for c in a.columns if c not in TIMING_COLUMNS]
        pd.testing.assert_frame_equal(a[keep], b[keep], check_exact=True)
    for name in ("summary.json", "metrics.json", "comparisons.csv", "importance.csv", "excluded.csv"):
        assert read(project, f"results/analysis/{name}") == read(other, f"results/analysis/{name}"), name
    # Handing Snakemake's results to DVC: `dvc commit` adopts them, and nothing reruns.
    dvc(other, "commit", "--force")
    assert ran_stages(dvc(other, "repro")) == []
    # ...and the other way: Snakemake accepts DVC's results by their timestamps, but has no record
    # of the params behind them until `--touch --forceall` writes one; then it notices an edit.
    assert "Nothing to be done" in run(project, SNAKEMAKE, "--cores", "1", "--dry-run")
    run(project, SNAKEMAKE, "--cores", "1", "--touch", "--forceall")
    original = (project / "params.yaml").read_text()
    set_params(project, lambda raw: raw["configs"]["lr_hi"].update(lr=0.04))
    try:
        dry = run(project, SNAKEMAKE, "--cores", "1", "--dry-run")
    finally:
        (project / "params.yaml").write_text(original)
    retrain = re.findall(r"rule train\w*:\s+output: results/runs/(\w+)/seed(\d+)/", dry)
    assert sorted(retrain) == [("lr_hi", "0"), ("lr_hi", "1")]
    assert ran_stages(dvc(project, "repro")) == []        # touching left DVC's view unchanged


def test_changing_one_variant_reruns_only_its_stages(lr_experiment):
    project, out = lr_experiment
    assert trained(out) == ["train_signal@lr_hi-0", "train_signal@lr_hi-1"]
    m = json.loads(read(project, "results/runs/lr_hi/seed0/metrics.json"))
    assert m["resolved_config"]["train"]["lr"] == 0.03
    exps = experiments(project)
    assert exps["lr-0.03"]["params"]["params.yaml"]["data"]["configs"]["lr_hi"]["lr"] == 0.03
    assert headline(exps["lr-0.03"]) != headline(exps["smoke"])


def test_reverting_a_change_restores_from_the_run_cache_without_training(lr_project):
    smoke = experiments(lr_project)["smoke"]
    logs = train_logs(lr_project)
    out = dvc(lr_project, "exp", "run", "-n", "lr-back", "-S", "configs.lr_hi.lr=0.05")
    assert not trained(out)
    for seed in (0, 1):
        assert f"Stage 'train_signal@lr_hi-{seed}' is cached - skipping run, checking out outputs" in out
    assert train_logs(lr_project) == logs                    # no training process wrote a log
    m = json.loads(read(lr_project, "results/runs/lr_hi/seed0/metrics.json"))
    assert m["resolved_config"]["train"]["lr"] == 0.05
    assert headline(experiments(lr_project)["lr-back"]) == headline(smoke)


def test_queued_experiments_run_in_parallel_and_show_side_by_side(lr_project):
    dvc(lr_project, "exp", "run", "--queue", "-n", "q-lr-0.02", "-S", "configs.lr_hi.lr=0.02")
    dvc(lr_project, "exp", "run", "--queue", "-n", "q-lr-0.03", "-S", "configs.lr_hi.lr=0.03")
    # The queue's workers outlive `dvc queue start` and inherit its output: read it from a file, not
    # a pipe, or the call would wait for the workers to finish (a pipe's end comes only when they exit).
    log = lr_project / "queue-start.log"
    with open(log, "w") as fh:
        proc = subprocess.run([DVC, "queue", "start", "-j", "2"], cwd=lr_project, env=env_for(lr_project),
                              stdout=fh, stderr=subprocess.STDOUT)
    assert proc.returncode == 0, log.read_text()
    # Poll until both have ended; the deadline only guards against a hang (a loaded single core trains
    # the two experiments in minutes, not half an hour).
    deadline = time.monotonic() + 1800
    while re.search(r"\b(Queued|Running)\b", dvc(lr_project, "queue", "status")):
        assert time.monotonic() < deadline, dvc(lr_project, "queue", "status")
        time.sleep(5)
    status = dvc(lr_project, "queue", "status")
    assert re.search(r"q-lr-0\.02\s.*Success", status) and re.search(r"q-lr-0\.03\s.*Success", status), status
    exps = experiments(lr_project)
    # a queued run trains what it changed; a value seen before comes from the run-cache
    assert "Running stage 'train_signal@lr_hi-0'" in dvc(lr_project, "queue", "logs", "q-lr-0.02")
    assert not trained(dvc(lr_project, "queue", "logs", "q-lr-0.03"))
    assert headline(exps["q-lr-0.03"]) == headline(exps["lr-0.03"])
    assert headline(exps["q-lr-0.02"])["n_runs"] == 7
    assert exps["q-lr-0.02"]["params"]["params.yaml"]["data"]["configs"]["lr_hi"]["lr"] == 0.02


def test_stages_train_ahead_in_parallel_and_the_later_stages_take_their_runs(project, tmp_path):
    """Two runs at a time (-j 2, whatever this machine's CPUs): the first stage trains its run and starts the
    next one's ahead, and from then on each stage takes its run and starts the next; the results are the
    one-at-a-time experiment's."""
    other = tmp_path / "parallel"
    git(tmp_path, "clone", "-q", str(project), str(other))
    text = (other / "dvc.yaml").read_text()
    assert text.count("--staging-dir results/.staged\n") == 2
    (other / "dvc.yaml").write_text(text.replace("--staging-dir results/.staged\n",
                                                 "--staging-dir results/.staged -j 2\n"))
    out = dvc(other, "repro")
    assert len(trained(out)) == 7
    logs = other / "results" / "logs" / "train"
    taken = sorted(str(p.relative_to(logs)) for p in logs.rglob("seed*.log")
                   if "trained ahead; taken from" in p.read_text())
    assert taken == ["baseline/seed1.log", "baseline/seed2.log", "lr_hi/seed0.log", "lr_hi/seed1.log",
                     "wide/seed0.log", "wide/seed1.log"]
    assert not list((other / "results" / ".staged").iterdir())
    for table in ("results/runs.csv", "results/histories.csv"):
        a, b = pd.read_csv(project / table), pd.read_csv(other / table)
        keep = [c for c in a.columns if c not in TIMING_COLUMNS]
        pd.testing.assert_frame_equal(a[keep], b[keep], check_exact=True)
    assert ran_stages(dvc(other, "repro")) == []


def test_removing_a_config_leaves_no_stale_runs_in_the_aggregate(project):
    set_params(project, lambda raw: raw["configs"].pop("wide"))
    out = dvc(project, "repro")
    assert not trained(out)
    assert (project / "results" / "runs" / "wide" / "seed0" / "metrics.json").exists()   # still on disk
    runs = pd.read_csv(project / "results" / "runs.csv")
    assert set(runs.config) == {"baseline", "lr_hi"} and len(runs) == 5
    assert json.loads(read(project, "results/analysis/metrics.json"))["n_runs"] == 5


# --------------------------------------------------------------------------- a sweep


def _same_under_snakemake(project: Path, tmp_path: Path, files: list[str]) -> None:
    """A clone of the DVC project run by Snakemake gives the same runs table (timing aside) and the same
    ``files`` (relative to results/), byte for byte."""
    if SNAKEMAKE is None:
        return
    other = tmp_path / "snakemake"
    git(tmp_path, "clone", "-q", str(project), str(other))
    run(other, SNAKEMAKE, "--cores", "2")
    runs, theirs = (pd.read_csv(p / "results" / "runs.csv") for p in (project, other))
    keep = [c for c in runs.columns if c not in TIMING_COLUMNS]
    pd.testing.assert_frame_equal(runs[keep], theirs[keep], check_exact=True)
    for rel in files:
        assert read(project, f"results/{rel}") == read(other, f"results/{rel}"), rel


def test_a_sweep_its_confirmation_and_a_decomposition_under_dvc_match_snakemake(dvc_required, tmp_path):
    """DVC cannot add stages as it runs: one stage trains the sweep and confirms its best, one the noise
    budget's runs; the same runs as Snakemake's, and a grown sweep trains only its new configs."""
    raw = yaml.safe_load(SMOKE.read_text())
    raw["sweep"] = {"method": "random", "count": 3, "seed": 3, "confirm": {"top_k": 1, "seeds": [1, 2]},
                    "parameters": {"lr": {"distribution": "log_uniform_values", "min": 0.001, "max": 0.1}}}
    raw["decompose"] = {"seeds": [0, 1], "sources": ["init", "data"]}
    project = make_project(tmp_path / "dvc", yaml.safe_dump(raw, sort_keys=False))
    out = dvc(project, "exp", "run", "-n", "search")
    assert {"train_sweep", "train_decompose"} <= set(ran_stages(out))
    runs = pd.read_csv(project / "results" / "runs.csv")
    assert runs.groupby("stage").size().to_dict() == {"confirm": 2, "decompose": 6, "noise": 3, "search": 3,
                                                      "signal": 4}
    assert (project / "results" / "runs" / "decompose" / "decompose_all" / "seed1" / "metrics.json").is_file()
    _same_under_snakemake(project, tmp_path, ["runs/sweep/sweep.json", "runs/decompose/decompose.json"])
    # `dvc exp run -S sweep.count=4`: the sweep's stage trains the one new config and nothing else
    out = dvc(project, "exp", "run", "-n", "search-4", "-S", "sweep.count=4")
    assert not trained(out)
    log = (project / "results" / "logs" / "train" / "sweep.log").read_text()
    assert "sweep: search: 1 run(s) trained, 3 already done" in log, log
    runs = pd.read_csv(project / "results" / "runs.csv")
    assert sorted(runs.loc[runs["stage"] == "search", "config"]) == [f"sweep_00{i}" for i in range(4)]


def test_an_adaptive_experiment_under_dvc_matches_snakemake_and_grows_without_retraining(dvc_required, tmp_path):
    """DVC trains every round in one stage (the rounds are known only as they run); the same runs, records and
    verdicts as Snakemake's checkpoints, and a raised cap trains only the new rounds."""
    raw = yaml.safe_load(SMOKE.read_text())
    raw["seeds"].update(noise=[0, 1, 2, 3, 4, 5], signal=[0, 1])
    raw["adaptive"] = {"max_seeds": 6, "step": 2, "futility": False}
    project = make_project(tmp_path / "dvc", yaml.safe_dump(raw, sort_keys=False))
    out = dvc(project, "exp", "run", "-n", "adaptive")
    assert "train_adaptive" in ran_stages(out)
    summary = json.loads(read(project, "results/analysis/summary.json"))
    rounds = summary["adaptive"]["rounds"]
    runs = pd.read_csv(project / "results" / "runs.csv")
    assert len(runs) == summary["adaptive"]["runs"] > 6 + 2 * 2           # more than the first round
    records = sorted(p.name for p in (project / "results" / "adaptive").glob("round*.json"))
    assert records == [f"round{k}.json" for k in range(1, rounds + 1)]
    assert json.loads(read(project, f"results/adaptive/round{rounds}.json"))["next_round"] == []
    _same_under_snakemake(project, tmp_path, [f"adaptive/round{k}.json" for k in range(1, rounds + 1)]
                          + ["analysis/comparisons.csv"])
    # A higher cap continues from where it stopped: the stage trains the new rounds' runs only.
    stamps = {p: p.stat().st_mtime_ns for p in (project / "results" / "runs").rglob("metrics.json")}
    out = dvc(project, "exp", "run", "-n", "adaptive-8", "-S", "adaptive.max_seeds=8")
    assert not trained(out)
    log = (project / "results" / "logs" / "train" / "adaptive.log").read_text()
    now = {p: p.stat().st_mtime_ns for p in (project / "results" / "runs").rglob("metrics.json")}
    assert all(now[p] == t for p, t in stamps.items())                      # nothing retrained
    new = set(now) - set(stamps)
    assert sum(int(n) for n in re.findall(r"(\d+) run\(s\) trained", log)) == len(new)
    assert json.loads(read(project, "results/analysis/summary.json"))["adaptive"]["max_seeds"] == 8
