"""Simulated sweeps with known truth, for checking the comparisons' error rates and power.

A run's metric is ``shift[config] + seed_effect[seed] + sd[config] * noise``
with ``var(seed_effect) = rho`` and ``var(noise) = 1 - rho``, so every config
without a shift has run-to-run variance 1 and seed correlation ``rho``. The
designs are the ones users run: the default (the baseline at 20 seeds, four
variants at four of them), a balanced factorial, unequal variances, an
outlying run and accuracy quantised to whole examples.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from noisefloor.stats import compare_variants


@dataclass(frozen=True)
class Design:
    """A sweep design and its truth."""

    n_baseline: int = 20
    n_variants: int = 4
    n_variant_runs: int = 4
    rho: float = 0.0                      # seed correlation
    shift: float = 0.0                    # true difference of the first variant, in run sds
    sd_mult: tuple = ()                   # per-variant sd multipliers (default all 1)
    outlier: float = 0.0                  # added to one run of the second variant
    quantum: float | None = None          # round every value to a multiple of this
    scale: float = 1.0                    # run sd in metric units
    level: float = 0.0                    # metric level (e.g. an accuracy around 0.9)
    names: tuple = field(default=())

    def variants(self):
        return [f"v{i}" for i in range(self.n_variants)]


def sample(design: Design, rng: np.random.Generator):
    """One simulated sweep: (values, configs, seeds)."""
    d = design
    seed_effect = rng.normal(0.0, np.sqrt(d.rho), max(d.n_baseline, d.n_variant_runs))
    noise_sd = np.sqrt(1.0 - d.rho)
    values, configs, seeds = [], [], []
    values.append(seed_effect[:d.n_baseline] + noise_sd * rng.normal(size=d.n_baseline))
    configs += ["baseline"] * d.n_baseline
    seeds += list(range(d.n_baseline))
    mult = d.sd_mult or (1.0,) * d.n_variants
    for i, name in enumerate(d.variants()):
        k = d.n_variant_runs
        v = (d.shift if i == 0 else 0.0) + seed_effect[:k] + noise_sd * mult[i] * rng.normal(size=k)
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


def rejections(design: Design, reps: int, *, seed: int = 0, alpha: float = 0.05):
    """Per method, a (reps, variants) boolean array: which variants it called different from the baseline.

    Methods: ``noisefloor`` (the package's comparisons), ``paired_holm``
    (paired t on the shared seeds + Holm) and ``welch_holm`` (Welch on all
    runs + Holm), and the two comparators' p-values (``p_paired``,
    ``p_welch``) for size-matched comparisons.
    """
    rng = np.random.default_rng(seed)
    names = design.variants()
    k = design.n_variant_runs
    ours = np.zeros((reps, len(names)), dtype=bool)
    base, var = [], []
    for r in range(reps):
        y, c, s = sample(design, rng)
        res = compare_variants(y, c, s, baseline="baseline", variants=names, alpha=alpha)
        ours[r] = np.isin(res.verdicts, ("better", "worse"))
        base.append(y[c == "baseline"])
        var.append(np.stack([y[c == n] for n in names]))
    b = np.stack(base)[:, None, :]           # reps x 1 x n_baseline
    v = np.stack(var)                        # reps x variants x k
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        # quantised values can make a pair of groups identical: scipy warns, the p-value is NaN -> 1
        warnings.simplefilter("ignore", RuntimeWarning)
        m = min(k, b.shape[-1])               # the shared seeds
        p_paired = np.nan_to_num(stats.ttest_rel(v[..., :m], np.broadcast_to(b[..., :m], v[..., :m].shape),
                                                 axis=2).pvalue, nan=1.0)
        p_welch = np.nan_to_num(stats.ttest_ind(v, b, axis=2, equal_var=False).pvalue, nan=1.0)
    return {"noisefloor": ours, "paired_holm": _holm(p_paired, alpha), "welch_holm": _holm(p_welch, alpha),
            "p_paired": p_paired, "p_welch": p_welch}


def size_matched_power(p_null, p_alt, alpha: float = 0.05) -> float:
    """Power of a min-p (Holm's first step) test whose threshold gives family-wise error ``alpha`` under the null.

    The threshold is the ``alpha`` quantile of the smallest p-value of the
    null sweeps; the power is the share of the alternative sweeps whose first
    variant's p-value falls below it.  This is how the power of a comparator
    that does not hold its nominal level is compared fairly.
    """
    threshold = np.quantile(p_null.min(axis=1), alpha)
    return float((p_alt[:, 0] < threshold).mean())


SCENARIOS = {
    "default": Design(),
    "default, seed correlation 0.5": Design(rho=0.5),
    "balanced 10x10": Design(n_baseline=10, n_variants=9, n_variant_runs=10),
    "balanced 10x10, seed correlation 0.5": Design(n_baseline=10, n_variants=9, n_variant_runs=10, rho=0.5),
    "unequal variances (one variant 3x the sd)": Design(sd_mult=(3.0, 1.0, 1.0, 1.0)),
    "one outlying run": Design(outlier=6.0),
    "accuracy quantised to 1/287": Design(scale=0.015, level=0.9, quantum=1 / 287),
    "one variant at 4 of 20 seeds": Design(n_variants=1),
    "two configs at the same 4 seeds": Design(n_baseline=4, n_variants=1, n_variant_runs=4),
    "a baseline at 4 seeds, variants at 20": Design(n_baseline=4, n_variant_runs=20),
}


def main(reps: int = 2000) -> None:
    """Print the family-wise error and power table of every scenario (the README's numbers)."""
    import dataclasses

    methods = ("noisefloor", "paired_holm", "welch_holm")
    print("| design | FWER: noisefloor | paired t + Holm | Welch + Holm | power: noisefloor | paired t + Holm "
          "| Welch + Holm |")
    print("|---" * 7 + "|")
    for i, (name, design) in enumerate(SCENARIOS.items()):
        null = rejections(design, reps, seed=1000 + i)
        alt = rejections(dataclasses.replace(design, shift=1.5), reps, seed=2000 + i)
        print(f"| {name} | " + " | ".join(f"{null[m].any(axis=1).mean():.3f}" for m in methods) + " | "
              + " | ".join(f"{alt[m][:, 0].mean():.3f}" for m in methods) + " |", flush=True)


if __name__ == "__main__":
    main()
