"""Tests for noisefloor.stats.

Every number is checked against something other than the code under test:
scipy / statsmodels on the same data, a formula written out independently,
a value enumerated by hand, a published value, or a simulation whose answer
is known.  All randomness is seeded locally.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.formula.api import ols
from statsmodels.stats.anova import anova_lm
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.oneway import anova_oneway
from statsmodels.stats.power import TTestIndPower, TTestPower

from noisefloor import stats as nfs
from noisefloor.stats import analyze

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
# effect sizes against scipy
# ---------------------------------------------------------------------------


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


@pytest.mark.parametrize(("ours", "theirs"), [("holm", "holm"), ("bh", "fdr_bh"), ("sidak", "sidak"),
                                             ("bonferroni", "bonferroni")])
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


def test_pooled_noise_floor_interval_is_exact_for_normal_noise():
    # Pooled over groups the interval is the chi-square one: coverage 0.95, no more, no less.
    rng = np.random.default_rng(11)
    n_sim, sigma = 2000, 1.5
    covered = 0
    labels = np.repeat([0, 1], 6)
    for _ in range(n_sim):
        ci = nfs.noise_floor(rng.normal(0, sigma, 12), labels).confidence_interval(0.95)
        covered += ci.low <= sigma <= ci.high
    assert binom_lower(n_sim, 0.95) <= covered / n_sim <= binom_upper(n_sim, 0.95)


def test_baseline_noise_floor_interval_is_bonetts_with_a_wider_upper_half():
    # Bonett (2006), computed here from its published formula; the kurtosis with Joanes & Gill's adjustment.
    y = np.array([0.91, 0.93, 0.90, 0.95, 0.92, 0.80, 0.94, 0.93, 0.91, 0.92, 0.89, 0.93])
    n, z = y.size, stats.norm.ppf(0.975)
    m = stats.trim_mean(y, 1 / (2 * math.sqrt(n - 4)))
    g4 = n * ((y - m) ** 4).sum() / ((y - y.mean()) ** 2).sum() ** 2
    g4 = 3 + ((n + 1) * (g4 - 3) + 6) * (n - 1) / ((n - 2) * (n - 3))
    c = n / (n - z)
    se = c * math.sqrt((g4 - (n - 3) / n) / (n - 1))
    centre = math.log(c * y.var(ddof=1))
    ci = nfs.noise_floor(y).confidence_interval(0.95)
    assert ci.low == pytest.approx(math.exp((centre - z * se) / 2), rel=1e-12)
    assert ci.high == pytest.approx(math.exp((centre + z * math.sqrt(2) * se) / 2), rel=1e-12)
    # The outlying run raises the kurtosis, so the interval is wider than the chi-square one on both sides.
    chi = nfs.NoiseFloorResult(y.std(ddof=1), y.var(ddof=1), n - 1, n, 1).confidence_interval(0.95)
    assert ci.low < chi.low and ci.high > chi.high


@pytest.mark.parametrize(("noise", "least"), [("normal", 0.93), ("t3", 0.90), ("skew", 0.90)])
def test_noise_floor_interval_covers_off_the_normal(noise, least):
    # 20 baseline runs, as the default experiment has; 1,000 simulated baselines each. A plain chi-square
    # interval covers 0.67 for t(3) noise and 0.82 for the skewed one; the bands are 2 binomial SEs.
    from simulate import noise_floor_coverage

    cover = noise_floor_coverage(noise, 20, 1000, seed=3)
    assert cover >= least - 2 * math.sqrt(least * (1 - least) / 1000), f"{noise}: coverage {cover:.3f}"
    assert cover <= 0.995, f"{noise}: coverage {cover:.3f} (an interval too wide to be of use)"


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


def test_per_comparison_alpha_is_sidak_or_bonferroni():
    assert nfs.per_comparison_alpha(0.05, 4) == pytest.approx(1 - 0.95 ** 0.25, rel=1e-14)
    assert nfs.per_comparison_alpha(0.05, 4, "bonferroni") == 0.0125
    assert nfs.per_comparison_alpha(0.05, 4, "none") == 0.05
    assert nfs.per_comparison_alpha(0.05, 1) == 0.05
    # The adjusted p-value crosses alpha exactly where the raw p crosses the per-comparison level.
    a1 = nfs.per_comparison_alpha(0.05, 7)
    assert nfs.adjust_pvalues(np.r_[a1 * 0.999, a1 * 1.001, np.full(5, 0.5)], "sidak")[:2].tolist() == \
        pytest.approx([0.05 * 0.999, 0.05 * 1.001], rel=1e-3)
    assert (nfs.adjust_pvalues(np.r_[a1 * 0.999, np.full(6, 0.5)], "sidak")[0] < 0.05) and \
        (nfs.adjust_pvalues(np.r_[a1 * 1.001, np.full(6, 0.5)], "sidak")[0] > 0.05)


def test_analyze_two_way_block_matches_statsmodels():
    # a..d share seeds 0-5 (a also ran seed 9); e only ran seeds 0-2.
    # Largest complete block: {baseline, a, b, c} x {0..5} (24 cells) beats all five x {0, 1, 2} (15).
    rng = np.random.default_rng(13)
    runs = make_runs({"baseline": 0, "a": 0.01, "b": 0.0, "c": -0.01}, n_seeds=6, seed_sd=0.01, rng=rng)
    extra = pd.DataFrame([{"config": "a", "seed": 9, "val_acc": 0.8, "status": "ok"}]
                         + [{"config": "e", "seed": s, "val_acc": 0.8 + rng.normal(0, 0.01), "status": "ok"} for s in range(3)])
    runs = pd.concat([runs, extra], ignore_index=True)
    s = analyze(runs, "val_acc", n_boot=200).summary
    assert (len(s.two_way_configs), s.two_way_n_seeds) == (4, 6)
    block = runs[runs.config.isin(["baseline", "a", "b", "c"]) & runs.seed.isin(range(6))]
    aov = anova_lm(ols("val_acc ~ C(config) + C(seed)", data=block).fit())
    ms = aov["sum_sq"] / aov["df"]
    assert s.var_residual == pytest.approx(ms["Residual"], rel=1e-9)
    assert s.var_config == pytest.approx(max(0, (ms["C(config)"] - ms["Residual"]) / 6), rel=1e-9)
    assert s.var_seed == pytest.approx(max(0, (ms["C(seed)"] - ms["Residual"]) / 4), rel=1e-9)


def test_no_complete_block_without_shared_seeds():
    runs = make_runs({"baseline": 0, "a": 0.01}, n_seeds=5, shared=False)
    s = analyze(runs, "val_acc", n_boot=100).summary
    assert s.var_config is None and s.two_way_configs is None and s.seed_share is None
    assert s.signal_fixed_seed is None and s.hp_variance_share is None


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
    rate = np.mean(stats.ttest_ind(x, y, equal_var=False, axis=-1).pvalue < 0.05)
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
# tests across configs, robust spread, the hyperparameters' share
# ---------------------------------------------------------------------------


def test_welch_anova_matches_statsmodels():
    rng = np.random.default_rng(40)
    groups = [rng.normal(0, 1, 20), rng.normal(0.5, 3, 4), rng.normal(0, 0.5, 6), rng.normal(1, 1, 4)]
    y, labels = np.concatenate(groups), np.repeat(list("abcd"), [20, 4, 6, 4])
    ours = nfs.welch_anova(y, labels)
    ref = anova_oneway(groups, use_var="unequal")
    assert ours.statistic == pytest.approx(ref.statistic, rel=1e-10)
    assert ours.pvalue == pytest.approx(ref.pvalue, rel=1e-9)
    assert (ours.df_num, ours.df_den) == pytest.approx(ref.df, rel=1e-10)
    # a single-run group cannot enter; a constant group makes it undefined
    plus = lambda *extra: np.concatenate([labels, list(extra)])
    assert nfs.welch_anova(np.r_[y, 5.0], plus("e")).statistic == pytest.approx(ours.statistic)
    assert math.isnan(nfs.welch_anova(np.r_[y, 1.0, 1.0], plus("e", "e")).pvalue)


def test_brown_forsythe_matches_scipy_and_robust_sd_matches_mad():
    rng = np.random.default_rng(41)
    groups = [rng.normal(0, 1, 20), rng.normal(0, 3, 4), rng.normal(0, 1, 4)]
    y, labels = np.concatenate(groups), np.repeat([0, 1, 2], [20, 4, 4])
    assert nfs.brown_forsythe_test(y, labels) == pytest.approx(stats.levene(*groups, center="median").pvalue,
                                                               rel=1e-12)
    x = rng.normal(0, 2, 15)
    assert nfs.robust_sd(x) == pytest.approx(stats.median_abs_deviation(x, scale="normal"), rel=1e-12)
    # one bad run moves the sd a lot and the robust sd little
    bad = np.r_[x, 40.0]
    assert np.std(bad, ddof=1) > 3 * np.std(x, ddof=1)
    assert nfs.robust_sd(bad) < 1.5 * nfs.robust_sd(x)


def test_hp_variance_share_interval_is_the_f_inversion():
    rng = np.random.default_rng(42)
    table = rng.normal(0, 1, (5, 4)) + np.arange(5)[:, None] * 0.8 + rng.normal(0, 1, (1, 4))
    tw = nfs.two_way_anova(table)
    res = nfs.hp_variance_share(two_way=tw, confidence_level=0.9)
    f = tw.ms_config / tw.ms_residual
    theta = (tw.ms_config - tw.ms_residual) / 4 / tw.ms_residual
    assert res.share == pytest.approx(theta / (1 + theta), rel=1e-12)
    # At the interval's ends the observed F sits at the F distribution's 5 % and 95 % points.
    for end, q in ((res.ci_low, 0.95), (res.ci_high, 0.05)):
        th = end / (1 - end)
        assert stats.f.cdf(f / (1 + 4 * th), tw.df_config, tw.df_residual) == pytest.approx(q, abs=1e-9)
    assert res.ci_low <= res.share <= res.ci_high and res.method == "two_way"


@pytest.mark.parametrize("seed_corr", [0.0, 0.5])
def test_hp_variance_share_has_null_zero_and_recovers_a_built_in_share(seed_corr):
    # 5 configs x 4 seeds (the default design's block). The seed effect is
    # shared by every config at a seed, so fixing the seed removes it: the
    # share is var_hp / (var_hp + var_residual), whatever seed_corr is.
    rng = np.random.default_rng(43)
    n_sim, k, n_s = 2000, 5, 4
    var_res = 1.0 - seed_corr
    def shares(var_hp):
        out = []
        for _ in range(n_sim):
            table = (rng.normal(0, math.sqrt(var_hp), (k, 1)) + rng.normal(0, math.sqrt(seed_corr), (1, n_s))
                     + rng.normal(0, math.sqrt(var_res), (k, n_s)))
            out.append(nfs.hp_variance_share(two_way=nfs.two_way_anova(table)).share)
        return np.array(out)
    null = shares(0.0)
    assert null.mean() < 0.1               # truncated at 0, so a little above 0 on average
    assert np.median(null) == 0.0
    # naive "1 - var_noise / var_fixed_seed" would read about 0 here when seed_corr = 0.5
    true_share = 0.6
    built = shares(true_share / (1 - true_share) * var_res)
    assert abs(np.median(built) - true_share) < 0.1


# ---------------------------------------------------------------------------
# seeds needed, against a fixed baseline
# ---------------------------------------------------------------------------


def _welch_power_by_scipy(d, n1, n2, alpha):
    """Two-sided power with the comparisons' df (Satterthwaite for equal spreads), written out with scipy.stats.nct."""
    df = (1 / n1 + 1 / n2) ** 2 / (1 / (n1**2 * (n1 - 1)) + 1 / (n2**2 * (n2 - 1)))
    ncp = d / math.sqrt(1 / n1 + 1 / n2)
    crit = stats.t.isf(alpha / 2, df)
    return stats.nct.sf(crit, df, ncp) + stats.nct.cdf(-crit, df, ncp)


