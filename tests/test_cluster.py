"""noisefloor.cluster: the Slurm status command is chosen before submitting, so no run waits for ever.

No cluster needed: ``sacct`` and ``scontrol`` are small shell scripts on a PATH
that holds nothing else (a command not written there does not exist).
"""

from __future__ import annotations

import importlib.util
import inspect
from types import SimpleNamespace

import pytest

from noisefloor import cluster

NO_ACCOUNTING = "Slurm accounting storage is disabled"


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    """fake_slurm(sacct=(exit code, stderr), min_job_age="300 sec"): put those two commands on an empty PATH."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    monkeypatch.setenv("PATH", str(bindir))

    def install(sacct: tuple[int, str] | None = None, min_job_age: str | None = None,
                sacct_body: str | None = None) -> None:
        if sacct is not None or sacct_body is not None:
            code, err = sacct if sacct is not None else (0, "")
            body = sacct_body or f"echo '{err}' >&2\nexit {code}"
            _script(bindir / "sacct", body)
        if min_job_age is not None:
            _script(bindir / "scontrol", f'[ "$1 $2" = "show config" ] || exit 2\n'
                                         f"echo 'MessageTimeout          = 10 sec'\n"
                                         f"echo 'MinJobAge               = {min_job_age}'\n"
                                         f"echo 'OverTimeLimit           = 0 min'")
    return install


def _script(path, body: str) -> None:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def test_squeue_needs_a_job_kept_longer_than_the_longest_pause_between_polls():
    assert cluster.squeue_min_job_age(20) == 180 + 60   # the plugin's 180 s cap, plus the queries' time
    assert cluster.squeue_min_job_age(2) == 240
    assert cluster.squeue_min_job_age(100) == 300       # the plugin goes back to sacct below 3 x init
    assert cluster.squeue_min_job_age(400) == 1200


def test_where_sacct_works_the_configured_command_stands(fake_slurm):
    fake_slurm(sacct=(0, ""))  # no scontrol: not even asked
    assert cluster.choose_status_command("sacct", 20) == cluster.StatusChoice("sacct", None)
    assert cluster.choose_status_command(None, 20) == cluster.StatusChoice("sacct", None)


def test_without_accounting_squeue_takes_over_and_says_so_in_one_line(fake_slurm):
    fake_slurm(sacct=(1, NO_ACCOUNTING), min_job_age="300 sec")
    choice = cluster.choose_status_command("sacct", 20)
    assert choice.command == "squeue"
    assert choice.message == ("noisefloor: sacct cannot report job states here (Slurm accounting storage is "
                              "disabled): polling with squeue instead (MinJobAge=300 s, at least the 240 s needed)")
    # Asked for squeue already: it stands, with nothing to say.
    assert cluster.choose_status_command("squeue", 20) == cluster.StatusChoice("squeue", None)


@pytest.mark.parametrize("min_job_age", ["60 sec", "239 sec"])
def test_without_accounting_a_short_min_job_age_stops_the_run_before_submitting(fake_slurm, min_job_age):
    fake_slurm(sacct=(1, NO_ACCOUNTING), min_job_age=min_job_age)
    with pytest.raises(cluster.ClusterError) as err:
        cluster.choose_status_command("sacct", 20)
    msg = str(err.value)
    assert "\n" not in msg
    assert NO_ACCOUNTING in msg and f"MinJobAge={min_job_age.split()[0]} s" in msg
    assert "MinJobAge >= 240" in msg and "nothing was submitted" in msg


def test_without_sacct_or_scontrol_nothing_can_be_trusted(fake_slurm):
    fake_slurm()  # neither command exists
    with pytest.raises(cluster.ClusterError, match=r"there is no sacct command.*MinJobAge=unknown"):
        cluster.choose_status_command("sacct", 20)


def test_a_sacct_that_never_answers_counts_as_not_working(fake_slurm):
    fake_slurm(sacct_body="exec /bin/sleep 600")
    assert cluster.sacct_problem(timeout=1) == "sacct did not answer within 1 s"


def test_squeue_asked_for_but_min_job_age_too_short_goes_back_to_sacct(fake_slurm):
    fake_slurm(sacct=(0, ""), min_job_age="100 sec")
    choice = cluster.choose_status_command("squeue", 20)
    assert choice.command == "sacct"
    assert choice.message.startswith("noisefloor: squeue forgets finished jobs after MinJobAge=100 s")
    fake_slurm(min_job_age="300 sec")
    assert cluster.choose_status_command("squeue", 20) == cluster.StatusChoice("squeue", None)


@pytest.mark.parametrize("text, seconds", [("300 sec", 300), ("300", 300), ("5 min", 300), ("1h", 3600),
                                           ("300 fortnights", None)])
def test_min_job_age_is_read_in_seconds(fake_slurm, text, seconds):
    fake_slurm(min_job_age=text)
    assert cluster.min_job_age() == seconds


def _workflow(executor: str, status_command: str = "sacct"):
    return SimpleNamespace(
        executor_plugin=SimpleNamespace(name=executor),
        executor_settings=SimpleNamespace(status_command=status_command, init_seconds_before_status_checks=20),
        scheduler=SimpleNamespace(_executor=SimpleNamespace(_fallback_account_arg=None)),
    )


def test_the_onstart_hook_sets_squeue_prints_one_line_and_skips_the_account_guess(fake_slurm, capsys):
    fake_slurm(sacct=(1, NO_ACCOUNTING), min_job_age="3600 sec")
    wf = _workflow("slurm")
    assert cluster.prepare_slurm(wf).command == "squeue"
    assert wf.executor_settings.status_command == "squeue"
    assert wf.scheduler._executor._fallback_account_arg == ""  # no -A, and no guess
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("noisefloor: sacct cannot report job states here")


def test_the_onstart_hook_leaves_other_executors_alone(fake_slurm, capsys):
    fake_slurm()  # a probe would find no sacct and fail
    for wf in (_workflow("local"), _workflow("slurm-jobstep"), SimpleNamespace(executor_plugin=None)):
        assert cluster.prepare_slurm(wf) is None
    assert _workflow("local").executor_settings.status_command == "sacct"
    assert capsys.readouterr().err == ""


def test_the_onstart_hook_keeps_a_given_account_path_and_unknown_executors_intact(fake_slurm):
    fake_slurm(sacct=(0, ""))
    wf = _workflow("slurm")
    wf.scheduler._executor._fallback_account_arg = " -A 'mine'"  # already settled: kept
    cluster.prepare_slurm(wf)
    assert wf.scheduler._executor._fallback_account_arg == " -A 'mine'"
    wf.scheduler = SimpleNamespace(_executor=object())  # no such attribute: nothing set, nothing raised
    assert cluster.prepare_slurm(wf).command == "sacct"


needs_plugin = pytest.mark.skipif(importlib.util.find_spec("snakemake_executor_plugin_slurm") is None,
                                  reason="snakemake-executor-plugin-slurm is not installed")


@needs_plugin
def test_the_plugin_still_works_the_way_this_module_assumes():
    """A plugin upgrade that changes these must be looked at (the real-Slurm test would show it too)."""
    import snakemake_executor_plugin_slurm as plugin

    polls = inspect.getsource(plugin.Executor.check_active_jobs)
    assert f"max_sleep_time = {cluster.POLL_CAP_S}" in polls
    assert "get_status_command()" in polls  # the setting is read at every poll
    assert "self._fallback_account_arg is None" in inspect.getsource(plugin.Executor.get_account_arg)
    assert "status_command" in {f.name for f in plugin.ExecutorSettings.__dataclass_fields__.values()}
