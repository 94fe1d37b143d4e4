"""The fork server: same results as a fresh process, no orphans, and a working fallback.

Each test drives the real ``noisefloor train`` command in subprocesses with a
private server directory, so no test shares a server with a user's workflow.
"""

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest
import yaml

from noisefloor import forkserver
from tests.helpers import SMOKE

TIMING = {"wall_time_s", "resumed_from_epoch"}
WORKER_LINE = re.compile(r"running in process (\d+) forked from the warm server")


def _env(server_dir: Path, **extra) -> dict:
    env = dict(os.environ, NOISEFLOOR_FORKSERVER="1", NOISEFLOOR_FORKSERVER_DIR=str(server_dir))
    env.pop("NOISEFLOOR_FORKSERVER_IDLE", None)
    env.update(extra)
    return env


def _train_cmd(params: Path, runs: Path, config: str, *seeds: int) -> list[str]:
    cmd = [sys.executable, "-m", "noisefloor", "train", "--params", str(params), "--config", config,
           "--runs-dir", str(runs)]
    for s in seeds:
        cmd += ["--seed", str(s)]
    return cmd


def _train(env, params, runs, config, *seeds) -> subprocess.CompletedProcess:
    return subprocess.run(_train_cmd(params, runs, config, *seeds), env=env, capture_output=True, text=True,
                          timeout=300)


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _wait_gone(pid: int, timeout: float = 60.0) -> bool:
    """Wait until ``pid`` has exited, as the kernel reports on its pidfd; False if it still runs at ``timeout``.

    The timeout only bounds a hang: the wait ends the moment the process does.
    """
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True                                         # gone (and reaped) already
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        return bool(ready)
    finally:
        os.close(fd)


def _server_pids(server_dir: Path) -> list[int]:
    return [int(m) for log in server_dir.glob("*.log")
            for m in re.findall(r"fork server (\d+) listening", log.read_text())]


@pytest.fixture(scope="module")
def server_dir(tmp_path_factory):
    """One warm server for the module; asked to exit at the end."""
    d = tmp_path_factory.mktemp("forkserver")
    yield d
    forkserver.stop(_env(d))


@pytest.fixture(scope="module")
def long_params(tmp_path_factory):
    """The smoke experiment with epochs enough to outlast any test."""
    raw = yaml.safe_load(SMOKE.read_text())
    raw["train"]["epochs"] = 100000
    path = tmp_path_factory.mktemp("long") / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _metrics(runs: Path, config: str, seed: int) -> dict:
    m = json.loads((runs / config / f"seed{seed}" / "metrics.json").read_text())
    return {k: v for k, v in m.items() if k not in TIMING}


def test_forked_runs_match_fresh_processes_bit_for_bit(server_dir, tmp_path):
    forked = _train(_env(server_dir), SMOKE, tmp_path / "forked", "lr_hi", 0, 1)
    assert forked.returncode == 0, forked.stderr
    assert WORKER_LINE.search(forked.stderr) and "epoch 2/2" in forked.stderr   # the log reaches the caller

    own_dir = tmp_path / "unused-server-dir"
    plain = _train(_env(own_dir, NOISEFLOOR_FORKSERVER="0"), SMOKE, tmp_path / "plain", "lr_hi", 0, 1)
    assert plain.returncode == 0, plain.stderr
    assert not WORKER_LINE.search(plain.stderr)
    assert not list(own_dir.glob("*.sock"))                 # switched off: no server was started

    for seed in (0, 1):
        assert _metrics(tmp_path / "forked", "lr_hi", seed) == _metrics(tmp_path / "plain", "lr_hi", seed)
        a, b = (pd.read_csv(tmp_path / d / "lr_hi" / f"seed{seed}" / "history.csv").drop(columns="time_s")
                for d in ("forked", "plain"))
        pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_a_failing_run_reports_its_exit_status(server_dir, tmp_path):
    proc = _train(_env(server_dir), tmp_path / "missing.yaml", tmp_path / "runs", "baseline", 0)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == f"noisefloor: error: {tmp_path / 'missing.yaml'}: params file not found"


def _start_long_run(env, params, runs) -> tuple[subprocess.Popen, int]:
    """A client whose worker has begun training; returns (client, worker pid)."""
    client = subprocess.Popen(_train_cmd(params, runs, "baseline", 0), env=env, stderr=subprocess.PIPE, text=True)
    worker = None
    for line in client.stderr:
        m = WORKER_LINE.search(line)
        worker = int(m.group(1)) if m else worker
        if "epoch 1/" in line:
            break
    # Keep reading, or a full pipe would block the worker's next log line.
    threading.Thread(target=client.stderr.read, daemon=True).start()
    assert worker is not None and _alive(worker)
    return client, worker


def test_killed_client_takes_its_worker_with_it(server_dir, long_params, tmp_path):
    client, worker = _start_long_run(_env(server_dir), long_params, tmp_path / "runs")
    client.kill()                                           # kill -9: no chance to forward anything
    client.wait(timeout=10)
    assert _wait_gone(worker), f"worker {worker} still runs after its client was killed"
    assert not (tmp_path / "runs" / "baseline" / "seed0" / "metrics.json").exists()


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGINT, 130)])
def test_signals_reach_the_worker(server_dir, long_params, tmp_path, sig, code):
    client, worker = _start_long_run(_env(server_dir), long_params, tmp_path / "runs")
    client.send_signal(sig)
    assert client.wait(timeout=30) == code                  # as a plain process would exit
    assert _wait_gone(worker)


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_a_killed_worker_fails_its_job_with_the_signal(server_dir, long_params, tmp_path):
    client, worker = _start_long_run(_env(server_dir), long_params, tmp_path / "runs")
    os.kill(worker, signal.SIGKILL)                         # e.g. the kernel's out-of-memory killer
    assert client.wait(timeout=30) == 128 + signal.SIGKILL


