"""Adaptive seeds: the looks' boundaries, the rounds' seeds, the replay, the params section and `noisefloor plan`."""

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from noisefloor import adaptive, params as P
from noisefloor.aggregate import run_dir
from noisefloor.stats.sequential import Schedule, boundaries, family_alpha, replay, spent
from noisefloor.stats.multiplicity import per_comparison_alpha
from noisefloor.summary import Look


def _continue_probability(b) -> float:
    """P(|Z_k| < c_k at every look) for Z a standardised sum at the looks' information, by scipy's multivariate
    normal (an independent reference for the recursive integration)."""
    t = np.array(b.information)
    cov = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    c = np.array(b.z)
    return float(stats.multivariate_normal(mean=np.zeros(t.size), cov=cov).cdf(c, lower_limit=-c))


@pytest.mark.parametrize("spending", ["obrien_fleming", "pocock"])
@pytest.mark.parametrize("information", [[1, 2, 3], [3.3, 5.7, 7.5, 8.9]])
def test_boundaries_spend_exactly_alpha(spending, information):
    b = boundaries(information, 0.05, spending)
    assert 1 - _continue_probability(b) == pytest.approx(0.05, abs=2e-4)
    # The first look spends its share alone: a closed form.
    assert b.nominal[0] == pytest.approx(float(spent(b.information[0], 0.05, spending)), rel=1e-6)
    assert b.spent[-1] == pytest.approx(0.05)


def test_obrien_fleming_keeps_its_level_for_the_last_look_and_pocock_spreads_it():
    of = boundaries([1, 2, 3, 4, 5], 0.05, "obrien_fleming")
    po = boundaries([1, 2, 3, 4, 5], 0.05, "pocock")
    assert of.z[0] > 4 and of.z[-1] < 2.1          # almost nothing early, close to 1.96 at the end
    assert max(po.z) - min(po.z) < 0.06            # Pocock: about even, 2.39 to 2.44
    assert po.z[0] == pytest.approx(2.438, abs=2e-3)
    assert all(a > b for a, b in zip(of.z, of.z[1:]))


def test_one_look_is_the_fixed_design():
    b = boundaries([7.0], 0.0127)
    assert b.nominal == pytest.approx((0.0127,)) and b.z[0] == pytest.approx(stats.norm.isf(0.0127 / 2))


def test_bad_information_is_refused():
    with pytest.raises(ValueError, match="increasing"):
        boundaries([2, 1], 0.05)
    with pytest.raises(ValueError, match="spending"):
        spent(0.5, 0.05, "linear")


def test_family_alpha_inverts_the_per_comparison_level():
    for method in ("sidak", "bonferroni", "none"):
        assert per_comparison_alpha(family_alpha(0.003, 4, method), 4, method) == pytest.approx(0.003)


def test_schedule_adds_seeds_in_one_order_and_the_baseline_grows_only_when_asked():
    s = Schedule(signal=(3, 1), noise=(0, 1, 2, 3), step=2, max_seeds=7)
    assert s.rounds == 4 and [s.variant_count(k) for k in range(1, 5)] == [2, 4, 6, 7]
    assert s.order(7) == (3, 1, 0, 2, 4, 5, 6)          # signal, the other noise seeds, then upward
    assert s.baseline_seeds(4) == (0, 1, 2, 3)
    grow = Schedule(signal=(3, 1), noise=(0, 1, 2, 3), step=2, max_seeds=7, grow_baseline=True)
    assert grow.baseline_seeds(3) == (0, 1, 2, 3, 4, 5) and grow.baseline_seeds(4) == (0, 1, 2, 3, 4, 5, 6)
    assert np.all(np.diff(grow.information()) > 0)


SCHEDULE = Schedule(signal=(0, 1, 2, 3), noise=tuple(range(10)), step=3, max_seeds=10)


def _runs(shifts, n=10, seed=0, sd=1.0):
    rng = np.random.default_rng(seed)
    rows = [("baseline", s, rng.normal(0, sd)) for s in range(10)]
    for i, shift in enumerate(shifts):
        rows += [(f"v{i}", s, shift + rng.normal(0, sd)) for s in range(n)]
    return pd.DataFrame(rows, columns=["config", "seed", "m"])


def test_a_clear_winner_stops_early_and_its_interval_is_that_looks():
    runs = _runs([40.0, 0.0, 0.0])
    res = replay(runs, "m", SCHEDULE, n_boot=1)
    comp = res.result.comparisons.set_index("config")
    record = res.result.summary.adaptive
    assert comp.loc["v0", "verdict"] == "better" and record.configs["v0"] == Look(
        round=1, stopped="decided", n=4, level=pytest.approx(res.boundaries.nominal[0]))
    # Its interval is the first look's: the analysis of round 1's runs at that look's level.
    first = res.rounds[res.rounds["round"] == 1]
    assert (first["level"] == res.boundaries.nominal[0]).all()
    assert (comp["simultaneous_level"] == 0.95).all() and comp.loc["v0", "n"] == 4
    assert res.next_round == ()                     # the others: futile (a cap of 10 cannot show them equivalent)
    assert res.state == {"v0": "decided", "v1": "futile", "v2": "futile"}
    assert record.runs == len(res.used) == 10 + 3 * 4 and record.runs_at_cap == 10 + 3 * 10
    s = res.result.summary
    assert (s.n_better, s.n_inconclusive) == (1, 2)          # the summary counts the looks' verdicts


