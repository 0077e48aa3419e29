# Shared by every rule file: the catalog, the plan for this machine and config, and path helpers.
import re
from pathlib import Path

from torchkata.pipeline.catalog import ROOT as CATALOG_ROOT, load_catalog
from torchkata.pipeline.locks import clear_stale_locks
from torchkata.pipeline.plan import make_plan

if workflow.is_main_process:  # a killed run's lock would stop this call; jobs on a cluster never touch it
    clear_stale_locks(Path.cwd())

CATALOG = load_catalog()
PLAN = make_plan(CATALOG, config)
SEED = config["seed"]


wildcard_constraints:
    exercise="|".join(re.escape(e) for e in CATALOG.exercises),
    seed=r"\d+",
    kind="runs|rerun",


def run_dir(exercise_id, seed, kind="runs"):
    return f"results/{exercise_id}/{kind}/seed-{seed}"


def dataset_files(name):
    return [f"data/{name}/{f}" for f in CATALOG.datasets[name]["files"]]


def dataset_source(name):
    """[the configured folder of a dataset's raw files], or [] for a package's own copy; a clear error
    when the folder is not there. ancient(): DVC does not keep mtimes."""
    key = CATALOG.datasets[name]["config_key"]
    if key is None:
        return []
    path = config["data"][key]
    if not Path(path).is_dir():
        raise FileNotFoundError(
            f"dataset {name}: config key data.{key} = {path!r} is not a folder. "
            f"Get it with `./run.sh data` ({CATALOG.datasets[name]['source']}), "
            f"or set data.{key} in config.yaml to where you keep it."
        )
    return [ancient(path)]


def extension_library(name):
    return f"build/extensions/{name}/{name}.so"


def exercise_input_paths(exercise, seed):
    """name -> path of everything the catalog says the exercise consumes."""
    paths = {name: f"data/{name}" for name in exercise.datasets}
    paths |= {name: extension_library(name) for name in exercise.extensions}
    paths |= {c.source: f"{run_dir(c.source, seed)}/artifacts/{c.artifact}" for c in exercise.checkpoints}
    return paths


def module_file(module):
    return f"src/{module.replace('.', '/')}.py"


# what every run goes through: an edit to how runs are seeded, pinned or written reruns them all
RUNNER_CODE = ["scripts/run_exercise.py",
               *(module_file(f"torchkata.pipeline.{m}") for m in ("runner", "seeding", "numerics"))]


def exercise_dependencies(exercise):
    """The DAG edges of an exercise's run: its code (so an edit reruns it), data files, built extensions,
    upstream runs."""

    def dependencies(wildcards):
        deps = {"tracking": "results/mlflow/init.json"}
        if exercise.done:
            implementation = (module_file(exercise.reference) if config["impl"] == "reference"
                              else str(exercise.starter_path.relative_to(CATALOG_ROOT)))
            deps["code"] = [module_file(exercise.experiment_module), implementation, *RUNNER_CODE]
            for name in exercise.datasets:
                deps[f"dataset_{name}"] = ancient(dataset_files(name))  # DVC does not keep mtimes
            for name in exercise.extensions:
                deps[f"extension_{name}"] = extension_library(name)
            for c in exercise.checkpoints:  # metrics.json is written after the artifacts
                deps[f"upstream_{c.source}"] = f"{run_dir(c.source, wildcards.seed)}/metrics.json"
        return deps

    return dependencies


def exercise_targets(exercise_id):
    return [
        f"{run_dir(exercise_id, SEED)}/metrics.json",
        f"results/{exercise_id}/determinism.json",
        f"results/{exercise_id}/variance.json",
    ]


def all_targets():
    return [t for e in PLAN.runnable for t in exercise_targets(e.id)] + [
        "results/summary/summary.csv",
        "results/summary/summary.html",
        "results/summary/summary.png",
    ]
