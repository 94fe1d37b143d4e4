"""Start a training run by forking a warm server instead of a fresh interpreter.

A training process spends about 5 s importing torch and ``torch._dynamo``
(which ``torch.optim`` pulls in on first use) before its first step, about as
long as a small run's training. ``noisefloor train`` therefore hands its
command line, with the entry point to run it (``noisefloor.cli:main``), to a
per-user server that has those modules imported already and forks a worker
per run. The worker runs exactly the code an in-process ``noisefloor train``
runs (same functions, same seeding), so its results are bit-identical; only
the start-up is skipped. The entry point travels by name: this module imports
nothing from the command line that calls it.

Processes, per run::

    client (noisefloor train, no torch) --unix socket-->  server (idle, torch imported)
        |  stdin/stdout/stderr passed over the socket        | fork
        |  <-- {"pid"}, {"exit"} ---------------------------  supervisor
        |  --> {"signal"} ------------------------------------>   | fork
                                                                 worker: <entry point>(argv)

- The worker writes its log straight into the client's stderr (the file
  descriptors travel over the socket), runs in the client's working directory,
  environment, umask and CPU affinity.
- The supervisor forwards the client's signals to the worker, reports the
  worker's exit status, and kills the worker as soon as the client's
  connection closes (the client was killed): no run outlives its client. The
  worker also dies with its supervisor (``PR_SET_PDEATHSIG``).
- The server exits after ``NOISEFLOOR_FORKSERVER_IDLE`` seconds without work
  (default 60). One server exists per user, Python environment, source tree
  and import-relevant environment variables (the key hashes them all, so an
  edited source file or an upgraded package starts a fresh server).
- Nothing here can change a result: if no server can be reached or started,
  the client trains in its own process (one line on stderr says why).

Environment
-----------
NOISEFLOOR_FORKSERVER
    ``0`` = never use a server; ``1`` = use one even under Slurm. Unset: on,
    except inside a Slurm job (``SLURM_JOB_ID`` set), where a server started by
    one job would run later jobs' work outside their cgroup and limits.
NOISEFLOOR_FORKSERVER_DIR
    Where sockets, locks and server logs live (default
    ``$XDG_RUNTIME_DIR/noisefloor`` or ``<tmp>/noisefloor-<uid>``; must be
    private to the user).
NOISEFLOOR_FORKSERVER_IDLE
    Seconds an idle server waits before exiting (default 60).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .errors import NoisefloorError

PROTOCOL = 2
ENV_ENABLE = "NOISEFLOOR_FORKSERVER"
ENV_DIR = "NOISEFLOOR_FORKSERVER_DIR"
ENV_IDLE = "NOISEFLOOR_FORKSERVER_IDLE"
DEFAULT_IDLE_S = 60.0
START_TIMEOUT_S = 120.0
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
# Variables read when torch and its libraries are imported (thread pools,
# allocators, library paths): a server imported under other values would not
# behave like a fresh process, so they are part of the server's identity.
IMPORT_ENV_PREFIXES = ("OMP_", "MKL_", "KMP_", "GOMP_", "OPENBLAS_", "TORCH", "PYTORCH_", "CUDA_", "CUBLAS_",
                       "CUDNN_", "NVIDIA_", "NCCL_", "TRITON_", "LD_", "PYTHON", "NOISEFLOOR_")
_MAX_LINE = 1 << 20


class ForkServerError(NoisefloorError, ValueError):
    """A fork-server setting is malformed; the message is one line naming the variable."""


class Unavailable(RuntimeError):
    """No server could take the run; nothing was started, so training here is safe."""


# --------------------------------------------------------------------------- settings


def enabled(environ=os.environ) -> bool:
    """Whether ``noisefloor train`` should hand its runs to a server."""
    value = environ.get(ENV_ENABLE, "").strip().lower()
    if value in ("0", "off", "false", "no"):
        return False
    if value not in ("", "1", "on", "true", "yes"):
        raise ForkServerError(f"{ENV_ENABLE}={environ[ENV_ENABLE]!r}: expected 0 or 1")
    if not (hasattr(os, "fork") and hasattr(socket, "AF_UNIX") and hasattr(socket, "send_fds")):
        return False
    return value != "" or "SLURM_JOB_ID" not in environ


def idle_timeout(environ=os.environ) -> float:
    raw = environ.get(ENV_IDLE)
    if raw is None or raw.strip() == "":
        return DEFAULT_IDLE_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ForkServerError(f"{ENV_IDLE}={raw!r}: expected a positive number of seconds")
    return value


def runtime_dir(environ=os.environ) -> Path:
    """The private directory of this user's sockets, locks and server logs."""
    if environ.get(ENV_DIR):
        path = Path(environ[ENV_DIR])
    elif environ.get("XDG_RUNTIME_DIR") and os.path.isdir(environ["XDG_RUNTIME_DIR"]):
        path = Path(environ["XDG_RUNTIME_DIR"]) / "noisefloor"
    else:
        path = Path(tempfile.gettempdir()) / f"noisefloor-{os.getuid()}"
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = path.stat()
    except OSError as exc:
        raise Unavailable(f"{path}: cannot create the fork-server directory ({exc.strerror})") from None
    # Anyone who can write here could hand us a socket of theirs: refuse.
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise Unavailable(f"{path}: fork-server directory is not private to this user (mode "
                          f"{st.st_mode & 0o777:o}, owner {st.st_uid})")
    return path


