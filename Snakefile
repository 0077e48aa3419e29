# torchkata: every exercise of the catalog is a target of this DAG.
#   snakemake --cores 2 all                       the main job (config.yaml's scale)
#   snakemake --cores 2 results/a01/determinism.json      one target
#   snakemake --report results/report.html        the HTML report
from snakemake.utils import min_version, validate

min_version("8.0")


configfile: "config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"


rule all:
    input:
        all_targets(),


include: "workflow/rules/tracking.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/extensions.smk"
include: "workflow/rules/exercises.smk"
include: "workflow/rules/reproducibility.smk"
include: "workflow/rules/summary.smk"
