"""Tests for noisefloor.stats.

Every number is checked against something other than the code under test:
scipy / statsmodels on the same data, a formula written out independently,
a value enumerated by hand, a published value, or a simulation whose answer
is known.  All randomness is seeded locally.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.formula.api import ols
from statsmodels.stats.anova import anova_lm
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestIndPower, TTestPower

from noisefloor import stats as nfs
from noisefloor.stats import AnalysisError, analyze

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def make_runs(shifts, n_seeds=8, *, sd=0.01, seed_sd=0.0, shared=True, rng=None, hp=None, mean=0.8):
    """Runs table: one config per entry of ``shifts`` (name -> true shift)."""
    rng = np.random.default_rng(0) if rng is None else rng
    seed_effect = rng.normal(0, seed_sd, 10_000) if seed_sd else np.zeros(10_000)
    rows = []
    for i, (name, shift) in enumerate(shifts.items()):
        seeds = np.arange(n_seeds) if shared else np.arange(n_seeds) + 1000 * i
        for s in seeds:
            row = {"config": name, "seed": int(s), "val_acc": mean + shift + seed_effect[s % 10_000] + rng.normal(0, sd),
                   "status": "ok", "wall_time": 1.0}
            if hp is not None:
                row.update({f"hp.{k}": v for k, v in hp[name].items()})
            rows.append(row)
    return pd.DataFrame(rows)


def aligned(runs, config, baseline="baseline", metric="val_acc"):
    """Variant and baseline values on their shared seeds, in seed order."""
    v = runs[runs.config == config].set_index("seed")[metric]
    b = runs[runs.config == baseline].set_index("seed")[metric]
    shared = sorted(set(v.index) & set(b.index))
    return v.loc[shared].to_numpy(), b.loc[shared].to_numpy()


def binom_upper(n, p, q=0.999):
    """Upper q-quantile of the share of successes in n trials."""
    return stats.binom.ppf(q, n, p) / n


def binom_lower(n, p, q=0.999):
    return stats.binom.ppf(1 - q, n, p) / n


# ---------------------------------------------------------------------------
# single tests against scipy
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("alternative", ["two-sided", "less", "greater"])
def test_paired_t_matches_scipy(alternative):
    rng = np.random.default_rng(1)
    x, y = rng.normal(0.3, 1, 7), rng.normal(0, 1, 7)
    ours = nfs.paired_t_test(x, y, alternative=alternative)
    ref = stats.ttest_rel(x, y, alternative=alternative)
    assert ours.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert ours.pvalue == pytest.approx(ref.pvalue, rel=1e-10)
    assert ours.df == ref.df
    ci, ref_ci = ours.confidence_interval(0.9), ref.confidence_interval(0.9)
    assert (ci.low, ci.high) == pytest.approx((ref_ci.low, ref_ci.high), rel=1e-10)


@pytest.mark.parametrize("alternative", ["two-sided", "less", "greater"])
def test_welch_matches_scipy(alternative):
    rng = np.random.default_rng(2)
    x, y = rng.normal(0.5, 1, 6), rng.normal(0, 3, 9)
    ours = nfs.welch_t_test(x, y, alternative=alternative)
    ref = stats.ttest_ind(x, y, equal_var=False, alternative=alternative)
    assert ours.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert ours.pvalue == pytest.approx(ref.pvalue, rel=1e-10)
    assert ours.df == pytest.approx(ref.df, rel=1e-12)
    ci, ref_ci = ours.confidence_interval(), ref.confidence_interval()
    assert (ci.low, ci.high) == pytest.approx((ref_ci.low, ref_ci.high), rel=1e-10)


def test_t_tests_vectorised_match_scipy():
    rng = np.random.default_rng(3)
    x, y = rng.normal(0, 1, (40, 3, 6)), rng.normal(0, 1, (40, 1, 6))
    np.testing.assert_allclose(nfs.paired_t_test(x, y).pvalue, stats.ttest_rel(x, np.broadcast_to(y, x.shape), axis=-1).pvalue, rtol=1e-10)
    z = rng.normal(0, 2, (40, 3, 9))
    np.testing.assert_allclose(nfs.welch_t_test(x, z).pvalue, stats.ttest_ind(x, z, equal_var=False, axis=-1).pvalue, rtol=1e-10)


def test_sign_flip_exact_enumerated_by_hand():
    # |d| = (1, 2, 0.5); the 8 sign patterns sum to
    # 3.5, 2.5, -0.5, -1.5, 1.5, 0.5, -2.5, -3.5; the observed sum is 2.5.
    d = [1.0, 2.0, -0.5]
    two = nfs.sign_flip_test(d)
    assert two.exact and two.n_resamples == 8
    assert two.pvalue == pytest.approx(4 / 8)  # |S| >= 2.5: 3.5, 2.5, -2.5, -3.5
    assert nfs.sign_flip_test(d, alternative="greater").pvalue == pytest.approx(2 / 8)
    assert nfs.sign_flip_test(d, alternative="less").pvalue == pytest.approx(7 / 8)
    assert two.statistic == pytest.approx(2.5 / 3)
    # All four differences positive: only all-plus and all-minus reach |S| = 10.
    assert nfs.sign_flip_test([1.0, 2.0, 3.0, 4.0]).pvalue == pytest.approx(2 / 16)
    assert nfs.sign_flip_test([1.0, 2.0, 3.0, 4.0], alternative="greater").pvalue == pytest.approx(1 / 16)


def test_sign_flip_matches_scipy_permutation_test():
    rng = np.random.default_rng(4)
    d = rng.normal(0.4, 1, 9)
    ref = stats.permutation_test((d,), np.mean, permutation_type="samples", n_resamples=np.inf).pvalue
    exact = nfs.sign_flip_test(d, n_resamples=2**9)
    assert exact.exact
    assert exact.pvalue == pytest.approx(ref, rel=1e-12)
    # Monte-Carlo branch: within 4 binomial standard errors of the exact value.
    d = rng.normal(0.3, 1, 16)  # 65,536 patterns > 20,000 resamples
    ref = stats.permutation_test((d,), np.mean, permutation_type="samples", n_resamples=np.inf).pvalue
    mc = nfs.sign_flip_test(d, n_resamples=20_000, random_state=0)
    assert not mc.exact
    assert abs(mc.pvalue - ref) < 4 * math.sqrt(ref * (1 - ref) / 20_000) + 1e-4


def test_expanded_bootstrap_alpha_matches_hesterbergs_formula():
    # one sample: alpha'/2 = Phi(-sqrt(n/(n-1)) t_{alpha/2, n-1}); n = 4: t = 3.182, alpha' = 0.00024
    d = np.array([0.1, -0.2, 0.4, 0.3])
    expected = 2 * stats.norm.cdf(-math.sqrt(4 / 3) * stats.t.ppf(0.975, 3))
    assert nfs._expanded_alpha(0.05, d, None) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.000239, abs=2e-6)
    # large n: the expansion vanishes
    big = np.random.default_rng(0).normal(size=5000)
    assert nfs._expanded_alpha(0.05, big, None) == pytest.approx(0.05, rel=0.01)


@pytest.mark.parametrize("paired,n", [(True, 4), (True, 6), (False, 5)])
def test_expanded_bootstrap_covers_at_the_nominal_level_with_few_seeds(paired, n):
    """Simulation: known effect, known noise. The plain percentile interval undercovers.

    With n paired seeds no bootstrap interval reaches past the data's range, so its
    coverage is at most 1 - 2**(1 - n) (87.5 % at n = 4): the expanded interval reaches it.
    """
    rng = np.random.default_rng(11 + n)
    sims, true_diff = 400, 0.3
    cover = {"expanded": 0, "percentile": 0}
    for i in range(sims):
        x = rng.normal(true_diff, 1, n)
        y = rng.normal(0, 1, n)
        for method in cover:
            ci = nfs.bootstrap_mean_diff_ci(x, y, paired=paired, n_resamples=1000, random_state=i,
                                            method=method)
            cover[method] += ci.low <= true_diff <= ci.high
    # 95 % nominal (or the range bound when lower); binomial sd at 400 sims is 1.1-1.7 pp
    target = min(0.95, 1 - 2.0 ** (1 - n)) if paired else 0.95
    assert cover["expanded"] / sims >= target - 0.035
    assert cover["percentile"] / sims < cover["expanded"] / sims


def test_bootstrap_ci_agrees_with_scipy_percentile():
    rng = np.random.default_rng(5)
    x, y = rng.normal(0.2, 1, 12), rng.normal(0, 1, 12)
    se = np.std(x - y, ddof=1) / math.sqrt(12)
    ours = nfs.bootstrap_mean_diff_ci(x, y, paired=True, n_resamples=20_000, random_state=0,
                                      method="percentile")
    ref = stats.bootstrap((x - y,), np.mean, n_resamples=20_000, method="percentile", random_state=1).confidence_interval
    assert ours.low == pytest.approx(ref.low, abs=0.1 * se)
    assert ours.high == pytest.approx(ref.high, abs=0.1 * se)

    z = rng.normal(0, 2, 8)
    se = math.sqrt(x.var(ddof=1) / 12 + z.var(ddof=1) / 8)
    ours = nfs.bootstrap_mean_diff_ci(x, z, n_resamples=20_000, confidence_level=0.9, random_state=0,
                                      method="percentile")
    ref = stats.bootstrap((x, z), lambda a, b, axis: a.mean(axis) - b.mean(axis), n_resamples=20_000,
                          method="percentile", confidence_level=0.9, random_state=1).confidence_interval
    assert ours.low == pytest.approx(ref.low, abs=0.1 * se)
    assert ours.high == pytest.approx(ref.high, abs=0.1 * se)


def test_effect_sizes_from_independent_identities():
    rng = np.random.default_rng(6)
    x, y = rng.normal(0.5, 1, 9), rng.normal(0, 1, 9)
    # d_z = t_paired / sqrt(n);  d = t_pooled * sqrt(1/n1 + 1/n2)
    assert nfs.cohens_d(x, y, paired=True) == pytest.approx(stats.ttest_rel(x, y).statistic / 3, rel=1e-12)
    z = rng.normal(0, 1, 5)
    assert nfs.cohens_d(x, z) == pytest.approx(stats.ttest_ind(x, z).statistic * math.sqrt(1 / 9 + 1 / 5), rel=1e-12)


def test_prob_superior_is_normalised_mann_whitney_u_with_ties():
    x = np.array([1.0, 2.0, 2.0, 3.0, 5.0])
    y = np.array([2.0, 2.0, 4.0])
    u_x = stats.mannwhitneyu(x, y).statistic  # scipy counts ties as 1/2
    u_y = stats.mannwhitneyu(y, x).statistic
    assert nfs.prob_superior(x, y) == pytest.approx(u_x / 15)
    assert nfs.prob_superior(x, y, direction="min") == pytest.approx(u_y / 15)
    # by hand: pairs x > y: 3>2,3>2,5>2,5>2,5>4 = 5; ties: 2=2 four times -> 2
    assert nfs.prob_superior(x, y) == pytest.approx((5 + 0.5 * 4) / 15)


# ---------------------------------------------------------------------------
# multiple testing
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("ours", "theirs"), [("holm", "holm"), ("bh", "fdr_bh")])
def test_adjust_pvalues_matches_statsmodels(ours, theirs):
    rng = np.random.default_rng(7)
    p = np.concatenate([rng.uniform(0, 0.1, 6), rng.uniform(0, 1, 8), [0.03, 0.03, 1.0]])
    rng.shuffle(p)
    np.testing.assert_allclose(nfs.adjust_pvalues(p, ours), multipletests(p, method=theirs)[1], rtol=1e-12)
    # NaN (a variant without a test) is left out of the family and stays NaN
    with_nan = np.insert(p, [2, 7], np.nan)
    adj = nfs.adjust_pvalues(with_nan, ours)
    assert np.isnan(adj[[2, 8]]).all()
    np.testing.assert_allclose(adj[~np.isnan(with_nan)], multipletests(p, method=theirs)[1], rtol=1e-12)
    # batched families along the last axis
    batch = rng.uniform(0, 0.2, (8, 5))
    expected = np.array([multipletests(row, method=theirs)[1] for row in batch])
    np.testing.assert_allclose(nfs.adjust_pvalues(batch, ours), expected, rtol=1e-12)
    np.testing.assert_array_equal(nfs.adjust_pvalues(p, "none"), p)


# ---------------------------------------------------------------------------
# variance decomposition
# ---------------------------------------------------------------------------


def test_one_way_anova_matches_f_oneway_and_hand_formulas():
    rng = np.random.default_rng(8)
    groups = [rng.normal(0, 1, 3), rng.normal(0.5, 1, 5), rng.normal(1, 1, 8), rng.normal(0, 1, 1)]
    y = np.concatenate(groups)
    labels = np.repeat(["a", "b", "c", "d"], [3, 5, 8, 1])
    res = nfs.one_way_anova(y, labels)
    ref = stats.f_oneway(*groups)
    assert res.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert res.pvalue == pytest.approx(ref.pvalue, rel=1e-10)
    pooled = sum((len(g) - 1) * np.var(g, ddof=1) for g in groups if len(g) > 1) / (17 - 4)
    assert res.ms_within == pytest.approx(pooled, rel=1e-12)
    # n0 by hand for sizes 3, 5, 8, 1: N = 17, sum n^2 = 99 -> (17 - 99/17) / 3
    assert res.n0 == pytest.approx((17 - 99 / 17) / 3, rel=1e-12)


def test_variance_components_balanced_icc_identity():
    # For balanced data ICC(1) = (MSB - MSW) / (MSB + (n - 1) MSW) (Shrout & Fleiss 1979).
    rng = np.random.default_rng(9)
    y = rng.normal(0, 1, (6, 5)) + rng.normal(0, 1, (6, 1))
    res = nfs.one_way_anova(y.ravel(), np.repeat(np.arange(6), 5))
    msb = 5 * y.mean(1).var(ddof=1)
    msw = y.var(axis=1, ddof=1).mean()
    assert res.icc == pytest.approx((msb - msw) / (msb + 4 * msw), rel=1e-10)
    assert res.var_between == pytest.approx((msb - msw) / 5, rel=1e-10)


def test_noise_floor_chi_square_interval_independent_formula():
    rng = np.random.default_rng(10)
    y = rng.normal(0, 2, 30)
    labels = np.repeat(np.arange(5), 6)
    nf = nfs.noise_floor(y, labels)
    df = 25
    assert nf.df == df
    ss = sum(((y[labels == g] - y[labels == g].mean()) ** 2).sum() for g in range(5))
    # chi2(df) quantiles through the gamma distribution: chi2.ppf(q, k) = 2 gamma.ppf(q, k/2)
    ci = nf.confidence_interval(0.9)
    assert ci.low == pytest.approx(math.sqrt(ss / (2 * stats.gamma.ppf(0.95, df / 2))), rel=1e-10)
    assert ci.high == pytest.approx(math.sqrt(ss / (2 * stats.gamma.ppf(0.05, df / 2))), rel=1e-10)


def test_noise_floor_interval_coverage_by_simulation():
    rng = np.random.default_rng(11)
    n_sim, sigma = 2000, 1.5
    covered = 0
    for _ in range(n_sim):
        ci = nfs.noise_floor(rng.normal(0, sigma, 6)).confidence_interval(0.95)
        covered += ci.low <= sigma <= ci.high
    assert binom_lower(n_sim, 0.95) <= covered / n_sim <= binom_upper(n_sim, 0.95)


def test_two_way_anova_matches_statsmodels():
    rng = np.random.default_rng(12)
    table = rng.normal(0, 1, (4, 6)) + rng.normal(0, 1, (1, 6)) + np.arange(4)[:, None] * 0.3
    res = nfs.two_way_anova(table)
    frame = pd.DataFrame({"metric": table.ravel(), "config": np.repeat(list("abcd"), 6),
                          "seed": np.tile(np.arange(6), 4)})
    aov = anova_lm(ols("metric ~ C(config) + C(seed)", data=frame).fit())
    ms = aov["sum_sq"] / aov["df"]
    assert res.ms_config == pytest.approx(ms["C(config)"], rel=1e-10)
    assert res.ms_seed == pytest.approx(ms["C(seed)"], rel=1e-10)
    assert res.ms_residual == pytest.approx(ms["Residual"], rel=1e-10)
    assert res.p_config == pytest.approx(aov.loc["C(config)", "PR(>F)"], rel=1e-8)
    assert res.p_seed == pytest.approx(aov.loc["C(seed)", "PR(>F)"], rel=1e-8)


def test_analyze_two_way_block_matches_statsmodels():
    # a..d share seeds 0-5 (a also ran seed 9); e only ran seeds 0-2.
    # Largest complete block: {baseline, a, b, c} x {0..5} (24 cells) beats all five x {0, 1, 2} (15).
    rng = np.random.default_rng(13)
    runs = make_runs({"baseline": 0, "a": 0.01, "b": 0.0, "c": -0.01}, n_seeds=6, seed_sd=0.01, rng=rng)
    extra = pd.DataFrame([{"config": "a", "seed": 9, "val_acc": 0.8, "status": "ok"}]
                         + [{"config": "e", "seed": s, "val_acc": 0.8 + rng.normal(0, 0.01), "status": "ok"} for s in range(3)])
    runs = pd.concat([runs, extra], ignore_index=True)
    s = analyze(runs, "val_acc", n_boot=200, n_perm=200).summary
    assert (s["two_way_n_configs"], s["two_way_n_seeds"]) == (4, 6)
    block = runs[runs.config.isin(["baseline", "a", "b", "c"]) & runs.seed.isin(range(6))]
    aov = anova_lm(ols("val_acc ~ C(config) + C(seed)", data=block).fit())
    ms = aov["sum_sq"] / aov["df"]
    assert s["var_residual"] == pytest.approx(ms["Residual"], rel=1e-9)
    assert s["var_config"] == pytest.approx(max(0, (ms["C(config)"] - ms["Residual"]) / 6), rel=1e-9)
    assert s["var_seed"] == pytest.approx(max(0, (ms["C(seed)"] - ms["Residual"]) / 4), rel=1e-9)


def test_no_complete_block_without_shared_seeds():
    runs = make_runs({"baseline": 0, "a": 0.01}, n_seeds=5, shared=False)
    s = analyze(runs, "val_acc", n_boot=100, n_perm=100).summary
    assert s["var_config"] is None and s["two_way_n_configs"] is None
    assert s["signal_fixed_seed"] is None and s["signal_over_noise"] is None


# ---------------------------------------------------------------------------
# power
# ---------------------------------------------------------------------------


def _power_by_scipy(d, n1, n2=None):
    """Two-sided t power written out with scipy.stats.nct (paired when n2 is None)."""
    df, eff = (n1 - 1, n1) if n2 is None else (n1 + n2 - 2, n1 * n2 / (n1 + n2))
    crit = stats.t.isf(0.025, df)
    # scipy's nct.cdf returns NaN for the (negligible, < 1e-10) lower tail at df = 1
    lower = np.nan_to_num(stats.nct.cdf(-crit, df, d * math.sqrt(eff)))
    return stats.nct.sf(crit, df, d * math.sqrt(eff)) + lower


def test_mde_matches_statsmodels():
    # statsmodels' root finder stops at ~1e-6 relative precision; the
    # definitional check (power at the mde is the target) is much tighter.
    ns = np.array([2, 3, 5, 10, 40])
    ours = nfs.minimum_detectable_difference(0.02, ns, paired=True, alpha=0.05, power=0.8)
    ref = [0.02 * TTestPower().solve_power(effect_size=None, nobs=n, alpha=0.05, power=0.8) for n in ns]
    np.testing.assert_allclose(ours, ref, rtol=1e-5)
    for m, n in zip(ours, ns):
        assert _power_by_scipy(m / 0.02, n) == pytest.approx(0.8, abs=1e-9)
    ours = nfs.minimum_detectable_difference(0.02, ns, nobs2=8, paired=False, alpha=0.01, power=0.9)
    ref = [0.02 * TTestIndPower().solve_power(effect_size=None, nobs1=n, ratio=8 / n, alpha=0.01, power=0.9) for n in ns]
    np.testing.assert_allclose(ours, ref, rtol=1e-5)
    ours = nfs.minimum_detectable_difference(0.02, ns, nobs2=8, paired=False)
    for m, n in zip(ours, ns):
        assert _power_by_scipy(m / 0.02, n, 8) == pytest.approx(0.8, abs=1e-9)


@pytest.mark.parametrize("paired", [True, False])
def test_seeds_needed_is_smallest_n_reaching_power(paired):
    klass = TTestPower() if paired else TTestIndPower()
    effects = np.array([0.3, 0.7, 1.0, 1.6, 3.0])
    needed = nfs.seeds_needed(effects * 0.01, 0.01, paired=paired, alpha=0.05, power=0.8)
    for d, n in zip(effects, needed):
        assert klass.power(d, n, 0.05) >= 0.8
        if n > 2:
            assert klass.power(d, n - 1, 0.05) < 0.8
        nobs = {"nobs": None} if paired else {"nobs1": None}
        assert n == max(2, math.ceil(klass.solve_power(effect_size=d, alpha=0.05, power=0.8, **nobs)))
    assert np.isnan(nfs.seeds_needed(0.0, 0.01))
    assert nfs.seeds_needed(1e-9, 1.0) == nfs.SEEDS_NEEDED_CAP


def test_power_prediction_is_calibrated_by_simulation():
    # Welch with equal n and variances behaves like the pooled t whose power we
    # predict; one comparison, no correction, a 1-sd difference, 10 seeds.
    rng = np.random.default_rng(14)
    n_sim = 2000
    x, y = rng.normal(1.0, 1, (n_sim, 10)), rng.normal(0, 1, (n_sim, 10))
    rate = np.mean(nfs.welch_t_test(x, y).pvalue < 0.05)
    predicted = nfs.t_test_power(1.0, 10, paired=False)
    assert predicted == pytest.approx(TTestIndPower().power(1.0, 10, 0.05))
    assert binom_lower(n_sim, predicted) <= rate <= binom_upper(n_sim, predicted)


# ---------------------------------------------------------------------------
# ASO
# ---------------------------------------------------------------------------


def deepsig_readme_scores():
    # deepsig README, scenario 1: np.random.seed(1234); A ~ N(0.9, 0.8), B ~ N(0, 1), 5 each.
    # A local legacy RandomState reproduces the same draws without touching global state.
    rs = np.random.RandomState(1234)
    a = rs.normal(loc=0.9, scale=0.8, size=5)
    b = rs.normal(loc=0, scale=1, size=5)
    return a, b


def test_aso_reproduces_published_readme_value():
    a, b = deepsig_readme_scores()
    # Published: min_eps = 0.225.  Monte-Carlo; 20,000 resamples make our own
    # bootstrap noise (~0.004) small against the tolerance.
    res = nfs.aso(a, b, num_bootstrap_iterations=20_000, random_state=0)
    assert res.eps_min == pytest.approx(0.225, abs=0.02)
    assert res.eps_min < 0.5  # "so A is better"


def test_aso_agrees_with_deepsig():
    # Optional reference: pip install deepsig==1.2.8 (pure Python, no torch).
    deepsig_aso = pytest.importorskip("deepsig.aso")
    rng = np.random.default_rng(15)
    cases = [(rng.normal(0.5, 1, 12), rng.normal(0, 1.5, 9)), (rng.normal(0, 1, 8), rng.normal(0.2, 0.5, 8))]
    for a, b in cases:
        # deterministic part: identical up to rounding
        assert nfs.violation_ratio(a, b) == pytest.approx(deepsig_aso.compute_violation_ratio(a, b, dt=0.005), rel=1e-9, abs=1e-12)
        # deepsig is slow (a Python loop per resample): 200 resamples estimate the
        # bootstrap spread to ~5 %, which moves eps_min by ~0.015.
        theirs = deepsig_aso.aso(a, b, num_bootstrap_iterations=200, seed=7, show_progress=False)
        ours = nfs.aso(a, b, num_bootstrap_iterations=20_000, random_state=7).eps_min
        assert ours == pytest.approx(theirs, abs=0.06)


def test_aso_properties():
    rng = np.random.default_rng(16)
    a, b = rng.normal(5, 0.1, 50), rng.normal(0, 1, 50)
    assert nfs.aso(a, b, random_state=0).eps_min == pytest.approx(0.0, abs=1e-9)  # A >> B
    # A << B: near 1 (deepsig leaves the first grid point out of the violation
    # integral, so total violation reads a little under 1)
    assert nfs.aso(b, a, random_state=0).eps_min > 0.95
    x, y = rng.normal(0, 1, 400), rng.normal(0, 1, 400)
    same = nfs.aso(x, y, random_state=0)
    assert same.eps_min > 0.5  # no dominance claimed between equal distributions
    assert nfs.violation_ratio(x, x) == 0.5
    # Identical distributions: the violation ratio is 1/2 on average, and
    # deepsig's recommended eps_min < 0.2 rarely claims dominance (the 0.5
    # threshold does so in ~18 % of such pairs, which is why analyze reports
    # ASO but never bases a verdict on it).
    n_sim = 300
    res = [nfs.aso(rng.normal(0, 1, 10), rng.normal(0, 1, 10), num_bootstrap_iterations=300, random_state=i)
           for i in range(n_sim)]
    vr = np.array([r.violation_ratio for r in res])
    assert abs(vr.mean() - 0.5) < 4 * vr.std() / math.sqrt(n_sim)
    assert np.mean([r.eps_min < 0.2 for r in res]) <= binom_upper(n_sim, 0.05)
    # more comparisons -> higher confidence -> larger bound
    assert nfs.aso(x, y, num_comparisons=10, random_state=0).eps_min >= same.eps_min


# ---------------------------------------------------------------------------
# analyze: against scipy / statsmodels on the same data
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def paired_runs():
    rng = np.random.default_rng(20)
    runs = make_runs({"baseline": 0.0, "lr_hi": 0.015, "lr_lo": -0.002, "wide": 0.004}, n_seeds=9,
                     seed_sd=0.006, rng=rng,
                     hp={"baseline": {"lr": 0.1, "hidden": 128}, "lr_hi": {"lr": 0.3, "hidden": 128},
                         "lr_lo": {"lr": 0.03, "hidden": 128}, "wide": {"lr": 0.1, "hidden": 256}})
    # seed order scrambled, and a variant seed the baseline never ran
    runs = runs.sample(frac=1.0, random_state=3).reset_index(drop=True)
    extra = {"config": "wide", "seed": 77, "val_acc": 0.81, "status": "ok", "hp.lr": 0.1, "hp.hidden": 256}
    return pd.concat([runs, pd.DataFrame([extra])], ignore_index=True)


@pytest.fixture(scope="module")
def paired_result(paired_runs):
    return analyze(paired_runs, "val_acc", n_boot=500, n_perm=2000)


def test_comparison_columns_fixed(paired_runs, paired_result):
    assert tuple(paired_result.comparisons.columns) == nfs.COMPARISON_COLUMNS
    first_seen = [c for c in pd.unique(paired_runs.config) if c != "baseline"]
    assert list(paired_result.comparisons.config) == first_seen
    unpaired = analyze(make_runs({"baseline": 0, "x": 0.01}, shared=False), "val_acc", n_boot=100, n_perm=100,
                       correction="none", confidence_level=0.9)
    assert tuple(unpaired.comparisons.columns) == nfs.COMPARISON_COLUMNS
    assert tuple(unpaired.importance.columns) == nfs.IMPORTANCE_COLUMNS


def test_paired_comparisons_match_scipy(paired_runs, paired_result):
    comp = paired_result.comparisons.set_index("config")
    for name in ["lr_hi", "lr_lo", "wide"]:
        v, b = aligned(paired_runs, name)
        row = comp.loc[name]
        assert row["test"] == "paired_t" and row["n_paired"] == 9
        assert row["diff"] == pytest.approx(np.mean(v - b), rel=1e-12)
        ref = stats.ttest_rel(v, b)
        assert row["statistic"] == pytest.approx(ref.statistic, rel=1e-10)
        assert row["p_value"] == pytest.approx(ref.pvalue, rel=1e-10)
        assert row["p_paired_t"] == row["p_value"]
        assert row["p_wilcoxon"] == pytest.approx(stats.wilcoxon(v - b).pvalue, rel=1e-10)
        exact = stats.permutation_test((v - b,), np.mean, permutation_type="samples", n_resamples=np.inf).pvalue
        assert row["p_signflip"] == pytest.approx(exact, rel=1e-10)
        assert np.isnan(row["p_welch"]) and np.isnan(row["p_mannwhitney"])
        assert row["effect_size"] == pytest.approx(ref.statistic / 3, rel=1e-10)
        allv = paired_runs[paired_runs.config == name].val_acc.to_numpy()
        allb = paired_runs[paired_runs.config == "baseline"].val_acc.to_numpy()
        assert row["n"] == len(allv) and row["mean"] == pytest.approx(allv.mean())
        assert row["prob_superior"] == pytest.approx(stats.mannwhitneyu(allv, allb).statistic / (len(allv) * len(allb)))
        assert row["ci_low"] < row["diff"] < row["ci_high"]
    assert comp.loc["wide", "n"] == 10  # the extra seed counts in n but not in the pairing
    p = comp["p_value"].to_numpy()
    np.testing.assert_allclose(comp["p_adjusted"], multipletests(p, method="holm")[1], rtol=1e-12)


def test_unpaired_comparisons_match_scipy():
    rng = np.random.default_rng(21)
    runs = make_runs({"baseline": 0.0, "a": 0.04, "b": 0.001}, n_seeds=7, shared=False, rng=rng)
    runs = runs[~((runs.config == "b") & (runs.seed == runs[runs.config == "b"].seed.max()))]  # unequal n
    res = analyze(runs, "val_acc", correction="bh", n_boot=300, n_perm=300)
    comp = res.comparisons.set_index("config")
    base = runs[runs.config == "baseline"].val_acc.to_numpy()
    for name in ["a", "b"]:
        v = runs[runs.config == name].val_acc.to_numpy()
        row = comp.loc[name]
        assert row["test"] == "welch" and row["n_paired"] == 0
        ref = stats.ttest_ind(v, base, equal_var=False)
        assert row["diff"] == pytest.approx(v.mean() - base.mean(), rel=1e-12)
        assert row["p_value"] == pytest.approx(ref.pvalue, rel=1e-10) and row["p_welch"] == row["p_value"]
        assert row["p_mannwhitney"] == pytest.approx(stats.mannwhitneyu(v, base).pvalue, rel=1e-10)
        assert np.isnan(row[["p_paired_t", "p_wilcoxon", "p_signflip"]].astype(float)).all()
        assert row["effect_size"] == pytest.approx(stats.ttest_ind(v, base).statistic * math.sqrt(1 / len(v) + 1 / len(base)))
        mde = TTestIndPower().solve_power(None, nobs1=len(v), ratio=len(base) / len(v), alpha=0.05, power=0.8)
        assert row["mde"] == pytest.approx(mde * res.summary["noise_floor"], rel=1e-5)
        d = abs(row["diff"]) / res.summary["noise_floor"]
        assert row["seeds_needed"] == max(2, math.ceil(TTestIndPower().solve_power(d, nobs1=None, alpha=0.05, power=0.8)))
    np.testing.assert_allclose(comp["p_adjusted"], multipletests(comp["p_value"], method="fdr_bh")[1], rtol=1e-12)
    assert comp.loc["a", "verdict"] == "better"


def test_paired_power_columns_match_statsmodels(paired_runs, paired_result):
    comp = paired_result.comparisons.set_index("config")
    for name in ["lr_hi", "lr_lo"]:
        v, b = aligned(paired_runs, name)
        sd = np.std(v - b, ddof=1)
        row = comp.loc[name]
        assert row["mde"] == pytest.approx(sd * TTestPower().solve_power(None, nobs=9, alpha=0.05, power=0.8), rel=1e-5)
        need = TTestPower().solve_power(abs(row["diff"]) / sd, nobs=None, alpha=0.05, power=0.8)
        assert row["seeds_needed"] == max(2, math.ceil(need))


def test_summary_matches_independent_computation(paired_runs, paired_result):
    s = paired_result.summary
    groups = {c: g.val_acc.to_numpy() for c, g in paired_runs.groupby("config", sort=False)}
    ref = stats.f_oneway(*groups.values())
    assert s["f_stat"] == pytest.approx(ref.statistic, rel=1e-10)
    assert s["f_pvalue"] == pytest.approx(ref.pvalue, rel=1e-8)
    N, k = len(paired_runs), len(groups)
    msw = sum((len(g) - 1) * np.var(g, ddof=1) for g in groups.values()) / (N - k)
    grand = paired_runs.val_acc.mean()
    msb = sum(len(g) * (g.mean() - grand) ** 2 for g in groups.values()) / (k - 1)
    n0 = (N - sum(len(g) ** 2 for g in groups.values()) / N) / (k - 1)
    var_b = max(0.0, (msb - msw) / n0)
    assert s["noise_floor"] == pytest.approx(math.sqrt(msw), rel=1e-10)
    assert s["noise_floor_baseline"] == pytest.approx(np.std(groups["baseline"], ddof=1), rel=1e-10)
    lo, hi = s["noise_floor_ci"]
    assert lo == pytest.approx(math.sqrt((N - k) * msw / stats.chi2.ppf(0.975, N - k)), rel=1e-10)
    assert hi == pytest.approx(math.sqrt((N - k) * msw / stats.chi2.ppf(0.025, N - k)), rel=1e-10)
    assert s["signal"] == pytest.approx(math.sqrt(var_b), rel=1e-10)
    assert s["snr"] == pytest.approx(var_b / msw, rel=1e-10)
    assert s["icc"] == pytest.approx(var_b / (var_b + msw), rel=1e-10)
    wide = paired_runs.pivot(index="seed", columns="config", values="val_acc")
    shared = wide[wide.notna().sum(axis=1) >= 2]
    fixed = np.mean([np.std(r.dropna(), ddof=1) for _, r in shared.iterrows()])
    assert s["signal_fixed_seed"] == pytest.approx(fixed, rel=1e-10)
    assert s["signal_over_noise"] == pytest.approx(fixed / math.sqrt(msw), rel=1e-10)
    comp = paired_result.comparisons
    best = comp.loc[comp["mean"].idxmax()]
    assert s["best_config"] == best["config"] == "lr_hi"
    assert s["n_better"] == (comp.verdict == "better").sum()
    nb = len(groups["baseline"])
    # statsmodels' root finder stops at ~1e-6 relative precision
    assert s["mde"] == pytest.approx(math.sqrt(msw) * TTestIndPower().solve_power(None, nobs1=nb, alpha=0.05, power=0.8), rel=1e-5)
    assert s["n_runs"] == N and s["n_configs"] == k and s["n_excluded"] == 0
    assert s["test_sampling_floor"] is None
    json.dumps(s, allow_nan=False)  # plain JSON, no NaN


def test_direction_min_flips_verdicts_not_diffs(paired_runs, paired_result):
    flipped = analyze(paired_runs, "val_acc", direction="min", n_boot=500, n_perm=2000)
    a, b = paired_result.comparisons, flipped.comparisons
    np.testing.assert_allclose(a["diff"], b["diff"])
    np.testing.assert_allclose(a["p_value"], b["p_value"])
    np.testing.assert_allclose(a["prob_superior"] + b["prob_superior"], 1.0)
    assert list(b.verdict) == [{"better": "worse", "worse": "better"}.get(v, v) for v in a.verdict]
    assert a.set_index("config").loc["lr_hi", "verdict"] == "better"
    assert a.set_index("config").loc["lr_hi", "aso_eps"] < 0.2
    assert b.set_index("config").loc["lr_hi", "aso_eps"] > 0.8
    assert flipped.summary["best_config"] == a.loc[a["mean"].idxmin(), "config"]


def test_same_random_state_same_result(paired_runs, paired_result):
    again = analyze(paired_runs, "val_acc", n_boot=500, n_perm=2000)
    pd.testing.assert_frame_equal(again.comparisons, paired_result.comparisons)
    pd.testing.assert_frame_equal(again.importance, paired_result.importance)
    assert again.summary == paired_result.summary


def test_test_sampling_floor_only_for_proportions():
    runs = make_runs({"baseline": 0, "a": 0.01})
    s = analyze(runs, "val_acc", eval_size=5000, n_boot=100, n_perm=100).summary
    p = runs[runs.config == "baseline"].val_acc.mean()
    assert s["test_sampling_floor"] == pytest.approx(math.sqrt(p * (1 - p) / 5000))
    s = analyze(make_runs({"baseline": 0, "a": 0.01}, mean=3.0), "val_acc", eval_size=5000, n_boot=100, n_perm=100).summary
    assert s["test_sampling_floor"] is None


def test_single_run_variant_is_insufficient():
    runs = make_runs({"baseline": 0.0, "a": 0.03, "b": 0.0}, n_seeds=6)
    runs = runs[~((runs.config == "b") & (runs.seed > 0))]
    res = analyze(runs, "val_acc", n_boot=100, n_perm=100)
    row = res.comparisons.set_index("config").loc["b"]
    assert row["verdict"] == "insufficient_runs" and row["n"] == 1
    assert np.isnan(row[["statistic", "p_value", "p_adjusted", "ci_low", "aso_eps"]].astype(float)).all()
    # left out of the family: a's Holm p is its raw p (family of one)
    a = res.comparisons.set_index("config").loc["a"]
    assert a["p_adjusted"] == pytest.approx(a["p_value"])
    assert res.summary["best_config"] == "a"


# ---------------------------------------------------------------------------
# importance
# ---------------------------------------------------------------------------


def test_importance_one_at_a_time_design(paired_result):
    imp = paired_result.importance.set_index("hparam")
    # lr: baseline, lr_hi, lr_lo (hidden == 128); hidden: baseline and wide (lr == 0.1)
    assert imp.loc["lr", "n_levels"] == 3 and imp.loc["lr", "n_runs"] == 27
    assert imp.loc["hidden", "n_levels"] == 2 and imp.loc["hidden", "n_runs"] == 19
    assert (imp["design"] == "one_at_a_time").all()
    assert imp.loc["lr", "verdict"] == "matters"
    assert imp.loc["lr", "ratio"] == pytest.approx(imp.loc["lr", "var_explained"] / imp.loc["lr", "noise_var"])


def test_importance_falls_back_to_all_runs():
    hp = {"baseline": {"lr": 0.1, "hidden": 128}, "a": {"lr": 0.3, "hidden": 256}, "b": {"lr": 0.1, "hidden": 256}}
    runs = make_runs({"baseline": 0, "a": 0.0, "b": 0.0}, n_seeds=5, hp=hp)
    imp = analyze(runs, "val_acc", n_boot=100, n_perm=100).importance.set_index("hparam")
    assert imp.loc["lr", "design"] == "all_runs" and imp.loc["lr", "n_runs"] == 15
    assert imp.loc["hidden", "design"] == "one_at_a_time" and imp.loc["hidden", "n_runs"] == 10


def test_importance_pvalue_matches_scipy_permutation_test():
    rng = np.random.default_rng(22)
    groups = [rng.normal(m, 1, 3) for m in (0, 0.8, 1.5)]
    y, labels = np.concatenate(groups), np.repeat([0, 1, 2], 3)
    # 9! / (3! 3! 3!) = 1680 distinct relabellings: scipy enumerates them exactly
    ref = stats.permutation_test(groups, lambda *g: stats.f_oneway(*g).statistic,
                                 permutation_type="independent", alternative="greater", n_resamples=np.inf).pvalue
    ours = nfs.permutation_anova_test(y, labels, n_resamples=40_000, random_state=0).pvalue
    assert abs(ours - ref) < 4 * math.sqrt(ref * (1 - ref) / 40_000) + 1e-4


def test_importance_permutation_null_is_calibrated():
    rng = np.random.default_rng(23)
    n_sim, alpha = 600, 0.05
    y = rng.normal(0, 1, (n_sim, 15))
    labels = np.repeat([0, 1, 2], 5)
    p = np.array([nfs.permutation_anova_test(row, labels, n_resamples=199, random_state=i).pvalue for i, row in enumerate(y)])
    assert np.mean(p < alpha) <= binom_upper(n_sim, alpha)
    # roughly uniform: mean 1/2 within 4 standard errors (sd of U(0,1) is 0.289)
    assert abs(p.mean() - 0.5) < 4 * 0.289 / math.sqrt(n_sim)


# ---------------------------------------------------------------------------
# simulations of the verdicts
# ---------------------------------------------------------------------------


def _sweeps(rng, n_sim, shifts, n_seeds, shared, sd=1.0, seed_sd=1.0):
    """(n_sim, configs, seeds) metric arrays; config 0 is the baseline."""
    noise = rng.normal(0, sd, (n_sim, len(shifts), n_seeds))
    seed_part = rng.normal(0, seed_sd, (n_sim, 1 if shared else len(shifts), n_seeds))
    return np.asarray(shifts, dtype=float)[None, :, None] + seed_part + noise


def _vectorised_verdicts(y, shared, correction, alpha=0.05):
    v, b = y[:, 1:, :], y[:, :1, :]
    test = nfs.paired_t_test(v, b) if shared else nfs.welch_t_test(v, b)
    adj = nfs.adjust_pvalues(test.pvalue, correction)
    return nfs.decide_verdicts(test.estimate, adj, alpha=alpha)


def _as_table(y, shared):
    n_cfg, n_seeds = y.shape
    names = ["baseline"] + [f"v{i}" for i in range(1, n_cfg)]
    seeds = np.tile(np.arange(n_seeds), n_cfg) if shared else np.arange(n_cfg * n_seeds)
    return pd.DataFrame({"config": np.repeat(names, n_seeds), "seed": seeds, "val_acc": y.ravel()})


@pytest.mark.parametrize(("shared", "correction"), [(True, "holm"), (False, "holm"), (True, "bh")])
def test_null_sweeps_rarely_claim_anything(shared, correction):
    # 4 variants x 10 seeds + baseline, all configs equal: only seed noise.
    rng = np.random.default_rng(30)
    n_sim, alpha = 2000, 0.05
    y = _sweeps(rng, n_sim, [0, 0, 0, 0, 0], 10, shared)
    verdicts = _vectorised_verdicts(y, shared, correction, alpha)
    any_claim = (verdicts != "within_noise").any(axis=1)
    assert any_claim.mean() <= binom_upper(n_sim, alpha)
    # analyze itself reaches the same verdicts on a subset of the sweeps
    for i in range(25):
        res = analyze(_as_table(y[i], shared), "val_acc", correction=correction, alpha=alpha, n_boot=50, n_perm=50)
        assert list(res.comparisons.verdict) == list(verdicts[i])


@pytest.mark.parametrize("shared", [True, False])
def test_two_noise_floor_difference_is_detected(shared):
    # One variant truly better by 2 noise-floor std (within-config std
    # sqrt(sd^2 + seed_sd^2) = sqrt(2)), 10 seeds per config, Holm over 4.
    rng = np.random.default_rng(31)
    n_sim = 1000
    floor = math.sqrt(2.0)
    y = _sweeps(rng, n_sim, [0, 2 * floor, 0, 0, 0], 10, shared)
    verdicts = _vectorised_verdicts(y, shared, "holm")
    assert np.mean(verdicts[:, 0] == "better") >= 0.8
    assert np.mean(verdicts[:, 1:] == "better") <= binom_upper(3 * n_sim, 0.05)
    for i in range(15):
        res = analyze(_as_table(y[i], shared), "val_acc", n_boot=50, n_perm=50)
        assert list(res.comparisons.verdict) == list(verdicts[i])


# ---------------------------------------------------------------------------
# garbage in
# ---------------------------------------------------------------------------


def _error(runs, *args, **kwargs):
    with pytest.raises(AnalysisError) as info:
        analyze(runs, *args, n_boot=50, n_perm=50, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.fixture
def runs3():
    return make_runs({"baseline": 0, "a": 0.01, "b": 0.0}, n_seeds=4,
                     hp={"baseline": {"lr": 0.1}, "a": {"lr": 0.3}, "b": {"lr": 0.03}})


@pytest.mark.parametrize("column", ["config", "seed", "val_acc"])
def test_missing_column_is_named(runs3, column):
    assert repr(column) in _error(runs3.drop(columns=column), "val_acc")


def test_non_numeric_metric_is_named(runs3):
    runs3["val_acc"] = runs3["val_acc"].astype(str)
    assert "'val_acc'" in _error(runs3, "val_acc")
    mixed = runs3.astype({"val_acc": object})
    mixed["val_acc"] = [0.8] * (len(mixed) - 1) + ["oops"]
    msg = _error(mixed, "val_acc")
    assert "'val_acc'" in msg and "oops" in msg


def test_bad_arguments_are_named(runs3):
    assert "direction" in _error(runs3, "val_acc", direction="maximize")
    assert "correction" in _error(runs3, "val_acc", correction="bonferroni")
    assert "alpha" in _error(runs3, "val_acc", alpha=5)
    assert "'nope'" in _error(runs3, "val_acc", hparams=["nope"])


def test_missing_or_thin_baseline_is_named(runs3):
    assert "'base'" in _error(runs3, "val_acc", baseline="base")
    thin = runs3.copy()
    thin.loc[(thin.config == "baseline") & (thin.seed > 0), "status"] = "diverged"
    msg = _error(thin, "val_acc")
    assert "'baseline'" in msg and "1 usable" in msg


def test_duplicates_and_inconsistent_hparams_are_named(runs3):
    dup = pd.concat([runs3, runs3[(runs3.config == "a") & (runs3.seed == 2)]])
    msg = _error(dup, "val_acc")
    assert "'a'" in msg and "seed 2" in msg
    bad = runs3.copy()
    bad.loc[(bad.config == "b") & (bad.seed == 1), "hp.lr"] = 0.5
    msg = _error(bad, "val_acc")
    assert "'hp.lr'" in msg and "'b'" in msg
    blank = runs3.copy()
    blank.loc[3, "config"] = None
    assert "'config'" in _error(blank, "val_acc")


def test_nan_inf_and_diverged_rows_are_excluded_and_counted(runs3):
    runs = runs3.copy()
    runs.loc[runs.index[1], "val_acc"] = np.nan
    runs.loc[runs.index[5], "val_acc"] = np.inf
    runs.loc[runs.index[6], "status"] = "diverged"
    runs.loc[runs.index[9], "status"] = "diverged"
    res = analyze(runs, "val_acc", n_boot=50, n_perm=50)
    s = res.summary
    assert s["n_excluded"] == 4 and s["n_runs"] == len(runs) - 4
    assert s["excluded_by_reason"] == {"metric is NaN": 1, "metric is infinite": 1, "diverged": 2}
    assert sorted(res.excluded.index) == sorted(runs.index[[1, 5, 6, 9]])
    assert set(res.excluded["reason"]) == {"metric is NaN", "metric is infinite", "diverged"}
    clean = runs.drop(index=runs.index[[1, 5, 6, 9]])
    ref = analyze(clean, "val_acc", n_boot=50, n_perm=50)
    np.testing.assert_allclose(res.comparisons["p_value"], ref.comparisons["p_value"])
    # rows 4-7 are config a: one infinite, one diverged
    assert res.comparisons.set_index("config").loc["a", "n"] == 2


def test_analysis_error_is_a_value_error():
    assert issubclass(AnalysisError, ValueError)
