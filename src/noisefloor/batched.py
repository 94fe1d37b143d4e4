"""Train K seeds of one config in one process, as one hand-batched model (``train.seed_batch``).

A small LSTM leaves a GPU mostly idle: one cuDNN model runs ~250 steps/s on an
H100, and ``torch.func.vmap`` has no batching rule for ``nn.LSTM``. Here the
K models' weights are stacked along a leading model dimension and the LSTM is
written out with ``torch.bmm`` and a Python loop over time, so one kernel call
serves all K models.

What stays exactly as in :func:`noisefloor.train.train_run`, per seed:

- initial weights: each seed's ``BiLSTMClassifier`` is built exactly as
  ``train_run`` builds it (:func:`noisefloor.protocol.initial_model`) and its
  tensors are copied into the stack;
- data order: one order-stream generator per seed (:func:`noisefloor.protocol.source_generator`), one
  ``randperm`` per epoch, the same batch boundaries;
- dropout between LSTM layers: the same masks, drawn the way ATen's CPU LSTM
  draws them (one time-major ``bernoulli_`` per layer and step) from a
  dropout-stream generator. cuDNN draws its own masks, so on
  CUDA with ``dropout > 0`` the masks match the CPU run, not a cuDNN one;
- the optimiser (its update is elementwise, so stacking changes nothing),
  gradient clipping (each seed's own norm) and divergence (per seed);
- everything around the training step: setup, checkpoint bookkeeping, the
  ``metrics.json`` record and the outputs are :mod:`noisefloor.protocol`'s,
  the same code ``train_run`` uses.

What differs: the LSTM's arithmetic (``bmm`` and elementwise ops instead of
oneDNN or cuDNN kernels) rounds differently, so results agree with the
single-seed run to floating-point tolerance, not bit for bit (the tests pin the
tolerance). ``seed_batch`` is therefore part of a run's identity (its config
hash), like ``threads``; each run still writes its own ``metrics.json`` and
``history.csv``, with the seeds it was trained with under ``batch_seeds``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from .data import Splits
from .models import BiLSTMClassifier
from .params import RunConfig
from .protocol import (EVAL_CHUNK, Run, crash_point, epoch_lr, finish, initial_model, log_epoch, make_optimizer,
                       open_run, read_checkpoint, record_epoch, resume, set_lr, set_up, source_generator, stderr_log,
                       write_checkpoint)


class BatchedBiLSTMClassifier(nn.Module):
    """K independent :class:`~noisefloor.models.BiLSTMClassifier` s with stacked weights.

    Parameters
    ----------
    models : sequence of BiLSTMClassifier
        Same shape; their current weights are copied (model k = index k).

    Notes
    -----
    Parameters have the single model's names and order, with a leading model
    dimension: ``lstm.weight_ih_l0`` is (K, 4H, input), ``head.weight`` (K, C, D).
    """

    def __init__(self, models: Sequence[BiLSTMClassifier]):
        super().__init__()
        first = models[0]
        lstm = first.lstm
        self.k = len(models)
        self.pooling = first.pooling
        self.hidden_size, self.num_layers = lstm.hidden_size, lstm.num_layers
        self.directions = 2 if lstm.bidirectional else 1
        self.dropout = float(lstm.dropout)
        # Both directions of a layer in one sequential loop: None = on CUDA only (see _layer).
        self.fuse_directions: bool | None = None
        self.lstm_names = [name for name, _ in lstm.named_parameters()]
        self.lstm = nn.ParameterDict()
        for name in self.lstm_names:
            self.lstm[name] = nn.Parameter(torch.stack([m.lstm.get_parameter(name).detach() for m in models]).clone())
        self.head = nn.ParameterDict()   # filled one by one: a dict given at once is sorted by key
        for name in ("weight", "bias"):
            self.head[name] = nn.Parameter(torch.stack([m.head.get_parameter(name).detach() for m in models]).clone())

    def single_state_dict(self, k: int) -> dict[str, torch.Tensor]:
        """Model k's weights under :class:`BiLSTMClassifier`'s names (loadable by it)."""
        return {name: p[k].detach().clone() for name, p in self.named_parameters()}

    @property
    def uses_dropout(self) -> bool:
        """Whether training-mode forward passes draw dropout masks (between LSTM layers)."""
        return self.dropout > 0 and self.num_layers > 1

    def _projections(self, x: torch.Tensor, layer: int, reverse: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """All time steps' input projections of one direction in one bmm, (K, B, T, 4H), and its W_hh."""
        sfx = f"_l{layer}" + ("_reverse" if reverse else "")
        w_ih = self.lstm["weight_ih" + sfx]
        b = self.lstm["bias_ih" + sfx] + self.lstm["bias_hh" + sfx]
        k, batch, steps, feat = x.shape
        pre = torch.baddbmm(b.unsqueeze(1), x.reshape(k, batch * steps, feat), w_ih.transpose(1, 2))
        return pre.view(k, batch, steps, -1), self.lstm["weight_hh" + sfx]

    def _recur(self, pre: torch.Tensor, w_hh: torch.Tensor, reverse: bool = False) -> torch.Tensor:
        """The sequential part: pre (M, B, T, 4H), w_hh (M, 4H, H) -> hidden states (M, B, T, H),
        time running backwards when ``reverse``."""
        # unbind, not pre[:, :, t]: each indexing's backward would zero-fill and
        # add a tensor of pre's full size, once per time step.
        pre_t = pre.unbind(dim=2)
        steps = len(pre_t)
        h = pre.new_zeros(pre.shape[0], pre.shape[1], self.hidden_size)
        c = torch.zeros_like(h)
        outs: list[torch.Tensor] = [h] * steps
        w_hh_t = w_hh.transpose(1, 2)
        for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
            gates = torch.baddbmm(pre_t[t], h, w_hh_t)
            i, f, g, o = gates.chunk(4, dim=-1)          # PyTorch's gate order
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outs[t] = h
        return torch.stack(outs, dim=2)

    def _layer(self, x: torch.Tensor, layer: int, fuse: bool) -> torch.Tensor:
        """One layer: x (K, B, T, F) -> hidden states (K, B, T, D*H).

        ``fuse`` runs both directions in one loop over time: the reverse
        direction's models join the forward ones along the model dimension, each
        reading the rows in its own order. Half the sequential kernels, the same
        values bit for bit (tested). On a GPU, where a step costs its kernel count,
        that is the path; on CPU the copies it needs cost more than it saves
        (about 10 % at K=4), so there each direction runs its own loop.
        """
        if self.directions == 1:
            return self._recur(*self._projections(x, layer, reverse=False))
        (pre_f, w_f), (pre_r, w_r) = (self._projections(x, layer, reverse=r) for r in (False, True))
        if not fuse:
            return torch.cat([self._recur(pre_f, w_f), self._recur(pre_r, w_r, reverse=True)], dim=-1)
        k = x.shape[0]
        out = self._recur(torch.cat([pre_f, pre_r.flip(2)]), torch.cat([w_f, w_r]))   # (2K, B, T, H)
        return torch.cat([out[:k], out[k:].flip(2)], dim=-1)

    def forward(self, x: torch.Tensor, dropout_gens: Sequence[torch.Generator] | None = None,
                dropout_masks: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        """x: (K, B, rows, cols) -> logits (K, B, n_classes).

        In training mode with dropout, the between-layer masks come either from
        ``dropout_gens`` (one generator per model, drawn here) or ready-made from
        ``dropout_masks`` (as :meth:`draw_dropout_masks` returns them).
        """
        if self.training and self.uses_dropout and dropout_masks is None:
            dropout_masks = self.draw_dropout_masks(x.shape[1], x.shape[2], dropout_gens, x.device)
        fuse = x.is_cuda if self.fuse_directions is None else self.fuse_directions
        for layer in range(self.num_layers):
            x = self._layer(x, layer, fuse)
            if self.training and self.uses_dropout and layer < self.num_layers - 1:
                x = x * dropout_masks[layer]
        features = x[:, :, -1] if self.pooling == "last" else x.mean(dim=2)
        return torch.baddbmm(self.head["bias"].unsqueeze(1), features, self.head["weight"].transpose(1, 2))

    def draw_dropout_masks(self, batch: int, steps: int, gens: Sequence[torch.Generator] | None,
                           device: torch.device | str = "cpu") -> list[torch.Tensor]:
        """One (K, B, T, F) scaled keep-mask per layer boundary, each model's drawn as ATen's LSTM draws its
        (T, B, F) one: per layer in order, from that model's generator (on the CPU, as the CPU LSTM does)."""
        if gens is None or len(gens) != self.k:
            raise ValueError("training with dropout needs one generator per model")
        p, feat = self.dropout, self.hidden_size * self.directions
        per_layer: list[list[torch.Tensor]] = [[] for _ in range(self.num_layers - 1)]
        for gen in gens:                   # a generator's draws go layer after layer, as in the forward pass
            for layer in range(self.num_layers - 1):
                noise = torch.empty(steps, batch, feat).bernoulli_(1 - p, generator=gen)
                per_layer[layer].append(noise.div_(1 - p).transpose(0, 1))
        return [torch.stack(masks).to(device) for masks in per_layer]


def clip_per_model_(params: Sequence[torch.Tensor], max_norm: float) -> None:
    """``clip_grad_norm_`` applied to each model of the stack separately."""
    grads = [p.grad for p in params if p.grad is not None]
    norms = torch.stack([torch.linalg.vector_norm(g.flatten(1), 2, dim=1) for g in grads])   # (P, K)
    total = torch.linalg.vector_norm(norms, 2, dim=0)                                       # (K,)
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.mul_(coef.view(-1, *([1] * (g.dim() - 1))))


@torch.no_grad()
def evaluate(model: BatchedBiLSTMClassifier, x: torch.Tensor, y: torch.Tensor) -> list[tuple[float, float]]:
    """Per model: mean cross-entropy and accuracy on (x, y), chunked as the single-seed evaluation."""
    model.eval()
    loss_sums, correct = [0.0] * model.k, [0] * model.k
    for i in range(0, len(y), EVAL_CHUNK):
        xb, yb = x[i:i + EVAL_CHUNK], y[i:i + EVAL_CHUNK]
        logits = model(xb.unsqueeze(0).expand(model.k, *xb.shape))
        for k in range(model.k):
            loss_sums[k] += nn.functional.cross_entropy(logits[k], yb, reduction="sum").item()
            correct[k] += int((logits[k].argmax(dim=1) == yb).sum())
    model.train()
    return [(loss_sums[k] / len(y), correct[k] / len(y)) for k in range(model.k)]


GRAPH_WARMUP_STEPS = 3


def pick_step_mode(requested: str, device: torch.device, optimizer: str, schedule: str = "constant") -> str:
    """``auto`` -> ``graph`` on CUDA with Adam/AdamW and a constant learning rate (a captured step keeps the rate
    it was captured with; ``NOISEFLOOR_CUDA_GRAPHS=0`` turns graphs off), else ``eager``."""
    if requested not in ("auto", "eager", "static", "graph"):
        raise ValueError(f"unknown step mode {requested!r}")
    graphable = device.type == "cuda" and optimizer in ("adam", "adamw") and schedule == "constant"
    if requested == "graph" and not graphable:
        raise ValueError("CUDA graphs need train.device cuda, the adam or adamw optimizer and lr_schedule constant")
    if requested != "auto":
        return requested
    return "graph" if graphable and os.environ.get("NOISEFLOOR_CUDA_GRAPHS", "1") != "0" else "eager"


class BatchStep:
    """One training step of a :class:`BatchedBiLSTMClassifier`: forward, per-seed losses, backward,
    per-seed clipping, optimiser step, and each seed's loss added to :attr:`loss_sum`.

    A step of the small batched LSTM is thousands of tiny kernels, so on a GPU
    its cost is their launches, not their arithmetic. Modes:

    - ``eager``: the step as written, every call;
    - ``static``: full-size batches go through fixed input buffers (the batch's
      indices and dropout masks are copied in), exactly as a graph replays them;
      any device (the CPU tests use it to check the buffer handling);
    - ``graph``: CUDA only. The first :data:`GRAPH_WARMUP_STEPS` full-size steps
      run eagerly on a side stream (optimiser state and library workspaces are
      created then), the next is captured once as a CUDA graph, and every later
      full-size step is one buffer copy and one ``replay()``. The training data
      stay on the GPU and are indexed inside the graph. If capture fails the
      step falls back to ``static`` with one log line, and nothing was executed
      by the failed capture.

    A short last batch of an epoch always runs eagerly (a graph has fixed shapes).
    """

    def __init__(self, model: BatchedBiLSTMClassifier, optimizer: torch.optim.Optimizer, x_train: torch.Tensor,
                 y_train: torch.Tensor, batch_size: int, grad_clip: float | None, *, mode: str = "eager",
                 log: Callable[[str], None] = lambda _line: None):
        self.model, self.optimizer, self.x_train, self.y_train = model, optimizer, x_train, y_train
        self.batch_size, self.grad_clip, self.mode, self.log = batch_size, grad_clip, mode, log
        self.params = list(model.parameters())
        device = x_train.device
        self.loss_sum = torch.zeros(model.k, device=device)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.warm_steps = 0
        if mode != "eager":
            self.idx = torch.zeros(model.k, batch_size, dtype=torch.long, device=device)
            steps, feat = x_train.shape[1], model.hidden_size * model.directions
            self.masks = ([torch.zeros(model.k, batch_size, steps, feat, device=device)
                           for _ in range(model.num_layers - 1)] if model.uses_dropout else None)

    def _run(self, idx: torch.Tensor, masks: Sequence[torch.Tensor] | None) -> None:
        k = self.model.k
        logits = self.model(self.x_train[idx], dropout_masks=masks)
        n_cls = logits.shape[-1]
        per_seed = nn.functional.cross_entropy(logits.reshape(-1, n_cls), self.y_train[idx].reshape(-1),
                                               reduction="none").view(k, -1).mean(dim=1)
        self.optimizer.zero_grad(set_to_none=True)
        per_seed.sum().backward()   # seeds share no weights: each gets its own mean loss's gradient
        if self.grad_clip is not None:
            clip_per_model_(self.params, self.grad_clip)
        self.optimizer.step()
        self.loss_sum += per_seed.detach() * idx.shape[1]

    def __call__(self, idx: torch.Tensor, masks: Sequence[torch.Tensor] | None = None) -> None:
        """Train on rows ``idx`` (K, B) of the training set, with dropout ``masks`` when the model uses dropout."""
        if self.mode == "eager" or idx.shape[1] != self.batch_size:
            self._run(idx, masks)
            return
        self.idx.copy_(idx)
        for buf, mask in zip(self.masks or (), masks or ()):
            buf.copy_(mask)
        if self.mode == "static":
            self._run(self.idx, self.masks)
        elif self.graph is not None:
            self.graph.replay()
        elif self.warm_steps < GRAPH_WARMUP_STEPS:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                self._run(self.idx, self.masks)
            torch.cuda.current_stream().wait_stream(side)
            self.warm_steps += 1
        else:
            self._capture()

    def _capture(self) -> None:
        graph = torch.cuda.CUDAGraph()
        self.optimizer.zero_grad(set_to_none=True)   # gradients are then allocated inside the graph's pool
        try:
            with torch.cuda.graph(graph):
                self._run(self.idx, self.masks)
        except Exception as exc:                     # capture records kernels, runs none: nothing to undo
            torch.cuda.synchronize()
            self.mode = "static"
            self.log(f"CUDA graph capture failed ({type(exc).__name__}: {exc}); training on without graphs")
            self._run(self.idx, self.masks)
            return
        graph.replay()
        self.graph = graph


def initial_models(cfg: RunConfig, seeds: Sequence[int], row_size: int, n_classes: int) -> list[BiLSTMClassifier]:
    """Each seed's model, created exactly as :func:`noisefloor.train.train_run` creates it."""
    return [initial_model(cfg, seed, row_size, n_classes) for seed in seeds]


def train_batch(cfg: RunConfig, seeds: Sequence[int], out_dirs: Sequence[str | Path], *,
                splits: Splits | None = None, log: Callable[[str], None] | None = None,
                step_mode: str = "auto") -> list[dict]:
    """Train ``cfg`` at each of ``seeds`` at once; write each run's outputs to its ``out_dirs`` entry.

    Parameters
    ----------
    cfg : RunConfig
    seeds : sequence of int
        Distinct seeds; all K are trained in one batched model.
    out_dirs : sequence of path
        One per seed: receives ``metrics.json``, ``history.csv`` and, while the
        batch is under way, ``checkpoint.pt`` (one per finished epoch). The batch
        resumes when every seed holds a checkpoint of the same epoch of this same
        batch; otherwise it starts over.
    splits : Splits, optional
    log : callable, optional
        One progress line per seed and epoch (default: stderr).
    step_mode : {"auto", "eager", "static", "graph"}
        How each training step runs (see :class:`BatchStep`); ``auto`` is
        ``graph`` on CUDA with Adam or AdamW (unless ``NOISEFLOOR_CUDA_GRAPHS=0``),
        else ``eager``. The mode changes speed, not results: every mode runs the
        same kernels on the same values.

    Returns
    -------
    list of dict
        The metrics written, in the order of ``seeds``.
    """
    log = log or stderr_log
    seeds = [int(s) for s in seeds]
    if len(set(seeds)) != len(seeds) or len(seeds) != len(out_dirs) or not seeds:
        raise ValueError("train_batch needs distinct seeds, one output directory each")
    tp, tag = cfg.train, f"[{cfg.name} seeds={seeds}]"

    # ---- setup and data (as train_run; the first seed seeds the global state nobody draws from)
    setup = set_up(cfg, seeds[0], splits)
    device, data, n_train = setup.device, setup.splits, setup.sizes["n_train"]
    runs = [open_run(cfg, s, d) for s, d in zip(seeds, out_dirs)]
    data_gens = [source_generator(cfg, s, "order") for s in seeds]

    # ---- model: each seed's own initial weights, stacked
    model = BatchedBiLSTMClassifier(initial_models(cfg, seeds, data.row_size, data.n_classes)).to(device)
    step_mode = pick_step_mode(step_mode, device, tp.optimizer, tp.lr_schedule)
    # A CUDA graph replays Adam's step, so its step count must live on the GPU
    # (capturable). Every mode on CUDA uses that same optimiser: graph, eager and
    # static then run the same kernels on the same values.
    optimizer = make_optimizer(tp, model.parameters(),
                               capturable=device.type == "cuda" and tp.optimizer in ("adam", "adamw"))
    dropout_gens = [source_generator(cfg, s, "dropout") for s in seeds]

    # ---- resume: only a complete set of checkpoints of this batch at one epoch
    start_epoch = 0
    ckpts = _batch_checkpoints(cfg, runs)
    if ckpts is not None:
        _restore(ckpts, model, optimizer, data_gens, dropout_gens)
        for run, ckpt in zip(runs, ckpts):
            start_epoch = resume(run, ckpt)                           # one epoch for all (checked)
        log(f"{tag} resuming after epoch {start_epoch}")

    # ---- train loop: one pass per epoch for all seeds; a diverged seed stops recording, the others go on
    step = BatchStep(model, optimizer, data.x_train, data.y_train, tp.batch_size, tp.grad_clip, mode=step_mode,
                     log=lambda line: log(f"{tag} {line}"))
    model.train()
    for epoch in range(start_epoch, tp.epochs):
        if not any(run.ok for run in runs):
            break
        t_epoch = time.perf_counter()
        set_lr(optimizer, epoch_lr(tp, epoch))
        perms = torch.stack([torch.randperm(n_train, generator=g) for g in data_gens]).to(device)
        step.loss_sum.zero_()
        for i in range(0, n_train, tp.batch_size):
            idx = perms[:, i:i + tp.batch_size]                       # (K, B): each seed's own batch
            masks = (model.draw_dropout_masks(idx.shape[1], data.x_train.shape[1], dropout_gens, device)
                     if model.uses_dropout else None)
            step(idx, masks)
        losses = (step.loss_sum / n_train).tolist()
        evals = evaluate(model, data.x_val, data.y_val)
        elapsed = time.perf_counter() - t_epoch
        for run, loss, (val_loss, val_acc) in zip(runs, losses, evals):
            if run.ok and record_epoch(run, epoch + 1, tp.epochs, loss, val_loss, val_acc, elapsed, log):
                log_epoch(run, tp.epochs, log, note=f", batch of {len(runs)}")
        _save_checkpoints(cfg, runs, epoch + 1, model, optimizer, data_gens, dropout_gens)
        crash_point(epoch + 1)

    # ---- final evaluation and outputs, per seed
    tests = evaluate(model, data.x_test, data.y_test)
    return finish(cfg, runs, setup, tests, train_step=step.mode, batch_seeds=seeds)


# --------------------------------------------------------------------------- checkpoints: one per run directory


def _save_checkpoints(cfg, runs: Sequence[Run], epoch, model, optimizer, data_gens, dropout_gens) -> None:
    """Each seed's slice of the batch state, in its own run directory.

    A seed's file holds that seed's model (under the single model's names) and
    optimiser slice, so no file depends on another run's directory.
    """
    opt_state = optimizer.state_dict()
    seeds = [run.seed for run in runs]
    for j, run in enumerate(runs):
        write_checkpoint(run, cfg, epoch, batch_seeds=seeds, batched=True, model=model.single_state_dict(j),
                         optimizer=_slice_optimizer_state(opt_state, j), rng_data=data_gens[j].get_state(),
                         rng_dropout=dropout_gens[j].get_state(), status=run.status)


def _slice_optimizer_state(opt_state: dict, j: int) -> dict:
    sliced = {}
    for pid, st in opt_state["state"].items():
        sliced[pid] = {name: (v[j].clone() if torch.is_tensor(v) and v.dim() > 0 else v) for name, v in st.items()}
    return {"state": sliced, "param_groups": opt_state["param_groups"]}


def _batch_checkpoints(cfg, runs: Sequence[Run]) -> list[dict] | None:
    """Every seed's checkpoint, when each is one of this batch, all at the same epoch, none diverged."""
    seeds = [run.seed for run in runs]
    ckpts = []
    for run in runs:
        ckpt = read_checkpoint(run, cfg)
        if ckpt is None or not ckpt.get("batched") or ckpt.get("batch_seeds") != seeds:
            return None
        ckpts.append(ckpt)
    if len({c["epoch"] for c in ckpts}) != 1 or any(c["status"] != "ok" for c in ckpts):
        return None
    return ckpts


def _restore(ckpts: Sequence[dict], model, optimizer, data_gens, dropout_gens) -> None:
    """The batch's state stacked back from its seeds' checkpoints, so training continues bit-identically."""
    model.load_state_dict({name: torch.stack([c["model"][name] for c in ckpts]) for name in ckpts[0]["model"]})
    state = {}
    for pid, st in ckpts[0]["optimizer"]["state"].items():
        state[pid] = {n: (torch.stack([c["optimizer"]["state"][pid][n] for c in ckpts])
                          if torch.is_tensor(v) and v.dim() > 0 else v) for n, v in st.items()}
    optimizer.load_state_dict({"state": state, "param_groups": ckpts[0]["optimizer"]["param_groups"]})
    for gen, c in zip(data_gens, ckpts):
        gen.set_state(c["rng_data"])
    for gen, c in zip(dropout_gens, ckpts):
        gen.set_state(c["rng_dropout"])
