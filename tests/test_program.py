"""The user's own program as the run: params, the run contract, determinism, both kinds of program.

A tiny program (``toy.py``, written per test) stands for the user's training
script: its metric is a known function of its seed and hyperparameters, and
its ``behaviour`` hyperparameter makes it break the contract in one chosen way.
"""

from __future__ import annotations

import json
import math
import re
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml

from noisefloor import cli, params as P, program
from noisefloor.determinism import compare
from tests.helpers import toy_params

ENTRY = textwrap.dedent('''
    def train(hyperparameters, seed, out):
        assert isinstance(hyperparameters["width"], int) and isinstance(hyperparameters["flag"], bool)
        return {"val_acc": 0.5 + hyperparameters["width"] / 1000 + seed / 1000, "steps": 3}
''')


def train(params: Path, config: str, *seeds: int) -> int:
    argv = ["train", "--params", str(params), "--config", config, "--runs-dir", str(params.parent / "runs")]
    for s in seeds:
        argv += ["--seed", str(s)]
    return cli.main(argv)


def one_error_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("noisefloor: error:")]
    assert len(lines) == 1
    return lines[0]


# --------------------------------------------------------------------------- params


def test_a_program_and_its_hyperparameters_resolve_per_config(tmp_path):
    p = P.load(toy_params(tmp_path, configs={"lr_hi": {"lr": 0.02}, "calm": {"behaviour": "ok"}}))
    assert not p.program.builtin and p.program.root_path == tmp_path.resolve()
    lr_hi = p.resolve("lr_hi")
    assert dict(lr_hi.hparams) == {"lr": 0.02, "behaviour": "ok"}
    assert lr_hi.hyperparameters() == {"hp.lr": 0.02, "hp.behaviour": "ok"}
    # The identity is what runs and its values: calm overrides nothing, so it is the baseline's run.
    assert p.resolve("calm").config_hash == p.resolve("baseline").config_hash != lr_hi.config_hash
    assert p.runs() == [("baseline", 0), ("baseline", 1), ("baseline", 2), ("lr_hi", 0), ("lr_hi", 1),
                        ("calm", 0), ("calm", 1)]


def test_quoted_shell_characters_are_one_argument_and_pass(tmp_path):
    command = "{python} toy.py --lr {lr} --behaviour {behaviour} --seed {seed} --out {out} --tag 'a|b>c' --re 'x$'"
    assert P.load(toy_params(tmp_path, command=command)).program.command == command


@pytest.mark.parametrize("command, message", [
    ("{python} toy.py --lr {lr} --behaviour {behaviour} --momentum {momentum} --seed {seed} --out {out}",
     "placeholder {momentum} names no hyperparameter"),
    ("{python} toy.py --lr {lr} --seed {seed} --out {out}", "hyperparameter 'behaviour' is never used"),
    ("{python} toy.py --lr {lr} --behaviour {behaviour} --out {out}", "no {seed} placeholder"),
    ("{python} toy.py --lr {lr} --behaviour {behaviour} --seed {seed}", "no {out} placeholder"),
    ("{python} toy.py --lr {lr.x} --behaviour {behaviour} --seed {seed} --out {out}", "{lr.x} is not a name"),
    ("{python} toy.py --lr {lr!r} --behaviour {behaviour} --seed {seed} --out {out}",
     "placeholder {lr!r}: conversions are not supported"),
    ("{python} toy.py --lr {lr --behaviour {behaviour} --seed {seed} --out {out}",
     "malformed template (unexpected '{' in field name"),
    ("{python} toy.py --lr ${lr} --behaviour {behaviour} --seed {seed} --out {out}",
     "'${' is shell syntax, and no shell runs the command"),
    ("{python} toy.py --lr {lr} --behaviour {behaviour} --seed {seed} --out {out} > log.txt",
     "'>' is shell syntax"),
    ("{python} toy.py --lr {lr} --behaviour {behaviour} --seed {seed} --out {out}|tee log", "'|' is shell syntax"),
    ("cd {out} && {python} toy.py --lr {lr} --behaviour {behaviour} --seed {seed} --out {out}", "'&&' is shell"),
])
def test_a_command_that_does_not_fit_the_hyperparameters_is_refused_by_name(tmp_path, command, message):
    with pytest.raises(P.ParamsError, match="program.command") as err:
        P.load(toy_params(tmp_path, command=command))
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("change, message", [
    ({"configs": {"lr_hi": {"lr_max": 0.1}}}, "configs.lr_hi.lr_max: not a hyperparameter (hyperparameters: lr, "),
    ({"model": {"hidden_size": 8}}, "model: applies to the built-in model only"),
    ({"program": {"deps": ["toy.py", "missing.py"]}}, "program.deps[1]: 'missing.py' not found"),
    ({"program": {"entry": "toy.py:train"}}, "program: give command or entry, not both"),
    ({"hyperparameters": {"2fast": 1}}, "hyperparameters: name '2fast' is not allowed"),
    ({"program": {"threads": 0}}, "program.threads"),
    ({"hyperparameters": {"seed": 5}}, "hyperparameters.seed: the name is reserved for the run's seed ({seed})"),
    ({"program": {"command": "{python} toy.py --lr {lr:.0e} --behaviour {behaviour} --seed {seed} --out {out}"},
      "configs": {"auto": {"lr": "auto"}}},
     "configs.auto: cannot fill in the command (Unknown format code 'e' for object of type 'str')"),
    ({"configs": {"day": {"lr": __import__("datetime").date(2024, 1, 1)}}},
     "configs.day.lr: datetime.date(2024, 1, 1) is not a plain YAML value"),
    ({"program": {"command": None, "entry": "toy.py:nope"}}, "program.entry: toy.py defines no function 'nope'"),
    ({"program": {"command": None, "entry": "nosuchmod:train"}}, "program.entry: module 'nosuchmod' not found"),
])
def test_bad_program_params_are_refused_before_any_run_naming_the_key(tmp_path, change, message):
    path = toy_params(tmp_path)
    raw = yaml.safe_load(path.read_text())
    for key, value in change.items():
        raw[key] = {k: v for k, v in {**raw.get(key, {}), **value}.items() if v is not None}
    path.write_text(yaml.dump(raw, sort_keys=False))    # (yaml.dump: a date stays a YAML date)
    with pytest.raises(P.ParamsError) as err:
        P.load(path)
    assert message in str(err.value), str(err.value)


