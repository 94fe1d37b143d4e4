"""Seed-batched training: the same initial weights, data order and dropout as single-seed runs."""

import dataclasses
import json

import pytest
import torch
import yaml

from noisefloor import batched, cli, params as P, pipeline, train
from noisefloor.models import BiLSTMClassifier
from noisefloor.train import CHECKPOINT_FILE, derive_seed, train_run

# Agreement with single-seed runs after two epochs: bmm-based LSTM arithmetic
# rounds differently from oneDNN's, by about 1e-7 per op; losses drift by less
# than this relative tolerance, and accuracies by at most one example.
LOSS_RTOL = 1e-4
SEEDS = [0, 3, 5]
QUIET = dict(log=lambda _line: None)


def _cfg(smoke, **changes):
    """The smoke baseline as a 2-layer BiLSTM with dropout and clipping: every batched path in use."""
    cfg = smoke.resolve("baseline")
    model = dataclasses.replace(cfg.model, **{k: v for k, v in changes.items() if hasattr(cfg.model, k)})
    tr = dataclasses.replace(cfg.train, device="cpu", **{k: v for k, v in changes.items() if hasattr(cfg.train, k)})
    return dataclasses.replace(cfg, model=model, train=tr)


DEEP = dict(num_layers=2, bidirectional=True, dropout=0.3, grad_clip=0.5, seed_batch=3)


class _Stop(Exception):
    pass


def _captured_initial_weights(module, run):
    """The weights a training function hands its optimiser, i.e. its initial weights."""
    seen = []
    original = module.make_optimizer

    def capture(tp, parameters, **_kwargs):
        seen.append([p.detach().clone() for p in parameters])
        raise _Stop

    module.make_optimizer = capture
    try:
        with pytest.raises(_Stop):
            run()
    finally:
        module.make_optimizer = original
    return seen[0]


def test_initial_weights_are_those_of_the_single_seed_runs(smoke, splits, tmp_path):
    cfg = _cfg(smoke, **DEEP)
    stacked = _captured_initial_weights(
        batched, lambda: batched.train_batch(cfg, SEEDS, [tmp_path / str(s) for s in SEEDS], splits=splits, **QUIET))
    for k, seed in enumerate(SEEDS):
        single = _captured_initial_weights(train, lambda: train_run(cfg, seed, tmp_path / "single", splits=splits,
                                                                    **QUIET))
        assert len(single) == len(stacked)                     # same parameters, same order
        for a, b in zip(stacked, single):
            assert torch.equal(a[k], b)                         # bit for bit


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_forward_and_dropout_masks_match_nn_lstm(smoke, splits, pooling):
    cfg = _cfg(smoke, **DEEP, pooling=pooling)
    models = batched.initial_models(cfg, SEEDS, splits.row_size, splits.n_classes)
    model = batched.BatchedBiLSTMClassifier(models)
    x = torch.stack([splits.x_train[s:s + 20] for s in SEEDS])     # a different batch per seed
    gens = [torch.Generator().manual_seed(derive_seed(s, "dropout")) for s in SEEDS]
    out = model(x, gens)
    for k, (seed, single) in enumerate(zip(SEEDS, models)):
        torch.manual_seed(derive_seed(seed, "dropout"))               # what train_run does before training
        expected = single.train()(x[k])
        torch.testing.assert_close(out[k], expected, rtol=1e-5, atol=1e-6)
    # ... and the masks matter: other generator states give other outputs
    other = model(x, [torch.Generator().manual_seed(derive_seed(s + 100, "dropout")) for s in SEEDS])
    assert not torch.allclose(other, out, atol=1e-3)


def _strip(m, *more):
    return {k: v for k, v in m.items() if k not in ("wall_time_s", "resumed_from_epoch", *more)}


@pytest.fixture(scope="module")
def both_ways(smoke, splits, tmp_path_factory):
    """The DEEP config trained per seed and as one batch of three."""
    cfg = _cfg(smoke, **DEEP, epochs=2)
    tmp = tmp_path_factory.mktemp("batched")
    single = [train_run(cfg, s, tmp / "single" / str(s), splits=splits, **QUIET) for s in SEEDS]
    batch = batched.train_batch(cfg, SEEDS, [tmp / "batch" / str(s) for s in SEEDS], splits=splits, **QUIET)
    return cfg, tmp, single, batch


