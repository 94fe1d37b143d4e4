# Slurm runs that cannot wait for ever (docs/cluster.md, "Status polling").
# `onstart` is the first moment the executor is known (the Snakefile is parsed
# before it is chosen) and comes before the first job is submitted. With the
# slurm executor, noisefloor.cluster.prepare_slurm polls with sacct where the
# cluster has job accounting, else with squeue (saying so in one line) where
# MinJobAge allows it, else stops the run here; and lets jobs without a
# slurm_account go without -A instead of running the plugin's failing account
# guess. Local runs, dry runs and --no-hooks skip it.
# Snakemake takes `onstart` from the main Snakefile only: a project's Snakefile,
# which imports this workflow as a module, names the same handler itself.
from noisefloor import cluster as nf_cluster


onstart:
    nf_cluster.onstart(workflow)
