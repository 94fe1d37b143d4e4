"""What a training run writes into its folder: the files' names and the run's record (``metrics.json``).

A module of its own, free of heavy imports, so that readers of run folders
(aggregation, the workflow, the runner) need not import torch (about 3 s) to
know them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from .errors import NoisefloorError

METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
CHECKPOINT_FILE = "checkpoint.pt"
HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss", "val_acc", "time_s")

#: How a run ended: ``ok``; ``diverged`` (a non-finite loss or metric); ``skipped`` (it cannot run here,
#: e.g. a GPU-only setting on a CPU machine; ``note`` says why).
RUN_STATUSES = ("ok", "diverged", "skipped")


@dataclass(frozen=True)
class RecordField:
    """A field of the run record: whether it is a column of ``runs.csv`` (``column``), noisefloor's own
    (``own``: a user's program cannot write a number of that name over it), and whether it differs
    between two trainings of one (config, seed) (``volatile``: timing and where it ran)."""

    name: str
    column: bool = False
    own: bool = False
    volatile: bool = False


#: Every field noisefloor itself gives a run's record, in the runs table's column order. A run also
#: records its numbers (the built-in model's losses and accuracies, or a program's own names).
RECORD_FIELDS: tuple[RecordField, ...] = (
    RecordField("config", column=True, own=True),
    RecordField("seed", column=True, own=True),
    RecordField("status", column=True, own=True),
    RecordField("val_acc", column=True),
    RecordField("best_val_acc", column=True),
    RecordField("best_epoch", column=True),
    RecordField("test_acc", column=True),
    RecordField("val_loss", column=True),
    RecordField("test_loss", column=True),
    RecordField("train_loss", column=True),
    RecordField("epochs_run", column=True, own=True),
    RecordField("diverged_at_epoch", column=True),
    RecordField("n_train", column=True),
    RecordField("n_val", column=True),
    RecordField("n_test", column=True),
    RecordField("device", column=True, own=True),
    RecordField("threads", column=True, own=True),
    RecordField("train_step", column=True),
    RecordField("wall_time_s", column=True, own=True, volatile=True),
    RecordField("slurm_job_id", column=True, own=True, volatile=True),
    RecordField("config_hash", column=True, own=True),
    RecordField("code_fingerprint", column=True, own=True),
    RecordField("program", column=True, own=True),
    RecordField("repeat_identical", column=True),
    RecordField("repeat_note", column=True),
    RecordField("sources", column=True),
    RecordField("note", column=True),
    RecordField("resumed_from_epoch", volatile=True),
    RecordField("program_metrics", own=True),
    RecordField("code_files", own=True),
    RecordField("versions", own=True),
    RecordField("resolved_config", own=True),
)
#: The built-in model's numbers that ``stats.metric`` may compare (its record's metrics).
BUILTIN_METRICS: tuple[str, ...] = ("val_acc", "best_val_acc", "test_acc", "val_loss", "test_loss", "train_loss")
#: The runs table's columns a record fills (``runs.csv``), in order.
RUN_COLUMNS: tuple[str, ...] = tuple(f.name for f in RECORD_FIELDS if f.column)
#: noisefloor's own fields: a program's number of the same name is not taken over them.
OWN_FIELDS: frozenset[str] = frozenset(f.name for f in RECORD_FIELDS if f.own)
#: Fields that legitimately differ between two runs of the same (config, seed).
VOLATILE_FIELDS: frozenset[str] = frozenset(f.name for f in RECORD_FIELDS if f.volatile)


#: The fields that say which run a record is and how it ended (:class:`RunRecord`'s own attributes).
_IDENTITY = ("config", "seed", "config_hash", "status", "code_fingerprint")


class RunRecordError(NoisefloorError, ValueError):
    """A ``metrics.json`` that is no run record (one line, naming the file and the key)."""


@dataclass(frozen=True)
class RunRecord:
    """A run's record, ``metrics.json``: which run it is, how it ended, and everything it recorded.

    Every writer builds one (:meth:`from_dict` checks it) and writes it with
    :meth:`write`; every reader reads one with :meth:`read`, which names the
    file and the key of anything wrong in one line.

    Attributes
    ----------
    config, seed : the run
    config_hash : str
        The hash of everything that shapes the run's numbers (``Params.resolve(config).config_hash``).
    status : str
        One of :data:`RUN_STATUSES`.
    code_fingerprint : str or None
        The code that made it (the built-in model's modules, or a program's declared deps).
    values : Mapping
        Every other field as written: the numbers, the sizes, timing, versions, the resolved config.
    """

    config: str
    seed: int
    config_hash: str
    status: str
    code_fingerprint: str | None = None
    values: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "values", MappingProxyType(dict(self.values)))

    @classmethod
    def from_dict(cls, data: Any, where: str = "run record") -> "RunRecord":
        """A record from its JSON object; :class:`RunRecordError` naming ``where`` and the key if it is none."""
        if not isinstance(data, dict):
            raise RunRecordError(f"{where}: not a JSON object (a run's record is one)")
        for key, kinds in (("config", str), ("seed", int), ("config_hash", str), ("status", str)):
            if key not in data:
                raise RunRecordError(f"{where}: no {key!r} (every run's record names its run)")
            if not isinstance(data[key], kinds) or isinstance(data[key], bool):
                raise RunRecordError(f"{where}: {key!r} is {data[key]!r}, not a {kinds.__name__}")
        if data["status"] not in RUN_STATUSES:
            raise RunRecordError(f"{where}: 'status' is {data['status']!r}, not one of {', '.join(RUN_STATUSES)}")
        fingerprint = data.get("code_fingerprint")
        if fingerprint is not None and not isinstance(fingerprint, str):
            raise RunRecordError(f"{where}: 'code_fingerprint' is {fingerprint!r}, not a string")
        return cls(data["config"], data["seed"], data["config_hash"], data["status"], fingerprint,
                   {k: v for k, v in data.items() if k not in _IDENTITY})

    @classmethod
    def read(cls, path: str | Path) -> "RunRecord":
        """The record in ``path``; :class:`RunRecordError` naming the file when it is unreadable or no record.

        A missing file raises ``FileNotFoundError`` (an unfinished run, which callers tell apart).
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RunRecordError(f"{path}: unreadable run record ({exc})") from None
        return cls.from_dict(data, str(path))

    def to_dict(self) -> dict:
        """The JSON object ``metrics.json`` holds."""
        out = {"config": self.config, "seed": self.seed, "config_hash": self.config_hash, "status": self.status}
        if self.code_fingerprint is not None:
            out["code_fingerprint"] = self.code_fingerprint
        return {**out, **self.values}

    def write(self, folder: str | Path) -> Path:
        """Write ``folder/metrics.json`` atomically (last: a run's record marks it finished)."""
        from . import io

        path = Path(folder) / METRICS_FILE
        io.write_json(path, self.to_dict())
        return path

    def get(self, name: str, default=None):
        """A field of the record by name (``val_acc``, ``wall_time_s``, a program's own number)."""
        if name in _IDENTITY:
            return getattr(self, name)
        return self.values.get(name, default)

    def number(self, name: str) -> float | None:
        """The finite number ``name`` holds, or None (missing, null, not a number, or not finite)."""
        value = self.values.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return None
        return float(value)

    def made_by(self, config_hash: str, seed: int, code_fingerprint: str | None = None) -> bool:
        """Whether this record is of the run (``config_hash``, ``seed``) (and, when given, made by that code)."""
        return (self.config_hash, self.seed) == (config_hash, seed) and \
            (code_fingerprint is None or self.code_fingerprint == code_fingerprint)
