"""Simulated sweeps with known truth, for checking the comparisons' error rates, power and intervals.

A run's metric is ``shift[config] + seed_effect[seed] + sd[config] * noise``
with ``var(seed_effect) = rho`` and ``var(noise) = 1 - rho``, so every config
without a shift has run-to-run variance 1 and seed correlation ``rho``.  The
noise is normal, t(3) (a run that half-diverges now and then) or skewed
(1 - Gamma(2), as an accuracy near its ceiling), always scaled to variance 1.
The designs are the ones users run: the default (the baseline at 20 seeds,
four variants at four of them), a balanced factorial, many variants at 3
seeds, unequal variances, a variant whose seed effect is its own, an
outlying run (in a variant or in the baseline) and accuracy quantised to
whole examples.

``python tests/simulate.py [REPS]`` prints the README's tables.
"""

from __future__ import annotations

import dataclasses
import sys
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from noisefloor.stats import analyze, compare_variants, noise_floor
from noisefloor.stats.sequential import Schedule, replay

ALPHA = 0.05


@dataclass(frozen=True)
class Design:
    """A sweep design and its truth."""

    n_baseline: int = 20
    n_variants: int = 4
    n_variant_runs: int = 4
    rho: float = 0.0                      # seed correlation
    shift: float = 0.0                    # true difference of the first variant, in run sds
    alt_shift: float = 1.5                # the shift the power columns use
    sd_mult: tuple = ()                   # per-variant sd multipliers (default all 1)
    outlier: float = 0.0                  # added to one run of the second variant
    baseline_outlier: float = 0.0         # added to one baseline run
    own_seed: tuple = ()                  # variants whose seed effect is their own, not shared
    noise: str = "normal"                 # normal | t3 | skew
    quantum: float | None = None          # round every value to a multiple of this
    scale: float = 1.0                    # run sd in metric units
    level: float = 0.0                    # metric level (e.g. an accuracy around 0.9)

    def variants(self):
        return [f"v{i}" for i in range(self.n_variants)]

    def truth(self):
        """The true difference of every variant from the baseline, in metric units."""
        return np.array([self.shift * self.scale if i == 0 else 0.0 for i in range(self.n_variants)])


def _noise(kind: str, rng, size):
    if kind == "t3":
        return rng.standard_t(3, size) / np.sqrt(3.0)
    if kind == "skew":
        return -(rng.gamma(2.0, 1.0, size) - 2.0) / np.sqrt(2.0)
    return rng.normal(size=size)


def sample(design: Design, rng: np.random.Generator):
    """One simulated sweep: (values, configs, seeds)."""
    d = design
    n_seeds = max(d.n_baseline, d.n_variant_runs)
    seed_effect = rng.normal(0.0, np.sqrt(d.rho), n_seeds)
    noise_sd = np.sqrt(1.0 - d.rho)
    values, configs, seeds = [], [], []
    b = seed_effect[:d.n_baseline] + noise_sd * _noise(d.noise, rng, d.n_baseline)
    if d.baseline_outlier:
        b[0] += d.baseline_outlier
    values.append(b)
    configs += ["baseline"] * d.n_baseline
    seeds += list(range(d.n_baseline))
    mult = d.sd_mult or (1.0,) * d.n_variants
    for i, name in enumerate(d.variants()):
        k = d.n_variant_runs
        own = rng.normal(0.0, np.sqrt(d.rho), k) if i in d.own_seed else seed_effect[:k]
        v = (d.shift if i == 0 else 0.0) + own + noise_sd * mult[i] * _noise(d.noise, rng, k)
        if i == 1 and d.outlier:
            v[0] += d.outlier
        values.append(v)
        configs += [name] * k
        seeds += list(range(k))
    y = d.level + d.scale * np.concatenate(values)
    if d.quantum:
        y = np.round(y / d.quantum) * d.quantum
    return y, np.array(configs, dtype=object), np.array(seeds, dtype=object)


def _holm(p, alpha):
    """Holm's step-down rejections, one family per row of ``p``."""
    k = p.shape[1]
    order = np.argsort(p, axis=1)
    ps = np.take_along_axis(p, order, axis=1)
    ok = np.logical_and.accumulate(ps < alpha / (k - np.arange(k)), axis=1)
    out = np.zeros_like(ok)
    np.put_along_axis(out, order, ok, axis=1)
    return out


