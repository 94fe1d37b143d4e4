"""A throwaway single-node Slurm cluster on this machine, for tests.

Starts ``munged``, ``slurmctld`` and ``slurmd`` in the foreground (so the
processes started are exactly the ones stopped, by pid), with every file they
need -- config, munge key and socket, state, spool, logs -- under one private
temporary directory, and all traffic on the loopback interface. There is no
accounting database (no slurmdbd, ``AccountingStorageType=accounting_storage/none``):
``sacct`` answers "Slurm accounting storage is disabled", as on clusters run
without one, and only ``squeue``/``scontrol`` see jobs, for ``MinJobAge``
seconds after they end. Nothing under
/etc is read or changed: the client commands find the config via ``SLURM_CONF``
(see :meth:`LocalSlurm.env`).

Needs root (slurmd starts job steps as the submitting user) and the Debian
packages ``slurmctld slurmd slurm-client munge``; :func:`missing` says what is
absent.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

DEBIAN_PACKAGES = "slurmctld slurmd slurm-client munge"
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scontrol", "sinfo", "scancel", "srun")
NODE = "localhost"
PARTITION = "debug"
# Job states (squeue %T) after which a job never runs again.
ENDED_STATES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
                          "BOOT_FAIL", "DEADLINE", "PREEMPTED"})


def missing() -> str | None:
    """Why a local Slurm cluster cannot be started here, or None if it can."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "starting Slurm daemons needs root"
    absent = [p for p in DAEMONS + CLIENTS if shutil.which(p, path=_sbin_path()) is None]
    if absent:
        hint = ("apt-get install --no-install-recommends " + DEBIAN_PACKAGES) if shutil.which("apt-get") \
            else "no apt-get on this machine"
        return f"Slurm is not installed (no {', '.join(absent)}; {hint})"
    try:
        pwd.getpwnam("munge")
    except KeyError:
        return "no 'munge' user (the munge package creates it)"
    return None


