"""MLflow tracking: parallel writers lose nothing; variance is computed from what MLflow stored."""
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from scipy import stats

from torchkata.pipeline.projects import copy_project, snakemake, with_config
from torchkata.pipeline import tracking
from torchkata.pipeline.files import read_json, write_json
from torchkata.pipeline.reproducibility import aggregate_variance, summarise


def _wait_at(barrier) -> None:
    global START
    START = barrier


def log_one(uri: str, seed: int) -> str:
    import mlflow  # noqa: F401  (the slow import first, so that every process writes at the same moment)

    START.wait(timeout=300)
    return tracking.record_run(uri, run_name=f"parallel/{seed}", params={"seed": seed},
                               history=[("loss", 1.0 / (step + 1 + seed), step) for step in range(50)])


def log_in_parallel(uri: str, jobs: int) -> list[str]:
    """`jobs` processes record a run each, released at once; any "database is locked" would raise here."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(jobs, initializer=_wait_at, initargs=(context.Barrier(jobs),)) as pool:
        return pool.starmap(log_one, [(uri, seed) for seed in range(jobs)])


@pytest.mark.parametrize("jobs", [8, 16])
def test_parallel_jobs_lose_no_run(tracking_uri, jobs):
    run_ids = log_in_parallel(tracking_uri, jobs)
    frame = tracking.fetch_runs(tracking_uri, run_ids)
    assert len(set(run_ids)) == jobs and len(frame) == jobs
    assert set(frame["status"]) == {"FINISHED"}
    from mlflow.tracking import MlflowClient

    history = MlflowClient(tracking_uri).get_metric_history(run_ids[0], "loss")
    assert [m.step for m in history] == list(range(50))


def test_summarise_matches_scipy():
    values = [0.91, 0.915, 0.905, 0.92, 0.912]
    s = summarise(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=statistics.mean(values), scale=stats.sem(values))
    assert s["mean"] == pytest.approx(statistics.mean(values))
    assert s["std"] == pytest.approx(statistics.stdev(values))
    assert (s["ci95_low"], s["ci95_high"]) == (pytest.approx(low), pytest.approx(high))


def record(seed: int, accuracy: float) -> dict:
    """A run's record as the runner writes it (run.json)."""
    return {"id": f"record-{seed}", "run_name": f"b04-06/seed-{seed}/runs", "status": "FINISHED", "tags": {},
            "params": {"exercise": "b04-06", "seed": seed, "scale": "smoke", "impl": "reference"},
            "history": [("loss", 1.0 / (step + 1), step) for step in range(3)],
            "final": {"test_accuracy": accuracy}, "artifacts": ["metrics.json"]}


def test_variance_is_read_from_mlflow(tracking_uri, tmp_path):
    run_dirs = []
    for seed, accuracy in enumerate([0.90, 0.92, 0.91]):
        run_dirs.append(tmp_path / f"seed-{seed}")
        write_json(run_dirs[-1] / "run.json", record(seed, accuracy))
        write_json(run_dirs[-1] / "metrics.json", {"test_accuracy": accuracy})
    summary = aggregate_variance(run_dirs, ["test_accuracy"], tracking_uri)
    assert summary["seeds"] == [0, 1, 2]
    assert summary["metrics"]["test_accuracy"]["mean"] == pytest.approx(0.91)
    again = aggregate_variance(run_dirs, ["test_accuracy"], tracking_uri)
    assert again["run_ids"] == summary["run_ids"]  # each record is logged once
    runs = tracking.fetch_runs(tracking_uri, summary["run_ids"])
    assert len(runs) == 3 and set(runs["tags.torchkata.record"]) == {"record-0", "record-1", "record-2"}
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    assert [m.step for m in client.get_metric_history(summary["run_ids"][0], "loss")] == [0, 1, 2]
    assert {a.path for a in client.list_artifacts(summary["run_ids"][0])} == {"metrics.json"}
    with pytest.raises(KeyError, match="not_logged"):
        aggregate_variance(run_dirs, ["not_logged"], tracking_uri)


def test_uninitialised_store_says_what_to_run(tmp_path):
    uri = f"sqlite:///{tmp_path}/empty.db"
    with pytest.raises(RuntimeError, match="mlflow_init"):
        tracking.record_run(uri, run_name="x", params={}, history=[])


