"""End to end: the real Snakefile on the tiny smoke params, in a temporary directory."""

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.helpers import ROOT, SMOKE, SNAKEMAKE, metrics_stamps, snakemake

pytestmark = pytest.mark.slow


@pytest.fixture
def own_sweep(sweep, tmp_path):
    """A copy of the finished sweep for a test that changes it (timestamps kept), so tests run in any order."""
    return Path(shutil.copytree(sweep, tmp_path / "sweep", symlinks=True))


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """One full run of the smoke experiment; later tests edit params and rerun."""
    if SNAKEMAKE is None:
        pytest.skip("snakemake is not installed")
    work = tmp_path_factory.mktemp("sweep")
    shutil.copy(SMOKE, work / "params.yaml")
    snakemake(work)
    return work


def test_artifacts_have_the_expected_content(sweep):
    runs = pd.read_csv(sweep / "results" / "runs.csv")
    assert len(runs) == 7 and set(runs.config) == {"baseline", "lr_hi", "wide"}
    assert (runs.status == "ok").all() and runs.val_acc.between(0, 1).all()
    summary = json.loads((sweep / "results" / "analysis" / "summary.json").read_text())
    assert summary["n_runs"] == 7 and summary["noise_floor"] > 0
    assert summary["noise_floor_ci"][0] < summary["noise_floor"] < summary["noise_floor_ci"][1]
    # the noise floor is the baseline's own seed-to-seed std of what runs.csv holds
    assert summary["noise_floor"] == pytest.approx(runs[runs.config == "baseline"].val_acc.std(ddof=1), rel=1e-12)
    comp = pd.read_csv(sweep / "results" / "analysis" / "comparisons.csv")
    assert list(comp.config) == ["lr_hi", "wide"]
    assert (comp["diff"] == comp["mean"] - comp["baseline_mean"]).all()
    assert comp["baseline_mean"].iloc[0] == pytest.approx(runs[runs.config == "baseline"].val_acc.mean(), rel=1e-12)
    for name in ("noise_vs_signal", "config_distributions", "differences", "learning_curves", "importance"):
        png = sweep / "results" / "plots" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (sweep / "results" / "report.html").read_text()
    assert "lr_hi" in html and "wide" in html and "data:image/png;base64," in html
    assert "src=\"http" not in html
    # each run's log holds its per-epoch progress
    log = (sweep / "results" / "logs" / "train" / "wide" / "seed1.log").read_text()
    assert "epoch 1/2" in log and "epoch 2/2" in log


def test_a_second_experiment_in_the_same_folder_touches_none_of_the_firsts_files(own_sweep):
    first = {p: p.stat().st_mtime_ns for p in (own_sweep / "results").rglob("*") if p.is_file()}
    raw = yaml.safe_load(SMOKE.read_text())
    raw["configs"] = {"lr_hi": raw["configs"]["lr_hi"]}
    raw["seeds"] = {"noise": [0, 1, 2], "signal": [0, 1]}
    (own_sweep / "other.yaml").write_text(yaml.safe_dump(raw))
    snakemake(own_sweep, params="other.yaml", results="out/")
    assert {p: p.stat().st_mtime_ns for p in first} == first
    assert {p for p in (own_sweep / "results").rglob("*") if p.is_file()} == set(first)
    assert len(pd.read_csv(own_sweep / "out" / "runs.csv")) == 5
    assert "epoch 2/2" in (own_sweep / "out" / "logs" / "train" / "lr_hi" / "seed1.log").read_text()
    assert (own_sweep / "out" / "logs" / "report.log").is_file() and (own_sweep / "out" / "report.html").is_file()


def test_snakemakes_own_report_has_every_figure_with_the_tables_caption(sweep, tmp_path):
    import zipfile

    from noisefloor.pipeline import FIGURES

    snakemake(sweep, "--report", str(tmp_path / "report.zip"))
    with zipfile.ZipFile(tmp_path / "report.zip") as z:
        page = z.read("report/report.html").decode()           # Snakemake's own page
        names = z.namelist()
    for figure in FIGURES:
        assert any(n.endswith(figure.file) for n in names), figure.file
        assert json.dumps(figure.caption.split(".")[0])[1:-1] in page, figure.key
    # ... and noisefloor's own report, with the answer and the verdict table
    ours = [n for n in names if n.endswith("report.html") and n != "report/report.html"]
    assert len(ours) == 1, names
    with zipfile.ZipFile(tmp_path / "report.zip") as z:
        html = z.read(ours[0]).decode()
    assert 'id="answer"' in html and 'id="verdicts"' in html and "The answer" in page


