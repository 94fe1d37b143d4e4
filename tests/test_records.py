"""The search's, the decomposition's and an adaptive round's records: typed, their JSON shape unchanged, checked on read."""

from __future__ import annotations

import json

import pytest

from noisefloor import params as P
from noisefloor.aggregate import decompose_record
from noisefloor.records import (ConfirmPlan, DecomposeRecord, RecordError, RoundRecord, SweepConfig, SweepRecord)
from tests.helpers import SMOKE

SWEEP = {"method": "random", "sampler_seed": 7, "seeds": [0], "metric": "val_acc", "direction": "max",
         "configs": {"sweep_000": {"values": {"lr": 0.01}, "config_hash": "aa", "score": 0.9},
                     "sweep_001": {"values": {"lr": 0.001}, "config_hash": "bb", "score": None}},
         "confirm": {"top_k": 1, "seeds": [100, 101], "configs": ["sweep_000"]}}


@pytest.mark.parametrize("kind, data", [
    (SweepRecord, SWEEP), (SweepRecord, {"sweep": None}),
    (DecomposeRecord, {"seeds": [0, 1], "sources": ["init", "order"], "reference": "baseline",
                       "configs": {"decompose_init": {"sources": ["init"], "config_hash": "cc"}}}),
    (DecomposeRecord, {"decompose": None}),
    (RoundRecord, {"adaptive": {"max_seeds": 8}, "rounds": 2, "next_round": [["lr_hi", 4], ["lr_hi", 5]],
                   "why_done": ""}),
    (RoundRecord, {"adaptive": None, "rounds": 1, "next_round": [], "why_done": "no adaptive section"}),
])
def test_each_record_reads_and_writes_the_same_json(tmp_path, kind, data):
    path = tmp_path / "record.json"
    path.write_text(json.dumps(data))
    record = kind.read(path)
    assert record.to_dict() == data
    record.write(tmp_path / "again.json")
    assert json.loads((tmp_path / "again.json").read_text()) == data


def test_typed_fields_say_what_the_engines_need():
    sweep = SweepRecord.from_dict(SWEEP)
    assert sweep.confirmed == ("sweep_000",) and sweep.configs["sweep_001"] == SweepConfig({"lr": 0.001}, "bb", None)
    assert sweep.confirm == ConfirmPlan(1, (100, 101), ("sweep_000",))
    assert SweepRecord.from_dict({"sweep": None}).confirmed == ()
    assert RoundRecord.from_dict({"rounds": 3, "next_round": [["a", 1]]}).next_round == (("a", 1),)


@pytest.mark.parametrize("kind, data, says", [
    (SweepRecord, {**SWEEP, "configs": {"sweep_000": {"values": {}}}}, "configs.sweep_000: no 'config_hash'"),
    (SweepRecord, {**SWEEP, "method": 3}, "'method' is 3"),
    (SweepRecord, {**SWEEP, "confirm": {"top_k": True, "seeds": [], "configs": []}}, "confirm: 'top_k' is True"),
    (RoundRecord, {"rounds": 1, "next_round": [["lr_hi", "4"]]}, "not a [config, seed] pair"),
    (RoundRecord, {"next_round": []}, "no 'rounds'"),
    (DecomposeRecord, {"seeds": [0], "sources": [], "configs": {"d": {"sources": "init"}}}, "configs.d: 'sources'"),
])
def test_a_broken_record_is_one_line_naming_the_file_and_key(tmp_path, kind, data, says):
    path = tmp_path / "record.json"
    path.write_text(json.dumps(data))
    with pytest.raises(RecordError) as err:
        kind.read(path)
    assert str(err.value).startswith(f"{path}: ") and says in str(err.value) and "\n" not in str(err.value)


def test_unreadable_and_missing_files_are_named(tmp_path):
    (tmp_path / "r.json").write_text("{")
    with pytest.raises(RecordError, match="r.json: unreadable record"):
        RoundRecord.read(tmp_path / "r.json")
    with pytest.raises(RecordError, match="nope.json: missing"):
        SweepRecord.read(tmp_path / "nope.json")


def test_the_writers_build_the_records():
    p = P.load(SMOKE)
    record = decompose_record(p)
    assert isinstance(record, DecomposeRecord)
    assert (record.seeds is None) == (p.decompose is None)
