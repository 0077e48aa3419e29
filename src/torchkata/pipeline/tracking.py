"""MLflow tracking: every seeded run is an MLflow run; variance is read back from MLflow.

A run does not import MLflow (1.3 s of its start): it writes its record (run.json, or error.json when it
failed) and the bookkeeping jobs, in Snakemake's own process, log records with `log_record`, once each
(the record's id is a tag, so logging twice finds the first). MLflow's import is then paid once per
Snakemake call, not once per run.

The default store is SQLite under results/. SQLite allows one writer at a time, and MLflow's
SQLAlchemy store gives up on a busy database ("database is locked"), so writers to a SQLite store
take an exclusive file lock beside the database (other Snakemake calls, tests) and a thread lock (the
bookkeeping jobs run in threads of one process). With a tracking server URI (http://...) the server
serialises writes across processes.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Iterable, Iterator

EXPERIMENT = "torchkata"
RECORD_TAG = "torchkata.record"  # the id of the run record a run was logged from
_THREAD_LOCK = threading.Lock()
_LOGGED: dict[tuple[str, str], str] = {}  # (store, record id) -> run id, of what this process logged
# MLflow's telemetry, on by default, reports to a server this offline project cannot reach, and its first import
# puts a session id into os.environ. In Snakemake's process that changes, mid-call, the environment of every job
# started after it, and so the warm process it forks from (zygote.socket_path keys on the whole environment).
QUIET_ENVIRONMENT = {"MLFLOW_DISABLE_TELEMETRY": "true"}


def quiet_environment() -> None:
    """Before MLflow's first import in this process, and before the first job starts (the Snakefile calls it)."""
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


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


@contextmanager
def store_lock(uri: str) -> Iterator[None]:
    db = sqlite_path(uri)
    with _THREAD_LOCK, (_file_lock(db.with_name(db.name + ".lock")) if db else nullcontext()):
        yield


def _client(uri: str):
    quiet_environment()
    from mlflow.tracking import MlflowClient  # slow import: only where a run is logged

    return MlflowClient(tracking_uri=uri)


def empty_store_template() -> Path:
    """An empty SQLite store with MLflow's schema, made once per MLflow, SQLAlchemy and Alembic version on this
    machine: a new store is a copy of it. Creating a store runs every schema migration MLflow has (2.9 s, more
    than any smoke run), and every Snakemake call from empty results, every test DAG, makes a new store."""
    import alembic
    import mlflow
    import sqlalchemy

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "torchkata"
    template = cache / f"mlflow-{mlflow.__version__}-sqlalchemy-{sqlalchemy.__version__}-alembic-{alembic.__version__}.db"
    if not template.exists():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as scratch:
            made = Path(scratch) / "store.db"
            _client(f"sqlite:///{made}").search_experiments()  # the first query creates and migrates the schema
            os.replace(made, template)  # whole or absent: another process may be making it too
    return template


def init_store(uri: str, experiment: str = EXPERIMENT) -> str:
    """Create the store and the experiment once, before parallel jobs log."""
    db = sqlite_path(uri)
    if db:
        db.parent.mkdir(parents=True, exist_ok=True)
    with store_lock(uri):
        if db and not db.exists():
            shutil.copyfile(empty_store_template(), db)
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
    with store_lock(uri):
        return _record_run(_client(uri), run_name=run_name, params=params, history=history, tags=tags,
                           artifacts=artifacts, status=status, experiment=experiment)


def _record_run(client, *, run_name, params, history, tags, artifacts, status, experiment) -> str:
    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    metrics = [Metric(key, float(value), now, int(step)) for key, value, step in history]
    run_id = client.create_run(_experiment_id(client, experiment), run_name=run_name).info.run_id
    for start in range(0, max(len(metrics), 1), 1000):  # log_batch takes at most 1000 metrics per call
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


def log_record(uri: str, record: dict, run_dir: Path, experiment: str = EXPERIMENT) -> str:
    """Log a run's record (runner.RECORD_FILE, or the record in a failed run's error.json) as an MLflow run
    with its params, metric history, final metrics (at step 0), tags and artifacts; return the run's id.
    A record logged before is found by its id and not logged again."""
    key = (uri, record["id"])
    with store_lock(uri):
        if key not in _LOGGED:
            client = _client(uri)
            found = client.search_runs([_experiment_id(client, experiment)],
                                       filter_string=f"tags.`{RECORD_TAG}` = '{record['id']}'", max_results=1)
            _LOGGED[key] = found[0].info.run_id if found else _record_run(
                client, run_name=record["run_name"], params=record["params"], experiment=experiment,
                history=[*record["history"], *((name, value, 0) for name, value in record["final"].items())],
                tags={**record["tags"], RECORD_TAG: record["id"]}, status=record["status"],
                artifacts=[Path(run_dir) / name for name in record["artifacts"]],
            )
        return _LOGGED[key]


def fetch_runs(uri: str, run_ids: list[str], experiment: str = EXPERIMENT):
    """The runs with these ids as a pandas DataFrame (run_id, experiment_id, status, and metrics.*, params.*,
    tags.* columns, as mlflow.search_runs gives them). Through a client, not mlflow.search_runs: that one reads
    the global tracking URI, and mlflow.set_tracking_uri keeps it in os.environ, which Snakemake's jobs inherit."""
    import pandas as pd

    if not run_ids:
        raise ValueError("fetch_runs needs at least one run id")
    quoted = ", ".join(f"'{r}'" for r in run_ids)
    with store_lock(uri):  # a SQLite reader may meet a writer's lock, which MLflow's store does not wait out
        client = _client(uri)
        runs = client.search_runs([_experiment_id(client, experiment)],
                                  filter_string=f"attributes.run_id IN ({quoted})", max_results=len(run_ids))
    rows = [{"run_id": run.info.run_id, "experiment_id": run.info.experiment_id, "status": run.info.status,
             **{f"{kind}.{name}": value
                for kind, values in (("metrics", run.data.metrics), ("params", run.data.params), ("tags", run.data.tags))
                for name, value in values.items()}} for run in runs]
    frame = pd.DataFrame(rows) if rows else pd.DataFrame(columns=["run_id", "experiment_id", "status"])
    missing = set(run_ids) - set(frame["run_id"])
    if missing:
        raise RuntimeError(f"MLflow at {uri} has no runs {sorted(missing)}")
    return frame
