"""The unchanged workflow on a real Slurm cluster, through snakemake-executor-plugin-slurm.

A single-node cluster is started on this machine for the module (see
tests/slurm_cluster.py); the smoke sweep is submitted with the shipped profile
(workflow/profiles/slurm) and must give exactly a local run's results, every
training run having been a Slurm job of its own.

The cluster tests are marked slow. A dry run (no cluster) checks what every
rule would ask a scheduler for, including the GPU request this cluster lacks.

The cluster tests are skipped, with the reason, where Slurm cannot be started
(not root, packages missing). CI installs the packages and sets
NOISEFLOOR_REQUIRE_SLURM=1, which turns that skip into a failure, so they cannot
silently stop running there.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests import slurm_cluster
from tests.conftest import ROOT, SMOKE


PROFILE = ROOT / "workflow" / "profiles" / "slurm"
BIN = Path(sys.executable).parent
SNAKEMAKE = shutil.which("snakemake", path=str(BIN)) or shutil.which("snakemake")
SWEEP_TIMEOUT_S = 900
# Resources the test's params ask for: not the defaults, so finding them on the
# Slurm jobs shows they came from params.yaml.
RESOURCES = {"mem_mb": 1500, "runtime": 7, "gpus": 0}


def _unavailable() -> str | None:
    if SNAKEMAKE is None:
        return "snakemake is not installed"
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        return "snakemake-executor-plugin-slurm is not installed (pip install -e '.[workflow]')"
    return slurm_cluster.missing()


@pytest.fixture(scope="module")
def cluster():
    reason = _unavailable()
    if reason:
        if os.environ.get("NOISEFLOOR_REQUIRE_SLURM") == "1":
            pytest.fail(f"NOISEFLOOR_REQUIRE_SLURM=1 but {reason}")
        pytest.skip(reason)
    # Finished jobs stay visible to squeue/scontrol for an hour: the checks
    # below look them up after the whole sweep, minutes after the first ended.
    with slurm_cluster.LocalSlurm(min_job_age=3600) as c:
        yield c


def _clean_env(env: dict) -> dict:
    """``env`` without Slurm's job variables (the tests may themselves run inside a Slurm job)."""
    env = {k: v for k, v in env.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_", "SALLOC_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def _snakemake(workdir: Path, args: list[str], env: dict, timeout: float) -> str:
    """Run Snakemake on the project's Snakefile; on timeout interrupt it as a user would.

    SIGINT makes Snakemake cancel its Slurm jobs and exit; SIGTERM would leave
    it waiting for them.
    """
    cmd = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--config", "params=params.yaml", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            stdin=subprocess.DEVNULL)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        raise AssertionError(f"snakemake did not finish within {timeout:.0f} s:\n{out[-8000:]}") from None
    if proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{out[-8000:]}")
    return out


def _workdir(tmp_path_factory, name: str) -> Path:
    work = tmp_path_factory.mktemp(name)
    raw = yaml.safe_load(SMOKE.read_text())
    raw["resources"] = RESOURCES
    (work / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return work


@pytest.fixture(scope="module")
def slurm_sweep(cluster, tmp_path_factory):
    """The whole workflow on the smoke params through Slurm with the shipped profile.

    Returns (workdir, wall seconds).
    """
    work = _workdir(tmp_path_factory, "slurm")
    args = [
        "--workflow-profile", str(PROFILE),
        # This cluster has no accounting database, so sacct cannot see jobs:
        # poll with squeue (MinJobAge >= 3 x 2 s), and poll early, as the
        # smoke runs take seconds.
        "--slurm-status-command", "squeue",
        "--slurm-init-seconds-before-status-checks", "2",
        "--latency-wait", "5",
    ]
    t0 = time.perf_counter()
    _snakemake(work, args, cluster.env(_clean_env(os.environ)), SWEEP_TIMEOUT_S)
    wall = time.perf_counter() - t0
    print(f"\nslurm sweep (7 training jobs, then aggregate/analyze/plot/report locally): {wall:.1f} s wall")
    return work, wall


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    work = _workdir(tmp_path_factory, "local")
    _snakemake(work, ["--cores", "2", "results/runs.csv"], _clean_env(os.environ), SWEEP_TIMEOUT_S)
    return work


@pytest.mark.slow
def test_every_training_run_was_a_slurm_job_with_the_params_resources(cluster, slurm_sweep):
    work, _ = slurm_sweep
    runs = pd.read_csv(work / "results" / "runs.csv", dtype={"slurm_job_id": "string"})
    assert len(runs) == 7
    assert runs.slurm_job_id.notna().all() and runs.slurm_job_id.is_unique
    for row in runs.itertuples():
        job = cluster.job(row.slurm_job_id)
        assert job, f"Slurm does not know job {row.slurm_job_id} recorded for {row.config} seed {row.seed}"
        assert job["JobState"] == "COMPLETED"
        # The job that wrote this run's metrics is the one submitted for it.
        assert job["Comment"] == f"rule_train_wildcards_{row.config}_{row.seed}"
        assert job["TimeLimit"] == "00:07:00"            # resources.runtime (minutes)
        assert job["MinMemoryNode"] == "1500M"           # resources.mem_mb
        assert job["NumCPUs"] == "1"                     # train.threads
        assert "gres" not in job.get("TresPerNode", "")  # resources.gpus: 0 asks for no GPU
    # The rules after training are local rules: they ran (the report exists), but
    # the only Slurm jobs of the whole workflow are the 7 training runs.
    assert (work / "results" / "report.html").stat().st_size > 0
    comments = cluster.run("squeue", "-h", "-t", "all", "-o", "%k").stdout.split()
    assert len(comments) == 7 and all(c.startswith("rule_train_") for c in comments)


@pytest.mark.slow
def test_slurm_results_equal_a_local_run(slurm_sweep, local_sweep):
    slurm_dir, _ = slurm_sweep
    ignore = ["wall_time_s", "slurm_job_id"]  # when and where, not what
    on_slurm = pd.read_csv(slurm_dir / "results" / "runs.csv")
    local = pd.read_csv(local_sweep / "results" / "runs.csv")
    assert local.slurm_job_id.isna().all()
    pd.testing.assert_frame_equal(on_slurm.drop(columns=ignore), local.drop(columns=ignore), check_exact=True)
    hist = [pd.read_csv(d / "results" / "histories.csv").drop(columns="time_s") for d in (slurm_dir, local_sweep)]
    pd.testing.assert_frame_equal(*hist, check_exact=True)


@pytest.mark.slow
def test_stopping_the_cluster_leaves_no_daemon_job_or_files(tmp_path):
    reason = _unavailable()
    if reason:
        pytest.skip(reason)
    pid_file = tmp_path / "job.pid"
    with slurm_cluster.LocalSlurm() as c:
        daemons, cluster_dir = c.daemon_pids(), c.dir
        c.run("sbatch", "--mem", "100", "-t", "5", "-D", str(tmp_path), "-o", "/dev/null",
              "--wrap", f"echo $$ > {pid_file}; exec sleep 300")
        deadline = time.monotonic() + 60
        while not (pid_file.exists() and pid_file.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.2)
        job_pid = int(pid_file.read_text())
        assert _alive(job_pid)
    assert sorted(daemons) == ["munged", "slurmctld", "slurmd"]
    assert not [name for name, pid in daemons.items() if _alive(pid)]
    assert not _alive(job_pid), "the running job's process outlived the cluster"
    assert not cluster_dir.exists()


def test_every_rule_declares_its_resources_from_params(tmp_path):
    """What each job would ask a scheduler for, from a dry run (no cluster needed)."""
    if SNAKEMAKE is None:
        pytest.skip("snakemake is not installed")
    raw = yaml.safe_load(SMOKE.read_text())
    raw["resources"] = {"mem_mb": 3000, "runtime": 90, "gpus": 1}
    raw["train"]["threads"] = 2
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    out = _snakemake(tmp_path, ["--dry-run", "--cores", "2"], _clean_env(os.environ), 300)
    jobs: dict[str, list[tuple[dict, int]]] = {}
    for block in re.split(r"^rule ", out, flags=re.M)[1:]:
        name = block.split(":", 1)[0]
        resources = dict(re.findall(r"(\w+)=([^,\s]+)", re.search(r"resources: (.*)", block).group(1)))
        threads = re.search(r"^\s+threads: (\d+)", block, flags=re.M)  # shown only when > 1
        jobs.setdefault(name, []).append((resources, int(threads.group(1)) if threads else 1))
    assert len(jobs["train"]) == 7
    for resources, threads in jobs["train"]:
        assert (resources["mem_mb"], resources["runtime"], resources["gpu"], threads) == ("3000", "90", "1", 2)
    for name in ("aggregate", "analyze", "plot", "report_html"):
        [(resources, threads)] = jobs[name]
        assert (resources["mem_mb"], resources["runtime"], threads) == ("1000", "15", 1), name
        assert "gpu" not in resources, name


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting to be reaped counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
