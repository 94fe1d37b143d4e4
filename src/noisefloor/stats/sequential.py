"""Looking again after more seeds: group-sequential levels for an adaptive experiment.

An adaptive experiment analyses its runs after every round and gives the
next round's seeds only to the variants still open.  Each look is a test;
tested at the fixed design's level every time, the chance of a false
"better" or "worse" somewhere along the way grows with the number of looks.
Here the family's error is spent across the looks with a Lan & DeMets
(1983) spending function, and the boundaries are the exact ones for a
statistic observed at increasing information (a Brownian motion in
information; Jennison & Turnbull 2000, ch. 19, computed by recursive
numerical integration), not a Bonferroni split across looks: the looks of
one variant are strongly correlated (round 2 holds round 1's runs), which
the exact boundaries use.

The boundaries are those of one comparison, at the family's per-comparison
level (Šidák's split over the variants, as the fixed design); the verdicts
then test each open variant at look ``k`` at the nominal level
``nominal[k]``.  A variant stops at the first look where its interval at that
level excludes 0 or fits within the margin; its reported interval is that
look's, a repeated confidence interval (Jennison & Turnbull 2000, ch. 9)
that covers together with the other looks' at the family's level.  Stopping
a variant that cannot be decided within the cap (futility) rejects nothing,
so it never raises the error rate.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize
from scipy import special as _special

from ._core import _check_unit_interval
from .multiplicity import per_comparison_alpha
# The spending functions (vocab.SPENDING): Lan & DeMets 1983; Kim & DeMets 1987 for the Pocock type.
from ..summary import Adaptive, Look
from ..vocab import DECIDED, SPENDING

#: Grid points per unit of z in the numerical integration (Jennison & Turnbull use about 12 per sd with
#: Simpson's rule; a finer trapezoid costs nothing here and keeps the spent error within 1e-6).
_GRID_PER_UNIT = 64
_Z_RANGE = 9.0


def spent(t, alpha: float, spending: str = "obrien_fleming"):
    """The error spent by information fraction ``t`` (0 to 1) under ``spending``.

    ``obrien_fleming``: ``2 - 2 Phi(z_{1 - alpha/2} / sqrt(t))``, little early and most at the end;
    ``pocock``: ``alpha log(1 + (e - 1) t)``, close to even across the looks.
    """
    _check_unit_interval("alpha", alpha)
    t = np.clip(np.asarray(t, dtype=float), 0.0, 1.0)
    if spending == "obrien_fleming":
        with np.errstate(divide="ignore"):
            return np.where(t > 0, 2 - 2 * _special.ndtr(_special.ndtri(1 - alpha / 2) / np.sqrt(t)), 0.0)
    if spending == "pocock":
        return alpha * np.log1p((math.e - 1) * t)
    raise ValueError(f"spending must be one of {', '.join(SPENDING)}; got {spending!r}")


@dataclass(frozen=True)
class Boundaries:
    """Two-sided group-sequential boundaries of one comparison.

    Attributes
    ----------
    information : tuple of float
        The information fraction at each look (increasing, the last 1).
    z : tuple of float
        The critical |z| at each look.
    nominal : tuple of float
        ``2 (1 - Phi(z))``: the two-sided level at which each look is tested.
    spent : tuple of float
        The error spent up to each look; the last is the comparison's level.
    """

    information: tuple
    z: tuple
    nominal: tuple
    spent: tuple


def boundaries(information, alpha: float, spending: str = "obrien_fleming") -> Boundaries:
    """Critical values at looks made at the given information fractions.

    ``information``: increasing, positive; divided by its last value, so the
    last look spends all of ``alpha`` (two-sided).  At look ``k`` the critical
    value ``c_k`` solves ``P(|Z_j| < c_j for j < k, |Z_k| >= c_k) =
    spent(t_k) - spent(t_{k-1})`` for ``Z_k`` a standardised sum at
    information ``t_k`` (independent increments), by recursive numerical
    integration of the continuation density on a grid.
    """
    _check_unit_interval("alpha", alpha)
    info = np.asarray(information, dtype=float)
    if info.ndim != 1 or info.size == 0 or np.any(info <= 0) or np.any(np.diff(info) <= 0):
        raise ValueError("information must be positive and increasing")
    t = info / info[-1]
    cum = spent(t, alpha, spending)
    grid_n = int(2 * _Z_RANGE * _GRID_PER_UNIT) + 1
    z_grid = np.linspace(-_Z_RANGE, _Z_RANGE, grid_n)
    step = z_grid[1] - z_grid[0]
    weights = np.full(grid_n, step)
    weights[[0, -1]] = step / 2
    density = None          # of Z at the previous look, on z_grid, zero outside its continuation region
    zs, previous = [], 0.0
    for k, tk in enumerate(t):
        target = float(cum[k] - previous)
        if density is None:
            def exit_prob(c):
                return 2 * _special.ndtr(-c)
        else:
            tp = t[k - 1]
            sd = math.sqrt(tk - tp)
            mass = density * weights
            shift = z_grid * math.sqrt(tp)

            def exit_prob(c, mass=mass, shift=shift, sd=sd, tk=tk):
                edge = c * math.sqrt(tk)
                return float(np.sum(mass * (_special.ndtr((-edge - shift) / sd) + _special.ndtr((shift - edge) / sd))))
        if target <= 0:
            c = math.inf
        else:
            c = optimize.brentq(lambda c: exit_prob(c) - target, 1e-6, 40.0, xtol=1e-10)
        zs.append(c)
        previous = float(cum[k])
        # The density of Z at this look, on the paths that continue (|Z| < c).
        if density is None:
            new = np.exp(-z_grid**2 / 2) / math.sqrt(2 * math.pi)
        else:
            tp = t[k - 1]
            sd = math.sqrt(tk - tp)
            # Z_k sqrt(t_k) = Z_{k-1} sqrt(t_{k-1}) + N(0, t_k - t_{k-1})
            arg = (z_grid[:, None] * math.sqrt(tk) - z_grid[None, :] * math.sqrt(tp)) / sd
            kernel = np.exp(-arg**2 / 2) / math.sqrt(2 * math.pi) * math.sqrt(tk) / sd
            new = kernel @ (density * weights)
        density = np.where(np.abs(z_grid) < c, new, 0.0)
    z = tuple(float(c) for c in zs)
    nominal = tuple(float(2 * _special.ndtr(-c)) if math.isfinite(c) else 0.0 for c in z)
    return Boundaries(information=tuple(float(x) for x in t), z=z, nominal=nominal,
                      spent=tuple(float(x) for x in cum))


# --------------------------------------------------------------------------- the rounds of an experiment


@dataclass(frozen=True)
class Schedule:
    """Which seeds each round trains.

    Attributes
    ----------
    signal : tuple of int
        The variants' seeds in round 1 (the fixed design's).
    noise : tuple of int
        The baseline's seeds in round 1.
    step : int
        Seeds added per round to each variant still open.
    max_seeds : int
        A variant's seeds never exceed this (the cap).
    grow_baseline : bool
        Whether the baseline grows with the variants once they pass its seeds:
        in round ``k`` it then has as many seeds as a variant open in round
        ``k`` (:meth:`variant_count`).

    Seeds are added in one order: the signal seeds, the noise seeds not among
    them (in the file's order), then the integers above every noise seed.  A
    round's runs are therefore the same (config, seed) runs a fixed design of
    that size trains: growing never retrains, and the variants stay paired by
    seed with the baseline as long as its seeds last.
    """

    signal: tuple
    noise: tuple
    step: int
    max_seeds: int
    grow_baseline: bool = False

    @property
    def rounds(self) -> int:
        """Looks in all, the first included."""
        return 1 + max(0, math.ceil((self.max_seeds - len(self.signal)) / self.step))

    def order(self, count: int) -> tuple:
        """The first ``count`` seeds in the order rounds add them."""
        first = list(self.signal) + [s for s in self.noise if s not in set(self.signal)]
        above = max(max(self.noise, default=-1), max(self.signal, default=-1)) + 1
        while len(first) < count:
            first.append(above)
            above += 1
        return tuple(first[:count])

    def variant_count(self, k: int) -> int:
        """A variant's seeds at round ``k`` (1-based) if it is still open."""
        return min(len(self.signal) + (k - 1) * self.step, self.max_seeds)

    def baseline_count(self, k: int) -> int:
        """The baseline's seeds at round ``k``."""
        base = len(self.noise)
        return max(base, self.variant_count(k)) if self.grow_baseline else base

    def baseline_seeds(self, k: int) -> tuple:
        n = self.baseline_count(k)
        return tuple(self.noise) + self.order(n)[len(self.noise):] if n > len(self.noise) else tuple(self.noise)

    def information(self) -> np.ndarray:
        """A comparison's information at each round, for a variant open throughout (equal spreads)."""
        k = np.arange(1, self.rounds + 1)
        nv = np.array([self.variant_count(i) for i in k], dtype=float)
        nb = np.array([self.baseline_count(i) for i in k], dtype=float)
        return 1.0 / (1.0 / nv + 1.0 / nb)


def family_alpha(per_comparison: float, m: int, correction: str = "sidak") -> float:
    """The family level whose per-comparison level (:func:`~.multiplicity.per_comparison_alpha`) is ``per_comparison``."""
    if m <= 1 or correction == "none":
        return float(per_comparison)
    if correction == "bonferroni":
        return float(per_comparison) * m
    return -math.expm1(m * math.log1p(-per_comparison))


#: The power a variant must still have at the cap to go on (futility below it).
FUTILITY_POWER = 0.5
#: A stopped variant's columns taken at the last look's level (what more seeds would do), not its look's.
PLANNING_COLUMNS = ("mde", "mde_upper", "seeds_needed", "seeds_needed_upper", "seeds_needed_to", "seeds_for_margin")


#: The columns of :attr:`AdaptiveResult.rounds`.
ROUND_COLUMNS = ("round", "config", "n", "verdict", "stopped", "level")


@dataclass(frozen=True)
class AdaptiveResult:
    """What the rounds of an adaptive experiment found so far.

    Attributes
    ----------
    result : AnalysisResult or None
        The analysis of every run the rounds used, each variant's comparison
        taken from the look that stopped it (or its last look): its verdict,
        and its interval, a repeated confidence interval, simultaneous with
        the others' at ``1 - alpha`` across every look.  None before round 1
        is complete.
    rounds : pandas.DataFrame
        One row per (round, variant) analysed, columns :data:`ROUND_COLUMNS`:
        ``stopped`` is ``decided``, ``futile`` (the cap would not decide it),
        ``cap`` or ``open``; ``level`` the per-comparison level of that look.
    state : dict
        Each variant's ``stopped`` after the last round analysed; ``budget``
        for a variant still open when the next round would pass ``max_runs``.
    next_round : tuple of (str, int)
        The (config, seed) runs the next round adds (some may exist already);
        empty when every variant is decided, futile or capped.
    added : tuple of tuple of (str, int)
        Per round analysed, the runs it added (round 1's: the fixed design's).
    boundaries : Boundaries
        The looks' levels (one comparison's, at the per-comparison level).
    """

    result: object
    rounds: pd.DataFrame
    state: dict
    next_round: tuple
    added: tuple
    boundaries: Boundaries

    @property
    def used(self) -> tuple:
        """Every run the analysed rounds used, in the order the rounds added them."""
        return tuple(pair for runs in self.added for pair in runs)


def _testable(row) -> bool:
    """Whether the look could test the variant at all (two usable runs and a spread): one that could not
    stays open, whatever futility says, so more runs can make it testable."""
    return row["n"] >= 2 and bool(np.isfinite(row["std_moderated"]))


def _would_decide(row, schedule: Schedule, level: float, margin: float, noise_sd: float) -> bool:
    """Whether the variant is at least as likely as not to be decided at the cap (at the last look's level)."""
    from .power import seeds_for_equivalence, seeds_to_detect

    sd = row["std_moderated"]
    kw = dict(n_baseline=schedule.baseline_count(schedule.rounds), alpha=level, power=FUTILITY_POWER,
              sd_baseline=noise_sd)
    detect = seeds_to_detect(row["diff"], sd, **kw)
    equiv = seeds_for_equivalence(row["diff"], sd, margin, **kw)
    need = np.fmin(detect, equiv)
    return bool(np.isfinite(need) and need <= schedule.max_seeds)


def replay(runs: pd.DataFrame, metric: str, schedule: Schedule, *, baseline: str = "baseline", alpha: float = 0.05,
           correction: str = "sidak", spending: str = "obrien_fleming", futility: bool = True,
           equivalence_margin: float | None = None, rounds: int | None = None, max_runs: int | None = None,
           **analyze_kw) -> AdaptiveResult:
    """Replay an adaptive experiment's rounds over its runs, and say what the next round adds.

    Round ``k`` analyses every config at the seeds that round gives it (a
    variant stopped earlier keeps the seeds it stopped at) with
    :func:`~.analyze.analyze`, each variant tested at the look's nominal
    level (:func:`boundaries` at the family's per-comparison level, Šidák's or
    Bonferroni's split over all variants as in a fixed design).  A variant
    stops when its verdict is better, worse or equivalent, when (with
    ``futility``) even the cap is less likely than not to decide it, or at the
    cap.  The replay ends at the first round whose runs the table lacks,
    after ``rounds`` rounds, or before a round that would take the runs past
    ``max_runs`` (the variants still open then stop as ``budget``).  ``result`` is then the analysis of every run the
    rounds used, each variant's row taken from the look that stopped it (or
    its last).  Deterministic: the same runs give the same rounds.
    """
    from .analyze import analyze

    variants = [c for c in pd.unique(runs["config"]) if c != baseline]
    m = max(1, len(variants))
    per = per_comparison_alpha(alpha, m, correction)
    bnd = boundaries(schedule.information(), per, spending)
    pairs = pd.Series(list(zip(runs["config"], runs["seed"].astype(int))), index=runs.index)
    have = set(pairs)
    seeds_of = {v: schedule.order(schedule.variant_count(1)) for v in variants}
    state = {v: "open" for v in variants}
    rows, history, last, used, per_round, nxt = {}, [], None, [], [], ()
    margin = equivalence_margin
    limit = schedule.rounds if rounds is None else min(rounds, schedule.rounds)
    for k in range(1, schedule.rounds + 1):
        for v in variants:
            if state[v] == "open":
                seeds_of[v] = schedule.order(schedule.variant_count(k))
        wanted = [(baseline, s) for s in schedule.baseline_seeds(k)] + [(v, s) for v in variants for s in seeds_of[v]]
        taken = set(used)
        added = tuple(pair for pair in wanted if pair not in taken)
        if max_runs is not None and len(used) + len(added) > max_runs:
            state.update({v: "budget" for v in variants if state[v] == "open"})
            break
        if k > limit or any(pair not in have for pair in added):
            nxt = added
            break
        used += list(added)
        per_round.append(added)
        level = bnd.nominal[k - 1]
        data = runs.loc[pairs.isin(set(wanted))]

        def look(at, family=m):
            return analyze(data, metric, baseline=baseline, alpha=family_alpha(at, family, correction),
                           correction=correction, equivalence_margin=margin, **analyze_kw)

        last = look(level)
        # The margin is fixed at round 1 (the noise floor of the baseline's noise seeds, by default): a
        # baseline that grows (grow_baseline) must not move what "equivalent" means between looks.
        first = last.summary.equivalence_margin
        if margin is None and first is not None and math.isfinite(first) and first > 0:
            margin = float(first)
        family = last.summary.family_size or m
        if family != m:      # a variant this look cannot test leaves the others' split to the family it has
            last = look(level, family)
        planning = None      # the seeds columns at the last look's level, for the variants that stop here
        comp = last.comparisons.set_index("config")
        for v in variants:
            if state[v] != "open":
                continue
            row = comp.loc[v].copy()
            # On the family's scale across the looks: below alpha exactly when this look decides it.
            row["p_adjusted"] = min(1.0, row["p_adjusted"] * alpha / family_alpha(level, m, correction))
            if row["verdict"] in DECIDED:
                state[v] = "decided"
            elif k == schedule.rounds:
                state[v] = "cap"
            elif futility and _testable(row) and not _would_decide(row, schedule, bnd.nominal[-1], margin,
                                                                   last.summary.noise_floor):
                state[v] = "futile"
            if state[v] != "open":
                # What more seeds would do in a new experiment is a question at the last look's level, not
                # at this look's (1.6e-5 in round 1 of five): mde and the seeds columns are taken there.
                planning = look(bnd.nominal[-1], family) if planning is None else planning
                plan_row = planning.comparisons.set_index("config").loc[v]
                for col in PLANNING_COLUMNS:
                    row[col] = plan_row[col]
            rows[v] = row
            history.append({"round": k, "config": v, "n": int(row["n"]), "verdict": row["verdict"],
                            "stopped": state[v], "level": level})
        if all(s != "open" for s in state.values()):
            break
    looks = pd.DataFrame([rows[v] for v in variants if v in rows]).rename_axis("config").reset_index()
    result = None
    if last is not None:
        result = analyze(runs.loc[pairs.isin(set(used))], metric, baseline=baseline, alpha=alpha,
                         correction=correction, equivalence_margin=margin, looks=looks, **analyze_kw)
        stop = {r["config"]: r for r in history}          # each variant's last look
        record = Adaptive(
            spending=spending, max_seeds=schedule.max_seeds, step=schedule.step,
            rounds=int(max(r["round"] for r in history)), runs=len(used),
            runs_at_cap=schedule.baseline_count(schedule.rounds) + len(variants) * schedule.max_seeds,
            configs={v: Look(round=int(stop[v]["round"]), stopped=state[v], n=int(stop[v]["n"]),
                             level=float(stop[v]["level"])) for v in variants if v in stop},
            next_round=[[c, int(s)] for c, s in nxt],
        )
        source = "params" if equivalence_margin is not None else "noise floor"
        result = dataclasses.replace(result, summary=dataclasses.replace(
            result.summary, adaptive=record, equivalence_margin_source=source))
    return AdaptiveResult(result=result, rounds=pd.DataFrame(history, columns=list(ROUND_COLUMNS)),
                          state=dict(state), next_round=nxt, added=tuple(per_round), boundaries=bnd)