def _sbin_path() -> str:
    # Daemons live in /usr/sbin, which a non-login root shell may lack on PATH.
    return os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_hardware() -> dict[str, str]:
    """This machine as ``slurmd -C`` sees it; a node line that claims more gets the node drained."""
    out = subprocess.run([shutil.which("slurmd", path=_sbin_path()), "-C"], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    fields = dict(re.findall(r"(\w+)=(\S+)", out.splitlines()[0]))
    keep = ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore", "RealMemory")
    return {k: fields[k] for k in keep if k in fields}


class SlurmStartError(RuntimeError):
    """A daemon did not come up; the message holds the tail of its log."""


class LocalSlurm:
    """A single-node Slurm cluster in a private temporary directory.

    Use as a context manager: entering starts the daemons and waits until the
    node is idle; leaving cancels the cluster's jobs, stops the daemons it
    started (by pid) and removes the directory.

    Parameters
    ----------
    min_job_age : int
        Seconds a finished job stays visible to ``squeue``/``scontrol``, the
        only commands that see jobs here (no accounting, see above). Status
        polling with squeue needs it longer than the pause between two polls
        (``noisefloor.cluster.squeue_min_job_age``); the workflow refuses to
        start below that.
    """

    def __init__(self, min_job_age: int = 300):
        self.min_job_age = min_job_age
        self.dir: Path | None = None
        self.procs: dict[str, subprocess.Popen] = {}
        self._logs: list = []

    # ------------------------------------------------------------------ public

    @property
    def conf(self) -> Path:
        return self.dir / "slurm.conf"

    def env(self, base: dict | None = None) -> dict[str, str]:
        """``base`` (default: os.environ) with this cluster's config, for client commands and jobs."""
        env = dict(os.environ if base is None else base)
        env["SLURM_CONF"] = str(self.conf)
        env["PATH"] = os.pathsep.join([str(self.dir / "bin"), env.get("PATH", ""), "/usr/sbin"])
        return env

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run a Slurm client command against this cluster."""
        return subprocess.run(list(cmd), capture_output=True, text=True, env=self.env(), timeout=60, check=check)

    def job(self, job_id: str | int) -> dict[str, str]:
        """``scontrol show job`` as a dict (empty when Slurm no longer knows the job)."""
        proc = self.run("scontrol", "show", "job", "-o", str(job_id), check=False)
        if proc.returncode != 0:
            return {}
        return dict(re.findall(r"(\w+)=(\S*)", proc.stdout))

    def daemon_pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.procs.items()}

    def __enter__(self) -> "LocalSlurm":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ start

    def start(self) -> None:
        # Not pytest's tmp_path: that is private to root (the munge user must
        # enter it) and long (a Unix socket path is limited to 107 bytes).
        self.dir = Path(tempfile.mkdtemp(prefix="nf-slurm-"))
        self.dir.chmod(0o755)
        for sub in ("state", "spool", "log"):
            (self.dir / sub).mkdir()
        self._start_munge()
        self._write_conf()
        self._write_client_shims()
        self._spawn("slurmctld", ["slurmctld", "-D", "-i", "-f", str(self.conf)])
        self._wait(lambda: self.run("scontrol", "ping", check=False).stdout.count("is UP") > 0,
                   "slurmctld", 60)
        self._spawn("slurmd", ["slurmd", "-D", "-N", NODE, "-f", str(self.conf)])
        self._wait(self._node_idle, "slurmd", 60)

    def _start_munge(self) -> None:
        munge = pwd.getpwnam("munge")
        mdir = self.dir / "munge"
        mdir.mkdir()
        mdir.chmod(0o755)  # munged: clients must be able to reach its socket
        key = mdir / "munge.key"
        key.write_bytes(os.urandom(1024))  # a fresh key: nothing outside this cluster can talk to it
        key.chmod(0o400)
        for p in (mdir, key):
            os.chown(p, munge.pw_uid, munge.pw_gid)
        self.munge_socket = mdir / "munge.socket"
        self._spawn("munged", [
            "munged", "--foreground", f"--socket={self.munge_socket}", f"--key-file={key}",
            f"--pid-file={mdir / 'munged.pid'}", f"--log-file={mdir / 'munged.log'}",
            f"--seed-file={mdir / 'munged.seed'}",
        ], user=munge.pw_uid, group=munge.pw_gid)
        self._wait(self.munge_socket.exists, "munged", 30)

    def _write_conf(self) -> None:
        d = self.dir
        host = socket.gethostname().split(".")[0]
        hw = " ".join(f"{k}={v}" for k, v in _node_hardware().items())
        self.conf.write_text("\n".join([
            "ClusterName=noisefloor-test",
            # slurmctld only starts on the host its config names; reach it on loopback.
            f"SlurmctldHost={host}(127.0.0.1)",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            "SlurmUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            f"StateSaveLocation={d / 'state'}",
            f"SlurmdSpoolDir={d / 'spool'}",
            f"SlurmctldPidFile={d / 'slurmctld.pid'}",
            f"SlurmdPidFile={d / 'slurmd.pid'}",
            f"SlurmctldLogFile={d / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={d / 'log' / 'slurmd.log'}",
            # No systemd or cgroup delegation here: track processes by parentage.
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "MpiDefault=none",
            "MailProg=/bin/true",
            "ReturnToService=2",
            f"MinJobAge={self.min_job_age}",
            f"NodeName={NODE} NodeAddr=127.0.0.1 {hw} State=UNKNOWN",
            f"PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP",
        ]) + "\n")

    def _write_client_shims(self) -> None:
        # Inside a job, snakemake-executor-plugin-slurm-jobstep runs `srun` with every
        # SLURM_* variable but the job's identity removed, SLURM_CONF included; a
        # real cluster's clients find /etc/slurm/slurm.conf instead. These shims
        # (first on the PATH of env()) point the clients at this cluster's config.
        bindir = self.dir / "bin"
        bindir.mkdir()
        for name in CLIENTS:
            shim = bindir / name
            real = shutil.which(name, path=_sbin_path())
            shim.write_text(f'#!/bin/sh\nSLURM_CONF="{self.conf}" exec "{real}" "$@"\n')
            shim.chmod(0o755)

    def _spawn(self, name: str, cmd: list[str], **kw) -> None:
        log = open(self.dir / "log" / f"{name}.out", "wb")
        self._logs.append(log)
        cmd[0] = shutil.which(cmd[0], path=_sbin_path())
        # A session of its own: a Ctrl-C meant for pytest must not reach the daemons
        # before the teardown has cancelled the jobs.
        self.procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env=self.env(), start_new_session=True, **kw)

    def _node_idle(self) -> bool:
        out = self.run("sinfo", "-h", "-N", "-o", "%N %T", check=False).stdout.split()
        return out[:2] == [NODE, "idle"]

    def _wait(self, ready, name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self.procs[name]
            if proc.poll() is not None:
                raise SlurmStartError(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")
            if ready():
                return
            time.sleep(0.5)
        raise SlurmStartError(f"{name} not ready after {timeout:.0f} s:\n{self.log_tail(name)}")

    def log_tail(self, name: str, lines: int = 30) -> str:
        """The last lines of a daemon's console output and of its own log file."""
        paths = [self.dir / "log" / f"{name}.out", self.dir / "log" / f"{name}.log", self.dir / "munge" / f"{name}.log"]
        return "\n".join(f"--- {p.name}\n" + "\n".join(p.read_text(errors="replace").splitlines()[-lines:])
                         for p in paths if p.exists())

    # ------------------------------------------------------------------ stop

    def stop(self) -> None:
        """Cancel every job of this cluster, stop its daemons by pid, remove its directory."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            # Jobs' processes belong to slurmstepd, not to the daemons: cancel them
            # through Slurm and wait until none is left before stopping slurmd.
            self.run("scancel", "--user", "root", check=False)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.run("squeue", "-h", "-t", "PD,R,CG", check=False).stdout:
                time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "munged"):  # reverse start order: munge goes last
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for log in self._logs:
            log.close()
        self._logs.clear()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
