"""The catalog (catalog.yaml): the one list of exercises, datasets and extensions.

Light on purpose (yaml only, no torch): the Snakefile imports it at parse time.
"""
from __future__ import annotations

import difflib
import importlib
import importlib.util
import math
import shutil
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import ModuleType

import yaml

ROOT = Path(__file__).resolve().parents[3]
CATALOG_PATH = ROOT / "catalog.yaml"

STATUSES = ("planned", "done")
NEEDS = ("cpu", "cuda", "multiprocess", "service")
HALVES = ("cuda",)  # a part of an exercise that runs where the machine has it, and is skipped with the reason elsewhere
IMPLS = ("reference", "starter")
SCALES = ("smoke", "default", "full")
RESOURCES = ("mem_mb", "gpus", "cpus", "run_s")
DEFAULT_MEM_MB = 2000
DEFAULT_RUN_S = 10  # an exercise that does not train: its ops against torch's, timed


class CatalogError(ValueError):
    """catalog.yaml says something inconsistent, or an id is not in it."""


@dataclass(frozen=True)
class Checkpoint:
    """An artifact of another exercise's result run that this exercise consumes."""

    source: str
    artifact: str


def run_budget_s(flagship: bool) -> int:
    """Seconds one default-scale run may take on 2 threads: a flagship training gets 180, the rest 60."""
    return 180 if flagship else 60


@dataclass(frozen=True)
class Exercise:
    id: str
    title: str
    topic: str
    difficulty: str
    needs: tuple[str, ...]
    status: str
    seed: dict = field(hash=False)
    reference: str | None = None
    metric: str | None = None
    datasets: tuple[str, ...] = ()
    extensions: tuple[str, ...] = ()
    checkpoints: tuple[Checkpoint, ...] = ()
    raw_data: tuple[str, ...] = ()  # config keys data.<key>: folders of raw files the exercise reads itself
    # halves that run only where the machine has them (the CUDA half of a CPU-first exercise); `needs` is what the
    # whole exercise cannot run without
    halves: tuple[str, ...] = ()
    flagship: bool = False
    mem_mb: int | None = None
    gpus: int | None = None
    cpus: int | None = None
    # what the exercise is allotted of the main job: its expected default-scale run on 2 threads, at most
    # `budget_s`. Together the allotments keep the catalog within the main job's 2 hours (pipeline/cost.py
    # projects it); `torchkata cost --main` shows a done exercise whose measured runs exceed its allotment.
    run_s: int = DEFAULT_RUN_S

    @property
    def slug(self) -> str:
        """The id as a Python/Snakemake identifier (b04-06 -> b04_06)."""
        return self.id.replace("-", "_")

    @property
    def experiment_module(self) -> str:
        return f"torchkata.experiments.{self.slug}"

    @property
    def problem_dir(self) -> Path:
        return ROOT / "problems" / self.id

    @property
    def starter_path(self) -> Path:
        return self.problem_dir / "starter.py"

    @property
    def done(self) -> bool:
        return self.status == "done"

    @property
    def budget_s(self) -> int:
        """The cap on one default-scale run of this exercise (run_budget_s)."""
        return run_budget_s(self.flagship)

    def rule_resources(self, scale: str, capabilities: frozenset[str] = frozenset()) -> dict[str, int]:
        """Snakemake resources of one run at `scale` (SLURM: --mem, --time, --gpus, --cpus-per-task). A CUDA half
        gets its GPU where the machines (`capabilities`) have CUDA, and runs on CPU alone elsewhere."""
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, not {scale!r}")
        # 3x the budget leaves room for a slower node; `full` gets 10x the time of `default`
        default_min = max(5, math.ceil(3 * self.budget_s / 60))
        runtime = {"smoke": 5, "default": default_min, "full": 10 * default_min}[scale]
        gpus = self.gpus if self.gpus is not None else int("cuda" in self.needs or "cuda" in set(self.halves) & capabilities)
        resources = {"mem_mb": self.mem_mb or DEFAULT_MEM_MB, "runtime": runtime, "gpu": gpus}
        if self.cpus:  # else Snakemake's `threads` (config `threads`) sets --cpus-per-task
            resources["cpus_per_task"] = self.cpus
        return resources


