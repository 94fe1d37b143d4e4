"""Train one (config, seed) run and write its metrics; :func:`train_seeds` trains a call's seeds.

:func:`train_run` reads top to bottom in phases: setup and data, model,
resume, train loop, final evaluation and outputs. What it shares with the
seed-batched loop (:mod:`noisefloor.batched`) is written once in
:mod:`noisefloor.protocol`. Determinism contract: the same (config, seed) on
the same device type and thread count gives bit-identical metrics, also when
the run was killed and resumed from its last checkpoint.
"""

from __future__ import annotations

import os
import time
from typing import Callable, Iterator, Sequence

import torch
from torch import nn

from .batched import train_batch
from .data import Splits, load_dataset
from .params import RunConfig
from .protocol import (EVAL_CHUNK, FAULT_ENV, crash_point, derive_seed, epoch_lr, finish, initial_model, log_epoch,
                       make_optimizer, open_run, pick_device, read_checkpoint, record_epoch, resume, set_lr, set_up,
                       skip_run, source_generator, source_seed, stderr_log, write_checkpoint)
from .runfiles import CHECKPOINT_FILE

# FAULT_ENV, CHECKPOINT_FILE and derive_seed are imported from here by tests and tools.
__all__ = ["CHECKPOINT_FILE", "FAULT_ENV", "derive_seed", "evaluate", "train_run", "train_seeds"]


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
        Pre-loaded data (saves reloading when one process trains several runs);
        ignored by a config whose seed varies the data split.
    log : callable, optional
        Receives one progress line per epoch (default: stderr).

    Returns
    -------
    dict
        The metrics written to ``metrics.json`` (see :func:`noisefloor.protocol.metrics_record`).
    """
    log = log or stderr_log
    tp = cfg.train

    # ---- setup and data: threads, device, seeding; fixed splits held as tensors on the device
    setup = set_up(cfg, seed, splits)
    device, data, n_train = setup.device, setup.splits, setup.sizes["n_train"]
    run = open_run(cfg, seed, out_dir)
    data_gen = source_generator(cfg, run.seed, "order")

    # ---- model: initial weights from their own stream, then dropout's stream on the global RNG
    model = initial_model(cfg, run.seed, data.row_size, data.n_classes).to(device)
    optimizer = make_optimizer(tp, model.parameters())
    dropout_seed = source_seed(cfg, run.seed, "dropout")
    torch.manual_seed(dropout_seed)
    if device.type == "cuda":
        torch.cuda.manual_seed_all(dropout_seed)

    # ---- resume: a checkpoint of this exact (config, seed) continues where it stopped
    start_epoch = 0
    ckpt = read_checkpoint(run, cfg, log)
    if ckpt is not None:
        _restore(ckpt, model, optimizer, data_gen, device)
        start_epoch = resume(run, ckpt)
        log(f"{run.tag} resuming after epoch {start_epoch}")

    # ---- train loop: one shuffled pass per epoch, evaluation after each
    model.train()
    for epoch in range(start_epoch, tp.epochs):
        t_epoch = time.perf_counter()
        set_lr(optimizer, epoch_lr(tp, epoch))
        perm = torch.randperm(n_train, generator=data_gen).to(device)
        loss_sum = torch.zeros((), device=device)
        for i in range(0, n_train, tp.batch_size):
            idx = perm[i:i + tp.batch_size]
            loss = nn.functional.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if tp.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), tp.grad_clip)
            optimizer.step()
            loss_sum += loss.detach() * len(idx)
        train_loss = float(loss_sum) / n_train
        val_loss, val_acc = evaluate(model, data.x_val, data.y_val)
        elapsed = time.perf_counter() - t_epoch
        if not record_epoch(run, epoch + 1, tp.epochs, train_loss, val_loss, val_acc, elapsed, log):
            break
        write_checkpoint(run, cfg, epoch + 1, **_state(model, optimizer, data_gen, device))
        log_epoch(run, tp.epochs, log)
        crash_point(epoch + 1)

    # ---- final evaluation (the test set is reported, never used for choices) and outputs
    test = evaluate(model, data.x_test, data.y_test) if run.ok else None
    return finish(cfg, [run], setup, [test], train_step="eager")[0]


def _state(model, optimizer, data_gen, device) -> dict:
    """The single-seed loop's part of a checkpoint: model, optimiser and every RNG it draws from."""
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "rng_cpu": torch.get_rng_state(), "rng_data": data_gen.get_state(),
            "rng_cuda": torch.cuda.get_rng_state() if device.type == "cuda" else None}


def _restore(ckpt, model, optimizer, data_gen, device) -> None:
    """Put :func:`_state`'s parts back, so training continues bit-identically."""
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    torch.set_rng_state(ckpt["rng_cpu"])
    if device.type == "cuda" and ckpt.get("rng_cuda") is not None:
        torch.cuda.set_rng_state(ckpt["rng_cuda"])
    data_gen.set_state(ckpt["rng_data"])


def train_seeds(cfg: RunConfig, seeds: Sequence[int], runs_dir: str | os.PathLike, *,
                splits: Splits | None = None, log: Callable[[str], None] | None = None) -> Iterator[dict]:
    """Train ``cfg`` at each of ``seeds``, each run into ``runs_dir/<config>/seed<s>/``.

    A seed given twice is one run. With ``train.seed_batch`` K > 1 the seeds
    go K at a time, each group as one batched model
    (:func:`noisefloor.batched.train_batch`); otherwise one by one
    (:func:`train_run`). The data are loaded once for all of them (once per
    seed when the seed varies the split). A decomposition's numeric runs
    need CUDA: elsewhere each is recorded as skipped, untrained.

    Yields
    ------
    dict
        Each run's metrics as soon as they are written (a batch's together).
        A generator: the runs train as it is consumed.
    """
    from .aggregate import run_dir

    seeds = list(dict.fromkeys(seeds))
    if "data" in cfg.sources:            # each seed its own split (set_up loads it)
        splits = None
    elif splits is None:
        splits = load_dataset(cfg.data)
    if not cfg.deterministic and pick_device(cfg.train.device).type != "cuda":
        for s in seeds:
            yield skip_run(cfg, s, run_dir(runs_dir, cfg.name, s),
                           "numeric noise needs CUDA: CPU kernels are deterministic, so it is 0 here")
        return
    k = cfg.train.seed_batch
    for i in range(0, len(seeds), k):
        group = seeds[i:i + k]
        dirs = [run_dir(runs_dir, cfg.name, s) for s in group]
        if k > 1:
            yield from train_batch(cfg, group, dirs, splits=splits, log=log)
        else:
            yield train_run(cfg, group[0], dirs[0], splits=splits, log=log)
