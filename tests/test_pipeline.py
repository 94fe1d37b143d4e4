"""The pipeline's facts are written once (noisefloor.pipeline); dvc.yaml, a plain file, must agree.

dvc.yaml is kept readable for DVC users rather than generated, so these tests
hold it to the table: the same step names as the Snakemake rules, every output,
every code dependency, every figure. Adding a figure, an analysis file or a code
module in one place only fails here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from noisefloor import pipeline
from tests.helpers import ROOT, SNAKEMAKE, snakemake_command

DVC_YAML = yaml.safe_load((ROOT / "dvc.yaml").read_text())
STAGES = DVC_YAML["stages"]


def as_pattern(path: str) -> str:
    """A dvc.yaml path in the table's form: relative to results/, with {config} and {seed}."""
    path = re.sub(r"\$\{(stats\.baseline|item\.config)\}", "{config}", path)
    path = path.replace("${item.seed}", "{seed}")
    assert path.startswith("results/"), path
    return path[len("results/"):]


def stage_outputs(stage: dict) -> set[str]:
    paths = [*stage.get("outs", []), *stage.get("metrics", [])]
    return {as_pattern(p if isinstance(p, str) else next(iter(p))) for p in paths}


def stage_code(stage: dict) -> set[str]:
    return {d for d in stage["deps"] if d.startswith(pipeline.SOURCE_PREFIX)}


DVC_STAGES = pipeline.dvc_stages()


def stage_steps_outputs(steps) -> set[str]:
    return {out for step in steps for out in step.dvc_outputs}


def test_dvc_stages_are_the_pipeline_steps():
    assert list(STAGES) == list(DVC_STAGES)
    assert [s.name for s in DVC_STAGES["train_sweep"]] == ["train_sweep", "sweep_select"]


@pytest.mark.parametrize("stage", DVC_STAGES)
def test_each_dvc_stage_writes_the_steps_outputs(stage):
    assert stage_outputs(STAGES[stage]) == stage_steps_outputs(DVC_STAGES[stage])


@pytest.mark.parametrize("stage", DVC_STAGES)
def test_each_dvc_stage_depends_on_exactly_the_steps_code(stage):
    assert stage_code(STAGES[stage]) == {d for step in DVC_STAGES[stage] for d in pipeline.code_deps(step.name)}


@pytest.mark.parametrize("stage", DVC_STAGES)
def test_a_stage_depends_on_the_whole_params_file_exactly_when_it_quotes_it(stage):
    assert ("params.yaml" in STAGES[stage]["deps"]) == any(s.quotes_params for s in DVC_STAGES[stage])


def test_a_folder_step_writes_inside_its_folder():
    for step in pipeline.STEPS:
        assert all(out.startswith(f"{step.folder}/") for out in step.outputs if step.folder)


def test_each_step_depends_on_what_the_previous_steps_write():
    """Every file a later stage reads is some earlier stage's output (and the report gets every figure)."""
    written: set[str] = set()
    for stage, steps in DVC_STAGES.items():
        for dep in STAGES[stage]["deps"]:
            if dep.startswith("results/") and dep != "results/runs":
                assert as_pattern(dep) in written, f"{stage} reads {dep}, which no earlier step writes"
        written |= {out for step in steps for out in step.outputs} | {step.folder for step in steps if step.folder}
    report_deps = {as_pattern(d) for d in STAGES["report_html"]["deps"] if d.startswith("results/")}
    assert {f"plots/{f.file}" for f in pipeline.FIGURES} <= report_deps


def test_dvc_plots_show_every_figure():
    images = {p for p in DVC_YAML["plots"] if isinstance(p, str)}
    assert images == {f"results/plots/{f.file}" for f in pipeline.FIGURES}


def test_every_figure_and_report_file_has_a_caption():
    for figure in pipeline.FIGURES:
        assert figure.caption and pipeline.caption_rst(figure.key).startswith(f"**{figure.title}.**")
    captioned = {Path(p).stem for step in ("analyze", "report_html") for p in pipeline.STEP[step].outputs}
    assert set(pipeline.FILE_CAPTIONS) <= captioned and "report" in pipeline.FILE_CAPTIONS


@pytest.mark.skipif(SNAKEMAKE is None, reason="snakemake is not installed")
def test_snakemake_rules_are_the_pipeline_steps(tmp_path):
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    out = subprocess.run(snakemake_command(tmp_path, "--list-rules"), capture_output=True, text=True,
                         check=True).stdout
    rules = set(out.split()) - {"all"}
    assert rules == {step.name for step in pipeline.STEPS}


def test_the_workflow_reads_outputs_and_captions_from_the_table():
    """No output path or caption of a step is written out by hand in the Snakemake rules."""
    code = "".join(line.split("#", 1)[0] + "\n" for p in sorted((ROOT / "workflow" / "rules").glob("*.smk"))
                   for line in p.read_text().splitlines())
    for step in pipeline.STEPS:
        for output in step.outputs:
            name = Path(output).name            # as a path literal: ".../name" or "name"
            assert f'/{name}"' not in code and f'"{name}"' not in code, output
    assert not (ROOT / "workflow" / "report").exists()


EXAMPLE_STAGES = yaml.safe_load((ROOT / "examples" / "own-model" / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("stage", DVC_STAGES)
def test_the_own_model_examples_dvc_stages_write_the_steps_outputs(stage):
    """The example's dvc.yaml (a program experiment of its own) is held to the same table."""
    assert list(EXAMPLE_STAGES) == list(DVC_STAGES)
    assert stage_outputs(EXAMPLE_STAGES[stage]) == stage_steps_outputs(DVC_STAGES[stage])
    assert ("params.yaml" in EXAMPLE_STAGES[stage]["deps"]) == any(s.quotes_params for s in DVC_STAGES[stage])


def test_a_runs_outputs_and_the_runs_folder_above_them_are_the_tables():
    """The engines take a run's paths, and the runs folder above them, from the package (never parse them)."""
    from noisefloor import params as P
    from tests.helpers import SMOKE

    p = P.load(SMOKE)
    out = pipeline.run_outputs(p, p.baseline, 3)
    assert out == {"metrics": f"runs/{p.baseline}/seed3/metrics.json", "history": f"runs/{p.baseline}/seed3/history.csv"}
    assert pipeline.runs_folder(f"results/{out['metrics']}") == "results/runs"
    assert pipeline.runs_folder("x/runs/sweep/sweep_001/seed0/metrics.json") == "x/runs"
    assert pipeline.runs_folder("x/runs/decompose/decompose_all/seed0/history.csv") == "x/runs"
    assert pipeline.runs_folder("x/runs/sweep/sweep.json", depth=2) == "x/runs"
