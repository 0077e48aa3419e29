"""MLflow tracking: every seeded run is an MLflow run; variance is read back from MLflow.

The default store is SQLite under results/. SQLite allows one writer at a time, and MLflow's
SQLAlchemy store gives up on a busy database ("database is locked"), so writers to a SQLite store
take an exclusive file lock beside the database. A run is recorded in one short locked section at its
end (its metric history is kept in memory meanwhile), so parallel jobs wait milliseconds, not a run.
With a tracking server URI (http://...) the server serialises writes and no lock is taken.
"""
from __future__ import annotations

import fcntl
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Iterable, Iterator

EXPERIMENT = "torchkata"


def sqlite_path(uri: str) -> Path | None:
    prefix = "sqlite:///"
    return Path(uri[len(prefix):]) if uri.startswith(prefix) else None


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def store_lock(uri: str):
    db = sqlite_path(uri)
    return _file_lock(db.with_name(db.name + ".lock")) if db else nullcontext()


def _client(uri: str):
    from mlflow.tracking import MlflowClient  # slow import: only where a run is logged

    return MlflowClient(tracking_uri=uri)


def init_store(uri: str, experiment: str = EXPERIMENT) -> str:
    """Create the store (schema migrations) and the experiment once, before parallel jobs log."""
    db = sqlite_path(uri)
    if db:
        db.parent.mkdir(parents=True, exist_ok=True)
    with store_lock(uri):
        client = _client(uri)
        found = client.get_experiment_by_name(experiment)
        if found:
            return found.experiment_id
        # Artifacts of a local store sit beside the database, not in the working directory.
        location = (db.parent / "artifacts").resolve().as_uri() if db else None
        return client.create_experiment(experiment, artifact_location=location)


def _experiment_id(client, experiment: str) -> str:
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise RuntimeError(
            f"MLflow experiment {experiment!r} does not exist at {client.tracking_uri}: "
            "run the `mlflow_init` rule (snakemake results/mlflow/init.json) first"
        )
    return found.experiment_id


def record_run(
    uri: str,
    *,
    run_name: str,
    params: dict,
    history: Iterable[tuple[str, float, int]],
    tags: dict | None = None,
    artifacts: Iterable[Path] = (),
    status: str = "FINISHED",
    experiment: str = EXPERIMENT,
) -> str:
    """Record one finished (or FAILED) run with its metric history and artifacts; return its id."""
    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    metrics = [Metric(key, float(value), now, int(step)) for key, value, step in history]
    with store_lock(uri):
        client = _client(uri)
        run = client.create_run(_experiment_id(client, experiment), run_name=run_name)
        run_id = run.info.run_id
        # log_batch takes at most 1000 metrics per call
        for start in range(0, max(len(metrics), 1), 1000):
            client.log_batch(
                run_id,
                metrics=metrics[start:start + 1000],
                params=[Param(k, str(v)) for k, v in params.items()] if start == 0 else [],
                tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()] if start == 0 else [],
            )
        for path in artifacts:
            client.log_artifact(run_id, str(path))
        client.set_terminated(run_id, status)
    return run_id


def fetch_runs(uri: str, run_ids: list[str], experiment: str = EXPERIMENT):
    """The runs with these ids as a pandas DataFrame (metrics.*, params.*, tags.* columns)."""
    import mlflow

    if not run_ids:
        raise ValueError("fetch_runs needs at least one run id")
    mlflow.set_tracking_uri(uri)
    quoted = ", ".join(f"'{r}'" for r in run_ids)
    frame = mlflow.search_runs(
        experiment_ids=[_experiment_id(_client(uri), experiment)],
        filter_string=f"attributes.run_id IN ({quoted})",
    )
    missing = set(run_ids) - set(frame["run_id"])
    if missing:
        raise RuntimeError(f"MLflow at {uri} has no runs {sorted(missing)}")
    return frame
