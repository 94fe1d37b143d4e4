"""A hyperparameter search as the signal condition: the ``sweep`` section and its stable expansion.

The vocabulary is that of W&B sweeps: ``method`` (``grid`` or ``random``),
``count`` (random), the sampler's ``seed``, and ``parameters``, each with a
``value``, ``values`` or a ``distribution`` and its bounds.

Expansion is stable. Config *i* is named ``sweep_<i>`` (three digits at
least, so names never change as the sweep grows) and each of its values is
drawn from a random stream of its own, fixed by (sampler seed, *i*, the
parameter's name). Raising ``count`` appends configs and changes none that
exist; editing one parameter's distribution changes that parameter's values
(and so those configs' hashes) and no other parameter's.

A sweep's runs live in a folder of their own, ``<runs>/sweep/<config>/seed<s>``,
beside the record of the search, ``<runs>/sweep/sweep.json`` (every config, the
search's scores and the configs chosen to confirm). One folder lets an engine
without dynamic stages (DVC) track the whole sweep as one output.

*Confirmation* (``sweep.confirm: {top_k, seeds}``): the search's ``top_k``
best configs run again at fresh seeds, which the search never saw. Their
verdicts against the baseline come from those runs only, so the winner's
curse (a config chosen for its best run looks better than it is) is measured,
not assumed. In the runs table these runs form a group of their own,
:func:`confirm_name`, with ``stage`` ``confirm``.
"""

from __future__ import annotations

import itertools
import math
import zlib
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

#: The distributions a grid can enumerate.
ENUMERABLE = ("int_uniform", "categorical")
PREFIX = "sweep_"
#: The folder, under the runs folder, of the sweep's runs and its record (no config may take this name).
FOLDER = "sweep"
#: The sweep's record in that folder.
RECORD = "sweep.json"
#: The most configs a grid may expand to (a larger one is almost always a mistake in its bounds).
MAX_GRID = 100_000


def config_name(i: int) -> str:
    """The name of the sweep's ``i``-th config (``sweep_000``, ..., ``sweep_1000``)."""
    return f"{PREFIX}{i:03d}"


def is_sweep_config(name: str) -> bool:
    """Whether ``name`` is a sweep's config (named configs may not start with the prefix)."""
    return str(name).startswith(PREFIX)


def confirm_name(config: str) -> str:
    """The runs-table group of ``config``'s confirmation runs (its fresh seeds), apart from its search run."""
    return f"{config} (fresh seeds)"


@dataclass(frozen=True)
class SweepParams:
    """A validated ``sweep`` section.

    Attributes
    ----------
    method : {"grid", "random"}
    count : int or None
        Configs a random sweep draws.
    seed : int
        The sampler's seed (never a training seed).
    seeds : tuple of int
        Training seeds of every sweep config.
    parameters : mapping of name -> spec
        Each spec holds ``value``, ``values``, or ``distribution`` with ``min``,
        ``max`` (and ``q``) or ``values``.
    confirm_top_k : int or None
        How many of the search's best configs run again (None: no confirmation).
    confirm_seeds : tuple of int
        The fresh seeds they run at.
    """

    method: str
    count: int | None
    seed: int
    seeds: tuple[int, ...]
    parameters: Mapping[str, Mapping[str, Any]]
    confirm_top_k: int | None = None
    confirm_seeds: tuple[int, ...] = ()


def problem(raw: Mapping[str, Any]) -> str | None:
    """What a schema cannot say about a sweep section: ``key: reason`` in one line, or None."""
    method = raw["method"]
    if method == "random" and raw.get("count") is None:
        return "count: a random sweep needs the number of configs to draw"
    if method == "grid" and raw.get("count") is not None:
        return "count: a grid has as many configs as value combinations (leave count out)"
    for name, spec in raw["parameters"].items():
        where = f"parameters.{name}"
        dist = spec.get("distribution")
        # (a categorical distribution takes its values; W&B writes it either way)
        kinds = [k for k in ("value", "values", "distribution") if k in spec
                 and not (k == "values" and dist == "categorical")]
        if len(kinds) != 1:
            return f"{where}: give exactly one of value, values or distribution"
        if dist is None:
            extra = [k for k in ("min", "max", "q") if k in spec]
            if extra:
                return f"{where}.{extra[0]}: only with a distribution"
            continue
        if dist == "categorical":
            if not spec.get("values"):
                return f"{where}: a categorical distribution needs values"
            extra = [k for k in ("min", "max", "q") if k in spec]
            if extra:
                return f"{where}.{extra[0]}: not with a categorical distribution"
            continue
        for bound in ("min", "max"):
            if bound not in spec:
                return f"{where}.{bound}: the {dist} distribution needs it"
        lo, hi = spec["min"], spec["max"]
        if lo > hi:
            return f"{where}: min {lo} > max {hi}"
        if dist == "int_uniform" and not (float(lo).is_integer() and float(hi).is_integer()):
            return f"{where}: int_uniform bounds must be whole numbers (min {lo}, max {hi})"
        if dist.startswith(("log_", "q_log_")) and lo <= 0:
            return f"{where}.min: {dist} needs min > 0 (got {lo})"
        if dist.startswith("q_") and "q" not in spec:
            return f"{where}.q: the {dist} distribution needs its step"
        if not dist.startswith("q_") and "q" in spec:
            return f"{where}.q: only with q_uniform or q_log_uniform_values"
        if method == "grid" and dist not in ENUMERABLE:
            return (f"{where}: a grid cannot enumerate the continuous {dist} distribution "
                    "(give values, or use method: random)")
    if method == "grid":
        size = 1
        for spec in raw["parameters"].values():
            size *= len(_choices(spec))
        if size > MAX_GRID:
            return f"parameters: the grid has {size:,} configs (at most {MAX_GRID:,}; use method: random)"
    return None


