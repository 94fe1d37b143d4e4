"""The sweep section: validation, the distributions, and an expansion that is stable as it grows."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import yaml
from scipy import stats as st

from noisefloor import cli, params as P, sweep as S

SPACE = {
    "lr": {"distribution": "log_uniform_values", "min": 0.0001, "max": 0.1},
    "hidden_size": {"values": [8, 12, 16]},
    "weight_decay": {"distribution": "q_log_uniform_values", "min": 0.00001, "max": 0.01, "q": 0.00001},
    "dropout": {"distribution": "q_uniform", "min": 0.0, "max": 0.5, "q": 0.1},
    "batch_size": {"distribution": "int_uniform", "min": 20, "max": 80},
    "optimizer": {"distribution": "categorical", "values": ["adam", "sgd"]},
    "momentum": {"value": 0.9},
}


def sweep_params(**section) -> S.SweepParams:
    return S.SweepParams(method=section.get("method", "random"), count=section.get("count"),
                         seed=section.get("seed", 0), seeds=(0,), parameters=section["parameters"])


def with_sweep(smoke_raw, write_params, **section):
    raw = dict(smoke_raw, sweep=section)
    return P.load(write_params(raw))


# --------------------------------------------------------------------------- expansion


def random_space(rng: np.random.Generator) -> dict:
    """A random search space over the distributions (the property tests' input)."""
    space = {}
    for i in range(int(rng.integers(1, 6))):
        kind = rng.choice(["uniform", "int_uniform", "log_uniform_values", "q_uniform", "categorical", "value"])
        lo = float(rng.uniform(0.001, 1))
        hi = lo * float(rng.uniform(1, 100))
        space[f"p{i}"] = {
            "uniform": {"distribution": "uniform", "min": lo, "max": hi},
            "int_uniform": {"distribution": "int_uniform", "min": 0, "max": int(rng.integers(0, 50))},
            "log_uniform_values": {"distribution": "log_uniform_values", "min": lo, "max": hi},
            "q_uniform": {"distribution": "q_uniform", "min": lo, "max": hi, "q": 0.01},
            "categorical": {"values": list(rng.integers(0, 9, size=int(rng.integers(1, 5))))},
            "value": {"value": lo},
        }[kind]
    return space


def test_raising_count_appends_configs_and_changes_none_that_exist():
    rng = np.random.default_rng(2026)
    for _ in range(40):
        space, seed = random_space(rng), int(rng.integers(0, 1000))
        n, more = int(rng.integers(1, 30)), int(rng.integers(1, 30))
        small = S.expand(sweep_params(parameters=space, count=n, seed=seed))
        large = S.expand(sweep_params(parameters=space, count=n + more, seed=seed))
        assert list(large)[:n] == list(small) and all(large[k] == small[k] for k in small)
        assert S.expand(sweep_params(parameters=space, count=n, seed=seed)) == small      # deterministic


def test_editing_one_parameter_changes_only_its_values():
    before = S.expand(sweep_params(parameters=SPACE, count=20))
    edited = dict(SPACE, lr={"distribution": "log_uniform_values", "min": 0.001, "max": 0.01})
    after = S.expand(sweep_params(parameters=edited, count=20))
    for name in before:
        assert {k: v for k, v in before[name].items() if k != "lr"} == \
            {k: v for k, v in after[name].items() if k != "lr"}
        assert before[name]["lr"] != after[name]["lr"]
    other_seed = S.expand(sweep_params(parameters=SPACE, count=20, seed=1))
    assert other_seed != before


def test_names_keep_their_width_as_the_sweep_grows():
    assert [S.config_name(i) for i in (0, 7, 999, 1000)] == ["sweep_000", "sweep_007", "sweep_999", "sweep_1000"]


def test_each_distribution_draws_within_its_bounds_with_the_right_type_and_step():
    configs = S.expand(sweep_params(parameters=SPACE, count=300))
    values = {k: [c[k] for c in configs.values()] for k in SPACE}
    assert all(0.0001 <= v <= 0.1 for v in values["lr"])
    assert set(values["hidden_size"]) == {8, 12, 16}
    assert all(isinstance(v, int) and 20 <= v <= 80 for v in values["batch_size"])
    assert set(values["batch_size"]) >= {20, 80}                    # both ends are reachable
    assert set(values["dropout"]) <= {0.0, 0.1, 0.2, 0.3, 0.4, 0.5} and len(set(values["dropout"])) == 6
    assert all(math.isclose(v / 0.00001, round(v / 0.00001)) for v in values["weight_decay"])
    assert set(values["optimizer"]) == {"adam", "sgd"} and set(values["momentum"]) == {0.9}


@pytest.mark.parametrize("dist, transform", [("uniform", lambda v: v), ("log_uniform_values", np.log)])
def test_a_continuous_draw_has_the_right_shape(dist, transform):
    """Uniform draws are uniform; log-uniform draws' logs are uniform (Kolmogorov-Smirnov, fixed sampler seed)."""
    lo, hi = 0.001, 10.0
    space = {"x": {"distribution": dist, "min": lo, "max": hi}}
    x = transform(np.array([c["x"] for c in S.expand(sweep_params(parameters=space, count=2000)).values()]))
    a, b = transform(lo), transform(hi)
    assert st.kstest(x, st.uniform(loc=a, scale=b - a).cdf).pvalue > 0.01
    # and not uniform on the other scale: the two distributions are told apart
    other = np.exp(x) if dist == "log_uniform_values" else np.log(x)
    oa, ob = (lo, hi) if dist == "log_uniform_values" else (np.log(lo), np.log(hi))
    assert st.kstest(other, st.uniform(loc=oa, scale=ob - oa).cdf).pvalue < 1e-6


def test_a_grid_is_every_combination_in_order():
    space = {"lr": {"values": [0.1, 0.01]}, "hidden_size": {"distribution": "int_uniform", "min": 8, "max": 10},
             "dropout": {"value": 0.0}}
    configs = S.expand(sweep_params(method="grid", parameters=space))
    assert list(configs.values()) == [{"lr": lr, "hidden_size": h, "dropout": 0.0}
                                      for lr in (0.1, 0.01) for h in (8, 9, 10)]


# --------------------------------------------------------------------------- params


def test_sweep_configs_join_the_named_ones_at_the_sweep_seeds(smoke_raw, write_params):
    p = with_sweep(smoke_raw, write_params, method="random", count=3,
                   parameters={"lr": {"distribution": "log_uniform_values", "min": 0.001, "max": 0.1}})
    assert p.config_names == ("baseline", "lr_hi", "wide", "sweep_000", "sweep_001", "sweep_002")
    assert p.seeds_for("sweep_001") == (0,)                     # default: the first signal seed
    assert p.runs()[-3:] == [("sweep_000", 0), ("sweep_001", 0), ("sweep_002", 0)]
    assert p.resolve("sweep_002").train.lr == p.sweep_configs["sweep_002"]["lr"]
    assert p.resolve("sweep_002").model.hidden_size == 8        # the baseline's, not swept
    more = with_sweep(smoke_raw, write_params, method="random", count=5, seeds=[1, 2],
                      parameters={"lr": {"distribution": "log_uniform_values", "min": 0.001, "max": 0.1}})
    assert more.seeds_for("sweep_004") == (1, 2)
    assert [more.resolve(c).train.lr for c in p.sweep_configs] == [p.resolve(c).train.lr for c in p.sweep_configs]


@pytest.mark.parametrize("section, message", [
    ({"method": "random", "count": 0, "parameters": {"lr": {"value": 0.1}}}, "sweep.count: 0 is less than"),
    ({"method": "random", "parameters": {"lr": {"value": 0.1}}}, "sweep.count: a random sweep needs"),
    ({"method": "random", "count": 2, "parameters": {"lr": {"distribution": "uniform", "min": 0.2, "max": 0.1}}},
     "sweep.parameters.lr: min 0.2 > max 0.1"),
    ({"method": "random", "count": 2,
      "parameters": {"lr": {"distribution": "log_uniform_values", "min": 0, "max": 0.1}}},
     "sweep.parameters.lr.min: log_uniform_values needs min > 0"),
    ({"method": "grid", "parameters": {"lr": {"distribution": "uniform", "min": 0.01, "max": 0.1}}},
     "sweep.parameters.lr: a grid cannot enumerate the continuous uniform distribution"),
    ({"method": "random", "count": 2, "parameters": {"lr": {"distribution": "normal", "min": 0, "max": 1}}},
     "sweep.parameters.lr.distribution: 'normal' is not one of"),
    ({"method": "random", "count": 2, "parameters": {"lr": {"value": 0.1, "values": [0.1]}}},
     "sweep.parameters.lr: give exactly one of value, values or distribution"),
    ({"method": "random", "count": 2, "parameters": {"lr": {"valu": 0.1}}},
     "sweep.parameters.lr: unknown key 'valu'"),
    ({"method": "random", "count": 2, "parameters": {"lr_max": {"value": 0.1}}},
     "sweep.parameters.lr_max: not a model or train key"),
    ({"method": "random", "count": 2, "parameters": {"hidden_size": {"distribution": "uniform", "min": 4,
                                                                       "max": 9}}},
     "is not of type 'integer' (a value the sweep drew: fix sweep.parameters)"),
    ({"method": "random", "count": 2, "seeds": [7], "parameters": {"lr": {"value": 0.1}}},
     "sweep.seeds: [7] not in seeds.noise"),
    ({"method": "random", "count": 2, "parameters": {"device": {"values": ["cpu", "cuda"]}}},
     "sweep.parameters.device: how a run executes, not a hyperparameter to search"),
    ({"method": "grid", "parameters": {"batch_size": {"distribution": "int_uniform", "min": 1, "max": 10 ** 9}}},
     "sweep.parameters: the grid has 1,000,000,000 configs (at most 100,000; use method: random)"),
    ({"method": "random", "count": 2,
      "parameters": {"optimizer": {"distribution": "categorical", "values": ["adam"], "min": 0}}},
     "sweep.parameters.optimizer.min: not with a categorical distribution"),
    ({"method": "random", "count": 2, "parameters": {"lr": {"value": 0.1}}, "confirm": {"top_k": 1, "seeds": [1, 9]}},
     "sweep.confirm.seeds: [9] not in seeds.noise"),
    ({"method": "random", "count": 2, "parameters": {"lr": {"value": 0.1}}, "confirm": {"top_k": 1, "seeds": [0, 1]}},
     "sweep.confirm.seeds: [0] already searched (sweep.seeds); a confirmation needs fresh seeds"),
    ({"method": "random", "count": 2, "parameters": {"lr": {"value": 0.1}}, "confirm": {"top_k": 3, "seeds": [1, 2]}},
     "sweep.confirm.top_k: 3 is more than the sweep's 2 configs"),
    ({"method": "random", "count": 2, "parameters": {"lr": {"value": 0.1}}, "confirm": {"top_k": 1, "seeds": [1]}},
     "sweep.confirm.seeds: needs at least 2 entries (got 1)"),
    ({"method": "random", "count": 2, "parameters": {"lr": {"value": 0.1}}, "confirm": {"top_k": 1}},
     "sweep.confirm: 'seeds' is a required property"),
])
def test_a_bad_sweep_is_refused_with_one_line_naming_the_key(smoke_raw, write_params, section, message):
    with pytest.raises(P.ParamsError) as err:
        with_sweep(smoke_raw, write_params, **section)
    assert message in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_a_categorical_distribution_takes_its_values_as_w_and_b_writes_it(smoke_raw, write_params):
    for method, extra in (("random", {"count": 20}), ("grid", {})):
        p = with_sweep(smoke_raw, write_params, method=method, **extra, parameters={
            "optimizer": {"distribution": "categorical", "values": ["adam", "sgd"]}})
        assert {p.resolve(c).train.optimizer for c in p.sweep_configs} == {"adam", "sgd"}


@pytest.mark.parametrize("where, name", [
    ("configs", "sweep_000"), ("configs", "sweep_a"), ("configs", "sweep"), ("stats.baseline", "sweep_base"),
    ("configs", "decompose_x"), ("configs", "decompose"), ("stats.baseline", "decompose_base")])
def test_no_config_may_take_a_name_the_pipeline_keeps_for_its_own_runs(smoke_raw, write_params, where, name):
    """A sweep's and the decomposition's runs live in folders of their own, found by these names."""
    if where == "configs":
        smoke_raw["configs"][name] = {"lr": 0.1}
    else:
        smoke_raw["stats"]["baseline"] = name
    with pytest.raises(P.ParamsError, match=rf"{where.split('.')[0]}\S*: names starting with (sweep_|decompose_)"):
        P.load(write_params(smoke_raw))


def test_a_confirmation_needs_unbatched_runs(smoke_raw, write_params):
    smoke_raw["train"]["seed_batch"] = 2
    with pytest.raises(P.ParamsError, match=r"sweep.confirm: not with train.seed_batch > 1"):
        with_sweep(smoke_raw, write_params, method="random", count=2, parameters={"lr": {"value": 0.1}},
                   confirm={"top_k": 1, "seeds": [1, 2]})


# --------------------------------------------------------------------------- confirmation


def test_the_confirmation_takes_the_best_finite_scores_in_the_metrics_direction_first_drawn_first():
    scores = {"sweep_000": 0.5, "sweep_001": 0.9, "sweep_002": None, "sweep_003": float("nan"), "sweep_004": 0.9,
              "sweep_005": 0.1}
    assert S.select(scores, 2) == ["sweep_001", "sweep_004"]            # a tie goes to the config drawn first
    assert S.select(scores, 3, direction="min") == ["sweep_005", "sweep_000", "sweep_001"]
    assert S.select(scores, 10) == ["sweep_001", "sweep_004", "sweep_000", "sweep_005"]   # never a failed run


def write_run(runs_dir, p, config, seed, value, status="ok"):
    """A finished run's metrics.json, as training writes it (for tests of what reads runs)."""
    from noisefloor import io
    from noisefloor.aggregate import run_dir

    cfg = p.resolve(config)
    folder = run_dir(runs_dir, config, seed)
    io.write_text(folder / "history.csv", "epoch,train_loss,val_loss,val_acc,time_s\n1,1.0,1.0,0.5,0.1\n")
    io.write_json(folder / "metrics.json", {"config": config, "seed": seed, "status": status, "val_acc": value,
                                            "config_hash": cfg.config_hash, "code_fingerprint": cfg.code_fingerprint})


def test_the_runs_table_holds_the_confirmation_apart_from_the_search(smoke_raw, write_params, tmp_path):
    from noisefloor import aggregate as A

    smoke_raw["seeds"] = {"noise": [0, 1, 2, 3], "signal": [0]}
    p = with_sweep(smoke_raw, write_params, method="random", count=4, confirm={"top_k": 2, "seeds": [2, 3]},
                   parameters={"lr": {"distribution": "log_uniform_values", "min": 0.001, "max": 0.1}})
    runs = tmp_path / "runs"
    for config, seed in p.runs():
        write_run(runs, p, config, seed, {"sweep_002": 0.9, "sweep_000": 0.8}.get(config, 0.5))
    assert (runs / "sweep" / "sweep_002" / "seed0" / "metrics.json").is_file()   # the sweep's own folder
    assert A.stale_seeds(p, runs, "sweep_002", [0, 2]) == [2]
    with pytest.raises(A.AggregateError, match=r"sweep/sweep_002/seed2/metrics.json: missing"):
        A.collect_runs(p, runs)                                   # the confirmation has not run yet
    for config in ("sweep_002", "sweep_000"):
        for seed in (2, 3):
            write_run(runs, p, config, seed, 0.6)
    table = A.collect_runs(p, runs)
    confirm = table[table["stage"] == "confirm"]
    assert list(zip(confirm["config"], confirm["seed"])) == [
        ("sweep_002 (fresh seeds)", 2), ("sweep_002 (fresh seeds)", 3), ("sweep_000 (fresh seeds)", 2),
        ("sweep_000 (fresh seeds)", 3)]
    assert (confirm["hp.lr"].to_numpy()[:2] == p.sweep_configs["sweep_002"]["lr"]).all()
    assert table.groupby("stage").size().to_dict() == {"confirm": 4, "noise": 4, "search": 4, "signal": 2}
    histories = A.collect_histories(p, runs)
    assert list(histories.drop_duplicates(["config", "seed"])["config"]) == list(table["config"])
    record = A.sweep_record(p, runs).to_dict()
    assert record["confirm"] == {"top_k": 2, "seeds": [2, 3], "configs": ["sweep_002", "sweep_000"]}
    assert record["configs"]["sweep_002"] == {"values": dict(p.sweep_configs["sweep_002"]), "score": 0.9,
                                              "config_hash": p.resolve("sweep_002").config_hash}


def test_sweep_show_lists_every_config_with_its_values_and_hash(smoke_raw, write_params, capsys):
    raw = dict(smoke_raw, sweep={"method": "grid", "parameters": {"lr": {"values": [0.1, 0.01]}}})
    path = write_params(raw)
    assert cli.main(["sweep", "show", "--params", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    p = P.load(path)
    assert re.split(r"\s+", out[0].strip()) == ["config", "lr", "seeds", "config_hash"]
    assert [re.split(r"\s+", line.strip()) for line in out[1:]] == [
        ["sweep_000", "0.10", "0", p.resolve("sweep_000").config_hash],
        ["sweep_001", "0.01", "0", p.resolve("sweep_001").config_hash]]


def test_a_program_sweeps_its_own_hyperparameters(tmp_path):
    from tests.helpers import toy_params

    path = toy_params(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["sweep"] = {"method": "random", "count": 2, "parameters": {"lr": {"distribution": "uniform", "min": 0.0,
                                                                          "max": 0.05}}}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    p = P.load(path)
    assert set(p.resolve("sweep_001").hparams) == {"lr", "behaviour"}
    assert 0 <= p.resolve("sweep_001").hparams["lr"] <= 0.05
    raw["sweep"]["parameters"] = {"width": {"value": 3}}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(P.ParamsError, match="sweep.parameters.width: not a hyperparameter"):
        P.load(path)
    raw["sweep"]["parameters"] = {"lr": {"values": [__import__("datetime").date(2024, 1, 1)]}}
    path.write_text(yaml.dump(raw, sort_keys=False))
    with pytest.raises(P.ParamsError, match=r"sweep.parameters.lr: datetime.date\(2024, 1, 1\) is not a plain"):
        P.load(path)


@pytest.mark.slow
def test_a_sweep_runs_under_snakemake_and_growing_it_trains_only_the_new_configs(tmp_path, smoke_raw):
    import pandas as pd

    from tests.helpers import SNAKEMAKE, snakemake

    if SNAKEMAKE is None:
        pytest.skip("snakemake is not installed")
    section = {"method": "random", "count": 2, "seed": 3, "confirm": {"top_k": 1, "seeds": [1, 2]},
               "parameters": {"lr": {"distribution": "log_uniform_values", "min": 0.001, "max": 0.1}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(dict(smoke_raw, sweep=section), sort_keys=False))
    snakemake(tmp_path)
    runs = pd.read_csv(tmp_path / "results" / "runs.csv")
    search = runs[runs["stage"] == "search"]
    assert list(zip(search["config"], search["seed"])) == [("sweep_000", 0), ("sweep_001", 0)]
    p = P.load(tmp_path / "params.yaml")
    assert search["hp.lr"].tolist() == [p.sweep_configs[c]["lr"] for c in ("sweep_000", "sweep_001")]
    # the checkpoint chose the search's best, and Snakemake ran it again at the fresh seeds in the same run
    best = search["config"].iloc[int(search["val_acc"].to_numpy().argmax())]
    record = json.loads((tmp_path / "results" / "runs" / "sweep" / "sweep.json").read_text())
    assert record["confirm"]["configs"] == [best]
    confirm = runs[runs["stage"] == "confirm"]
    assert list(zip(confirm["config"], confirm["seed"])) == [(S.confirm_name(best), 1), (S.confirm_name(best), 2)]
    comparisons = pd.read_csv(tmp_path / "results" / "analysis" / "comparisons.csv").set_index("config")
    assert comparisons.loc[S.confirm_name(best), "n"] == 2
    summary = json.loads((tmp_path / "results" / "analysis" / "summary.json").read_text())
    assert [c["config"] for c in summary["search_confirmed"]] == [best]

    section["count"] = 3
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(dict(smoke_raw, sweep=section), sort_keys=False))
    out = snakemake(tmp_path, "-n").stdout
    assert re.search(r"^train_sweep\s+1$", out, re.M) and not re.search(r"^train_(noise|signal)", out, re.M), out
    assert re.findall(r"rule train_sweep:\s+output: results/runs/sweep/(\w+)/", out) == ["sweep_002"], out


def test_a_searchs_winner_at_fresh_seeds_shows_the_winners_curse_and_keeps_the_search_whole():
    """40 configs that are all the baseline: the search's best leads by luck; at fresh seeds it is the baseline."""
    import pandas as pd

    from noisefloor.report import answer_sentence
    from noisefloor.stats import analyze

    rng = np.random.default_rng(5)
    noise = 0.01
    rows = [{"config": "baseline", "seed": s, "stage": "noise", "acc": 0.9 + rng.normal(0, noise)} for s in range(12)]
    search = {S.config_name(i): 0.9 + rng.normal(0, noise) for i in range(40)}
    rows += [{"config": c, "seed": 0, "stage": "search", "acc": v} for c, v in search.items()]
    chosen = S.select(search, 2)
    rows += [{"config": S.confirm_name(c), "seed": s, "stage": "confirm", "acc": 0.9 + rng.normal(0, noise)}
             for c in chosen for s in range(2, 12)]
    result = analyze(pd.DataFrame(rows), "acc", n_boot=200)
    s, comp = result.summary, result.comparisons.set_index("config")
    assert s.search_trials == 41 and s.search_winner == chosen[0]          # the search is whole: 40 + the baseline
    assert s.family_size == 2                                               # the verdicts: the confirmations alone
    assert [c.config for c in s.search_confirmed] == chosen
    for c in s.search_confirmed:
        row = comp.loc[c.group]
        assert c.search_diff == comp.loc[c.config, "diff"]      # the verdict table's rows, both
        assert (c.diff, c.ci, c.verdict, c.n) == (row["diff"], [row["ci_low"], row["ci_high"]], row["verdict"], 10)
    winner = s.search_confirmed[0]
    assert winner.search_diff > 1.5 * noise                  # the best of 40 by luck ...
    assert abs(winner.diff) < winner.search_diff / 2         # ... is near the baseline at fresh seeds
    assert winner.verdict != "better" and winner.ci[0] < 0 < winner.ci[1]
    text = answer_sentence(s, result.comparisons, fraction=True)
    assert "Run again at 10 fresh seeds" in text and "confirm the top configs" not in text
    assert f"{chosen[0]} +{winner.search_diff * 100:.2f} pp in the search, {winner.diff * 100:+.2f} pp" in text
    assert "optimistic pick" not in text
