"""An adaptive experiment's rounds: what has run, what each variant's verdict is, what the next round trains.

The params' ``adaptive`` section sets the cap, the step and the budget;
:mod:`noisefloor.stats.sequential` holds the statistics (the looks' levels
and the replay of the rounds).  This module joins them to the runs folder:
a round's runs are ordinary (config, seed) runs, found and checked as the
runs table finds them (:mod:`noisefloor.aggregate`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .aggregate import collect_runs, stale_seeds
from .errors import NoisefloorError
from .params import Params


class AdaptiveError(NoisefloorError, ValueError):
    """The params have no adaptive section, or its runs cannot be analysed."""


def schedule(params: Params):
    """The :class:`~noisefloor.stats.sequential.Schedule` of ``params``' adaptive section."""
    from .stats.sequential import Schedule

    a = params.adaptive
    if a is None:
        raise AdaptiveError(f"{params.source}: no adaptive section (add adaptive.max_seeds to grow seeds by rounds)")
    return Schedule(signal=params.signal_seeds, noise=params.noise_seeds, step=a.step, max_seeds=a.max_seeds,
                    grow_baseline=a.grow_baseline)


def candidate_runs(params: Params) -> list[tuple[str, int, str]]:
    """Every (config, seed, stage) an adaptive experiment may train, up to the cap, in the order rounds add them."""
    sch = schedule(params)
    base = [(params.baseline, s, "noise") for s in sch.baseline_seeds(sch.rounds)]
    seeds = sch.order(sch.max_seeds)
    return base + [(c, s, "signal") for c in params.configs for s in seeds]


def finished_runs(params: Params, runs_dir: str | Path) -> pd.DataFrame:
    """The runs table of the candidate runs whose outputs exist and belong to these params (the others are
    not yet run, or stale)."""
    rows = []
    for config in (params.baseline, *params.configs):
        mine = [r for r in candidate_runs(params) if r[0] == config]
        stale = set(stale_seeds(params, runs_dir, config, [s for _, s, _ in mine]))
        rows += [r for r in mine if r[1] not in stale]
    return collect_runs(params, runs_dir, rows) if rows else pd.DataFrame(columns=["config", "seed"])


@dataclass(frozen=True)
class Plan:
    """Where an adaptive experiment stands.

    Attributes
    ----------
    result : AdaptiveResult
        The replay of the rounds that have run (:func:`noisefloor.stats.sequential.replay`).
    next_runs : tuple of (str, int)
        What the next round trains; empty when nothing is left to train.
    why_done : str
        Why nothing is left ("" while runs remain): every variant decided,
        futile or at the cap, or the run budget reached.
    """

    result: object
    next_runs: tuple
    why_done: str


def plan(params: Params, runs_dir: str | Path, runs: pd.DataFrame | None = None) -> Plan:
    """Replay the rounds that have run and say what the next one trains (changes nothing).

    ``runs``: the runs table, when already read (else the finished candidate runs in ``runs_dir``).
    """
    from .stats.sequential import replay

    sch = schedule(params)
    runs = finished_runs(params, runs_dir) if runs is None else runs
    st = params.stats
    first = [(params.baseline, s) for s in params.noise_seeds] + [(c, s) for c in params.configs
                                                                  for s in params.signal_seeds]
    have = set(zip(runs["config"], runs["seed"].astype(int))) if len(runs) else set()
    if any(pair not in have for pair in first):
        missing = tuple(pair for pair in first if pair not in have)
        return Plan(result=None, next_runs=missing, why_done="")
    a = params.adaptive
    result = replay(runs, st.metric, sch, baseline=params.baseline, alpha=st.alpha, correction=st.correction,
                    spending=a.spending, futility=a.futility, equivalence_margin=st.equivalence_margin,
                    direction=st.direction, confidence_level=st.confidence_level, power=st.power, n_boot=st.n_boot)
    nxt = result.next_round
    if not nxt:
        return Plan(result=result, next_runs=(), why_done="every variant is decided, futile or at the cap")
    if a.max_runs is not None and len(have) + len(nxt) > a.max_runs:
        return Plan(result=result, next_runs=(), why_done=f"the next round's {len(nxt)} runs would pass "
                                                          f"adaptive.max_runs ({a.max_runs}; {len(have)} run)")
    return Plan(result=result, next_runs=nxt, why_done="")


def plan_table(p: Plan, params: Params) -> pd.DataFrame:
    """One row per config: its seeds so far, its verdict, the round it stopped in (or open), what the next round adds."""
    adds = {}
    for config, seed in p.next_runs:
        adds.setdefault(config, []).append(seed)
    rows = []
    comp = p.result.comparisons.set_index("config") if p.result is not None and len(p.result.comparisons) else None
    last = p.result.last if p.result is not None else None
    for config in (params.baseline, *params.configs):
        if config == params.baseline:
            n = last.summary.n_baseline if last is not None else None
            verdict, state = "baseline", ""
        elif comp is not None and config in comp.index:
            row = comp.loc[config]
            n, verdict = int(row["n"]), row["verdict"]
            state = f"{row['stopped']} (round {int(row['round'])})" if row["stopped"] != "open" else "open"
        else:
            n, verdict, state = None, "", "open"
        rows.append({"config": config, "seeds": n, "verdict": verdict, "stopped": state,
                     "next round": len(adds.get(config, []))})
    return pd.DataFrame(rows)
