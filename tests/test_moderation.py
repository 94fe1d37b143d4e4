"""Spreads moderated across configs (empirical Bayes) and the many-to-one level."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

import noisefloor
import noisefloor.stats as nfs


def test_fit_prior_recovers_a_known_prior():
    # 4,000 configs whose true variances are drawn from the prior s0^2 d0 / chi2(d0), each seen through
    # its own chi2(d) / d: the method of moments gives s0^2 and d0 back.
    rng = np.random.default_rng(1)
    s0, d0, k = 2.0, 8.0, 4000
    sigma2 = s0 * d0 / rng.chisquare(d0, k)
    d = rng.choice([3.0, 5.0, 19.0], k)
    s2 = sigma2 * rng.chisquare(d) / d
    fit_s0, fit_d0 = nfs.fit_prior(s2, d)
    assert fit_s0 == pytest.approx(s0, rel=0.05)
    assert fit_d0 == pytest.approx(d0, rel=0.2)


def test_fit_prior_of_equal_spreads_pools_them_all():
    # Sample variances that vary less than chi2 sampling explains: d0 is infinite, s0^2 their log-mean.
    d = np.array([3.0, 3.0, 3.0, 19.0])
    s2 = np.array([1.0, 1.05, 0.97, 1.02])
    s0, d0 = nfs.fit_prior(s2, d)
    e = np.log(s2) - special.digamma(d / 2) + np.log(d / 2)
    assert math.isinf(d0) and s0 == pytest.approx(math.exp(e.mean()), rel=1e-12)
    mod = nfs.moderate_variances(s2, d)
    # The cap: the prior carries at most the other configs' degrees of freedom, so every config ends
    # at the pooled total (28) and its variance is the df-weighted mean of its own and the prior's.
    assert mod.df.tolist() == [28.0] * 4
    np.testing.assert_allclose(mod.variance, ((28 - d) * s0 + d * s2) / 28, rtol=1e-12)
    assert not mod.outlying.any()


def test_a_config_far_noisier_than_the_rest_keeps_its_own_variance():
    d = np.array([19.0, 3.0, 3.0, 3.0, 3.0])
    s2 = np.array([1.0, 0.9, 1.1, 1.2, 12.0])
    mod = nfs.moderate_variances(s2, d)
    assert mod.outlying.tolist() == [False, False, False, False, True]
    assert mod.variance[4] == 12.0 and mod.df[4] == 3.0
    # the others pool (more df than their own) and are not pulled up towards the noisy one's 12
    assert (mod.df[:4] > d[:4]).all() and (mod.variance[:4] < 1.6).all()
    # its upper tail probability under the prior fitted without it is what flagged it
    s0, d0 = nfs.fit_prior(s2[:4], d[:4])
    assert stats.f.sf(12.0 / s0, 3, min(d0, 1e6)) < nfs.OUTLIER_LEVEL


def test_a_config_without_spread_is_moderated_and_kept_out_of_the_prior():
    # Identical runs (quantised accuracy) have variance 0: no log, so they do not enter the prior,
    # and their moderated variance is positive (the prior's part).
    mod = nfs.moderate_variances([0.0, 1.0, 1.2, 0.9], [3.0, 3.0, 3.0, 19.0])
    assert mod.variance[0] > 0 and mod.df[0] > 3
    assert mod.raw[0] == 0.0


def test_many_to_one_coverage_matches_the_multivariate_normal():
    lam = np.array([0.3, 0.5, 0.7, 0.2])
    corr = np.outer(lam, lam)
    np.fill_diagonal(corr, 1.0)
    mvn = stats.multivariate_normal(mean=np.zeros(4), cov=corr)
    for c in (1.5, 2.3, 2.8):
        ref = mvn.cdf(np.full(4, c), lower_limit=np.full(4, -c), rng=np.random.default_rng(0))
        assert float(nfs.many_to_one_coverage(c, lam)) == pytest.approx(ref, abs=2e-5)


def test_many_to_one_level_against_dunnetts_table_and_sidak():
    # Dunnett (1955)'s two-sided critical value for 4 comparisons with equal groups (correlation 0.5)
    # and infinite degrees of freedom: 2.44 (his table); with no correlation the level is Sidak's.
    a = nfs.many_to_one_alpha(0.05, np.full(4, math.sqrt(0.5)))
    assert -special.ndtri(a / 2) == pytest.approx(2.44, abs=0.005)
    assert nfs.many_to_one_alpha(0.05, np.zeros(4)) == pytest.approx(nfs.per_comparison_alpha(0.05, 4), rel=1e-12)
    # its adjusted p-values agree with the level: below alpha exactly when p is below it
    for p, below in ((a * 0.999, True), (a * 1.001, False)):
        adj = nfs.many_to_one_adjust(np.array([p, 0.5, 0.6, 0.7]), np.full(4, math.sqrt(0.5)))
        assert (adj[0] < 0.05) == below
    # NaN is no member of the family
    assert np.isnan(nfs.many_to_one_adjust(np.array([0.01, np.nan]), np.full(2, 0.5))[1])


def test_comparison_power_by_simulation():
    # A variant at 6 runs with sd 2 against a baseline at 20 with sd 1, tested with its own spread:
    # the formula's power against the share of simulated Welch tests (the df guard) that reject.
    rng = np.random.default_rng(3)
    diff, n, nb, alpha = 2.0, 6, 20, 0.0127
    pw = float(nfs.comparison_power(diff, n, nb, sd=2.0, sd_baseline=1.0, alpha=alpha))
    se_df = nfs.comparison_se_df(n, nb, sd=2.0, sd_baseline=1.0)
    hits = 0
    for _ in range(4000):
        v, b = diff + 2.0 * rng.normal(size=n), rng.normal(size=nb)
        t = (v.mean() - b.mean()) / math.sqrt(v.var(ddof=1) / n + b.var(ddof=1) / nb)
        hits += abs(t) > stats.t.ppf(1 - alpha / 2, se_df[1])
    assert hits / 4000 == pytest.approx(pw, abs=0.03)
    mde = nfs.detectable_difference(n, nb, sd=2.0, sd_baseline=1.0, alpha=alpha, power=0.8)
    assert float(nfs.comparison_power(mde, n, nb, sd=2.0, sd_baseline=1.0, alpha=alpha)) == pytest.approx(0.8, abs=1e-6)


def test_a_noisier_variant_is_told_it_needs_more_seeds():
    # The seeds to decide read the variant's own spread: 3x the sd asks for several times the seeds.
    common = dict(n_baseline=20, alpha=0.0127, power=0.8)
    same = nfs.seeds_to_detect(1.0, 1.0, **common)
    noisy = nfs.seeds_to_detect(1.0, 3.0, sd_baseline=1.0, **common)
    assert noisy > 4 * same
    # and the prior's degrees of freedom make a moderated spread ask for fewer
    big = nfs.seeds_to_detect(2.5, 1.0, **common)
    assert nfs.seeds_to_detect(2.5, 1.0, prior_df=20, prior_df_baseline=20, **common) < big


def test_the_package_level_api_is_the_analysis():
    assert noisefloor.analyze is nfs.analyze
    rng = np.random.default_rng(4)
    runs = pd.DataFrame({"config": ["baseline"] * 12 + ["lr_hi"] * 4, "seed": list(range(12)) + list(range(4)),
                         "val_acc": np.r_[0.9 + 0.01 * rng.normal(size=12), 0.95 + 0.01 * rng.normal(size=4)]})
    result = noisefloor.analyze(runs, "val_acc")
    assert isinstance(result, noisefloor.AnalysisResult)
    row = result.comparisons.iloc[0]
    assert row["verdict"] == "better" and row["ci_low"] > 0
    assert row["std_moderated"] > 0 and row["seeds_for_margin"] >= 2


def test_the_readmes_python_example_runs(tmp_path, monkeypatch, capsys):
    # The README's five lines, on a small runs table where they expect it.
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    rng = np.random.default_rng(5)
    (tmp_path / "results").mkdir()
    pd.DataFrame({"config": ["baseline"] * 10 + ["lr_hi"] * 4, "seed": list(range(10)) + list(range(4)),
                  "val_acc": 0.9 + 0.01 * rng.normal(size=14), "status": "ok"}).to_csv(tmp_path / "results/runs.csv",
                                                                                    index=False)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "lr_hi" in out and "seeds_for_margin" in out
