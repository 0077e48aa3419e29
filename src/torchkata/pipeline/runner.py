"""Run one exercise's experiment for one seed: the contract every experiment module fulfils.

An experiment module `torchkata.experiments.<slug>` has
    SCALES = {"smoke": {...}, "default": {...}, "full": {...}}   # its knobs per scale preset
    def run(ctx: RunContext) -> None
and fills `ctx.metrics` (deterministic numbers only), `ctx.bench` (timings), logs metric histories
with `ctx.log`, and writes plots and artifacts through `ctx.save_figure` / `ctx.save_checkpoint`.
The runner seeds, writes metrics.json / bench.json / run.json atomically, and records the MLflow run
(FAILED, with the error, when the experiment raises).

Output directory of a run:
    metrics.json   deterministic: compared byte for byte by the determinism target
    bench.json     timings, never compared
    run.json       MLflow run id and provenance
    plots/*.png    figures
    artifacts/*    checkpoints and other deterministic files (their sha256 go into metrics.json)
    error.json     only when the experiment raised: the error, for the summary (Snakemake removes the
                   failed job's outputs, so the error is kept beside them)
"""
from __future__ import annotations

import importlib
import subprocess
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import torch

from torchkata.pipeline import tracking
from torchkata.pipeline.catalog import CatalogError, Exercise, load_catalog, load_impl
from torchkata.pipeline.checkpoint import load_checkpoint, save_checkpoint
from torchkata.pipeline.files import atomic_path, sha256, write_json
from torchkata.pipeline.numerics import cpu_code_path
from torchkata.pipeline.seeding import seed_everything

SCALES = ("smoke", "default", "full")
PURPOSES = ("runs", "rerun")
ERROR_FILE = "error.json"


@dataclass
class RunContext:
    exercise: Exercise
    impl: ModuleType
    seed: int
    scale: str
    threads: int
    params: dict
    generator: torch.Generator
    out: Path
    inputs: dict[str, Path]
    metrics: dict = field(default_factory=dict)
    bench: dict = field(default_factory=dict)
    history: list[tuple[str, float, int]] = field(default_factory=list)

    def log(self, key: str, value: float, step: int) -> None:
        """A point of a metric's curve; goes to MLflow with its step."""
        self.history.append((key, float(value), int(step)))

    def input(self, name: str) -> Path:
        try:
            return self.inputs[name]
        except KeyError:
            raise CatalogError(f"{self.exercise.id}: input {name!r} was not given to the run") from None

    def save_figure(self, fig, name: str) -> Path:
        import matplotlib.pyplot as plt

        path = self.out / "plots" / f"{name}.png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        return path

    def save_checkpoint(self, obj, name: str) -> Path:
        return save_checkpoint(obj, self.out / "artifacts" / name)

    def load_checkpoint(self, source: str, required_keys: tuple[str, ...] = ()) -> dict:
        return load_checkpoint(self.input(source), required_keys)


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True, cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def check_inputs(exercise: Exercise, inputs: dict[str, Path]) -> None:
    """Every input the catalog declares is given and exists, before any work is done."""
    wanted = [*exercise.datasets, *exercise.extensions, *(c.source for c in exercise.checkpoints)]
    for name in wanted:
        if name not in inputs:
            raise CatalogError(f"{exercise.id}: the catalog declares input {name!r} but the run was not given it")
        if not Path(inputs[name]).exists():
            raise FileNotFoundError(f"{exercise.id}: input {name!r} not found at {inputs[name]}")


def _numeric_leaves(prefix: str, obj) -> list[tuple[str, float]]:
    if isinstance(obj, dict):
        return [kv for k, v in sorted(obj.items()) for kv in _numeric_leaves(f"{prefix}{k}.", v)]
    if isinstance(obj, (int, float)) and not isinstance(obj, bool):
        return [(prefix.rstrip("."), float(obj))]
    return []


def describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"[:5000]


def run_exercise(exercise_id: str, *, seed: int, out: Path, purpose: str = "runs", **settings) -> str:
    """Run the experiment and record it; returns the MLflow run id. Whatever stops it is also written to
    out/error.json for the summary."""
    out = Path(out)
    (out / ERROR_FILE).unlink(missing_ok=True)  # a failure of an earlier attempt
    try:
        return _run(exercise_id, seed=seed, out=out, purpose=purpose, **settings)
    except BaseException as err:
        write_json(out / ERROR_FILE, {"error": describe(err), "exercise": exercise_id, "seed": seed,
                                      "purpose": purpose})
        raise


def _run(exercise_id: str, *, seed: int, scale: str, impl: str, threads: int, out: Path,
         inputs: dict[str, Path], tracking_uri: str, experiment_name: str = tracking.EXPERIMENT,
         purpose: str = "runs") -> str:
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, not {scale!r}")
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {PURPOSES}, not {purpose!r}")
    exercise = load_catalog().get(exercise_id)
    if not exercise.done:
        raise CatalogError(f"{exercise_id} is {exercise.status}: it has no experiment yet")
    check_inputs(exercise, inputs)
    experiment = importlib.import_module(exercise.experiment_module)
    (out / "plots").mkdir(parents=True, exist_ok=True)  # a declared output even when empty
    params = {"exercise": exercise.id, "seed": seed, "scale": scale, "impl": impl, "threads": threads,
              "purpose": purpose, "git_commit": git_commit(), "torch_version": torch.__version__,
              **{f"param.{k}": v for k, v in experiment.SCALES[scale].items()}}
    ctx = RunContext(exercise=exercise, impl=load_impl(exercise, impl), seed=seed, scale=scale,
                     threads=threads, params=dict(experiment.SCALES[scale]),
                     generator=seed_everything(seed, threads), out=out, inputs=dict(inputs))
    params |= cpu_code_path()  # after seeding, which settles the code paths
    run_name = f"{exercise.id}/seed-{seed}/{purpose}"
    try:
        experiment.run(ctx)
        if exercise.metric not in ctx.metrics:
            raise RuntimeError(f"{exercise.id}: experiment did not report its key metric {exercise.metric!r}")
    except BaseException as err:
        tracking.record_run(tracking_uri, run_name=run_name, params=params, history=ctx.history,
                            experiment=experiment_name, status="FAILED",
                            tags={"error": describe(err), "traceback": traceback.format_exc()[-5000:]})
        raise
    artifacts = sorted(p for p in (out / "artifacts").rglob("*") if p.is_file())
    ctx.metrics["artifacts"] = {str(p.relative_to(out / "artifacts")): sha256(p) for p in artifacts}
    write_json(out / "metrics.json", ctx.metrics)
    write_json(out / "bench.json", ctx.bench)
    final = _numeric_leaves("", {k: v for k, v in ctx.metrics.items() if k != "artifacts"})
    final += _numeric_leaves("bench.", ctx.bench)
    run_id = tracking.record_run(
        tracking_uri, run_name=run_name, params=params, experiment=experiment_name,
        history=[*ctx.history, *((k, v, 0) for k, v in final)],
        artifacts=[out / "metrics.json", out / "bench.json", *sorted((out / "plots").glob("*.png"))],
    )
    write_json(out / "run.json", {"run_id": run_id, "tracking_uri": tracking_uri, "experiment": experiment_name,
                                   **params})
    return run_id