def test_a_killed_supervisor_takes_its_worker_with_it(server_dir, long_params, tmp_path):
    client, worker = _start_long_run(_env(server_dir), long_params, tmp_path / "runs")
    os.kill(_parent(worker), signal.SIGKILL)
    assert _wait_gone(worker)                               # PR_SET_PDEATHSIG
    assert client.wait(timeout=30) == 1                     # no exit status came back: a failure


def test_falls_back_to_training_in_process(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)                                     # others could plant a socket: not used
    proc = _train(_env(shared), SMOKE, tmp_path / "runs", "baseline", 2)
    assert proc.returncode == 0, proc.stderr
    assert "fork server unavailable" in proc.stderr and "not private" in proc.stderr
    assert not WORKER_LINE.search(proc.stderr)
    assert _metrics(tmp_path / "runs", "baseline", 2)["status"] == "ok"
    assert not list(shared.iterdir())


def test_a_dead_servers_socket_is_replaced_and_idle_servers_exit(tmp_path):
    d = tmp_path / "fs"
    env = _env(d, NOISEFLOOR_FORKSERVER_IDLE="2")
    assert _train(env, SMOKE, tmp_path / "a", "baseline", 0).returncode == 0
    (first,) = _server_pids(d)
    os.kill(first, signal.SIGKILL)                          # leaves its socket file behind
    assert _wait_gone(first) and len(list(d.glob("*.sock"))) == 1
    proc = _train(env, SMOKE, tmp_path / "b", "baseline", 0)
    assert proc.returncode == 0 and WORKER_LINE.search(proc.stderr), proc.stderr
    second = [p for p in _server_pids(d) if p != first]
    assert len(second) == 1
    assert _wait_gone(second[0])                            # idle for 2 s: gone
    assert not list(d.glob("*.sock"))
    assert _metrics(tmp_path / "a", "baseline", 0) == _metrics(tmp_path / "b", "baseline", 0)


def test_settings_are_checked():
    assert forkserver.enabled({}) is True
    assert forkserver.enabled({"SLURM_JOB_ID": "7"}) is False       # jobs keep their cgroup
    assert forkserver.enabled({"SLURM_JOB_ID": "7", "NOISEFLOOR_FORKSERVER": "1"}) is True
    assert forkserver.enabled({"NOISEFLOOR_FORKSERVER": "0"}) is False
    with pytest.raises(forkserver.ForkServerError, match="NOISEFLOOR_FORKSERVER='maybe'"):
        forkserver.enabled({"NOISEFLOOR_FORKSERVER": "maybe"})
    with pytest.raises(forkserver.ForkServerError, match="NOISEFLOOR_FORKSERVER_IDLE"):
        forkserver.idle_timeout({"NOISEFLOOR_FORKSERVER_IDLE": "-3"})


def test_a_bad_setting_is_one_line_and_exit_2(tmp_path):
    proc = _train(dict(os.environ, NOISEFLOOR_FORKSERVER="maybe"), SMOKE, tmp_path, "baseline", 0)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "noisefloor: error: NOISEFLOOR_FORKSERVER='maybe': expected 0 or 1"


def test_a_server_that_dies_while_starting_means_training_here(tmp_path, monkeypatch, capsys):
    def broken_server(sock_path, log_path, environ):
        return subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])

    monkeypatch.setattr(forkserver, "_start_server", broken_server)
    env = _env(tmp_path / "fs")
    with pytest.raises(forkserver.Unavailable, match="exited with status 3"):
        forkserver.connect(env)
    assert forkserver.run("noisefloor.cli:main", ["train", "--help"], env) is None   # nothing started here
    assert "fork server unavailable (the fork server exited with status 3" in capsys.readouterr().err


def test_a_signal_before_the_worker_exists_is_forwarded_once(monkeypatch):
    """SIGTERM once the request is sent but before the worker exists: held, then sent once, when it exists.

    The signal is raised right after the request leaves (its handler runs
    before ``raise_signal`` returns), and the fake server answers only after
    reading the request, so the order is fixed whatever the machine's speed.
    """
    client_end, server_end = socket.socketpair()
    monkeypatch.setattr(forkserver, "connect", lambda environ: client_end)
    send_fds = socket.send_fds

    def send_then_signal(sock, buffers, fds):
        sent = send_fds(sock, buffers, fds)
        signal.raise_signal(signal.SIGTERM)                # arrives before the worker "exists"
        return sent

    monkeypatch.setattr(forkserver.socket, "send_fds", send_then_signal)
    seen = []

    def fake_server():
        server_end.settimeout(60.0)                        # bounds a hang only
        with server_end:
            _, fds, _, _ = socket.recv_fds(server_end, 1 << 20, 3)
            for fd in fds:
                os.close(fd)
            server_end.sendall(b'{"pid": 4242}\n')
            with server_end.makefile("rb") as replies:
                seen.append(json.loads(replies.readline()))     # the held signal, forwarded
                server_end.sendall(b'{"exit": 143, "signal": 15}\n')
                seen.extend(json.loads(line) for line in replies)   # anything more, until the client hangs up

    thread = threading.Thread(target=fake_server)
    thread.start()
    assert forkserver.run("noisefloor.cli:main", ["train"], {}) == 128 + signal.SIGTERM
    thread.join()
    assert seen == [{"signal": int(signal.SIGTERM)}]
