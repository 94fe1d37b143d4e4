"""Slurm runs that cannot wait for ever: pick a status command that sees jobs end, before submitting.

snakemake-executor-plugin-slurm learns that a job ended by polling ``sacct`` or
``squeue``. Where the cluster has no accounting database every ``sacct`` query
fails ("Slurm accounting storage is disabled"); the plugin (2.8) then drops its
jobs from the watch list without reporting them, and Snakemake waits for ever
for jobs that finished long ago. ``squeue`` works there, but only sees a job for
``MinJobAge`` seconds after it ended: if that is shorter than the pause between
two polls, a job can end unseen, and Snakemake waits for ever again.

:func:`prepare_slurm` runs as the workflow's ``onstart`` hook (the first moment
the executor is known; nothing is submitted yet) and, for the Slurm executor
only, sets the status command that works here (:func:`choose_status_command`),
says so in one line when it replaces the configured one, and stops the run when
neither command can see jobs end. See docs/cluster.md ("Status polling").
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass

# The plugin's longest pause between two status polls (``max_sleep_time`` in its
# check_active_jobs): the pause starts at init-seconds-before-status-checks and
# grows by 10 s up to this while no job ends.
POLL_CAP_S = 180
# Time the status queries of one poll may take on top of the pause (the plugin
# gives each query 60 s): slurmctld must still know a job this long after.
POLL_SLACK_S = 60
# Seconds to wait for `sacct`/`scontrol` to answer the probes below.
QUERY_TIMEOUT_S = 60
# The job name the sacct probe asks for: no job has it, so the answer is empty.
PROBE_JOB_NAME = "noisefloor-sacct-probe"


class ClusterError(RuntimeError):
    """Neither sacct nor squeue can be trusted to see jobs end; the message is one line."""


@dataclass(frozen=True)
class StatusChoice:
    """The status command the Slurm plugin should poll with.

    Attributes
    ----------
    command : {"sacct", "squeue"}
    message : str or None
        One line for the user when ``command`` replaces the configured one;
        None when the configured command stands.
    """

    command: str
    message: str | None = None


def squeue_min_job_age(init_seconds: int) -> int:
    """The ``MinJobAge`` (seconds) with which squeue polling cannot miss a job's end.

    A job that ends just after one poll must still be known to slurmctld at the
    next one, up to ``max(init_seconds, POLL_CAP_S)`` seconds plus the queries'
    own time later. The plugin itself also goes back to sacct below
    ``3 * init_seconds``.

    Parameters
    ----------
    init_seconds : int
        The plugin's ``init-seconds-before-status-checks``.

    Returns
    -------
    int
    """
    return max(3 * init_seconds, max(init_seconds, POLL_CAP_S) + POLL_SLACK_S)


def sacct_problem(timeout: float = QUERY_TIMEOUT_S) -> str | None:
    """Why ``sacct`` cannot report this user's jobs here, or None when it can.

    Asks sacct the plugin's kind of question (main jobs by name, parsable
    states) for a name no job has: where accounting works the answer is empty
    and the exit code 0.

    Returns
    -------
    str or None
        sacct's first line of complaint, e.g. "Slurm accounting storage is disabled".
    """
    cmd = ["sacct", "--noheader", "--parsable2", "-X", "--format=JobIdRaw,State", "--name", PROBE_JOB_NAME]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout)
    except FileNotFoundError:
        return "there is no sacct command"
    except subprocess.TimeoutExpired:
        return f"sacct did not answer within {timeout:.0f} s"
    if proc.returncode == 0:
        return None
    lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
    return lines[0] if lines else f"sacct exited with code {proc.returncode}"


_SECONDS_PER_UNIT = {"": 1, "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
                     "min": 60, "mins": 60, "minute": 60, "minutes": 60, "h": 3600, "hour": 3600, "hours": 3600}


def min_job_age(timeout: float = QUERY_TIMEOUT_S) -> int | None:
    """Slurm's ``MinJobAge`` in seconds, from ``scontrol show config``; None when unknown.

    Returns
    -------
    int or None
        How long slurmctld (and so squeue) keeps a job after it ended.
    """
    try:
        proc = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=timeout)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    match = re.search(r"^[ \t]*MinJobAge[ \t]*=[ \t]*(\d+)[ \t]*([A-Za-z]*)", proc.stdout, flags=re.M)
    if match is None or match.group(2).lower() not in _SECONDS_PER_UNIT:
        return None
    return int(match.group(1)) * _SECONDS_PER_UNIT[match.group(2).lower()]


def choose_status_command(configured: str | None, init_seconds: int) -> StatusChoice:
    """The status command that sees every job end on this cluster.

    sacct where it works (the configured command stands, unless it is squeue
    and ``MinJobAge`` is too short for it); otherwise squeue, where
    ``MinJobAge`` is long enough (:func:`squeue_min_job_age`).

    Parameters
    ----------
    configured : {"sacct", "squeue"} or None
        The profile's (or command line's) ``slurm-status-command``.
    init_seconds : int
        The profile's ``slurm-init-seconds-before-status-checks``.

    Returns
    -------
    StatusChoice

    Raises
    ------
    ClusterError
        When sacct does not work and squeue could miss a job's end: Snakemake
        would wait for ever.
    """
    need = squeue_min_job_age(init_seconds)
    problem = sacct_problem()
    if problem is None:
        if configured != "squeue":
            return StatusChoice(configured or "sacct")
        age = min_job_age()
        if age is not None and age >= need:
            return StatusChoice("squeue")
        return StatusChoice("sacct", f"noisefloor: squeue forgets finished jobs after MinJobAge={_seconds(age)}, "
                                     f"sooner than the {need} s two status polls can be apart: "
                                     f"polling with sacct instead")
    age = min_job_age()
    if age is None or age < need:
        raise ClusterError(
            f"sacct cannot report job states here ({problem}) and squeue would miss jobs that end: "
            f"it forgets them after MinJobAge={_seconds(age)}, sooner than the {need} s two status polls can be "
            f"apart, so Snakemake would wait for ever; nothing was submitted. Ask the cluster's administrators "
            f"for job accounting (slurmdbd) or MinJobAge >= {need}")
    message = None if configured == "squeue" else (
        f"noisefloor: sacct cannot report job states here ({problem}): "
        f"polling with squeue instead (MinJobAge={age} s, at least the {need} s needed)")
    return StatusChoice("squeue", message)


def _seconds(age: int | None) -> str:
    return "unknown (scontrol show config failed)" if age is None else f"{age} s"


def onstart(workflow) -> None:
    """The workflow's ``onstart`` handler: :func:`prepare_slurm`, a problem ending the run with one line.

    Snakemake takes ``onstart`` from the main Snakefile only, never from a
    module: a project's Snakefile (``noisefloor init``) names this handler
    itself, and the packaged workflow's ``cluster.smk`` does when it is the
    main Snakefile.
    """
    try:
        prepare_slurm(workflow)
    except ClusterError as exc:
        sys.exit(f"noisefloor: error: {exc}")


def prepare_slurm(workflow) -> StatusChoice | None:
    """The ``onstart`` hook: make a Slurm run see its jobs end, before any is submitted.

    Does nothing unless Snakemake runs with the ``slurm`` executor. Otherwise
    sets the plugin's status command (:func:`choose_status_command`), writes
    the choice's one line to stderr, and settles the plugin's account guess
    (:func:`_skip_account_guess`).

    Parameters
    ----------
    workflow : snakemake.workflow.Workflow
        The running workflow (``workflow`` in a Snakefile).

    Returns
    -------
    StatusChoice or None
        None when the executor is not Slurm.

    Raises
    ------
    ClusterError
        When no status command can see jobs end (see :func:`choose_status_command`).
    """
    plugin = getattr(workflow, "executor_plugin", None)
    if plugin is None or plugin.name != "slurm":
        return None
    settings = workflow.executor_settings
    choice = choose_status_command(settings.status_command, settings.init_seconds_before_status_checks or 40)
    # The plugin reads the setting at every poll, so this holds from the first one on.
    settings.status_command = choice.command
    if choice.message:
        print(choice.message, file=sys.stderr, flush=True)
    _skip_account_guess(getattr(getattr(workflow, "scheduler", None), "_executor", None))
    return choice


def _skip_account_guess(executor) -> None:
    """Jobs without a ``slurm_account`` resource are submitted without ``-A``, unguessed.

    Slurm then charges the user's default account. The plugin (2.8) would first
    guess one with ``sacct -nu <user> -o Account%256 | tail -1`` but runs that
    pipeline without a shell, so sacct gets ``| tail -1`` as arguments and fails
    on every cluster ("sacct: invalid option -- '1'"), warns "Unable to guess
    SLURM account" and submits without ``-A`` all the same. Settling its cached
    guess to "no -A" (an attribute the plugin fills on first use) skips the
    failing call and its warnings and changes nothing else; an executor without
    that attribute is left alone.
    """
    if executor is not None and getattr(executor, "_fallback_account_arg", "") is None:
        executor._fallback_account_arg = ""
