"""The analysis as a composition of sections: each sets its own summary fields, together all of them."""

from __future__ import annotations

import dataclasses
import importlib

import pytest

import synthetic as sy
from noisefloor.stats import analyze
from noisefloor.stats import sections
from noisefloor.summary import Summary

# The module (the package's `analyze` is the function of the same name).
analyze_module = importlib.import_module("noisefloor.stats.analyze")


def _parts(runs, histories):
    s = sections.Settings(direction="max", alpha=0.05, correction="sidak", confidence_level=0.95, power=0.8,
                          equivalence_margin=None, n_boot=200, eval_size=None, random_state=0)
    r = analyze_module._prepare(runs, "val_acc", sy.BASELINE, None)
    floor = sections.noise_floor_section(r, s)
    verdicts = sections.verdicts_section(r, s, floor)
    return {
        "runs": sections.runs_section(r, s), "noise floor": floor.fields, "verdicts": verdicts.fields,
        "signal": sections.signal_section(r, s, verdicts), "power": sections.power_section(r, s, floor, verdicts),
        "search": sections.search_section(r, s, floor, verdicts),
        "noise budget": sections.noise_budget_section(runs, "val_acc", s),
        "convergence": sections.convergence_section(histories, r, s, floor),
    }


def test_every_summary_field_has_one_section_and_every_section_sets_summary_fields():
    runs = sy.make_runs()
    parts = _parts(runs, sy.make_histories(runs))
    names = {f.name for f in dataclasses.fields(Summary)}
    seen: dict = {}
    for section, fields in parts.items():
        assert set(fields) <= names, f"{section} sets fields the summary does not define"
        for name in fields:
            assert name not in seen, f"{name} set by {seen[name]} and {section}"
            seen[name] = section
    # The noise budget's fields come from a decomposition (none here); adaptive from the replay of rounds.
    budget = {f for f in names if f.startswith("noise_sources") or f == "noise_floor_sources"}
    assert names - set(seen) == budget | {"adaptive"}


def test_the_composition_refuses_a_field_set_twice():
    with pytest.raises(AssertionError, match="noise_floor"):
        analyze_module._compose({"noise_floor": 1.0}, {"noise_floor": 2.0})


def test_the_sections_compose_into_the_analysis():
    runs = sy.make_runs()
    histories = sy.make_histories(runs)
    composed = analyze_module._compose(*_parts(runs, histories).values())
    whole = analyze(runs, "val_acc", baseline=sy.BASELINE, n_boot=200, histories=histories).summary
    assert composed == whole
