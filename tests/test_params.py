import subprocess
import sys

import pytest

from noisefloor import params as P
from tests.helpers import ROOT, SMOKE


def test_shipped_default_is_valid_and_big_enough():
    p = P.load(ROOT / "params.yaml")
    assert p.data.dataset == "digits"
    assert len(p.noise_seeds) >= 20 and len(p.configs) >= 4
    # the variants differ in real ways: lr, hidden size, batch size, weight decay
    changed = {k for over in p.configs.values() for k in over}
    assert {"lr", "hidden_size", "batch_size", "weight_decay"} <= changed
    assert set(p.signal_seeds) <= set(p.noise_seeds)


def test_grid_baseline_at_noise_seeds_variants_at_signal_seeds():
    p = P.load(SMOKE)
    assert p.runs() == [("baseline", 0), ("baseline", 1), ("baseline", 2),
                        ("lr_hi", 0), ("lr_hi", 1), ("wide", 0), ("wide", 1)]


def test_resolve_applies_overrides_to_the_right_section():
    p = P.load(SMOKE)
    assert p.resolve("lr_hi").train.lr == 0.05 and p.resolve("lr_hi").model.hidden_size == 8
    assert p.resolve("wide").model.hidden_size == 12 and p.resolve("wide").train.lr == 0.01
    assert p.resolve("baseline").train.lr == 0.01


def test_hash_changes_only_for_the_config_touched(smoke_raw, write_params):
    before = P.load(write_params(smoke_raw, "a.yaml"))
    smoke_raw["configs"]["lr_hi"]["lr"] = 0.07
    after = P.load(write_params(smoke_raw, "b.yaml"))
    assert before.resolve("lr_hi").config_hash != after.resolve("lr_hi").config_hash
    for name in ("baseline", "wide"):
        assert before.resolve(name).config_hash == after.resolve(name).config_hash


def test_hash_ignores_keep_checkpoint_but_not_threads(smoke_raw, write_params):
    h0 = P.load(write_params(smoke_raw, "a.yaml")).resolve("baseline").config_hash
    smoke_raw["train"]["keep_checkpoint"] = True
    assert P.load(write_params(smoke_raw, "b.yaml")).resolve("baseline").config_hash == h0
    smoke_raw["train"]["threads"] = 2
    assert P.load(write_params(smoke_raw, "c.yaml")).resolve("baseline").config_hash != h0


def _set(raw, dotted, value):
    *path, last = dotted.split(".")
    node = raw
    for key in path:
        node = node.setdefault(key, {})
    node[last] = value


BAD = [
    ("train.lrr", 0.1, "train: unknown key 'lrr'"),
    ("bogus", 1, "unknown key 'bogus'"),
    ("train.lr", "0.0001", "train.lr: '0.0001' was read as text"),
    ("train.epochs", 0, "train.epochs"),
    ("train.batch_size", -5, "train.batch_size"),
    ("train.lr", 0, "train.lr"),
    ("train.lr", -0.1, "train.lr"),
    ("train.bidirectional", True, "train: unknown key 'bidirectional'"),
    ("model.bidirectional", "yes", "model.bidirectional"),
    ("data.dataset", "cifar10", "data.dataset: 'cifar10' is not one of"),
    ("seeds.noise", [], "seeds.noise: must not be empty"),
    ("seeds.signal", [], "seeds.signal: must not be empty"),
    ("seeds.noise", [0, 1, 1, 2], "seeds.noise: duplicated seeds [1]"),
    ("seeds.signal", [0, 9], "seeds.signal: [9] not in seeds.noise"),
    ("configs.lr_hi.lr", "0.1", "configs.lr_hi.lr"),
    ("configs.lr_hi.hidden", 3, "configs.lr_hi: unknown key 'hidden'"),
    ("configs.baseline", {"lr": 0.1}, "configs.baseline"),
    ("stats.direction", "up", "stats.direction"),
    ("stats.metric", "val_accuracy", "stats.metric: 'val_accuracy' is not a number the built-in model records "
                                     "(val_acc, best_val_acc, test_acc"),
]


@pytest.mark.parametrize("key,value,expected", BAD, ids=[f"{k}={v!r}" for k, v, _ in BAD])
def test_bad_values_name_the_key(smoke_raw, write_params, key, value, expected):
    _set(smoke_raw, key, value)
    with pytest.raises(P.ParamsError) as info:
        P.load(write_params(smoke_raw))
    msg = str(info.value)
    assert expected in msg and "\n" not in msg


@pytest.mark.parametrize("name", ["lr/hi", "..", "lr hi", "a;rm -rf", "lr.hi", "$(x)", ""])
def test_config_names_outside_the_pattern_are_refused(smoke_raw, write_params, name):
    smoke_raw["configs"][name] = {"lr": 0.1}
    with pytest.raises(P.ParamsError, match="config name .* is not allowed"):
        P.load(write_params(smoke_raw))


def test_exponent_floats_read_as_numbers_as_dvc_writes_them(write_params):
    text = SMOKE.read_text().replace("lr: 0.05", "lr: 5e-02").replace("lr: 0.01", "lr: 1e-05")
    p = P.load(write_params(text))
    assert p.resolve("lr_hi").train.lr == 0.05 and p.train.lr == 0.00001


def test_malformed_yaml_and_missing_file(write_params, tmp_path):
    with pytest.raises(P.ParamsError, match=r"malformed YAML at line \d+"):
        P.load(write_params("data: {dataset: digits\nmodel: [\n"))
    with pytest.raises(P.ParamsError, match="params file not found"):
        P.load(tmp_path / "nope.yaml")


def test_cli_check_exits_nonzero_with_one_line(write_params):
    path = write_params(SMOKE.read_text().replace("lr: 0.01", "lr: '1e-4'"))
    proc = subprocess.run([sys.executable, "-m", "noisefloor", "check", "--params", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "train.lr" in lines[0] and "1.0e-4" in lines[0]


def test_batched_configs_train_their_seeds_in_blocks_of_seed_batch(smoke_raw, write_params):
    raw = dict(smoke_raw, seeds={**smoke_raw["seeds"], "noise": [0, 1, 2, 3, 5]},
               train={**smoke_raw.get("train", {}), "seed_batch": 2})
    p = P.load(write_params(raw))
    blocks = [(c, s) for c, s in p.seed_batches() if c == p.baseline]
    assert blocks == [(p.baseline, (0, 1)), (p.baseline, (2, 3)), (p.baseline, (5,))]
    assert P.load(write_params(smoke_raw)).seed_batches() == []
