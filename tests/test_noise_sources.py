"""The noise budget by source: the statistics, checked by simulation with known per-source variances."""

from __future__ import annotations

import numpy as np
import pytest

from noisefloor.stats.noise_sources import ALL, noise_budget

SIGMA = {"init": 0.010, "order": 0.006, "dropout": 0.003, "data": 0.015}


def decomposition(rng, n=20, sigma=SIGMA, overlap=False):
    """Runs of the decomposition design as the pipeline runs it: each source alone (the others at a reference
    seed), then all of them from streams of their own (so independent of the single-source runs).

    Additive sources: a run is the sum of one independent effect per source, drawn from the source's
    seed; the held sources contribute their reference seed's effect, a constant. ``overlap``: training as
    chaos, where any one source moving reaches the whole spread (each source alone gives the total).
    """
    total = float(np.sqrt(sum(s * s for s in sigma.values())))
    reference = {k: rng.normal(0, s) for k, s in sigma.items()}
    runs = {}
    for k, s in sigma.items():
        held = sum(v for j, v in reference.items() if j != k)
        runs[k] = 0.9 + held + rng.normal(0, total if overlap else s, n)
    runs[ALL] = 0.9 + rng.normal(0, total, n)
    return runs


def test_each_sources_sd_and_share_cover_the_truth_at_their_level():
    rng = np.random.default_rng(0)
    total = sum(s * s for s in SIGMA.values())
    reps, covered_sd, covered_share = 400, {k: 0 for k in SIGMA}, {k: 0 for k in SIGMA}
    for _ in range(reps):
        budget = noise_budget(decomposition(rng))
        for row in budget.sources:
            if row.source == ALL:
                continue
            covered_sd[row.source] += row.sd_ci[0] <= SIGMA[row.source] <= row.sd_ci[1]
            covered_share[row.source] += row.share_ci[0] <= SIGMA[row.source] ** 2 / total <= row.share_ci[1]
    se = np.sqrt(0.95 * 0.05 / reps)
    for k in SIGMA:
        assert abs(covered_sd[k] / reps - 0.95) < 3 * se, (k, covered_sd[k] / reps)
        assert abs(covered_share[k] / reps - 0.95) < 3 * se, (k, covered_share[k] / reps)


def test_additive_sources_add_up_and_the_largest_is_found():
    rng = np.random.default_rng(1)
    reps = 300
    verdicts = [noise_budget(decomposition(rng, n=100)) for _ in range(reps)]
    holds = np.mean([b.sum_ratio_ci[0] <= 1 <= b.sum_ratio_ci[1] for b in verdicts])
    assert holds > 0.95 - 3 * np.sqrt(0.95 * 0.05 / reps)        # the interval holds 1 at its level
    # ... and at 100 seeds per source it is mostly narrow enough (within 0.5 to 2) to say so
    assert np.mean([b.adds_up == "add up" for b in verdicts]) > 0.8
    assert {b.adds_up for b in verdicts} <= {"add up", "cannot tell", "overlap", "fall short"}
    assert np.mean([b.largest == "data" for b in verdicts]) > 0.9  # 0.015 against 0.010
    assert abs(np.median([b.sum_ratio for b in verdicts]) - 1) < 0.1


def test_overlapping_sources_are_said_to_overlap_not_to_add_up():
    budget = noise_budget(decomposition(np.random.default_rng(2), n=30, overlap=True))
    assert budget.adds_up == "overlap" and budget.sum_ratio > 2
    assert all(row.share_ci[0] < 1 < row.share_ci[1] for row in budget.sources if row.source != ALL)


def test_the_interval_of_one_sd_is_the_noise_floors():
    # The same interval as the noise floor's (Bonett's, which holds off the normal), never a second formula.
    from noisefloor.stats import noise_floor

    v = np.random.default_rng(3).normal(0, 0.01, 12)
    row = noise_budget({"init": v}).sources[0]
    ci = noise_floor(v).confidence_interval(0.95)
    assert row.sd == pytest.approx(np.sqrt(v.var(ddof=1)))
    assert row.sd_ci == pytest.approx((ci.low, ci.high), rel=1e-12)
    assert row.share is None and noise_budget({"init": v}).adds_up is None


