"""The run record (metrics.json): one type that every writer builds and every reader reads, checked on read."""

from __future__ import annotations

import json

import pytest

from noisefloor.runfiles import (METRICS_FILE, OWN_FIELDS, RUN_COLUMNS, VOLATILE_FIELDS, RunRecord, RunRecordError)

RECORD = {"config": "lr_hi", "seed": 3, "config_hash": "0123abcd", "status": "ok", "code_fingerprint": "feed",
          "val_acc": 0.91, "wall_time_s": 1.5, "bleu": 25.0}


def test_a_record_round_trips_through_its_file(tmp_path):
    written = RunRecord.from_dict(RECORD).write(tmp_path)
    assert written == tmp_path / METRICS_FILE
    assert json.loads(written.read_text()) == RECORD
    back = RunRecord.read(written)
    assert back == RunRecord.from_dict(RECORD)
    assert (back.config, back.seed, back.status, back.get("val_acc"), back.number("bleu")) == \
        ("lr_hi", 3, "ok", 0.91, 25.0)
    with pytest.raises(TypeError):
        back.values["val_acc"] = 0.5                    # frozen, inside too


@pytest.mark.parametrize("change, says", [
    ({"config": None}, "'config' is None, not a str"),
    ({"seed": "3"}, "'seed' is '3', not a int"),
    ({"seed": True}, "'seed' is True, not a int"),
    ({"status": "done"}, "'status' is 'done', not one of ok, diverged, skipped"),
    ({"code_fingerprint": 7}, "'code_fingerprint' is 7, not a string"),
])
def test_a_wrong_field_is_named_with_its_file(tmp_path, change, says):
    path = tmp_path / METRICS_FILE
    path.write_text(json.dumps({**RECORD, **change}))
    with pytest.raises(RunRecordError) as err:
        RunRecord.read(path)
    assert str(err.value) == f"{path}: {says}"


def test_a_missing_key_a_broken_file_and_no_object_are_one_line_errors(tmp_path):
    path = tmp_path / METRICS_FILE
    path.write_text(json.dumps({k: v for k, v in RECORD.items() if k != "config_hash"}))
    with pytest.raises(RunRecordError, match=r"metrics.json: no 'config_hash'"):
        RunRecord.read(path)
    path.write_text('{"config": "lr_hi", ')
    with pytest.raises(RunRecordError, match=r"metrics.json: unreadable run record") as err:
        RunRecord.read(path)
    assert "\n" not in str(err.value)
    path.write_text("[1, 2]")
    with pytest.raises(RunRecordError, match="not a JSON object"):
        RunRecord.read(path)
    with pytest.raises(FileNotFoundError):                 # an unfinished run: the caller's to tell apart
        RunRecord.read(tmp_path / "seed9" / METRICS_FILE)


def test_which_run_and_which_code_made_it():
    r = RunRecord.from_dict(RECORD)
    assert r.made_by("0123abcd", 3) and r.made_by("0123abcd", 3, "feed")
    assert not r.made_by("0123abcd", 4) and not r.made_by("ffff", 3) and not r.made_by("0123abcd", 3, "beef")
    assert RunRecord.from_dict({**RECORD, "val_acc": None}).number("val_acc") is None
    assert RunRecord.from_dict({**RECORD, "val_acc": float("nan")}).number("val_acc") is None


def test_the_field_lists_come_from_one_table():
    assert RUN_COLUMNS[:3] == ("config", "seed", "status") and "val_acc" in RUN_COLUMNS
    assert {"config", "seed", "status", "config_hash", "code_fingerprint", "wall_time_s"} <= OWN_FIELDS
    assert "val_acc" not in OWN_FIELDS                   # a program may report its own val_acc
    assert VOLATILE_FIELDS == {"wall_time_s", "slurm_job_id", "resumed_from_epoch"}
