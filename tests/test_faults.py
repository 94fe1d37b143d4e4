"""Fault tests with real processes: kill -9 at known points, rerun, compare with an uninterrupted run."""

import functools
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from noisefloor import forkserver
from noisefloor import params as P
from noisefloor.runfiles import CHECKPOINT_FILE, METRICS_FILE
from noisefloor.train import FAULT_ENV, train_run
from tests.helpers import BIN, SMOKE, SNAKEMAKE, settle, snakemake, snakemake_command

pytestmark = pytest.mark.slow
TIMING = ["wall_time_s"]


def _longer_smoke(path: Path, edit=None) -> None:
    """The smoke experiment with more data and epochs, so kills land mid-training (``edit``: changes the
    params dict before it is written)."""
    raw = yaml.safe_load(SMOKE.read_text())
    raw["data"]["train_subset"] = 600
    raw["train"]["epochs"] = 8
    if edit is not None:
        edit(raw)
    path.write_text(yaml.safe_dump(raw))


def _clean_and_faulty(tmp_path: Path, edit=None) -> tuple[Path, Path]:
    """Two folders with the same longer smoke experiment: one to run whole, one to crash."""
    folders = tmp_path / "clean", tmp_path / "faulty"
    for work in folders:
        work.mkdir()
        _longer_smoke(work / "params.yaml", edit)
    return folders


def _results(work: Path):
    runs = pd.read_csv(work / "results" / "runs.csv").drop(columns=TIMING)
    summary = json.loads((work / "results" / "analysis" / "summary.json").read_text())
    comparisons = pd.read_csv(work / "results" / "analysis" / "comparisons.csv")
    return runs, summary, comparisons


def _assert_same_results(a: Path, b: Path) -> None:
    """Two experiments' runs table (timing aside), summary and comparisons are identical."""
    runs_a, summary_a, comp_a = _results(a)
    runs_b, summary_b, comp_b = _results(b)
    pd.testing.assert_frame_equal(runs_a, runs_b, check_exact=True)
    assert summary_a == summary_b
    pd.testing.assert_frame_equal(comp_a, comp_b, check_exact=True)


def _finished(work: Path) -> int:
    return sum(1 for _ in (work / "results" / "runs").rglob(METRICS_FILE)) if (work / "results").exists() else 0


def _checkpoints(work: Path) -> dict[Path, int]:
    """Every checkpoint on disk: {run folder: the epoch it holds}."""
    out = {}
    for ckpt in (work / "results" / "runs").rglob(CHECKPOINT_FILE) if (work / "results").exists() else ():
        try:
            out[ckpt.parent] = int(torch.load(ckpt, map_location="cpu", weights_only=True)["epoch"])
        except FileNotFoundError:      # the run finished (and removed it) while we looked
            continue
    return out


def _crash_point_reached(work: Path, target: int, crashed_at: dict[Path, int]) -> bool:
    """``target`` runs finished, and a run is mid-training past the epoch the last crash left it at.

    Mid-training: a checkpoint and no metrics. Past that epoch: this start of the
    sweep trained it, so a kill now cuts real work short.
    """
    return _finished(work) >= target and any(
        epoch > crashed_at.get(run, 0) and not (run / METRICS_FILE).exists()
        for run, epoch in _checkpoints(work).items())


def _group_states(pgid: int) -> list[str]:
    """The state letters (R, S, D, T, Z...) of the live processes in process group ``pgid`` (Linux /proc)."""
    states = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()   # after "pid (comm)": state, ppid, pgrp, ...
        except (OSError, IndexError):  # the process ended while we looked
            continue
        if int(fields[2]) == pgid:
            states.append(fields[0])
    return states


def _signal_group(pgid: int, sig: int, done: set[str]) -> None:
    """Send ``sig`` to a process group and wait until every process in it is in a state of ``done``.

    kill() returns once the signal is queued; a process may still finish the system
    call it is in (a rename that publishes a file) before it stops or dies.
    """
    os.killpg(pgid, sig)
    while not set(_group_states(pgid)) <= done:
        time.sleep(0.01)


def _kill_sweep(proc: subprocess.Popen) -> None:
    """SIGKILL every process of the sweep (its process group) and wait until none is left running."""
    _signal_group(proc.pid, signal.SIGKILL, done={"Z", "X"})
    proc.wait()


def _crash_when(proc: subprocess.Popen, ready, what: str) -> None:
    """Kill every process of the sweep at once (as a power cut would) the first time ``ready()`` holds.

    ``ready`` looks at the files; it is asked again with the whole sweep stopped
    (SIGSTOP), so what that look sees is exactly what the kill leaves on disk,
    however fast or loaded the machine. Between looks the sweep runs on.
    """
    deadline = time.monotonic() + 900             # only a hung sweep comes near it
    while proc.poll() is None:
        if time.monotonic() > deadline:
            _kill_sweep(proc)
            raise AssertionError(f"the sweep hung before {what}")
        if ready():
            _signal_group(proc.pid, signal.SIGSTOP, done={"T", "t", "Z", "X"})
            if ready():
                _kill_sweep(proc)
                return
            os.killpg(proc.pid, signal.SIGCONT)
        time.sleep(0.02)
    raise AssertionError(f"the sweep ended before {what}")


