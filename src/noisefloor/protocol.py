"""The run protocol, written once for both training loops.

:func:`noisefloor.train.train_run` (one seed) and
:func:`noisefloor.batched.train_batch` (K seeds as one stacked model) differ in
how they step and evaluate a model. Everything around that lives here, so the
two record the same fields, resume the same way and write their files in the
same order:

- setup: :func:`set_up` (threads, device, seeding, data), the random streams
  (:func:`derive_seed`, :func:`generator`), :func:`initial_model`,
  :func:`make_optimizer`;
- a run's folder and checkpoint: :func:`open_run`, :func:`read_checkpoint`,
  :func:`resume`, :func:`write_checkpoint`;
- each epoch: :func:`record_epoch` (history or divergence), :func:`log_epoch`,
  and the fault tests' kill switch :func:`crash_point`;
- the end: :func:`metrics_record` (the one ``metrics.json`` record) and
  :func:`finish` (``history.csv``, then ``metrics.json``, then the checkpoints go).
"""

from __future__ import annotations

import io as _io
import math
import os
import platform
import random
import signal
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from . import __version__, io, pipeline
from .data import Splits, load_dataset
from .errors import NoisefloorError
from .models import BiLSTMClassifier
from .params import RunConfig, TrainParams
from .runfiles import CHECKPOINT_FILE, HISTORY_COLUMNS, HISTORY_FILE, RunRecord

#: Evaluation runs in chunks of this many examples, the same in both loops.
EVAL_CHUNK = 1000

#: Test-only fault injection: ``NOISEFLOOR_FAULT_KILL_AFTER_EPOCH=N`` makes a
#: training process SIGKILL itself right after epoch N's checkpoint is on disk,
#: so the fault tests crash a run at a known point instead of after a guessed sleep.
FAULT_ENV = "NOISEFLOOR_FAULT_KILL_AFTER_EPOCH"

Log = Callable[[str], None]


class DeviceError(NoisefloorError, RuntimeError):
    """The params ask for a device this machine does not have (one line naming ``train.device``)."""


