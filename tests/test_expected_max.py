"""Expected best score against the number of trials, checked against closed forms and by simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import synthetic as sy
from noisefloor.stats.expected_max import expected_max, expected_max_curve, trials_worth


def test_the_expected_maximum_of_n_uniforms_is_n_over_n_plus_one():
    # The N quantiles of U(0, 1) as the observed scores: the empirical formula tends to n / (n + 1).
    grid = (np.arange(100_000) + 0.5) / 100_000
    n = np.arange(1, 51)
    np.testing.assert_allclose(expected_max(grid, 50), n / (n + 1), atol=1e-3)


def test_it_matches_a_simulation_of_draws_with_replacement():
    rng = np.random.default_rng(7)
    scores = rng.normal(0.9, 0.01, size=12)
    sims = rng.choice(scores, size=(200_000, 5)).max(axis=1)
    assert expected_max(scores, 5)[-1] == pytest.approx(sims.mean(), abs=3e-4)
    assert expected_max(scores)[0] == pytest.approx(scores.mean())          # one draw: the mean
    assert expected_max(scores, 400)[-1] == pytest.approx(scores.max(), abs=1e-6)   # many: the maximum


def test_smaller_is_better_gives_the_expected_minimum():
    scores = np.array([0.3, 0.1, 0.2, 0.5])
    np.testing.assert_allclose(expected_max(scores, direction="min"), -expected_max(-scores))
    assert np.all(np.diff(expected_max(scores, direction="min")) <= 0)


def test_the_band_holds_the_curve_and_the_curve_never_falls():
    scores = np.random.default_rng(3).normal(0.9, 0.02, size=30)
    curve = expected_max_curve(scores, n_boot=300)
    assert list(curve.n) == list(range(1, 31))
    assert np.all(np.diff(curve.estimate) >= 0)
    assert np.all(curve.low <= curve.estimate + 1e-12) and np.all(curve.estimate <= curve.high + 1e-12)


def test_trials_worth_is_where_the_gain_left_drops_below_the_noise_floor():
    curve = np.array([0.90, 0.92, 0.93, 0.935, 0.936])
    assert trials_worth(curve, 0.01) == 3           # 0.936 - 0.93 <= 0.01 first at n = 3
    assert trials_worth(curve, 0.1) == 1
    assert trials_worth(curve, None) is None


def test_the_analysis_and_the_figure_read_the_search_from_the_same_runs(tmp_path):
    """summary.json's search numbers are the curve's ends; the figure marks the same trials_worth."""
    import pandas as pd

    from noisefloor import plots
    from noisefloor.stats import analyze

    rng = np.random.default_rng(11)
    rows = [{"config": "base", "seed": s, "acc": 0.9 + rng.normal(0, 0.01)} for s in range(12)]
    rows += [{"config": f"c{i}", "seed": 0, "acc": 0.88 + 0.004 * i + rng.normal(0, 0.01)} for i in range(15)]
    rows += [{"config": "c0", "seed": 1, "acc": 0.9}]
    runs = pd.DataFrame(rows)
    s = analyze(runs, "acc", baseline="base", n_boot=200).summary
    # the configs with one run each (c0 ran twice: the verdicts' business) and the baseline at their seed
    searched = [r["acc"] for r in rows if r["seed"] == 0 and r["config"] != "c0"]
    assert (s.search_seed, s.search_trials) == (0, 15)
    assert s.search_expected_best == pytest.approx(expected_max(searched)[-1])
    assert s.search_expected_best < max(searched)          # n draws with replacement: below the best seen
    base = [r["acc"] for r in rows if r["config"] == "base"]
    assert s.noise_expected_best == pytest.approx(expected_max(base, 15)[-1])
    assert s.trials_worth == trials_worth(expected_max(searched), s.noise_floor)
    fig = plots.search_payoff_figure(runs, "acc", "base", s)
    marked = [line.get_xdata()[0] for line in fig.axes[0].get_lines() if line.get_linestyle() == ":"]
    assert marked == [s.trials_worth]
    assert "15 configs at seed 0" in fig.axes[0].get_legend().get_texts()[0].get_text()


def test_a_few_variants_at_several_seeds_are_no_search():
    """The verdicts judge configs with several runs; the search fields stay empty and the figures say so."""
    import pandas as pd

    from noisefloor import plots
    from noisefloor.stats import analyze

    rng = np.random.default_rng(3)
    rows = [{"config": c, "seed": s, "acc": 0.9 + rng.normal(0, 0.01), "hp.lr": lr}
            for c, lr in (("base", 0.01), ("a", 0.02), ("b", 0.03), ("c", 0.04)) for s in range(4 if c != "base" else 10)]
    runs = pd.DataFrame(rows)
    result = analyze(runs, "acc", baseline="base", n_boot=200)
    s = result.summary
    assert (s.search_trials, s.trials_worth, s.search_winner_probability, s.search_importance) == (None,) * 4
    assert plots.search_payoff_figure(runs, "acc", "base", s).axes[0].texts[0].get_text().startswith("No search")
    assert plots.marginal_effects_figure(runs, result.comparisons, "acc", "base", s).axes[0].texts[0] \
        .get_text().startswith("No search")


# --------------------------------------------------------------------------- is the winner real?


def test_with_true_means_far_apart_two_leaders_match_the_closed_form():
    """Spread far beyond the noise: no shrinkage, and P = Phi(lead / (noise_floor sqrt(1/n1 + 1/n2)))."""
    from scipy.stats import norm

    from noisefloor.stats.winner import winner

    others = list(np.linspace(-30.0, 0.6, 30))
    w = winner(["a", "b", *range(30)], [0.91, 0.90, *others], [1, 3, *[1] * 30], 0.01, top_k=2, n_sim=400_000)
    assert w.config == "a" and w.lead == pytest.approx(0.01) and w.top_k == 2
    assert w.probability == pytest.approx(norm.cdf(0.01 / (0.01 * np.sqrt(1 + 1 / 3))), abs=5e-3)
    low = winner(["a", "b", *range(30)], [0.30, 0.31, *(1 - np.array(others))], [1] * 32, 0.01,
                 direction="min", top_k=2, n_sim=400_000)
    assert low.config == "a" and low.probability == pytest.approx(norm.cdf(0.01 / (0.01 * np.sqrt(2))), abs=5e-3)


def test_no_spread_beyond_the_noise_is_a_draw_and_a_clear_lead_is_sure():
    from noisefloor.stats.winner import winner

    tie = winner(list("abcdefgh"), [0.9] * 8, [1] * 8, 0.01, top_k=5)
    assert tie.top_k == 5 and tie.probability == pytest.approx(1 / 5)
    clear = winner(list("abcd"), [0.99, 0.90, 0.89, 0.70], [1, 1, 1, 1], 0.01)
    assert clear.config == "a" and clear.probability > 0.999


@pytest.mark.parametrize("spread", [0.005, 0.02])
def test_the_probability_is_calibrated_with_known_truth(spread):
    """True means normal around 0.9 (sd ``spread``: half the noise, or twice it), one run each. Among
    searches where the winner's probability is about p, the observed winner is the true best of the
    top k about p of the time."""
    from noisefloor.stats.winner import winner

    rng = np.random.default_rng(5)
    probs, hits = [], []
    for _ in range(1500):
        truth = rng.normal(0.9, spread, size=40)
        observed = truth + rng.normal(0, 0.01, size=40)
        w = winner(np.arange(40), observed, np.ones(40), 0.01, top_k=5, n_sim=4000, random_state=1)
        top = np.argsort(-observed)[:5]
        probs.append(w.probability)
        hits.append(truth[top].argmax() == 0)
    probs, hits = np.array(probs), np.array(hits)
    assert hits.mean() == pytest.approx(probs.mean(), abs=0.05)
    for lo, hi in ((0.0, 0.4), (0.4, 0.7), (0.7, 1.01)):
        sel = (probs >= lo) & (probs < hi)
        if sel.sum() > 150:
            assert hits[sel].mean() == pytest.approx(probs[sel].mean(), abs=0.07), (lo, hi, sel.sum())


# --------------------------------------------------------------------------- which hyperparameters drive the search


def test_a_dummy_hyperparameter_is_near_zero_and_not_significant_and_a_real_one_is_found():
    """Known truth, a search's design: a log-uniform lr that matters, a dummy that does nothing,
    a categorical that does nothing; one noisy run per config, accuracy quantised to 1/360."""
    from scipy import stats as st

    from noisefloor.stats.marginal import marginal_importance

    rng = np.random.default_rng(21)
    p_dummy, p_cat, p_lr, net_dummy = [], [], [], []
    for _ in range(300):
        n = 40
        lr = np.exp(rng.uniform(np.log(1e-4), np.log(1e-1), n))
        dummy = rng.uniform(0, 1, n)
        cat = rng.choice(["a", "b", "c"], n)
        acc = 0.9 - 0.02 * (np.log10(lr) + 2.5) ** 2 + rng.normal(0, 0.01, n)
        acc = np.round(acc * 360) / 360
        t = marginal_importance(acc, {"lr": lr, "dummy": dummy, "cat": cat}, n_perm=300,
                                random_state=int(rng.integers(1 << 30))).set_index("hparam")
        p_dummy.append(t.loc["dummy", "p_value"])
        p_cat.append(t.loc["cat", "p_value"])
        p_lr.append(t.loc["lr", "p_value"])
        net_dummy.append(t.loc["dummy", "net_share"])
    for p in (p_dummy, p_cat):
        assert abs(np.mean(np.array(p) < 0.05) - 0.05) < 0.035          # the test holds its level
        assert st.kstest(p, "uniform").pvalue > 0.001                     # p-values uniform under the null
    assert np.mean(net_dummy) < 0.03                                     # near zero
    assert np.mean(np.array(p_lr) < 0.05) > 0.9                          # the real effect is found


def test_equal_values_share_a_level():
    from noisefloor.stats.marginal import _levels

    codes = _levels(pd.Series([1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5]))
    for value in range(5):        # each value's three rows in one level
        assert len(set(codes[3 * value:3 * value + 3])) == 1
    assert len(set(codes)) <= 4


def test_a_hyperparameter_with_one_value_is_left_out():
    from noisefloor.stats.marginal import marginal_importance

    t = marginal_importance([0.9, 0.91, 0.92, 0.93], {"fixed": [1, 1, 1, 1], "x": [1, 2, 3, 4]}, n_perm=50)
    assert list(t["hparam"]) == ["x"] and t.loc[0, "share"] == pytest.approx(1.0)


def test_the_marginal_figure_draws_the_summarys_hyperparameters_on_their_scale():
    from noisefloor import plots
    from noisefloor.stats import analyze

    runs = sy.make_search()
    rows = runs.to_dict("records")
    result = analyze(runs, "acc", baseline="base", n_boot=200)
    table = {r.hparam: r for r in result.summary.search_importance}
    assert set(table) == {"lr", "opt"} and table["lr"].p_value < 0.01 < table["opt"].p_value
    fig = plots.marginal_effects_figure(runs, result.comparisons, "acc", "base", result.summary)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].startswith("lr: ") and titles[1].startswith("opt: ")
    assert fig.axes[0].get_xscale() == "log" and [t.get_text() for t in fig.axes[1].get_xticklabels()] == \
        sorted({r["hp.opt"] for r in rows[20:]}, key=[r["hp.opt"] for r in rows[20:]].index)


def test_a_search_without_one_at_a_time_variants_gets_its_importance_table():
    """Every hyperparameter varies at once (a random search): each is judged on the search's configs (its
    permutation test), as the search's figure and answer judge it."""
    import pandas as pd

    from noisefloor.stats import analyze

    rng = np.random.default_rng(4)
    rows = [{"config": "base", "seed": s, "acc": 0.9 + rng.normal(0, 0.01), "hp.lr": 0.01, "hp.bs": 100}
            for s in range(10)]
    rows += [{"config": f"sweep_{i:03d}", "seed": 0, "acc": 0.9 + rng.normal(0, 0.01),
              "hp.lr": float(rng.uniform(0.001, 0.1)), "hp.bs": int(rng.choice([50, 200]))} for i in range(12)]
    result = analyze(pd.DataFrame(rows), "acc", baseline="base", n_boot=200)
    assert set(result.importance["design"]) == {"search"}
    assert set(result.importance["verdict"]) <= {"matters", "inconclusive", "insufficient_runs"}


