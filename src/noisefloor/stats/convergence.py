"""Had the runs stopped improving? The learning curves' last epochs against the noise floor."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as sps

from ._core import _check_direction


def still_improving(histories: pd.DataFrame, metric: str, *, noise_floor: float, direction: str = "max",
                    epochs: int | None = None, confidence_level: float = 0.95) -> pd.DataFrame:
    """Per config: how much the curves still gained over the last epochs, and whether that is shown to exceed
    the noise floor.

    A config's gain is its mean curve's rise over the window. It is an average of a few seeds' rises, so it
    has noise of its own: a curve that levelled off can gain as much as the noise floor by chance when it is
    the mean of a few seeds. A config is called not converged only when the one-sided lower bound of its gain
    (at ``confidence_level``) is above the noise floor. The bound uses the seeds' own rises over the window,
    their spread pooled over the configs (the window's seed-to-seed noise is a property of training, and
    pooling lets a config of one or two seeds be judged too).

    Parameters
    ----------
    histories : pandas.DataFrame
        ``config``, ``seed``, ``epoch`` and ``metric`` (non-finite values are
        left out).
    metric : str
        The history column; the same quantity as the noise floor.
    noise_floor : float
        The yardstick: a gain larger than the seed-to-seed spread is a curve
        that had not levelled off.
    direction : {"max", "min"}
        Which way is better.
    epochs : int, optional
        The window: the last ``epochs`` epochs (default: the last third of
        training, at least 2; the figure's zoomed row shows the same epochs).
    confidence_level : float
        Of the gain's one-sided lower bound.

    Returns
    -------
    pandas.DataFrame
        One row per config: ``config``, ``first_epoch``, ``last_epoch``,
        ``gain`` (the mean curve's rise, in the better direction, metric
        units), ``gain_low`` (its lower bound; NaN when no config has two
        seeds over the window) and ``not_converged`` (``gain_low >
        noise_floor``).
    """
    _check_direction(direction)
    sign = 1 if direction == "max" else -1
    h = histories[["config", "seed", "epoch", metric]].copy()
    h[metric] = pd.to_numeric(h[metric], errors="coerce")
    h = h[np.isfinite(h[metric].to_numpy(dtype=float))]
    rows, rises = [], []
    for config, g in h.groupby("config", sort=False):
        curve = g.groupby("epoch")[metric].mean().sort_index()
        if len(curve) < 2:
            continue
        last = int(curve.index.max())
        window = epochs if epochs is not None else max(2, math.ceil(len(curve) / 3))
        first = int(curve.index[max(0, len(curve) - window)])
        by_seed = g.pivot_table(index="seed", columns="epoch", values=metric, aggfunc="mean")
        rise = (sign * (by_seed.get(last) - by_seed.get(first))).dropna().to_numpy(dtype=float)
        rises.append(rise)
        rows.append({"config": config, "first_epoch": first, "last_epoch": last,
                     "gain": float(curve.loc[last] - curve.loc[first]) * sign, "n": len(rise)})
    df = sum(max(len(r) - 1, 0) for r in rises)
    sd = math.sqrt(sum(float(((r - r.mean()) ** 2).sum()) for r in rises if len(r)) / df) if df else math.nan
    t = float(sps.t.ppf(confidence_level, df)) if df else math.nan
    for row in rows:
        n = row.pop("n")
        row["gain_low"] = row["gain"] - t * sd / math.sqrt(n) if n else math.nan
        row["not_converged"] = bool(np.isfinite(noise_floor) and noise_floor > 0 and np.isfinite(row["gain_low"])
                                    and row["gain_low"] > noise_floor)
    return pd.DataFrame(rows, columns=["config", "first_epoch", "last_epoch", "gain", "gain_low", "not_converged"])
