"""Tests for noisefloor.summary: typed rows in memory, summary.json's shape unchanged, no mapping access."""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import synthetic as sy
from noisefloor.stats import COMPARISON_COLUMNS, IMPORTANCE_COLUMNS, analyze
from noisefloor.stats.sequential import Schedule, replay
from noisefloor.summary import (Adaptive, ConfigSpread, Confirmation, Curve, Look, NoiseSource, NotConverged,
                                SearchImportance, SeedsNeeded, Summary)

SRC = Path(__file__).resolve().parents[1] / "src" / "noisefloor"

#: summary.json's keys inside each nested field, as DVC, the tracker file and users' scripts read them.
ROW_KEYS = {
    "config_spreads": ["config", "n", "sd", "sd_robust"],
    "seeds_needed_for": ["noise_floors", "diff", "seeds", "seeds_upper"],
    "search_importance": ["hparam", "n_levels", "n_configs", "share", "null_share", "net_share", "p_value",
                          "net_share_ci_low", "net_share_ci_high", "effect", "p_adjusted"],
    "search_confirmed": ["config", "group", "search_diff", "n", "diff", "ci", "verdict"],
    "noise_sources": ["source", "n", "sd", "sd_ci", "share", "share_ci"],
    "not_converged": ["config", "first_epoch", "last_epoch", "gain", "gain_low"],
}
CURVE_KEYS = ["n", "estimate", "low", "high"]
ADAPTIVE_KEYS = ["spending", "max_seeds", "step", "rounds", "runs", "runs_at_cap", "configs", "next_round"]
LOOK_KEYS = ["round", "stopped", "n", "level"]

#: The row class of each nested field.
ROW_TYPES = {"config_spreads": ConfigSpread, "seeds_needed_for": SeedsNeeded, "search_importance": SearchImportance,
             "search_confirmed": Confirmation, "noise_sources": NoiseSource, "not_converged": NotConverged,
             "search_curve": Curve, "noise_curve": Curve, "adaptive": Adaptive}


def _decomposition_runs() -> pd.DataFrame:
    """The baseline and one variant, and the baseline once per source of randomness."""
    rng = np.random.default_rng(4)
    rows = [{"config": c, "seed": s, "stage": stage, "status": "ok", "sources": "init+order+dropout",
             "acc": 0.9 + shift + rng.normal(0, 0.01)}
            for c, stage, shift in (("baseline", "noise", 0.0), ("lr_hi", "signal", 0.01)) for s in range(8)]
    rows += [{"config": f"decompose_{k}", "seed": s, "stage": "decompose", "status": "ok", "source": k,
              "acc": 0.9 + rng.normal(0, sd)} for k, sd in (("init", 0.01), ("data", 0.004), ("all", 0.012))
             for s in range(4)]
    return pd.DataFrame(rows)


def _adaptive_summary() -> Summary:
    rng = np.random.default_rng(0)
    rows = [("baseline", s, rng.normal(0, 1.0)) for s in range(10)]
    rows += [(f"v{i}", s, shift + rng.normal(0, 1.0)) for i, shift in enumerate((40.0, 0.0)) for s in range(10)]
    schedule = Schedule(signal=(0, 1, 2, 3), noise=tuple(range(10)), step=3, max_seeds=10)
    return replay(pd.DataFrame(rows, columns=["config", "seed", "m"]), "m", schedule, n_boot=1).result.summary


@pytest.fixture(scope="module")
def summaries() -> dict[str, Summary]:
    """Summaries of the analysis on synthetic data, together holding every nested field."""
    runs = sy.make_runs()
    return {
        "sweep": analyze(runs, "val_acc", baseline=sy.BASELINE, n_boot=50, histories=sy.make_histories(runs)).summary,
        "search": analyze(sy.make_search(confirm=2), "acc", baseline="base", n_boot=50).summary,
        "decomposition": analyze(_decomposition_runs(), "acc", n_boot=50).summary,
        "adaptive": _adaptive_summary(),
    }


def test_the_synthetic_summaries_hold_every_nested_field(summaries):
    for name in ROW_TYPES:
        assert any(getattr(s, name) for s in summaries.values()), name


