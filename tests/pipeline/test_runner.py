"""The experiment contract: a seeded run writes its files atomically, twice the same bytes, and a record of itself
that becomes an MLflow run (FAILED runs too) without the run importing MLflow."""
import subprocess
import sys

import time

import pytest

from torchkata.pipeline import tracking
from torchkata.pipeline.catalog import CatalogError, load_catalog
from torchkata.pipeline.files import read_json
from torchkata.pipeline.reproducibility import compare_runs
from torchkata.pipeline.runner import run_exercise


def run_a01(tmp_path, name, seed=3, **overrides):
    options = dict(seed=seed, scale="smoke", impl="reference", threads=1, out=tmp_path / name, inputs={})
    options.update(overrides)
    return run_exercise("a01", **options)


def test_same_seed_twice_is_bitwise_equal(tmp_path):
    run_a01(tmp_path, "first")
    run_a01(tmp_path, "second", purpose="rerun")
    report = compare_runs(tmp_path / "first", tmp_path / "second")
    assert report["bitwise_equal"], report
    assert read_json(tmp_path / "first" / "metrics.json")["max_abs_error"] < 1e-12
    record = read_json(tmp_path / "first" / "run.json")
    assert record["params"]["seed"] == 3 and record["params"]["threads"] == 1 and record["status"] == "FINISHED"
    assert record["final"]["max_abs_error"] < 1e-12 and record["history"]  # what MLflow gets
    assert (tmp_path / "first" / "plots" / "error_vs_logit_scale.png").stat().st_size > 1000


def test_other_seed_differs(tmp_path):
    run_a01(tmp_path, "first", seed=1)
    run_a01(tmp_path, "second", seed=2)
    assert not compare_runs(tmp_path / "first", tmp_path / "second")["bitwise_equal"]


def test_bench_has_the_jobs_wall_time_and_its_overhead(tmp_path):
    run_a01(tmp_path, "run", started_at=time.time() - 5)  # the job's process started 5 s earlier
    bench = read_json(tmp_path / "run" / "bench.json")
    assert bench["wall_s"] >= 5 + bench["run_s"] > 5


def test_a_run_does_not_import_mlflow_or_the_compiler(tmp_path):
    """The imports a run does not need cost seconds per job: MLflow (its record is logged later, by the
    bookkeeping in Snakemake's process) and torch._inductor (what torch.use_deterministic_algorithms imports)."""
    code = ("import sys, torch; from torchkata.pipeline.runner import run_exercise; "
            f"run_exercise('a01', seed=0, scale='smoke', impl='reference', threads=1, out=r'{tmp_path}', inputs={{}}); "
            "print(sorted(m for m in ('mlflow', 'torch._inductor', 'matplotlib.pyplot', 'pandas') if m in sys.modules)); "
            "print(torch.are_deterministic_algorithms_enabled())")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split("\n")[:2] == ["[]", "True"], result.stdout + result.stderr


def test_failing_experiment_is_recorded_failed(tmp_path, tracking_uri, monkeypatch):
    from torchkata.experiments import a01
    from torchkata.pipeline.bookkeeping import log_new_records

    def explode(ctx):
        ctx.log("loss", 1.0, 0)
        raise ValueError("boom")

    monkeypatch.setattr(a01, "run", explode)
    started = time.time()
    failed = tmp_path / "a01" / "reference-smoke" / "runs" / "seed-3"
    with pytest.raises(ValueError, match="boom"):
        run_exercise("a01", seed=3, scale="smoke", impl="reference", threads=1, out=failed, inputs={})
    assert not (failed / "metrics.json").exists()
    error = read_json(failed / "error.json")
    assert error["error"] == "ValueError: boom" and error["record"]["status"] == "FAILED"

    assert log_new_records(tmp_path, tracking_uri, tracking.EXPERIMENT, since=started) == 1
    assert log_new_records(tmp_path, tracking_uri, tracking.EXPERIMENT, since=started) == 1  # found, not again
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    runs = mlflow.search_runs(experiment_names=[tracking.EXPERIMENT])
    assert list(runs["status"]) == ["FAILED"]
    assert "boom" in runs["tags.error"][0] and "Traceback" in runs["tags.traceback"][0]
    assert list(runs["metrics.loss"]) == [1.0]  # the history it had

    monkeypatch.undo()  # the next attempt succeeds and clears the old error
    run_exercise("a01", seed=3, scale="smoke", impl="reference", threads=1, out=failed, inputs={})
    assert not (failed / "error.json").exists()


