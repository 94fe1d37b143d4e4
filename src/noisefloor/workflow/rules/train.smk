# One job per (config, seed): the unit of caching and of scheduling. The noise
# condition (the baseline at every noise seed) and the signal condition (every
# variant at every signal seed) are two rules with the names of DVC's two
# training stages; they run the same command.
# Configs with train.seed_batch > 1 (a GPU option) train in batches instead, see below.
# A job trains its own run(s) in one process (-j 1): Snakemake runs the jobs in
# parallel itself, each holding its rule's threads.

TRAIN_SHELL = (
    "\"$NOISEFLOOR_PYTHON\" -m noisefloor train --params {params.params_file:q} --config {wildcards.config} "
    "--seed {wildcards.seed} --runs-dir {params.runs_dir:q} -j 1 2> {log:q}"
)


rule train_noise:
    output:
        **step_outputs("train_noise"),
    log:
        f"{LOGS}/train/{{config}}/seed{{seed}}.log",
    wildcard_constraints:
        config=unbatched([BASELINE]),
    params:
        # Snakemake reruns a job when a param changes: the resolved config's hash
        # covers every hyperparameter (an edit retrains only the configs it
        # touches), the code fingerprint the code that shapes a run's numbers.
        config_hash=get_config_hash,
        code=code("train_noise"),
        repeat=get_repeat,
        params_file=PARAMS_FILE,
        runs_dir=lambda w, output: nf_pipeline.runs_folder(output.metrics),
    conda:
        CONDA_ENV
    # Scheduler requests (params' resources section; see docs/cluster.md). With
    # the Slurm executor: threads -> --cpus-per-task, mem_mb -> --mem,
    # runtime (minutes) -> --time, gpu -> --gpus (left out when 0).
    threads: get_threads
    resources:
        mem_mb=P.resources.mem_mb,
        runtime=P.resources.runtime,
        gpu=P.resources.gpus,
    shell:
        TRAIN_SHELL


use rule train_noise as train_signal with:
    output:
        **step_outputs("train_signal"),
    # (its params are train_noise's: the two steps share their code, so their fingerprints are equal)
    wildcard_constraints:
        config=unbatched(VARIANTS),


use rule train_noise as train_sweep with:
    output:
        **step_outputs("train_sweep"),
    # (the search and its confirmation: a sweep's configs in the sweep's folder)
    wildcard_constraints:
        config=unbatched(SWEEP),


use rule train_noise as train_decompose with:
    output:
        **step_outputs("train_decompose"),
    # (the noise budget by source: the baseline with one source varying, in the decomposition's folder)
    wildcard_constraints:
        config=unbatched(DECOMPOSE),


rule decompose_record:
    input:
        metrics=[run_outputs(c, s)["metrics"] for c in DECOMPOSE for s in P.seeds_for(c)],
    output:
        **step_outputs("decompose_record"),
    log:
        f"{LOGS}/decompose_record.log",
    params:
        code=code("decompose_record"),
        params_file=PARAMS_FILE,
    conda:
        CONDA_ENV
    threads: LIGHT_THREADS
    resources:
        mem_mb=LIGHT_MEM_MB,
        runtime=LIGHT_RUNTIME,
    shell:
        "\"$NOISEFLOOR_PYTHON\" -m noisefloor decompose record --params {params.params_file:q} "
        "--out {output.decompose:q} 2> {log:q}"


# The search's record, and which of its configs to confirm at fresh seeds: known
# only once the search's runs are in, so a checkpoint (Snakemake then adds the
# confirmation's runs to the jobs; see get_run_metrics).
checkpoint sweep_select:
    input:
        metrics=[run_outputs(c, s)["metrics"] for c in SWEEP for s in P.seeds_for(c)],
    output:
        **step_outputs("sweep_select"),
    log:
        f"{LOGS}/sweep_select.log",
    params:
        code=code("sweep_select"),
        params_file=PARAMS_FILE,
        runs_dir=lambda w, output: nf_pipeline.runs_folder(output.sweep, depth=2),
    conda:
        CONDA_ENV
    threads: LIGHT_THREADS
    resources:
        mem_mb=LIGHT_MEM_MB,
        runtime=LIGHT_RUNTIME,
    shell:
        "\"$NOISEFLOOR_PYTHON\" -m noisefloor sweep select --params {params.params_file:q} --runs-dir {params.runs_dir:q} "
        "--out {output.sweep:q} 2> {log:q}"


# train.seed_batch = K > 1: one job per block of seeds (seeds K*b .. K*b+K-1 that
# the config runs), trained as one batched model; still one metrics.json and
# history.csv per (config, seed). The block is the unit of caching: adding a
# seed to a block that has finished runs retrains that block.
for _config, _seeds in P.seed_batches():

    rule:
        name:
            f"train_batch_{_config}_{_seeds[0]}"
        output:
            metrics=[run_outputs(_config, s)["metrics"] for s in _seeds],
            history=[run_outputs(_config, s)["history"] for s in _seeds],
        log:
            f"{LOGS}/train/{_config}/seeds{_seeds[0]}-{_seeds[-1]}.log",
        params:
            config_hash=P.resolve(_config).config_hash,
            code=code("train_noise"),
            seeds=list(_seeds),
            seed_args=" ".join(f"--seed {s}" for s in _seeds),
            config=_config,
            params_file=PARAMS_FILE,
            runs_dir=lambda w, output: nf_pipeline.runs_folder(output.metrics[0]),
        conda:
            CONDA_ENV
        threads: P.resolve(_config).threads
        resources:
            mem_mb=P.resources.mem_mb,
            runtime=P.resources.runtime,
            gpu=P.resources.gpus,
        shell:
            "\"$NOISEFLOOR_PYTHON\" -m noisefloor train --params {params.params_file:q} --config {params.config} "
            "{params.seed_args} --runs-dir {params.runs_dir:q} -j 1 2> {log:q}"


# An adaptive experiment (params' adaptive section): round k's record says what
# round k + 1 adds, known only once round k's runs are in, so a checkpoint per
# round; the training rules above train the runs (see get_adaptive_metrics).
checkpoint plan_round:
    input:
        metrics=get_round_metrics,
    output:
        record=f"{RESULTS}/{nf_pipeline.STEP['plan_round'].outputs[0]}",
    log:
        f"{LOGS}/plan_round/round{{round}}.log",
    params:
        # the settings the rounds are replayed with: an edit of them redoes every record
        stats=vars(P.stats),
        adaptive=vars(P.adaptive) if P.adaptive else None,
        code=code("plan_round"),
        params_file=PARAMS_FILE,
        runs_dir=f"{RESULTS}/runs",
    wildcard_constraints:
        round=r"\d+",
    conda:
        CONDA_ENV
    threads: LIGHT_THREADS
    resources:
        mem_mb=LIGHT_MEM_MB,
        runtime=LIGHT_RUNTIME,
    shell:
        "\"$NOISEFLOOR_PYTHON\" -m noisefloor adaptive record --params {params.params_file:q} "
        "--runs-dir {params.runs_dir:q} --rounds {wildcards.round} --out {output.record:q} 2> {log:q}"
