"""Train one (config, seed) run and write its metrics.

Reads top to bottom in phases: setup, data, model, resume, train loop,
final evaluation, outputs. Determinism contract: the same (config, seed) on the
same device type and thread count gives bit-identical metrics, also when the
run was killed and resumed from its last checkpoint.
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import random
import signal
import sys
import time
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from . import __version__, io
from .data import Splits, load_dataset
from .models import BiLSTMClassifier
from .params import RunConfig, TrainParams
from .runfiles import CHECKPOINT_FILE, HISTORY_COLUMNS, HISTORY_FILE, METRICS_FILE  # noqa: F401  (re-exported)

EVAL_CHUNK = 1000


# --------------------------------------------------------------------------- small pure helpers


def derive_seed(seed: int, stream: str) -> int:
    """An independent 63-bit seed for one random stream of a run.

    Weight init, data order and dropout each get their own generator, so e.g.
    a change of batch size (which changes how much dropout randomness a step
    draws) never changes the initial weights of the same seed.
    """
    state = np.random.SeedSequence([seed, zlib.crc32(stream.encode())]).generate_state(1, dtype=np.uint64)
    return int(state[0] >> np.uint64(1))


def seed_everything(seed: int, device_type: str = "cpu") -> None:
    """Seed Python, NumPy and torch, and make torch deterministic.

    TF32 is off because it changes matmul results with the hardware
    generation; cuDNN's autotuner is off because it picks kernels by timing.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # required by deterministic cuBLAS
    if device_type == "cuda":
        torch.use_deterministic_algorithms(True)
    else:
        # The same flag, minus the public call's import of the compiler stack
        # (torch._inductor: about 3 s, longer than a small run's training).
        torch._C._set_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def pick_device(requested: str) -> torch.device:
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but no CUDA device is available")
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


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on (x, y), in fixed chunks."""
    model.eval()
    loss_sum, correct = 0.0, 0
    for i in range(0, len(y), EVAL_CHUNK):
        logits = model(x[i:i + EVAL_CHUNK])
        loss_sum += nn.functional.cross_entropy(logits, y[i:i + EVAL_CHUNK], reduction="sum").item()
        correct += int((logits.argmax(dim=1) == y[i:i + EVAL_CHUNK]).sum())
    model.train()
    return loss_sum / len(y), correct / len(y)


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


# --------------------------------------------------------------------------- the run


#: Test-only fault injection: ``NOISEFLOOR_FAULT_KILL_AFTER_EPOCH=N`` makes a
#: training process SIGKILL itself right after epoch N's checkpoint is on disk,
#: so the fault tests crash a run at a known point instead of after a guessed sleep.
FAULT_ENV = "NOISEFLOOR_FAULT_KILL_AFTER_EPOCH"


def crash_point(epoch: int) -> None:
    """Die here, as a crash would, when the fault-injection switch names this epoch."""
    if os.environ.get(FAULT_ENV) == str(epoch):
        os.kill(os.getpid(), signal.SIGKILL)


def train_run(cfg: RunConfig, seed: int, out_dir: str | os.PathLike, *,
              splits: Splits | None = None, log: Callable[[str], None] | None = None) -> dict:
    """Train ``cfg`` with ``seed``; write ``metrics.json`` and ``history.csv`` to ``out_dir``.

    Parameters
    ----------
    cfg : RunConfig
        The resolved configuration (see :meth:`noisefloor.params.Params.resolve`).
    seed : int
        Fixes weight init, data order and dropout through three derived generators.
    out_dir : path
        Receives ``metrics.json``, ``history.csv`` and, while the run is under
        way, ``checkpoint.pt`` (one per finished epoch). A checkpoint left by an
        interrupted run of the same (config, seed) is resumed from.
    splits : Splits, optional
        Pre-loaded data (saves reloading when one process trains several runs).
    log : callable, optional
        Receives one progress line per epoch (default: stderr).

    Returns
    -------
    dict
        The metrics written to ``metrics.json``.
    """
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tp = cfg.train
    tag = f"[{cfg.name} seed={seed}]"
    t_start = time.perf_counter()

    # ---- setup: threads are part of a run's identity (1 and 2 threads give different bits)
    torch.set_num_threads(tp.threads)
    device = pick_device(tp.device)
    seed_everything(seed, device.type)

    # ---- data: fixed splits, held as tensors on the device
    if splits is None:
        splits = load_dataset(cfg.data)
    sizes = splits.sizes()
    splits = splits.to(device)
    n_train = sizes["n_train"]
    data_gen = torch.Generator().manual_seed(derive_seed(seed, "data"))

    # ---- model: initial weights from their own stream, then dropout's stream on the global RNG
    torch.manual_seed(derive_seed(seed, "init"))
    model = BiLSTMClassifier.from_params(cfg.model, splits.row_size, splits.n_classes).to(device)
    optimizer = make_optimizer(tp, model.parameters())
    torch.manual_seed(derive_seed(seed, "dropout"))
    if device.type == "cuda":
        torch.cuda.manual_seed_all(derive_seed(seed, "dropout"))

    # ---- resume: a checkpoint of this exact (config, seed) continues where it stopped
    history: list[dict] = []
    start_epoch, resumed_from = 0, None
    ckpt_path = out_dir / CHECKPOINT_FILE
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        if ckpt.get("config_hash") == cfg.config_hash and ckpt.get("seed") == seed:
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            torch.set_rng_state(ckpt["rng_cpu"])
            if device.type == "cuda" and ckpt.get("rng_cuda") is not None:
                torch.cuda.set_rng_state(ckpt["rng_cuda"])
            data_gen.set_state(ckpt["rng_data"])
            history = [dict(zip(HISTORY_COLUMNS, row)) for row in ckpt["history"]]
            start_epoch = resumed_from = int(ckpt["epoch"])
            log(f"{tag} resuming after epoch {start_epoch}")
        else:
            log(f"{tag} ignoring a checkpoint of another config or seed")

    # ---- train loop: one shuffled pass per epoch, evaluation after each
    status, diverged_at = "ok", None
    train_loss = float("nan")
    model.train()
    for epoch in range(start_epoch, tp.epochs):
        t_epoch = time.perf_counter()
        perm = torch.randperm(n_train, generator=data_gen).to(device)
        loss_sum = torch.zeros((), device=device)
        for i in range(0, n_train, tp.batch_size):
            idx = perm[i:i + tp.batch_size]
            logits = model(splits.x_train[idx])
            loss = nn.functional.cross_entropy(logits, splits.y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if tp.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), tp.grad_clip)
            optimizer.step()
            loss_sum += loss.detach() * len(idx)
        # One check per epoch (a per-step check would sync the GPU every step);
        # a NaN anywhere in the epoch propagates into the sum.
        train_loss = float(loss_sum) / n_train
        val_loss, val_acc = evaluate(model, splits.x_val, splits.y_val)
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            status, diverged_at = "diverged", epoch + 1
            log(f"{tag} epoch {epoch + 1}/{tp.epochs}: loss is {train_loss} (validation {val_loss}); "
                "stopping: diverged")
            break
        history.append({"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss,
                        "val_acc": val_acc, "time_s": time.perf_counter() - t_epoch})
        io.write_bytes(ckpt_path, _checkpoint_bytes(cfg, seed, epoch + 1, model, optimizer, data_gen,
                                                    history, device))
        log(f"{tag} epoch {epoch + 1}/{tp.epochs}  train_loss {train_loss:.4f}  "
            f"val_loss {val_loss:.4f}  val_acc {100 * val_acc:.2f}%  ({history[-1]['time_s']:.1f} s)")
        crash_point(epoch + 1)

    # ---- final evaluation (the test set is reported, never used for choices)
    if status == "ok":
        # From the history, not the loop's variables: a run resumed from its last
        # epoch's checkpoint trains no epoch here and must report the same numbers.
        train_loss, val_loss, val_acc = (history[-1][k] for k in ("train_loss", "val_loss", "val_acc"))
        test_loss, test_acc = evaluate(model, splits.x_test, splits.y_test)
        best = max(history, key=lambda h: h["val_acc"])
    else:
        val_loss = val_acc = test_loss = test_acc = None
        best = max(history, key=lambda h: h["val_acc"]) if history else None

    # ---- outputs: history first, metrics last (metrics.json marks a finished run)
    io.write_text(out_dir / HISTORY_FILE, _history_csv(history))
    metrics = {
        "config": cfg.name, "seed": seed, "config_hash": cfg.config_hash, "status": status,
        "val_acc": _finite_or_none(val_acc), "val_loss": _finite_or_none(val_loss),
        "test_acc": _finite_or_none(test_acc), "test_loss": _finite_or_none(test_loss),
        "train_loss": _finite_or_none(train_loss),
        "best_val_acc": best["val_acc"] if best else None, "best_epoch": best["epoch"] if best else None,
        "epochs": tp.epochs, "epochs_run": len(history), "diverged_at_epoch": diverged_at,
        "resumed_from_epoch": resumed_from,
        "wall_time_s": time.perf_counter() - t_start,
        "device": device.type, "threads": tp.threads, "train_step": "eager", **sizes,
        "slurm_job_id": slurm_job_id(),
        "versions": library_versions(), "resolved_config": cfg.as_dict(),
    }
    io.write_json(out_dir / METRICS_FILE, metrics)
    if not tp.keep_checkpoint:
        ckpt_path.unlink(missing_ok=True)
    return metrics


def _checkpoint_bytes(cfg, seed, epoch, model, optimizer, data_gen, history, device) -> bytes:
    """Everything needed to continue bit-identically; loadable with weights_only=True."""
    import io as _io

    state = {
        "config_hash": cfg.config_hash, "seed": seed, "epoch": epoch,
        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "rng_cpu": torch.get_rng_state(), "rng_data": data_gen.get_state(),
        "rng_cuda": torch.cuda.get_rng_state() if device.type == "cuda" else None,
        "history": [[h[c] for c in HISTORY_COLUMNS] for h in history],
    }
    buf = _io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def _history_csv(history: list[dict]) -> str:
    lines = [",".join(HISTORY_COLUMNS)]
    lines += [",".join(repr(h[c]) if isinstance(h[c], float) else str(h[c]) for c in HISTORY_COLUMNS)
              for h in history]
    return "\n".join(lines) + "\n"
