# Shared setup: load and validate params, the (config x seed) grid, wildcard
# constraints and input functions. Logic lives in src/noisefloor/; the steps'
# outputs, figures, captions and code come from noisefloor.pipeline (the same
# table dvc.yaml is checked against).
import os
import sys
from pathlib import Path

from snakemake_interface_executor_plugins.settings import DeploymentMethod

from noisefloor import data as nf_data
from noisefloor import determinism as nf_determinism
from noisefloor import io as nf_io
from noisefloor import params as nf_params
from noisefloor import pipeline as nf_pipeline
from noisefloor import records as nf_records
from noisefloor.vocab import Stage

# params.yaml is read by noisefloor's own loader (the same schema and checks the
# CLI and DVC use), not by `configfile:`, so every engine sees identical values.
PARAMS_FILE = config.get("params", "params.yaml")
RESULTS = os.path.normpath(str(config.get("results", "results")))
try:
    P = nf_params.load(PARAMS_FILE)
    if P.program.builtin:
        nf_data.check_available(P.data)   # a missing dataset stops the workflow before any job
except (nf_params.ParamsError, nf_data.DataError) as exc:
    sys.exit(f"noisefloor: error: {exc}")

# The package runs as `"$NOISEFLOOR_PYTHON" -m noisefloor` in every job, with
# the interpreter that runs this workflow, so no job depends on PATH (an
# unactivated venv, a cluster node's login shell). Jobs inherit the variable (a
# cluster job's Snakemake sets it again). It is set here, not passed as a param,
# so moving the checkout or the venv reruns nothing. With
# --software-deployment-method conda, each job runs in workflow/envs/noisefloor.yaml
# instead, with that environment's python and this installation's noisefloor.
if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method:
    os.environ.update(NOISEFLOOR_PYTHON="python", PYTHONPATH=os.pathsep.join(
        filter(None, [str(Path(nf_params.__file__).resolve().parents[1]), os.environ.get("PYTHONPATH")])))
else:
    os.environ.update(NOISEFLOOR_PYTHON=sys.executable)
# The software every rule needs (documented for every rule; used with --sdm conda).
CONDA_ENV = "../envs/noisefloor.yaml"

# Logs live with the results they describe: two experiments never share a log.
LOGS = f"{RESULTS}/logs"

# What each of the small rules after training (aggregate, analyze, plot,
# report) asks for. They read CSV/JSON tables and draw a few figures: one core,
# well under 1 GB and seconds of work even for thousands of runs. Fixed here
# rather than in params.yaml because they do not grow with the model or data;
# training's needs do, and come from the params' resources section.
LIGHT_THREADS = 1
LIGHT_MEM_MB = 1000
LIGHT_RUNTIME = 15  # minutes

CONFIGS = list(P.config_names)
BASELINE = P.stats.baseline
VARIANTS = [c for c in CONFIGS if c != BASELINE and c not in P.decompose_configs]


wildcard_constraints:
    seed=r"\d+",


# Why finished runs will train again, one line per reason, before anything is scheduled
# (Snakemake's own words are "Params have changed" and two hashes). Not in a cluster job's
# Snakemake, which runs one job.
if workflow.is_main_process:
    from noisefloor import status as nf_status

    for _line in nf_status.status(P, f"{RESULTS}/runs").lines()[:-1]:
        print(f"noisefloor: {_line}", file=sys.stderr)


def step_outputs(step, **wildcards):
    """A step's outputs from noisefloor.pipeline, named by file stem (metrics, runs, summary, ...)."""
    return {Path(out).stem: f"{RESULTS}/{out}".format(**wildcards) if wildcards else f"{RESULTS}/{out}"
            for out in nf_pipeline.STEP[step].outputs}


def code(step):
    """The content hash of the code behind a step (a param: editing that code reruns the step).

    A training step's code is the built-in model's, or the user's program's declared deps.
    """
    if step.startswith("train_"):
        return P.resolve(BASELINE).code_fingerprint
    return nf_pipeline.code_fingerprint(step)


