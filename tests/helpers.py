"""What the test files share besides fixtures: the project's paths, a copy of the project, Snakemake,
a toy program standing for a user's own, and a tracker's export.

Fixtures live in conftest.py; plain functions and constants live here. A test
file imports them from this module, never from another test file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "tests" / "fixtures" / "params.smoke.yaml"
#: This environment's executables (snakemake, dvc, noisefloor).
BIN = Path(sys.executable).parent
#: The snakemake the tests run: this environment's, else the first on PATH; None where there is none.
SNAKEMAKE = shutil.which("snakemake", path=str(BIN)) or shutil.which("snakemake")


# --------------------------------------------------------------------------- a fresh clone of the project
# A temporary copy of the project as a fresh clone would have it: for the end-to-end engine tests.


def project_files() -> list[str]:
    """The files a fresh clone would get, as they are now (committed or not)."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    # dvc.lock records one particular run: a clone starts without it.
    return [f for f in out.splitlines() if f != "dvc.lock" and (ROOT / f).is_file()]


def make_project(dest: Path, params_text: str) -> Path:
    """A git repository holding a copy of the project with ``params_text`` as params.yaml."""
    for rel in project_files():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest / rel)
    (dest / "params.yaml").write_text(params_text)
    git(dest, "init", "-q")
    git(dest, "config", "user.name", "noisefloor tests")
    git(dest, "config", "user.email", "tests@noisefloor.invalid")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "project")
    return dest


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


# --------------------------------------------------------------------------- Snakemake on the project's Snakefile


def snakemake_command(workdir: Path, *args: str) -> list[str]:
    """The command line that runs the project's Snakefile in ``workdir``, with ``args`` after it."""
    return [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(workdir), *args]


def snakemake(workdir: Path, *args: str, check=True, params="params.yaml",
              results=None, timeout=900) -> subprocess.CompletedProcess:
    # A bare PATH, as for a user who calls .venv/bin/snakemake without activating
    # the venv: no rule may depend on finding noisefloor (or python) there.
    env = dict(os.environ, PATH=os.defpath)
    cmd = snakemake_command(workdir, "--cores", "2", "--config", f"params={params}",
                            *([f"results={results}"] if results else []), *args)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def metrics_stamps(workdir: Path) -> dict[str, int]:
    return {str(p.relative_to(workdir)): p.stat().st_mtime_ns
            for p in sorted((workdir / "results" / "runs").rglob("metrics.json"))}


# --------------------------------------------------------------------------- the user's own program, a toy
# Its metric is a known function of its seed and hyperparameters, and its
# ``behaviour`` hyperparameter makes it break the run contract in one chosen way.


TOY = textwrap.dedent('''
    import argparse, json, os, random, signal, sys
    from pathlib import Path
    ap = argparse.ArgumentParser()
    ap.add_argument("--lr", type=float); ap.add_argument("--behaviour"); ap.add_argument("--seed", type=int)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()

    def score(lr, seed):
        return 0.5 + 10 * lr + seed / 1000

    acc = score(a.lr, 0 if a.behaviour == "seed_blind" else a.seed)
    if a.behaviour == "ignore_seed":
        acc += random.SystemRandom().random() / 100
    print("training", a.seed, file=sys.stderr)
    resumed = (a.out / "checkpoint").exists()
    if a.behaviour == "crash_once" and not resumed:    # an interrupted first attempt leaves a checkpoint
        (a.out / "checkpoint").write_text("epoch 1")
        sys.exit(3)
    if a.behaviour == "exit1":
        print("CUDA out of memory (pretend)", file=sys.stderr)
        sys.exit(1)
    history = "epoch,val_acc\\n1,%r\\n2,%r\\n" % (acc - 0.1, acc)
    if a.behaviour == "no_newline":
        history = history.rstrip()
    if a.behaviour == "noepoch":
        history = history.replace("epoch,", "step,")
    (a.out / "history.csv").write_text(history)
    metrics = {"val_acc": acc, "val_loss": 1 - acc, "note": "text is not a column"}
    if a.behaviour == "crash_once":
        metrics["resumed"] = int(resumed)
    if a.behaviour == "text":
        metrics["val_acc"] = "0.9"
    if a.behaviour == "nan":
        metrics["val_acc"] = float("nan")
    if a.behaviour == "nokey":
        del metrics["val_acc"]
    if a.behaviour == "inf":
        metrics["val_acc"] = float("inf")
    if a.behaviour == "bigint":
        metrics["val_acc"] = 10 ** 400
    text = json.dumps(metrics)
    if a.behaviour == "badjson":
        text = text[:-1]
    if a.behaviour == "list":
        text = json.dumps([acc])
    if a.behaviour != "nometrics":
        (a.out / "metrics.json").write_text(text)
    if a.behaviour == "kill_harness":    # the program finished, the harness dies before adopting it
        os.kill(os.getppid(), signal.SIGKILL)
''')


def toy_params(folder: Path, *, behaviour: str = "ok", command: str | None = None, extra: dict | None = None,
               configs: dict | None = None) -> Path:
    """Write the toy program and a params.yaml that runs it into ``folder``; returns the params file."""
    (folder / "toy.py").write_text(TOY)
    raw = {
        "program": {"command": command or "{python} toy.py --lr {lr} --behaviour {behaviour} --seed {seed} "
                                          "--out {out}", "deps": ["toy.py"]},
        "hyperparameters": {"lr": 0.01, "behaviour": behaviour},
        "configs": configs if configs is not None else {"lr_hi": {"lr": 0.02}},
        "seeds": {"noise": [0, 1, 2], "signal": [0, 1]},
        "stats": {"n_boot": 200},
    }
    for key, value in (extra or {}).items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


# --------------------------------------------------------------------------- a tracker's export


def wandb_export(seed=0):
    """W&B's CSV export: a run name, config/* hyperparameters (the seed among them), summary metrics."""
    rng = np.random.default_rng(seed)
    rows = []
    for lr, n in ((0.001, 10), (0.003, 4), (0.0003, 4)):
        for s in range(n):
            rows.append({"Name": f"run-{lr}-{s}", "State": "finished", "config/lr": lr, "config/batch_size": 64,
                         "config/seed": s, "val_acc": 0.9 + rng.normal(0, 0.005)})
    return pd.DataFrame(rows)


def settle(staging: Path) -> None:
    """Wait until no run trains ahead into ``staging`` (each holds its folder's lock while it trains)."""
    import fcntl

    from noisefloor import runner

    for lock in staging.glob(f"*/{runner.STAGED_LOCK}"):
        with open(lock) as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