def test_the_next_round_is_what_the_open_variants_add():
    runs = _runs([1.2, 0.0])
    first = runs[(runs.config == "baseline") | (runs.seed < 4)]
    res = replay(first, "m", SCHEDULE, n_boot=1, futility=False)
    assert set(res.next_round) == {(v, s) for v in ("v0", "v1") for s in (4, 5, 6)}
    assert (res.rounds["round"] == 1).all() and res.result.summary.adaptive.next_round == [
        [v, s] for v in ("v0", "v1") for s in (4, 5, 6)]
    # With every run to the cap: rounds in order, each variant's seeds as its round gives them.
    full = replay(runs, "m", SCHEDULE, n_boot=1, futility=False)
    assert full.next_round == () and full.rounds["round"].max() <= SCHEDULE.rounds
    assert all(row.n == SCHEDULE.variant_count(row.round) for row in full.rounds.itertuples())
    again = replay(runs, "m", SCHEDULE, n_boot=1, futility=False)
    assert again.result.comparisons.equals(full.result.comparisons) and again.used == full.used
    # Stopping after round 1 on the full table says what round 2 adds, though it exists already.
    one = replay(runs, "m", SCHEDULE, n_boot=1, futility=False, rounds=1)
    assert one.next_round == res.next_round and one.result.comparisons.equals(res.result.comparisons)


def test_without_the_sequential_levels_the_looks_would_not_be_simultaneous():
    # The last look's level is below the fixed design's: the price of looking four times.
    b = boundaries(SCHEDULE.information(), per_comparison_alpha(0.05, 3))
    assert b.nominal[-1] < per_comparison_alpha(0.05, 3) and sum(b.nominal) > per_comparison_alpha(0.05, 3)


# --------------------------------------------------------------------------- params and `noisefloor plan`


@pytest.mark.parametrize("section, message", [
    ({"max_seeds": 1}, r"adaptive.max_seeds: 1 is below the 2 seeds.signal"),
    ({"max_seeds": 6, "step": 0}, r"adaptive.step"),
    ({"max_seeds": 6, "max_runs": 5}, r"adaptive.max_runs: 5 is below the first round's 7 runs"),
    ({"max_seeds": 6, "spending": "linear"}, r"adaptive.spending"),
    ({"step": 2}, r"adaptive.*max_seeds"),
])
def test_a_bad_adaptive_section_is_one_line_naming_the_key(smoke_raw, write_params, section, message):
    smoke_raw["adaptive"] = section
    with pytest.raises(P.ParamsError, match=message) as err:
        P.load(write_params(smoke_raw))
    assert "\n" not in str(err.value)


def test_adaptive_refuses_batched_seeds(smoke_raw, write_params):
    smoke_raw["adaptive"] = {"max_seeds": 6}
    smoke_raw["train"]["seed_batch"] = 2
    with pytest.raises(P.ParamsError, match=r"adaptive: not with train.seed_batch > 1"):
        P.load(write_params(smoke_raw))


def test_the_step_defaults_to_the_signal_seeds(smoke_raw, write_params):
    smoke_raw["adaptive"] = {"max_seeds": 6}
    p = P.load(write_params(smoke_raw))
    assert p.adaptive.step == 2 and p.adaptive.spending == "obrien_fleming" and p.runs() == P.load(
        write_params({k: v for k, v in smoke_raw.items() if k != "adaptive"}, "fixed.yaml")).runs()


def _write_runs(p, runs_dir, pairs, value):
    for config, seed in pairs:
        d = run_dir(runs_dir, config, seed)
        d.mkdir(parents=True, exist_ok=True)
        cfg = p.resolve(config)
        (d / "metrics.json").write_text(json.dumps({
            "config": config, "seed": seed, "config_hash": cfg.config_hash, "code_fingerprint": cfg.code_fingerprint,
            "status": "ok", "val_acc": value(config, seed), "n_val": 48}))


def nf(*args):
    return subprocess.run([sys.executable, "-m", "noisefloor", *map(str, args)], capture_output=True, text=True)


