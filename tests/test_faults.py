"""Fault tests with real processes: kill -9 at known points, rerun, compare with an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from noisefloor import params as P
from noisefloor.train import CHECKPOINT_FILE, FAULT_ENV, train_run
from tests.conftest import SMOKE
from tests.test_workflow import SNAKEMAKE, snakemake

pytestmark = pytest.mark.slow
TIMING = ["wall_time_s"]


def _longer_smoke(path: Path) -> None:
    """The smoke experiment with more data and epochs, so kills land mid-training."""
    raw = yaml.safe_load(SMOKE.read_text())
    raw["data"]["train_subset"] = 600
    raw["train"]["epochs"] = 4
    path.write_text(yaml.safe_dump(raw))


def _results(work: Path):
    runs = pd.read_csv(work / "results" / "runs.csv").drop(columns=TIMING)
    summary = json.loads((work / "results" / "analysis" / "summary.json").read_text())
    comparisons = pd.read_csv(work / "results" / "analysis" / "comparisons.csv")
    return runs, summary, comparisons


def _finished(work: Path) -> int:
    return sum(1 for _ in (work / "results" / "runs").rglob("metrics.json")) if (work / "results").exists() else 0


def _wait_until(condition, proc, what: str) -> None:
    """Wait for a condition on the files (not the clock); fail if the process ends first."""
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the sweep ended before {what}")
        time.sleep(0.02)


@pytest.mark.skipif(SNAKEMAKE is None, reason="snakemake is not installed")
def test_killing_the_whole_sweep_repeatedly_loses_nothing(tmp_path):
    clean, faulty = tmp_path / "clean", tmp_path / "faulty"
    for work in (clean, faulty):
        work.mkdir()
        _longer_smoke(work / "params.yaml")
    snakemake(clean)
    total = _finished(clean)

    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    cmd = [SNAKEMAKE, "-s", str(Path(__file__).parents[1] / "Snakefile"), "-d", str(faulty),
           "--cores", "2", "--config", "params=params.yaml"]
    # The machine "crashes" (every process at once) once the sweep has finished 1, then 3, then 5 runs:
    # each kill lands while runs are still training, whatever the machine's speed.
    for target in (1, 3, 5):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        _wait_until(lambda: _finished(faulty) >= target, proc, f"{target} runs had finished")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert _finished(faulty) < total               # killed mid-sweep, not after it
        snakemake(faulty, "--unlock")                 # Snakemake's own remedy for a stale lock
    snakemake(faulty)

    runs_a, summary_a, comp_a = _results(clean)
    runs_b, summary_b, comp_b = _results(faulty)
    pd.testing.assert_frame_equal(runs_a, runs_b, check_exact=True)
    assert summary_a == summary_b
    pd.testing.assert_frame_equal(comp_a, comp_b, check_exact=True)
    # a writer killed mid-write leaves only a hidden temporary, never a truncated output
    for path in (faulty / "results" / "runs").rglob("metrics.json"):
        json.loads(path.read_text())


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