def test_the_built_in_model_refuses_program_only_keys(write_params, smoke_raw):
    with pytest.raises(P.ParamsError, match="hyperparameters: only with program.command or program.entry"):
        P.load(write_params({**smoke_raw, "hyperparameters": {"lr": 0.1}}))
    with pytest.raises(P.ParamsError, match="program.deps: only with program.command"):
        P.load(write_params({**smoke_raw, "program": {"deps": ["x"]}}))
    # check_determinism applies to the built-in model too
    assert P.load(write_params({**smoke_raw, "program": {"check_determinism": True}})).program.builtin


def test_the_built_in_models_run_identities_are_unchanged(tmp_path):
    """A program section (and lr_schedule at its default) changed nothing for the built-in model: every existing
    run stays cached."""
    import yaml

    root = Path(__file__).resolve().parents[1]
    raw = yaml.safe_load((root / "params.yaml").read_text())
    # the shipped experiment as it was before programs existed (commit 43a92c5): 8 epochs, a constant rate
    raw["train"]["epochs"] = 8
    raw["train"].pop("lr_schedule", None)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    hashes = {c: P.load(tmp_path / "params.yaml").resolve(c).config_hash for c in ("baseline", "lr_hi")}
    assert hashes == {"baseline": "4da688c2035cc409", "lr_hi": "84f50e46d00b4c2d"}
    raw["train"]["lr_schedule"] = "constant"            # spelled out, the default is still no change
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    assert P.load(tmp_path / "params.yaml").resolve("baseline").config_hash == "4da688c2035cc409"


def test_each_value_is_one_argument_in_its_yaml_spelling(tmp_path):
    argv = program.command_argv("prog --a {a} --b {b} --c {c} --d {d:.0e} --e {e} --s {seed} --o {out}",
                                {"a": True, "b": 0.1, "c": "two words", "d": 0.0003, "e": [1, 2]}, 7,
                                tmp_path / "o u t")
    assert argv == ["prog", "--a", "true", "--b", "0.1", "--c", "two words", "--d", "3e-04", "--e", "[1, 2]",
                    "--s", "7", "--o", str(tmp_path / "o u t")]


def test_flags_and_lists_become_as_many_arguments_as_they_say(tmp_path):
    template = "prog {tied:flag} {bias:flag} {norm:flag=--layer-norm} --sizes {sizes:args} --s {seed}"
    values = {"tied": True, "bias": False, "norm": True, "sizes": [64, 0.5]}
    assert program.command_argv(template, values, 3, tmp_path) == [
        "prog", "--tied", "--layer-norm", "--sizes", "64", "0.5", "--s", "3"]
    assert program.command_argv(template, {**values, "sizes": []}, 3, tmp_path)[3:] == ["--sizes", "--s", "3"]


