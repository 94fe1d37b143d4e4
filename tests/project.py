"""A temporary copy of the project as a fresh clone would have it: for the end-to-end engine tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.conftest import ROOT


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
