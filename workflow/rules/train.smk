# One job per (config, seed): the unit of caching and of scheduling.


rule train:
    output:
        metrics=f"{RUNS_DIR}/{{config}}/seed{{seed}}/metrics.json",
        history=f"{RUNS_DIR}/{{config}}/seed{{seed}}/history.csv",
    log:
        "logs/train/{config}/seed{seed}.log",
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
