# noisefloor: noise floor vs signal for ML training runs.
#   snakemake --cores 2                                       # the experiment in params.yaml
#   snakemake --cores 2 --config params=path/to/other.yaml    # another params file
# Results land in results/ (this engine owns results/ when you run it; see README).
# The workflow ships inside the package (src/noisefloor/workflow/); this file
# uses it exactly as a project of its own does (the Snakefile `noisefloor init` writes).
from noisefloor.cluster import onstart as noisefloor_onstart
from noisefloor.deploy import SNAKEFILE


module noisefloor:
    snakefile:
        SNAKEFILE
    config:
        config


use rule * from noisefloor


# Before the first job (a module's own onstart is not run): a Slurm cluster's status polling checked.
onstart:
    noisefloor_onstart(workflow)