def test_the_analysis_gives_typed_rows(summaries):
    s = summaries["sweep"]
    assert isinstance(s.config_spreads[0].sd, float) and s.config_spreads[0].config == sy.BASELINE
    assert [row.noise_floors for row in s.seeds_needed_for] == [0.5, 1.0, 2.0]
    for summary in summaries.values():
        for name, cls in ROW_TYPES.items():
            value = getattr(summary, name)
            rows = value if isinstance(value, list) else [value]
            assert all(isinstance(row, cls) for row in rows if row is not None), name
    a = summaries["adaptive"].adaptive
    assert set(a.configs) == {"v0", "v1"} and all(isinstance(look, Look) for look in a.configs.values())
    assert a.configs["v0"].stopped == "decided"
    curve = summaries["search"].search_curve
    assert isinstance(curve.n, tuple) and len(curve.n) == len(curve.estimate) == len(curve.low) == len(curve.high)


def test_the_json_round_trip_gives_the_same_summary(summaries):
    for name, s in summaries.items():
        back = Summary.from_dict(json.loads(s.to_json()))
        assert back == s, name
        assert back.to_json() == s.to_json(), name


def test_summary_json_keeps_its_keys(summaries):
    for name, s in summaries.items():
        data = json.loads(s.to_json())
        assert list(data) == [f.name for f in dataclasses.fields(Summary)]
        for field, keys in ROW_KEYS.items():
            for row in data[field] or []:
                assert list(row) == keys, (name, field)
        for field in ("search_curve", "noise_curve"):
            if data[field] is not None:
                assert list(data[field]) == CURVE_KEYS and all(isinstance(v, list) for v in data[field].values())
        if data["adaptive"] is not None:
            assert list(data["adaptive"]) == ADAPTIVE_KEYS
            assert all(list(look) == LOOK_KEYS for look in data["adaptive"]["configs"].values())
            assert all(isinstance(pair, list) for pair in data["adaptive"]["next_round"])


def test_rows_given_typed_are_kept_and_dicts_are_read():
    spread = ConfigSpread(config="base", n=3, sd=0.1, sd_robust=0.2)
    s = Summary(config_spreads=[spread, {"config": "a", "n": 2, "sd": 0.3, "unknown": 1}],
                search_curve={"n": [1, 2], "estimate": [0.5, 0.6], "low": [0.4, 0.5], "high": [0.6, 0.7]})
    assert s.config_spreads[0] is spread
    assert s.config_spreads[1] == ConfigSpread(config="a", n=2, sd=0.3, sd_robust=None)   # missing: None
    assert s.search_curve == Curve(n=(1, 2), estimate=(0.5, 0.6), low=(0.4, 0.5), high=(0.6, 0.7))
    # dataclasses.replace (as the adaptive replay does) types what it is given too
    look = {"round": 2, "stopped": "cap", "n": 7, "level": 0.01}
    a = dataclasses.replace(s, adaptive={"spending": "pocock", "max_seeds": 7, "step": 3, "rounds": 2, "runs": 20,
                                         "runs_at_cap": 24, "configs": {"v": look}, "next_round": [("v", 8)]})
    assert a.adaptive.configs["v"] == Look(**look) and a.adaptive.next_round == [["v", 8]]
    assert Summary.from_dict(json.loads(a.to_json())) == a
    with pytest.raises(TypeError, match="config_spreads"):
        Summary(config_spreads=[3])


def test_the_summary_is_no_mapping():
    assert not hasattr(Summary, "__getitem__") and not hasattr(Summary, "get")
    assert Summary.describe("config_spreads").keys() == {"label", "definition", "null"}


@pytest.mark.parametrize("module", ["report", "plots", "display", "tracking", "cli", "adaptive"])
def test_renderers_read_summary_rows_by_attribute(module):
    """No string subscript (``x["sd"]``, ``x.get("sd")``) with a key only a summary row has, and none on a
    summary's nested field (``s.adaptive["configs"]``). A heuristic: the comparisons' and importance tables'
    columns are indexed by string, so their names cannot be told from a row's here."""
    row_keys = {f.name for cls in set(ROW_TYPES.values()) | {Look} for f in dataclasses.fields(cls)}
    only_rows = row_keys - set(COMPARISON_COLUMNS) - set(IMPORTANCE_COLUMNS)
    nested = set(ROW_TYPES)
    found = []
    for node in ast.walk(ast.parse((SRC / f"{module}.py").read_text())):
        if isinstance(node, ast.Subscript):
            key, target = node.slice, node.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
                and node.args:
            key, target = node.args[0], node.func.value
        else:
            continue
        if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
            continue
        if key.value in only_rows or (isinstance(target, ast.Attribute) and target.attr in nested):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    assert not found, f"{module} reads summary rows by string: {found}"