@pytest.mark.parametrize("command, value, message", [
    ("--x={tied:flag}", True, "{tied:flag} must be a word of its own"),
    ("{tied:flag}", "yes", "{tied:flag} needs true or false, and tied is 'yes'"),
    ("{tied:args}", 3, "{tied:args} needs a list, and tied is 3"),
])
def test_a_flag_or_list_that_does_not_fit_is_refused_by_check(tmp_path, capsys, command, value, message):
    params = toy_params(tmp_path, command=f"{{python}} toy.py {command} --seed {{seed}} --out {{out}}")
    raw = yaml.safe_load(params.read_text())
    raw["hyperparameters"] = {"tied": value}
    raw["configs"] = {}
    params.write_text(yaml.safe_dump(raw))
    assert cli.main(["check", "--params", str(params)]) == 2
    assert message in one_error_line(capsys)


# --------------------------------------------------------------------------- metrics from what a script prints

PRINTS = textwrap.dedent('''
    import sys
    lr, seed = float(sys.argv[1]), int(sys.argv[2])
    for epoch in range(1, 4):
        print(f"epoch {epoch}: loss={1 / epoch:.3f} val_acc={0.5 + 10 * lr + seed / 1000 - (3 - epoch) / 10:.4f}")
    print("done; test_acc: %.4f" % (0.4 + seed / 1000))
''')


def prints_params(folder: Path, parse: dict, command: str = "{python} prints.py {lr} {seed}", **stats) -> Path:
    (folder / "prints.py").write_text(PRINTS)
    raw = {"program": {"command": command, "deps": ["prints.py"], "parse": parse},
           "hyperparameters": {"lr": 0.01}, "configs": {"lr_hi": {"lr": 0.02}},
           "seeds": {"noise": [0, 1, 2], "signal": [0, 1]}, "stats": {"n_boot": 200, **stats}}
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_a_script_that_only_prints_its_metrics_is_read_with_parse(tmp_path):
    params = prints_params(tmp_path, {"val_acc": r"val_acc=([\d.]+)", "test_acc": r"test_acc: ([\d.]+)"})
    assert train(params, "lr_hi", 2) == 0
    run = tmp_path / "runs" / "lr_hi" / "seed2"
    record = json.loads((run / "metrics.json").read_text())
    assert record["val_acc"] == 0.702 and record["test_acc"] == 0.402      # the last match
    assert record["program_metrics"] == ["test_acc", "val_acc"] and record["epochs_run"] == 3
    history = pd.read_csv(run / "history.csv")          # printed once per epoch: the learning curve
    assert history["epoch"].tolist() == [1, 2, 3] and history["val_acc"].tolist() == [0.502, 0.602, 0.702]
    assert "test_acc" not in history          # printed once: a final number, not a curve
    # How the metrics are read is part of a run's identity: another pattern is another run.
    other = P.load(prints_params(tmp_path / "..", {"val_acc": r"val_acc=(\S+)"}))
    assert other.resolve("lr_hi").config_hash != P.load(params).resolve("lr_hi").config_hash


def test_a_pattern_that_matches_nothing_fails_the_run_naming_it(tmp_path, capsys):
    params = prints_params(tmp_path, {"val_acc": r"val_acc=([\d.]+)", "bleu": r"BLEU ([\d.]+)"})
    assert train(params, "baseline", 0) == cli.EXIT_BAD_INPUT
    assert ("[baseline seed=0] program.parse.bleu: nothing the program printed matched 'BLEU ([\\d.]+)'"
            in one_error_line(capsys))
    assert not (tmp_path / "runs/baseline/seed0/metrics.json").exists()


@pytest.mark.parametrize("parse, stats, message", [
    ({"val_acc": r"val_acc=[\d.]+"}, {}, "program.parse.val_acc: 'val_acc=[\\d.]+' has 0 groups; it needs exactly one"),
    ({"val_acc": r"val_acc=([\d.]+"}, {}, "is not a regular expression (missing ), unterminated subpattern"),
    ({"val_acc": r"val_acc=([\d.]+)"}, {"metric": "test_acc"},
     "stats.metric: 'test_acc' is not in program.parse (it has: val_acc) and the command has no {out}"),
])
def test_bad_parse_settings_are_refused_by_check(tmp_path, capsys, parse, stats, message):
    assert cli.main(["check", "--params", str(prints_params(tmp_path, parse, **stats))]) == 2
    assert message in one_error_line(capsys)


LOGGER = textwrap.dedent('''
    # Logs as a CSV logger does (one row per step, the validation metric on rows of its own), into its
    # working folder: no {out} on the command line.
    import os, sys
    lr, seed = float(sys.argv[1]), int(sys.argv[2])
    os.makedirs("logs/version_0")
    with open("logs/version_0/metrics.csv", "w") as f:
        f.write("epoch,step,train_loss,val_acc\\n")
        for epoch in range(3):
            f.write(f"{epoch},{epoch * 10},{1 / (epoch + 1)},\\n")
            f.write(f"{epoch},{epoch * 10},,{0.5 + 10 * lr + seed / 1000 + epoch / 10}\\n")
''')


