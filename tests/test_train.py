import dataclasses
import json

import pandas as pd
import pytest
import torch

from noisefloor import pipeline
from noisefloor.models import BiLSTMClassifier
from noisefloor.train import CHECKPOINT_FILE, derive_seed, train_run

TIMING = {"wall_time_s", "resumed_from_epoch"}


def _cfg(smoke, name="baseline", **train):
    cfg = smoke.resolve(name)
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, device="cpu", **train))


def _strip(metrics):
    return {k: v for k, v in metrics.items() if k not in TIMING}


def _history(path):
    return pd.read_csv(path / "history.csv").drop(columns="time_s")


def test_same_config_and_seed_is_bit_identical(smoke, splits, tmp_path):
    cfg = _cfg(smoke)
    a = train_run(cfg, 3, tmp_path / "a", splits=splits, log=lambda _: None)
    b = train_run(cfg, 3, tmp_path / "b", splits=splits, log=lambda _: None)
    assert _strip(a) == _strip(b)                      # exact float equality, not approx
    pd.testing.assert_frame_equal(_history(tmp_path / "a"), _history(tmp_path / "b"), check_exact=True)
    c = train_run(cfg, 4, tmp_path / "c", splits=splits, log=lambda _: None)
    assert c["train_loss"] != a["train_loss"]


def test_outputs_are_self_describing(smoke, splits, tmp_path):
    cfg = _cfg(smoke, "lr_hi")
    train_run(cfg, 0, tmp_path, splits=splits, log=lambda _: None)
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["config"] == "lr_hi" and m["seed"] == 0 and m["config_hash"] == cfg.config_hash
    assert m["resolved_config"]["train"]["lr"] == 0.05 and m["status"] == "ok"
    assert {"torch", "numpy", "python", "noisefloor"} <= set(m["versions"])
    assert m["code_fingerprint"] == pipeline.run_code_fingerprint()   # the code that made it
    assert 0 <= m["val_acc"] <= 1 and 0 <= m["test_acc"] <= 1 and m["epochs_run"] == 2
    assert m["n_val"] + m["n_train"] == 240 + m["n_val"]
    h = pd.read_csv(tmp_path / "history.csv")
    assert list(h.epoch) == [1, 2] and h.val_acc.iloc[-1] == m["val_acc"]
    assert not (tmp_path / CHECKPOINT_FILE).exists()   # removed once the run is done


def test_slurm_job_id_is_recorded_from_the_environment(smoke, splits, tmp_path, monkeypatch):
    cfg = _cfg(smoke)
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    inside = train_run(cfg, 0, tmp_path / "inside", splits=splits, log=lambda _: None)
    assert inside["slurm_job_id"] == "4242"
    assert json.loads((tmp_path / "inside" / "metrics.json").read_text())["slurm_job_id"] == "4242"
    monkeypatch.delenv("SLURM_JOB_ID")
    outside = train_run(cfg, 0, tmp_path / "outside", splits=splits, log=lambda _: None)
    assert outside["slurm_job_id"] is None
    # the job id is bookkeeping: it never changes a result
    assert _strip(inside) == {**_strip(outside), "slurm_job_id": "4242"}


def _interrupt_after_epoch(cfg, epoch: int, out, splits) -> None:
    """Train seed 1 and stop it (as Ctrl-C would) right after ``epoch``'s checkpoint and log line."""
    def stop(line):
        if f"epoch {epoch}/{cfg.train.epochs}" in line:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_run(cfg, 1, out, splits=splits, log=stop)


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_interrupted_run_resumes_bit_identically(smoke, splits, tmp_path, schedule):
    cfg = _cfg(smoke, epochs=4, lr_schedule=schedule)
    full = train_run(cfg, 1, tmp_path / "full", splits=splits, log=lambda _: None)

    _interrupt_after_epoch(cfg, 2, tmp_path / "cut", splits)
    assert (tmp_path / "cut" / CHECKPOINT_FILE).exists() and not (tmp_path / "cut" / "metrics.json").exists()
    ckpt = torch.load(tmp_path / "cut" / CHECKPOINT_FILE, weights_only=True)   # safe format
    assert ckpt["epoch"] == 2
    resumed = train_run(cfg, 1, tmp_path / "cut", splits=splits, log=lambda _: None)
    assert resumed["resumed_from_epoch"] == 2
    assert _strip(resumed) == _strip(full)
    pd.testing.assert_frame_equal(_history(tmp_path / "cut"), _history(tmp_path / "full"), check_exact=True)


