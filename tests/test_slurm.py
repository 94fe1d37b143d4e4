"""The unchanged workflow on a real Slurm cluster, through snakemake-executor-plugin-slurm.

A single-node cluster is started on this machine for the module (see
tests/slurm_cluster.py); the smoke sweep is submitted with the documented
command alone, `snakemake --workflow-profile workflow/profiles/slurm`, and must
give exactly a local run's results, every training run having been a Slurm job
of its own. The cluster has no accounting database (sacct cannot see jobs), the
case where the plugin alone would wait for ever: the run must notice every job's
end within a bounded time, or the test fails (it never hangs).

The cluster tests are marked slow. A dry run (no cluster) checks what every
rule would ask a scheduler for, including the GPU request this cluster lacks.

The cluster tests are skipped, with the reason, where Slurm cannot be started
(not root, packages missing). CI installs the packages and sets
NOISEFLOOR_REQUIRE_SLURM=1, which turns that skip into a failure, so they cannot
silently stop running there.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests import slurm_cluster
from tests.helpers import BIN, ROOT, SMOKE, SNAKEMAKE, snakemake_command


PROFILE = ROOT / "workflow" / "profiles" / "slurm"
SWEEP_TIMEOUT_S = 900
# Once Slurm has ended a job, Snakemake must report it within the plugin's
# longest pause between two status polls (180 s) plus the polls' own time.
NOTICE_S = 180 + 120
# Resources the test's params ask for: not the defaults, so finding them on the
# Slurm jobs shows they came from params.yaml.
RESOURCES = {"mem_mb": 1500, "runtime": 7, "gpus": 0}


def _unavailable() -> str | None:
    if SNAKEMAKE is None:
        return "snakemake is not installed"
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        return "snakemake-executor-plugin-slurm is not installed (pip install -e '.[workflow]')"
    return slurm_cluster.missing()


def _require_slurm() -> None:
    """Skip where Slurm cannot run here, or fail where the run says it must (NOISEFLOOR_REQUIRE_SLURM=1)."""
    reason = _unavailable()
    if reason:
        if os.environ.get("NOISEFLOOR_REQUIRE_SLURM") == "1":
            pytest.fail(f"NOISEFLOOR_REQUIRE_SLURM=1 but {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def cluster():
    _require_slurm()
    # Finished jobs stay visible to squeue/scontrol for an hour: the checks
    # below look them up after the whole sweep, minutes after the first ended.
    with slurm_cluster.LocalSlurm(min_job_age=3600) as c:
        yield c


def _clean_env(env: dict) -> dict:
    """``env`` without Slurm's job variables (the tests may themselves run inside a Slurm job)."""
    env = {k: v for k, v in env.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_", "SALLOC_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def _run_snakemake(workdir: Path, args: list[str], env: dict, timeout: float, watch=None) -> tuple[int, str]:
    """Run Snakemake on the project's Snakefile; returns (exit code, stdout and stderr).

    ``watch(output so far)``, called about once a second, returns why the run
    is stuck, or None. On that, or on timeout, Snakemake is interrupted as a
    user would (SIGINT makes it cancel its Slurm jobs and exit; SIGTERM would
    leave it waiting for them) and the test fails with the reason.
    """
    cmd = snakemake_command(workdir, "--config", "params=params.yaml", *args)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            stdin=subprocess.DEVNULL)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    stuck = None
    while proc.poll() is None:
        stuck = watch("".join(lines)) if watch else None
        if stuck is None and time.monotonic() > deadline:
            stuck = f"snakemake did not finish within {timeout:.0f} s"
        if stuck:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
            break
        try:
            proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            pass
    proc.wait()
    reader.join(timeout=60)
    out = "".join(lines)
    if stuck:
        raise AssertionError(f"{stuck}:\n{out[-8000:]}")
    return proc.returncode, out


def _snakemake(workdir: Path, args: list[str], env: dict, timeout: float, watch=None) -> str:
    """:func:`_run_snakemake`, which must succeed; returns its output."""
    code, out = _run_snakemake(workdir, args, env, timeout, watch)
    if code != 0:
        raise AssertionError(f"snakemake failed ({code}):\n{out[-8000:]}")
    return out


