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
import threading
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Iterable, Iterator

EXPERIMENT = "torchkata"
RECORD_TAG = "torchkata.record"  # the id of the run record a run was logged from
_THREAD_LOCK = threading.Lock()
_LOGGED: dict[tuple[str, str], str] = {}  # (store, record id) -> run id, of what this process logged


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
    """The runs with these ids as a pandas DataFrame (metrics.*, params.*, tags.* columns)."""
    import mlflow

    if not run_ids:
        raise ValueError("fetch_runs needs at least one run id")
    quoted = ", ".join(f"'{r}'" for r in run_ids)
    with store_lock(uri):  # mlflow's tracking URI is global state: one thread at a time sets and uses it
        mlflow.set_tracking_uri(uri)
        frame = mlflow.search_runs(
            experiment_ids=[_experiment_id(_client(uri), experiment)],
            filter_string=f"attributes.run_id IN ({quoted})",
        )
    missing = set(run_ids) - set(frame["run_id"])
    if missing:
        raise RuntimeError(f"MLflow at {uri} has no runs {sorted(missing)}")
    return frame
