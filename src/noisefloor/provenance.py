"""Where a report's numbers come from: date, code, libraries, machine, params, runs.

Everything here is read cheaply (no torch import: library versions come from
the installed packages' metadata), and anything that cannot be read is "n/a",
never an error: a report of someone else's runs table has no git commit.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import pandas as pd


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "n/a"


def _git(cwd: Path) -> str:
    """``<commit>`` or ``<commit> (uncommitted changes)``; n/a outside a git checkout."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=cwd, capture_output=True,
                                text=True, timeout=10)
        if commit.returncode != 0:
            return "n/a"
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "n/a"
    dirty = " (uncommitted changes)" if status.returncode == 0 and status.stdout.strip() else ""
    return commit.stdout.strip() + dirty


def _code_versions(fingerprints: pd.Series) -> str:
    """The training code's fingerprint, or a warning when the runs were trained by different code."""
    counts = fingerprints.fillna("not recorded").value_counts()
    if len(counts) == 1:
        return f"{counts.index[0]} (every run)"
    listed = ", ".join(f"{fp} ({n} runs)" for fp, n in counts.items())
    return f"runs trained by {len(counts)} versions of the code: {listed}"


def provenance(*, params_text: str | None = None, runs: pd.DataFrame | None = None,
               eval_size: int | None = None, cwd: str | Path = ".") -> list[tuple[str, str]]:
    """(label, value) rows for the report's provenance block, in reading order.

    ``cwd`` is the experiment's folder (the user's project, where the engines
    run): its git commit is the code's. torch and the device are the built-in
    model's; a user's program is described by its command and deps instead.
    """
    has_runs = runs is not None and len(runs)
    programs = sorted(map(str, runs["program"].dropna().unique())) if has_runs and "program" in runs else []
    rows = [
        ("report made", _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")),
        ("git commit", _git(Path(cwd))),
        ("noisefloor", _version("noisefloor")),
        ("python", platform.python_version()),
        *([] if programs else [("torch", _version("torch"))]),
        ("numpy / scipy / pandas", f"{_version('numpy')} / {_version('scipy')} / {_version('pandas')}"),
        ("params file sha256", hashlib.sha256(params_text.encode()).hexdigest()[:16] if params_text else "n/a"),
        ("evaluation set", f"{eval_size} examples" if eval_size else "n/a"),
    ]
    if has_runs:
        devices = sorted(map(str, runs["device"].dropna().unique())) if "device" in runs else []
        if devices or not programs:
            rows.append(("device", ", ".join(devices) or "n/a"))
        rows.append(("runs", f"{len(runs)} ({runs['config'].nunique()} configs)" if "config" in runs
                     else str(len(runs))))
        if programs or "code_fingerprint" in runs:      # a noisefloor runs table (not a tracker's export)
            rows.append(("program", " | ".join(programs) or "the built-in BiLSTM"))
        if "code_fingerprint" in runs and runs["code_fingerprint"].notna().any():
            label = "program deps (content hash)" if programs else "training code"
            rows.append((label, _code_versions(runs["code_fingerprint"])))
        if "repeat_identical" in runs and runs["repeat_identical"].notna().any():
            # program.check_determinism: the sentence the run recorded, whichever way it went.
            rows.append(("determinism", "; ".join(runs["repeat_note"].dropna().astype(str))))
        if "wall_time_s" in runs and runs["wall_time_s"].notna().any():
            total = float(runs["wall_time_s"].sum())
            rows.append(("training time", f"{total / 60:.1f} min in all runs ({total / len(runs):.1f} s per run)"))
    return rows
