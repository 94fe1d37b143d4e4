"""Anyone's runs table, read into the shape the analysis wants.

Experiment trackers export runs with their own column names: W&B writes
hyperparameters as ``config/lr`` (or ``config.lr``), MLflow and ``dvc exp show
--csv`` as ``params.lr``, this project as ``hp.lr``. :func:`normalize` maps a
table onto ``config``, ``seed`` and ``hp.<name>`` columns:

- the seed is ``--seed-col``, else a ``seed`` column, else the one
  hyperparameter column named ``seed`` (W&B logs the seed as ``config/seed``);
- the config is ``--config-col``, else a ``config`` column, else it is built
  from the hyperparameter values (``lr=0.003,batch_size=50``): runs with the
  same hyperparameters are one config.

Every problem is a one-line :class:`TableError` naming the file and column.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .errors import NoisefloorError
from .vocab import HP_PREFIX, hp_column

#: Column prefixes that mark a hyperparameter, by the convention that writes them.
HP_PREFIXES = (HP_PREFIX, "config/", "config.", "params.", "param.")


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


def normalize(runs: pd.DataFrame, *, source: str = "runs table", config_col: str | None = None,
              seed_col: str | None = None, hparams=None) -> NormalizedTable:
    """Map a tracker's export onto ``config``, ``seed`` and ``hp.*`` columns (see the module doc).

    ``hparams`` names columns that are hyperparameters whatever their prefix
    (``dvc exp show --csv`` writes params as ``train.lr``).
    """
    notes = []
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
            raise TableError(f"{source}: no 'config' column and no hyperparameter columns to build one from "
                             f"(name it with --config-col, or prefix hyperparameters with "
                             f"{', '.join(HP_PREFIXES)})")
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


def busiest_config(runs: pd.DataFrame) -> str:
    """The config with the most runs (the first of equals): the noise condition of a table without a named baseline."""
    counts = runs["config"].value_counts(sort=False)
    return str(counts.idxmax())
