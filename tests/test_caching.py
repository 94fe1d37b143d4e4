"""A result is stale exactly when what shapes it changes: its params or its code, under both engines.

Each test runs the smoke experiment in a temporary copy of the project (as a
fresh clone would have it), importing that copy's code, then edits one file of
the copy and asks the engine what it would rerun:

- a model edit retrains every run (and everything after);
- a report edit rewrites only the report;
- a README edit reruns nothing.

The code behind each step is listed once, in ``noisefloor.pipeline``; its
fingerprint is recorded in every run's metrics.json.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from noisefloor import pipeline
from tests.helpers import BIN, SMOKE, SNAKEMAKE, make_project

pytestmark = pytest.mark.slow
DVC = shutil.which("dvc", path=str(BIN))
ANALYSIS_STEPS = ["aggregate", "analyze", "plot", "report_html"]


def run(project: Path, *cmd: str) -> str:
    # The copy's own code is imported (and fingerprinted); PATH holds only the
    # system's directories plus, for DVC's stage commands, this environment's.
    env = dict(os.environ, PYTHONPATH=str(project / "src"), DVC_NO_ANALYTICS="1",
               PATH=f"{BIN}{os.pathsep}{os.defpath}")
    proc = subprocess.run(list(cmd), cwd=project, capture_output=True, text=True, env=env, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{out}"
    return out


def edit(path: Path, line: str) -> None:
    """Append one line: a change of content that changes no behaviour."""
    path.write_text(path.read_text() + line + "\n")


def fingerprints(project: Path) -> dict[str, str]:
    """Each step's code fingerprint, computed by the copy's own code."""
    out = run(project, sys.executable, "-c", "from noisefloor import pipeline\n"
              "for s in pipeline.STEPS: print(s.name, pipeline.code_fingerprint(s.name))")
    return dict(line.split() for line in out.splitlines())


def fingerprint_of(project: Path) -> str:
    return fingerprints(project)["train_noise"]


def recorded_fingerprints(project: Path) -> set[str]:
    return {json.loads(p.read_text())["code_fingerprint"] for p in (project / "results" / "runs").rglob("metrics.json")}


# --------------------------------------------------------------------------- the fingerprint


def test_the_fingerprint_changes_with_the_code_it_covers_and_nothing_else(tmp_path):
    project = make_project(tmp_path, SMOKE.read_text())
    before = fingerprints(project)
    assert before["train_noise"] == pipeline.code_fingerprint("train_noise")   # the copy is the same code
    edit(project / "src/noisefloor/report.py", "# a comment")
    edit(project / "README.md", "<!-- a comment -->")
    after = fingerprints(project)
    assert [s for s in before if before[s] != after[s]] == ["report_html"]


def test_every_listed_code_path_exists_and_every_module_is_placed():
    """A module the table forgets cannot make a result stale; a listed one that is gone fails here."""
    listed = {p for step in pipeline.STEPS for entry in step.code for p in pipeline._files(entry)}
    modules = {p for p in pipeline.PACKAGE_DIR.glob("*.py")}
    # Modules that shape no step's outputs: the entry points, the workflow glue, the fork
    # server (it runs the same code faster), errors, and the cluster helpers. The harness of a
    # user's program and the determinism check run the user's code, whose declared deps are
    # its fingerprint (noisefloor.program); they change no number of the built-in model. Setting up a
    # project (deploy) and reading where its runs stand (status) change none either, nor does logging
    # to an experiment tracker (trackers: it reads the results, and writes none).
    outside = {p.name for p in modules - listed}
    assert outside <= {"__init__.py", "__main__.py", "forkserver.py", "errors.py", "cluster.py", "program.py",
                       "determinism.py", "deploy.py", "status.py", "trackers.py"}, outside


# --------------------------------------------------------------------------- Snakemake


def snakemake_plan(project: Path) -> dict[str, int]:
    """What a dry run would execute: {rule: jobs}, empty when nothing is to be done."""
    out = run(project, SNAKEMAKE, "-n", "--cores", "2")
    if "Nothing to be done" in out:
        return {}
    table = out.split("Job stats:", 1)[1]
    return {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.M) if rule != "total"}


@pytest.mark.skipif(SNAKEMAKE is None, reason="snakemake is not installed")
def test_snakemake_reruns_exactly_what_the_edited_code_shapes(tmp_path):
    project = make_project(tmp_path, SMOKE.read_text())
    run(project, SNAKEMAKE, "--cores", "2")
    assert recorded_fingerprints(project) == {fingerprint_of(project)}
    assert snakemake_plan(project) == {}

    edit(project / "README.md", "<!-- a comment -->")
    assert snakemake_plan(project) == {}

    edit(project / "src/noisefloor/report.py", "# a comment")
    assert snakemake_plan(project) == {"report_html": 1, "all": 1}
    report = project / "results" / "report.html"
    others = {p: p.stat().st_mtime_ns for p in (project / "results").rglob("*")
              if p.is_file() and p != report and "logs" not in p.relative_to(project / "results").parts}
    before = report.stat().st_mtime_ns
    run(project, SNAKEMAKE, "--cores", "2")
    assert report.stat().st_mtime_ns != before
    assert {p: p.stat().st_mtime_ns for p in others} == others

    edit(project / "src/noisefloor/models.py", "# a comment")
    plan = snakemake_plan(project)
    # (and round 1's record, which reads the runs: here that there is no adaptive section)
    assert plan == {"train_noise": 3, "train_signal": 4, "plan_round": 1, **dict.fromkeys(ANALYSIS_STEPS, 1),
                    "all": 1}


# --------------------------------------------------------------------------- DVC


def dvc_changed_stages(project: Path) -> set[str]:
    """Stages whose own dependencies changed (`dvc status`), without downstream ones."""
    out = run(project, DVC, "status", "--json")
    return set(json.loads(out[out.index("{"):] if "{" in out else "{}"))


@pytest.mark.skipif(DVC is None, reason="dvc is not installed")
def test_dvc_reruns_exactly_what_the_edited_code_shapes(tmp_path):
    project = make_project(tmp_path, SMOKE.read_text())   # a DVC project already (.dvc/ is committed)
    run(project, DVC, "repro")
    assert recorded_fingerprints(project) == {fingerprint_of(project)}
    assert dvc_changed_stages(project) == set()

    edit(project / "README.md", "<!-- a comment -->")
    assert dvc_changed_stages(project) == set()

    edit(project / "src/noisefloor/report.py", "# a comment")
    assert dvc_changed_stages(project) == {"report_html"}
    out = run(project, DVC, "repro")
    assert re.findall(r"Running stage '([^']+)'", out) == ["report_html"]

    edit(project / "src/noisefloor/models.py", "# a comment")
    train = {f"train_noise@{s}" for s in (0, 1, 2)} | {f"train_signal@{c}-{s}" for c in ("lr_hi", "wide")
                                                       for s in (0, 1)}
    # (and the sweep's, the decomposition's and the adaptive stages, which share the runs' code; without
    # those sections they train nothing)
    assert dvc_changed_stages(project) == train | {"train_sweep", "train_decompose", "train_adaptive"}
