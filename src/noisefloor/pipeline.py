"""The pipeline's facts, written once: its steps, what each writes, its figures, and the code behind each.

Both engines run the same steps through the same subcommands. The Snakemake
rules read their outputs, figures, captions and code fingerprints from here;
``dvc.yaml`` stays a plain file a DVC user can read, and a test checks it
against this table (every stage, output, code dependency and figure) so the
two cannot drift. The CLI names the files it writes from here, and the report
takes its captions from here.

A step's *code* is the package files that shape its outputs' content. Their
content hash, :func:`code_fingerprint`, is recorded in every run's
``metrics.json`` and is part of what makes Snakemake rerun a step (a rule
param); DVC gets the same files as ``deps``. Editing the model retrains every
run; editing the report's code rewrites only the report; editing anything else
(the README, a test, a benchmark) reruns nothing.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from . import decompose as _decompose
from .io import files_under, fingerprint
from .sweep import FOLDER, RECORD
from .vocab import Stage

PACKAGE_DIR = Path(__file__).resolve().parent
#: Where the package's files are in the source tree (how dvc.yaml names them).
SOURCE_PREFIX = "src/noisefloor/"


@dataclass(frozen=True)
class Figure:
    """One figure of the report: its key, file name (in the plots folder) and caption."""

    key: str
    title: str
    caption: str

    @property
    def file(self) -> str:
        return f"{self.key}.png"


FIGURES: tuple[Figure, ...] = (
    Figure("noise_vs_signal", "Noise vs signal",
           "Left: the baseline retrained under many seeds with nothing else changed; its spread (box, "
           "points, shaded mean ± 1 sd) is the noise floor. Right: every config at the same few shared "
           "seeds; points of one seed share a colour and are joined by a line, the black bar is each "
           "config's mean. Both panels share the y axis, so compare their spreads directly. The title "
           "gives the noise floor and the share of the spread across configs at a fixed seed that the "
           "hyperparameters explain."),
    Figure("config_distributions", "Every run by config",
           "Every successful run of every config (points; a box from 10 runs on). The band is the "
           "baseline mean ± the noise floor. Colours give each variant's verdict: green better, red "
           "worse, blue equivalent, grey inconclusive, amber too few runs. Diverged or excluded runs "
           "are not drawn; their count is noted below the plot."),
    Figure("differences", "Differences from the baseline",
           "One row per variant: the point is its difference from the baseline (variant minus "
           "baseline), the bar its simultaneous interval, the same as in the verdict table. The "
           "vertical line is zero and the shaded band ± the equivalence margin. Better or worse: the "
           "interval misses zero; equivalent: it lies inside the band."),
    Figure("learning_curves", "Learning curves",
           "Left: the baseline under different seeds (what seed noise looks like during training). "
           "Right: every config at every shared seed (thin) and its mean over them (bold). The lower "
           "row zooms on the last third of training. The title flags configs shown to gain more than "
           "the noise floor over that last third (the lower bound of the gain above it): not converged, "
           "consider more epochs."),
    Figure("search_payoff", "Expected best against the number of trials",
           "How many configs were worth trying? For n trials, the best score a search of n configs is "
           "expected to find (Dodge et al. 2019: the expected best of n draws from the observed runs), for "
           "the search (every config at one shared seed; orange) and for re-rolling only the baseline's "
           "seed n times (purple), each with a bootstrap band. A search pays where its curve rises above "
           "re-rolling the seed. The dotted line marks the trials after which the expected best is within "
           "one noise floor of the whole search's: more trials gain less than seed noise."),
    Figure("marginal_effects", "What drives the search",
           "The search (every config at one shared seed) against each hyperparameter it varies: one point "
           "per config, a log axis for a hyperparameter spanning 20x or more, the band the baseline's mean ± "
           "the noise floor. Each title gives the hyperparameter's share of the search's spread net of what "
           "chance groupings explain, with a permutation p-value: a hyperparameter that does nothing comes "
           "out near 0 %."),
    Figure("noise_budget", "Where the noise comes from",
           "The baseline run with one source of randomness changing from seed to seed and every other held "
           "at a reference seed (init: the initial weights; order: the order of the examples; dropout: its "
           "masks; data: which examples train and which validate), then with all of them changing. Each bar "
           "is the standard deviation that source causes alone, with its interval and its share of the "
           "variance of all of them together. The dashed line is the noise floor the verdicts use, with the "
           "sources it varies. When the parts sum to far more than the whole, one source alone already "
           "reaches most of the spread (chaotic training): a share is then what a source can cause, not a "
           "slice."),
    Figure("importance", "Hyperparameter importance",
           "Each hyperparameter's largest difference from the baseline among its one-at-a-time "
           "variants, in noise floors (for one a search varies: the range of its levels' means over the "
           "searched configs, judged by the search's permutation test). It matters when one of those "
           "variants is better or worse (green: better, red: worse, dark grey: both ways, or over all "
           "runs), is negligible when all are equivalent (blue), and is inconclusive otherwise (grey); the "
           "same intervals as the verdict table."),
)
FIGURE = {f.key: f for f in FIGURES}


def figures_shown(summary, importance=None) -> tuple[Figure, ...]:
    """The figures the report shows for an analysis: a feature the experiment does not use leaves none.

    The engines still get every file (their outputs are fixed), but the report
    shows the learning curves only with per-epoch histories, the search's two
    figures only for a search, the noise budget only with a decomposition and
    the importance only when some hyperparameter was varied.
    """
    curve = summary.noise_curve
    used = {
        "learning_curves": summary.not_converged is not None,     # null without per-epoch histories
        "search_payoff": summary.search_curve is not None and curve is not None and len(curve.n) >= 2,
        "marginal_effects": bool(summary.search_importance),
        "noise_budget": any(r.sd is not None for r in summary.noise_sources or []),
        "importance": importance is not None and len(importance) > 0,
    }
    return tuple(f for f in FIGURES if used.get(f.key, True))


#: What ``noisefloor analyze`` writes into its folder; summary.json last (it marks a finished analysis).
ANALYSIS_FILES: tuple[str, ...] = ("comparisons.csv", "importance.csv", "excluded.csv", "metrics.json",
                                   "summary.json")

# The package files (or folders) behind each step's numbers, relative to the package.
# A run's numbers: the loop, the model, the data and its splits, the params'
# resolution (defaults, the config hash) and the way results are written.
RUN_CODE = ("batched.py", "data.py", "datasets", "io.py", "models.py", "params.py", "protocol.py",
            "runfiles.py", "schemas", "train.py", "vocab.py")


@dataclass(frozen=True)
class Step:
    """One step of the pipeline, the same under both engines (a Snakemake rule, a DVC stage).

    ``outputs`` are relative to the results folder; ``code`` to the package.
    """

    name: str
    outputs: tuple[str, ...]
    code: tuple[str, ...]
    #: the step quotes the whole params file, so any edit of it reruns the step (DVC
    #: and Snakemake then take the file as an input, not just the keys it reads)
    quotes_params: bool = False
    #: the DVC stage that does this step (default: the step's name)
    dvc_stage: str | None = None
    #: a folder holding every output, which DVC tracks as one output: a stage
    #: cannot list outputs it learns only as it runs (a sweep's confirmation)
    folder: str | None = None

    @property
    def stage(self) -> str:
        return self.dvc_stage or self.name

    @property
    def dvc_outputs(self) -> tuple[str, ...]:
        """What the DVC stage declares for this step."""
        return (self.folder,) if self.folder else self.outputs


RUN_OUTPUTS = ("runs/{config}/seed{seed}/metrics.json", "runs/{config}/seed{seed}/history.csv")
SWEEP_FOLDER = f"runs/{FOLDER}"
DECOMPOSE_FOLDER = f"runs/{_decompose.FOLDER}"
#: The folders of the runs folder that hold a group of configs' runs (a sweep's, the decomposition's).
_GROUP_FOLDERS = (FOLDER, _decompose.FOLDER)
#: An adaptive experiment's records (outside runs/: the stage that writes them reads runs/).
ADAPTIVE_FOLDER = "adaptive"
ADAPTIVE_RECORD = f"{ADAPTIVE_FOLDER}/round{{round}}.json"


def run_outputs(params, config: str, seed: int) -> dict[str, str]:
    """Run (``config``, ``seed``)'s outputs relative to the results folder, by file stem (``metrics``,
    ``history``): a sweep's and the decomposition's configs keep theirs in folders of their own."""
    step = Stage.TRAIN_SWEEP if config in params.sweep_configs else \
        Stage.TRAIN_DECOMPOSE if config in params.decompose_configs else Stage.TRAIN_NOISE
    return {Path(out).stem: out.format(config=config, seed=seed) for out in STEP[step].outputs}


def runs_folder(path: str | Path, depth: int = 3) -> str:
    """The runs folder above a file ``depth`` levels inside it (a run's file: ``<runs>/<config>/seed<s>/<file>``,
    or one level deeper in a group's folder, ``<runs>/sweep/...``; a group's record: depth 2)."""
    folder = Path(path).parents[depth - 1]
    return str(folder.parent if depth == 3 and folder.name in _GROUP_FOLDERS else folder)


def _runs_in(folder: str) -> tuple[str, ...]:
    """The run outputs of a group of configs kept in ``folder`` (``runs/<folder>/<config>/seed<s>/...``)."""
    return tuple(out.replace("runs/", f"{folder}/", 1) for out in RUN_OUTPUTS)

STEPS: tuple[Step, ...] = (
    # The noise condition (the baseline at every noise seed) and the signal
    # condition (every variant at every signal seed): the same code, one run per output pair.
    Step(Stage.TRAIN_NOISE, RUN_OUTPUTS, RUN_CODE),
    Step(Stage.TRAIN_SIGNAL, RUN_OUTPUTS, RUN_CODE),
    # A sweep's configs (the search, then the confirmation of its best) in a folder of their own.
    # Snakemake runs one job per run and learns which configs to confirm from a checkpoint,
    # sweep_select, that writes the search's record; DVC, whose stages are fixed before it runs
    # anything, does both in one stage that trains only what is missing (see docs/dvc.md).
    Step(Stage.TRAIN_SWEEP, _runs_in(SWEEP_FOLDER), RUN_CODE, folder=SWEEP_FOLDER),
    Step(Stage.SWEEP_SELECT, (f"{SWEEP_FOLDER}/{RECORD}",),
         ("aggregate.py", "io.py", "params.py", "records.py", "runfiles.py", "schemas", "sweep.py", "vocab.py"),
         dvc_stage=Stage.TRAIN_SWEEP, folder=SWEEP_FOLDER),
    # The noise budget by source (a decompose section): the baseline once per source, then all of
    # them; one job per run under Snakemake, one stage under DVC (as for a sweep), and the record.
    Step(Stage.TRAIN_DECOMPOSE, _runs_in(DECOMPOSE_FOLDER), RUN_CODE, folder=DECOMPOSE_FOLDER),
    Step(Stage.DECOMPOSE_RECORD, (f"{DECOMPOSE_FOLDER}/{_decompose.RECORD}",),
         ("aggregate.py", "decompose.py", "io.py", "params.py", "records.py", "runfiles.py", "schemas", "sweep.py",
          "vocab.py"),
         dvc_stage=Stage.TRAIN_DECOMPOSE, folder=DECOMPOSE_FOLDER),
    # An adaptive experiment's rounds: Snakemake trains each round's runs with the training rules and
    # learns the next round from this checkpoint's record; DVC trains every round in one stage that
    # also writes the records (it trains, so the runs' code is its code too, and the rounds' loop, runner.py).
    Step(Stage.PLAN_ROUND, (ADAPTIVE_RECORD,),
         RUN_CODE + ("adaptive.py", "aggregate.py", "cli.py", "records.py", "runner.py", "runs_table.py", "stats",
                    "summary.py", "sweep.py", "decompose.py"),
         dvc_stage=Stage.TRAIN_ADAPTIVE, folder=ADAPTIVE_FOLDER),
    # (sweep.py draws the sweep's configs: a change of a drawn value changes that config's hash, so the
    # runs follow it; the table of runs is aggregate's)
    Step(Stage.AGGREGATE, ("runs.csv", "histories.csv"),
         ("aggregate.py", "decompose.py", "io.py", "params.py", "runfiles.py", "schemas", "sweep.py", "vocab.py")),
    Step(Stage.ANALYZE, tuple(f"analysis/{name}" for name in ANALYSIS_FILES),
         ("cli.py", "io.py", "runs_table.py", "stats", "summary.py", "tracking.py", "vocab.py")),
    Step(Stage.PLOT, tuple(f"plots/{f.file}" for f in FIGURES),
         ("cli.py", "display.py", "io.py", "pipeline.py", "plots.py", "runs_table.py", "summary.py", "vocab.py")),
    Step(Stage.REPORT_HTML, ("report.html",),
         ("cli.py", "display.py", "io.py", "pipeline.py", "provenance.py", "report.py", "runs_table.py",
          "summary.py", "vocab.py"), quotes_params=True),
)
STEP = {s.name: s for s in STEPS}


#: Captions of the analysis files shown in Snakemake's report (``snakemake --report``).
FILE_CAPTIONS: dict[str, tuple[str, str]] = {
    "summary": ("Summary", "Every number of the analysis in one JSON object (summary.json), each "
                "defined in the HTML report's glossary: the noise floor and its interval, the "
                "hyperparameters' share of the variance, the verdict counts and the settings used."),
    "comparisons": ("Comparisons", "One row per config, the baseline first: its seed-adjusted mean, "
                    "its difference from the baseline (diff = mean - baseline mean), an interval "
                    "that holds for all variants at once (ci_low, ci_high at simultaneous_level), "
                    "the adjusted p-value and the verdict: better or worse when the interval misses "
                    "0, equivalent when it lies within the margin, inconclusive otherwise. "
                    "seeds_needed: how many seeds per config would decide an inconclusive row."),
    "report": ("The answer", "noisefloor's own report, self-contained: the question, the answer in words, "
               "the verdict table (each variant's difference from the baseline, its simultaneous interval and "
               "its verdict), the headline numbers, the figures with their captions, every number defined, "
               "and where the numbers come from."),
}


def caption_rst(name: str) -> str:
    """A figure's or analysis file's caption as reStructuredText (for Snakemake's report)."""
    title, text = (FIGURE[name].title, FIGURE[name].caption) if name in FIGURE else FILE_CAPTIONS[name]
    return f"**{title}.** {text}\n"


def _files(entry: str) -> list[Path]:
    path = PACKAGE_DIR / entry
    if not path.exists():
        raise FileNotFoundError(f"{path}: listed as code of a pipeline step but missing")
    return files_under(path)


@functools.lru_cache(maxsize=None)
def code_fingerprint(step: str) -> str:
    """A content hash of the code behind ``step``'s outputs (16 hex digits).

    Covers each listed file's path (relative to the package) and bytes, so it
    changes exactly when one of them is edited, added or removed, and is the
    same on every machine and under both engines.
    """
    return fingerprint(PACKAGE_DIR, sorted({p for entry in STEP[step].code for p in _files(entry)}))


def run_code_fingerprint() -> str:
    """The fingerprint a training run records (the same for both training steps)."""
    return code_fingerprint(Stage.TRAIN_NOISE)


def code_deps(step: str) -> list[str]:
    """The step's code as source-tree paths (what dvc.yaml lists under ``deps``)."""
    return [SOURCE_PREFIX + entry for entry in STEP[step].code]


def dvc_stages() -> dict[str, list[Step]]:
    """DVC's stages in order, each with the steps it does (one each, but the sweep's stage does two)."""
    stages: dict[str, list[Step]] = {}
    for step in STEPS:
        stages.setdefault(step.stage, []).append(step)
    return stages