def _import_path() -> list[str]:
    """This process's ``sys.path`` with relative entries made absolute (the server runs in /)."""
    return [os.path.abspath(entry or ".") for entry in sys.path]


def _package_dir() -> str:
    import noisefloor

    return os.path.realpath(Path(noisefloor.__file__).parent)


def server_key(environ=os.environ) -> str:
    """Hash of everything a server's imports depend on (see the module docstring)."""
    pkg = Path(_package_dir())
    parts: list = [PROTOCOL, os.getuid(), os.path.realpath(sys.executable), sys.prefix, _import_path(), str(pkg)]
    for f in sorted(pkg.rglob("*")):
        if "__pycache__" not in f.parts and f.is_file():
            st = f.stat()
            parts.append((str(f.relative_to(pkg)), st.st_mtime_ns, st.st_size))
    # An install into any import directory changes that directory's mtime.
    for entry in _import_path():
        with contextlib.suppress(OSError):
            parts.append((entry, os.stat(entry).st_mtime_ns))
    parts.append(sorted((k, v) for k, v in environ.items() if k.startswith(IMPORT_ENV_PREFIXES)))
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


# --------------------------------------------------------------------------- wire format: JSON lines


def _send(sock: socket.socket, obj: dict) -> None:
    sock.sendall(json.dumps(obj).encode() + b"\n")


class _Lines:
    """Reads newline-terminated JSON messages from a socket."""

    def __init__(self, sock: socket.socket, initial: bytes = b""):
        self.sock, self.buf = sock, initial

    def read(self) -> dict | None:
        """The next message, or None at end of stream."""
        while b"\n" not in self.buf:
            try:
                chunk = self.sock.recv(65536)
            except InterruptedError:   # pragma: no cover - Python retries EINTR itself
                continue
            if not chunk:
                return None
            self.buf += chunk
            if len(self.buf) > _MAX_LINE:
                raise ValueError("message too long")
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def pending(self) -> bool:
        return b"\n" in self.buf


# --------------------------------------------------------------------------- client


def _connect(path: Path) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
        return sock
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        return None
    except OSError:
        sock.close()
        raise


@contextlib.contextmanager
def _locked(path: Path):
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _paths(directory: Path, key: str) -> tuple[Path, Path, Path]:
    return directory / f"{key}.sock", directory / f"{key}.lock", directory / f"{key}.log"


def _start_server(sock_path: Path, log_path: Path, environ) -> subprocess.Popen:
    """Launch a detached server; it puts its socket at ``sock_path`` once ready."""
    env = dict(environ)
    env["_NOISEFLOOR_FORKSERVER_SYSPATH"] = json.dumps(_import_path())
    code = ("import json, os, sys; sys.path[:] = json.loads(os.environ.pop('_NOISEFLOOR_FORKSERVER_SYSPATH')); "
            "from noisefloor.forkserver import serve; serve(sys.argv[1], float(sys.argv[2]), sys.argv[3])")
    with open(log_path, "ab") as log:
        # A session of its own: a Ctrl-C meant for the workflow engine's jobs
        # must not reach the shared server (its runs get the client's signals).
        return subprocess.Popen([sys.executable, "-c", code, str(sock_path), repr(idle_timeout(environ)),
                                 _package_dir()],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd="/", env=env,
                                start_new_session=True, close_fds=True)


