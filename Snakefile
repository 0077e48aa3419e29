# torchkata: every exercise of the catalog is a target of this DAG.
#   snakemake --cores 2 all                       the main job (config.yaml's scale)
#   snakemake --cores 2 results/a01/determinism.json      one target
#   snakemake --report results/report.html        the HTML report
import os
import sys
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("8.0")

# This checkout's package, for the Snakefile and for every job (also before `pip install -e .`, and in a
# copy of the repository whose code differs from the installed one).
_SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, _SRC)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [_SRC, os.environ.get("PYTHONPATH")]))
# The jobs' `python` is the one running Snakemake (`.venv/bin/snakemake` works without activating the venv).
os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])

from torchkata.pipeline.plan import check_config_syntax

check_config_syntax(Path(workflow.basedir) / "config.yaml")


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
