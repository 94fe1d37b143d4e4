"""Seed-batched training vs separate runs (CPU, or CUDA with --device cuda).

Baseline: K ``train_run`` calls one after the other in this (warm) process.
Candidate: one ``train_batch`` call training the same K seeds as one batched
model. Both use the params file's baseline config (``--epochs`` overrides its
epochs to keep this short) and 1 thread. Prints wall times, model-steps/s and
the ratio (separate / batched: above 1 means batching is faster), and the
largest relative difference in final losses between the two.

Then the layer itself: one forward and backward pass of the batched model on a
batch of 28x28 images, direction by direction (the baseline; the CPU's path)
against both directions in one loop (the CUDA path), median of 9, interleaved.

Usage::

    python benchmarks/bench_batched.py [--params params.yaml] [--k 1 2 4 8] [--epochs 2] [--repeat 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--k", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    import torch._dynamo  # noqa: F401  (outside the clock, as in a warm process)

    from noisefloor import params as P
    from noisefloor.batched import train_batch
    from noisefloor.data import load_dataset
    from noisefloor.train import train_run

    print(f"machine: {machine()}")
    p = P.load(args.params)
    cfg = p.resolve(p.baseline)
    splits = load_dataset(cfg.data)
    steps_per_epoch = -(-splits.sizes()["n_train"] // cfg.train.batch_size)
    quiet = dict(log=lambda _line: None, splits=splits)
    print(f"config: {p.baseline} of {args.params}, {args.epochs} epochs x {steps_per_epoch} steps, "
          f"device {args.device}, 1 thread, {args.repeat} round(s), interleaved")
    print(f"{'K':>4}{'separate s':>12}{'batched s':>11}{'separate/batched':>18}{'model-steps/s':>15}"
          f"{'max rel diff':>14}")
    with tempfile.TemporaryDirectory(prefix="nf-bench-batched-") as tmp:
        for k in args.k:
            seeds = list(range(k))
            single_cfg = dataclasses.replace(cfg, train=dataclasses.replace(
                cfg.train, epochs=args.epochs, threads=1, device=args.device, seed_batch=1))
            batch_cfg = dataclasses.replace(single_cfg, train=dataclasses.replace(single_cfg.train, seed_batch=k))
            sep, bat = [], []
            for r in range(args.repeat):
                t = time.perf_counter()
                single = [train_run(single_cfg, s, Path(tmp) / f"s{k}-{r}-{s}", **quiet) for s in seeds]
                sep.append(time.perf_counter() - t)
                t = time.perf_counter()
                both = train_batch(batch_cfg, seeds, [Path(tmp) / f"b{k}-{r}-{s}" for s in seeds], **quiet)
                bat.append(time.perf_counter() - t)
            diff = max(abs(b[m] - s[m]) / abs(s[m]) for s, b in zip(single, both)
                       for m in ("train_loss", "val_loss"))
            ts, tb = statistics.median(sep), statistics.median(bat)
            steps = k * args.epochs * steps_per_epoch
            print(f"{k:>4}{ts:>12.2f}{tb:>11.2f}{ts / tb:>18.2f}{steps / tb:>15.1f}{diff:>14.1e}", flush=True)
    bench_layer(args.k, args.device)
    return 0


def bench_layer(ks, device: str) -> None:
    """Forward + backward of the reference BiLSTM batched K times: per-direction loops vs one joint loop."""
    import torch

    from noisefloor.batched import BatchedBiLSTMClassifier
    from noisefloor.models import BiLSTMClassifier

    torch.set_num_threads(1)
    print(f"\nlayer, reference BiLSTM (hidden 128, 2 layers), batch 100 of 28x28, forward + backward, {device}")
    print(f"{'K':>4}{'per-direction ms':>18}{'joint ms':>10}{'per-direction/joint':>21}")
    for k in ks:
        torch.manual_seed(0)
        model = BatchedBiLSTMClassifier([BiLSTMClassifier(28, 10) for _ in range(k)]).to(device)
        x = torch.rand(k, 100, 28, 28, device=device)
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(9):
            for fuse in (False, True):
                model.fuse_directions = fuse
                if device != "cpu":
                    torch.cuda.synchronize()
                t = time.perf_counter()
                model(x).sum().backward()
                if device != "cpu":
                    torch.cuda.synchronize()
                times[fuse].append(time.perf_counter() - t)
        sep, joint = (1000 * statistics.median(times[f]) for f in (False, True))
        print(f"{k:>4}{sep:>18.1f}{joint:>10.1f}{sep / joint:>21.2f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