def connect(environ=os.environ) -> socket.socket:
    """A connection to this environment's server, starting one if none is running.

    Raises
    ------
    Unavailable
        The directory is unusable or a server did not come up in time.
    """
    directory = runtime_dir(environ)
    sock_path, lock_path, log_path = _paths(directory, server_key(environ))
    sock = _connect(sock_path)
    if sock is not None:
        return sock
    # One client starts the server; the others wait on the lock and then connect.
    with _locked(lock_path):
        sock = _connect(sock_path)
        if sock is not None:
            return sock
        with contextlib.suppress(FileNotFoundError):
            sock_path.unlink()            # a dead server's socket: nobody listens on it
        proc = _start_server(sock_path, log_path, environ)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            sock = _connect(sock_path)
            if sock is not None:
                return sock
            if proc.poll() is not None:
                raise Unavailable(f"the fork server exited with status {proc.returncode} while starting "
                                  f"(see {log_path})")
            if time.monotonic() > deadline:
                proc.kill()
                raise Unavailable(f"the fork server did not start within {START_TIMEOUT_S:.0f} s (see {log_path})")
            time.sleep(0.02)


def _open_std_fds() -> list[int]:
    """fds 0, 1, 2 as they are here; /dev/null stands in for a closed one."""
    fds = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
            fds.append(fd)
        except OSError:
            fds.append(os.open(os.devnull, os.O_RDWR))
    return fds


def run(target: str, argv: list[str], environ=os.environ) -> int | None:
    """Run ``target(argv)`` in a worker forked by the server.

    Parameters
    ----------
    target : str
        The worker's entry point as ``package.module:function``; the function
        takes the argument list and returns an exit status (as
        ``noisefloor.cli:main`` does).
    argv : list of str
    environ : mapping
        The environment the worker runs in (and the server is chosen by).

    Returns
    -------
    int or None
        The worker's exit status, or None when no worker was started (the
        caller then runs the command itself; the reason is on stderr).
    """
    state = {"sock": None, "sent": False, "started": False, "signals": []}

    def die_by(signum):
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    def forward(signum, _frame):
        if not state["sent"]:
            die_by(signum)                     # nothing started yet: behave as a plain process would
            return
        state["signals"].append(signum)
        if state["started"]:
            with contextlib.suppress(OSError):
                _send(state["sock"], {"signal": int(signum)})

    previous = {s: signal.signal(s, forward) for s in FORWARDED_SIGNALS}
    try:
        try:
            sock = connect(environ)
        except (Unavailable, OSError) as exc:
            print(f"noisefloor: fork server unavailable ({exc}); training in this process",
                  file=sys.stderr, flush=True)
            return None
        state["sock"] = sock
        with sock:
            request = {"protocol": PROTOCOL, "target": target, "argv": list(argv), "cwd": os.getcwd(),
                       "env": dict(environ), "umask": _current_umask(), "affinity": sorted(_affinity())}
            std = _open_std_fds()
            # Marked sent before sending: a signal that arrives once the server may have the
            # request is held for the worker, never allowed to end this process while the
            # server forks one; if the send fails, a held signal ends it after all.
            state["sent"] = True
            try:
                socket.send_fds(sock, [json.dumps(request).encode() + b"\n"], std)
            except OSError as exc:
                if state["signals"]:
                    die_by(state["signals"][-1])
                print(f"noisefloor: fork server unavailable ({exc}); training in this process",
                      file=sys.stderr, flush=True)
                return None
            lines = _Lines(sock)
            try:
                hello = lines.read()
            except (OSError, ValueError):
                hello = None
            if not hello or "pid" not in hello:
                # The server went away before forking (e.g. it was exiting): nothing runs.
                if state["signals"]:
                    die_by(state["signals"][-1])
                print("noisefloor: fork server unavailable (it closed the connection); training in this process",
                      file=sys.stderr, flush=True)
                return None
            print(f"noisefloor: running in process {hello['pid']} forked from the warm server",
                  file=sys.stderr, flush=True)
            # Signals that came before the worker existed go now; blocked meanwhile,
            # so that none is sent twice or lost between the two steps.
            signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED_SIGNALS)
            state["started"] = True
            for signum in state["signals"]:
                with contextlib.suppress(OSError):
                    _send(sock, {"signal": int(signum)})
            signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED_SIGNALS)
            try:
                msg = lines.read()
            except (OSError, ValueError):
                msg = None
        if msg and "exit" in msg:
            if msg.get("signal"):
                return 128 + int(msg["signal"])
            return int(msg["exit"])
        if state["signals"]:
            return 128 + int(state["signals"][-1])
        print(f"noisefloor: error: worker {hello['pid']} ended without an exit status (its supervisor was killed)",
              file=sys.stderr, flush=True)
        return 1
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _affinity() -> set[int]:
    try:
        return os.sched_getaffinity(0)
    except (AttributeError, OSError):   # pragma: no cover - not Linux
        return set()