def test_planned_exercise_has_no_experiment(tmp_path):
    planned = next(e.id for e in load_catalog().exercises.values() if not e.done)
    with pytest.raises(CatalogError, match=f"{planned} is planned"):
        run_exercise(planned, seed=0, scale="smoke", impl="reference", threads=1, out=tmp_path, inputs={})


def test_missing_declared_input_is_named(tmp_path):
    with pytest.raises(CatalogError, match="input 'add_constant'"):
        run_exercise("a41", seed=0, scale="smoke", impl="reference", threads=1, out=tmp_path, inputs={})
    with pytest.raises(FileNotFoundError, match="nowhere.so"):
        run_exercise("a41", seed=0, scale="smoke", impl="reference", threads=1, out=tmp_path,
                     inputs={"add_constant": tmp_path / "nowhere.so"})
    assert "nowhere.so" in read_json(tmp_path / "error.json")["error"]  # for the summary


def test_equal_checkpoints_are_equal_bytes(tmp_path):
    import torch

    from torchkata.pipeline.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

    state = {"w": torch.arange(6.0).reshape(2, 3)}
    first, second = save_checkpoint(state, tmp_path / "a.pt"), save_checkpoint(state, tmp_path / "b" / "c.pt")
    assert first.read_bytes() == second.read_bytes()
    assert torch.equal(load_checkpoint(first, required_keys=("w",))["w"], state["w"])
    first.write_bytes(first.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="a.pt is corrupted"):
        load_checkpoint(first)


@pytest.fixture
def a01_with_a_cuda_half(monkeypatch):
    """a01 as if its catalog entry had `halves: [cuda]`, its experiment wrapped to say (or not) how the half went."""
    import dataclasses

    from torchkata.experiments import a01
    from torchkata.pipeline import runner

    catalog = load_catalog()  # cached: changed in a copy, or the change would leak into later tests
    catalog = dataclasses.replace(catalog, exercises=catalog.exercises | {
        "a01": dataclasses.replace(catalog.get("a01"), halves=("cuda",))})
    monkeypatch.setattr(runner, "load_catalog", lambda: catalog)
    original = a01.run

    def with_half(say):
        def run(ctx):
            original(ctx)
            say(ctx)
        monkeypatch.setattr(a01, "run", run)

    return with_half


def test_a_skipped_half_is_in_bench_with_its_reason(tmp_path, a01_with_a_cuda_half):
    a01_with_a_cuda_half(lambda ctx: ctx.half("cuda", skipped="no CUDA device"))
    run_a01(tmp_path, "run")
    assert read_json(tmp_path / "run" / "bench.json")["halves"] == {"cuda": "skipped: no CUDA device"}


def test_a_half_never_mentioned_fails_the_run(tmp_path, a01_with_a_cuda_half):
    a01_with_a_cuda_half(lambda ctx: None)
    with pytest.raises(RuntimeError, match=r"did not say whether its \['cuda'\] half ran"):
        run_a01(tmp_path, "run")


def test_a_half_not_in_the_catalog_is_refused(tmp_path, a01_with_a_cuda_half):
    a01_with_a_cuda_half(lambda ctx: ctx.half("tpu"))
    with pytest.raises(CatalogError, match="'tpu' is not one of its catalog `halves`"):
        run_a01(tmp_path, "run")


def test_a_run_without_figures_computes_the_same_results(tmp_path):
    run_a01(tmp_path, "drawn")
    record = run_a01(tmp_path, "undrawn", figures=False)
    assert compare_runs(tmp_path / "drawn", tmp_path / "undrawn")["bitwise_equal"]
    assert not list((tmp_path / "undrawn" / "plots").glob("*.png")) and record["params"]["figures"] is False