@dataclass(frozen=True)
class Catalog:
    exercises: dict[str, Exercise]
    datasets: dict[str, dict]
    extensions: dict[str, dict]

    def get(self, exercise_id: str) -> Exercise:
        try:
            return self.exercises[exercise_id]
        except KeyError:
            close = difflib.get_close_matches(exercise_id, self.exercises, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else "; `torchkata list` shows them"
            raise CatalogError(f"unknown exercise id {exercise_id!r}{hint}") from None

    def done(self) -> list[Exercise]:
        return [e for e in self.exercises.values() if e.done]


def _resources(entry: dict) -> dict[str, int]:
    resources = entry.get("resources") or {}
    unknown = set(resources) - set(RESOURCES)
    if unknown:
        raise CatalogError(f"{entry['id']}: unknown resources {sorted(unknown)}; known: {RESOURCES}")
    for key, value in resources.items():
        if type(value) is not int or value <= 0:  # `type`: a YAML `true` is an int to isinstance
            raise CatalogError(f"{entry['id']}: resources.{key} must be a positive integer, not {value!r}")
    if resources.get("gpus") and "cuda" not in (*entry["needs"], *entry.get("halves", ())):
        raise CatalogError(f"{entry['id']}: resources.gpus is set but neither `needs` nor `halves` has cuda "
                           "(the plan picks the machines that can run it by `needs`)")
    return resources


def _exercise(entry: dict) -> Exercise:
    inputs = entry.get("inputs") or {}
    unknown = set(inputs) - {"datasets", "extensions", "checkpoints", "raw_data"}
    if unknown:
        raise CatalogError(f"{entry['id']}: unknown inputs {sorted(unknown)}")
    flagship = entry.get("flagship", False)
    if not isinstance(flagship, bool):
        raise CatalogError(f"{entry['id']}: flagship must be true or false, not {flagship!r}")
    halves = tuple(entry.get("halves") or ())
    if set(halves) - set(HALVES):
        raise CatalogError(f"{entry['id']}: halves {sorted(set(halves) - set(HALVES))} not in {HALVES}")
    if set(halves) & set(entry["needs"]):
        raise CatalogError(f"{entry['id']}: {sorted(set(halves) & set(entry['needs']))} is in both `needs` (the "
                           "exercise cannot run without it) and `halves` (a part that runs where it is)")
    cap = run_budget_s(flagship)
    if (entry.get("resources") or {}).get("run_s", 0) > cap:
        raise CatalogError(f"{entry['id']}: resources.run_s {entry['resources']['run_s']} is over the {cap} s "
                           f"that one default-scale run may take" + ("" if flagship else " (180 for a flagship)"))
    return Exercise(
        id=entry["id"],
        title=entry["title"],
        topic=entry["topic"],
        difficulty=entry["difficulty"],
        needs=tuple(entry["needs"]),
        status=entry["status"],
        seed=entry["seed"],
        reference=entry.get("reference"),
        metric=entry.get("metric"),
        datasets=tuple(inputs.get("datasets", ())),
        extensions=tuple(inputs.get("extensions", ())),
        checkpoints=tuple(Checkpoint(c["from"], c["artifact"]) for c in inputs.get("checkpoints", ())),
        raw_data=tuple(inputs.get("raw_data", ())),
        halves=halves,
        flagship=flagship,
        **_resources(entry),
    )


# sources: C++ (always built); cuda_sources: CUDA (built in where torch has CUDA); headers: what the sources include
# from csrc/ (an edit rebuilds); ops: true for a library of torch operators (TORCH_LIBRARY, loaded with
# torch.ops.load_library: no Python headers to compile), false (default) for a pybind11 Python module
EXTENSION_KEYS = ("sources", "cuda_sources", "headers", "ops")


def _validate(cat: Catalog) -> None:
    for e in cat.exercises.values():
        if e.status not in STATUSES:
            raise CatalogError(f"{e.id}: status {e.status!r} is not one of {STATUSES}")
        bad = set(e.needs) - set(NEEDS)
        if bad:
            raise CatalogError(f"{e.id}: needs {sorted(bad)} not in {NEEDS}")
        if not e.done:
            continue  # a planned entry's inputs are intentions, checked once it is done
        if not (e.reference and e.metric):
            raise CatalogError(f"{e.id}: a done exercise needs `reference` and `metric`")
        for name in e.datasets:
            if name not in cat.datasets:
                raise CatalogError(f"{e.id}: dataset {name!r} is not under `datasets:`")
        for name in e.extensions:
            if name not in cat.extensions:
                raise CatalogError(f"{e.id}: extension {name!r} is not under `extensions:`")
        for c in e.checkpoints:
            if c.source not in cat.exercises or not cat.exercises[c.source].done:
                raise CatalogError(f"{e.id}: checkpoint source {c.source!r} is not a done exercise")
    for name, spec in cat.extensions.items():
        unknown = set(spec) - set(EXTENSION_KEYS)
        if unknown or not spec.get("sources"):
            raise CatalogError(f"extension {name!r}: needs `sources` (C++) and may have `cuda_sources`, `headers` "
                               f"and `ops`; unknown keys {sorted(unknown)}")
        if not isinstance(spec.get("ops", False), bool):
            raise CatalogError(f"extension {name!r}: ops must be true or false, not {spec['ops']!r}")


@lru_cache(maxsize=None)
def load_catalog(path: Path = CATALOG_PATH) -> Catalog:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: 10x faster at Snakefile parse time
    raw = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=loader)
    exercises: dict[str, Exercise] = {}
    for entry in raw["exercises"]:
        if entry["id"] in exercises:
            raise CatalogError(f"duplicate id {entry['id']!r} in {path}")
        exercises[entry["id"]] = _exercise(entry)
    cat = Catalog(exercises, raw.get("datasets") or {}, raw.get("extensions") or {})
    _validate(cat)
    return cat


def machine_capabilities() -> set[str]:
    """What this machine offers, found without importing torch (the Snakefile calls it at parse time)."""
    caps = {"cpu", "multiprocess", "service"}
    if shutil.which("nvidia-smi") and Path("/dev/nvidia0").exists():
        caps.add("cuda")
    return caps


def skip_reason(exercise: Exercise, capabilities: set[str]) -> str | None:
    missing = [n for n in exercise.needs if n not in capabilities]
    if missing:
        return f"needs {', '.join(missing)}, which this machine lacks"
    return None


def load_impl(exercise: Exercise, impl: str) -> ModuleType:
    """The module under test: the reference implementation or the learner's starter file."""
    if impl == "reference":
        return importlib.import_module(exercise.reference)
    if impl != "starter":
        raise CatalogError(f"impl must be one of {IMPLS}, not {impl!r}")
    path = exercise.starter_path
    if not path.is_file():
        raise CatalogError(f"{exercise.id}: no starter file at {path}")
    spec = importlib.util.spec_from_file_location(f"torchkata_starter_{exercise.slug}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

