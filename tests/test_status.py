"""Why a finished run will train again, one line per reason, for either engine (`noisefloor status`)."""

from __future__ import annotations

import pytest
import yaml

from noisefloor import cli, params as P, status
from tests.helpers import snakemake, toy_params


def _status_lines(params, capsys) -> list[str]:
    capsys.readouterr()
    assert cli.main(["status", "--params", str(params), "--runs-dir", str(params.parent / "runs")]) == 0
    return [line.removeprefix("status: ") for line in capsys.readouterr().err.splitlines()]


def test_an_edited_dep_and_an_edited_config_are_each_named_with_their_counts(tmp_path, capsys):
    params = toy_params(tmp_path, extra={"program": {"deps": ["toy.py", "lib"]}})
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "util.py").write_text("X = 1\n")
    assert _status_lines(params, capsys) == ["0 of 5 runs finished and current; 5 to train"]
    runs = tmp_path / "runs"
    for config, seed in P.load(params).runs():
        assert cli.main(["train", "--params", str(params), "--config", config, "--seed", str(seed),
                         "--runs-dir", str(runs)]) == 0
    assert _status_lines(params, capsys) == ["5 of 5 runs finished and current; 0 to train"]

    (tmp_path / "lib" / "util.py").write_text("X = 2\n")
    raw = yaml.safe_load(params.read_text())
    raw["configs"]["lr_hi"]["lr"] = 0.03
    params.write_text(yaml.safe_dump(raw))
    assert _status_lines(params, capsys) == [
        "params changed (lr_hi): 2 finished runs are stale and will retrain",
        "program deps changed (lib/util.py): 3 finished runs are stale and will retrain",
        "0 of 5 runs finished and current; 5 to train",
    ]
    # status reads; it writes nothing and trains nothing
    assert status.status(P.load(params), runs).finished == 0


def test_adding_check_determinism_after_the_runs_is_named(tmp_path, capsys):
    params = toy_params(tmp_path, configs={})
    runs = tmp_path / "runs"
    assert cli.main(["train", "--params", str(params), "--config", "baseline", "--seed", "0", "--seed", "1",
                     "--seed", "2", "--runs-dir", str(runs)]) == 0
    raw = yaml.safe_load(params.read_text())
    raw["program"]["check_determinism"] = True
    params.write_text(yaml.safe_dump(raw))
    assert _status_lines(params, capsys)[0] == (
        "program.check_determinism asks for its repeat: 1 finished run is stale and will retrain")


@pytest.mark.slow
def test_snakemake_names_the_reason_before_it_retrains(tmp_path):
    params = toy_params(tmp_path, configs={})
    snakemake(tmp_path, params=str(params))
    (tmp_path / "toy.py").write_text((tmp_path / "toy.py").read_text() + "\n# edited\n")
    proc = snakemake(tmp_path, "-n", params=str(params))
    assert "noisefloor: program deps changed (toy.py): 3 finished runs are stale and will retrain" in proc.stderr