def dunnett_critical(design: Design, alpha: float = ALPHA) -> float:
    """Dunnett's two-sided critical value for the design's group sizes, from ``scipy.stats.dunnett``.

    It depends only on the group sizes, so it is taken once per design from
    scipy's simultaneous interval (half-width / (pooled sd * sqrt(1/n_i +
    1/n_0))) instead of computing scipy's multivariate t for every sweep.
    """
    y, c, _ = sample(dataclasses.replace(design, noise="normal", quantum=None), np.random.default_rng(0))
    b = y[c == "baseline"]
    vs = [y[c == n] for n in design.variants()]
    res = stats.dunnett(*vs, control=b, rng=np.random.default_rng(0))
    ci = res.confidence_interval(1 - alpha)
    groups = [b] + vs
    pooled = np.sqrt(sum(((g - g.mean()) ** 2).sum() for g in groups) / (sum(g.size for g in groups) - len(groups)))
    half = (ci.high[0] - ci.low[0]) / 2
    return float(half / (pooled * np.sqrt(1 / vs[0].size + 1 / b.size)))


def _dunnett(b, vs, crit):
    """Dunnett's decisions and intervals at a given critical value (pooled variance over every group)."""
    groups = [b] + list(vs)
    pooled = np.sqrt(sum(((g - g.mean()) ** 2).sum() for g in groups) / (sum(g.size for g in groups) - len(groups)))
    diff = np.array([v.mean() - b.mean() for v in vs])
    half = crit * pooled * np.sqrt(np.array([1 / v.size for v in vs]) + 1 / b.size)
    return np.abs(diff) > half, diff - half, diff + half


def rejections(design: Design, reps: int, *, seed: int = 0, alpha: float = ALPHA, dunnett: bool = True):
    """Per method, a (reps, variants) boolean array: which variants it called different from the baseline.

    Methods: ``noisefloor`` (the package's comparisons), ``dunnett``
    (Dunnett's test at ``scipy.stats.dunnett``'s critical value: pooled
    variance, every run independent),
    ``paired_holm`` (paired t on the shared seeds + Holm) and ``welch_holm``
    (Welch on all runs + Holm).  ``covered`` and ``dunnett_covered``: per
    sweep, whether every simultaneous interval holds its variant's true
    difference.  ``p_paired``, ``p_welch``: the comparators' p-values.
    """
    rng = np.random.default_rng(seed)
    names = design.variants()
    truth = design.truth()
    k = design.n_variant_runs
    ours = np.zeros((reps, len(names)), dtype=bool)
    dun = np.zeros((reps, len(names)), dtype=bool)
    covered = np.zeros(reps, dtype=bool)
    dun_covered = np.zeros(reps, dtype=bool)
    crit = dunnett_critical(design, alpha) if dunnett else None
    base, var = [], []
    for r in range(reps):
        y, c, s = sample(design, rng)
        res = compare_variants(y, c, s, baseline="baseline", variants=names, alpha=alpha)
        ours[r] = np.isin(res.verdicts, ("better", "worse"))
        covered[r] = bool(np.all((res.family.ci_low <= truth) & (truth <= res.family.ci_high)))
        b = y[c == "baseline"]
        vs = [y[c == n] for n in names]
        if dunnett:
            dun[r], low, high = _dunnett(b, vs, crit)
            dun_covered[r] = bool(np.all((low <= truth) & (truth <= high)))
        base.append(b)
        var.append(np.stack(vs))
    b = np.stack(base)[:, None, :]           # reps x 1 x n_baseline
    v = np.stack(var)                        # reps x variants x k
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        # quantised values can make a pair of groups identical: scipy warns, the p-value is NaN -> 1
        warnings.simplefilter("ignore", RuntimeWarning)
        m = min(k, b.shape[-1])               # the shared seeds
        p_paired = np.nan_to_num(stats.ttest_rel(v[..., :m], np.broadcast_to(b[..., :m], v[..., :m].shape),
                                                 axis=2).pvalue, nan=1.0)
        p_welch = np.nan_to_num(stats.ttest_ind(v, b, axis=2, equal_var=False).pvalue, nan=1.0)
    return {"noisefloor": ours, "dunnett": dun, "paired_holm": _holm(p_paired, alpha),
            "welch_holm": _holm(p_welch, alpha), "covered": covered, "dunnett_covered": dun_covered,
            "p_paired": p_paired, "p_welch": p_welch}


def size_matched_power(p_null, p_alt, alpha: float = ALPHA) -> float:
    """Power of a min-p (Holm's first step) test whose threshold gives family-wise error ``alpha`` under the null.

    The threshold is the ``alpha`` quantile of the smallest p-value of the
    null sweeps; the power is the share of the alternative sweeps whose first
    variant's p-value falls below it.  This is how the power of a comparator
    that does not hold its nominal level is compared fairly.
    """
    threshold = np.quantile(p_null.min(axis=1), alpha)
    return float((p_alt[:, 0] < threshold).mean())


