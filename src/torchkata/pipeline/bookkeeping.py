"""The bookkeeping jobs: the MLflow store, determinism, variance, the proof set, the summary, and logging
run records to MLflow. They run in Snakemake's own process (localrules with `run:`, threads of one process),
where MLflow, pandas and matplotlib are imported once per Snakemake call instead of once per job.
"""
from __future__ import annotations

import functools
import shutil
import time
import traceback
from pathlib import Path

from torchkata.pipeline import tracking
from torchkata.pipeline.doctor import FINGERPRINTS
from torchkata.pipeline.files import atomic_path, read_json, write_json
from torchkata.pipeline.reproducibility import check_determinism, variance_target
from torchkata.pipeline.workflow import summary_files

RECORD_FILE, ERROR_FILE = "run.json", "error.json"  # the runner's (it imports torch, this process must not)
TOOK = "took {:.3f} s"


def job(function):
    """A bookkeeping job called as function(log, ...): what it returns, or its traceback, goes to the log file."""

    @functools.wraps(function)
    def logged(log: str | Path, *args, **kwargs):
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        try:
            message = function(*args, **kwargs)
        except BaseException:
            Path(log).write_text(traceback.format_exc())
            raise
        Path(log).write_text(f"{message}\n{TOOK.format(time.perf_counter() - start)}\n")
        return message

    return logged


@job
def init_tracking(uri: str, experiment: str, out: Path) -> str:
    """The store and the experiment exist before any job logs (parallel loggers must not race to create them)."""
    experiment_id = tracking.init_store(uri, experiment)
    write_json(out, {"tracking_uri": uri, "experiment": experiment, "experiment_id": experiment_id})
    return f"MLflow experiment {experiment!r} ({experiment_id}) at {uri}"


@job
def determinism(first: Path, second: Path, out: Path, uri: str, experiment: str) -> str:
    """Compare the result run with its rerun (their metrics.json), then log both as MLflow runs (the rerun is a
    seeded run too)."""
    first, second = Path(first).parent, Path(second).parent
    report = check_determinism(first, second, Path(out), second / RECORD_FILE, FINGERPRINTS)
    for run in (first, second):
        tracking.log_record(uri, read_json(Path(run) / RECORD_FILE), Path(run), experiment)
    return "\n".join(f"{'same' if f['equal'] else 'DIFFERENT'}  {name}" for name, f in report["files"].items())


@job
def variance(records: list[Path], out: Path, plot: Path, uri: str, experiment: str) -> str:
    """The seeds' runs (their run.json) into MLflow, and back from it into mean, std and a 95% interval."""
    summary = variance_target([Path(r).parent for r in records], uri, experiment, Path(out), Path(plot))
    return "\n".join(f"{name}: mean {s['mean']:.6g}, std {s['std']}, 95% CI [{s['ci95_low']}, {s['ci95_high']}]"
                     for name, s in summary["metrics"].items())


@job
def proof(result: Path, metrics: Path, artifacts: Path) -> str:
    """Copy a result's deterministic files (its metrics.json, artifacts/) into the proof set that DVC hashes."""
    run_dir, artifacts = Path(result).parent, Path(artifacts)
    shutil.rmtree(artifacts, ignore_errors=True)
    staging = artifacts.with_name(f".{artifacts.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    if (run_dir / "artifacts").is_dir():
        shutil.copytree(run_dir / "artifacts", staging, dirs_exist_ok=True)
    staging.rename(artifacts)
    with atomic_path(metrics) as tmp:
        shutil.copyfile(run_dir / "metrics.json", tmp)
    return f"{run_dir} -> {metrics}, {artifacts}"


def log_new_records(results: Path, uri: str, experiment: str, since: float) -> int:
    """Log every run record written since `since` (a run built on its own, a failed run) that is not logged yet:
    every seeded run is an MLflow run, FAILED ones too. Returns how many records were looked at."""
    records = []
    for path in sorted(Path(results).glob("*/*/*/seed-*/*.json")):
        if path.name in (RECORD_FILE, ERROR_FILE) and path.stat().st_mtime >= since:
            record = read_json(path)
            records.append((record.get("record") if path.name == ERROR_FILE else record, path.parent))
    if records:
        tracking.init_store(uri, experiment)  # a run built on its own comes before any mlflow_init
    for record, run_dir in records:
        tracking.log_record(uri, record, run_dir, experiment)
    return len(records)


@job
def summary(catalog, plan, config: dict, scale: str, files) -> str:
    """The catalog's table at one scale (torchkata.pipeline.summary)."""
    from torchkata.pipeline.summary import build_summary, status_counts, write_summary

    table = build_summary(catalog, Path("results"), scale, config["seed"], {e.id for e in plan.runnable},
                          plan.capabilities, impl=config["impl"])
    write_summary(table, files, f"torchkata at scale {scale}")
    return f"{table[table['status'] != 'planned'].to_string(index=False)}\n{status_counts(table)}"


def after_failure(catalog, plan, config: dict, since: float) -> None:
    """Snakemake's onerror: the summary with the failed exercises and their errors, and the FAILED runs in
    MLflow. Never raises: it must not hide the error that stopped the run."""
    scale = config["scale"]
    try:
        summary(f"results/logs/summary-{scale}.log", catalog, plan, config, scale, summary_files(scale))
        log_new_records(Path("results"), config["tracking"]["uri"], config["tracking"]["experiment"], since)
        print(f"torchkata: the summary with the failed exercises and their errors is in results/summary/{scale}/")
    except Exception as err:  # noqa: BLE001
        print(f"torchkata: could not write the summary after the failure: {type(err).__name__}: {err}")
