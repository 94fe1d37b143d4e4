"""An adaptive experiment's rounds: what has run, what each variant's verdict is, what the next round trains.

The params' ``adaptive`` section sets the cap, the step and the budget;
:mod:`noisefloor.stats.sequential` holds the statistics (the looks' levels
and the replay of the rounds).  This module joins them to the runs folder:
a round's runs are ordinary (config, seed) runs, found and checked as the
runs table finds them (:mod:`noisefloor.aggregate`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .aggregate import collect_runs, stale_seeds
from .display import stopped_words
from .errors import NoisefloorError
from .params import Params
from .pipeline import ADAPTIVE_RECORD
from .records import RoundRecord


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
    candidates = candidate_runs(params)
    for config in (params.baseline, *params.configs):
        mine = [r for r in candidates if r[0] == config]
        stale = set(stale_seeds(params, runs_dir, config, [s for _, s, _ in mine]))
        rows += [r for r in mine if r[1] not in stale]
    return collect_runs(params, runs_dir, rows) if rows else pd.DataFrame(columns=["config", "seed"])


def by_config(pairs) -> dict[str, list[int]]:
    """(config, seed) pairs as {config: its seeds}, in the pairs' order."""
    out: dict[str, list[int]] = {}
    for config, seed in pairs:
        out.setdefault(config, []).append(seed)
    return out


def _replay(params: Params, runs: pd.DataFrame, metric: str, **how):
    """:func:`noisefloor.stats.sequential.replay` with the params' adaptive settings (``how``: analyze's
    keywords, and ``rounds``)."""
    from .stats.sequential import replay

    a = params.adaptive
    return replay(runs, metric, schedule(params), spending=a.spending, futility=a.futility, max_runs=a.max_runs,
                  **how)


def experiment_runs(params: Params, runs_dir: str | Path, rounds: int | None = None) -> list[tuple[str, int, str]]:
    """The (config, seed, stage) runs of the rounds so far (up to ``rounds``), in the order rounds added them.

    The first round's runs when it is not complete (reading them then names the missing file).
    """
    p = plan(params, runs_dir, rounds=rounds)
    pairs = p.result.used if p.result is not None else params.runs()
    return [(c, s, "noise" if c == params.baseline else "signal") for c, s in pairs]


@dataclass(frozen=True)
class Plan:
    """Where an adaptive experiment stands.

    Attributes
    ----------
    result : AdaptiveResult or None
        The replay of the rounds that have run (:func:`noisefloor.stats.sequential.replay`); None while
        round 1 is not complete.
    next_runs : tuple of (str, int)
        What the next round trains; empty when nothing is left to train.
    why_done : str
        Why nothing is left ("" while runs remain): every variant decided,
        futile or at the cap, or the run budget reached.
    """

    result: object
    next_runs: tuple
    why_done: str


def plan(params: Params, runs_dir: str | Path, runs: pd.DataFrame | None = None, rounds: int | None = None) -> Plan:
    """Replay the rounds that have run (at most ``rounds``) and say what the next one trains (changes nothing).

    ``runs``: the runs table, when already read (else the finished candidate runs in ``runs_dir``).
    """
    runs = finished_runs(params, runs_dir) if runs is None else runs
    st = params.stats
    have = set(zip(runs["config"], runs["seed"].astype(int))) if len(runs) else set()
    missing = tuple(pair for pair in params.runs() if pair not in have)      # round 1: the fixed design
    if missing:
        return Plan(result=None, next_runs=missing, why_done="")
    result = _replay(params, runs, st.metric, baseline=params.baseline, alpha=st.alpha, correction=st.correction,
                     equivalence_margin=st.equivalence_margin, direction=st.direction,
                     confidence_level=st.confidence_level, power=st.power, n_boot=st.n_boot, rounds=rounds)
    if "budget" in result.state.values():
        return Plan(result=result, next_runs=(), why_done=f"the next round would pass adaptive.max_runs "
                                                          f"({params.adaptive.max_runs}; {len(result.used)} run)")
    if not result.next_round:
        return Plan(result=result, next_runs=(), why_done="every variant is decided, futile or at the cap")
    return Plan(result=result, next_runs=tuple(pair for pair in result.next_round if pair not in have), why_done="")


def record_path(folder: str | Path, k: int) -> Path:
    """Where round ``k``'s record lives in the records' ``folder`` (``results/adaptive``)."""
    return Path(folder) / Path(ADAPTIVE_RECORD.format(round=k)).name


def records(params: Params, runs_dir: str | Path, rounds: int | None = None) -> list[RoundRecord]:
    """The records of rounds 1, 2, ... (at most ``rounds``), from one replay: each the runs the round after it
    adds (none when the experiment is done).

    Without an adaptive section: one record saying so, with nothing to add (the engines' step still runs).
    """
    if params.adaptive is None:
        return [RoundRecord(rounds or 1, why_done="no adaptive section")]
    p = plan(params, runs_dir, rounds=rounds)
    if p.result is None:
        raise AdaptiveError(f"{runs_dir}: round 1 is not complete ({len(p.next_runs)} runs missing)")
    added = p.result.added
    nexts = [*added[1:], p.result.next_round]
    return [RoundRecord(k, tuple((c, int(s)) for c, s in nxt), dict(vars(params.adaptive)),
                        p.why_done if k == len(added) else "") for k, nxt in enumerate(nexts, start=1)]


def record(params: Params, runs_dir: str | Path, rounds: int) -> RoundRecord:
    """The record of rounds 1 to ``rounds`` (Snakemake's checkpoint for round ``rounds``)."""
    return dataclasses.replace(records(params, runs_dir, rounds)[-1], rounds=rounds)


def analyze(params: Params, runs: pd.DataFrame, metric: str, **how):
    """The analysis of an adaptive experiment's runs: :func:`~noisefloor.stats.analyze` over the rounds' runs,
    each variant's verdict and interval from the look that stopped it (``how``: analyze's keywords)."""
    result = _replay(params, runs, metric, **how).result
    if result is None:
        raise AdaptiveError(f"{params.source}: the first round's runs are not all in the runs table "
                            "(every baseline noise seed and every variant's signal seeds)")
    return result


def plan_table(p: Plan, params: Params) -> pd.DataFrame:
    """One row per config: its seeds so far, its verdict, the round it stopped in (or open), what the next round adds."""
    adds = by_config(p.next_runs)
    rows = []
    analysis = p.result.result if p.result is not None else None
    comp = analysis.comparisons.set_index("config") if analysis is not None else None
    looks = analysis.summary.adaptive.configs if analysis is not None else {}
    for config in (params.baseline, *params.configs):
        if config == params.baseline:
            n = analysis.summary.n_baseline if analysis is not None else None
            verdict, state = "baseline", ""
        elif comp is not None and config in comp.index and config in looks:
            look = looks[config]
            n, verdict, state = look.n, comp.loc[config, "verdict"], stopped_words(look)
        else:
            n, verdict, state = None, "", "open"
        rows.append({"config": config, "seeds": n, "verdict": verdict, "status": state,
                     "next round": len(adds.get(config, []))})
    return pd.DataFrame(rows)