def _killable_sweep(work: Path) -> tuple[list[str], dict]:
    """The Snakemake command and environment of a sweep in ``work`` that one signal to its group stops whole.

    No fork server: its workers live outside the sweep's process group, so one
    signal could neither stop nor kill them with the rest.
    """
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
               **{forkserver.ENV_ENABLE: "0"})
    return snakemake_command(work, "--cores", "2", "--config", "params=params.yaml"), env


@pytest.mark.skipif(SNAKEMAKE is None, reason="snakemake is not installed")
def test_killing_the_whole_sweep_repeatedly_loses_nothing(tmp_path):
    clean, faulty = _clean_and_faulty(tmp_path)
    snakemake(clean)
    total = _finished(clean)

    cmd, env = _killable_sweep(faulty)
    # The machine "crashes" (every process at once) once the sweep has finished 1, then 3, then 5
    # runs, each time while this start of the sweep has a run mid-training.
    crashed_at: dict[Path, list[int]] = {}      # run -> the epochs its checkpoint held at the crashes
    for target in (1, 3, 5):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        latest = {run: epochs[-1] for run, epochs in crashed_at.items()}
        _crash_when(proc, functools.partial(_crash_point_reached, faulty, target, latest),
                    f"{target} runs had finished with another mid-training")
        assert target <= _finished(faulty) < total
        left = _checkpoints(faulty)
        for run, epoch in left.items():
            crashed_at.setdefault(run, []).append(epoch)
        snakemake(faulty, "--unlock")                 # Snakemake's own remedy for a stale lock
    snakemake(faulty)

    _assert_same_results(clean, faulty)
    # a writer killed mid-write leaves only a hidden temporary, never a truncated output
    metrics = {p.parent: json.loads(p.read_text()) for p in (faulty / "results" / "runs").rglob(METRICS_FILE)}
    assert len(metrics) == total
    # the runs the last crash cut short resumed from the checkpoints it left (an earlier crash's
    # run may have been finished, or retrained whole when killed before Snakemake recorded it)
    assert left and {run: metrics[run]["resumed_from_epoch"] for run in left} == left
    for run, m in metrics.items():
        assert m["resumed_from_epoch"] in (None, *crashed_at.get(run, ())), run


def test_killing_one_training_process_mid_epoch_resumes_exactly(tmp_path, smoke_raw, write_params):
    smoke_raw["model"]["hidden_size"] = 32
    smoke_raw["train"]["epochs"] = 3
    params_path = write_params(smoke_raw)
    p = P.load(params_path)
    reference = train_run(p.resolve("wide"), 1, tmp_path / "ref", log=lambda _: None)

    runs_dir = tmp_path / "runs"
    cmd = [sys.executable, "-m", "noisefloor", "train", "--params", str(params_path), "--config", "wide",
           "--seed", "1", "--runs-dir", str(runs_dir)]
    # The process kills itself (SIGKILL) right after epoch 1's checkpoint is on disk.
    crashed = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, **{FAULT_ENV: "1"}))
    assert crashed.returncode != 0
    assert "epoch 1/3" in crashed.stderr and "epoch 2/3" not in crashed.stderr
    out = runs_dir / "wide" / "seed1"
    assert (out / CHECKPOINT_FILE).exists() and not (out / "metrics.json").exists()

    subprocess.run(cmd, check=True, capture_output=True)
    resumed = json.loads((out / "metrics.json").read_text())
    assert resumed["resumed_from_epoch"] == 1
    for key in ("val_acc", "val_loss", "test_acc", "test_loss", "train_loss", "best_val_acc", "best_epoch"):
        assert resumed[key] == reference[key], key
    pd.testing.assert_frame_equal(pd.read_csv(out / "history.csv").drop(columns="time_s"),
                                  pd.read_csv(tmp_path / "ref" / "history.csv").drop(columns="time_s"),
                                  check_exact=True)
    assert not (out / CHECKPOINT_FILE).exists()


def _train_cmd(params_path: Path, runs: Path, *seeds: int, jobs: int, staging: Path | None = None,
               env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "noisefloor", "train", "--params", str(params_path), "--config", "baseline",
           "--runs-dir", str(runs), "-j", str(jobs)] + [a for s in seeds for a in ("--seed", str(s))]
    if staging is not None:
        cmd += ["--staging-dir", str(staging)]
    return subprocess.run(cmd, capture_output=True, text=True,
                          env=dict(os.environ, **{forkserver.ENV_ENABLE: "0"}, **(env or {})))


