"""Helpers shared by the benchmark scripts (not part of the package)."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMING_KEYS = {"wall_time_s", "resumed_from_epoch"}


def machine() -> str:
    """One line naming the machine, for results tables."""
    cpu = platform.processor() or platform.machine()
    with_name = Path("/proc/cpuinfo")
    if with_name.exists():
        for line in with_name.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        load = "load %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        load = "load n/a"
    import torch

    return (f"{cpu}, {os.cpu_count()} logical CPUs, {load}, Python {platform.python_version()}, "
            f"torch {torch.__version__}")


def tool(name: str) -> str:
    """An executable next to this Python first (the project's venv), then on PATH."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        sys.exit(f"{name} not found (install the workflow extra: pip install -e '.[workflow]')")
    return found


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a subprocess: this venv's bin first, this checkout's src importable."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


def timed(cmd: list[str], env: dict, cwd: Path | None = None) -> float:
    """Wall seconds of a command; exits with its output if it fails."""
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return elapsed


def metrics_of(runs_dir: Path) -> dict[str, dict]:
    """metrics.json of every run under ``runs_dir``, without the timing fields."""
    out = {}
    for path in sorted(Path(runs_dir).rglob("metrics.json")):
        m = json.loads(path.read_text())
        out[str(path.relative_to(runs_dir))] = {k: v for k, v in m.items() if k not in TIMING_KEYS}
    return out


def dvc_project(dest: Path, params_text: str) -> Path:
    """A git repository holding this checkout's files (as a clone would) with ``params_text`` as params.yaml."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.splitlines()
    for rel in files:
        if rel != "dvc.lock" and (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    (dest / "params.yaml").write_text(params_text)
    for cmd in (["init", "-q"], ["add", "-A"],
                ["-c", "user.name=bench", "-c", "user.email=bench@invalid", "commit", "-q", "-m", "project"]):
        subprocess.run(["git", *cmd], cwd=dest, check=True, capture_output=True)
    return dest


def same_metrics(name: str, got: dict, reference: dict | None, n_runs: int) -> dict:
    """Stop unless ``got`` (:func:`metrics_of`) has ``n_runs`` runs, each as in ``reference`` (the first pass's,
    None on the first pass); returns the reference."""
    if len(got) != n_runs:
        sys.exit(f"{name}: {len(got)} runs written, expected {n_runs}")
    if reference is None:
        return got
    if got != reference:
        bad = sorted(k for k in reference if got.get(k) != reference[k])
        sys.exit(f"{name}: metrics differ from the first pass in {len(bad)} runs, e.g. {bad[:3]}")
    return reference


def print_ratios(times: dict, baseline: str, n_runs: int, width: int = 28) -> None:
    """Each candidate's median seconds and its ratio to ``baseline``'s median (the same run's)."""
    import statistics

    base = statistics.median(times[baseline])
    print(f"\nmetrics.json identical (timing fields aside) in all {n_runs} runs of every pass")
    print(f"{'':<{width}}{'median s':>10}{'ratio to ' + baseline:>{len(baseline) + 12}}")
    for name, ts in times.items():
        med = statistics.median(ts)
        label = f"{name} (baseline)" if name == baseline else name
        print(f"{label:<{width}}{med:10.1f}{med / base:{len(baseline) + 12}.2f}")