def test_seeds_to_detect_keeps_the_baseline_and_uses_the_comparisons_df():
    sd, nb, a = 0.01, 20, 0.0127
    for d in (0.5, 1.0, 2.0):
        n = int(nfs.seeds_to_detect(d * sd, sd, n_baseline=nb, alpha=a, power=0.8))
        power = lambda k: _welch_power_by_scipy(d, k, max(nb, k), a)
        assert power(n) >= 0.8 - 1e-9 and (n == 2 or power(n - 1) < 0.8)
    # the minimum detectable difference is where that power is reached
    mde = nfs.minimum_detectable_difference(sd, 4, nobs2=nb, paired=False, alpha=a, power=0.8, welch=True)
    assert _welch_power_by_scipy(mde / sd, 4, nb, a) == pytest.approx(0.8, abs=1e-7)
    assert nfs.welch_df(4, 20) == pytest.approx((1 / 4 + 1 / 20) ** 2 / (1 / 48 + 1 / 7600), rel=1e-12)
    assert np.isnan(nfs.seeds_to_detect(0.0, sd, n_baseline=nb))


def test_seeds_for_equivalence_power_by_simulation():
    sd, nb, margin, alpha = 1.0, 20, 1.0, 0.0127
    n = int(nfs.seeds_for_equivalence(0.0, sd, margin, n_baseline=nb, alpha=alpha, power=0.8))
    assert nfs.equivalence_power(0.0, sd, margin, n, max(nb, n), alpha=alpha) >= 0.8 > \
        nfs.equivalence_power(0.0, sd, margin, n - 1, max(nb, n - 1), alpha=alpha)
    # the probability the prediction gives matches simulated t intervals
    rng = np.random.default_rng(44)
    n_sim, nbb = 4000, max(nb, n)
    x, y = rng.normal(0, sd, (n_sim, n)), rng.normal(0, sd, (n_sim, nbb))
    se = sd * math.sqrt(1 / n + 1 / nbb)        # known sd: the prediction's own model
    q = stats.t.ppf(1 - alpha / 2, n + nbb - 2)
    est = x.mean(1) - y.mean(1)
    inside = np.mean((est - q * se > -margin) & (est + q * se < margin))
    predicted = float(nfs.equivalence_power(0.0, sd, margin, n, nbb, alpha=alpha))
    assert binom_lower(n_sim, predicted) <= inside <= binom_upper(n_sim, predicted)
    assert np.isnan(nfs.seeds_for_equivalence(1.5, sd, margin, n_baseline=nb))   # |diff| > margin


