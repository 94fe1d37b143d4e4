"""Had the runs stopped improving? The learning curves' last epochs against the noise floor."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ._core import _check_direction


def still_improving(histories: pd.DataFrame, metric: str, *, noise_floor: float, direction: str = "max",
                    epochs: int | None = None) -> pd.DataFrame:
    """Per config: how much the mean curve still gained over the last epochs.

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

    Returns
    -------
    pandas.DataFrame
        One row per config: ``config``, ``first_epoch``, ``last_epoch``,
        ``gain`` (in the better direction, metric units) and ``not_converged``
        (``gain > noise_floor``).
    """
    _check_direction(direction)
    h = histories[["config", "epoch", metric]].copy()
    h[metric] = pd.to_numeric(h[metric], errors="coerce")
    h = h[np.isfinite(h[metric].to_numpy(dtype=float))]
    rows = []
    for config, g in h.groupby("config", sort=False):
        curve = g.groupby("epoch")[metric].mean().sort_index()
        if len(curve) < 2:
            continue
        last = int(curve.index.max())
        window = epochs if epochs is not None else max(2, math.ceil(len(curve) / 3))
        first = int(curve.index[max(0, len(curve) - window)])
        gain = float(curve.loc[last] - curve.loc[first]) * (1 if direction == "max" else -1)
        rows.append({"config": config, "first_epoch": first, "last_epoch": last, "gain": gain,
                     "not_converged": bool(np.isfinite(noise_floor) and noise_floor > 0 and gain > noise_floor)})
    return pd.DataFrame(rows, columns=["config", "first_epoch", "last_epoch", "gain", "not_converged"])