def test_a_run_killed_after_its_last_checkpoint_resumes_with_the_same_metrics(smoke, splits, tmp_path):
    # Killed between the last epoch's checkpoint and metrics.json: the rerun trains no epoch,
    # and must still report every number (train_loss came out NaN before).
    cfg = _cfg(smoke, epochs=2)
    full = train_run(cfg, 1, tmp_path / "full", splits=splits, log=lambda _: None)

    _interrupt_after_epoch(cfg, 2, tmp_path / "cut", splits)
    assert torch.load(tmp_path / "cut" / CHECKPOINT_FILE, weights_only=True)["epoch"] == 2
    resumed = train_run(cfg, 1, tmp_path / "cut", splits=splits, log=lambda _: None)
    assert resumed["resumed_from_epoch"] == 2 and resumed["train_loss"] is not None
    assert _strip(resumed) == _strip(full)


def test_checkpoint_of_another_config_is_not_resumed(smoke, splits, tmp_path):
    other = _cfg(smoke, "lr_hi", keep_checkpoint=True)
    train_run(other, 1, tmp_path, splits=splits, log=lambda _: None)
    assert (tmp_path / CHECKPOINT_FILE).exists()
    lines = []
    m = train_run(_cfg(smoke), 1, tmp_path, splits=splits, log=lines.append)
    assert m["resumed_from_epoch"] is None and any("ignoring a checkpoint" in s for s in lines)


def test_exploding_loss_is_recorded_as_diverged(smoke, splits, tmp_path):
    cfg = _cfg(smoke, optimizer="sgd", lr=1.0e38, momentum=0.0)   # weights overflow to inf
    m = train_run(cfg, 0, tmp_path, splits=splits, log=lambda _: None)
    assert m["status"] == "diverged" and m["val_acc"] is None and m["diverged_at_epoch"] == 1
    json.loads((tmp_path / "metrics.json").read_text(), parse_constant=pytest.fail)  # strict JSON


def test_nan_in_the_data_is_recorded_as_diverged(smoke, splits, tmp_path):
    x = splits.x_train.clone()
    x[7, 3, 3] = float("nan")
    bad = dataclasses.replace(splits, x_train=x)
    m = train_run(_cfg(smoke), 0, tmp_path, splits=bad, log=lambda _: None)
    assert m["status"] == "diverged" and m["test_acc"] is None and m["epochs_run"] == 0


def test_init_does_not_depend_on_training_hyperparameters(smoke, splits):
    """Separate streams: a variant changing lr or batch size starts from the same weights."""
    def init(seed):
        torch.manual_seed(derive_seed(seed, "init"))
        return BiLSTMClassifier.from_params(smoke.model, splits.row_size, splits.n_classes).state_dict()

    a, b = init(5), init(5)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(init(6)["head.weight"], a["head.weight"])
    assert len({derive_seed(5, s) for s in ("init", "data", "dropout")}) == 3


def test_a_cosine_schedule_falls_from_lr_towards_zero_and_changes_the_run_but_not_the_constant_hash(smoke, splits,
                                                                                                    tmp_path):
    import dataclasses

    from noisefloor.protocol import epoch_lr

    cfg = _cfg(smoke, epochs=4, lr_schedule="cosine")
    rates = [epoch_lr(cfg.train, e) for e in range(4)]
    assert rates[0] == cfg.train.lr and all(a > b > 0 for a, b in zip(rates, rates[1:]))
    assert rates[2] == pytest.approx(cfg.train.lr * 0.5)                  # half way: half the rate
    constant = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, lr_schedule="constant"))
    assert [epoch_lr(constant.train, e) for e in range(4)] == [cfg.train.lr] * 4
    assert cfg.config_hash != constant.config_hash
    assert constant.config_hash == _cfg(smoke, epochs=4).config_hash        # the default adds nothing to a hash
    a = train_run(cfg, 1, tmp_path / "cosine", splits=splits, log=lambda _: None)
    b = train_run(constant, 1, tmp_path / "constant", splits=splits, log=lambda _: None)
    assert a["val_loss"] != b["val_loss"]