@pytest.fixture
def tracking_server(tmp_path):
    """`mlflow server` on loopback over a SQLite store, as a cluster's jobs would reach it: (URI, store URI)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = f"sqlite:///{tmp_path}/server/mlflow.db"
    (tmp_path / "server").mkdir()
    log = open(tmp_path / "server" / "server.log", "w")
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("mlflow")), "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--backend-store-uri", store, "--artifacts-destination", str(tmp_path / "server" / "artifacts")],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=5) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None, (tmp_path / "server" / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "mlflow server did not answer /health"
            time.sleep(0.5)
        yield uri, store
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
        log.close()


@pytest.mark.slow
def test_jobs_log_through_a_tracking_server(tracking_server):
    uri, store = tracking_server
    tracking.init_store(uri)
    run_ids = log_in_parallel(uri, 16)
    frame = tracking.fetch_runs(store, run_ids)  # the server wrote them into its SQLite store
    assert len(frame) == 16 and set(frame["status"]) == {"FINISHED"}


@pytest.mark.slow
def test_pipeline_logs_through_a_tracking_server(tracking_server, tmp_path, extension_library):
    uri, store = tracking_server
    extension_library("add_constant")
    project = copy_project(tmp_path / "project")
    config = with_config(project, "server.yaml", scale="smoke", exercises=["a01"], tracking__uri=uri)
    run = snakemake(project, "all", "--cores", "2", "--configfile", str(config))
    assert run.returncode == 0, run.output[-3000:]
    assert not (project / "results" / "mlflow" / "mlflow.db").exists()  # nothing went to the local default
    variance = read_json(project / "results" / "a01" / "reference-smoke" / "variance.json")
    assert variance["seeds"] == [0, 1]
    import mlflow

    mlflow.set_tracking_uri(store)  # the server wrote the runs into its SQLite store
    runs = mlflow.search_runs(experiment_names=[tracking.EXPERIMENT])
    assert sorted(runs["params.purpose"] + "/" + runs["params.seed"]) == ["rerun/0", "runs/0", "runs/1"]
    assert set(runs["status"]) == {"FINISHED"} and set(variance["run_ids"]) <= set(runs["run_id"])
    from mlflow.tracking import MlflowClient

    artifacts = {a.path for a in MlflowClient(uri).list_artifacts(variance["run_ids"][0])}
    assert {"metrics.json", "bench.json"} <= artifacts  # uploaded through the server's artifact proxy


def test_logging_a_run_leaves_the_environment_as_it_was(tmp_path):
    """Snakemake's process imports MLflow while jobs run: were the environment to change, every later job would
    key (and start) a warm process of its own (zygote.socket_path). MLflow's telemetry did, with a session id,
    and so did mlflow.set_tracking_uri (MLFLOW_TRACKING_URI)."""
    script = (
        "import os, sys\n"
        "from torchkata.pipeline import tracking\n"
        "tracking.quiet_environment()\n"
        "before = dict(os.environ)\n"
        "uri = 'sqlite:///' + sys.argv[1]\n"
        "tracking.init_store(uri)\n"
        "run_id = tracking.record_run(uri, run_name='env', params={'seed': 0}, history=[('loss', 1.0, 0)])\n"
        "tracking.fetch_runs(uri, [run_id])\n"
        "changed = {k for k in before.keys() | os.environ.keys() if before.get(k) != os.environ.get(k)}\n"
        "sys.exit(f'changed: {sorted(changed)}' if changed else 0)\n"
    )
    environment = {k: v for k, v in os.environ.items() if k not in ("CI", "MLFLOW_DISABLE_TELEMETRY")}
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "mlflow.db")], env=environment,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def _schema(db: Path) -> tuple[dict, list]:
    """Each table's, index's definition as a set of clauses: MLflow's own migrations order a table's constraints
    differently from one store to the next (they rebuild SQLite tables from sets)."""
    import sqlite3

    with sqlite3.connect(db) as connection:
        objects = connection.execute("SELECT type, name, sql FROM sqlite_master").fetchall()
        version = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    return {(kind, name): frozenset(line.strip().rstrip(",") for line in (sql or "").splitlines())
            for kind, name, sql in objects}, version


def test_a_store_copied_from_the_template_is_the_store_mlflow_makes(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    made_by_mlflow = tmp_path / "mlflow.db"
    tracking._client(f"sqlite:///{made_by_mlflow}").search_experiments()
    copied = tmp_path / "results" / "mlflow.db"
    experiment_id = tracking.init_store(f"sqlite:///{copied}")
    assert tracking.empty_store_template().parent == tmp_path / "cache" / "torchkata"
    assert _schema(copied) == _schema(made_by_mlflow)
    run_id = tracking.record_run(f"sqlite:///{copied}", run_name="copied", params={"seed": 0},
                                 history=[("loss", 0.5, 0)])
    frame = tracking.fetch_runs(f"sqlite:///{copied}", [run_id])
    assert frame["experiment_id"].tolist() == [experiment_id] and frame["metrics.loss"].tolist() == [0.5]
