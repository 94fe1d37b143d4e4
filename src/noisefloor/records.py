"""The pipeline's records beside a run's own: the search's, the decomposition's and an adaptive round's.

``<runs>/sweep/sweep.json`` (:class:`SweepRecord`), ``<runs>/decompose/decompose.json``
(:class:`DecomposeRecord`) and ``results/adaptive/round<k>.json`` (:class:`RoundRecord`): each is
one frozen type, built by its one writer and read, checked, by every reader (the engines included:
Snakemake's checkpoints learn the confirmation's configs and each round's runs from them). A file
that is no such record stops the reader with one line naming the file and the key. The JSON shape is
the one these files always had; a record "of nothing" (params without that section) is one key set
to null (``{"sweep": null}``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from .errors import NoisefloorError


class RecordError(NoisefloorError, ValueError):
    """A record file that cannot be read as its record (one line, naming the file and the key)."""


def _load(path: str | Path) -> dict:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise RecordError(f"{path}: missing (the step that writes it has not run)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError(f"{path}: unreadable record ({exc})") from None
    if not isinstance(data, dict):
        raise RecordError(f"{path}: not a JSON object")
    return data


def _need(data: dict, key: str, kind, where: str):
    """``data[key]``, checked to be a ``kind`` (a type or a tuple of types)."""
    if key not in data:
        raise RecordError(f"{where}: no {key!r}")
    value = data[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise RecordError(f"{where}: {key!r} is {value!r}")
    return value


class _JsonRecord:
    """A record's file: :meth:`read` checks it (one line naming the file and key), :meth:`write` is atomic.

    A subclass gives ``from_dict(data, where)`` and ``to_dict()``.
    """

    @classmethod
    def read(cls, path: str | Path):
        return cls.from_dict(_load(path), str(path))

    def write(self, path: str | Path) -> Path:
        from . import io

        io.write_json(path, self.to_dict())
        return Path(path)


# --------------------------------------------------------------------------- the search


@dataclass(frozen=True)
class SweepConfig:
    """One searched config: its drawn ``values``, its ``config_hash`` and its search ``score`` (None: a run failed)."""

    values: Mapping[str, Any]
    config_hash: str
    score: float | None


@dataclass(frozen=True)
class ConfirmPlan:
    """The search's best ``top_k`` configs (``configs``, best first), run again at fresh ``seeds``."""

    top_k: int
    seeds: tuple[int, ...]
    configs: tuple[str, ...]


@dataclass(frozen=True)
class SweepRecord(_JsonRecord):
    """The search's record: how it drew its configs, their scores, and the configs it confirms.

    ``method`` is None for params without a sweep (the file then says ``{"sweep": null}``).
    """

    method: str | None = None
    sampler_seed: int | None = None
    seeds: tuple[int, ...] = ()
    metric: str | None = None
    direction: str | None = None
    configs: Mapping[str, SweepConfig] = field(default_factory=dict)
    confirm: ConfirmPlan | None = None

    def __post_init__(self):
        object.__setattr__(self, "configs", MappingProxyType(dict(self.configs)))

    @property
    def confirmed(self) -> tuple[str, ...]:
        """The configs the confirmation runs again (none without one)."""
        return self.confirm.configs if self.confirm is not None else ()

    def to_dict(self) -> dict:
        if self.method is None:
            return {"sweep": None}
        return {"method": self.method, "sampler_seed": self.sampler_seed, "seeds": list(self.seeds),
                "metric": self.metric, "direction": self.direction,
                "configs": {c: {"values": dict(v.values), "config_hash": v.config_hash, "score": v.score}
                            for c, v in self.configs.items()},
                "confirm": None if self.confirm is None else {
                    "top_k": self.confirm.top_k, "seeds": list(self.confirm.seeds),
                    "configs": list(self.confirm.configs)}}

    @classmethod
    def from_dict(cls, data: dict, where: str = "sweep record") -> "SweepRecord":
        if "sweep" in data and data["sweep"] is None:
            return cls()
        configs = {}
        for name, c in _need(data, "configs", dict, where).items():
            here = f"{where}: configs.{name}"
            configs[name] = SweepConfig(dict(_need(c, "values", dict, here)), _need(c, "config_hash", str, here),
                                        c.get("score"))
        confirm = data.get("confirm")
        if confirm is not None:
            here = f"{where}: confirm"
            confirm = ConfirmPlan(_need(confirm, "top_k", int, here), tuple(_need(confirm, "seeds", list, here)),
                                  tuple(_need(confirm, "configs", list, here)))
        return cls(method=_need(data, "method", str, where), sampler_seed=data.get("sampler_seed"),
                   seeds=tuple(_need(data, "seeds", list, where)), metric=data.get("metric"),
                   direction=data.get("direction"), configs=configs, confirm=confirm)


# --------------------------------------------------------------------------- the noise budget's runs


@dataclass(frozen=True)
class DecomposeRecord(_JsonRecord):
    """The decomposition's record: its seeds, sources and reference, and each config's sources and hash
    (``{name: {"sources": [...], "config_hash": ...}}``). ``seeds`` is None without a decompose section."""

    seeds: tuple[int, ...] | None = None
    sources: tuple[str, ...] = ()
    reference: str | None = None
    configs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "configs", MappingProxyType(dict(self.configs)))

    def to_dict(self) -> dict:
        if self.seeds is None:
            return {"decompose": None}
        return {"seeds": list(self.seeds), "sources": list(self.sources), "reference": self.reference,
                "configs": {c: {"sources": list(v["sources"]), "config_hash": v["config_hash"]}
                            for c, v in self.configs.items()}}

    @classmethod
    def from_dict(cls, data: dict, where: str = "decompose record") -> "DecomposeRecord":
        if "decompose" in data and data["decompose"] is None:
            return cls()
        configs = {}
        for name, c in _need(data, "configs", dict, where).items():
            here = f"{where}: configs.{name}"
            configs[name] = {"sources": tuple(_need(c, "sources", list, here)),
                             "config_hash": _need(c, "config_hash", str, here)}
        return cls(tuple(_need(data, "seeds", list, where)), tuple(_need(data, "sources", list, where)),
                   data.get("reference"), configs)


# --------------------------------------------------------------------------- an adaptive round


@dataclass(frozen=True)
class RoundRecord(_JsonRecord):
    """Where an adaptive experiment stands after ``rounds`` rounds, and the runs the next round trains.

    ``adaptive``: the params' adaptive settings (None without the section); ``next_round``: the
    (config, seed) runs the next round adds, empty when the experiment is done; ``why_done``: why it
    is done (empty while it goes on).
    """

    rounds: int
    next_round: tuple[tuple[str, int], ...] = ()
    adaptive: Mapping[str, Any] | None = None
    why_done: str = ""

    def to_dict(self) -> dict:
        return {"adaptive": None if self.adaptive is None else dict(self.adaptive), "rounds": self.rounds,
                "next_round": [[c, s] for c, s in self.next_round], "why_done": self.why_done}

    @classmethod
    def from_dict(cls, data: dict, where: str = "round record") -> "RoundRecord":
        runs = []
        for pair in _need(data, "next_round", list, where):
            if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)
                    and isinstance(pair[1], int)):
                raise RecordError(f"{where}: 'next_round' holds {pair!r}, not a [config, seed] pair")
            runs.append((pair[0], pair[1]))
        adaptive = data.get("adaptive")
        if adaptive is not None and not isinstance(adaptive, dict):
            raise RecordError(f"{where}: 'adaptive' is {adaptive!r}")
        return cls(_need(data, "rounds", int, where), tuple(runs), adaptive, str(data.get("why_done") or ""))
