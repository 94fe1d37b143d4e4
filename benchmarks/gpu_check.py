"""One-shot GPU check of seed-batched training (run by gpu_check.sh; about 4-6 minutes on an H100).

Synthetic 28x28 images (Fashion-MNIST's shape; no dataset needed), batch 100,
the reference model (2-layer BiLSTM, hidden 128, last-row pooling), Adam.
Every batched figure times the package's own training step
(:class:`noisefloor.batched.BatchStep`) or :func:`~noisefloor.batched.train_batch`.

1. ``cudnn``: one ``BiLSTMClassifier`` (cuDNN ``nn.LSTM``): steps/s.
2. ``cudnn x4 processes``: four such processes at once, the figure the GPU
   target is set against (sum of their steps/s, timed over the same window).
3. ``batched`` (eager) and ``batched+graph`` (the step captured once as a CUDA
   graph and replayed) for each K: model-steps/s (K models x steps/s), peak GPU
   memory, capture time; for the largest K also the direction-by-direction
   layer (``per-direction``), against which joining both directions in one
   loop (the CUDA default) is measured.
4. ``train_batch``: whole batched training runs (per-epoch shuffles, evaluation,
   checkpoints) on 12,000 synthetic images, graph vs eager: model-steps/s and the
   largest difference between the two modes' metrics.
5. Equivalence on CUDA: ``train_batch`` vs ``train_run`` on the shipped digits
   (K=4, 2 epochs): largest relative difference of final losses.
6. Fork server on CUDA: ``noisefloor train`` with and without the server gives
   identical metrics and a CUDA device (CUDA must work in forked workers).
7. ``torch.compile`` (default mode) of the batched model, while time is left.

Every line is printed as soon as measured; ``--json`` also writes all numbers.

Usage::

    python benchmarks/gpu_check.py [--k 1 16 64] [--steps 100] [--budget 240] [--json out.json]
    python benchmarks/gpu_check.py --cpu-smoke     # the script's plumbing, on CPU, tiny sizes
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
    """A synthetic training set on the device and a pool of (K, B) index batches into it, cycled through."""
    g = torch.Generator(device="cpu").manual_seed(0)
    n = POOL * BATCH
    x = torch.rand(n, ROWS, COLS, generator=g).to(device)
    y = torch.randint(0, CLASSES, (n,), generator=g).to(device)
    idx = [torch.randperm(n, generator=g)[:k * BATCH].view(k, BATCH).to(device) for _ in range(POOL)]
    return x, y, idx


def batched_model(torch, k: int, device):
    from noisefloor.batched import BatchedBiLSTMClassifier
    from noisefloor.models import BiLSTMClassifier

    torch.manual_seed(0)
    return BatchedBiLSTMClassifier([BiLSTMClassifier(COLS, CLASSES) for _ in range(k)]).to(device)


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
    more = "".join(f"  {key} {val:.2f}" if isinstance(val, float) else f"  {key} {val}" for key, val in extra.items())
    say(f"{variant:<24} K={k:<3} {1 / sec_per_step:8.1f} steps/s  {k / sec_per_step:9.1f} model-steps/s  "
        f"peak {mem:8.1f} MiB{more}")


def cudnn_step(torch, device):
    """One reference model's training step (cuDNN LSTM on CUDA) on pool batch ``i % POOL``."""
    from noisefloor.models import BiLSTMClassifier

    torch.manual_seed(0)
    model = BiLSTMClassifier(COLS, CLASSES).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=0.003)
    x, y, idx = data(torch, 1, device)

    def step(i):
        rows = idx[i % POOL][0]
        loss = torch.nn.functional.cross_entropy(model(x[rows]), y[rows])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def bench_cudnn(torch, steps, device):
    reset_peak(torch)
    name = "cudnn (baseline)" if device.type == "cuda" else "nn.LSTM (baseline)"
    record(name, 1, timed_steps(torch, cudnn_step(torch, device), steps), torch)