def decomposition_table(rng, sigma=SIGMA, n=10):
    """A runs table as aggregate writes it: the baseline, one variant, and the decomposition's runs."""
    import pandas as pd

    rows = [{"config": "baseline", "seed": s, "stage": "noise", "status": "ok", "sources": "init+order+dropout",
             "acc": 0.9 + rng.normal(0, 0.01)} for s in range(12)]
    rows += [{"config": "lr_hi", "seed": s, "stage": "signal", "status": "ok", "sources": "init+order+dropout",
              "acc": 0.91 + rng.normal(0, 0.01)} for s in range(4)]
    for source, values in decomposition(rng, n=n, sigma=sigma).items():
        rows += [{"config": f"decompose_{source}", "seed": s, "stage": "decompose", "status": "ok", "source": source,
                  "acc": v} for s, v in enumerate(values)]
    rows += [{"config": "decompose_numeric", "seed": s, "stage": "decompose", "status": "skipped",
              "source": "numeric", "acc": None} for s in range(n)]
    return pd.DataFrame(rows)


def test_the_analysis_reads_the_decomposition_apart_from_the_verdicts():
    from noisefloor import plots
    from noisefloor.stats import analyze

    runs = decomposition_table(np.random.default_rng(4))
    result = analyze(runs, "acc", n_boot=200)
    s = result.summary
    assert list(result.comparisons["config"]) == ["lr_hi"] and s.n_runs == 16      # no decomposition run
    assert s.noise_floor_sources == ["init", "order", "dropout"]
    budget = noise_budget({k: runs.loc[(runs["source"] == k) & (runs["status"] == "ok"), "acc"].to_numpy()
                           for k in ("init", "order", "dropout", "data", ALL)})
    assert [r.source for r in s.noise_sources] == ["init", "order", "dropout", "data", ALL]
    assert [r.sd for r in s.noise_sources] == pytest.approx([r.sd for r in budget.sources])
    assert s.noise_sources_sum_ratio == pytest.approx(budget.sum_ratio)
    assert (s.noise_sources_adds_up, s.noise_sources_largest) == (budget.adds_up, budget.largest)
    assert s.noise_sources_skipped == ["numeric"]
    fig = plots.noise_budget_figure(s)
    ax = fig.axes[0]
    bars = ax.containers[0]                                          # one bar per measured source, and all
    assert [p.get_height() for p in bars] == pytest.approx([r.sd * 100 for r in s.noise_sources])
    floor = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert floor and floor[0].get_ydata()[0] == pytest.approx(s.noise_floor * 100)
    assert "init + order + dropout" in ax.get_legend().get_texts()[0].get_text()


@pytest.mark.parametrize("dropout, layers, named", [(0.0, 2, ["init", "order"]), (0.2, 1, ["init", "order"]),
                                                    (0.2, 2, ["init", "order", "dropout"])])
def test_the_noise_floor_names_only_the_sources_its_model_can_vary(dropout, layers, named):
    from noisefloor.report import answer_sentence
    from noisefloor.stats import analyze

    runs = decomposition_table(np.random.default_rng(4)).assign(**{"hp.dropout": dropout, "hp.num_layers": layers})
    result = analyze(runs, "acc", n_boot=200)
    assert result.summary.noise_floor_sources == named
    assert f"Seed noise alone ({', '.join(named)}) moves acc" in answer_sentence(result.summary,
                                                                               result.comparisons, True)


def test_without_a_decomposition_the_figure_says_how_to_get_one():
    import pandas as pd

    from noisefloor import plots
    from noisefloor.stats import analyze

    runs = pd.DataFrame({"config": ["baseline"] * 5, "seed": range(5), "acc": [0.9, 0.91, 0.92, 0.9, 0.93]})
    s = analyze(runs, "acc", n_boot=200).summary
    assert s.noise_sources is None and s.noise_floor_sources is None
    assert plots.noise_budget_figure(s).axes[0].texts[0].get_text().startswith("No noise budget")


