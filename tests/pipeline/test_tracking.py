"""MLflow tracking: parallel writers lose nothing; variance is computed from what MLflow stored."""
import multiprocessing
import statistics

import pytest
from scipy import stats

from torchkata.pipeline import tracking
from torchkata.pipeline.files import write_json
from torchkata.pipeline.reproducibility import aggregate_variance, summarise


def log_one(uri: str, seed: int) -> str:
    return tracking.record_run(uri, run_name=f"parallel/{seed}", params={"seed": seed},
                               history=[("loss", 1.0 / (step + 1 + seed), step) for step in range(50)])


@pytest.mark.parametrize("jobs", [8])
def test_parallel_jobs_lose_no_run(tracking_uri, jobs):
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        run_ids = pool.starmap(log_one, [(tracking_uri, seed) for seed in range(jobs)])
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


def test_variance_is_read_from_mlflow(tracking_uri, tmp_path):
    run_files = []
    for seed, accuracy in enumerate([0.90, 0.92, 0.91]):
        run_id = tracking.record_run(tracking_uri, run_name=f"v/{seed}", params={"seed": seed},
                                     history=[("test_accuracy", accuracy, 0)])
        path = tmp_path / f"run{seed}.json"
        write_json(path, {"run_id": run_id, "tracking_uri": tracking_uri, "experiment": tracking.EXPERIMENT,
                          "exercise": "b04-06", "scale": "smoke", "impl": "reference"})
        run_files.append(path)
    summary = aggregate_variance(run_files, ["test_accuracy"])
    assert summary["seeds"] == [0, 1, 2]
    assert summary["metrics"]["test_accuracy"]["mean"] == pytest.approx(0.91)
    with pytest.raises(KeyError, match="not_logged"):
        aggregate_variance(run_files, ["not_logged"])


def test_uninitialised_store_says_what_to_run(tmp_path):
    uri = f"sqlite:///{tmp_path}/empty.db"
    with pytest.raises(RuntimeError, match="mlflow_init"):
        tracking.record_run(uri, run_name="x", params={}, history=[])
