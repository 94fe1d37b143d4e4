# Aggregate -> analyze -> plot -> report. Cheap; each reruns only when its inputs,
# settings or code change. Outputs, captions and code come from noisefloor.pipeline.

# On a cluster these run in the Snakemake process that submits the training jobs,
# not as jobs of their own: each takes seconds, and as a Slurm job it would wait
# in the queue, spend 5-10 s starting Snakemake and a status-polling interval
# being noticed. They still declare their (small) resources, for executors that
# ignore localrules and for anyone who removes them from this list.
localrules:
    sweep_select,
    decompose_record,
    plan_round,
    aggregate,
    analyze,
    plot,
    report_html,


rule aggregate:
    input:
        metrics=get_run_metrics(),
        confirm=get_confirm_metrics,
        adaptive=get_adaptive_metrics,
        sweep=get_sweep_record(),
        decompose=get_decompose_record(),
    output:
        **step_outputs("aggregate"),
    log:
        f"{LOGS}/aggregate.log",
    params:
        runs=[f"{c}:{s}:{P.resolve(c).config_hash}" for c, s in P.runs()],
        code=code("aggregate"),
        params_file=PARAMS_FILE,
        runs_dir=lambda w, input: nf_pipeline.runs_folder(input.sweep, depth=2),
    conda:
        CONDA_ENV
    threads: LIGHT_THREADS
    resources:
        mem_mb=LIGHT_MEM_MB,
        runtime=LIGHT_RUNTIME,
    shell:
        "\"$NOISEFLOOR_PYTHON\" -m noisefloor aggregate --params {params.params_file:q} --runs-dir {params.runs_dir:q} "
        "--out {output.runs:q} --histories-out {output.histories:q} 2> {log:q}"


rule analyze:
    input:
        runs=rules.aggregate.output.runs,
        histories=rules.aggregate.output.histories,
    output:
        **{
            name: report(path, caption=caption(name), category="Numbers") if name in ("summary", "comparisons")
            else path
            for name, path in step_outputs("analyze").items()
        },
    log:
        f"{LOGS}/analyze.log",
    params:
        stats=vars(P.stats),
        code=code("analyze"),
        params_file=PARAMS_FILE,
        out=lambda w, output: os.path.dirname(output.summary),
    conda:
        CONDA_ENV
    threads: LIGHT_THREADS
    resources:
        mem_mb=LIGHT_MEM_MB,
        runtime=LIGHT_RUNTIME,
    shell:
        "\"$NOISEFLOOR_PYTHON\" -m noisefloor analyze {input.runs:q} --histories {input.histories:q} --params {params.params_file:q} "
        "--out {params.out:q} 2> {log:q}"


rule plot:
    input:
        runs=rules.aggregate.output.runs,
        histories=rules.aggregate.output.histories,
        analysis=rules.analyze.output,
    output:
        **{name: report(path, caption=caption(name), category="Figures")
           for name, path in step_outputs("plot").items()},
    log:
        f"{LOGS}/plot.log",
    params:
        code=code("plot"),
        analysis=lambda w, input: os.path.dirname(input.analysis[0]),
        out=lambda w, output: os.path.dirname(output[0]),
    conda:
        CONDA_ENV
    threads: LIGHT_THREADS
    resources:
        mem_mb=LIGHT_MEM_MB,
        runtime=LIGHT_RUNTIME,
    shell:
        "\"$NOISEFLOOR_PYTHON\" -m noisefloor plot --runs {input.runs:q} --histories {input.histories:q} "
        "--analysis {params.analysis:q} --out {params.out:q} 2> {log:q}"


rule report_html:
    input:
        runs=rules.aggregate.output.runs,
        # logged with each run when the params name trackers (tracking)
        histories=rules.aggregate.output.histories,
        analysis=rules.analyze.output,
        plots=rules.plot.output,
        # The report quotes the params file verbatim.
        params_file=PARAMS_FILE,
    output:
        # in `snakemake --report` too: its answer and verdict table beside the figures
        **{name: report(path, caption=caption("report"), category="Answer")
           for name, path in step_outputs("report_html").items()},
    log:
        f"{LOGS}/report.log",
    params:
        code=code("report_html"),
        analysis=lambda w, input: os.path.dirname(input.analysis[0]),
        plots=lambda w, input: os.path.dirname(input.plots[0]),
    conda:
        CONDA_ENV
    threads: LIGHT_THREADS
    resources:
        mem_mb=LIGHT_MEM_MB,
        runtime=LIGHT_RUNTIME,
    shell:
        "\"$NOISEFLOOR_PYTHON\" -m noisefloor report --params {input.params_file:q} --runs {input.runs:q} "
        "--histories {input.histories:q} --analysis {params.analysis:q} "
        "--plots {params.plots:q} --out {output.report:q} 2> {log:q} "
        # what the trackers (params: tracking) got, on the console too: a tracker that was down is seen
        "&& {{ grep -E '^report: (mlflow|wandb|tracking):' {log:q} >&2 || true; }}"
