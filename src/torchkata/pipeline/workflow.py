"""What the Snakefile computes from the catalog and the config: result paths, each run's inputs and
resources, and the targets of `all`. Plain Python, so that the rule files hold only rules; imported at parse
time, so no torch here.

Every output of a run lives under its variant, `<impl>-<scale>` (reference-default, starter-smoke, ...):

    results/<id>/<variant>/runs/seed-<s>/     a seeded run (the result, and the variance seeds)
    results/<id>/<variant>/rerun/seed-<s>/    the result's seed again, in a separate process
    results/<id>/<variant>/determinism.json   the two compared byte for byte
    results/<id>/<variant>/variance.json|png  the seeds, from MLflow
    results/proof/<variant>/<id>/             the result's deterministic files, what DVC hashes
    results/summary/<scale>/                  the catalog's table at one scale, the learner's rows beside

The path says everything a run depends on, so a learner's run or another scale never overwrites the
reference results that DVC proves, and any of them can be asked for by its path.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from torchkata.pipeline.catalog import IMPLS, ROOT, SCALES, Catalog, Exercise
from torchkata.pipeline.imports import source_files
from torchkata.pipeline.plan import capabilities

VARIANT = rf"(?:{'|'.join(IMPLS)})-(?:{'|'.join(SCALES)})"
# what every run goes through: an edit to how runs are started, seeded, pinned or written reruns them all
RUNNER_CODE = ["scripts/run_exercise.py", *(f"src/torchkata/pipeline/{m}.py" for m in
                                            ("runner", "zygote", "seeding", "numerics", "files", "checkpoint"))]


def variant(impl: str, scale: str) -> str:
    return f"{impl}-{scale}"


def split_variant(name: str) -> tuple[str, str]:
    if not re.fullmatch(VARIANT, name):
        raise ValueError(f"{name!r} is not a results variant <impl>-<scale> (impl: {IMPLS}, scale: {SCALES})")
    impl, scale = name.split("-")
    return impl, scale


def run_dir(exercise_id: str, variant_name: str, seed, kind: str = "runs") -> str:
    return f"results/{exercise_id}/{variant_name}/{kind}/seed-{seed}"


def module_file(module: str) -> str:
    return f"src/{module.replace('.', '/')}.py"


def code_files(exercise: Exercise, implementation: str) -> list[str]:
    """The project files a run of `exercise` executes besides the runner: its experiment, the implementation
    graded (the reference's module or the learner's starter), and every torchkata module either imports."""
    files = dict.fromkeys(source_files(ROOT, module_file(exercise.experiment_module)))
    files |= dict.fromkeys(source_files(ROOT, implementation))
    return [f for f in files if f not in RUNNER_CODE]


def extension_library(name: str) -> str:
    return f"build/extensions/{name}/{name}.so"


def summary_files(scale: str) -> dict[str, str]:
    return {kind: f"results/summary/{scale}/summary.{kind}" for kind in ("csv", "html", "png")}


def set_job_environment(src: Path) -> None:
    """Jobs import this checkout's package (also before `pip install -e .`, and in a copy whose code differs from
    the installed one), run the Python that runs Snakemake (`.venv/bin/snakemake` works without activating the
    venv), and hash strings the same in every process."""
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), os.environ.get("PYTHONPATH")]))
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    os.environ["PYTHONHASHSEED"] = "0"


class Workflow:
    """The catalog and the config as the rules need them."""

    def __init__(self, catalog: Catalog, config: dict, runnable: list[Exercise]):
        self.catalog, self.config, self.runnable = catalog, config, runnable
        self.seed = config["seed"]
        self.variant = variant(config["impl"], config["scale"])

    def scale(self, name: str) -> dict:
        return self.config["scales"][name]

    def threads(self, variant_name: str) -> int:
        return self.scale(split_variant(variant_name)[1])["threads"]

    def figure_option(self, variant_name: str, kind: str, seed) -> str:
        """At smoke only the result's run draws its figures: the variance seeds and the determinism rerun are
        there for their numbers, and drawing a figure costs more than most smoke runs' work."""
        result = kind == "runs" and int(seed) == self.seed
        return "" if result or split_variant(variant_name)[1] != "smoke" else "--no-figures"

    # -- data

    def dataset_files(self, name: str) -> list[str]:
        return [f"data/{name}/{f}" for f in self.catalog.datasets[name]["files"]]

    def dataset_source(self, name: str) -> list[str]:
        """[the configured folder of a dataset's raw files], or [] for a package's own copy; a clear error when
        the folder is not there."""
        key = self.catalog.datasets[name]["config_key"]
        if key is None:
            return []
        path = self.config["data"][key]
        if not Path(path).is_dir():
            raise FileNotFoundError(
                f"dataset {name}: config key data.{key} = {path!r} is not a folder. "
                f"Get it with `./run.sh data` ({self.catalog.datasets[name]['source']}), "
                f"or set data.{key} in config.yaml to where you keep it."
            )
        return [path]

    # -- one run

    def implementation_file(self, exercise: Exercise, impl: str) -> str:
        return module_file(exercise.reference) if impl == "reference" else f"problems/{exercise.id}/starter.py"

    def upstream_dir(self, exercise_id: str, variant_name: str, seed) -> str:
        """A consumed checkpoint comes from the reference's run at the same scale: a learner's b04-10 is graded
        on the reference b04-06 model, not on their own."""
        return run_dir(exercise_id, variant("reference", split_variant(variant_name)[1]), seed)

    def input_paths(self, exercise: Exercise, variant_name: str, seed) -> dict[str, str]:
        """name -> path of everything the catalog says the exercise consumes."""
        paths = {name: f"data/{name}" for name in exercise.datasets}
        paths |= {name: extension_library(name) for name in exercise.extensions}
        paths |= {c.source: f"{self.upstream_dir(c.source, variant_name, seed)}/artifacts/{c.artifact}"
                  for c in exercise.checkpoints}
        return paths

    def run_dependencies(self, exercise: Exercise, ancient):
        """The DAG edges of an exercise's run: its code (an edit reruns it), data files, built extensions,
        upstream runs. `ancient` is Snakemake's: DVC does not keep mtimes, so data counts by existence."""

        def dependencies(wildcards) -> dict:
            deps: dict = {}
            if not exercise.done:
                return deps
            impl, _ = split_variant(wildcards.variant)
            deps["code"] = [*code_files(exercise, self.implementation_file(exercise, impl)), *RUNNER_CODE]
            for name in exercise.datasets:
                deps[f"dataset_{name}"] = ancient(self.dataset_files(name))
            for name in exercise.extensions:
                deps[f"extension_{name}"] = extension_library(name)
            for c in exercise.checkpoints:  # metrics.json is written after the artifacts
                deps[f"upstream_{c.source}"] = f"{self.upstream_dir(c.source, wildcards.variant, wildcards.seed)}/metrics.json"
            return deps

        return dependencies

    def run_arguments(self, exercise: Exercise):
        def arguments(wildcards) -> str:
            impl, scale = split_variant(wildcards.variant)
            inputs = self.input_paths(exercise, wildcards.variant, wildcards.seed) if exercise.done else {}
            return " ".join([f"--impl {impl} --scale {scale}",
                             *(f"--input {name}={path}" for name, path in inputs.items())])

        return arguments

    def run_resources(self, exercise: Exercise) -> dict:
        """Snakemake resources of one run, from the catalog (memory, GPUs, runtime from its budget at the
        variant's scale) and, on a cluster, the partition its profile names for CPU or GPU jobs."""
        partitions = self.config.get("slurm_partitions") or {}
        caps = frozenset(capabilities(self.config))

        def resource(key: str):
            return lambda wildcards: exercise.rule_resources(split_variant(wildcards.variant)[1], caps).get(key, 0)

        resources = {key: resource(key) for key in ("mem_mb", "runtime", "gpu")}
        if exercise.cpus:
            resources["cpus_per_task"] = exercise.cpus
        kind = "gpu" if exercise.rule_resources("smoke", caps)["gpu"] else "cpu"
        if kind in partitions:
            resources["slurm_partition"] = partitions[kind]
        return resources

    # -- targets

    def exercise_targets(self, exercise_id: str, variant_name: str) -> list[str]:
        base = f"results/{exercise_id}/{variant_name}"
        return [f"{run_dir(exercise_id, variant_name, self.seed)}/metrics.json", f"{base}/determinism.json",
                f"{base}/variance.json"]

    def variance_run_dirs(self, exercise_id: str, variant_name: str) -> list[str]:
        seeds = self.scale(split_variant(variant_name)[1])["variance_seeds"]
        return [run_dir(exercise_id, variant_name, s) for s in seeds]

    def all_targets(self) -> list[str]:
        return [t for e in self.runnable for t in self.exercise_targets(e.id, self.variant)] + list(
            summary_files(self.config["scale"]).values())
