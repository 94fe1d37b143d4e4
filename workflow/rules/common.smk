# Shared setup: load and validate params, the (config x seed) grid, wildcard
# constraints and input functions. Logic lives in src/noisefloor/.
import sys

from noisefloor import data as nf_data
from noisefloor import params as nf_params

# params.yaml is read by noisefloor's own loader (the same schema and checks the
# CLI and DVC use), not by `configfile:`, so every engine sees identical values.
PARAMS_FILE = config.get("params", "params.yaml")
RESULTS = config.get("results", "results")
try:
    P = nf_params.load(PARAMS_FILE)
    nf_data.check_available(P.data)   # a missing dataset stops the workflow before any job
except (nf_params.ParamsError, nf_data.DataError) as exc:
    sys.exit(f"noisefloor: error: {exc}")

RUNS_DIR = f"{RESULTS}/runs"

# What each of the small rules after training (aggregate, analyze, plot,
# report) asks for. They read CSV/JSON tables and draw a few figures: one core,
# well under 1 GB and seconds of work even for thousands of runs. Fixed here
# rather than in params.yaml because they do not grow with the model or data;
# training's needs do, and come from the params' resources section.
LIGHT_THREADS = 1
LIGHT_MEM_MB = 1000
LIGHT_RUNTIME = 15  # minutes

CONFIGS = list(P.config_names)


wildcard_constraints:
    config="|".join(CONFIGS),
    seed=r"\d+",


def get_run_metrics():
    """metrics.json of every run the experiment needs (baseline x noise seeds, variants x signal seeds)."""
    return [f"{RUNS_DIR}/{c}/seed{s}/metrics.json" for c, s in P.runs()]


def get_config_hash(wildcards):
    """Everything that shapes a run except its seed: a changed value retrains only its config."""
    return P.resolve(wildcards.config).config_hash


# Configs trained one job per (config, seed); the others (train.seed_batch > 1) by seed block.
UNBATCHED_CONFIGS = "|".join(c for c in CONFIGS if P.resolve(c).train.seed_batch == 1) or "(?!)"


def get_seed_batches():
    """(config, seeds) of each batch job: the config's seeds grouped by seed // seed_batch."""
    batches = []
    for c in CONFIGS:
        k = P.resolve(c).train.seed_batch
        if k > 1:
            blocks = {}
            for s in sorted(P.seeds_for(c)):
                blocks.setdefault(s // k, []).append(s)
            batches += [(c, tuple(seeds)) for _, seeds in sorted(blocks.items())]
    return batches


def get_threads(wildcards):
    return P.resolve(wildcards.config).train.threads


def get_final_outputs():
    return [
        f"{RESULTS}/runs.csv",
        f"{RESULTS}/analysis/summary.json",
        f"{RESULTS}/report.html",
    ]