def test_a_csv_log_anywhere_in_the_working_folder_gives_the_metrics_and_the_curve(tmp_path, capsys):
    (tmp_path / "logger.py").write_text(LOGGER)
    raw = {"program": {"command": "{python} logger.py {lr} {seed}", "deps": ["logger.py"],
                       "metrics_file": "logs/*/metrics.csv"},
           "hyperparameters": {"lr": 0.01}, "configs": {}, "seeds": {"noise": [0, 1], "signal": [0]}}
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw))
    assert train(params, "baseline", 1) == 0
    run = tmp_path / "runs" / "baseline" / "seed1"
    record = json.loads((run / "metrics.json").read_text())
    assert record["val_acc"] == pytest.approx(0.5 + 0.1 + 0.001 + 0.2) and record["train_loss"] == 1 / 3
    history = pd.read_csv(run / "history.csv")
    assert history["epoch"].tolist() == [0, 1, 2] and history["val_acc"].round(3).tolist() == [0.601, 0.701, 0.801]
    # A JSON file that is not one fails the run with one line naming it.
    (tmp_path / "logger.py").write_text("import sys\nopen('final.json', 'w').write('{\"val_acc\": 0.9')\n")
    raw["program"]["metrics_file"] = "final.json"
    params.write_text(yaml.safe_dump(raw))
    assert train(params, "baseline", 0) == cli.EXIT_BAD_INPUT
    assert "final.json: not valid JSON" in one_error_line(capsys)
    assert not (tmp_path / "runs" / "baseline" / "seed0" / "metrics.json").exists()
    raw["program"]["metrics_file"] = "../elsewhere.csv"
    params.write_text(yaml.safe_dump(raw))
    with pytest.raises(P.ParamsError, match="program.metrics_file: '../elsewhere.csv' must be a path inside"):
        P.load(params)


# --------------------------------------------------------------------------- each run in a folder of its own

COLLIDES = textwrap.dedent('''
    # Saves model.pt where it runs, waits until every run of the test has saved its own, then reads it back.
    import pathlib, sys, time
    seed = int(sys.argv[1])
    pathlib.Path("model.pt").write_text(str(seed))
    pathlib.Path("shared", f"saved-{seed}").touch()                 # shared/: the user's folder, read through
    deadline = time.monotonic() + 120
    while len(list(pathlib.Path("shared").glob("saved-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    print("val_acc=%s" % (0.5 + int(pathlib.Path("model.pt").read_text()) / 100))
    print("data:", pathlib.Path("data.txt").read_text())
''')


def test_parallel_runs_saving_to_their_working_folder_never_collide(tmp_path):
    (tmp_path / "collides.py").write_text(COLLIDES)
    (tmp_path / "data.txt").write_text("read from the user's folder")
    (tmp_path / "shared").mkdir()
    raw = {"program": {"command": "{python} collides.py {seed} {lr}", "deps": ["collides.py"],
                       "parse": {"val_acc": r"val_acc=(\S+)"}},
           "hyperparameters": {"lr": 0.01}, "configs": {}, "seeds": {"noise": [0, 1], "signal": [0]}}
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw))
    # Both runs are under way at once (each waits for the other's save), in processes of their own.
    assert cli.main(["train", "--params", str(params), "--config", "baseline", "--seed", "0", "--seed", "1",
                     "--runs-dir", str(tmp_path / "runs"), "-j", "2"]) == 0
    for seed in (0, 1):
        record = json.loads((tmp_path / f"runs/baseline/seed{seed}/metrics.json").read_text())
        assert record["val_acc"] == 0.5 + seed / 100          # each read back its own model.pt
        log = (tmp_path / f"runs/baseline/seed{seed}").iterdir()
        assert sorted(p.name for p in log) == ["history.csv", "metrics.json"]
    assert not (tmp_path / "model.pt").exists()                   # nothing written into the user's folder
    assert sorted(p.name for p in (tmp_path / "shared").iterdir()) == ["saved-0", "saved-1"]


def test_a_working_folder_links_the_users_files_but_not_the_results(tmp_path):
    (tmp_path / "train.py").write_text("")
    (tmp_path / "results" / "runs" / "a" / "seed0").mkdir(parents=True)
    (tmp_path / ".git").mkdir()
    out = tmp_path / "results" / "runs" / "a" / "seed0" / "program"
    out.mkdir()
    (out / "checkpoint.pt").write_text("the run's own")
    links = program.link_folder(out, tmp_path)
    assert sorted(p.name for p in links) == ["train.py"]
    assert (out / "train.py").resolve() == (tmp_path / "train.py").resolve()
    program.unlink_folder(links)
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt"] and (tmp_path / "train.py").exists()