def test_still_improving_compares_the_last_third_with_the_noise_floor():
    rows = []
    for seed in range(3):
        jitter = 0.001 * (seed - 1)                 # the seeds' gains differ: the bound sits below the gain
        for e, (a, b) in enumerate(zip([0.5, 0.7, 0.80, 0.85, 0.88, 0.90], [0.5, 0.8, 0.9, 0.9, 0.9, 0.9]), 1):
            rows += [{"config": "rising", "seed": seed, "epoch": e, "acc": a + (jitter if e == 6 else 0)},
                     {"config": "flat", "seed": seed, "epoch": e, "acc": b}]
    rows.append({"config": "flat", "seed": 9, "epoch": 6, "acc": float("nan")})   # left out
    res = nfs.still_improving(pd.DataFrame(rows), "acc", noise_floor=0.01).set_index("config")
    # 6 epochs: the last third is epochs 5-6
    assert (res.loc["rising", "first_epoch"], res.loc["rising", "last_epoch"]) == (5, 6)
    assert res.loc["rising", "gain"] == pytest.approx(0.02) and res.loc["rising", "not_converged"]
    assert res.loc["flat", "gain"] == pytest.approx(0.0) and not res.loc["flat", "not_converged"]
    # The bound: Student's t on the config's own seeds' gains (0.019, 0.020, 0.021).
    assert res.loc["rising", "gain_low"] == pytest.approx(0.02 - stats.t.ppf(0.95, 2) * 0.001 / math.sqrt(3))
    # A config of one seed borrows the others' spread, pooled (rising's and flat's: 4 degrees of freedom).
    one = pd.DataFrame(rows + [{"config": "single", "seed": 0, "epoch": e, "acc": 0.5 + 0.01 * e}
                               for e in range(1, 7)])
    single = nfs.still_improving(one, "acc", noise_floor=0.001).set_index("config").loc["single"]
    assert single["gain"] == pytest.approx(0.01)
    assert single["gain_low"] == pytest.approx(0.01 - stats.t.ppf(0.95, 4) * math.sqrt(2 * 0.001 ** 2 / 4))
    # A noise floor just under the gain: the gain is not shown to exceed it.
    assert not nfs.still_improving(pd.DataFrame(rows), "acc", noise_floor=0.0195).set_index("config").loc[
        "rising", "not_converged"]
    # a loss improves downwards
    loss = pd.DataFrame(rows).assign(acc=lambda d: 1 - d["acc"])
    assert nfs.still_improving(loss, "acc", noise_floor=0.01, direction="min").set_index("config").loc[
        "rising", "not_converged"]