def test_a_large_searchs_curve_is_the_exact_curve_at_log_spaced_trials():
    from noisefloor.stats.expected_max import CURVE_POINTS

    scores = np.random.default_rng(8).normal(0.9, 0.01, size=500)
    curve = expected_max_curve(scores, n_boot=50)
    assert curve.n[0] == 1 and curve.n[-1] == 500 and len(curve.n) <= CURVE_POINTS
    np.testing.assert_allclose(curve.estimate, expected_max(scores)[curve.n - 1], rtol=0, atol=1e-12)


def test_the_differences_figure_folds_a_searchs_single_runs_like_the_table():
    import pandas as pd

    from noisefloor import plots
    from noisefloor.display import SINGLE_RUNS_SHOWN

    rows = [{"config": f"sweep_{i:03d}", "baseline": "b", "n": 1, "diff": 0.01 - i / 1000, "ci_low": np.nan,
             "ci_high": np.nan, "verdict": "insufficient_runs", "mean": 0.9, "baseline_mean": 0.9}
            for i in range(30)]
    rows.insert(0, {"config": "lr_hi", "baseline": "b", "n": 4, "diff": 0.02, "ci_low": 0.01, "ci_high": 0.03,
                    "verdict": "better", "mean": 0.92, "baseline_mean": 0.9})
    shuffled = pd.DataFrame(rows).sample(frac=1, random_state=3)          # not in the table's order
    fig = plots.differences_figure(shuffled, 0.005, metric="val_acc", percent=True)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    best = {f"sweep_{i:03d}" for i in range(SINGLE_RUNS_SHOWN)}          # the largest differences
    assert set(labels) == {"lr_hi"} | best
    assert "(25 more configs with one run each, no interval: not shown)" in fig._suptitle.get_text()
    fig = plots.differences_figure(shuffled, 0.005, metric="val_loss", direction="min", percent=False)
    worst = {f"sweep_{i:03d}" for i in range(30 - SINGLE_RUNS_SHOWN, 30)}  # smaller is better
    assert {t.get_text() for t in fig.axes[0].get_yticklabels()} == {"lr_hi"} | worst


def test_a_tail_of_failed_configs_does_not_make_the_winner_look_sure():
    """A skewed search: most configs near the top, a tail of failures (a learning rate far off). The
    spread is read from the better half, so the tail does not inflate it; still somewhat optimistic."""
    from noisefloor.stats.winner import winner

    rng = np.random.default_rng(1)
    probs, hits = [], []
    for _ in range(600):
        truth = np.r_[rng.normal(0.95, 0.003, 24), rng.uniform(0.3, 0.9, 16)]
        observed = truth + rng.normal(0, 0.01, 40)
        probs.append(winner(np.arange(40), observed, np.ones(40), 0.01, n_sim=4000, random_state=2).probability)
        hits.append(truth[np.argsort(-observed)[:5]].argmax() == 0)
    assert np.mean(hits) < np.mean(probs) < np.mean(hits) + 0.12      # (the whole search's variance: + 0.16)
