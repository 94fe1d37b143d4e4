"""Anyone's runs table, read into the shape the analysis wants.

Experiment trackers export runs with their own column names: W&B writes
hyperparameters as ``config/lr`` (or ``config.lr``), MLflow and ``dvc exp show
--csv`` as ``params.lr``, this project as ``hp.lr``. :func:`normalize` maps a
table onto ``config``, ``seed`` and ``hp.<name>`` columns:

- the seed is ``--seed-col``, else a ``seed`` column, else the one
  hyperparameter column named ``seed`` (W&B logs the seed as ``config/seed``);
- the config is ``--config-col``, else a ``config`` column, else it is built
  from the hyperparameter values (``lr=0.003,batch_size=50``): runs with the
  same hyperparameters are one config;
- the metric ``val_acc`` is that column, else the one of ``metrics.val_acc``
  (MLflow), ``summary/val_acc`` or ``summary.val_acc`` (W&B); a value that is
  not a number is named and left out (the run counts as excluded);
- a run's status is ``status`` or W&B's ``State``/``state``: a finished run
  (MLflow's ``FINISHED``, W&B's ``finished``, ``completed``) is ``ok``; any
  other status (running, failed, killed, crashed) is kept, and the analysis
  excludes and counts those runs by it.

Every problem is a one-line :class:`TableError` naming the file and column.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .errors import NoisefloorError
from .vocab import HP_PREFIX, hp_column

#: Column prefixes that mark a hyperparameter, by the convention that writes them.
HP_PREFIXES = (HP_PREFIX, "config/", "config.", "params.", "param.")
#: Where trackers put a metric ``m``: MLflow's ``metrics.m``, W&B's ``summary/m`` and ``summary.m``.
METRIC_PREFIXES = ("metrics.", "summary/", "summary.", "summary_metrics.")
#: The status columns trackers write, and the statuses that mean a finished run.
STATUS_COLUMNS = ("status", "State", "state")
FINISHED = frozenset({"ok", "finished", "completed", "complete", "success", "succeeded"})


class TableError(NoisefloorError, ValueError):
    """A runs table that cannot be read as one (one line, naming the file and column)."""


@dataclass(frozen=True)
class NormalizedTable:
    """The table in the analysis' shape and how it got there.

    Attributes
    ----------
    runs : pandas.DataFrame
        ``config``, ``seed`` and ``hp.<name>`` columns added or renamed; the
        other columns kept.
    config_built : bool
        The config column was built from the hyperparameter values.
    notes : list of str
        What was inferred, for the user.
    """

    runs: pd.DataFrame
    config_built: bool
    notes: list


def without_decomposition(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs the verdicts, their figures and tables read: every run but the decomposition's.

    The decomposition's runs (``stage`` ``decompose``: the baseline with one
    source of randomness varying) answer where the noise comes from; the
    analysis reads them into the noise budget, apart from every comparison.
    """
    if "stage" not in runs.columns:
        return runs
    return runs[runs["stage"].astype(str) != "decompose"]


def _hp_name(column: str) -> str | None:
    for prefix in HP_PREFIXES:
        if column.startswith(prefix) and len(column) > len(prefix):
            return column[len(prefix):]
    return None


def _value_text(v) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v)) if abs(v) < 1e15 else repr(v)
    return str(v)


def _metric(runs: pd.DataFrame, metric: str, source: str, notes: list) -> pd.DataFrame:
    """The table with ``metric`` found under a tracker's prefix and its text values named and made missing."""
    if metric not in runs.columns:
        found = [p + metric for p in METRIC_PREFIXES if p + metric in runs.columns]
        if len(found) > 1:
            raise TableError(f"{source}: {metric!r} is in {len(found)} columns ({', '.join(found)}); "
                             f"name one with --metric")
        if not found:
            return runs
        runs = runs.rename(columns={found[0]: metric})
        notes.append(f"metric {metric!r} from column {found[0]!r}")
    values = runs[metric]
    if not pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = pd.to_numeric(values, errors="coerce")
        text = values.notna() & numbers.isna() & ~values.astype(str).str.strip().str.lower().isin(
            ["nan", "-nan", "+nan"])
        if text.any():
            rows = [int(i) + 2 for i in runs.index[text.to_numpy()]]      # the file's line: the header is line 1
            first = values[text].iloc[0]
            if numbers.isna().all():
                raise TableError(f"{source}: column {metric!r} holds no numbers (line {rows[0]}: {first!r}); "
                                 "name the metric's column with --metric")
            notes.append(f"{int(text.sum())} value(s) of {metric!r} are not numbers (line {rows[0]}: {first!r}"
                         f"{'' if len(rows) == 1 else f'; also lines {_lines(rows[1:])}'}): "
                         "those runs are left out")
            runs = runs.assign(**{metric: numbers})
    return runs


def _lines(rows: list[int]) -> str:
    return ", ".join(map(str, rows[:5])) + (", ..." if len(rows) > 5 else "")