def _stream(seed: int, i: int, name: str) -> np.random.Generator:
    """The random stream of parameter ``name`` in config ``i``: independent of every other (config, parameter)."""
    return np.random.default_rng(np.random.SeedSequence([seed, i, zlib.crc32(name.encode())]))


def _python(x: Any) -> Any:
    """A drawn NumPy scalar as the plain Python value params would hold (so hashes and YAML agree)."""
    return x.item() if isinstance(x, np.generic) else x


def _quantise(x: float, q: float) -> float:
    """``x`` rounded to a multiple of ``q``, spelt as short as ``q`` is (0.1 * 3 -> 0.3, not 0.30000000000000004)."""
    digits = max(0, -math.floor(math.log10(q))) + 12 if q < 1 else 12
    return round(round(x / q) * q, digits)


def draw(spec: Mapping[str, Any], rng: np.random.Generator) -> Any:
    """One value from a parameter's spec."""
    if "value" in spec:
        return spec["value"]
    dist = spec.get("distribution", "categorical")
    if dist == "categorical":
        values = spec["values"]
        return values[int(rng.integers(len(values)))]
    lo, hi = spec["min"], spec["max"]
    if dist == "int_uniform":
        return int(rng.integers(int(lo), int(hi), endpoint=True))
    if dist == "uniform":
        return float(rng.uniform(lo, hi))
    if dist == "log_uniform_values":
        return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    if dist == "q_uniform":
        return _quantise(float(rng.uniform(lo, hi)), spec["q"])
    if dist == "q_log_uniform_values":
        return _quantise(float(math.exp(rng.uniform(math.log(lo), math.log(hi)))), spec["q"])
    raise ValueError(f"unknown distribution {dist!r}")


def _choices(spec: Mapping[str, Any]):
    """Every value a grid takes for one parameter (a range, not a list, for int_uniform)."""
    if "value" in spec:
        return [spec["value"]]
    if spec.get("distribution") == "int_uniform":
        return range(int(spec["min"]), int(spec["max"]) + 1)
    return list(spec["values"])


def expand(sweep: SweepParams) -> dict[str, dict[str, Any]]:
    """The sweep's configs: ``{sweep_000: {parameter: value, ...}, ...}`` in order.

    Grid: every combination, the first parameter varying slowest. Random:
    ``count`` configs, each value from its own stream (see the module's notes).
    """
    names = list(sweep.parameters)
    if sweep.method == "grid":
        combos = itertools.product(*(_choices(sweep.parameters[n]) for n in names))
        return {config_name(i): dict(zip(names, map(_python, combo))) for i, combo in enumerate(combos)}
    return {config_name(i): {n: _python(draw(sweep.parameters[n], _stream(sweep.seed, i, n))) for n in names}
            for i in range(sweep.count)}


# --------------------------------------------------------------------------- confirmation


def select(scores: Mapping[str, float], top_k: int, direction: str = "max") -> list[str]:
    """The ``top_k`` best configs by search score, best first.

    ``scores`` maps each sweep config to its search score (its mean over the
    sweep's seeds); a config without a finite score (a diverged run) is never
    chosen. Ties go to the config drawn first, so the choice is the same on
    every machine and under both engines.
    """
    sign = -1.0 if direction == "max" else 1.0
    rank = {c: i for i, c in enumerate(scores)}
    finite = [c for c in rank if scores[c] is not None and math.isfinite(scores[c])]
    return sorted(finite, key=lambda c: (sign * scores[c], rank[c]))[:top_k]