def noise_floor_coverage(noise: str, n: int, reps: int, *, seed: int = 0, confidence_level: float = 0.95):
    """Share of baselines of ``n`` runs whose noise-floor interval holds the true sd (1)."""
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(reps):
        ci = noise_floor(_noise(noise, rng, n)).confidence_interval(confidence_level)
        hits += ci.low <= 1.0 <= ci.high
    return hits / reps


def share_coverage(design: Design, reps: int, *, seed: int = 0):
    """Share of null sweeps whose interval for the hyperparameters' share of variance holds the true 0."""
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(reps):
        y, c, s = sample(design, rng)
        lo = analyze(pd.DataFrame({"config": c, "seed": s, "m": y}), "m", n_boot=1).summary.hp_variance_share_ci[0]
        hits += lo is not None and lo <= 0.0
    return hits / reps


def decided_at_asked(design: Design, reps: int, *, seed: int = 0, cap: int = 400):
    """Of the sweeps that left the first variant inconclusive, the share decided when rerun at the seeds it asked for.

    The rerun is a fresh sweep of the same design with every variant at the
    ``seeds_needed`` the first sweep reported and the baseline at
    ``max(n_baseline, seeds_needed)``.  Returns ``(share decided, sweeps
    rerun)``.
    """
    rng = np.random.default_rng(seed)
    decided = asked = 0
    while asked < reps:
        y, c, s = sample(design, rng)
        row = analyze(pd.DataFrame({"config": c, "seed": s, "m": y}), "m", n_boot=1).comparisons.iloc[0]
        if row["verdict"] != "inconclusive" or pd.isna(row["seeds_needed"]):
            continue
        n = int(row["seeds_needed"])
        asked += 1
        if n > cap:
            continue
        again = dataclasses.replace(design, n_variant_runs=n, n_baseline=max(design.n_baseline, n))
        y, c, s = sample(again, rng)
        verdict = analyze(pd.DataFrame({"config": c, "seed": s, "m": y}), "m", n_boot=1).comparisons.iloc[0]["verdict"]
        decided += verdict in ("better", "worse", "equivalent")
    return decided / asked, asked


def power_at_reported_mde(design: Design, reps: int, *, seed: int = 0, sweeps: int = 200):
    """The first variant's ``mde`` as reported (its median over ``sweeps`` null sweeps), and the power at it.

    Returns ``(mde in run sds, share of ``reps`` sweeps shifted by it in which the variant is called
    better)``: 0.8 when the reported figure is calibrated.
    """
    rng = np.random.default_rng(seed)
    reported = [analyze(pd.DataFrame(dict(zip(("m", "config", "seed"), sample(design, rng)))), "m", n_boot=1)
                .comparisons.loc[0, "mde"] for _ in range(sweeps)]
    mde = float(np.median(reported)) / design.scale
    hit = rejections(dataclasses.replace(design, shift=mde), reps, seed=seed + 1, dunnett=False)["noisefloor"]
    return mde, float(hit[:, 0].mean())


def flag_tradeoff(levels=(0.1, 0.15, 0.2), reps: int = 2000):
    """Power in the default design against the FWER with one variant 3x as noisy, per outlier-flag level.

    The flag (:data:`noisefloor.stats.moderation.OUTLIER_LEVEL`) decides when a variant keeps its own
    spread; the same seeds as the verdicts table.  Returns ``{level: (power, fwer)}``.
    """
    from noisefloor.stats import moderation

    kept = moderation.OUTLIER_LEVEL
    out = {}
    try:
        for level in levels:
            moderation.OUTLIER_LEVEL = level
            power = rejections(dataclasses.replace(SCENARIOS["default"], shift=1.5), reps, seed=2000,
                               dunnett=False)["noisefloor"][:, 0].mean()
            fwer = rejections(SCENARIOS["unequal variances (one variant 3x the sd)"], reps, seed=1006,
                              dunnett=False)["noisefloor"].any(axis=1).mean()
            out[level] = (float(power), float(fwer))
    finally:
        moderation.OUTLIER_LEVEL = kept
    return out


#: The adaptive design the simulations run: the default's 4 signal seeds, 4 more per round, at most 20.
ADAPTIVE = Schedule(signal=(0, 1, 2, 3), noise=tuple(range(20)), step=4, max_seeds=20)


