# torchkata: every exercise of the catalog is a target of this DAG.
#   snakemake --cores 2 all                                            the main job (config.yaml's scale)
#   snakemake --cores 2 results/a01/reference-default/determinism.json   one target
#   snakemake --report results/report.html                             the HTML report
import sys
import time
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("8.0")

STARTED = (
    time.time()
)  # run records written after this are logged to MLflow when the call ends
# This checkout's package, for the Snakefile and (through PYTHONPATH) for every job.
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from torchkata.pipeline.plan import check_config_syntax
from torchkata.pipeline.workflow import set_job_environment

set_job_environment(Path(workflow.basedir) / "src")
check_config_syntax(Path(workflow.basedir) / "config.yaml")


configfile: "config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"


rule all:
    input:
        FLOW.all_targets(),


# what `dvc repro` proves: each done exercise's result at config.yaml's scale (results/proof/)
rule proofs:
    input:
        [f"results/proof/{FLOW.variant}/{e.id}/metrics.json" for e in PLAN.runnable],


include: "workflow/rules/tracking.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/extensions.smk"
include: "workflow/rules/exercises.smk"
include: "workflow/rules/reproducibility.smk"
include: "workflow/rules/summary.smk"
include: "workflow/rules/mutation.smk"