def stop(environ=os.environ) -> int:
    """Ask every server in the runtime directory to exit; returns how many were asked."""
    directory = runtime_dir(environ)
    n = 0
    for sock_path in sorted(directory.glob("*.sock")):
        with contextlib.suppress(OSError):
            sock = _connect(sock_path)
            if sock is not None:
                with sock:
                    socket.send_fds(sock, [json.dumps({"protocol": PROTOCOL, "op": "stop"}).encode() + b"\n"], [])
                n += 1
    return n


# --------------------------------------------------------------------------- server


def preload() -> None:
    """Import what a training run imports, without running any torch op.

    No op runs here: the worker's thread pools, RNGs and CUDA state must start
    exactly as a fresh process's do (and CUDA cannot survive a fork).
    """
    import ctypes  # noqa: F401  (the worker's PR_SET_PDEATHSIG)

    import jsonschema  # noqa: F401
    import numpy  # noqa: F401
    import torch
    import torch._dynamo  # noqa: F401  (imported lazily by torch.optim on first use: ~2.4 s)
    import torch.optim  # noqa: F401
    import torch.utils.serialization  # noqa: F401
    import yaml  # noqa: F401

    from . import adaptive, aggregate, batched, data, io, models, params, protocol, runner, train  # noqa: F401

    if torch.cuda.is_initialized():  # pragma: no cover - a safety net for future imports
        raise RuntimeError("CUDA was initialised while preloading; a forked worker could not use it")


def serve(sock_path: str | os.PathLike, idle_s: float = DEFAULT_IDLE_S, package_dir: str | None = None) -> None:
    """Run a server on ``sock_path`` until it has been idle for ``idle_s`` seconds.

    ``package_dir`` is the noisefloor package the clients import; a server
    that imported another copy exits instead of serving (the client then
    trains in its own process).
    """
    sock_path = Path(sock_path)
    if package_dir is not None and _package_dir() != package_dir:
        raise SystemExit(f"noisefloor fork server: imported {_package_dir()}, clients use {package_dir}; exiting")
    preload()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    tmp = sock_path.with_name(f".{sock_path.name}.{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    listener.bind(str(tmp))
    listener.listen(64)
    os.replace(tmp, sock_path)         # clients see a socket only once it accepts
    inode = sock_path.stat().st_ino
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    supervisors: set[int] = set()
    last_busy = time.monotonic()
    print(f"noisefloor fork server {os.getpid()} listening on {sock_path} (idle timeout {idle_s:g} s)",
          file=sys.stderr, flush=True)

    def ours() -> bool:
        try:
            return sock_path.stat().st_ino == inode
        except OSError:
            return False

    while True:
        _reap(supervisors)
        if supervisors:
            last_busy = time.monotonic()
        try:
            ready, _, _ = select.select([listener], [], [], 1.0)
        except InterruptedError:   # pragma: no cover
            ready = []
        if ready:
            conn, _ = listener.accept()
            if _handle(conn, listener, supervisors) == "stop":
                stopping.append(True)
            last_busy = time.monotonic()
            continue
        if stopping or not ours() or time.monotonic() - last_busy > idle_s:
            break
    # Unlink first so new clients start a fresh server, then serve whoever
    # connected before the unlink (their connections wait in the backlog).
    if ours():
        with contextlib.suppress(OSError):
            sock_path.unlink()
    listener.setblocking(False)
    while True:
        try:
            conn, _ = listener.accept()
        except (BlockingIOError, OSError):
            break
        _handle(conn, listener, supervisors)
    listener.close()
    print(f"noisefloor fork server {os.getpid()} exiting", file=sys.stderr, flush=True)


def _reap(children: set[int]) -> None:
    while children:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            children.clear()
            return
        if pid == 0:
            return
        children.discard(pid)


def _handle(conn: socket.socket, listener: socket.socket, supervisors: set[int]) -> str | None:
    """Read one request; fork a supervisor for it (the server keeps no part of it)."""
    fds: list[int] = []
    try:
        conn.settimeout(10.0)
        data, fds, _, _ = socket.recv_fds(conn, 65536, 3)
        lines = _Lines(conn, data)
        request = lines.read()
        if not isinstance(request, dict) or request.get("protocol") != PROTOCOL:
            return None
        if request.get("op") == "stop":
            return "stop"
        if len(fds) != 3:
            return None
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            try:
                listener.close()
                conn.settimeout(None)
                _supervise(conn, request, fds)
            finally:
                os._exit(70)
        supervisors.add(pid)
        return None
    except (OSError, ValueError) as exc:
        print(f"noisefloor fork server: dropped a request ({exc})", file=sys.stderr, flush=True)
        return None
    finally:
        conn.close()
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)


