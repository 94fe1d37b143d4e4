"""One-shot GPU check of seed-batched training (run by gpu_check.sh; about 5-8 minutes on an H100).

Synthetic 28x28 images (Fashion-MNIST's shape; no dataset needed), batch 100,
the reference model (2-layer BiLSTM, hidden 128, last-row pooling), Adam.

1. ``cudnn``: one ``BiLSTMClassifier`` (cuDNN ``nn.LSTM``): the baseline, steps/s.
2. ``batched``: :class:`noisefloor.batched.BatchedBiLSTMClassifier` for each K,
   eager: model-steps/s (K models x steps/s) and peak GPU memory.
3. ``batched+graph``: the same with the whole training step (forward,
   backward, Adam with ``capturable=True``) captured once as a CUDA graph and
   replayed.
4. ``batched+compile``: ``torch.compile`` of the model (default mode), compile
   time reported apart; then ``reduce-overhead`` (compile + CUDA graphs) for the
   largest K. Skipped when the time budget is spent.
5. Equivalence on CUDA: ``train_batch`` vs ``train_run`` on the shipped digits
   (K=4, 2 epochs): largest relative difference of final losses.
6. Fork server on CUDA: ``noisefloor train`` with and without the server gives
   identical metrics and a CUDA device (CUDA must work in forked workers).

Every line is printed as soon as measured; ``--json`` also writes all numbers.

Usage::

    python benchmarks/gpu_check.py [--k 1 16 64] [--steps 50] [--budget 480] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, TIMING_KEYS, child_env  # noqa: E402

BATCH, ROWS, COLS, CLASSES, POOL = 100, 28, 28, 10, 16
T0 = time.monotonic()
RESULTS: dict = {"throughput": [], "checks": {}}


def say(line: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {line}", flush=True)


def data(torch, k: int, device):
    """A pool of K-model batches on the GPU (each model its own batch), cycled through."""
    g = torch.Generator(device="cpu").manual_seed(0)
    x = torch.rand(POOL, k, BATCH, ROWS, COLS, generator=g).to(device)
    y = torch.randint(0, CLASSES, (POOL, k, BATCH), generator=g).to(device)
    return x, y


def batched_model(torch, k: int, device):
    from noisefloor.batched import BatchedBiLSTMClassifier
    from noisefloor.models import BiLSTMClassifier

    torch.manual_seed(0)
    return BatchedBiLSTMClassifier([BiLSTMClassifier(COLS, CLASSES) for _ in range(k)]).to(device)


def loss_fn(torch, logits, y):
    k = logits.shape[0]
    per = torch.nn.functional.cross_entropy(logits.reshape(-1, CLASSES), y.reshape(-1), reduction="none")
    return per.view(k, -1).mean(dim=1).sum()


def sync(torch) -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def reset_peak(torch) -> None:
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def timed_steps(torch, step, steps: int, warmup: int = 5) -> float:
    for i in range(warmup):
        step(i)
    sync(torch)
    t = time.perf_counter()
    for i in range(steps):
        step(i)
    sync(torch)
    return (time.perf_counter() - t) / steps


def record(variant: str, k: int, sec_per_step: float, torch, **extra) -> None:
    mem = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else float("nan")
    row = {"variant": variant, "k": k, "steps_per_s": 1 / sec_per_step, "model_steps_per_s": k / sec_per_step,
           "peak_mem_mib": mem, **extra}
    RESULTS["throughput"].append(row)
    more = "".join(f"  {key} {val:.1f}" if isinstance(val, float) else f"  {key} {val}" for key, val in extra.items())
    say(f"{variant:<24} K={k:<3} {1 / sec_per_step:8.1f} steps/s  {k / sec_per_step:9.1f} model-steps/s  "
        f"peak {mem:8.1f} MiB{more}")


def adam_step(forward, loss, opt, x, y):
    """One eager training step on pool batch ``i % POOL``: the step every eager variant times."""

    def step(i):
        value = loss(forward(x[i % POOL]), y[i % POOL])
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()

    return step


def bench_cudnn(torch, steps, device):
    from noisefloor.models import BiLSTMClassifier

    reset_peak(torch)
    torch.manual_seed(0)
    model = BiLSTMClassifier(COLS, CLASSES).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=0.003)
    x, y = data(torch, 1, device)
    step = adam_step(model, torch.nn.functional.cross_entropy, opt, x[:, 0], y[:, 0])

    record("cudnn (baseline)" if device.type == "cuda" else "nn.LSTM (baseline)", 1, timed_steps(torch, step, steps), torch)


def bench_eager(torch, k, steps, device):
    reset_peak(torch)
    model = batched_model(torch, k, device)
    opt = torch.optim.Adam(model.parameters(), lr=0.003)
    x, y = data(torch, k, device)
    step = adam_step(model, lambda out, target: loss_fn(torch, out, target), opt, x, y)
    record("batched", k, timed_steps(torch, step, steps), torch)


def bench_graph(torch, k, steps, device):
    reset_peak(torch)
    model = batched_model(torch, k, device)
    opt = torch.optim.Adam(model.parameters(), lr=0.003, capturable=True)
    x, y = data(torch, k, device)
    static_x, static_y = x[0].clone(), y[0].clone()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):                      # warm-up outside the graph, as CUDA graphs require
        for _ in range(3):
            opt.zero_grad(set_to_none=True)
            loss_fn(torch, model(static_x), static_y).backward()
            opt.step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    t = time.perf_counter()
    with torch.cuda.graph(graph):
        loss_fn(torch, model(static_x), static_y).backward()
        opt.step()
    capture_s = time.perf_counter() - t

    def step(i):
        static_x.copy_(x[i % POOL])
        static_y.copy_(y[i % POOL])
        graph.replay()

    record("batched+graph", k, timed_steps(torch, step, steps), torch, capture_s=capture_s)


def bench_compile(torch, k, steps, device, mode):
    reset_peak(torch)
    model = batched_model(torch, k, device)
    compiled = torch.compile(model, mode=mode)
    opt = torch.optim.Adam(model.parameters(), lr=0.003)
    x, y = data(torch, k, device)
    step = adam_step(compiled, lambda out, target: loss_fn(torch, out, target), opt, x, y)

    t = time.perf_counter()
    step(0)
    sync(torch)
    compile_s = time.perf_counter() - t
    record(f"batched+compile({mode})", k, timed_steps(torch, step, steps), torch, compile_s=compile_s)


def check_equivalence(torch, device) -> None:
    import dataclasses

    from noisefloor.batched import train_batch
    from noisefloor.data import load_dataset
    from noisefloor.params import DataParams, ModelParams, RunConfig, TrainParams
    from noisefloor.train import train_run

    # The reference experiment's baseline, built without the params file (whose
    # validation needs jsonschema, which the GPU image may lack).
    single_cfg = RunConfig("baseline", DataParams(), ModelParams(),
                           TrainParams(epochs=2, batch_size=100, lr=0.003, device=device.type))
    batch_cfg = dataclasses.replace(single_cfg, train=dataclasses.replace(single_cfg.train, seed_batch=4))
    splits = load_dataset(single_cfg.data)
    seeds = [0, 1, 2, 3]
    with tempfile.TemporaryDirectory() as tmp:
        quiet = dict(splits=splits, log=lambda _line: None)
        t = time.perf_counter()
        single = [train_run(single_cfg, s, Path(tmp) / f"s{s}", **quiet) for s in seeds]
        t_single = time.perf_counter() - t
        t = time.perf_counter()
        batch = train_batch(batch_cfg, seeds, [Path(tmp) / f"b{s}" for s in seeds], **quiet)
        t_batch = time.perf_counter() - t
    diff = max(abs(b[m] - s[m]) / abs(s[m]) for s, b in zip(single, batch) for m in ("train_loss", "val_loss"))
    acc = max(abs(b["val_acc"] - s["val_acc"]) for s, b in zip(single, batch))
    RESULTS["checks"]["equivalence"] = {"max_rel_loss_diff": diff, "max_val_acc_diff": acc,
                                        "single_s": t_single, "batched_s": t_batch}
    say(f"equivalence on {device.type} (K=4, 2 epochs of digits): max rel loss diff {diff:.2e}, max val_acc diff {acc:.4f}; "
        f"4 runs {t_single:.1f} s, one batch {t_batch:.1f} s")


def check_forkserver(device) -> None:
    try:
        import jsonschema  # noqa: F401  (noisefloor train validates params with it)
    except ImportError:
        say("fork server: skipped (no jsonschema here; see gpu_check.sh for carrying its wheels)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        raw = (ROOT / "tests" / "fixtures" / "params.smoke.yaml").read_text().replace(
            "  epochs: 2\n", f"  epochs: 2\n  device: {device.type}\n")
        (tmp / "params.yaml").write_text(raw)
        out = {}
        for mode in ("1", "0"):
            env = child_env(NOISEFLOOR_FORKSERVER=mode, NOISEFLOOR_FORKSERVER_DIR=str(tmp / "fs"))
            t = time.perf_counter()
            for seed in (0, 1):      # the second forked run shows the warm path
                proc = subprocess.run([sys.executable, "-m", "noisefloor", "train", "--params", "params.yaml",
                                       "--config", "baseline", "--seed", str(seed), "--runs-dir", f"runs{mode}"],
                                      cwd=tmp, env=env, capture_output=True, text=True, timeout=300)
                if proc.returncode != 0:
                    raise RuntimeError(f"noisefloor train (server={mode}) failed:\n{proc.stderr[-2000:]}")
            out[mode] = (time.perf_counter() - t, proc.stderr)
        from noisefloor import forkserver

        forkserver.stop(child_env(NOISEFLOOR_FORKSERVER_DIR=str(tmp / "fs")))
        same = True
        for seed in (0, 1):
            a, b = (json.loads((tmp / f"runs{m}" / "baseline" / f"seed{seed}" / "metrics.json").read_text())
                    for m in ("1", "0"))
            same &= {k: v for k, v in a.items() if k not in TIMING_KEYS} == \
                {k: v for k, v in b.items() if k not in TIMING_KEYS} and a["device"] == device.type
        forked = "forked from the warm server" in out["1"][1]
    RESULTS["checks"]["forkserver_cuda"] = {"identical": same, "forked": forked,
                                            "with_server_s": out["1"][0], "without_s": out["0"][0]}
    say(f"fork server on {device.type}: forked={forked}, metrics identical={same}; two runs {out['1'][0]:.1f} s "
        f"with the server (cold start included), {out['0'][0]:.1f} s without")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--k", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--budget", type=float, default=480.0, help="seconds; later optional parts are skipped")
    ap.add_argument("--json")
    ap.add_argument("--cpu-smoke", action="store_true",
                    help="exercise the script's plumbing on CPU (tiny K and steps; no graphs, no compile)")
    args = ap.parse_args()
    os.environ.setdefault("PYTHONPATH", str(ROOT / "src"))
    sys.path.insert(0, str(ROOT / "src"))
    import torch

    if args.cpu_smoke:
        device, args.k, args.steps = torch.device("cpu"), [1, 2], 2
        RESULTS["device"] = {"name": "cpu (smoke run)", "torch": torch.__version__}
    elif not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device visible to torch")
    else:
        device = torch.device("cuda")
        props = torch.cuda.get_device_properties(0)
        RESULTS["device"] = {"name": props.name, "memory_gib": props.total_memory / 2**30,
                             "torch": torch.__version__, "cuda": torch.version.cuda,
                             "cudnn": torch.backends.cudnn.version()}
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    say(f"device: {RESULTS['device']}")

    def guarded(name, fn, *a, optional=False):
        if optional and time.monotonic() - T0 > args.budget:
            say(f"{name}: skipped (time budget of {args.budget:.0f} s spent)")
            return
        try:
            fn(*a)
        except Exception:      # one failing part must not cost the others' numbers
            say(f"{name}: FAILED\n{traceback.format_exc()}")
            RESULTS["checks"][f"{name}_error"] = traceback.format_exc(limit=3)
        if args.json:          # after every part: a timeout keeps what was measured
            Path(args.json).write_text(json.dumps(RESULTS, indent=2) + "\n")

    guarded("cudnn", bench_cudnn, torch, args.steps, device)
    for k in args.k:
        guarded(f"batched K={k}", bench_eager, torch, k, args.steps, device)
    guarded("equivalence", check_equivalence, torch, device)
    guarded("forkserver", check_forkserver, device)
    if args.cpu_smoke:
        say("done (CPU smoke run: graphs and compile need CUDA)")
        return 0
    for k in args.k:
        guarded(f"graph K={k}", bench_graph, torch, k, args.steps, device)
    for k in sorted(args.k, reverse=True):
        guarded(f"compile K={k}", bench_compile, torch, k, args.steps, device, "default", optional=True)
    guarded(f"reduce-overhead K={max(args.k)}", bench_compile, torch, max(args.k), args.steps, device,
            "reduce-overhead", optional=True)
    say("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