# --------------------------------------------------------------------------- the run contract


def test_a_command_run_records_the_programs_numbers_with_the_runs_identity(tmp_path):
    params = toy_params(tmp_path)
    assert train(params, "lr_hi", 1) == 0
    run = tmp_path / "runs" / "lr_hi" / "seed1"
    record = json.loads((run / "metrics.json").read_text())
    assert record["val_acc"] == 0.5 + 10 * 0.02 + 1 / 1000 and record["val_loss"] == 1 - record["val_acc"]
    assert "note" not in record and record["program_metrics"] == ["val_acc", "val_loss"]
    cfg = P.load(params).resolve("lr_hi")
    assert (record["config"], record["seed"], record["status"]) == ("lr_hi", 1, "ok")
    assert record["config_hash"] == cfg.config_hash
    assert record["code_fingerprint"] == program.deps_fingerprint(tmp_path, ["toy.py"])
    assert record["epochs_run"] == 2
    assert pd.read_csv(run / "history.csv")["val_acc"].tolist()[-1] == record["val_acc"]
    assert sorted(p.name for p in run.iterdir()) == ["history.csv", "metrics.json"]   # the program's folder went


def test_an_entry_point_is_called_with_typed_hyperparameters(tmp_path):
    (tmp_path / "model.py").write_text(ENTRY)
    raw = {"program": {"entry": "model.py:train", "deps": ["model.py"]},
           "hyperparameters": {"width": 8, "flag": True}, "configs": {"wide": {"width": 16}},
           "seeds": {"noise": [0, 1], "signal": [0]}, "stats": {}}
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw))
    assert train(params, "wide", 0, 1) == 0
    record = json.loads((tmp_path / "runs/wide/seed1/metrics.json").read_text())
    assert (record["val_acc"], record["steps"], record["program"]) == (0.5 + 0.016 + 0.001, 3,
                                                                         "entry model.py:train")
    assert (tmp_path / "runs/wide/seed1/history.csv").read_text() == "epoch\n"   # no curves: an empty table


@pytest.mark.parametrize("behaviour, message", [
    ("exit1", "[baseline seed=0] the program exited with status 1"),
    ("badjson", "metrics.json: not valid JSON"),
    ("list", "metrics.json: a JSON object of metrics was expected, not a list"),
    ("noepoch", "history.csv: no 'epoch' column (it has: step, val_acc)"),
    ("nometrics", "metrics.json: missing: the program exited 0 without writing it (it must hold at least "
                  "'val_acc')"),
    ("text", "metrics.json: 'val_acc' is '0.9', not a number"),
    ("nokey", "metrics.json: no 'val_acc' (stats.metric; it has: val_loss, note)"),
])
def test_a_run_that_breaks_the_contract_fails_with_one_line_and_leaves_nothing_finished(tmp_path, capsys,
                                                                                         behaviour, message):
    params = toy_params(tmp_path, behaviour=behaviour)
    assert train(params, "baseline", 0) == cli.EXIT_BAD_INPUT
    captured = capsys.readouterr().err
    line = [x for x in captured.splitlines() if x.startswith("noisefloor: error:")]
    assert len(line) == 1 and message in line[0], captured
    assert "training 0" in captured                     # the program's own output is in the run's log
    if behaviour == "exit1":
        assert "CUDA out of memory (pretend)" in captured
    assert not (tmp_path / "runs/baseline/seed0/metrics.json").exists()


@pytest.mark.parametrize("behaviour", ["nan", "inf"])
def test_a_non_finite_metric_is_a_diverged_run(tmp_path, behaviour):
    assert train(toy_params(tmp_path, behaviour=behaviour), "baseline", 0) == 0
    record = json.loads((tmp_path / "runs/baseline/seed0/metrics.json").read_text())
    assert record["status"] == "diverged" and record["val_acc"] is None


def test_odd_but_valid_outputs_are_read_as_written(tmp_path):
    assert train(toy_params(tmp_path, behaviour="no_newline"), "baseline", 0) == 0
    assert json.loads((tmp_path / "runs/baseline/seed0/metrics.json").read_text())["epochs_run"] == 2
    assert train(toy_params(tmp_path, behaviour="bigint"), "baseline", 1) == 0      # an int is finite
    assert json.loads((tmp_path / "runs/baseline/seed1/metrics.json").read_text())["status"] == "ok"