# --------------------------------------------------------------------------- the sources, run by run


def with_decompose(smoke_raw, write_params, **section):
    """The smoke params with a decompose section (seeds 0, 1, 2 unless ``section`` says otherwise)."""
    from noisefloor import params as P

    return P.load(write_params(dict(smoke_raw, decompose={"seeds": [0, 1, 2], **section})))


def test_each_source_varies_its_own_stream_and_nothing_else(smoke_raw, write_params):
    import torch

    from noisefloor.protocol import derive_seed, initial_model

    smoke_raw["model"] = {**smoke_raw.get("model", {}), "num_layers": 2, "dropout": 0.2}   # dropout that acts
    p = with_decompose(smoke_raw, write_params, reference=0)
    assert list(p.decompose_configs) == ["decompose_init", "decompose_order", "decompose_dropout",
                                         "decompose_data", "decompose_all"]
    streams = ("init", "order", "dropout", "data")

    def seeds_of(config, seed):
        return {k: p.resolve(config).stream_seed(seed, k) for k in streams}

    reference = {"init": 0, "order": 0, "dropout": 0, "data": None}       # the held sources; the fixed split
    for source in streams:
        assert seeds_of(f"decompose_{source}", 2) == {**reference, source: 2}
    # all of them: every stream from a seed of its own, shared with no single-source run (independent estimates)
    assert seeds_of("decompose_all", 2) == dict.fromkeys(streams, 2 + 1_000_000)
    single = {v for c in p.decompose_configs if c != "decompose_all" for s in p.decompose.seeds
              for v in seeds_of(c, s).values()}
    assert not single & {v for s in p.decompose.seeds for v in seeds_of("decompose_all", s).values()}
    assert seeds_of("baseline", 2) == {"init": 2, "order": 2, "dropout": 2, "data": None}

    def weights(config, seed):
        return torch.cat([w.flatten() for w in initial_model(p.resolve(config), seed, 8, 10).state_dict().values()])

    def batches(config, seed):
        cfg = p.resolve(config)
        return torch.randperm(100, generator=torch.Generator().manual_seed(
            derive_seed(cfg.stream_seed(seed, "order"), "data")))

    # only order varying: the reference's initial weights, other batches; only init varying: the reverse
    assert torch.equal(weights("decompose_order", 2), weights("decompose_order", 0))
    assert not torch.equal(batches("decompose_order", 2), batches("decompose_order", 0))
    assert not torch.equal(weights("decompose_init", 2), weights("decompose_init", 0))
    assert torch.equal(batches("decompose_init", 2), batches("decompose_init", 0))
    # and the baseline at seed 0 starts where every decomposition run's held streams are
    assert torch.equal(weights("baseline", 0), weights("decompose_order", 1))


def test_by_default_the_reference_is_no_runs_seed(smoke_raw, write_params):
    p = with_decompose(smoke_raw, write_params)
    assert p.decompose.reference == 3 and p.decompose.reference not in p.decompose.seeds


def test_numeric_noise_is_reported_but_not_summed_nor_shared():
    rng = np.random.default_rng(6)
    runs = decomposition(rng, n=20)
    budget = noise_budget(runs)
    with_numeric = noise_budget({**runs, "numeric": rng.normal(0.9, 0.05, 20)})
    numeric = next(r for r in with_numeric.sources if r.source == "numeric")
    assert numeric.sd > 0.03 and numeric.share is None
    assert (with_numeric.sum_ratio, with_numeric.adds_up, with_numeric.largest) == \
        (budget.sum_ratio, budget.adds_up, budget.largest)