def _unseen_job_ends(cluster: slurm_cluster.LocalSlurm, notice_s: float):
    """A ``watch`` for :func:`_run_snakemake`: stuck once Snakemake lags Slurm and sees no job end for notice_s.

    Slurm's side is its job list, remembered here (an ended job stays listed
    only for MinJobAge); Snakemake's is the "Finished jobid: ... (Rule: r)" or
    "Error in rule r" it prints when it learns that a job of that rule ended.
    The clock restarts whenever Snakemake sees one more job end, so a long
    sweep that keeps up with its jobs never trips it.
    """
    ended: dict[str, str] = {}  # Slurm job id -> its comment, rule_<rule>_wildcards_...
    since, last_seen = None, 0

    def watch(out: str) -> str | None:
        nonlocal since, last_seen
        listed = cluster.run("squeue", "-h", "-t", "all", "-o", "%i %T %k", check=False).stdout.splitlines()
        for job_id, state, comment in (line.split(" ", 2) for line in listed if line.count(" ") >= 2):
            if state in slurm_cluster.ENDED_STATES:
                ended[job_id] = comment
        rules = {c.removeprefix("rule_").split("_wildcards_")[0] for c in ended.values()}
        seen = len([r for r in re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)|Error in rule (\w+):", out)
                    if (r[0] or r[1]) in rules])
        if seen >= len(ended) or seen > last_seen:
            since, last_seen = None, seen
        if seen >= len(ended):
            return None
        since = since or time.monotonic()
        if time.monotonic() - since < notice_s:
            return None
        return (f"Slurm ended {len(ended)} jobs, but Snakemake has seen only {seen} of them end and none for "
                f"{notice_s:.0f} s: its status polling cannot see jobs end, so it would wait for ever")

    return watch