def test_an_entry_point_that_returns_no_dict_fails_its_run(tmp_path, capsys):
    (tmp_path / "model.py").write_text("def train(hyperparameters, seed, out):\n    return 3\n")
    raw = {"program": {"entry": "model.py:train", "deps": [str(tmp_path / "model.py")]},
           "hyperparameters": {"width": 8}, "configs": {}, "seeds": {"noise": [0, 1], "signal": [0]}, "stats": {}}
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw))
    assert P.load(params).resolve("baseline").code_fingerprint            # an absolute dep is hashed too
    assert train(params, "baseline", 0) == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "program.entry model.py:train returned a int, not a dict of metrics" in err
    assert "the program exited with status 2" in err


def test_a_harness_killed_after_the_program_finished_leaves_nothing_that_looks_finished(tmp_path):
    """The program wrote its metrics, then the harness died before adopting them (SIGKILL at a known point)."""
    import subprocess
    import sys

    params = toy_params(tmp_path, behaviour="kill_harness")
    proc = subprocess.run([sys.executable, "-m", "noisefloor", "train", "--params", str(params), "--config",
                           "baseline", "--seed", "0", "--runs-dir", str(tmp_path / "runs")],
                          capture_output=True, text=True, env={**__import__("os").environ,
                                                                "NOISEFLOOR_FORKSERVER": "0"})
    assert proc.returncode == -9, proc.stderr
    run = tmp_path / "runs/baseline/seed0"
    assert (run / "program" / "metrics.json").exists()        # the kill really came after the program's work
    assert not (run / "metrics.json").exists() and not (run / "history.csv").exists()
    # The next attempt restarts the program (it does not resume) and adopts its fresh outputs.
    toy_params(tmp_path)
    assert train(params, "baseline", 0) == 0 and (run / "metrics.json").exists()


# --------------------------------------------------------------------------- is the seed in control?


def test_check_determinism_passes_a_seeded_program_and_catches_one_that_ignores_its_seed(tmp_path, capsys):
    good = tmp_path / "good"
    good.mkdir()
    assert cli.main(["check-determinism", "--params", str(toy_params(good))]) == 0
    assert "baseline seed 0 trained twice gave identical metrics" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    assert cli.main(["check-determinism", "--params", str(toy_params(bad, behaviour="ignore_seed"))]) == 1
    err = capsys.readouterr().err
    assert "check-determinism: baseline seed 0 gave val_acc " in err
    assert "that non-determinism is part of the measured noise floor" in err
    assert not list(bad.glob("runs")) and not list(good.glob("runs"))    # a scratch folder, removed
    blind = tmp_path / "blind"
    blind.mkdir()
    assert cli.main(["check-determinism", "--params", str(toy_params(blind, behaviour="seed_blind"))]) == 1
    err = capsys.readouterr().err
    assert "check-determinism: baseline seeds 0 and 1 gave identical metrics: the program ignores its seed" in err


def test_check_determinism_as_part_of_a_run_is_recorded_for_the_baselines_first_seed(tmp_path):
    params = toy_params(tmp_path, behaviour="ignore_seed", extra={"program": {"check_determinism": True}})
    assert train(params, "baseline", 0, 1) == 0
    first = json.loads((tmp_path / "runs/baseline/seed0/metrics.json").read_text())
    other = json.loads((tmp_path / "runs/baseline/seed1/metrics.json").read_text())
    assert first["repeat_identical"] is False and "gave val_acc" in first["repeat_note"]
    assert "repeat_identical" not in other
    assert not (tmp_path / "runs/baseline/seed0/repeat").exists()


def test_compare_ignores_timings_and_names_the_metric_that_differs():
    a = {"val_acc": 0.9123, "wall_time_s": 3.0, "epoch_time": 1.0, "status": "ok", "loss": math.nan}
    b = {"val_acc": 0.9121, "wall_time_s": 4.0, "epoch_time": 2.0, "status": "ok", "loss": math.nan}
    found = compare("baseline", 0, a, b)
    assert found.differences == (("val_acc", 0.9123, 0.9121),)
    assert found.sentence().startswith("baseline seed 0 gave val_acc 0.9123 and 0.9121 when trained twice")
    assert compare("baseline", 0, a, dict(a)).identical


# --------------------------------------------------------------------------- under the workflow engines


def _snakemake(workdir: Path, *args: str) -> str:
    from tests.helpers import snakemake

    proc = snakemake(workdir, *args)
    return proc.stdout + proc.stderr