def test_a_source_that_does_not_vary_is_clearly_smaller_and_no_parts_no_interval():
    from noisefloor.report import noise_budget_sentence
    from noisefloor.summary import Summary

    still = np.full(10, 0.9)
    budget = noise_budget({"init": np.random.default_rng(7).normal(0.9, 0.01, 10), "dropout": still,
                           ALL: np.random.default_rng(8).normal(0.9, 0.01, 10)})
    assert (budget.largest, budget.largest_clear) == ("init", True)
    flat = noise_budget({"init": still, "dropout": still, ALL: np.random.default_rng(8).normal(0.9, 0.01, 10)})
    assert flat.adds_up is None and flat.largest is None        # no part varies: no interval, no claim
    s = Summary(metric="acc", noise_sources=[{"source": r.source, "n": r.n, "sd": r.sd, "sd_ci": list(r.sd_ci),
                                              "share": r.share, "share_ci": None} for r in flat.sources],
                noise_sources_largest=flat.largest, noise_sources_largest_clear=flat.largest_clear)._cleaned()
    text = noise_budget_sentence(s, fraction=True)
    assert "not clearly above" not in text and "The parts" not in text


def test_the_data_source_resplits_the_pool_by_class_and_never_leaks(smoke):
    import dataclasses

    import numpy as np

    from noisefloor.data import load_dataset

    fixed = load_dataset(smoke.data)
    whole = load_dataset(dataclasses.replace(smoke.data, train_subset=None))    # the pool: training + validation
    pool = {tuple(x.flatten().tolist()) for x in (*whole.x_train, *whole.x_val)}
    for seed in (1, 2):
        s = load_dataset(smoke.data, split=seed)
        train = {tuple(x.flatten().tolist()) for x in s.x_train}
        val = {tuple(x.flatten().tolist()) for x in s.x_val}
        assert not train & val and train | val <= pool                    # no validation example trains
        assert len(s.y_val) == len(fixed.y_val) and len(s.y_train) == len(fixed.y_train)
        assert np.array_equal(np.bincount(s.y_val.numpy(), minlength=10),
                              np.bincount(fixed.y_val.numpy(), minlength=10))   # the same classes held out
        assert torch_equal(s.x_test, fixed.x_test)                      # the test set never moves
        assert not torch_equal(s.x_val, fixed.x_val)
    assert torch_equal(load_dataset(smoke.data, split=1).x_val, load_dataset(smoke.data, split=1).x_val)


def torch_equal(a, b) -> bool:
    import torch

    return a.shape == b.shape and bool(torch.equal(a, b))


def test_adding_data_to_the_sources_changes_every_configs_hash_and_the_default_none(smoke_raw, write_params):
    from noisefloor import params as P

    base = P.load(write_params(smoke_raw))
    spelled = P.load(write_params(dict(smoke_raw, seeds=dict(smoke_raw["seeds"],
                                                             sources=["dropout", "init", "order"]))))
    wider = P.load(write_params(dict(smoke_raw, seeds=dict(smoke_raw["seeds"],
                                                           sources=["init", "order", "dropout", "data"]))))
    for name in base.config_names:
        assert spelled.resolve(name).config_hash == base.resolve(name).config_hash
        assert wider.resolve(name).config_hash != base.resolve(name).config_hash
    decomposed = with_decompose(smoke_raw, write_params)
    hashes = {decomposed.resolve(c).config_hash for c in decomposed.config_names}
    assert len(hashes) == len(decomposed.config_names)                 # every decomposition config its own
    assert [decomposed.resolve(c).config_hash for c in base.config_names] == \
        [base.resolve(c).config_hash for c in base.config_names]        # and the experiment's unchanged


