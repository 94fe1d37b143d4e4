"""Where the experiment's runs stand, and why a finished run will train again: one line per reason.

Both engines rerun a run whose params or code changed (Snakemake through its
rules' params, DVC through its stages' deps), but say so only in their own
words ("Params have changed since last execution" with two hashes). Here the
runs folder is read against the params, and each reason is named once with its
count: "program deps changed (train.py): 17 finished runs are stale and will
retrain". ``noisefloor status`` prints it for either engine; the Snakemake
workflow prints the reasons before it schedules anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .aggregate import finished_record, run_dir
from .program import code_files
from .runfiles import METRICS_FILE, RunRecord, RunRecordError


@dataclass(frozen=True)
class Status:
    """The experiment's runs against its runs folder.

    Attributes
    ----------
    total : int
        The runs the params ask for (``Params.runs()``).
    finished : int
        Those finished and current (same params, same code).
    to_train : int
        Those never trained, or interrupted.
    stale : dict
        Reason -> the (config, seed) runs that finished but will train again for it.
    """

    total: int
    finished: int
    to_train: int
    stale: dict = field(default_factory=dict)

    def lines(self) -> list[str]:
        """One line per reason a finished run will retrain, then where the runs stand."""
        out = []
        for reason, runs in self.stale.items():
            n = len(runs)
            out.append(f"{reason}: {n} finished run{'' if n == 1 else 's'} "
                       f"{'is' if n == 1 else 'are'} stale and will retrain")
        out.append(f"{self.finished} of {self.total} runs finished and current; "
                   f"{self.to_train + sum(map(len, self.stale.values()))} to train")
        return out


def _why(params, record: RunRecord, config: str) -> str | None:
    """The reason the finished ``record`` is not ``config``'s current run (None: its params changed)."""
    cfg = params.resolve(config)
    if record.config_hash != cfg.config_hash:
        return None
    if record.code_fingerprint != cfg.code_fingerprint:
        if params.program.builtin:
            return "noisefloor's training code changed"
        before = record.values.get("code_files") or {}
        now = code_files(params.program.root_path, params.program.deps)
        changed = sorted(p for p in before.keys() | now.keys() if before.get(p) != now.get(p))
        return f"program deps changed ({', '.join(changed) if before and changed else ', '.join(params.program.deps)})"
    if record.status == "skipped":
        return "runs skipped for want of CUDA, which is here now"
    return "program.check_determinism asks for its repeat"


def status(params, runs_dir: str | Path) -> Status:
    """Read every run the params ask for in ``runs_dir`` (nothing is written)."""
    runs = params.runs()
    finished, to_train = 0, 0
    by_config: dict[str, list] = {}      # params changed: config -> its runs
    other: dict[str, list] = {}
    for config, seed in runs:
        folder = run_dir(runs_dir, config, seed)
        if finished_record(params, folder, config, seed) is not None:
            finished += 1
            continue
        try:
            record = RunRecord.read(folder / METRICS_FILE)
        except (OSError, RunRecordError):
            to_train += 1                # never trained, or interrupted
            continue
        why = _why(params, record, config)
        (by_config.setdefault(config, []) if why is None else other.setdefault(why, [])).append((config, seed))
    stale = {f"params changed ({', '.join(by_config)})": [r for rs in by_config.values() for r in rs]} \
        if by_config else {}
    return Status(len(runs), finished, to_train, {**stale, **other})
