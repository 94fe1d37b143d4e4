"""A project of one's own: `noisefloor init` in any folder, then both engines run there."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from noisefloor import cli, deploy, params as P
from tests.helpers import ROOT, SNAKEMAKE

# The user's script: six lines that only print the metric.
SCRIPT = """\
import argparse, random
ap = argparse.ArgumentParser(); ap.add_argument("--lr", type=float); ap.add_argument("--seed", type=int)
a = ap.parse_args()
random.seed(a.seed)
acc = 0.9 + (0.03 if a.lr > 0.002 else 0) + random.gauss(0, 0.01)
print(f"val_acc={acc:.4f}")
"""


def init(folder: Path, *args: str) -> int:
    return cli.main(["init", str(folder), *args])


def test_init_writes_a_project_that_checks_once_the_script_is_there(tmp_path, capsys):
    assert init(tmp_path, "--program") == 0
    names = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert names == [".gitignore", "Snakefile", "params.yaml", "profiles/default/config.yaml"]
    assert "dvc.yaml: not yet" in capsys.readouterr().err          # train.py is not there yet: check fails
    assert cli.main(["check", "--params", str(tmp_path / "params.yaml")]) == 2
    (tmp_path / "train.py").write_text(SCRIPT)
    assert cli.main(["check", "--params", str(tmp_path / "params.yaml")]) == 0
    assert init(tmp_path, "--dvc") == 0
    assert (tmp_path / "dvc.yaml").read_text() == deploy.dvc_text(P.load(tmp_path / "params.yaml"))


def test_init_makes_a_new_folder_and_refuses_a_file(tmp_path, capsys):
    new = tmp_path / "projects" / "mine"
    assert init(new, "--program") == 0 and (new / "params.yaml").is_file() and (new / "Snakefile").is_file()
    assert f"init: made {new}" in capsys.readouterr().err
    (tmp_path / "a-file").write_text("")
    assert init(tmp_path / "a-file") == 2 and "a-file: not a folder" in capsys.readouterr().err
    assert init(tmp_path / "nowhere", "--dvc") == 2
    assert "nowhere: no such folder" in capsys.readouterr().err and not (tmp_path / "nowhere").exists()


def test_the_params_skeleton_names_every_program_and_stats_key(tmp_path):
    text = deploy.params_text(program=True)
    # the optional sections a program can have (decompose is the built-in model's: check refuses it there)
    assert text.rstrip().endswith("# Optional sections (see the README): resources, sweep, adaptive, tracking.")
    assert "decompose" in deploy.params_text(program=False).rstrip().splitlines()[-1]
    schema = P.schema()["properties"]
    for section in ("program", "stats"):
        body = text.split(f"\n{section}:\n")[1].split("\n\n")[0]
        props = list(schema[section]["properties"])
        keys = [k for k in re.findall(r"^  (?:# )?([a-z_]+):(?: |$)", body, re.M) if k in props]
        assert keys == props, section
    # Written out: what DVC reads from the file itself (its templating sees no defaults).
    raw = yaml.safe_load(text)
    assert raw["stats"]["baseline"] == "baseline" and raw["configs"] and raw["seeds"]["noise"]
    assert yaml.safe_load(deploy.params_text(program=False))["data"] == {"dataset": "digits"}


def test_init_never_overwrites_and_adds_each_gitignore_line_once(tmp_path, capsys):
    (tmp_path / "params.yaml").write_text("mine: true\n")
    (tmp_path / ".gitignore").write_text("*.pyc\nresults/\n")
    assert init(tmp_path) == 0
    assert init(tmp_path) == 0
    assert (tmp_path / "params.yaml").read_text() == "mine: true\n"
    assert (tmp_path / ".gitignore").read_text() == "*.pyc\nresults/\n# noisefloor\n.snakemake/\nreport.zip\n"
    assert "params.yaml: kept (it exists)" in capsys.readouterr().err


def test_a_dvc_yaml_of_the_users_own_is_kept_and_a_generated_one_is_named_stale(tmp_path, capsys):
    init(tmp_path, "--program")
    (tmp_path / "train.py").write_text(SCRIPT)
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    assert init(tmp_path, "--dvc") == 0
    assert (tmp_path / "dvc.yaml").read_text() == "stages: {}\n"
    assert "dvc.yaml: kept (it is not one noisefloor generated)" in capsys.readouterr().err
    (tmp_path / "dvc.yaml").unlink()
    init(tmp_path, "--dvc")
    params = tmp_path / "params.yaml"
    params.write_text(params.read_text().replace("deps: [train.py]", "deps: [train.py, data]"))
    (tmp_path / "data").mkdir()
    capsys.readouterr()
    assert cli.main(["check", "--params", str(params)]) == 2
    assert "dvc.yaml: stale (it was generated from other params): run `noisefloor init --dvc`" in capsys.readouterr().err
    assert init(tmp_path, "--dvc") == 0 and cli.main(["check", "--params", str(params)]) == 0
    stage = yaml.safe_load((tmp_path / "dvc.yaml").read_text())["stages"]["train_signal"]
    assert stage["deps"] == ["train.py", "data"]


def test_the_built_in_model_gets_no_generated_dvc_yaml(tmp_path, capsys):
    assert init(tmp_path) == 0 and not (tmp_path / "dvc.yaml").exists()
    assert init(tmp_path, "--dvc") == 2
    assert "generated for a program's experiment only" in capsys.readouterr().err


def test_the_checkout_and_its_example_use_what_init_writes():
    """One source: the checkout's Snakefile imports the workflow as a project's does; the example's dvc.yaml is
    the generated one."""
    def code(text):
        return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]

    assert code((ROOT / "Snakefile").read_text()) == code(deploy.PROJECT_SNAKEFILE)
    example = ROOT / "examples" / "own-model"
    assert (example / "dvc.yaml").read_text() == deploy.dvc_text(P.load(example / "params.yaml"))
    assert (ROOT / "profiles/default/config.yaml").read_text() == \
        (deploy.PROFILES / "default/config.yaml").read_text()


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.slow
def test_a_fresh_folder_with_an_odd_path_runs_a_printing_script_under_both_engines(tmp_path):
    """The user's route: init, a script that only prints, params with program.parse; snakemake, then dvc repro
    in a copy; nothing written outside the project."""
    outside = tmp_path / "holder"
    outside.mkdir()
    project = outside / "my project's ü"
    project.mkdir()
    (outside / "neighbour.txt").write_text("untouched")
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.defpath]))

    def run(*cmd, cwd=project):
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    run(sys.executable, "-m", "noisefloor", "init", "--program")
    (project / "train.py").write_text(SCRIPT)
    params = project / "params.yaml"
    raw = yaml.safe_load(params.read_text())
    assert raw["program"]["parse"] == {"val_acc": r"val_acc=([-+.\deE]+)"}
    raw["program"]["command"] = raw["program"]["command"].replace("python ", "{python} ")
    raw["seeds"] = {"noise": [0, 1, 2, 3, 4], "signal": [0, 1, 2]}
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    run(sys.executable, "-m", "noisefloor", "init", "--dvc")
    dvc_project = outside / "dvc copy"
    shutil.copytree(project, dvc_project)

    run(SNAKEMAKE, "--cores", "2")
    summary = yaml.safe_load((project / "results/analysis/summary.json").read_text())
    assert summary["n_variants"] == 1 and summary["n_better"] == 1
    assert (project / "results/report.html").is_file()

    run("git", "init", "-q", cwd=dvc_project)
    run(sys.executable, "-m", "dvc", "init", "-q", cwd=dvc_project)
    run(sys.executable, "-m", "dvc", "repro", cwd=dvc_project)
    dvc_summary = yaml.safe_load((dvc_project / "results/analysis/summary.json").read_text())
    assert dvc_summary["noise_floor"] == summary["noise_floor"] and dvc_summary["n_better"] == 1
    assert sorted(p.name for p in outside.iterdir()) == ["dvc copy", "my project's ü", "neighbour.txt"]