@pytest.mark.parametrize("edit, message", [
    (lambda raw: raw["seeds"].update(sources=["init", "weather"]), "seeds.sources.1: 'weather' is not one of"),
    (lambda raw: raw.update(decompose={"seeds": [0]}), "decompose.seeds: needs at least 2 entries (got 1)"),
    (lambda raw: raw.update(decompose={"seeds": [0, 1], "sources": ["all"]}), "decompose.sources.0: 'all' is not"),
    (lambda raw: (raw["train"].update(seed_batch=2), raw["seeds"].update(sources=["init", "data"])),
     "seeds.sources: not with train.seed_batch > 1"),
    (lambda raw: (raw["train"].update(seed_batch=2), raw.update(decompose={"seeds": [0, 1]})),
     "decompose: not with train.seed_batch > 1 yet"),
])
def test_bad_sources_are_refused_with_one_line_naming_the_key(smoke_raw, write_params, edit, message):
    from noisefloor import params as P

    edit(smoke_raw)
    with pytest.raises(P.ParamsError) as err:
        P.load(write_params(smoke_raw))
    assert message in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_a_program_owns_its_randomness(tmp_path):
    import yaml

    from noisefloor import params as P
    from tests.helpers import toy_params

    path = toy_params(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["decompose"] = {"seeds": [0, 1]}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(P.ParamsError, match="decompose: only for the built-in model, whose sources of randomness "
                                            "noisefloor controls one by one; a program owns its randomness"):
        P.load(path)


def test_numeric_noise_is_recorded_as_skipped_on_cpu(smoke_raw, write_params, tmp_path):
    import json

    from noisefloor.train import train_seeds

    smoke_raw["train"]["device"] = "cpu"
    p = with_decompose(smoke_raw, write_params, sources=["init", "numeric"])
    assert list(p.decompose_configs) == ["decompose_init", "decompose_numeric"]       # no "all" of one source
    records = list(train_seeds(p.resolve("decompose_numeric"), [0, 1], tmp_path / "runs"))
    assert [r["status"] for r in records] == ["skipped", "skipped"] and "needs CUDA" in records[0]["note"]
    written = json.loads((tmp_path / "runs" / "decompose" / "decompose_numeric" / "seed1" / "metrics.json")
                         .read_text())
    assert written["config_hash"] == p.resolve("decompose_numeric").config_hash


@pytest.mark.slow
def test_a_decomposition_under_snakemake_gives_the_noise_budget_and_its_figure(tmp_path, smoke_raw):
    import json

    import pandas as pd
    import yaml

    from tests.helpers import SNAKEMAKE, snakemake

    if SNAKEMAKE is None:
        pytest.skip("snakemake is not installed")
    smoke_raw["decompose"] = {"seeds": [0, 1, 2], "sources": ["init", "order", "data"]}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(smoke_raw, sort_keys=False))
    snakemake(tmp_path)
    runs = pd.read_csv(tmp_path / "results" / "runs.csv")
    dec = runs[runs["stage"] == "decompose"]
    assert dec.groupby("source").size().to_dict() == {"all": 3, "data": 3, "init": 3, "order": 3}
    assert (tmp_path / "results" / "runs" / "decompose" / "decompose_data" / "seed2" / "metrics.json").is_file()
    record = json.loads((tmp_path / "results" / "runs" / "decompose" / "decompose.json").read_text())
    assert record["reference"] == 3 and record["sources"] == ["init", "order", "data"]   # (one past the seeds)
    # every split the same size (a re-split, not a bootstrap)
    assert (dec["status"] == "ok").all() and dec["n_val"].nunique() == 1
    summary = json.loads((tmp_path / "results" / "analysis" / "summary.json").read_text())
    assert [r["source"] for r in summary["noise_sources"]] == ["init", "order", "data", "all"]
    # (the smoke model has one LSTM layer: its seeds' dropout stream varies nothing, and is not named)
    assert summary["noise_floor_sources"] == ["init", "order"] and summary["n_runs"] == 7
    for r in summary["noise_sources"]:
        values = dec.loc[dec["source"] == r["source"], "val_acc"]
        assert r["sd"] == pytest.approx(values.std(ddof=1))
    assert (tmp_path / "results" / "plots" / "noise_budget.png").stat().st_size > 10_000
    report = (tmp_path / "results" / "report.html").read_text()
    assert "Where the noise comes from" in report and "It leaves out data" in report


