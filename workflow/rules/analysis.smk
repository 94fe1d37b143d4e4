# Aggregate -> analyze -> plot -> report. Cheap; each reruns only when its inputs or settings change.

# On a cluster these run in the Snakemake process that submits the training jobs,
# not as jobs of their own: each takes seconds, and as a Slurm job it would wait
# in the queue, spend 5-10 s starting Snakemake and a status-polling interval
# being noticed. They still declare their (small) resources, for executors that
# ignore localrules and for anyone who removes them from this list.
localrules:
    aggregate,
    analyze,
    plot,
    report_html,


rule aggregate:
    input:
        metrics=get_run_metrics(),
    output:
        runs=f"{RESULTS}/runs.csv",
        histories=f"{RESULTS}/histories.csv",
    log:
        "logs/aggregate.log",
    params:
        runs=[f"{c}:{s}:{P.resolve(c).config_hash}" for c, s in P.runs()],
        params_file=PARAMS_FILE,
        runs_dir=RUNS_DIR,
    threads: LIGHT_THREADS
    resources:
        mem_mb=LIGHT_MEM_MB,
        runtime=LIGHT_RUNTIME,
    shell:
        "noisefloor aggregate --params {params.params_file} --runs-dir {params.runs_dir} "
        "--out {output.runs} --histories-out {output.histories} 2> {log}"


rule analyze:
    input:
        runs=rules.aggregate.output.runs,
    output:
        summary=report(f"{RESULTS}/analysis/summary.json", caption="../report/summary.rst", category="Numbers"),
        comparisons=report(f"{RESULTS}/analysis/comparisons.csv", caption="../report/comparisons.rst",
                           category="Numbers"),
        importance=f"{RESULTS}/analysis/importance.csv",
        excluded=f"{RESULTS}/analysis/excluded.csv",
        # the flat headline numbers (what DVC shows as metrics); same file under both engines
        metrics=f"{RESULTS}/analysis/metrics.json",
    log:
        "logs/analyze.log",
    params:
        stats=vars(P.stats),
        params_file=PARAMS_FILE,
        out=f"{RESULTS}/analysis",
    threads: LIGHT_THREADS
    resources:
        mem_mb=LIGHT_MEM_MB,
        runtime=LIGHT_RUNTIME,
    shell:
        "noisefloor analyze {input.runs} --params {params.params_file} --out {params.out} 2> {log}"


PLOTS = ["noise_vs_signal", "config_distributions", "differences", "learning_curves", "importance"]


rule plot:
    input:
        runs=rules.aggregate.output.runs,
        histories=rules.aggregate.output.histories,
        summary=rules.analyze.output.summary,
    output:
        **{
            name: report(f"{RESULTS}/plots/{name}.png", caption=f"../report/{name}.rst", category="Figures")
            for name in PLOTS
        },
    log:
        "logs/plot.log",
    params:
        analysis=f"{RESULTS}/analysis",
        out=f"{RESULTS}/plots",
    threads: LIGHT_THREADS
    resources:
        mem_mb=LIGHT_MEM_MB,
        runtime=LIGHT_RUNTIME,
    shell:
        "noisefloor plot --runs {input.runs} --histories {input.histories} "
        "--analysis {params.analysis} --out {params.out} 2> {log}"


rule report_html:
    input:
        runs=rules.aggregate.output.runs,
        summary=rules.analyze.output.summary,
        plots=rules.plot.output,
    output:
        f"{RESULTS}/report.html",
    log:
        "logs/report.log",
    params:
        params_file=PARAMS_FILE,
        analysis=f"{RESULTS}/analysis",
        plots=f"{RESULTS}/plots",
    threads: LIGHT_THREADS
    resources:
        mem_mb=LIGHT_MEM_MB,
        runtime=LIGHT_RUNTIME,
    shell:
        "noisefloor report --params {params.params_file} --runs {input.runs} --analysis {params.analysis} "
        "--plots {params.plots} --out {output} 2> {log}"
