"""Which hyperparameters move the metric beyond seed noise, in agreement with the verdicts.

A hyperparameter is judged from the same runs and the same test as the
variants: its *one-at-a-time* variants (configs that differ from the
baseline in that hyperparameter only) are compared with the baseline in
:mod:`noisefloor.stats.compare`, and the hyperparameter

- ``matters`` when any of them is ``better`` or ``worse``;
- is ``negligible`` when every one of them is ``equivalent``;
- is ``inconclusive`` otherwise, ``insufficient_runs`` when none has a test.

Its p-value is the smallest of those variants' p-values, adjusted within the
variants' family (so a hyperparameter "matters" exactly when one of its
variants' intervals excludes 0).  Hyperparameters with no one-at-a-time
variant (a grid that never holds the others at the baseline's values) are
tested with Welch's ANOVA across their levels over every run, adjusted as a
family of their own; the other hyperparameters' effects then sit in the
within-level spread, which makes that test conservative.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from ._core import AnalysisError
from .multiplicity import adjust_pvalues
from .variance import welch_anova
from ..vocab import Importance, Verdict, hp_column, hp_name, is_hp_column

IMPORTANCE_COLUMNS = (
    "hparam", "column", "design", "n_levels", "n_runs", "configs", "effect", "effect_over_noise",
    "test", "p_value", "p_adjusted", "verdict", "direction",
)


def resolve_hparams(runs: pd.DataFrame, hparams) -> list[str]:
    """The hyperparameter columns: every ``hp.*`` column, or the named ones."""
    if hparams is None:
        return [c for c in runs.columns if is_hp_column(c)]
    out = []
    for name in hparams:
        if name in runs.columns:
            out.append(name)
        elif hp_column(name) in runs.columns:
            out.append(hp_column(name))
        else:
            raise AnalysisError(f"hyperparameter {name!r} has no column 'hp.{name}' in the runs table")
    return out


def _same(a, b) -> bool:
    return (pd.isna(a) and pd.isna(b)) or a == b


def hparam_importance(
    runs: pd.DataFrame,
    metric: str,
    comparisons: pd.DataFrame,
    *,
    baseline: str,
    hparams: Sequence[str],
    noise_floor: float,
    alpha: float = 0.05,
    correction: str = "sidak",
    search: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per hyperparameter that takes at least two values.

    Parameters
    ----------
    runs : pandas.DataFrame
        Usable runs (``config``, the metric, the ``hparams`` columns).
    metric : str
        Metric column.
    comparisons : pandas.DataFrame
        The variants' comparisons (``config``, ``n``, ``diff``, ``p_value``,
        ``p_adjusted``, ``verdict``).
    baseline : str
        The baseline config, whose values anchor the one-at-a-time design.
    hparams : sequence of str
        Hyperparameter columns (see :func:`resolve_hparams`).
    noise_floor : float
        The baseline's noise floor, the unit of ``effect_over_noise``.
    alpha, correction
        As for the verdicts.
    search : pandas.DataFrame, optional
        A search's marginal importance (:func:`noisefloor.stats.marginal.marginal_importance`):
        a hyperparameter it varied is judged there (design ``search``: its
        permutation test over the searched configs), as the search's figure
        and the answer judge it, even where one searched config happens to
        change it alone.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`IMPORTANCE_COLUMNS`; ``effect`` is the largest
        |difference| from the baseline among the one-at-a-time variants, or
        the range of the level means for an ``all_runs`` or ``search`` row.
    """
    searched = {} if search is None else {str(x.hparam): x for x in search.itertuples(index=False)}
    per_config = runs.groupby("config", sort=False)[list(hparams)].first() if hparams else None
    comp = comparisons.set_index("config") if len(comparisons) else comparisons
    rows = []
    for col in hparams:
        if per_config[col].nunique(dropna=False) < 2:
            continue
        row = dict.fromkeys(IMPORTANCE_COLUMNS, math.nan)
        row.update(hparam=hp_name(col), column=col)
        oat = []
        if baseline in per_config.index and hp_name(col) not in searched:   # (a search's own: judged there)
            base = per_config.loc[baseline]
            others = [c for c in hparams if c != col]
            for name, values in per_config.iterrows():
                if name == baseline or _same(values[col], base[col]) or name not in comp.index:
                    continue
                if all(_same(values[o], base[o]) for o in others):
                    oat.append(name)
        if oat:
            sub = comp.loc[oat]
            verdicts = set(sub["verdict"])
            tested = sub[sub["verdict"] != Verdict.INSUFFICIENT_RUNS]
            decided = verdicts & {Verdict.BETTER, Verdict.WORSE}
            if decided:
                verdict = Importance.MATTERS
                # the way it matters: better or worse when all its decided variants agree, both otherwise
                row["direction"] = str(next(iter(decided))) if len(decided) == 1 else "both"
            elif len(tested) and set(tested["verdict"]) == {Verdict.EQUIVALENT}:
                verdict = Importance.NEGLIGIBLE
            elif not len(tested):
                verdict = Importance.INSUFFICIENT_RUNS
            else:
                verdict = Importance.INCONCLUSIVE
            levels = {repr(per_config.loc[baseline, col])} | {repr(per_config.loc[c, col]) for c in oat}
            diffs = sub["diff"].to_numpy(dtype=float)
            effect = float(np.nanmax(np.abs(diffs))) if np.isfinite(diffs).any() else math.nan
            row.update(design="one_at_a_time", test="variant comparisons", configs=";".join(map(str, oat)),
                       n_levels=len(levels), n_runs=int(sub["n"].sum() + (runs["config"] == baseline).sum()),
                       effect=effect, p_value=float(np.nanmin(sub["p_value"])) if sub["p_value"].notna().any()
                       else math.nan,
                       p_adjusted=float(np.nanmin(sub["p_adjusted"])) if sub["p_adjusted"].notna().any()
                       else math.nan,
                       verdict=verdict)
        elif hp_name(col) in searched:
            x = searched[hp_name(col)]
            p_adj = float(x.p_adjusted)
            row.update(design="search", test="permutation over the search's configs", configs="",
                       n_levels=int(x.n_levels), n_runs=int(x.n_configs), effect=float(x.effect),
                       p_value=float(x.p_value), p_adjusted=p_adj,
                       verdict=Importance.MATTERS if p_adj < alpha else Importance.INCONCLUSIVE)
        else:
            levels = runs[col].astype(object).where(runs[col].notna(), "<NA>").to_numpy()
            res = welch_anova(runs[metric].to_numpy(dtype=float), levels)
            means = runs.groupby(levels, sort=False)[metric].mean()
            row.update(design="all_runs", test="welch_anova", configs="", n_levels=int(pd.unique(levels).size),
                       n_runs=int(len(runs)), effect=float(means.max() - means.min()), p_value=res.pvalue)
        with np.errstate(divide="ignore", invalid="ignore"):
            row["effect_over_noise"] = float(np.float64(row["effect"]) / np.float64(noise_floor)) \
                if noise_floor else math.nan
        rows.append(row)
    out = pd.DataFrame(rows, columns=list(IMPORTANCE_COLUMNS))
    # Text columns stay text when no row set them (a search has no one-at-a-time variant at all).
    text = ["verdict", "test", "design", "configs", "direction"]
    out[text] = out[text].astype(object)
    own = (out["design"] == "all_runs").to_numpy()
    if own.any():
        # Hyperparameters outside the variants' family: a family of their own.
        p_adj = adjust_pvalues(out.loc[own, "p_value"].to_numpy(dtype=float), correction)
        out.loc[own, "p_adjusted"] = p_adj
        out.loc[own, "verdict"] = np.where(np.isnan(p_adj), Importance.INSUFFICIENT_RUNS,
                                           np.where(p_adj < alpha, Importance.MATTERS, Importance.INCONCLUSIVE))
    return out