def test_second_run_does_nothing(sweep):
    before = metrics_stamps(sweep)
    proc = snakemake(sweep)
    assert "Nothing to be done" in proc.stdout + proc.stderr
    assert metrics_stamps(sweep) == before


def test_changing_one_variant_retrains_only_its_runs(own_sweep):
    before = metrics_stamps(own_sweep)
    raw = yaml.safe_load((own_sweep / "params.yaml").read_text())
    raw["configs"]["lr_hi"]["lr"] = 0.03
    (own_sweep / "params.yaml").write_text(yaml.safe_dump(raw))
    snakemake(own_sweep)
    after = metrics_stamps(own_sweep)
    changed = {k for k in before if after[k] != before[k]}
    assert changed == {"results/runs/lr_hi/seed0/metrics.json", "results/runs/lr_hi/seed1/metrics.json"}
    m = json.loads((own_sweep / "results/runs/lr_hi/seed0/metrics.json").read_text())
    assert m["resolved_config"]["train"]["lr"] == 0.03


def test_adding_a_seed_trains_only_that_seed(own_sweep):
    before = metrics_stamps(own_sweep)
    raw = yaml.safe_load((own_sweep / "params.yaml").read_text())
    raw["seeds"]["noise"].append(7)
    (own_sweep / "params.yaml").write_text(yaml.safe_dump(raw))
    snakemake(own_sweep)
    after = metrics_stamps(own_sweep)
    assert set(after) - set(before) == {"results/runs/baseline/seed7/metrics.json"}
    assert all(after[k] == before[k] for k in before)
    assert len(pd.read_csv(own_sweep / "results" / "runs.csv")) == 8


def test_a_project_path_with_a_space_works_and_nothing_is_written_outside_it(tmp_path):
    """Every path a rule hands the shell is quoted: a folder named "my project" given by absolute paths from
    another working directory (a run once failed there and wrote a file named "my" beside it)."""
    if SNAKEMAKE is None:
        pytest.skip("snakemake is not installed")
    project, elsewhere = tmp_path / "my project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    (project / "params.yaml").write_text(SMOKE.read_text())
    snakemake(elsewhere, params=str(project / "params.yaml"), results=str(project / "results"))
    assert (project / "results" / "report.html").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "my project"]
    assert sorted(p.name for p in elsewhere.iterdir() if p.name != ".snakemake") == []


def test_bad_params_stop_before_any_training(tmp_path):
    if SNAKEMAKE is None:
        pytest.skip("snakemake is not installed")
    raw = yaml.safe_load(SMOKE.read_text())
    raw["configs"]["lr/hi"] = {"lr": 0.1}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    proc = snakemake(tmp_path, check=False)
    assert proc.returncode != 0
    assert "config name 'lr/hi' is not allowed" in proc.stderr
    assert not (tmp_path / "results").exists()


def test_missing_dataset_directory_stops_before_any_training(tmp_path):
    if SNAKEMAKE is None:
        pytest.skip("snakemake is not installed")
    raw = yaml.safe_load(SMOKE.read_text())
    raw["data"] = {"dataset": "fashion-mnist", "root": str(tmp_path / "no-such-dir")}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    proc = snakemake(tmp_path, check=False)
    assert proc.returncode != 0
    assert f"{tmp_path / 'no-such-dir'}: Fashion-MNIST directory not found" in proc.stderr
    assert not (tmp_path / "results").exists()


def job_stats(output: str) -> dict[str, int]:
    """Snakemake's "Job stats" table of a dry run: {rule: jobs}."""
    table = output.split("Job stats:", 1)[1]
    return {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.M)}


def test_the_shipped_workflow_lints_clean(tmp_path):
    if SNAKEMAKE is None:
        pytest.skip("snakemake is not installed")
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    lint = snakemake(tmp_path, "--lint", check=False)
    assert lint.returncode == 0 and "Lints for" not in lint.stdout + lint.stderr, lint.stdout + lint.stderr


def test_dry_run_of_the_shipped_workflow_plans_every_run(tmp_path):
    if SNAKEMAKE is None:
        pytest.skip("snakemake is not installed")
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    # 20 noise seeds of the baseline; 4 variants x 4 signal seeds; one job per later step (sweep_select,
    # decompose_record and plan_round write the records of a sweep, a decomposition and adaptive rounds,
    # here that there are none, as DVC does)
    assert job_stats(snakemake(tmp_path, "-n").stdout) == {
        "train_noise": 20, "train_signal": 16, "sweep_select": 1, "decompose_record": 1, "plan_round": 1,
        "aggregate": 1, "analyze": 1, "plot": 1, "report_html": 1, "all": 1, "total": 44}