def test_final_metrics_match_single_seed_runs_within_tolerance(both_ways, splits):
    _, _, single, batch = both_ways
    for s, b in zip(single, batch):
        assert (b["config"], b["seed"], b["status"], b["epochs_run"]) == (s["config"], s["seed"], "ok", 2)
        for key in ("train_loss", "val_loss", "test_loss"):
            assert b[key] == pytest.approx(s[key], rel=LOSS_RTOL), key
        for key, n in (("val_acc", len(splits.y_val)), ("test_acc", len(splits.y_test))):
            assert abs(b[key] - s[key]) <= 1 / n + 1e-12, key
    # the seeds really differ, so agreement is not an accident of equal runs
    assert len({round(b["train_loss"], 6) for b in batch}) == len(SEEDS)


def test_each_run_writes_its_own_outputs(both_ways):
    cfg, tmp, _, batch = both_ways
    for seed, m in zip(SEEDS, batch):
        d = tmp / "batch" / str(seed)
        on_disk = json.loads((d / "metrics.json").read_text())
        assert on_disk["seed"] == seed and on_disk["batch_seeds"] == SEEDS and on_disk["seed_batch"] == 3
        assert on_disk["config_hash"] == cfg.config_hash and (d / "history.csv").read_text().count("\n") == 3
        assert not (d / CHECKPOINT_FILE).exists()


def test_batched_and_single_runs_record_the_same_fields(both_ways):
    """One record for both loops: a batched run adds only what says it was batched."""
    _, _, single, batch = both_ways
    for s, b in zip(single, batch):
        assert set(b) == set(s) | {"seed_batch", "batch_seeds"}
        assert b["slurm_job_id"] == s["slurm_job_id"]
        assert b["code_fingerprint"] == s["code_fingerprint"] == pipeline.run_code_fingerprint()


def test_interrupted_batch_resumes_bit_identically(smoke, splits, tmp_path):
    cfg = _cfg(smoke, **DEEP, epochs=3)
    dirs = [tmp_path / "cut" / str(s) for s in SEEDS]
    full = batched.train_batch(cfg, SEEDS, [tmp_path / "full" / str(s) for s in SEEDS], splits=splits, **QUIET)

    def stop_in_epoch_2(line):
        if "epoch 2/3" in line:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        batched.train_batch(cfg, SEEDS, dirs, splits=splits, log=stop_in_epoch_2)
    assert all((d / CHECKPOINT_FILE).exists() and not (d / "metrics.json").exists() for d in dirs)
    # a seed's checkpoint holds a plain single model: the reference class loads it
    ckpt = torch.load(dirs[1] / CHECKPOINT_FILE, weights_only=True)
    assert ckpt["epoch"] == 1
    BiLSTMClassifier.from_params(cfg.model, splits.row_size, splits.n_classes).load_state_dict(ckpt["model"])
    resumed = batched.train_batch(cfg, SEEDS, dirs, splits=splits, **QUIET)
    assert [m["resumed_from_epoch"] for m in resumed] == [1, 1, 1]
    assert [_strip(m) for m in resumed] == [_strip(m) for m in full]


def test_a_diverging_seed_does_not_disturb_the_others(smoke, splits, tmp_path, monkeypatch):
    cfg = _cfg(smoke, seed_batch=2, epochs=2)
    alone = batched.train_batch(cfg, [0], [tmp_path / "alone"], splits=splits, **QUIET)[0]
    original = batched.initial_models

    def poison_second(*args):
        models = original(*args)
        with torch.no_grad():
            models[1].head.weight.fill_(float("nan"))          # seed 1 starts broken
        return models

    monkeypatch.setattr(batched, "initial_models", poison_second)
    ok, gone = batched.train_batch(cfg, [0, 1], [tmp_path / "0", tmp_path / "1"], splits=splits, **QUIET)
    assert gone["status"] == "diverged" and gone["diverged_at_epoch"] == 1 and gone["val_acc"] is None
    assert gone["epochs_run"] == 0
    json.loads((tmp_path / "1" / "metrics.json").read_text(), parse_constant=pytest.fail)   # strict JSON
    assert ok["status"] == "ok"
    for key in ("train_loss", "val_loss", "test_loss", "val_acc", "test_acc"):
        assert ok[key] == pytest.approx(alone[key], rel=LOSS_RTOL), key


