"""Executing (config, seed) runs: the one interface of every command that trains.

What a run executes (the built-in model, :func:`noisefloor.train.train_seeds`,
or the user's program, :func:`noisefloor.program.run`) and where (in this
process, in a process forked from the warm fork server, or in a pool of worker
processes) is decided here; the CLI only parses arguments.

- :func:`run` trains (config, seeds) pairs and yields each run's record once
  it is written. The work comes in units: one seed, or a block of
  ``train.seed_batch`` seeds trained as one model (the blocks
  :func:`~noisefloor.train.train_seeds` makes). With ``jobs`` > 1 and more
  than one unit, the units go to ``jobs`` worker processes forked from this
  one. A run's numbers depend only on its (config, seed) and its own thread
  count (``train.threads``, which each run sets), never on the pool: the
  default pool (:func:`default_jobs`) is as many workers as the CPUs hold
  runs of that many threads, so none is oversubscribed.
- Train ahead (``staging``): DVC runs one stage at a time, each training one
  run. Given a staging folder, a call keeps ``jobs`` runs training: besides
  its own, the next runs DVC's per-run stages will ask for (missing or
  stale, in ``dvc.yaml``'s order: :func:`stage_runs`), each in a detached
  process of its own that trains it into ``<staging>/<identity hash>/``
  (the hash of its config, config hash, seed and code fingerprint) holding
  that folder's lock, and outlives the call. When DVC reaches such a run's
  stage, its call waits for the lock if the run is still training, then
  moves the finished run into place instead of training. So the runs train
  while DVC goes from stage to stage; a staged run of another hash is never
  used, and is removed.
- The one-stage trainers' loops (:func:`train_missing`, :func:`train_sweep`,
  :func:`train_rounds`), ``check-determinism``'s two trainings
  (:func:`train_twice`), and handing a ``noisefloor train`` call to the fork
  server (:func:`hand_over`).

Outputs keep the run protocol's order (``metrics.json`` last, atomically) in a
worker as in this process, and a staged run moves into place as one folder
rename. A killed worker or a killed pool leaves each unfinished run's
checkpoint where that run's next training resumes it: its run folder, or its
staging folder (moved into place with it, or trained ahead again). A run
trained ahead is not stopped with the call that started it: it finishes (one
run per process) into its staging folder, where a later call takes it.

Pool workers and runs trained ahead are forked from this process, as the fork
server forks its own, so this process must not have run a torch op (no thread
pool, RNG or CUDA state for a child to inherit). The commands never do: before
forking they read only params and run records, and each child loads the data
itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import os
import shutil
import signal
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

from .errors import NoisefloorError

Log = Callable[[str], None]

#: In a staged run's folder: its training log, shown by the stage that takes the run.
STAGED_LOG = "train.log"
#: In a staged run's folder: locked while a process trains the run.
STAGED_LOCK = ".lock"
#: The names train-ahead gives the folders in a staging folder (what it may remove there).
_STAGED_NAME_LENGTH = 16
_MOVED_ASIDE = ".old-"


class RunnerError(NoisefloorError, RuntimeError):
    """A training process died, or a staging folder cannot be used (one line naming the run or folder)."""


# --------------------------------------------------------------------------- how many at once, and where


def available_cpus() -> int:
    """The CPUs this process may run on: its affinity (a Slurm allocation's, taskset's), else the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):   # pragma: no cover - not Linux
        return os.cpu_count() or 1