def _assert_resumed_exactly(p, runs: Path, seed: int, tmp_path: Path) -> None:
    resumed = json.loads((runs / "baseline" / f"seed{seed}" / METRICS_FILE).read_text())
    assert resumed["resumed_from_epoch"] == 1
    reference = train_run(p.resolve("baseline"), seed, tmp_path / f"ref{seed}", log=lambda _: None)
    for key in ("val_acc", "val_loss", "test_acc", "test_loss", "train_loss", "best_val_acc", "best_epoch"):
        assert resumed[key] == reference[key], (seed, key)


def test_a_pool_whose_workers_are_killed_fails_and_each_run_resumes_exactly(tmp_path, smoke_raw, write_params):
    smoke_raw["train"]["epochs"] = 3
    params_path = write_params(smoke_raw)
    runs = tmp_path / "runs"
    # Each worker SIGKILLs itself right after epoch 1's checkpoint is on disk.
    crashed = _train_cmd(params_path, runs, 0, 1, jobs=2, env={FAULT_ENV: "1"})
    assert crashed.returncode == 2, crashed.stderr
    assert re.search(r"noisefloor: error: \[baseline seed=[01]\] its training process was killed by signal 9",
                     crashed.stderr), crashed.stderr
    for seed in (0, 1):
        folder = runs / "baseline" / f"seed{seed}"
        assert (folder / CHECKPOINT_FILE).exists() and not (folder / METRICS_FILE).exists()
    again = _train_cmd(params_path, runs, 0, 1, jobs=2)
    assert again.returncode == 0, again.stderr
    for seed in (0, 1):
        _assert_resumed_exactly(P.load(params_path), runs, seed, tmp_path)


def test_a_run_killed_while_trained_ahead_moves_into_place_and_resumes_exactly(tmp_path, smoke_raw, write_params):
    smoke_raw["train"]["epochs"] = 3
    params_path = write_params(smoke_raw)
    runs, staging = tmp_path / "results" / "runs", tmp_path / "results" / ".staged"
    # The call's own run and the run it trains ahead each die after epoch 1.
    crashed = _train_cmd(params_path, runs, 0, jobs=2, staging=staging, env={FAULT_ENV: "1"})
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    settle(staging)
    ahead = [f.parent for f in staging.glob(f"*/baseline/seed1/{CHECKPOINT_FILE}")]
    assert len(ahead) == 1 and not (ahead[0] / METRICS_FILE).exists()
    assert (runs / "baseline" / "seed0" / CHECKPOINT_FILE).exists()

    for seed in (1, 0):               # seed 1's stage takes the unfinished run and resumes it; seed 0 resumes its own
        proc = _train_cmd(params_path, runs, seed, jobs=1, staging=staging)
        assert proc.returncode == 0, proc.stderr
        assert ("an unfinished run trained ahead: resuming it" in proc.stderr) == (seed == 1)
        _assert_resumed_exactly(P.load(params_path), runs, seed, tmp_path)
    assert not list(staging.iterdir())


@pytest.mark.skipif(SNAKEMAKE is None, reason="snakemake is not installed")
def test_killing_an_adaptive_experiment_mid_round_resumes_identically(tmp_path):
    """The rounds are replayed from the runs, so a crash in round 2 loses nothing and changes nothing."""
    def adaptive(raw):
        raw["seeds"].update(noise=[0, 1, 2, 3, 4, 5], signal=[0, 1])
        raw["adaptive"] = {"max_seeds": 6, "step": 2, "futility": False}

    clean, faulty = _clean_and_faulty(tmp_path, adaptive)
    snakemake(clean)
    assert json.loads((clean / "results" / "analysis" / "summary.json").read_text())["adaptive"]["rounds"] > 1

    cmd, env = _killable_sweep(faulty)

    def in_round_two():
        # round 1's record is written and a run it added is mid-training
        if not (faulty / "results" / "adaptive" / "round1.json").is_file():
            return False
        added = json.loads((faulty / "results" / "adaptive" / "round1.json").read_text())["next_round"]
        folders = {faulty / "results" / "runs" / c / f"seed{s}" for c, s in added}
        return any(run in folders for run in _checkpoints(faulty))

    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    _crash_when(proc, in_round_two, "a run of round 2 was mid-training")
    assert not (faulty / "results" / "analysis" / "summary.json").exists()
    snakemake(faulty, "--unlock")
    snakemake(faulty)
    _assert_same_results(clean, faulty)
    for record in sorted((clean / "results" / "adaptive").glob("round*.json")):
        assert record.read_bytes() == (faulty / "results" / "adaptive" / record.name).read_bytes()
    again = snakemake(clean)                          # a finished adaptive experiment rerun is a no-op
    assert "Nothing to be done" in again.stdout + again.stderr