def cudnn_worker(steps: int, sync_dir: str) -> None:
    """One of the concurrent baseline processes: warm up, say ready, wait for go, time ``steps`` steps."""
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    step = cudnn_step(torch, device)
    for i in range(min(10, steps)):
        step(i)
    sync(torch)
    Path(sync_dir, f"ready.{os.getpid()}").touch()
    while not Path(sync_dir, "go").exists():
        time.sleep(0.01)
    t = time.perf_counter()
    for i in range(steps):
        step(i)
    sync(torch)
    print(json.dumps({"steps_per_s": steps / (time.perf_counter() - t)}), flush=True)


def bench_processes(torch, n, steps, device):
    """n baseline processes sharing the device, started together: the sum of their rates."""
    with tempfile.TemporaryDirectory() as sync_dir:
        procs = [subprocess.Popen([sys.executable, __file__, "--cudnn-worker", str(steps), sync_dir],
                                  stdout=subprocess.PIPE, text=True, env=child_env()) for _ in range(n)]
        deadline = time.monotonic() + 180
        while len(list(Path(sync_dir).glob("ready.*"))) < n:
            if time.monotonic() > deadline or any(p.poll() not in (None, 0) for p in procs):
                for p in procs:
                    p.kill()
                raise RuntimeError("baseline processes did not start")
            time.sleep(0.05)
        Path(sync_dir, "go").touch()
        rates = [json.loads(p.communicate(timeout=600)[0].strip().splitlines()[-1])["steps_per_s"] for p in procs]
    total = sum(rates)
    RESULTS["throughput"].append({"variant": f"cudnn x{n} processes", "k": n, "model_steps_per_s": total,
                                  "per_process": rates})
    say(f"{f'cudnn x{n} processes':<24} K={n:<3} {total:9.1f} model-steps/s in all "
        f"({', '.join(f'{r:.0f}' for r in rates)} per process)")


def bench_step(torch, k, steps, device, mode, per_direction=False):
    """The package's BatchStep in ``mode`` (eager or graph) for K models; ``per_direction`` times the
    direction-by-direction layer (the CPU's) instead of both directions in one loop."""
    from noisefloor.batched import GRAPH_WARMUP_STEPS, BatchStep

    reset_peak(torch)
    model = batched_model(torch, k, device)
    if per_direction:
        model.fuse_directions = False
    opt = torch.optim.Adam(model.parameters(), lr=0.003, capturable=mode == "graph")
    x, y, idx = data(torch, k, device)
    step = BatchStep(model, opt, x, y, BATCH, None, mode=mode, log=say)
    extra = {}
    if mode == "graph":
        for i in range(GRAPH_WARMUP_STEPS):
            step(idx[i % POOL])
        sync(torch)
        t = time.perf_counter()
        step(idx[0])                            # the capture (and its first replay)
        sync(torch)
        extra["capture_s"] = time.perf_counter() - t
        if step.mode != "graph":
            raise RuntimeError("capture failed; see the line above")
    name = ("batched+graph" if mode == "graph" else "batched") + (" per-direction" if per_direction else "")
    record(name, k, timed_steps(torch, lambda i: step(idx[i % POOL]), steps), torch, **extra)


def synthetic_splits(torch, n_train: int, n_eval: int):
    from noisefloor.data import Splits

    g = torch.Generator(device="cpu").manual_seed(1)
    make = lambda n: (torch.rand(n, ROWS, COLS, generator=g), torch.randint(0, CLASSES, (n,), generator=g))  # noqa: E731
    (xt, yt), (xv, yv), (xs, ys) = make(n_train), make(n_eval), make(n_eval)
    return Splits("synthetic", xt, yt, xv, yv, xs, ys, CLASSES)


