"""Fault tests with real processes: kill -9 at random moments, rerun, compare with an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from noisefloor import params as P
from noisefloor.train import CHECKPOINT_FILE, train_run
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


@pytest.mark.skipif(SNAKEMAKE is None, reason="snakemake is not installed")
def test_killing_the_whole_sweep_repeatedly_loses_nothing(tmp_path):
    clean, faulty = tmp_path / "clean", tmp_path / "faulty"
    for work in (clean, faulty):
        work.mkdir()
        _longer_smoke(work / "params.yaml")
    snakemake(clean)

    rng = np.random.default_rng(20261127)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    cmd = [SNAKEMAKE, "-s", str(Path(__file__).parents[1] / "Snakefile"), "-d", str(faulty),
           "--cores", "2", "--config", "params=params.yaml"]
    kills = 0
    for delay in rng.uniform(3.0, 14.0, size=3):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        time.sleep(delay)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)       # the machine "crashes": every process at once
            kills += 1
        proc.wait()
        snakemake(faulty, "--unlock")                 # Snakemake's own remedy for a stale lock
    assert kills >= 2
    snakemake(faulty)

    runs_a, summary_a, comp_a = _results(clean)
    runs_b, summary_b, comp_b = _results(faulty)
    pd.testing.assert_frame_equal(runs_a, runs_b, check_exact=True)
    assert summary_a == summary_b
    pd.testing.assert_frame_equal(comp_a, comp_b, check_exact=True)
    # a writer killed mid-write leaves only a hidden temporary, never a truncated output
    for path in (faulty / "results" / "runs").rglob("metrics.json"):
        json.loads(path.read_text())
    print(f"kills: {kills}, final results identical to the uninterrupted sweep")


def test_killing_one_training_process_mid_epoch_resumes_exactly(tmp_path, smoke_raw, write_params):
    smoke_raw["data"]["train_subset"] = None      # ~1,150 images: an epoch long enough to hit
    smoke_raw["model"]["hidden_size"] = 32
    smoke_raw["train"]["epochs"] = 3
    params_path = write_params(smoke_raw)
    p = P.load(params_path)
    reference = train_run(p.resolve("wide"), 1, tmp_path / "ref", log=lambda _: None)

    runs_dir = tmp_path / "runs"
    cmd = [sys.executable, "-m", "noisefloor", "train", "--params", str(params_path), "--config", "wide",
           "--seed", "1", "--runs-dir", str(runs_dir)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, start_new_session=True)
    for line in proc.stderr:                       # wait for the first finished epoch ...
        if "epoch 1/3" in line:
            break
    time.sleep(0.15)                               # ... then kill during the second
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    out = runs_dir / "wide" / "seed1"
    assert (out / CHECKPOINT_FILE).exists() and not (out / "metrics.json").exists()

    subprocess.run(cmd, check=True, capture_output=True)
    resumed = json.loads((out / "metrics.json").read_text())
    assert resumed["resumed_from_epoch"] in (1, 2)
    for key in ("val_acc", "val_loss", "test_acc", "test_loss", "train_loss", "best_val_acc", "best_epoch"):
        assert resumed[key] == reference[key], key
    pd.testing.assert_frame_equal(pd.read_csv(out / "history.csv").drop(columns="time_s"),
                                  pd.read_csv(tmp_path / "ref" / "history.csv").drop(columns="time_s"),
                                  check_exact=True)
    assert not (out / CHECKPOINT_FILE).exists()