def test_cli_trains_seed_batch_seeds_at_a_time(smoke_raw, write_params, tmp_path, monkeypatch):
    monkeypatch.setenv("NOISEFLOOR_FORKSERVER", "0")
    smoke_raw["train"]["seed_batch"] = 2
    params = write_params(smoke_raw)
    rc = cli.main(["train", "--params", str(params), "--config", "wide", "--seed", "0", "--seed", "1",
                   "--seed", "2", "--seed", "1", "--runs-dir", str(tmp_path / "runs")])
    assert rc == 0
    got = {s: json.loads((tmp_path / "runs" / "wide" / f"seed{s}" / "metrics.json").read_text())["batch_seeds"]
           for s in (0, 1, 2)}
    assert got == {0: [0, 1], 1: [0, 1], 2: [2]}


def test_seed_batch_is_part_of_the_identity_only_when_on(smoke_raw):
    base = P.from_dict(smoke_raw).resolve("baseline")
    smoke_raw["train"]["seed_batch"] = 1
    assert P.from_dict(smoke_raw).resolve("baseline").config_hash == base.config_hash
    smoke_raw["train"]["seed_batch"] = 4
    four = P.from_dict(smoke_raw).resolve("baseline")
    assert four.config_hash != base.config_hash and "hp.seed_batch" not in four.hyperparameters()
    smoke_raw["train"]["seed_batch"] = 0
    with pytest.raises(P.ParamsError, match="train.seed_batch"):
        P.from_dict(smoke_raw)


def test_on_cpu_a_seeds_result_does_not_depend_on_its_batch_mates(smoke, splits, tmp_path):
    """Each model's arithmetic is its own slice of every batched op, so on CPU the bits agree."""
    cfg = _cfg(smoke, **{**DEEP, "seed_batch": 2}, epochs=2)
    a = batched.train_batch(cfg, [0, 3], [tmp_path / "a0", tmp_path / "a3"], splits=splits, **QUIET)[1]
    b = batched.train_batch(cfg, [3, 5], [tmp_path / "b3", tmp_path / "b5"], splits=splits, **QUIET)[0]
    assert a["batch_seeds"] != b["batch_seeds"]
    drop = {"batch_seeds", "wall_time_s"}
    assert {k: v for k, v in a.items() if k not in drop} == {k: v for k, v in b.items() if k not in drop}


@pytest.mark.slow
def test_snakemake_trains_seed_blocks_and_reruns_only_the_block_a_seed_joins(smoke_raw, tmp_path):
    from tests.helpers import SNAKEMAKE, metrics_stamps, snakemake

    if SNAKEMAKE is None:
        pytest.skip("snakemake is not installed")
    smoke_raw["train"]["seed_batch"] = 2                 # blocks of seeds {0, 1}, {2, 3}, ...
    smoke_raw["configs"]["wide"]["seed_batch"] = 1       # a config may stay one job per seed
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(smoke_raw))
    snakemake(tmp_path, "--until", "aggregate")

    def batch_seeds(config, seed):
        return json.loads((tmp_path / f"results/runs/{config}/seed{seed}/metrics.json").read_text())["batch_seeds"]

    assert [batch_seeds("baseline", s) for s in (0, 1, 2)] == [[0, 1], [0, 1], [2]]
    assert batch_seeds("lr_hi", 1) == [0, 1] and "batch_seeds" not in json.loads(
        (tmp_path / "results/runs/wide/seed0/metrics.json").read_text())
    before = metrics_stamps(tmp_path)
    old_seed2 = json.loads((tmp_path / "results/runs/baseline/seed2/metrics.json").read_text())

    smoke_raw["seeds"]["noise"] += [7, 3]                 # 7 starts a block; 3 joins 2's
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(smoke_raw))
    snakemake(tmp_path, "--until", "aggregate")
    after = metrics_stamps(tmp_path)
    assert set(after) - set(before) == {"results/runs/baseline/seed7/metrics.json",
                                        "results/runs/baseline/seed3/metrics.json"}
    assert {k for k in before if after[k] != before[k]} == {"results/runs/baseline/seed2/metrics.json"}
    new_seed2 = json.loads((tmp_path / "results/runs/baseline/seed2/metrics.json").read_text())
    assert new_seed2["batch_seeds"] == [2, 3]
    same = {k for k in old_seed2 if k not in ("batch_seeds", "wall_time_s")}
    assert {k: old_seed2[k] for k in same} == {k: new_seed2[k] for k in same}   # CPU: the bits do not move


