"""Shared pieces of the statistics package: the error type, interval type and small helpers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import NoisefloorError

DIRECTIONS = ("max", "min")


class AnalysisError(NoisefloorError, ValueError):
    """The runs table or an argument cannot be analysed.

    The message is a single line naming the column, config or argument at
    fault, so a command-line front end can print it as is.
    """


@dataclass(frozen=True)
class ConfidenceInterval:
    """A confidence interval ``[low, high]`` (arrays when the test was batched)."""

    low: Any
    high: Any


# Small helpers


def _scalar(x):
    """0-d arrays become Python floats so single results print nicely."""
    arr = np.asarray(x)
    return float(arr) if arr.ndim == 0 else arr


def _check_unit_interval(name: str, value: float) -> None:
    if not (isinstance(value, (int, float, np.floating)) and 0.0 < float(value) < 1.0):
        raise AnalysisError(f"{name} must be a number strictly between 0 and 1, got {value!r}")


def _rng(random_state) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    return np.random.default_rng(random_state)


def _seed_sequence(random_state) -> np.random.SeedSequence:
    # Independent child streams (per variant, per hyperparameter) keep one
    # comparison's random numbers from depending on how many others exist.
    if isinstance(random_state, np.random.SeedSequence):
        return random_state
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence(int(random_state.integers(2**63)))
    return np.random.SeedSequence(random_state)

def _check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise AnalysisError(f"direction must be 'max' or 'min'; got {direction!r}")


def _plain(x):
    # numpy scalars print as np.int64(2) in messages; users wrote 2.
    return x.item() if isinstance(x, np.generic) else x


def _int_or_none(x):
    return None if x is None or not np.isfinite(x) else int(x)


def _sort_key(x):
    # Seeds are usually ints; fall back to strings so mixed labels still sort.
    return (0, x, "") if isinstance(x, (int, float, np.integer, np.floating)) else (1, 0, str(x))


def is_constant(values, *, scale=None) -> bool:
    """True when ``values`` do not vary beyond floating-point rounding.

    The mean of twenty 0.9s is 0.8999999999999998: a spread that small is
    rounding, not run-to-run variation, and a test that divides by it would
    report an astronomic statistic.  ``scale`` (default: the largest
    magnitude among the values) sets what "small" is relative to.
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return True
    ref = float(np.max(np.abs(v))) if scale is None else float(scale)
    return float(np.ptp(v)) <= ROUNDING * max(ref, 1e-300)


#: Spreads at most this fraction of the metric's magnitude count as rounding.
ROUNDING = 1e-9
