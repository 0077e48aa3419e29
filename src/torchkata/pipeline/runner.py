"""Run one exercise's experiment for one seed: the contract every experiment module fulfils.

An experiment module `torchkata.experiments.<slug>` has
    SCALES = {"smoke": {...}, "default": {...}, "full": {...}}   # its knobs per scale preset
    def run(ctx: RunContext) -> None
and fills `ctx.metrics` (deterministic numbers only), `ctx.bench` (timings), logs metric histories
with `ctx.log`, and writes plots and artifacts through `ctx.save_figure` / `ctx.save_checkpoint`.
The runner seeds, and writes metrics.json / bench.json / run.json atomically. It does not import MLflow
(1.3 s of every run's start): run.json is the run's record (params, metric history, final metrics, the
artifacts to attach) and the bookkeeping jobs in Snakemake's own process log it as an MLflow run
(`tracking.log_record`); a failed run's record, status FAILED with the error, is in error.json.

Output directory of a run:
    metrics.json   deterministic: compared byte for byte by the determinism target
    bench.json     timings, never compared
    run.json       the run's record for MLflow: params, provenance, metric history, final metrics
    plots/*.png    figures
    artifacts/*    checkpoints and other deterministic files (their sha256 go into metrics.json)
    error.json     only when the run failed: the error, for the summary, and the run's record (Snakemake
                   removes a failed job's outputs, so it is kept beside them)
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import subprocess
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import torch

from torchkata.pipeline.catalog import CatalogError, Exercise, load_catalog, load_impl
from torchkata.pipeline.checkpoint import load_checkpoint, save_checkpoint
from torchkata.pipeline.files import atomic_path, sha256, write_json
from torchkata.pipeline.numerics import cpu_code_path, op_trace
from torchkata.pipeline.seeding import seed_everything

SCALES = ("smoke", "default", "full")
PURPOSES = ("runs", "rerun")
ERROR_FILE = "error.json"
RECORD_FILE = "run.json"


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
    figures: bool = True  # False: save_figure draws nothing (smoke's variance seeds and determinism rerun)

    def log(self, key: str, value: float, step: int) -> None:
        """A point of a metric's curve; goes to MLflow with its step."""
        self.history.append((key, float(value), int(step)))

    def input(self, name: str) -> Path:
        try:
            return self.inputs[name]
        except KeyError:
            raise CatalogError(f"{self.exercise.id}: input {name!r} was not given to the run") from None

    def half(self, name: str, skipped: str | None = None) -> bool:
        """Record that the exercise's `name` half (catalog `halves`, e.g. its CUDA half) ran, or why it was
        skipped; bench.json and the summary show it. Returns whether it runs."""
        if name not in self.exercise.halves:
            raise CatalogError(f"{self.exercise.id}: {name!r} is not one of its catalog `halves` {self.exercise.halves}")
        self.bench.setdefault("halves", {})[name] = "ran" if skipped is None else f"skipped: {skipped}"
        return skipped is None

    def figure(self, **options):
        """A matplotlib Figure without pyplot: no global figure state, and no GUI backend to import."""
        from matplotlib.figure import Figure

        return Figure(**options)

    def save_figure(self, fig, name: str) -> Path | None:
        """Draw `fig` to plots/`name`.png, or nothing in a run told to draw no figures (then None)."""
        if not self.figures:
            return None
        path = self.out / "plots" / f"{name}.png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
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


def run_exercise(exercise_id: str, *, seed: int, out: Path, purpose: str = "runs", **settings) -> dict:
    """Run the experiment and write its outputs; returns the run's record. Whatever stops it is written to
    out/error.json, with the record of the failed run."""
    out = Path(out)
    (out / ERROR_FILE).unlink(missing_ok=True)  # a failure of an earlier attempt
    try:
        return _run(exercise_id, seed=seed, out=out, purpose=purpose, **settings)
    except BaseException as err:
        record = getattr(err, "record", None) or {"params": {"exercise": exercise_id, "seed": seed,
                                                             "purpose": purpose}}
        write_json(out / ERROR_FILE, {"error": describe(err), "exercise": exercise_id, "seed": seed,
                                      "purpose": purpose, "record": _finish(record, "FAILED", err)})
        raise


