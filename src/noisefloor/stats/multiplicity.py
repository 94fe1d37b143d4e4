"""Multiplicity: how a family of comparisons keeps its error rate.

The verdicts use a *single-step* adjustment (Sidak by default, Bonferroni on
request): every comparison is tested at the same per-comparison level
``per_comparison_alpha(alpha, m)``, so its interval at that level is
simultaneous for the family and excludes 0 exactly when the adjusted p-value
is below ``alpha``.  Step-down (Holm) and false-discovery (BH) adjustments are
kept for users of the library; they have no compatible intervals, which is why
the verdicts do not use them.
"""

from __future__ import annotations

import math

import numpy as np

from ._core import AnalysisError

#: Adjustments the verdicts may use (single-step, so intervals match them).
SINGLE_STEP = ("sidak", "bonferroni", "none")
#: Every adjustment :func:`adjust_pvalues` knows.
CORRECTIONS = SINGLE_STEP + ("holm", "bh")


def per_comparison_alpha(alpha: float, m: int, method: str = "sidak") -> float:
    """The level each of ``m`` comparisons is tested at so the family keeps ``alpha``.

    Sidak: ``1 - (1 - alpha)**(1/m)`` (exact for independent tests, and
    conservative for two-sided tests of jointly normal statistics, Sidak 1967,
    such as variants compared with one shared baseline); Bonferroni:
    ``alpha / m``; none: ``alpha``.
    """
    if method not in SINGLE_STEP:
        raise AnalysisError(f"correction must be one of {', '.join(SINGLE_STEP)}; got {method!r}")
    if m <= 1 or method == "none":
        return float(alpha)
    if method == "bonferroni":
        return float(alpha) / m
    return -math.expm1(math.log1p(-alpha) / m)


def adjust_pvalues(pvalues, method: str = "holm", *, axis: int = -1) -> np.ndarray:
    """Adjust a family of p-values for multiple testing.

    Parameters
    ----------
    pvalues : array_like
        p-values; the family runs along ``axis`` (other axes are independent
        families, e.g. simulated sweeps).  NaN entries are left out of the
        family (``m`` counts only finite p-values) and stay NaN.
    method : {"sidak", "bonferroni", "holm", "bh", "none"}
        Single-step Sidak or Bonferroni, Holm's step-down FWER control,
        Benjamini-Hochberg FDR control, or no adjustment.  Equal to
        statsmodels ``multipletests`` with ``"sidak"``, ``"bonferroni"``,
        ``"holm"`` and ``"fdr_bh"``.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values, same shape.
    """
    if method not in CORRECTIONS:
        raise AnalysisError(f"correction must be one of {', '.join(CORRECTIONS)}; got {method!r}")
    p = np.moveaxis(np.asarray(pvalues, dtype=float), axis, -1)
    if method == "none" or p.shape[-1] == 0:
        return np.moveaxis(p.copy(), -1, axis)
    valid = np.isfinite(p)
    m = valid.sum(axis=-1, keepdims=True)
    # NaNs sort last, so ranks 1..m are exactly the family members.
    order = np.argsort(np.where(valid, p, np.inf), axis=-1, kind="stable")
    ps = np.take_along_axis(np.where(valid, p, np.inf), order, axis=-1)
    rank = np.arange(1, p.shape[-1] + 1)
    if method in ("sidak", "bonferroni"):
        with np.errstate(invalid="ignore", divide="ignore"):   # log1p(-1) = -inf: p = 1 stays 1
            if method == "sidak":
                adj = -np.expm1(m * np.log1p(-np.minimum(p, 1.0)))
            else:
                adj = np.minimum(1.0, m * p)
        return np.moveaxis(np.where(valid, adj, np.nan), -1, axis)
    if method == "holm":
        with np.errstate(invalid="ignore"):  # inf * 0 past the family's end
            adj = np.minimum(1.0, (m - rank + 1) * ps)
        adj = np.where(rank <= m, adj, -np.inf)
        adj = np.maximum.accumulate(adj, axis=-1)
    else:
        adj = np.minimum(1.0, m * ps / rank)
        adj = np.where(rank <= m, adj, np.inf)
        adj = np.flip(np.minimum.accumulate(np.flip(adj, -1), axis=-1), -1)
    out = np.empty_like(adj)
    np.put_along_axis(out, order, adj, axis=-1)
    out = np.where(valid, out, np.nan)
    return np.moveaxis(out, -1, axis)