def adaptive(design: Design, reps: int, *, schedule: Schedule = ADAPTIVE, seed: int = 0,
             spending: str = "obrien_fleming", futility: bool = True):
    """Adaptive experiments of ``design`` (its first round the design's own): what they called and what they spent.

    Every sweep is drawn at the cap (every variant at ``schedule.max_seeds``
    seeds) and replayed (:func:`noisefloor.stats.sequential.replay`), so a
    round sees exactly the runs it would have trained.  Returns a dict:
    ``reject`` (reps, variants) called better or worse; ``covered`` (reps,)
    every variant's interval holds its true difference; ``runs`` (reps,) runs
    trained; ``decided`` (reps, variants) better, worse or equivalent.
    """
    rng = np.random.default_rng(seed)
    full = dataclasses.replace(design, n_variant_runs=schedule.max_seeds,
                               n_baseline=max(design.n_baseline, schedule.baseline_count(schedule.rounds)))
    truth = design.truth()
    out = {k: [] for k in ("reject", "covered", "runs", "decided")}
    for _ in range(reps):
        y, c, s = sample(full, rng)
        res = replay(pd.DataFrame({"config": c, "seed": s, "m": y}), "m", schedule, n_boot=1, spending=spending,
                     futility=futility)
        comp = res.result.comparisons.set_index("config").loc[design.variants()]
        verdict = comp["verdict"].to_numpy()
        out["reject"].append(np.isin(verdict, ("better", "worse")))
        out["decided"].append(np.isin(verdict, ("better", "worse", "equivalent")))
        lo, hi = comp["ci_low"].to_numpy(float), comp["ci_high"].to_numpy(float)
        out["covered"].append(bool(np.all((lo <= truth) & (truth <= hi))))
        out["runs"].append(len(res.used))
    return {k: np.array(v) for k, v in out.items()}


SCENARIOS = {
    "default": Design(),
    "default, seed correlation 0.5": Design(rho=0.5),
    "balanced 10x10": Design(n_baseline=10, n_variants=9, n_variant_runs=10),
    "balanced 10x10, seed correlation 0.5": Design(n_baseline=10, n_variants=9, n_variant_runs=10, rho=0.5),
    "balanced 10x10, seed correlation 0.8": Design(n_baseline=10, n_variants=9, n_variant_runs=10, rho=0.8),
    "20 variants x 3 seeds (power at +3 sd)": Design(n_variants=20, n_variant_runs=3, alt_shift=3.0),
    "unequal variances (one variant 3x the sd)": Design(sd_mult=(3.0, 1.0, 1.0, 1.0)),
    "t(3) noise": Design(noise="t3"),
    "skewed noise (1 - Gamma(2))": Design(noise="skew"),
    "a variant whose seed effect is its own (seed corr. 0.5)": Design(rho=0.5, own_seed=(0,)),
    "one outlying run": Design(outlier=6.0),
    "one outlying baseline run": Design(baseline_outlier=6.0),
    "accuracy quantised to 1/287": Design(scale=0.015, level=0.9, quantum=1 / 287),
    "one variant at 4 of 20 seeds": Design(n_variants=1),
    "two configs at the same 4 seeds": Design(n_baseline=4, n_variants=1, n_variant_runs=4),
    "a baseline at 4 seeds, variants at 20": Design(n_baseline=4, n_variant_runs=20),
}

METHODS = ("noisefloor", "dunnett", "welch_holm", "paired_holm")


def design_row(name: str, reps: int, index: int) -> str:
    """One row of the verdicts table: FWER, power and simultaneous coverage, with the seeds that made it."""
    design = SCENARIOS[name]
    null = rejections(design, reps, seed=1000 + index)
    alt = rejections(dataclasses.replace(design, shift=design.alt_shift), reps, seed=2000 + index)
    fwer = [null[m].any(axis=1).mean() for m in METHODS]
    power = [alt[m][:, 0].mean() for m in METHODS]
    cover = [alt["covered"].mean(), alt["dunnett_covered"].mean()]
    return (f"| {name} | " + " | ".join(f"{x:.3f}" for x in fwer) + " | " + " | ".join(f"{x:.3f}" for x in power)
            + " | " + " | ".join(f"{x:.3f}" for x in cover) + " |")