def test_plan_says_what_the_next_round_trains_and_changes_nothing(tmp_path, smoke_raw, write_params):
    smoke_raw["seeds"] = {"noise": list(range(8)), "signal": [0, 1, 2]}
    smoke_raw["adaptive"] = {"max_seeds": 8, "step": 2, "futility": False}
    path = write_params(smoke_raw)
    p = P.load(path)
    runs = tmp_path / "runs"
    rng = np.random.default_rng(0)
    noise = {(c, s): float(rng.normal(0, 0.01)) for c in ("baseline", "lr_hi", "wide") for s in range(8)}
    # lr_hi far better than the noise: decided in round 1; wide like the baseline: open.
    shift = {"baseline": 0.0, "lr_hi": 0.5, "wide": 0.0}
    value = lambda c, s: 0.8 + shift[c] + noise[c, s]  # noqa: E731

    proc = nf("plan", "--params", path, "--runs-dir", runs)
    assert proc.returncode == 0 and "the first round is not complete: 14 runs to train" in proc.stderr

    _write_runs(p, runs, p.runs(), value)
    before = sorted(x.relative_to(runs) for x in runs.rglob("*"))
    proc = nf("plan", "--params", path, "--runs-dir", runs)
    assert proc.returncode == 0, proc.stderr
    assert "round 2 trains 2 runs" in proc.stderr
    assert f"noisefloor train --params {path} --config wide --seed 3 --seed 4 --runs-dir {runs}" in proc.stderr
    rows = {line.split()[0]: line for line in proc.stdout.splitlines()[1:]}
    assert "better" in rows["lr_hi"] and "round 1" in rows["lr_hi"] and "open after round 1" in rows["wide"]
    assert rows["wide"].split()[-1] == "2" and rows["lr_hi"].split()[-1] == "0"
    assert sorted(x.relative_to(runs) for x in runs.rglob("*")) == before        # changes nothing

    plan = adaptive.plan(p, runs)
    assert set(plan.next_runs) == {("wide", 3), ("wide", 4)}
    _write_runs(p, runs, [("wide", s) for s in range(3, 8)], value)
    done = adaptive.plan(p, runs)
    assert done.next_runs == () and done.why_done.startswith("every variant")
    assert math.isfinite(done.result.result.comparisons.set_index("config").loc["wide", "ci_low"])
    assert done.result.result.summary.adaptive.configs["wide"].n == 8


def test_plan_without_an_adaptive_section_names_it(tmp_path):
    from tests.helpers import SMOKE

    proc = nf("plan", "--params", SMOKE, "--runs-dir", tmp_path)
    assert proc.returncode != 0 and "no adaptive section" in proc.stderr and "Traceback" not in proc.stderr


def test_the_report_says_which_round_decided_each_variant(tmp_path):
    from noisefloor.report import render_report

    res = replay(_runs([40.0, 0.0, 0.0]), "m", SCHEDULE, n_boot=1, futility=True).result
    html = render_report(res.summary, res.comparisons, res.importance, {}, tmp_path / "r.html").read_text()
    assert "Decided at" in html and "Seeds to decide" not in html
    assert "round 1" in html and "stopped in round 1: the cap would not decide it" in html
    assert "22 runs trained, against 40 with every config at the cap" in html
    assert "O&#x27;Brien-Fleming-type spending" in html


def test_a_variant_the_look_cannot_test_stays_open_and_the_others_keep_their_level():
    runs = _runs([30.0, 0.0, 0.0])
    runs.loc[(runs.config == "v1") & (runs.seed > 0), "m"] = np.nan        # v1: one usable run of four
    res = replay(runs, "m", SCHEDULE, n_boot=1)
    first = res.rounds[res.rounds["round"] == 1].set_index("config")
    assert first.loc["v1", "verdict"] == "insufficient_runs" and first.loc["v1", "stopped"] == "open"
    # two variants tested in round 1: each at the look's level, split over the two the look can test
    assert first.loc["v0", "verdict"] == "better"
    assert res.result.summary.adaptive.configs["v0"].level == pytest.approx(res.boundaries.nominal[0])


def test_a_stopped_variants_seeds_columns_are_at_the_last_looks_level():
    from noisefloor.stats import analyze

    runs = _runs([0.0, 0.0])
    res = replay(runs, "m", SCHEDULE, n_boot=1)
    assert res.state == {"v0": "futile", "v1": "futile"}           # both in round 1, at 4 seeds
    first = runs[(runs.config == "baseline") | (runs.seed < 4)]
    last_level = analyze(first, "m", n_boot=1, alpha=family_alpha(res.boundaries.nominal[-1], 2)).comparisons
    round_one = analyze(first, "m", n_boot=1, alpha=family_alpha(res.boundaries.nominal[0], 2)).comparisons
    comp = res.result.comparisons.set_index("config")
    for col in ("mde", "seeds_needed", "seeds_for_margin"):
        assert comp[col].tolist() == last_level.set_index("config")[col].tolist()
    assert (comp["mde"] < round_one.set_index("config")["mde"]).all()     # not round 1's far stricter level


def test_adaptive_without_variants_is_refused(smoke_raw, write_params):
    smoke_raw["adaptive"] = {"max_seeds": 6}
    smoke_raw["configs"] = {}
    with pytest.raises(P.ParamsError, match=r"adaptive: no variant under configs"):
        P.load(write_params(smoke_raw))