def _workdir(tmp_path_factory, name: str) -> Path:
    work = tmp_path_factory.mktemp(name)
    raw = yaml.safe_load(SMOKE.read_text())
    raw["resources"] = RESOURCES
    (work / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return work


@pytest.fixture(scope="module")
def slurm_sweep(cluster, tmp_path_factory):
    """The whole workflow on the smoke params through Slurm with the documented command alone.

    No Slurm option beyond the shipped profile: on this cluster without
    accounting the workflow itself must find the status command that works.
    Returns (workdir, wall seconds, Snakemake's output).
    """
    work = _workdir(tmp_path_factory, "slurm")
    t0 = time.perf_counter()
    out = _snakemake(work, ["--workflow-profile", str(PROFILE)], cluster.env(_clean_env(os.environ)),
                     SWEEP_TIMEOUT_S, watch=_unseen_job_ends(cluster, NOTICE_S))
    wall = time.perf_counter() - t0
    print(f"\nslurm sweep (7 training jobs, then aggregate/analyze/plot/report locally): {wall:.1f} s wall")
    return work, wall, out


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    work = _workdir(tmp_path_factory, "local")
    _snakemake(work, ["--cores", "2", "results/runs.csv"], _clean_env(os.environ), SWEEP_TIMEOUT_S)
    return work


@pytest.mark.slow
def test_every_training_run_was_a_slurm_job_with_the_params_resources(cluster, slurm_sweep):
    work, _, _ = slurm_sweep
    runs = pd.read_csv(work / "results" / "runs.csv", dtype={"slurm_job_id": "string"})
    assert len(runs) == 7
    assert runs.slurm_job_id.notna().all() and runs.slurm_job_id.is_unique
    for row in runs.itertuples():
        job = cluster.job(row.slurm_job_id)
        assert job, f"Slurm does not know job {row.slurm_job_id} recorded for {row.config} seed {row.seed}"
        assert job["JobState"] == "COMPLETED"
        # The job that wrote this run's metrics is the one submitted for it.
        assert re.fullmatch(rf"rule_train\w*_wildcards_{row.config}_{row.seed}", job["Comment"]), job["Comment"]
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
    slurm_dir, _, _ = slurm_sweep
    ignore = ["wall_time_s", "slurm_job_id"]  # when and where, not what
    on_slurm = pd.read_csv(slurm_dir / "results" / "runs.csv")
    local = pd.read_csv(local_sweep / "results" / "runs.csv")
    assert local.slurm_job_id.isna().all()
    pd.testing.assert_frame_equal(on_slurm.drop(columns=ignore), local.drop(columns=ignore), check_exact=True)
    hist = [pd.read_csv(d / "results" / "histories.csv").drop(columns="time_s") for d in (slurm_dir, local_sweep)]
    pd.testing.assert_frame_equal(*hist, check_exact=True)


@pytest.mark.slow
def test_without_accounting_the_documented_command_alone_polls_with_squeue_quietly(cluster, slurm_sweep):
    # The premise: this cluster has no accounting database.
    sacct = cluster.run("sacct", "-X", "--noheader", check=False)
    assert sacct.returncode != 0 and "accounting storage is disabled" in sacct.stderr
    _, _, out = slurm_sweep
    said = [line for line in out.splitlines() if line.startswith("noisefloor: ")]
    assert said == ["noisefloor: sacct cannot report job states here (Slurm accounting storage is disabled): "
                    "polling with squeue instead (MinJobAge=3600 s, at least the 240 s needed)"]
    # The plugin's account guess (a shell pipeline run without a shell) is skipped:
    # jobs without slurm_account go without -A, as they did after its warnings.
    for noise in ("sacct: invalid option", "Unable to guess SLURM account", "trying to guess"):
        assert noise not in out


@pytest.mark.slow
def test_a_min_job_age_too_short_for_squeue_stops_the_run_before_any_job(tmp_path_factory):
    """No accounting and a MinJobAge shorter than a poll's pause: neither command sees every job end."""
    reason = _unavailable()
    if reason:
        pytest.skip(reason)
    work = _workdir(tmp_path_factory, "short_min_job_age")
    with slurm_cluster.LocalSlurm(min_job_age=60) as c:
        code, out = _run_snakemake(work, ["--workflow-profile", str(PROFILE)], c.env(_clean_env(os.environ)),
                                   SWEEP_TIMEOUT_S, watch=_unseen_job_ends(c, NOTICE_S))
        submitted = c.run("squeue", "-h", "-t", "all").stdout
    assert code != 0
    [error] = [line for line in out.splitlines() if line.startswith("noisefloor: error: ")]
    assert "Slurm accounting storage is disabled" in error and "MinJobAge=60 s" in error
    assert submitted == "" and not (work / "results" / "runs").exists()


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
    # One training job per run, whatever the training rules are called (noise and signal runs).
    training = [job for name, named in jobs.items() if name.startswith("train") for job in named]
    assert len(training) == 7
    for resources, threads in training:
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


@pytest.mark.slow
def test_an_adaptive_experiment_trains_every_round_as_slurm_jobs(tmp_path_factory):
    """The rounds' checkpoints run locally; each round's runs are Slurm jobs; the results equal a local run's.

    A cluster of its own: the shared one's job list is the sweep's, which another test counts."""
    _require_slurm()
    works = {}
    for name in ("slurm_adaptive", "local_adaptive"):
        work = _workdir(tmp_path_factory, name)
        raw = yaml.safe_load((work / "params.yaml").read_text())
        raw["adaptive"] = {"max_seeds": 3, "step": 1, "futility": False}
        (work / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        works[name] = work
    with slurm_cluster.LocalSlurm(min_job_age=3600) as cluster:
        _snakemake(works["slurm_adaptive"], ["--workflow-profile", str(PROFILE)],
                   cluster.env(_clean_env(os.environ)), SWEEP_TIMEOUT_S, watch=_unseen_job_ends(cluster, NOTICE_S))
    _snakemake(works["local_adaptive"], ["--cores", "2"], _clean_env(os.environ), SWEEP_TIMEOUT_S)
    on_slurm, local = (pd.read_csv(w / "results" / "runs.csv", dtype={"slurm_job_id": "string"})
                       for w in works.values())
    summary = json.loads((works["slurm_adaptive"] / "results" / "analysis" / "summary.json").read_text())
    assert summary["adaptive"]["rounds"] == 2 and len(on_slurm) == summary["adaptive"]["runs"] > 7
    assert on_slurm.slurm_job_id.notna().all() and on_slurm.slurm_job_id.is_unique
    ignore = ["wall_time_s", "slurm_job_id"]
    pd.testing.assert_frame_equal(on_slurm.drop(columns=ignore), local.drop(columns=ignore), check_exact=True)