def bench_train_batch(torch, k, device, n_train, epochs, modes):
    """Whole train_batch runs of K seeds in each mode: model-steps/s and how far the modes' metrics differ."""
    import dataclasses

    from noisefloor.batched import train_batch
    from noisefloor.params import DataParams, ModelParams, RunConfig, TrainParams

    cfg = RunConfig("baseline", DataParams(), ModelParams(),
                    TrainParams(epochs=epochs, batch_size=BATCH, lr=0.003, device=device.type, seed_batch=k))
    splits = synthetic_splits(torch, n_train, n_train // 4)
    steps = epochs * -(-n_train // BATCH)
    seeds = list(range(k))
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in modes:
            reset_peak(torch)
            t = time.perf_counter()
            runs = train_batch(dataclasses.replace(cfg), seeds, [Path(tmp, mode, str(s)) for s in seeds],
                               splits=splits, log=lambda _line: None, step_mode=mode)
            sync(torch)
            wall = time.perf_counter() - t
            out[mode] = runs
            record(f"train_batch ({mode})", k, wall / steps, torch, wall_s=wall, epochs=epochs, n_train=n_train)
    if len(modes) == 2:
        a, b = (out[m] for m in modes)
        diff = max(abs(ra[m] - rb[m]) / abs(rb[m]) for ra, rb in zip(a, b) for m in ("train_loss", "val_loss"))
        RESULTS["checks"][f"train_batch_{modes[0]}_vs_{modes[1]}_k{k}"] = {"max_rel_loss_diff": diff}
        say(f"train_batch K={k}: {modes[0]} vs {modes[1]}: max rel loss diff {diff:.2e}")


def bench_compile(torch, k, steps, device, mode):
    reset_peak(torch)
    model = batched_model(torch, k, device)
    compiled = torch.compile(model, mode=mode)
    opt = torch.optim.Adam(model.parameters(), lr=0.003)
    x, y, idx = data(torch, k, device)

    def step(i):
        rows = idx[i % POOL]
        logits = compiled(x[rows])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, CLASSES), y[rows].reshape(-1),
                                                 reduction="none").view(k, -1).mean(dim=1).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

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
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--budget", type=float, default=240.0, help="seconds; later optional parts are skipped")
    ap.add_argument("--json")
    ap.add_argument("--cpu-smoke", action="store_true",
                    help="exercise the script's plumbing on CPU (tiny sizes; static buffers instead of graphs)")
    ap.add_argument("--cudnn-worker", nargs=2, metavar=("STEPS", "SYNC_DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("PYTHONPATH", str(ROOT / "src"))
    sys.path.insert(0, str(ROOT / "src"))
    if args.cudnn_worker:
        cudnn_worker(int(args.cudnn_worker[0]), args.cudnn_worker[1])
        return 0
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

    graph = "static" if args.cpu_smoke else "graph"
    guarded("cudnn", bench_cudnn, torch, args.steps, device)
    guarded("cudnn x4 processes", bench_processes, torch, 4, 3 * args.steps, device)
    for k in args.k:
        guarded(f"batched K={k}", bench_step, torch, k, args.steps, device, "eager")
        if not args.cpu_smoke:
            guarded(f"graph K={k}", bench_step, torch, k, args.steps, device, "graph")
    big = max(args.k)     # what joining the two directions in one loop gains there
    guarded(f"batched K={big} per-direction", bench_step, torch, big, args.steps, device, "eager", True)
    if not args.cpu_smoke:
        guarded(f"graph K={big} per-direction", bench_step, torch, big, args.steps, device, "graph", True)
    n_train, epochs = (600, 1) if args.cpu_smoke else (12_000, 2)
    guarded("train_batch K=32", bench_train_batch, torch, 2 if args.cpu_smoke else 32, device, n_train, epochs,
            [graph, "eager"])
    if not args.cpu_smoke:
        guarded("train_batch K=64", bench_train_batch, torch, 64, device, n_train, epochs, [graph], optional=True)
    guarded("equivalence", check_equivalence, torch, device)
    guarded("forkserver", check_forkserver, device)
    if args.cpu_smoke:
        say("done (CPU smoke run: graphs and compile need CUDA)")
        return 0
    for k in sorted(args.k, reverse=True):
        guarded(f"compile K={k}", bench_compile, torch, k, args.steps, device, "default", optional=True)
    say("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
