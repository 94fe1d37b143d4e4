"""The sweep section: validation, the distributions, and an expansion that is stable as it grows."""

from __future__ import annotations

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


def test_a_named_config_may_not_take_a_sweep_name(smoke_raw, write_params):
    smoke_raw["configs"]["sweep_000"] = {"lr": 0.1}
    with pytest.raises(P.ParamsError, match="configs.sweep_000: names starting with sweep_ are the sweep's"):
        with_sweep(smoke_raw, write_params, method="random", count=1, parameters={"lr": {"value": 0.1}})


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
    from tests.test_program import toy_params

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

    from tests.test_workflow import SNAKEMAKE, snakemake

    if SNAKEMAKE is None:
        pytest.skip("snakemake is not installed")
    section = {"method": "random", "count": 2, "seed": 3,
               "parameters": {"lr": {"distribution": "log_uniform_values", "min": 0.001, "max": 0.1}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(dict(smoke_raw, sweep=section), sort_keys=False))
    snakemake(tmp_path)
    runs = pd.read_csv(tmp_path / "results" / "runs.csv")
    sweep_runs = runs[runs["config"].str.startswith("sweep_")]
    assert list(zip(sweep_runs["config"], sweep_runs["seed"])) == [("sweep_000", 0), ("sweep_001", 0)]
    p = P.load(tmp_path / "params.yaml")
    assert sweep_runs["hp.lr"].tolist() == [p.sweep_configs[c]["lr"] for c in ("sweep_000", "sweep_001")]

    section["count"] = 3
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(dict(smoke_raw, sweep=section), sort_keys=False))
    out = snakemake(tmp_path, "-n").stdout
    assert re.search(r"^train_signal\s+1$", out, re.M) and not re.search(r"^train_noise", out, re.M), out
    assert re.findall(r"rule train_signal:\s+output: results/runs/(\w+)/", out) == ["sweep_002"], out