TOY_ENTRY = textwrap.dedent('''
    from pathlib import Path

    def train(hyperparameters, seed, out):
        acc = 0.5 + 10 * hyperparameters["lr"] + seed / 1000
        (Path(out) / "history.csv").write_text("epoch,val_acc\\n1,%r\\n2,%r\\n" % (acc - 0.1, acc))
        return {"val_acc": acc, "val_loss": 1 - acc}
''')


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["command", "entry"])
def test_a_program_runs_under_snakemake_and_retrains_exactly_when_a_declared_dep_changes(tmp_path, kind):
    from tests.helpers import SNAKEMAKE

    if SNAKEMAKE is None:
        pytest.skip("snakemake is not installed")
    params = toy_params(tmp_path, extra={"program": {"threads": 2}})
    if kind == "entry":
        (tmp_path / "toy.py").write_text(TOY_ENTRY)
        raw = yaml.safe_load(params.read_text())
        raw["program"] = {"entry": "toy.py:train", "deps": ["toy.py"], "threads": 2}
        params.write_text(yaml.safe_dump(raw, sort_keys=False))
    (tmp_path / "notes.py").write_text("# not a dep\n")
    _snakemake(tmp_path)
    results = tmp_path / "results"
    runs = pd.read_csv(results / "runs.csv")
    assert list(zip(runs["config"], runs["seed"])) == P.load(tmp_path / "params.yaml").runs()
    assert runs["val_acc"].tolist() == [0.5 + 10 * lr + s / 1000 for lr, s in
                                        [(0.01, 0), (0.01, 1), (0.01, 2), (0.02, 0), (0.02, 1)]]
    assert {"val_loss", "hp.lr", "hp.behaviour"} <= set(runs.columns) and "test_acc" not in runs.columns
    summary = json.loads((results / "analysis" / "summary.json").read_text())
    assert summary["n_runs"] == 5
    html = (results / "report.html").read_text()
    fingerprint = program.deps_fingerprint(tmp_path, ["toy.py"])
    assert f"{fingerprint} (every run)" in html and "program deps (content hash)" in html   # provenance
    assert ("--behaviour {behaviour} --seed {seed} --out {out}</td>" if kind == "command"
            else "entry toy.py:train</td>") in html
    assert (results / "plots" / "learning_curves.png").stat().st_size > 0

    def plan() -> str:
        return _snakemake(tmp_path, "-n")

    assert "Nothing to be done" in plan()
    (tmp_path / "notes.py").write_text("# edited, still not a dep\n")
    assert "Nothing to be done" in plan()
    with open(tmp_path / "toy.py", "a") as fh:
        fh.write("# an edit of the program\n")
    out = plan()
    assert re.search(r"^train_noise\s+3$", out, re.M) and re.search(r"^train_signal\s+2$", out, re.M), out
    # What each training job asks a scheduler for: the program's threads.
    assert sorted(re.findall(r"rule (train_\w+):.*?threads: (\d+)", out, re.S)) == \
        [("train_noise", "2")] * 3 + [("train_signal", "2")] * 2, out


def test_the_report_states_what_the_determinism_check_found(tmp_path):
    from noisefloor.provenance import provenance

    params = toy_params(tmp_path, behaviour="ignore_seed", extra={"program": {"check_determinism": True}})
    assert train(params, "baseline", 0, 1) == 0
    runs = pd.DataFrame([json.loads((tmp_path / f"runs/baseline/seed{s}/metrics.json").read_text())
                         for s in (0, 1)])
    rows = dict(provenance(runs=runs, cwd=tmp_path))
    assert rows["determinism"].startswith("baseline seed 0 gave val_acc ")
    assert rows["determinism"].endswith("that non-determinism is part of the measured noise floor")
    assert rows["program"].startswith("{python} toy.py")
    assert "torch" not in rows and "device" not in rows         # the built-in model's, not a program's


EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "own-model"