def default_jobs(threads_per_run: int, cpus: int | None = None) -> int:
    """How many runs of ``threads_per_run`` threads fit on ``cpus`` (default: :func:`available_cpus`); at least 1."""
    return max(1, (available_cpus() if cpus is None else cpus) // threads_per_run)


def jobs_for(params, jobs: int | None) -> int:
    """``jobs`` when given, else :func:`default_jobs` for the params' most threaded config."""
    if jobs is not None:
        return jobs
    return default_jobs(max(params.resolve(c).threads for c in params.config_names))


def hand_over(params, entry: str, argv: Sequence[str]) -> int | None:
    """Run a whole ``noisefloor train`` call in a process forked from the warm fork server.

    A warm server saves the call the ~5 s of importing torch; the call runs
    the same code either way (:mod:`noisefloor.forkserver`). A user's program
    imports what it needs itself, so its calls run here.

    Parameters
    ----------
    params : Params
    entry : str
        The worker's entry point, ``package.module:function`` (the CLI's main).
    argv : sequence of str
        The call's arguments, as the entry point takes them.

    Returns
    -------
    int or None
        The call's exit status, or None when it should run in this process.
    """
    from . import forkserver

    if forkserver.enabled() and params.program.builtin:
        return forkserver.run(entry, list(argv))
    return None


# --------------------------------------------------------------------------- units of work


@dataclass(frozen=True)
class _Unit:
    """What one process trains at a time: ``seeds`` of ``config`` into ``root`` (laid out as a runs folder).

    ``check``: the seed whose run ``program.check_determinism`` repeats, if
    among ``seeds``.
    """

    config: str
    seeds: tuple[int, ...]
    root: Path
    check: int | None = None

    @property
    def tag(self) -> str:
        return f"[{self.config} seed={','.join(map(str, self.seeds))}]"


def _units(params, config: str, seeds, root) -> list[_Unit]:
    """``config``'s seeds as units: one seed each, or blocks of ``train.seed_batch`` (those of train_seeds)."""
    seeds = list(dict.fromkeys(seeds))
    k = params.resolve(config).seed_batch
    blocks = [tuple(seeds[i:i + k]) for i in range(0, len(seeds), k)]
    return [_Unit(config, block, Path(root), _check(params, config, block)) for block in blocks]


def _check(params, config: str, seeds) -> int | None:
    """The seed among ``seeds`` whose run ``program.check_determinism`` repeats, or None."""
    from .determinism import checked_run

    checked = checked_run(params)
    return checked[1] if checked is not None and checked[0] == config and checked[1] in seeds else None


def _records(params, unit: _Unit, cache: dict, log: Log) -> Iterator[dict]:
    """Train ``unit``; yield each run's record once its files are written (the repeat's, if it has one, after)."""
    from .aggregate import run_dir

    cfg = params.resolve(unit.config)
    if params.program.builtin:
        from .train import train_seeds

        records = train_seeds(cfg, unit.seeds, unit.root, splits=_splits(cfg, cache), log=log)
    else:
        from . import program

        records = (program.run(cfg, s, run_dir(unit.root, cfg.name, s), metric=params.stats.metric, log=log)
                   for s in unit.seeds)
    for m in records:
        if m["seed"] == unit.check:
            m = _with_repeat(params, cfg, m, run_dir(unit.root, cfg.name, m["seed"]), cache, log)
        yield m


def _splits(cfg, cache: dict):
    """``cfg``'s data, loaded once per process (None for a config whose seed re-splits it: each run loads its own)."""
    if "data" in cfg.sources:
        return None
    if cfg.data not in cache:
        from .data import load_dataset

        cache[cfg.data] = load_dataset(cfg.data)
    return cache[cfg.data]


def _with_repeat(params, cfg, first: dict, folder: Path, cache: dict, log: Log) -> dict:
    """program.check_determinism: the run trained once more in ``folder/repeat`` (removed after); the run's
    record with the comparison, written over the first (a record without it is not a finished run:
    :func:`noisefloor.aggregate.finished_record`)."""
    from .determinism import compare
    from .runfiles import RunRecord

    seed = first["seed"]
    scratch = folder / "repeat"
    try:
        second = next(_records(params, _Unit(cfg.name, (seed,), scratch), cache, log))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    found = compare(cfg.name, seed, first, second)
    log(f"[{cfg.name} seed={seed}] determinism: {found.sentence()}")
    record = {**first, "repeat_identical": found.identical, "repeat_note": found.sentence()}
    RunRecord.from_dict(record).write(folder)
    return record


# --------------------------------------------------------------------------- executing units


def _execute(params, units: list[_Unit], jobs: int, log: Log) -> Iterator[tuple[_Unit, dict]]:
    """Train ``units``, ``jobs`` at a time; yield (unit, record) as each run is written.

    A failure is raised once the units under way have ended (in one process:
    at once, as before the pool).
    """
    if jobs == 1 or len(units) <= 1:
        cache: dict = {}
        for unit in units:
            for m in _records(params, unit, cache, log):
                yield unit, m
        return
    workers = min(jobs, len(units))
    log(f"training {sum(len(u.seeds) for u in units)} runs, {workers} at a time (each in a process of its own)")
    failure = None
    for unit, result in _pool(params, units, workers, log):
        if not isinstance(result, BaseException):
            yield unit, result
        elif failure is None:
            failure = result
    if failure is not None:
        raise failure


def _pool(params, units: list[_Unit], jobs: int, log: Log) -> Iterator[tuple[_Unit, dict | BaseException]]:
    """Train ``units`` in ``jobs`` worker processes forked from this one; yield (unit, record or its failure).

    Each worker takes the next unit when it is free; a worker that dies fails
    its unit. After a failure no further unit starts. Leaving early (an
    exception, the generator closed) kills the workers still training: their
    checkpoints stay for the next attempt.
    """
    from multiprocessing.connection import Pipe, wait

    from .forkserver import preload

    if params.program.builtin:
        preload()                # torch imported once, here, not once per worker (no op runs: safe to fork)
    parent = os.getpid()
    workers: dict = {}           # connection -> [pid, index of the unit it trains or None]
    todo = list(range(len(units)))[::-1]
    stop = False
    try:
        for _ in range(jobs):
            sys.stdout.flush()
            sys.stderr.flush()
            ours, theirs = Pipe()
            pid = os.fork()
            if pid == 0:                                    # pragma: no cover - runs in the worker
                ours.close()
                for other in workers:
                    other.close()
                _worker(params, units, theirs, parent, log)
            theirs.close()
            workers[ours] = [pid, None]
        while True:
            for conn, w in workers.items():
                if w[1] is None and todo and not stop:
                    w[1] = todo.pop()
                    conn.send(w[1])
            busy = [conn for conn, w in workers.items() if w[1] is not None]
            if not busy:
                break
            for conn in wait(busy):
                pid, i = workers[conn]
                try:
                    kind, value = conn.recv()
                except EOFError:                             # the worker died: so did its unit
                    _, status = os.waitpid(pid, 0)
                    del workers[conn]
                    conn.close()
                    kind, value = "failed", RunnerError(f"{units[i].tag} its training process "
                                                        f"{_ended(status)}; a rerun resumes it")
                if kind == "record":
                    yield units[i], value
                    continue
                if conn in workers:
                    workers[conn][1] = None
                if kind == "failed":
                    stop = True
                    yield units[i], value
    finally:
        for conn, (pid, i) in workers.items():
            with contextlib.suppress(OSError):
                if i is None:
                    conn.send(None)                          # no more work: the worker exits
                else:
                    os.kill(pid, signal.SIGKILL)             # cut short: its checkpoint stays
            conn.close()
        for pid, _ in workers.values():
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def _ended(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    return f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"


def _worker(params, units: list[_Unit], conn, parent: int, log: Log) -> None:
    """A pool's worker: train the units the parent names until it sends None, reporting every record."""
    from .forkserver import die_with_parent

    die_with_parent(parent)
    status = 0
    try:
        cache: dict = {}
        while (i := conn.recv()) is not None:
            try:
                for m in _records(params, units[i], cache, log):
                    conn.send(("record", m))
                conn.send(("done", None))
            except NoisefloorError as exc:                    # the user's to fix: its one line travels
                conn.send(("failed", exc))
            except Exception as exc:                          # a bug: its traceback goes to the log here
                traceback.print_exc()
                conn.send(("failed", RuntimeError(f"{units[i].tag} {type(exc).__name__}: {exc} "
                                                  "(its traceback is in the log above)")))
    except BaseException:                                     # the parent is gone, or an interrupt
        status = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(status)


# --------------------------------------------------------------------------- training


def _say(params, m: dict, log: Log, how: str = "") -> None:
    metric = params.stats.metric
    log(f"[{m['config']} seed={m['seed']}] {m['status']}: {metric}={m.get(metric)} ({m['wall_time_s']:.1f} s{how})")


def run(params, todo, runs_dir, *, jobs: int | None = None, staging=None, log: Log) -> Iterator[dict]:
    """Train the runs of ``todo`` into ``runs_dir``; yield each one's record once it is written.

    Parameters
    ----------
    params : Params
    todo : iterable of (config, seeds)
        The runs to train (a seed given twice is one run), whatever their state:
        an unfinished run resumes from its checkpoint.
    runs_dir : path
        The runs folder (``<runs>/<config>/seed<s>/``, :func:`noisefloor.aggregate.run_dir`).
    jobs : int, optional
        Runs trained at once, each in a process of its own (default :func:`jobs_for`).
    staging : path, optional
        Train ahead (module docstring): keep ``jobs`` runs training by starting
        the next missing runs of :func:`stage_runs` into here, and take a run of
        ``todo`` from here when one was (waiting for it while it trains). On the
        file system of ``runs_dir``, outside it.
    log : callable
        Receives progress lines, and one line per finished run.

    Yields
    ------
    dict
        Each run's record (its ``metrics.json``), in the order they finish.
    """
    jobs = jobs_for(params, jobs)
    todo = [(config, list(dict.fromkeys(seeds))) for config, seeds in todo]
    if staging is not None:
        staging = _staging_folder(staging, runs_dir)
        mine = [(config, seed) for config, seeds in todo for seed in seeds]
        missing = _missing_stage_runs(params, runs_dir)
        _clean(staging, keep={_key(params, c, s) for c, s in missing + mine})
        # A run of this call finished or training in staging is taken, not trained: it needs no slot of its own.
        to_train = [r for r in mine if not _staged(params, staging, *r)]
        room = jobs - len(_units_of(params, to_train, runs_dir)) - _training(staging)
        _train_ahead(params, _next_runs(params, missing, set(mine), staging, room), staging, log)
        for config, seeds in todo:
            for seed in list(seeds):
                m = _claim(params, config, seed, runs_dir, staging, log)
                if m is not None:
                    seeds.remove(seed)
                    _say(params, m, log, f", trained ahead; taken from {staging}")
                    yield m
    # One config under two names (a program may not repeat itself, so the built-in model's only): the other's
    # finished run is this one.
    twins = {c: [o for o in names if o != c] for names in params.same_configs for c in names} \
        if params.program.builtin else {}
    for config, seeds in todo:
        for seed in list(seeds) if twins.get(config) else ():
            m = _copy_twin(params, config, seed, twins[config], runs_dir, log)
            if m is not None:
                seeds.remove(seed)
                yield m
    for _, m in _execute(params, _units_of(params, [(c, s) for c, ss in todo for s in ss], runs_dir), jobs, log):
        _say(params, m, log)
        yield m


def _copy_twin(params, config: str, seed: int, twins: list[str], runs_dir, log: Log) -> dict | None:
    """When one of ``twins`` (this config under another name: the same config hash) has a finished, current run
    at ``seed``, that run is this one (training is deterministic): its files copied, its record renamed
    (``same_as`` names the other); None when none has."""
    from .aggregate import finished_record, run_dir
    from .runfiles import METRICS_FILE

    for other in twins:
        source = run_dir(runs_dir, other, seed)
        m = finished_record(params, source, other, seed)
        if m is None or m.status != "ok":
            continue
        dest = run_dir(runs_dir, config, seed)
        dest.mkdir(parents=True, exist_ok=True)
        for f in source.iterdir():
            if f.is_file() and f.name != METRICS_FILE:
                shutil.copy2(f, dest / f.name)
        record = dataclasses.replace(m, config=config, values={**m.values, "same_as": other})
        record.write(dest)                      # last: the record marks the run finished
        log(f"{config} seed {seed}: the same config as {other} (the same config hash): its finished run is this "
            "one, copied, not retrained")
        return record.to_dict()
    return None


def _units_of(params, runs: list[tuple[str, int]], root) -> list[_Unit]:
    """The units that train ``runs`` (config, seed) into ``root``."""
    from .adaptive import by_config

    return [u for config, seeds in by_config(runs).items() for u in _units(params, config, seeds, root)]


def stage_runs(params) -> list[tuple[str, int]]:
    """The runs DVC trains one stage each (``train_noise``, then ``train_signal``), in ``dvc.yaml``'s order.

    The baseline at the noise seeds, then each named variant at the signal
    seeds; a sweep's and the decomposition's runs are trained by one stage each.
    """
    from .aggregate import group_folder

    return [(c, s) for c, s in params.runs() if group_folder(c) is None]


def _missing_stage_runs(params, runs_dir) -> list[tuple[str, int]]:
    """:func:`stage_runs` whose run in ``runs_dir`` is missing, unfinished or stale, in their order."""
    from .aggregate import stale_seeds
    from .adaptive import by_config

    runs = stage_runs(params)
    stale = {(c, s) for c, seeds in by_config(runs).items() for s in stale_seeds(params, runs_dir, c, seeds)}
    return [r for r in runs if r in stale]


# --------------------------------------------------------------------------- the staging folder


def _next_runs(params, missing: list[tuple[str, int]], mine: set, staging: Path, room: int) -> list[tuple[str, int]]:
    """Up to ``room`` runs to train ahead: the ``missing`` stage runs after the last of ``mine`` (the call's own
    runs) that are neither finished nor training in ``staging``."""
    order = stage_runs(params)
    last = max((i for i, r in enumerate(order) if r in mine), default=None)
    later = set() if last is None else set(order[last + 1:])
    out = []
    for config, seed in missing:
        if len(out) >= room:
            break
        if (config, seed) in later and (config, seed) not in mine and not _staged(params, staging, config, seed):
            out.append((config, seed))
    return out


def _staged(params, staging: Path, config: str, seed: int) -> bool:
    """Whether (``config``, ``seed``) is finished in ``staging``, or training there now."""
    from .aggregate import finished_record, run_dir

    entry = staging / _key(params, config, seed)
    return _locked_by_another(entry) or finished_record(params, run_dir(entry, config, seed), config, seed) is not None


def _train_ahead(params, runs: list[tuple[str, int]], staging: Path, log: Log) -> None:
    """Start each of ``runs`` training into its staging folder, in a process of its own that outlives this call.

    The folder's lock is taken here, before that process exists, and it holds
    the lock until it ends: a later call never finds the run unlocked before
    it is finished, or its training has died.
    """
    import fcntl

    from .forkserver import preload

    if runs and params.program.builtin:
        preload()                # torch imported once, here (no op runs: safe to fork)
    for config, seed in runs:
        entry = staging / _key(params, config, seed)
        entry.mkdir(parents=True, exist_ok=True)
        fd = os.open(entry / STAGED_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:                   # another process trains it already
            os.close(fd)
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:                                        # pragma: no cover - runs in the child
            _detached(params, _Unit(config, (seed,), entry, _check(params, config, (seed,))), log)
        os.close(fd)
        os.waitpid(pid, 0)                        # (the child exits at once; its own child trains)
        log(f"[{config} seed={seed}] training ahead into {entry}")


def _detached(params, unit: _Unit, log: Log) -> None:
    """In a forked child: leave the caller's session, fork the process that trains ``unit`` (it keeps the
    inherited lock) with its output going to the staging folder's log, and exit."""
    status = 1
    try:
        os.setsid()                               # no signal meant for the caller's job reaches it
        if os.fork() == 0:
            out = os.open(unit.root / STAGED_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            os.dup2(out, 1)
            os.dup2(out, 2)
            for _ in _records(params, unit, {}, log):      # (its stage says the result when it takes it)
                pass
        status = 0
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(status)


def _locked_by_another(entry: Path) -> bool:
    """Whether a process trains the staged run in ``entry`` now (it holds the folder's lock)."""
    import fcntl

    try:
        fd = os.open(entry / STAGED_LOCK, os.O_RDWR)
    except (FileNotFoundError, NotADirectoryError):
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def _training(staging: Path) -> int:
    """How many staged runs are training now."""
    return sum(1 for entry in staging.iterdir() if _locked_by_another(entry)) if staging.is_dir() else 0


@contextlib.contextmanager
def _lock(entry: Path):
    """Hold ``entry``'s lock, waiting while a process trains the run there."""
    import fcntl

    fd = os.open(entry / STAGED_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _key(params, config: str, seed: int) -> str:
    """A staged run's folder name: the hash of its identity (config, config hash, seed, code fingerprint)."""
    cfg = params.resolve(config)
    blob = json.dumps([config, cfg.config_hash, int(seed), cfg.code_fingerprint])
    return hashlib.sha256(blob.encode()).hexdigest()[:_STAGED_NAME_LENGTH]


def _staging_folder(staging, runs_dir) -> Path:
    """``staging`` as a path, refused inside the runs folder (a folder other stages hash as a dependency)."""
    staging, runs = Path(staging).resolve(), Path(runs_dir).resolve()
    if staging == runs or runs in staging.parents:
        raise RunnerError(f"--staging-dir {staging}: inside the runs folder {runs} (put it beside it, e.g. "
                          "results/.staged)")
    return staging


def _clean(staging: Path, keep: set[str]) -> None:
    """Remove the staged runs not named in ``keep`` (another identity: never used), and runs left half moved.

    Only names train-ahead gives are touched, and none while it trains (a
    later call removes it): whatever else is in the folder stays.
    """
    if not staging.is_dir():
        return
    for entry in staging.iterdir():
        ours = (len(entry.name) == _STAGED_NAME_LENGTH and all(c in "0123456789abcdef" for c in entry.name)) or \
            entry.name.startswith(_MOVED_ASIDE)
        if ours and entry.name not in keep and entry.is_dir() and not entry.is_symlink() and \
                not _locked_by_another(entry):
            shutil.rmtree(entry)


def _claim(params, config: str, seed: int, runs_dir, staging: Path, log: Log) -> dict | None:
    """Take (``config``, ``seed``)'s staged run into its run folder; its record when it was finished, else None.

    A run still training there is waited for. A finished staged run replaces
    whatever the run folder holds. An unfinished one (its training was
    killed) moves in only when the run folder holds no progress of its own,
    and is then resumed there by the training that follows; otherwise it is
    dropped. Either way its staging folder goes.
    """
    from .aggregate import finished_record, run_dir

    entry = staging / _key(params, config, seed)
    if not entry.is_dir():
        return None
    if _locked_by_another(entry):
        log(f"[{config} seed={seed}] still training ahead: waiting for it")
    with _lock(entry):
        staged, folder = run_dir(entry, config, seed), run_dir(runs_dir, config, seed)
        record = finished_record(params, staged, config, seed)
        if staged.is_dir() and (record is not None or not _in_progress(folder)):
            history = (entry / STAGED_LOG).read_text() if (entry / STAGED_LOG).is_file() else ""
            _move_into_place(staged, folder, staging)
            for line in history.splitlines():      # the run's own training log, into this stage's
                log(line)
            if record is None:
                log(f"[{config} seed={seed}] an unfinished run trained ahead: resuming it")
        shutil.rmtree(entry)
    return None if record is None else record.to_dict()


def _in_progress(folder: Path) -> bool:
    """Whether a run folder holds more than a finished run's files (a checkpoint, a program's outputs)."""
    from .runfiles import HISTORY_FILE, METRICS_FILE

    return folder.is_dir() and any(f.name not in (METRICS_FILE, HISTORY_FILE) for f in folder.iterdir())


def _move_into_place(staged: Path, folder: Path, staging: Path) -> None:
    """Replace ``folder`` with ``staged`` by renames (the run appears whole); the old folder goes.

    Killed between the two renames, the run folder is missing (not finished)
    and the staged run is still staged: the next attempt takes it again.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    aside = Path(tempfile.mkdtemp(prefix=_MOVED_ASIDE, dir=staging))
    try:
        if folder.exists():
            os.replace(folder, aside / folder.name)
        os.replace(staged, folder)
    except OSError as exc:
        if exc.errno == errno.EXDEV:
            raise RunnerError(f"--staging-dir {staging}: on another file system than {folder.parent} (a staged run "
                              "is moved into place, not copied)") from None
        raise
    finally:
        shutil.rmtree(aside, ignore_errors=True)


# --------------------------------------------------------------------------- the commands' loops


def train_missing(params, phase: str, todo, runs_dir, *, jobs: int | None = None, log: Log) -> int:
    """Train the runs of ``todo`` (config, seeds) that are missing, unfinished or stale; how many were trained.

    One line says how many trained and how many were done already
    (``<phase>: N run(s) trained, M already done``).
    """
    from .aggregate import stale_seeds

    todo = [(config, list(dict.fromkeys(seeds))) for config, seeds in todo]
    missing = [(config, stale_seeds(params, runs_dir, config, seeds)) for config, seeds in todo]
    trained = sum(1 for _ in run(params, [(c, ss) for c, ss in missing if ss], runs_dir, jobs=jobs, log=log))
    total = sum(len(seeds) for _, seeds in todo)
    label = "sweep: " if phase in ("search", "confirm") else ""
    log(f"{label}{phase}: {trained} run(s) trained, {total - trained} already done")
    return trained


def train_sweep(params, runs_dir, *, jobs: int | None = None, log: Log):
    """A sweep's missing runs, its search's then its confirmation's; returns the search's record
    (:func:`noisefloor.aggregate.sweep_record`; one saying so without a sweep)."""
    from .aggregate import sweep_record

    if params.sweep is not None:
        train_missing(params, "search", [(c, params.sweep.seeds) for c in params.sweep_configs], runs_dir,
                      jobs=jobs, log=log)
    # The search's runs are all in: its record knows the configs to confirm.
    record = sweep_record(params, runs_dir)
    if record.confirmed:
        train_missing(params, "confirm", [(c, params.sweep.confirm_seeds) for c in record.confirmed],
                      runs_dir, jobs=jobs, log=log)
    return record


def train_rounds(params, runs_dir, *, jobs: int | None = None, log: Log) -> str:
    """An adaptive experiment's rounds, each round's missing runs in turn, until none is left; why it stopped."""
    from . import adaptive

    tried = None
    while True:
        now = adaptive.plan(params, runs_dir)
        if not now.next_runs:
            return now.why_done
        if now.next_runs == tried:       # trained, yet still missing: never loop on a run that cannot finish
            raise adaptive.AdaptiveError(f"adaptive train: {len(tried)} run(s) left no metrics.json, e.g. "
                                         f"config={tried[0][0]} seed={tried[0][1]}; see its log")
        tried = now.next_runs
        round_ = 1 if now.result is None else len(now.result.added) + 1
        train_missing(params, f"adaptive round {round_}", list(adaptive.by_config(now.next_runs).items()), runs_dir,
                      jobs=jobs, log=log)


def train_twice(params, config: str, seed: int, *, jobs: int | None = None, log: Log):
    """Train (``config``, ``seed``) twice and another seed once in a scratch folder (removed after), ``jobs`` at
    a time; the comparison (:class:`noisefloor.determinism.Repeat`)."""
    from .determinism import compare

    other = next(s for s in [*params.seeds_for(config), *range(seed + 1, seed + 3)] if s != seed)
    with tempfile.TemporaryDirectory(prefix="noisefloor-determinism-") as scratch:
        units = [_Unit(config, (s,), Path(scratch) / name) for name, s in
                 (("first", seed), ("second", seed), ("other", other))]
        got = {unit.root.name: m for unit, m in _execute(params, units, jobs_for(params, jobs), log)}
    return compare(config, seed, got["first"], got["second"], got["other"])