def test_static_step_buffers_give_the_eager_steps_bits(smoke, splits, tmp_path):
    """The buffer handling a CUDA graph replays (indices and dropout masks copied into fixed tensors,
    a short last batch run eagerly) changes nothing: same bits as the plain step, on CPU."""
    cfg = _cfg(smoke, **DEEP, epochs=2, batch_size=70)
    assert len(splits.y_train) % cfg.train.batch_size != 0       # a short last batch is in play
    runs = {mode: batched.train_batch(cfg, SEEDS, [tmp_path / mode / str(s) for s in SEEDS], splits=splits,
                                      step_mode=mode, **QUIET)
            for mode in ("eager", "static")}
    assert [m["train_step"] for m in runs["static"]] == ["static"] * len(SEEDS)
    assert [_strip(m, "train_step") for m in runs["static"]] == [_strip(m, "train_step") for m in runs["eager"]]


def test_static_step_counts_each_example_once(smoke, splits):
    """loss_sum after one epoch of static steps equals per-seed losses summed over examples, recomputed."""
    cfg = _cfg(smoke, seed_batch=2)
    model = batched.BatchedBiLSTMClassifier(batched.initial_models(cfg, [0, 1], splits.row_size, splits.n_classes))
    opt = torch.optim.SGD(model.parameters(), lr=0.0)        # weights stay put: losses are recomputable
    b = 70                                                   # 240 examples: 3 full batches and one of 30
    step = batched.BatchStep(model, opt, splits.x_train, splits.y_train, b, None, mode="static")
    n = len(splits.y_train)
    perm = torch.stack([torch.randperm(n, generator=torch.Generator().manual_seed(s)) for s in (0, 1)])
    for i in range(0, n, b):
        step(perm[:, i:i + b])
    with torch.no_grad():
        logits = model(splits.x_train[perm])
        want = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                 splits.y_train[perm].reshape(-1), reduction="none").view(2, -1)
    assert step.loss_sum.tolist() == pytest.approx(want.sum(dim=1).tolist(), rel=1e-5)


def test_step_mode_choice(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert batched.pick_step_mode("auto", cpu, "adam") == "eager"
    assert batched.pick_step_mode("auto", cuda, "adam") == "graph"
    assert batched.pick_step_mode("auto", cuda, "sgd") == "eager"
    assert batched.pick_step_mode("auto", cuda, "adam", "cosine") == "eager"   # a captured step keeps its rate
    monkeypatch.setenv("NOISEFLOOR_CUDA_GRAPHS", "0")
    assert batched.pick_step_mode("auto", cuda, "adamw") == "eager"
    assert batched.pick_step_mode("static", cpu, "sgd") == "static"
    with pytest.raises(ValueError, match="CUDA graphs need"):
        batched.pick_step_mode("graph", cpu, "adam")
    with pytest.raises(ValueError, match="unknown step mode"):
        batched.pick_step_mode("fast", cpu, "adam")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graph_steps_give_the_eager_steps_results(smoke, splits, tmp_path):
    cfg = _cfg(smoke, **DEEP, epochs=3, batch_size=70)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, device="cuda"))
    runs = {mode: batched.train_batch(cfg, SEEDS, [tmp_path / mode / str(s) for s in SEEDS], splits=splits,
                                      step_mode=mode, **QUIET)
            for mode in ("static", "graph")}
    assert [m["train_step"] for m in runs["graph"]] == ["graph"] * len(SEEDS)
    for g, s in zip(runs["graph"], runs["static"]):
        for key in ("train_loss", "val_loss", "test_loss"):
            assert g[key] == pytest.approx(s[key], rel=1e-6), key


@pytest.mark.parametrize("layers", [1, 2])
def test_both_directions_in_one_loop_give_the_same_bits(smoke, splits, layers):
    """The GPU's layer (reverse-direction models joined to the forward ones) against the direction-by-direction
    loop the CPU uses: same outputs and gradients, bit for bit, dropout included."""
    cfg = _cfg(smoke, **{**DEEP, "num_layers": layers})
    models = batched.initial_models(cfg, SEEDS, splits.row_size, splits.n_classes)
    x = torch.stack([splits.x_train[s:s + 20] for s in SEEDS])
    results = []
    for fuse in (False, True):
        model = batched.BatchedBiLSTMClassifier(models)
        model.fuse_directions = fuse
        gens = [torch.Generator().manual_seed(derive_seed(s, "dropout")) for s in SEEDS]
        out = model(x, gens)
        out.pow(2).sum().backward()
        results.append((out, [p.grad for p in model.parameters()]))
    (out_a, grads_a), (out_b, grads_b) = results
    assert torch.equal(out_a, out_b)
    assert all(torch.equal(a, b) for a, b in zip(grads_a, grads_b))