def stderr_log(line: str) -> None:
    """The default progress log: one line to stderr, flushed (engines capture it into their log files)."""
    print(line, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- setup


def derive_seed(seed: int, stream: str) -> int:
    """An independent 63-bit seed for one random stream of a run.

    Weight init, data order and dropout each get their own generator, so e.g.
    a change of batch size (which changes how much dropout randomness a step
    draws) never changes the initial weights of the same seed.
    """
    state = np.random.SeedSequence([seed, zlib.crc32(stream.encode())]).generate_state(1, dtype=np.uint64)
    return int(state[0] >> np.uint64(1))


def generator(seed: int, stream: str) -> torch.Generator:
    """A CPU generator of its own for one random stream of a run (see :func:`derive_seed`)."""
    return torch.Generator().manual_seed(derive_seed(seed, stream))


#: The stream each source of randomness draws from (order's is named "data", as it was before sources
#: had names: every run keeps its bits).
STREAMS = {"init": "init", "order": "data", "dropout": "dropout"}


def source_seed(cfg: RunConfig, seed: int, source: str) -> int:
    """The seed of ``source``'s stream in ``cfg``'s run ``seed`` (the run's own, or held: RunConfig.stream_seed)."""
    return derive_seed(cfg.stream_seed(seed, source), STREAMS[source])


def source_generator(cfg: RunConfig, seed: int, source: str) -> torch.Generator:
    """A CPU generator of its own for ``source``'s stream in ``cfg``'s run ``seed``."""
    return generator(cfg.stream_seed(seed, source), STREAMS[source])


def seed_everything(seed: int, device_type: str = "cpu", deterministic: bool = True) -> None:
    """Seed Python, NumPy and torch, and make torch deterministic.

    TF32 is off because it changes matmul results with the hardware
    generation; cuDNN's autotuner is off because it picks kernels by timing.
    ``deterministic=False`` (the decomposition's numeric runs, on CUDA) lets
    torch pick non-deterministic kernels, as it does by default.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # required by deterministic cuBLAS
    if device_type == "cuda":
        torch.use_deterministic_algorithms(deterministic)
    else:
        # The same flag, minus the public call's import of the compiler stack
        # (torch._inductor: about 3 s, longer than a small run's training).
        torch._C._set_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def pick_device(requested: str) -> torch.device:
    """The device ``train.device`` names; ``auto`` is CUDA when present, else the CPU.

    Raises
    ------
    DeviceError
        ``cuda`` was asked for on a machine without it: the user's to fix, so
        one line naming the key, not a traceback.
    """
    if requested == "cuda" and not torch.cuda.is_available():
        raise DeviceError("train.device is 'cuda' but no CUDA device is available (use 'cpu' or 'auto')")
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(requested)


def make_optimizer(p: TrainParams, parameters, *, capturable: bool = False) -> torch.optim.Optimizer:
    """The configured optimiser; ``capturable`` (Adam/AdamW on CUDA) keeps its step count on the device."""
    extra = {"capturable": True} if capturable else {}
    if p.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=p.lr, weight_decay=p.weight_decay, **extra)
    if p.optimizer == "adamw":
        return torch.optim.AdamW(parameters, lr=p.lr, weight_decay=p.weight_decay, **extra)
    if p.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=p.lr, momentum=p.momentum, weight_decay=p.weight_decay)
    raise ValueError(f"unknown optimizer {p.optimizer!r}")


def epoch_lr(p: TrainParams, epoch: int) -> float:
    """The learning rate of epoch ``epoch`` (0-based): ``lr`` throughout, or along a half cosine from ``lr`` at the
    first epoch towards 0 after the last (``lr_schedule: cosine``). A function of the epoch alone, so a run that
    resumes from a checkpoint sets the same rate as one that never stopped."""
    if p.lr_schedule == "cosine":
        return p.lr * 0.5 * (1.0 + math.cos(math.pi * epoch / p.epochs))
    return p.lr


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def initial_model(cfg: RunConfig, seed: int, row_size: int, n_classes: int) -> BiLSTMClassifier:
    """Seed ``seed``'s model with its initial weights, drawn from their own stream.

    Both loops build every seed's model here, which is what makes a batched
    seed start from exactly the weights of its single-seed run.
    """
    torch.manual_seed(source_seed(cfg, seed, "init"))
    return BiLSTMClassifier.from_params(cfg.model, row_size, n_classes)


@dataclass(frozen=True)
class Setup:
    """What a training call works with once :func:`set_up` has run.

    Attributes
    ----------
    device : torch.device
    splits : Splits
        The data, held as tensors on ``device``.
    sizes : dict
        ``n_train``, ``n_val``, ``n_test``: recorded with every run.
    t_start : float
        ``time.perf_counter()`` when the call began (for ``wall_time_s``).
    """

    device: torch.device
    splits: Splits
    sizes: dict[str, int]
    t_start: float


def set_up(cfg: RunConfig, seed: int, splits: Splits | None = None) -> Setup:
    """Fix the thread count, pick the device, seed everything, and put the data on the device.

    The thread count comes from the params because it is part of a run's
    identity: 1 and 2 intra-op threads give different bits on CPU.
    ``splits`` saves reloading the data when one process trains several runs.
    """
    t_start = time.perf_counter()
    torch.set_num_threads(cfg.train.threads)
    device = pick_device(cfg.train.device)
    seed_everything(seed, device.type, cfg.deterministic)
    if splits is None:
        splits = load_dataset(cfg.data, cfg.stream_seed(seed, "data"))
    return Setup(device, splits.to(device), splits.sizes(), t_start)


# --------------------------------------------------------------------------- a run's folder and checkpoint


@dataclass
class Run:
    """One (config, seed) run: its folder and its progress so far.

    Attributes
    ----------
    seed : int
    out_dir : Path
        Receives ``metrics.json``, ``history.csv`` and, while the run is under
        way, ``checkpoint.pt``.
    tag : str
        ``[config seed=S]``, the prefix of the run's log lines.
    history : list of dict
        One entry per finished epoch (the columns of ``history.csv``).
    status : {"ok", "diverged"}
    diverged_at : int or None
        The epoch whose loss was not finite.
    train_loss : float
        The last epoch's training loss; a diverged run's record reports it.
    resumed_from : int or None
        The epoch of the checkpoint this run continued from.
    """

    seed: int
    out_dir: Path
    tag: str
    history: list[dict] = field(default_factory=list)
    status: str = "ok"
    diverged_at: int | None = None
    train_loss: float = math.nan
    resumed_from: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def checkpoint(self) -> Path:
        return self.out_dir / CHECKPOINT_FILE


def open_run(cfg: RunConfig, seed: int, out_dir: str | os.PathLike) -> Run:
    """The run (``cfg``, ``seed``) in ``out_dir``, which is created if missing."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return Run(int(seed), out_dir, f"[{cfg.name} seed={seed}]")


def write_checkpoint(run: Run, cfg: RunConfig, epoch: int, **state) -> None:
    """Save ``run`` after ``epoch`` atomically, with the loop's own ``state`` (model, optimiser, RNGs).

    Holds everything needed to continue bit-identically, in a format that
    loads with ``torch.load(weights_only=True)``; the config hash and seed say
    whose checkpoint it is.
    """
    state = {"config_hash": cfg.config_hash, "seed": run.seed, "epoch": epoch,
             "history": [[h[c] for c in HISTORY_COLUMNS] for h in run.history], **state}
    buf = _io.BytesIO()
    torch.save(state, buf)
    io.write_bytes(run.checkpoint, buf.getvalue())


def read_checkpoint(run: Run, cfg: RunConfig, log: Log | None = None) -> dict | None:
    """``run``'s checkpoint when it is one of this (config, seed), else None; ``history`` as epoch dicts.

    A checkpoint of another config or seed (a reused folder) is ignored, with
    a line to ``log`` when one is given.
    """
    if not run.checkpoint.exists():
        return None
    ckpt = torch.load(run.checkpoint, map_location="cpu", weights_only=True)
    if ckpt.get("config_hash") != cfg.config_hash or ckpt.get("seed") != run.seed:
        if log is not None:
            log(f"{run.tag} ignoring a checkpoint of another config or seed")
        return None
    ckpt["history"] = [dict(zip(HISTORY_COLUMNS, row)) for row in ckpt["history"]]
    return ckpt


def resume(run: Run, ckpt: dict) -> int:
    """Take ``ckpt``'s history into ``run``; returns the epoch it continues after."""
    run.history = ckpt["history"]
    run.resumed_from = int(ckpt["epoch"])
    return run.resumed_from


# --------------------------------------------------------------------------- each epoch


def record_epoch(run: Run, epoch: int, epochs: int, train_loss: float, val_loss: float, val_acc: float,
                 time_s: float, log: Log) -> bool:
    """Add ``epoch`` (1-based) to ``run``'s history, or mark the run diverged; returns whether it goes on.

    Divergence is a result, not a crash: a non-finite training or validation
    loss stops the run and is recorded. Checked once per epoch, on the
    epoch's loss sum (a NaN anywhere in the epoch reaches it), because a
    per-step check would sync the GPU every step.
    """
    run.train_loss = train_loss
    if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
        run.status, run.diverged_at = "diverged", epoch
        log(f"{run.tag} epoch {epoch}/{epochs}: loss is {train_loss} (validation {val_loss}); stopping: diverged")
        return False
    run.history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "val_acc": val_acc,
                        "time_s": time_s})
    return True


