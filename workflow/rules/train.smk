# One job per (config, seed): the unit of caching and of scheduling.
# Configs with train.seed_batch > 1 (a GPU option) train in batches instead, see below.


rule train:
    output:
        metrics=f"{RUNS_DIR}/{{config}}/seed{{seed}}/metrics.json",
        history=f"{RUNS_DIR}/{{config}}/seed{{seed}}/history.csv",
    log:
        "logs/train/{config}/seed{seed}.log",
    wildcard_constraints:
        config=UNBATCHED_CONFIGS,
    params:
        # Snakemake reruns a job when these change: the resolved config's hash
        # covers every hyperparameter, so an edit retrains only what it touches.
        config_hash=get_config_hash,
        seed=lambda w: int(w.seed),
        params_file=PARAMS_FILE,
        runs_dir=RUNS_DIR,
    # Scheduler requests (params' resources section; see docs/cluster.md). With
    # the Slurm executor: threads -> --cpus-per-task, mem_mb -> --mem,
    # runtime (minutes) -> --time, gpu -> --gpus (left out when 0).
    threads: get_threads
    resources:
        mem_mb=P.resources.mem_mb,
        runtime=P.resources.runtime,
        gpu=P.resources.gpus,
    shell:
        "noisefloor train --params {params.params_file} --config {wildcards.config} "
        "--seed {wildcards.seed} --runs-dir {params.runs_dir} 2> {log}"


# train.seed_batch = K > 1: one job per block of seeds (seeds K*b .. K*b+K-1 that
# the config runs), trained as one batched model; still one metrics.json and
# history.csv per (config, seed). The block is the unit of caching: adding a
# seed to a block that has finished runs retrains that block.
for _config, _seeds in get_seed_batches():

    rule:
        name:
            f"train_batch_{_config}_{_seeds[0]}"
        output:
            metrics=[f"{RUNS_DIR}/{_config}/seed{s}/metrics.json" for s in _seeds],
            history=[f"{RUNS_DIR}/{_config}/seed{s}/history.csv" for s in _seeds],
        log:
            f"logs/train/{_config}/seeds{_seeds[0]}-{_seeds[-1]}.log",
        params:
            config_hash=P.resolve(_config).config_hash,
            seeds=list(_seeds),
            seed_args=" ".join(f"--seed {s}" for s in _seeds),
            config=_config,
            params_file=PARAMS_FILE,
            runs_dir=RUNS_DIR,
        threads: P.resolve(_config).train.threads
        resources:
            mem_mb=P.resources.mem_mb,
            runtime=P.resources.runtime,
            gpu=P.resources.gpus,
        shell:
            "noisefloor train --params {params.params_file} --config {params.config} "
            "{params.seed_args} --runs-dir {params.runs_dir} 2> {log}"
