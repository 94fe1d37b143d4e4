"""Is the seed really in control? Train one (config, seed) twice, and another seed once, and compare every metric.

The noise floor is the spread between seeds. A program whose seed does not fix
all of its randomness (an unseeded data loader, a non-deterministic GPU
kernel) has a second source of spread inside each seed, and it is measured as
part of the noise floor. That is a fair floor for that program, but the user
should know it. A program that ignores its seed has no spread at all, and
every verdict on it would be about nothing: ``noisefloor check-determinism`` and
``program.check_determinism`` say so plainly (:mod:`noisefloor.runner` trains the
two runs; this module compares them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .runfiles import VOLATILE_FIELDS


def _comparable(key: str, value: Any) -> bool:
    volatile = key in VOLATILE_FIELDS or "time" in key or "duration" in key or "elapsed" in key
    return not volatile and (value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)))


def _pair(a: Any, b: Any) -> str:
    """``a and b`` with the fewest significant digits (at least 3) that tell them apart."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        for digits in range(3, 18):
            sa, sb = f"{a:.{digits}g}", f"{b:.{digits}g}"
            if sa != sb:
                return f"{sa} and {sb}"
    return f"{a} and {b}"


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


@dataclass(frozen=True)
class Repeat:
    """Two trainings of one (config, seed) compared.

    Attributes
    ----------
    config, seed : the run trained twice
    differences : tuple of (key, first, second)
        Every metric that differs, in the first record's order.
    """

    config: str
    seed: int
    differences: tuple[tuple[str, Any, Any], ...]
    other_seed: int | None = None
    seed_blind: bool = False

    @property
    def identical(self) -> bool:
        return not self.differences

    @property
    def controlled(self) -> bool:
        """The seed fixes the run, and changing it changes the run."""
        return self.identical and not self.seed_blind

    def sentence(self) -> str:
        """The finding in one plain sentence."""
        if self.seed_blind:
            return (f"{self.config} seeds {self.seed} and {self.other_seed} gave identical metrics: the program "
                    "ignores its seed, so every run is the same run and the noise floor reads zero (pass {seed} "
                    "to the program and seed its random number generators with it)")
        if self.identical:
            return f"{self.config} seed {self.seed} trained twice gave identical metrics: the seed controls the run"
        shown = "; ".join(f"{k} {_pair(a, b)}" for k, a, b in self.differences[:3])
        more = f" (and {len(self.differences) - 3} more metrics)" if len(self.differences) > 3 else ""
        return (f"{self.config} seed {self.seed} gave {shown}{more} when trained twice: the seed does not control "
                "all of the run's randomness, and that non-determinism is part of the measured noise floor")


def _differences(first: dict, second: dict) -> tuple[tuple[str, Any, Any], ...]:
    keys = [k for k in first if _comparable(k, first[k])] + \
        [k for k in second if k not in first and _comparable(k, second[k])]
    return tuple((k, first.get(k), second.get(k)) for k in keys if not _same(first.get(k), second.get(k)))


def compare(config: str, seed: int, first: dict, second: dict, other: dict | None = None) -> Repeat:
    """Compare two metrics records of (``config``, ``seed``): every number but timings and job ids.

    ``other``, the record of another seed of the same config, tells a program
    that ignores its seed: its numbers are then the first's to the last digit.
    """
    blind = other is not None and not [d for d in _differences(first, other) if d[0] != "seed"]
    return Repeat(config, int(seed), _differences(first, second),
                  other_seed=None if other is None else int(other["seed"]), seed_blind=blind)


def checked_run(params) -> tuple[str, int] | None:
    """The run ``program.check_determinism`` trains twice (the baseline's first noise seed), or None."""
    return (params.baseline, params.noise_seeds[0]) if params.program.check_determinism else None