def caption(name):
    """The Snakemake report caption of a figure or analysis file, written from noisefloor.pipeline.

    Snakemake reads captions from .rst files; these are generated (only when their
    text changes) under .snakemake/, so the table stays their one source.
    """
    path = Path(".snakemake", "noisefloor", "captions", f"{name}.rst").resolve()
    text = nf_pipeline.caption_rst(name)
    if not path.is_file() or path.read_text() != text:
        nf_io.write_text(path, text)
    return str(path)


SWEEP = list(P.sweep_configs)
DECOMPOSE = list(P.decompose_configs)


def run_outputs(config, seed):
    """A run's outputs (metrics, history), under the results folder."""
    return {name: f"{RESULTS}/{path}" for name, path in nf_pipeline.run_outputs(P, config, seed).items()}


def get_run_metrics():
    """metrics.json of every run the experiment names (baseline x noise seeds, variants x signal seeds, the
    sweep's configs at its seeds)."""
    return [run_outputs(c, s)["metrics"] for c, s in P.runs()]


def get_confirm_metrics(wildcards):
    """metrics.json of the confirmation's runs: known once the search has run (the checkpoint's choice)."""
    if P.sweep is None or not P.sweep.confirm_top_k:
        return []
    record = nf_records.SweepRecord.read(checkpoints.sweep_select.get().output.sweep)
    return [run_outputs(c, s)["metrics"] for c in record.confirmed for s in P.sweep.confirm_seeds]


def get_decompose_record():
    """The decomposition's record (without a decompose section, one saying so, as under DVC)."""
    return step_outputs("decompose_record")["decompose"]


def get_sweep_record():
    """The search's record (the sweep_select checkpoint's; without a sweep, one saying so, as under DVC)."""
    return step_outputs("sweep_select")["sweep"]


def get_config_hash(wildcards):
    """Everything that shapes a run except its seed: a changed value retrains only its config."""
    return P.resolve(wildcards.config).config_hash


def get_repeat(wildcards):
    """program.check_determinism: whether this run is trained twice (turning the check on reruns that run)."""
    return (wildcards.config, int(wildcards.seed)) == nf_determinism.checked_run(P)


def alternatives(names):
    """A wildcard constraint matching exactly these names (nothing when there are none)."""
    return "|".join(names) or "(?!)"


def unbatched(names):
    """The configs trained one job per (config, seed); the others (train.seed_batch > 1) by seed block."""
    return alternatives([c for c in names if P.resolve(c).seed_batch == 1])


def get_threads(wildcards):
    return P.resolve(wildcards.config).threads


def get_final_outputs():
    """Every output of the steps after training (the report is the last)."""
    return [path for step in (Stage.AGGREGATE, Stage.ANALYZE, Stage.PLOT, Stage.REPORT_HTML)
            for path in step_outputs(step).values()]


def adaptive_metrics(rounds=None):
    """metrics.json of the runs of rounds 1 .. ``rounds`` (all of them: None): round 1's, then what each
    round's record (the plan_round checkpoint's) added, until one adds nothing."""
    pairs = list(P.runs())
    k = 1
    while rounds is None or k < rounds:
        record = nf_records.RoundRecord.read(checkpoints.plan_round.get(round=k).output.record)
        if not record.next_round:
            break
        pairs += list(record.next_round)
        k += 1
    return [run_outputs(c, s)["metrics"] for c, s in pairs]


def get_round_metrics(wildcards):
    """metrics.json of every run of rounds 1 .. {round}."""
    return adaptive_metrics(int(wildcards.round))


def get_adaptive_metrics(wildcards):
    """metrics.json of every run the adaptive experiment trains.

    Without an adaptive section: round 1's record alone (one saying so, as under DVC)."""
    if P.adaptive is None:
        return [f"{RESULTS}/{nf_pipeline.ADAPTIVE_RECORD.format(round=1)}"]
    return adaptive_metrics()
