# Shared by every rule file: the catalog, the plan for this machine and config, and the path helpers
# (torchkata.pipeline.workflow).
import re
from pathlib import Path

from torchkata.pipeline.catalog import load_catalog
from torchkata.pipeline.locks import clear_stale_locks
from torchkata.pipeline.plan import make_plan
from torchkata.pipeline.workflow import (
    VARIANT,
    Workflow,
    extension_library,
    run_dir,
    split_variant,
)

if (
    workflow.is_main_process
):  # a killed run's lock would stop this call; jobs on a cluster never touch it
    clear_stale_locks(Path.cwd())

CATALOG = load_catalog()
PLAN = make_plan(CATALOG, config)
FLOW = Workflow(CATALOG, config, PLAN.runnable)
SEED = config["seed"]
TRACKING = config["tracking"]
# the Snakefile's own Python and its conda twin: every job runs the same pinned packages
ENV = "../../envs/conda-cpu.yaml"


wildcard_constraints:
    exercise="|".join(re.escape(e) for e in CATALOG.exercises),
    variant=VARIANT,
    seed=r"\d+",
    kind="runs|rerun",
    scale="smoke|default|full",