def test_a_wide_interval_cannot_tell_whether_the_parts_add_up_and_says_how_many_seeds_would():
    """3 seeds per source: the ratio's interval holds 1 but spans orders of magnitude, so "add up" would claim
    what the data cannot show; the seeds it names do tell, at the ratio observed."""
    from noisefloor.stats.noise_sources import ADDS_UP_WITHIN, _ratio_ci

    rng = np.random.default_rng(3)
    few = [noise_budget(decomposition(rng, n=3)) for _ in range(50)]
    wide = [b for b in few if b.sum_ratio_ci[0] <= 1 <= b.sum_ratio_ci[1]]
    assert wide and all(b.adds_up == "cannot tell" for b in wide)
    for b in wide:
        lo, hi = b.sum_ratio_ci
        assert lo < ADDS_UP_WITHIN[0] or hi > ADDS_UP_WITHIN[1]
        n = b.seeds_to_tell
        assert n is not None and n > 3
        # at n seeds (the degrees of freedom grown in proportion) it tells; at n - 1 it does not yet
        per = _sum_df(b) / (3 - 1)          # the summed parts' degrees of freedom per seed of the whole
        tell = _ratio_ci(b.sum_ratio, per * (n - 1), n - 1, 0.95)
        assert not (tell[0] <= 1 <= tell[1]) or ADDS_UP_WITHIN[0] <= tell[0] <= tell[1] <= ADDS_UP_WITHIN[1]
        if n - 1 > 3:
            before = _ratio_ci(b.sum_ratio, per * (n - 2), n - 2, 0.95)
            assert before[0] <= 1 <= before[1] and (before[0] < 0.5 or before[1] > 2)
    # with many seeds additive sources are said to add up (the interval is then within 0.5 to 2)
    many = noise_budget(decomposition(np.random.default_rng(4), n=200))
    assert many.adds_up == "add up" and many.seeds_to_tell is None


def _sum_df(budget) -> float:
    """Welch-Satterthwaite's degrees of freedom of the budget's summed part variances."""
    parts = [(r.sd ** 2, r.n - 1) for r in budget.sources if r.source != ALL]
    total = sum(v for v, _ in parts)
    return total * total / sum(v * v / df for v, df in parts)


@pytest.mark.parametrize("model, why", [
    ({"dropout": 0.0}, "the model has no dropout (model.dropout 0)"),
    ({"dropout": 0.3, "num_layers": 1}, "dropout acts between LSTM layers and the model has one"),
])
def test_a_source_nothing_in_the_model_varies_is_left_out_with_a_note(smoke_raw, write_params, tmp_path, capsys,
                                                                       model, why):
    """Dropout without dropout: its runs would all be the reference run (0 noise, a bar that says nothing)."""
    from noisefloor import cli
    from noisefloor.report import noise_budget_sentence
    from noisefloor.summary import Summary

    smoke_raw["model"] = {**smoke_raw.get("model", {}), **model}
    p = with_decompose(smoke_raw, write_params)
    assert "decompose_dropout" not in p.decompose_configs and p.decompose.sources == ("init", "order", "data")
    assert why in p.decompose.left_out["dropout"]
    assert p.resolve("decompose_all").sources == ("init", "order", "data")
    assert cli.main(["check", "--params", p.source]) == 0
    assert f"note: decompose: dropout is left out: {why}" in capsys.readouterr().err
    only = dict(smoke_raw, decompose={"seeds": [0, 1], "sources": ["dropout"]})
    assert cli.main(["check", "--params", str(write_params(only))]) == 2
    assert "decompose.sources: dropout is all it names" in capsys.readouterr().err
    # the analysis carries the note to the report's noise budget
    s = Summary.from_dict({"noise_sources": [{"source": "init", "n": 3, "sd": 0.01, "sd_ci": [0.005, 0.06],
                                              "share": None, "share_ci": None}],
                           "noise_sources_left_out": dict(p.decompose.left_out)})
    assert f"Dropout is not measured: {p.decompose.left_out['dropout']}, so nothing varies it." in \
        noise_budget_sentence(s, True)
