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

from . import aggregate as A
from .aggregate import run_dir
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


def status(params, runs_dir: str | Path) -> Status:
    """Read every run the params ask for in ``runs_dir`` once (nothing is written)."""
    runs = params.runs()
    finished, to_train = 0, 0
    by_kind: dict[str, list] = {}
    for config, seed in runs:
        try:
            record = RunRecord.read(run_dir(runs_dir, config, seed) / METRICS_FILE)
        except (OSError, RunRecordError):
            to_train += 1                # never trained, or interrupted
            continue
        kind = A.staleness(params, record, config, seed)
        if kind is None:
            finished += 1
        elif kind == A.OTHER_RUN:
            to_train += 1
        else:
            by_kind.setdefault(kind, []).append((config, seed, record))
    order = (A.PARAMS, A.CODE, A.CUDA, A.REPEAT)         # what the user changed first
    return Status(len(runs), finished, to_train, {_reason(params, kind, by_kind[kind]): [(c, s) for c, s, _ in
                                                                                          by_kind[kind]]
                                                  for kind in order if kind in by_kind})


def _reason(params, kind: str, found: list) -> str:
    """The words for one kind of staleness (:func:`noisefloor.aggregate.staleness`), given its runs."""
    if kind == A.PARAMS:
        return f"params changed ({', '.join(dict.fromkeys(c for c, _, _ in found))})"
    if kind == A.CUDA:
        return "runs skipped for want of CUDA, which is here now"
    if kind == A.REPEAT:
        return "program.check_determinism asks for its repeat"
    if params.program.builtin:
        return "noisefloor's training code changed"
    now = code_files(params.program.root_path, params.program.deps)       # hashed once, for all the runs
    changed: set = set()
    for _, _, record in found:
        before = record.values.get("code_files") or {}
        changed |= {p for p in before.keys() | now.keys() if before.get(p) != now.get(p)} if before else \
            set(params.program.deps)
    return f"program deps changed ({', '.join(sorted(changed))})"