def _finish(record: dict, status: str, err: BaseException | None = None) -> dict:
    record = {"id": uuid.uuid4().hex, "run_name": "{exercise}/seed-{seed}/{purpose}".format(**record["params"]),
              "history": [], "final": {}, "artifacts": [], "tags": {}, **record, "status": status,
              "ended_at": time.time()}
    if err is not None:
        record["tags"] = {"error": describe(err), "traceback": traceback.format_exc()[-5000:]}
    return record


def _run(exercise_id: str, *, seed: int, scale: str, impl: str, threads: int, out: Path,
         inputs: dict[str, Path], purpose: str = "runs", started_at: float | None = None,
         figures: bool = True) -> dict:
    job_start = time.time() if started_at is None else started_at
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
              "purpose": purpose, "figures": figures, "git_commit": git_commit(), "torch_version": torch.__version__,
              **{f"param.{k}": v for k, v in experiment.SCALES[scale].items()}}
    ctx = RunContext(exercise=exercise, impl=load_impl(exercise, impl), seed=seed, scale=scale,
                     threads=threads, params=dict(experiment.SCALES[scale]),
                     generator=seed_everything(seed, threads), out=out, inputs=dict(inputs), figures=figures)
    params |= cpu_code_path()  # after seeding, which settles the code paths
    record = {"params": params, "history": ctx.history, "started_at": job_start}
    # the rerun also records the ATen ops the experiment calls: what its results depend on across CPU models.
    # Not at smoke: a dispatch mode's first op imports torch's compiler (2.7 s), the smoke budget of a whole exercise
    traced = purpose == "rerun" and scale != "smoke"
    trace = op_trace() if traced else contextlib.nullcontext()
    run_start = time.perf_counter()
    try:
        with trace:
            experiment.run(ctx)
        if exercise.metric not in ctx.metrics:
            raise RuntimeError(f"{exercise.id}: experiment did not report its key metric {exercise.metric!r}")
        unsaid = set(exercise.halves) - set(ctx.bench.get("halves", {}))
        if unsaid:
            raise RuntimeError(f"{exercise.id}: experiment did not say whether its {sorted(unsaid)} half ran "
                               "(ctx.half)")
    except BaseException as err:
        err.record = record
        raise
    ctx.bench["run_s"] = time.perf_counter() - run_start
    artifacts = sorted(p for p in (out / "artifacts").rglob("*") if p.is_file())
    ctx.metrics["artifacts"] = {str(p.relative_to(out / "artifacts")): sha256(p) for p in artifacts}
    write_json(out / "metrics.json", ctx.metrics)
    # the job's wall time, its start to its last output; the rest of it beside run_s is the job's overhead
    ctx.bench["wall_s"] = time.time() - job_start
    write_json(out / "bench.json", ctx.bench)
    final = _numeric_leaves("", {k: v for k, v in ctx.metrics.items() if k != "artifacts"})
    final += _numeric_leaves("bench.", ctx.bench)
    record |= {"final": dict(final), "artifacts": ["metrics.json", "bench.json",
                                                   *(f"plots/{p.name}" for p in sorted((out / "plots").glob("*.png")))]}
    if traced:
        record["aten_ops"] = sorted(trace.ops)
    record = _finish(record, "FINISHED")
    write_json(out / RECORD_FILE, record)
    return record


def main(argv: list[str] | None = None) -> int:
    """The command line of scripts/run_exercise.py (run in a process forked by the zygote, or in its own)."""
    parser = argparse.ArgumentParser(prog="run_exercise.py", description="Run one seeded experiment of an exercise.")
    parser.add_argument("exercise")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--scale", choices=SCALES, required=True)
    parser.add_argument("--impl", choices=("reference", "starter"), required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--purpose", choices=PURPOSES, default="runs")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--input", type=_name_and_path, action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--started-at", type=float, help="when the job's process started (time.time())")
    parser.add_argument("--no-figures", dest="figures", action="store_false",
                        help="draw no figures (the workflow's smoke runs other than the result)")
    args = parser.parse_args(argv)
    record = run_exercise(args.exercise, seed=args.seed, scale=args.scale, impl=args.impl, threads=args.threads,
                          out=args.out, inputs=dict(args.input), purpose=args.purpose, started_at=args.started_at,
                          figures=args.figures)
    print(f"{args.exercise} seed {args.seed} ({args.purpose}): {record['status']}, record {record['id']}")
    return 0


def _name_and_path(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--input wants NAME=PATH, got {text!r}")
    return name, Path(path)