def main(reps: int = 2000) -> None:
    """Print the README's tables."""
    se = np.sqrt(0.05 * 0.95 / reps)
    print(f"{reps} simulated sweeps per cell (a rate near 0.05 has standard error {se:.4f}).\n")
    print("| design | FWER: noisefloor | Dunnett | Welch + Holm | paired t + Holm | power: noisefloor | Dunnett "
          "| Welch + Holm | paired t + Holm | coverage: noisefloor | Dunnett |")
    print("|---" * 11 + "|")
    for i, name in enumerate(SCENARIOS):
        print(design_row(name, reps, i), flush=True)
    print("\n| interval | noise | runs | coverage |\n|---|---|---|---|")
    for noise in ("normal", "t3", "skew"):
        for n in (20, 40):
            print(f"| noise floor, 95 % | {noise} | {n} | {noise_floor_coverage(noise, n, reps, seed=n):.3f} |",
                  flush=True)
    for name in ("default", "unequal variances (one variant 3x the sd)", "balanced 10x10"):
        print(f"| hyperparameters' share, 95 % (true 0) | {name} | | "
              f"{share_coverage(SCENARIOS[name], reps, seed=7):.3f} |", flush=True)
    print("\n| design | reported mde (run sds) | power at it (target 0.80) |\n|---|---|---|")
    for name in ("default", "default, seed correlation 0.5", "20 variants x 3 seeds (power at +3 sd)"):
        mde, hit = power_at_reported_mde(SCENARIOS[name], reps, seed=5)
        print(f"| {name} | {mde:.2f} | {hit:.3f} |", flush=True)
    print("\n| a variant shifted by 1 baseline sd, inconclusive, rerun at its seeds_needed | decided | sweeps |\n"
          "|---|---|---|")
    for label, design in (("as noisy as the baseline", Design(shift=1.0)),
                          ("3x as noisy as the baseline", Design(shift=1.0, sd_mult=(3.0, 1.0, 1.0, 1.0)))):
        share, n = decided_at_asked(design, max(reps // 4, 50), seed=3)
        print(f"| {label} | {share:.3f} | {n} |", flush=True)


def adaptive_tables(reps: int = 500, part: str = "both", futility: bool = True) -> None:
    """Print the README's adaptive tables: the error under the stopping rule, and power against runs spent.

    ``part``: ``null`` (the error), ``power`` (power and runs, adaptive against fixed designs) or ``both``;
    ``futility``: whether the null designs' variants may stop early undecided (without it every look is
    taken, the stopping rule's hardest case).
    """
    sch = ADAPTIVE
    print(f"{reps} simulated adaptive experiments per row: first round 20 baseline seeds and 4 variants at 4, "
          f"{sch.step} more seeds per round to each open variant, at most {sch.max_seeds}.\n")
    if part in ("null", "both"):
        print("| design (no true difference) | futility | FWER | simultaneous coverage | runs trained (mean) |\n"
              "|---|---|---|---|---|")
        for i, name in enumerate(("default", "unequal variances (one variant 3x the sd)", "t(3) noise")):
            r = adaptive(SCENARIOS[name], reps, seed=4000 + i + (0 if futility else 10), futility=futility)
            print(f"| {name} | {'on' if futility else 'off'} | {r['reject'].any(axis=1).mean():.3f} | "
                  f"{r['covered'].mean():.3f} | {r['runs'].mean():.1f} |", flush=True)
    if part in ("power", "both"):
        print("\n| one variant +1.5 run sd | power | runs trained (mean) |\n|---|---|---|")
        for spending in ("obrien_fleming", "pocock"):
            r = adaptive(Design(shift=1.5), reps, seed=5000, spending=spending)
            print(f"| adaptive ({spending.replace('_', '-')}) | {r['reject'][:, 0].mean():.3f} | "
                  f"{r['runs'].mean():.1f} |", flush=True)
        for n in (4, 6, 8, 10, 12):
            hit = rejections(Design(shift=1.5, n_variant_runs=n), reps, seed=5001, dunnett=False)["noisefloor"]
            print(f"| fixed, {n} seeds per variant | {hit[:, 0].mean():.3f} | {20 + 4 * n} |", flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["adaptive"]:    # python tests/simulate.py adaptive [REPS [null|power [nofutility]]]
        adaptive_tables(int(sys.argv[2]) if len(sys.argv) > 2 else 500, sys.argv[3] if len(sys.argv) > 3 else "both",
                        futility=sys.argv[4:5] != ["nofutility"])
    elif sys.argv[1:2] == ["flag"]:        # python tests/simulate.py flag [REPS]: the outlier flag's trade-off
        for level, (power, fwer) in flag_tradeoff(reps=int(sys.argv[2]) if len(sys.argv) > 2 else 2000).items():
            print(f"flag level {level}: power {power:.3f} (default design), FWER {fwer:.3f} (one variant 3x as noisy)")
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