def _status(runs: pd.DataFrame, notes: list) -> pd.DataFrame:
    """A tracker's status column as ``status``: finished runs ``ok``, any other status kept (lower case)."""
    column = next((c for c in STATUS_COLUMNS if c in runs.columns), None)
    if column is None:
        return runs
    status = runs[column]
    text = status.astype(str).str.strip().str.lower()
    mapped = text.where(~text.isin(FINISHED), "ok").where(status.notna(), None)
    if column != "status" or (status.notna() & (mapped != status)).any():
        counts = text[status.notna()].value_counts(sort=False)
        notes.append(f"status from column {column!r}: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    return runs.assign(status=mapped) if column == "status" else runs.drop(columns=[column]).assign(status=mapped)


def normalize(runs: pd.DataFrame, *, source: str = "runs table", config_col: str | None = None,
              seed_col: str | None = None, hparams=None, metric: str | None = None) -> NormalizedTable:
    """Map a tracker's export onto ``config``, ``seed``, ``hp.*``, ``status`` and the metric (see the module doc).

    ``hparams`` names columns that are hyperparameters whatever their prefix
    (``dvc exp show --csv`` writes params as ``train.lr``).
    """
    notes = []
    if metric is not None:
        runs = _metric(runs, metric, source, notes)
    runs = _status(runs, notes)
    columns = [c for c in runs.columns if isinstance(c, str)]
    for name, col in (("--config-col", config_col), ("--seed-col", seed_col)):
        if col is not None and col not in runs.columns:
            raise TableError(f"{source}: no column {col!r} ({name}); columns: {', '.join(columns)}")
    hp = {c: _hp_name(c) for c in columns if _hp_name(c) and c not in (config_col, seed_col)}
    for name in hparams or []:
        if name in runs.columns and name not in hp and name not in (config_col, seed_col):
            hp[name] = name
    out = runs.copy()

    # --- seed
    if seed_col is None:
        if "seed" in runs.columns:
            seed_col = "seed"
        else:
            seeds = [c for c, n in hp.items() if n == "seed"]
            if len(seeds) != 1:
                raise TableError(f"{source}: no 'seed' column (name it with --seed-col); columns: "
                                 f"{', '.join(columns)}")
            seed_col = seeds[0]
            notes.append(f"seed from column {seed_col!r}")
    hp.pop(seed_col, None)

    # --- hyperparameters, as hp.<name>
    renamed = {c: hp_column(n) for c, n in hp.items() if c != hp_column(n)}
    clash = [n for n in renamed.values() if n in out.columns]
    if clash:
        raise TableError(f"{source}: column {clash[0]!r} is given twice (also as another prefix)")
    if len(set(renamed.values())) < len(renamed):
        raise TableError(f"{source}: two columns name the same hyperparameter: {', '.join(renamed)}")
    out = out.rename(columns=renamed)
    hp_cols = [hp_column(n) for n in hp.values() if n != "seed"]

    # --- config
    built = False
    if config_col is None and "config" not in runs.columns:
        if not hp_cols:
            raise TableError(f"{source}: no 'config' column and no hyperparameter columns to build one from: "
                             f"name the hyperparameters with --hparams (e.g. --hparams "
                             f"{','.join(_candidates(runs, seed_col, metric)[:3]) or 'lr,batch_size'}), or the "
                             f"config column with --config-col")
        varying = [c for c in hp_cols if out[c].nunique(dropna=False) > 1] or hp_cols
        out["config"] = [",".join(f"{c[3:]}={_value_text(v)}" for c, v in zip(varying, row))
                         for row in out[varying].itertuples(index=False)]
        built = True
        notes.append(f"config built from {', '.join(c[3:] for c in varying)}")
    elif config_col is not None and config_col != "config":
        if "config" in out.columns:
            out = out.drop(columns="config")
        out = out.rename(columns={config_col: "config"})
    if seed_col != "seed":
        if "seed" in out.columns:
            out = out.drop(columns="seed")
        out = out.rename(columns={seed_col: "seed"})
    out["config"] = out["config"].astype(str).where(out["config"].notna(), None)
    return NormalizedTable(out, built, notes)


def _candidates(runs: pd.DataFrame, seed_col: str, metric: str | None) -> list[str]:
    """Columns that could be hyperparameters in a bare export: repeated values, neither seed, metric nor status."""
    skip = {seed_col, metric, "status", "Name", "name", "run_id", "id", "Notes", "User", "Tags", "Created",
            "Runtime", "Sweep", "start_time", "end_time"}
    return [c for c in runs.columns if isinstance(c, str) and c not in skip and runs[c].nunique() < len(runs)]


def busiest_config(runs: pd.DataFrame) -> str:
    """The config with the most runs (the first of equals): the noise condition of a table without a named baseline."""
    counts = runs["config"].value_counts(sort=False)
    return str(counts.idxmax())
