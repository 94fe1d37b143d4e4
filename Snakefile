# noisefloor: noise floor vs signal for ML training runs.
#   snakemake --cores 2                                       # the experiment in params.yaml
#   snakemake --cores 2 --config params=path/to/other.yaml    # another params file
# Results land in results/ (this engine owns results/ when you run it; see README).

include: "workflow/rules/common.smk"
include: "workflow/rules/cluster.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/analysis.smk"


rule all:
    input:
        get_final_outputs(),
    default_target: True