def log_epoch(run: Run, epochs: int, log: Log, note: str = "") -> None:
    """The progress line of ``run``'s last recorded epoch; ``note`` goes inside its closing parenthesis."""
    h = run.history[-1]
    log(f"{run.tag} epoch {h['epoch']}/{epochs}  train_loss {h['train_loss']:.4f}  "
        f"val_loss {h['val_loss']:.4f}  val_acc {100 * h['val_acc']:.2f}%  ({h['time_s']:.1f} s{note})")


def crash_point(epoch: int) -> None:
    """Die here, as a crash would, when the fault-injection switch names this epoch."""
    if os.environ.get(FAULT_ENV) == str(epoch):
        os.kill(os.getpid(), signal.SIGKILL)


# --------------------------------------------------------------------------- the end: one record, the outputs


def library_versions() -> dict[str, str]:
    return {"python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "noisefloor": __version__}


def slurm_job_id() -> str | None:
    """The id of the Slurm job this process runs in, or None outside Slurm.

    Recorded per run so a result can be traced to its scheduler job (logs,
    ``sacct`` accounting) and a test can prove a run went through Slurm. Kept
    as text: it is an identifier, and Slurm also sets it inside array tasks.
    A run resumed in a later job records the job that finished it.
    """
    return os.environ.get("SLURM_JOB_ID") or None


def _finite_or_none(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def metrics_record(cfg: RunConfig, run: Run, setup: Setup, *, test: tuple[float, float] | None,
                   train_step: str, batch_seeds: Sequence[int] | None = None) -> dict:
    """The content of ``run``'s ``metrics.json``, the same fields from both loops.

    Parameters
    ----------
    cfg : RunConfig
    run : Run
        A run whose training has ended.
    setup : Setup
    test : (loss, accuracy) or None
        The test-set evaluation (reported, never used for choices); ignored
        for a diverged run.
    train_step : str
        How steps ran (``eager``; the batched loop's ``static`` or ``graph``).
    batch_seeds : sequence of int, optional
        The seeds trained together with this one (a batched run only).

    Returns
    -------
    dict
        The run's identity (config, seed, config hash, resolved config, the
        run code's fingerprint), its results, and where and how it ran. A
        finished run's last-epoch numbers come from its history, not the
        loop's variables: a run resumed after its last epoch trains no epoch
        and must report the same numbers. A diverged run reports no validation
        or test numbers, and the training loss of its last epoch if finite.
    """
    tp, history = cfg.train, run.history
    if run.ok:
        train_loss, val_loss, val_acc = (history[-1][k] for k in ("train_loss", "val_loss", "val_acc"))
        test_loss, test_acc = test
    else:
        train_loss, val_loss = run.train_loss, None
        val_acc = test_loss = test_acc = None
    best = max(history, key=lambda h: h["val_acc"]) if history else None
    record = {
        "config": cfg.name, "seed": run.seed, "config_hash": cfg.config_hash, "status": run.status,
        "val_acc": _finite_or_none(val_acc), "val_loss": _finite_or_none(val_loss),
        "test_acc": _finite_or_none(test_acc), "test_loss": _finite_or_none(test_loss),
        "train_loss": _finite_or_none(train_loss),
        "best_val_acc": best["val_acc"] if best else None, "best_epoch": best["epoch"] if best else None,
        "epochs": tp.epochs, "epochs_run": len(history), "diverged_at_epoch": run.diverged_at,
        "resumed_from_epoch": run.resumed_from,
        "wall_time_s": time.perf_counter() - setup.t_start,
        "device": setup.device.type, "threads": tp.threads, "train_step": train_step, **setup.sizes,
        "slurm_job_id": slurm_job_id(), "code_fingerprint": pipeline.run_code_fingerprint(),
        "versions": library_versions(), "resolved_config": cfg.as_dict(),
        "sources": "+".join(cfg.sources),
    }
    if batch_seeds is not None:
        record.update(seed_batch=tp.seed_batch, batch_seeds=list(batch_seeds))
    return record


def skip_run(cfg: RunConfig, seed: int, out_dir, note: str) -> dict:
    """Record a run that cannot run here (status ``skipped``, ``note`` why): its record, an empty history."""
    out = Path(out_dir)
    record = {"config": cfg.name, "seed": seed, "config_hash": cfg.config_hash, "status": "skipped", "note": note,
              "wall_time_s": 0.0, "code_fingerprint": pipeline.run_code_fingerprint(),
              "resolved_config": cfg.as_dict(), "sources": "+".join(cfg.sources)}
    io.write_text(out / HISTORY_FILE, history_csv([]))
    RunRecord.from_dict(record).write(out)
    return record


def history_csv(history: list[dict]) -> str:
    """``history.csv``'s text; floats as ``repr`` so they read back bit for bit."""
    lines = [",".join(HISTORY_COLUMNS)]
    lines += [",".join(repr(h[c]) if isinstance(h[c], float) else str(h[c]) for c in HISTORY_COLUMNS)
              for h in history]
    return "\n".join(lines) + "\n"


def finish(cfg: RunConfig, runs: Sequence[Run], setup: Setup, tests: Sequence[tuple[float, float] | None], *,
           train_step: str, batch_seeds: Sequence[int] | None = None) -> list[dict]:
    """Write every run's outputs and return their metrics records (see :func:`metrics_record`).

    Per run, ``history.csv`` first and ``metrics.json`` last, each atomically:
    a ``metrics.json`` marks a finished run for both engines. The checkpoints
    go (unless ``train.keep_checkpoint``) only once every run of the call is
    written, so a process killed in between resumes instead of retraining.
    """
    records = [metrics_record(cfg, run, setup, test=test, train_step=train_step, batch_seeds=batch_seeds)
               for run, test in zip(runs, tests)]
    for run, record in zip(runs, records):
        io.write_text(run.out_dir / HISTORY_FILE, history_csv(run.history))
        RunRecord.from_dict(record).write(run.out_dir)
    if not cfg.train.keep_checkpoint:
        for run in runs:
            run.checkpoint.unlink(missing_ok=True)
    return records
