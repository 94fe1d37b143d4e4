"""The project's words, written once: verdicts, pipeline stages and hyperparameter columns (and which
sources of randomness a model of the built-in shape cannot vary, which the analysis and the params both ask).

Every module that names a verdict, a stage or a hyperparameter column takes
the name from here, so a renamed verdict or stage is one edit and a typo is
an ``AttributeError``, not a silent mismatch between the analysis and a
renderer. The members are strings (``Verdict.BETTER == "better"``): they go
into tables, JSON and CSV as their plain values. How a word is *shown* (its
colour, label and meaning) is :mod:`noisefloor.display`'s.
"""

from __future__ import annotations

from enum import Enum


class Word(str, Enum):
    """A name that is its own string value, in comparisons, f-strings, JSON and CSV alike."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


class Verdict(Word):
    """A variant's verdict against the baseline (``comparisons.csv``'s ``verdict``)."""

    BETTER = "better"                        # the simultaneous interval lies on the better side of 0
    WORSE = "worse"                          # ... on the worse side of 0
    EQUIVALENT = "equivalent"                # ... within ± the equivalence margin
    INCONCLUSIVE = "inconclusive"            # neither: more seeds would decide
    INSUFFICIENT_RUNS = "insufficient_runs"  # fewer than two usable runs: no interval


#: The verdicts in reading order (the report's, the figures' and the CLI's).
VERDICTS: tuple[Verdict, ...] = tuple(Verdict)
#: The verdicts that end a variant's question (an adaptive experiment stops adding its seeds).
DECIDED: tuple[Verdict, ...] = (Verdict.BETTER, Verdict.WORSE, Verdict.EQUIVALENT)


class Importance(Word):
    """A hyperparameter's verdict (``importance.csv``'s ``verdict``)."""

    MATTERS = "matters"                      # a change of it is better or worse than the baseline
    NEGLIGIBLE = "negligible"                # every change of it is equivalent
    INCONCLUSIVE = "inconclusive"
    INSUFFICIENT_RUNS = "insufficient_runs"



class Stage(Word):
    """The pipeline's steps: Snakemake's rules and, where they have one, DVC's stages of the same name."""

    TRAIN_NOISE = "train_noise"              # the baseline at every noise seed (the noise condition)
    TRAIN_SIGNAL = "train_signal"            # every variant at every signal seed (the signal condition)
    TRAIN_SWEEP = "train_sweep"              # a sweep's search and confirmation runs
    SWEEP_SELECT = "sweep_select"            # the search's record: which configs to confirm
    TRAIN_DECOMPOSE = "train_decompose"      # the baseline with one source of randomness at a time
    DECOMPOSE_RECORD = "decompose_record"
    PLAN_ROUND = "plan_round"                # an adaptive experiment's next round (Snakemake)
    TRAIN_ADAPTIVE = "train_adaptive"        # every round in one stage (DVC)
    AGGREGATE = "aggregate"
    ANALYZE = "analyze"
    PLOT = "plot"
    REPORT_HTML = "report_html"


#: The spending functions of an adaptive experiment (``adaptive.spending``).
SPENDING = ("obrien_fleming", "pocock")

#: The prefix that marks a hyperparameter column of a runs table (``hp.lr``).
HP_PREFIX = "hp."


def hp_column(name: str) -> str:
    """The runs-table column of hyperparameter ``name`` (``"lr"`` -> ``"hp.lr"``)."""
    return f"{HP_PREFIX}{name}"


def is_hp_column(column) -> bool:
    """Whether ``column`` holds a hyperparameter (``hp.*``)."""
    return isinstance(column, str) and column.startswith(HP_PREFIX)


def hp_name(column: str) -> str:
    """The hyperparameter a column holds (``"hp.lr"`` -> ``"lr"``; other names unchanged)."""
    return column.removeprefix(HP_PREFIX)


def inert_sources(dropout: float, num_layers: int) -> dict[str, str]:
    """The built-in model's sources of randomness that nothing varies in a model of this shape, each with why.

    Dropout acts between the LSTM's layers: with a rate of 0, or one layer, its random draws change nothing,
    so a seed's dropout stream is inert (the decomposition leaves it out, the noise floor does not name it).
    """
    if dropout == 0:
        return {"dropout": "the model has no dropout (model.dropout 0)"}
    if num_layers == 1:
        return {"dropout": "dropout acts between LSTM layers and the model has one (model.num_layers 1)"}
    return {}
