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

    A config's gain is the mean of its seeds' own rises over the window (the seeds that reached both of its
    epochs; a seed that stopped early says nothing of how far a curve still climbs). It is an average of a
    few seeds, so it has noise of its own: a curve that levelled off can gain as much as the noise floor by
    chance. A config is called not converged only when the one-sided lower bound of its gain (at
    ``confidence_level``, Student's t) is above the noise floor. The bound uses the config's own seeds'
    spread, so a noisy config is judged by its own noise; a config with one seed borrows the spread pooled
    over the others (it is then assumed to be as noisy as they are).

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
        ``gain`` (the seeds' mean rise, in the better direction, metric
        units; the mean curve's when no seed has both epochs), ``gain_low``
        (its lower bound; NaN when it cannot be estimated) and
        ``not_converged`` (``gain_low > noise_floor``).
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
        rise = (sign * (by_seed[last] - by_seed[first])).dropna().to_numpy(dtype=float)
        rises.append(rise)
        gain = float(rise.mean()) if len(rise) else float(curve.loc[last] - curve.loc[first]) * sign
        rows.append({"config": config, "first_epoch": first, "last_epoch": last, "gain": gain, "rise": rise})
    # the spread pooled over the configs with two seeds or more: for a config of one seed
    df = sum(max(len(r) - 1, 0) for r in rises)
    pooled = math.sqrt(sum(float(((r - r.mean()) ** 2).sum()) for r in rises if len(r)) / df) if df else math.nan
    for row in rows:
        rise = row.pop("rise")
        n = len(rise)
        sd, dof = (float(rise.std(ddof=1)), n - 1) if n >= 2 else (pooled, df)
        low = row["gain"] - float(sps.t.ppf(confidence_level, dof)) * sd / math.sqrt(n) if n and dof else math.nan
        row["gain_low"] = low
        row["not_converged"] = bool(np.isfinite(noise_floor) and noise_floor > 0 and np.isfinite(low)
                                    and low > noise_floor)
    return pd.DataFrame(rows, columns=["config", "first_epoch", "last_epoch", "gain", "gain_low", "not_converged"])