def _supervise(conn: socket.socket, request: dict, fds: list[int]) -> None:
    """Fork the worker, forward signals to it, report its exit; kill it if the client goes."""
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(s, signal.SIG_DFL)
    supervisor = os.getpid()
    worker = os.fork()
    if worker == 0:
        try:
            conn.close()
            _work(request, fds, supervisor)
        finally:
            os._exit(70)
    for fd in fds:                      # only the worker may hold the client's stdio
        os.close(fd)
    try:
        _send(conn, {"pid": worker})
    except OSError:
        pass
    lines = _Lines(conn)
    pidfd = _pidfd(worker)
    status = None
    while status is None:
        waitables = [conn] + ([pidfd] if pidfd is not None else [])
        try:
            ready, _, _ = select.select(waitables, [], [], None if pidfd is not None else 0.2)
        except InterruptedError:   # pragma: no cover
            ready = []
        if conn in ready or lines.pending():
            try:
                msg = lines.read()
            except (OSError, ValueError):
                msg = None
            if msg is None:
                # The client is gone (killed): so is its run.
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker, signal.SIGKILL)
                os.waitpid(worker, 0)
                return
            if "signal" in msg:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker, int(msg["signal"]))
        pid, raw = os.waitpid(worker, os.WNOHANG)
        if pid:
            status = raw
    code = os.waitstatus_to_exitcode(status)
    reply = {"exit": code} if code >= 0 else {"exit": 128 - code, "signal": -code}
    with contextlib.suppress(OSError):
        _send(conn, reply)


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):   # pragma: no cover - Linux < 5.3
        return None


def _entry_point(target: str):
    """The function ``package.module:function`` names, imported now (the worker's command)."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def die_with_parent(parent: int) -> None:
    """Have the kernel SIGKILL this forked process when its ``parent`` (pid) exits: no run outlives its caller.

    Linux's ``PR_SET_PDEATHSIG``; elsewhere a no-op. A parent that died before
    the call took effect ends this process at once.
    """
    import ctypes

    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(70)


def _work(request: dict, fds: list[int], supervisor: int) -> None:
    """Become the client's process (stdio, cwd, environment) and run its command."""
    die_with_parent(supervisor)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for fd, target in zip(fds, (0, 1, 2)):
        os.dup2(fd, target)
        os.close(fd)
    try:
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ[ENV_ENABLE] = "0"        # the worker trains itself
        os.chdir(request["cwd"])
        os.umask(int(request["umask"]))
        if request.get("affinity"):
            with contextlib.suppress(OSError, AttributeError):
                os.sched_setaffinity(0, request["affinity"])
    except Exception as exc:
        print(f"noisefloor: error: the fork-server worker could not take over the caller's process state "
              f"({exc})", file=sys.stderr, flush=True)
        os._exit(1)
    sys.argv = ["noisefloor", *request["argv"]]
    try:
        rc = _entry_point(request["target"])(request["argv"])
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
    except BaseException:
        import traceback

        traceback.print_exc()
        rc = 1
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(int(rc or 0))


if __name__ == "__main__":    # python -m noisefloor.forkserver stop
    if sys.argv[1:] == ["stop"]:
        print(f"asked {stop()} fork server(s) to exit", file=sys.stderr)
    else:
        sys.exit("usage: python -m noisefloor.forkserver stop")