def _climbing_curves(rng, gain, n_seeds, floor, epochs=9, noisier=1.0, heavy=False):
    """Learning curves: a flat baseline of 20 seeds and a variant whose curves gain ``gain`` over the last
    third. Each run's level has the noise floor's spread (it carries over from epoch to epoch) and each
    epoch's evaluation adds its own noise, ``noisier`` times larger for the variant (``heavy``: Student's t
    with 3 degrees of freedom, scaled to the same sd)."""
    rows = []
    for config, n, spread in (("baseline", 20, 1.0), ("variant", n_seeds, noisier)):
        for seed in range(n):
            level = rng.normal(0.0, floor)
            for e in range(1, epochs + 1):
                rise = gain * max(0.0, (e - 7) / 2) if config == "variant" else 0.0  # epochs 7 to 9 climb
                noise = rng.standard_t(3) / math.sqrt(3) if heavy else rng.normal()
                rows.append({"config": config, "seed": seed, "epoch": e,
                             "acc": 0.9 + level + rise + 0.6 * floor * spread * noise})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("n_seeds, noisier, heavy", [(4, 1.0, False), (8, 1.0, False), (4, 3.0, False),
                                                     (4, 1.0, True)])
def test_a_curve_that_gains_the_noise_floor_is_flagged_by_chance_at_most_at_the_test_s_level(n_seeds, noisier,
                                                                                            heavy):
    # Truth: the variant's curves gain exactly the noise floor (no more), so "gained more than the noise
    # floor" is false. Comparing the mean's gain itself with the floor flags it about half the time; the
    # lower bound at 95 % flags it at most 5 % of the time, also when the variant is noisier than the
    # baseline (a bound on a spread pooled with the baseline's flagged it 0.19 of the time at 3 times the
    # noise), and when the evaluation noise has heavy tails. A config that gains three floors is caught.
    rng = np.random.default_rng(7)
    floor, n_sim = 0.01, 300

    def flagged(gain):
        hits = 0
        for _ in range(n_sim):
            r = nfs.still_improving(_climbing_curves(rng, gain, n_seeds, floor, noisier=noisier, heavy=heavy),
                                    "acc", noise_floor=floor)
            hits += bool(r.set_index("config").loc["variant", "not_converged"])
        return hits / n_sim

    assert flagged(floor) <= binom_upper(n_sim, 0.05)
    if noisier == 1.0:
        assert flagged(3 * floor) >= 0.8


def test_a_seed_that_stopped_early_is_not_a_climbing_curve():
    # A flat config whose three weakest seeds stopped one epoch before the others: the mean curve's last
    # epoch holds only the strong seeds, so it "rises" by their lead; each seed's own rise is 0.
    rows = [{"config": "c", "seed": s, "epoch": e, "acc": 0.9 + 0.01 * s}
            for s in range(6) for e in range(1, 10 if s >= 3 else 9)]
    res = nfs.still_improving(pd.DataFrame(rows), "acc", noise_floor=0.005).set_index("config").loc["c"]
    assert res["gain"] == pytest.approx(0.0, abs=1e-12) and not res["not_converged"]