def example_copy(dest: Path) -> Path:
    """The example folder as a user copies it, made small: 3 noise seeds, 2 signal seeds, 3 epochs."""
    import shutil

    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("results", "__pycache__"))
    raw = yaml.safe_load((dest / "params.yaml").read_text())
    raw["seeds"] = {"noise": [0, 1, 2], "signal": [0, 1]}
    raw["hyperparameters"]["epochs"] = 3
    raw["configs"] = {"lr_hi": raw["configs"]["lr_hi"]}
    raw["stats"]["n_boot"] = 200
    (dest / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return dest


def test_check_names_a_dvc_stage_that_forgot_a_program_dep(tmp_path, capsys):
    project = example_copy(tmp_path / "own-model")
    assert cli.main(["check", "--params", str(project / "params.yaml")]) == 0
    # A dvc.yaml of the user's own (the generator's first line deleted: init leaves it alone), edited by hand.
    text = (project / "dvc.yaml").read_text().split("\n", 1)[1]
    (project / "dvc.yaml").write_text(text.replace("      - train.py          # program.deps\n", "", 1))
    assert cli.main(["check", "--params", str(project / "params.yaml")]) == cli.EXIT_BAD_INPUT
    assert "stages.train_noise.deps: 'train.py' is in program.deps but not here" in one_error_line(capsys)
    (project / "dvc.yaml").write_text(text.replace("      - configs.${item.config}\n", ""))
    assert cli.main(["check", "--params", str(project / "params.yaml")]) == cli.EXIT_BAD_INPUT
    assert "stages.train_signal.params: 'configs.${item.config}' missing" in one_error_line(capsys)
    (project / "dvc.yaml").write_text(text.replace("      - train.py          # program.deps\n", "      - ./\n"))
    assert cli.main(["check", "--params", str(project / "params.yaml")]) == 0     # a folder above it counts


@pytest.mark.slow
def test_the_example_runs_under_dvc_in_a_repository_of_its_own_and_retrains_on_a_dep_edit(tmp_path):
    import os
    import shutil
    import subprocess
    import sys

    bin_dir = Path(sys.executable).parent
    dvc = shutil.which("dvc", path=str(bin_dir))
    if dvc is None:
        pytest.skip("dvc is not installed")
    project = example_copy(tmp_path / "own-model")
    env = dict(os.environ, DVC_NO_ANALYTICS="1", PATH=f"{bin_dir}{os.pathsep}{os.defpath}")

    def sh(*cmd: str) -> str:
        proc = subprocess.run(list(cmd), cwd=project, capture_output=True, text=True, env=env, timeout=900)
        assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}"
        return proc.stdout + proc.stderr

    (project / "notes.md").write_text("not a dep\n")
    sh("git", "init", "-q")
    sh(dvc, "init", "-q")
    sh(dvc, "repro")
    runs = pd.read_csv(project / "results" / "runs.csv")
    assert len(runs) == 5 and (runs["status"] == "ok").all() and runs["val_acc"].between(0.5, 1).all()
    assert (project / "results" / "report.html").is_file()

    def changed() -> set[str]:
        out = sh(dvc, "status", "--json")
        return set(json.loads(out[out.index("{"):] if "{" in out else "{}"))

    assert changed() == set()
    (project / "notes.md").write_text("edited, still not a dep\n")
    assert changed() == set()
    with open(project / "train.py", "a") as fh:
        fh.write("# an edit of the program\n")
    assert changed() == {f"train_noise@{s}" for s in (0, 1, 2)} | {f"train_signal@lr_hi-{s}" for s in (0, 1)} | {
        "train_sweep", "train_decompose", "train_adaptive"}


@pytest.mark.parametrize("resumes", [True, False])
def test_an_interrupted_run_resumes_only_when_the_program_says_it_can(tmp_path, resumes):
    params = toy_params(tmp_path, behaviour="crash_once", extra={"program": {"resumes": resumes}})
    assert train(params, "baseline", 0) == cli.EXIT_BAD_INPUT       # the first attempt is interrupted
    assert (tmp_path / "runs/baseline/seed0/program/checkpoint").exists()
    if resumes:
        assert train(params, "baseline", 0) == 0
        record = json.loads((tmp_path / "runs/baseline/seed0/metrics.json").read_text())
        assert record["resumed"] == 1 and not (tmp_path / "runs/baseline/seed0/program").exists()
    else:   # its folder is emptied: the program starts over (and, this toy, is interrupted again)
        assert train(params, "baseline", 0) == cli.EXIT_BAD_INPUT
        assert not (tmp_path / "runs/baseline/seed0/metrics.json").exists()


def test_a_program_never_resumes_another_configs_checkpoint(tmp_path):
    params = toy_params(tmp_path, behaviour="crash_once", extra={"program": {"resumes": True}})
    assert train(params, "baseline", 0) == cli.EXIT_BAD_INPUT       # leaves a checkpoint of lr 0.01
    raw = yaml.safe_load(params.read_text())
    raw["hyperparameters"]["lr"] = 0.03                              # now another config in the same folder
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert train(params, "baseline", 0) == cli.EXIT_BAD_INPUT       # started over: interrupted again
    assert train(params, "baseline", 0) == 0                         # its own checkpoint: resumed
    record = json.loads((tmp_path / "runs/baseline/seed0/metrics.json").read_text())
    assert record["resumed"] == 1 and record["val_acc"] == 0.5 + 10 * 0.03


def test_check_determinism_refuses_batched_seeds(write_params, smoke_raw):
    smoke_raw["train"]["seed_batch"] = 2
    with pytest.raises(P.ParamsError, match="program.check_determinism: not with train.seed_batch > 1"):
        P.load(write_params({**smoke_raw, "program": {"check_determinism": True}}))
