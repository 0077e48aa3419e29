"""The experiment contract: a seeded run writes its files atomically, twice the same bytes, FAILED runs recorded."""
import pytest

from torchkata.pipeline import tracking
from torchkata.pipeline.catalog import CatalogError
from torchkata.pipeline.files import read_json
from torchkata.pipeline.reproducibility import compare_runs
from torchkata.pipeline.runner import run_exercise


def run_a01(tmp_path, uri, name, seed=3, **overrides):
    options = dict(seed=seed, scale="smoke", impl="reference", threads=1, out=tmp_path / name, inputs={},
                   tracking_uri=uri)
    options.update(overrides)
    return run_exercise("a01", **options)


def test_same_seed_twice_is_bitwise_equal(tmp_path, tracking_uri):
    run_a01(tmp_path, tracking_uri, "first")
    run_a01(tmp_path, tracking_uri, "second", purpose="rerun")
    report = compare_runs(tmp_path / "first", tmp_path / "second")
    assert report["bitwise_equal"], report
    assert read_json(tmp_path / "first" / "metrics.json")["max_abs_error"] < 1e-12
    run = read_json(tmp_path / "first" / "run.json")
    assert run["seed"] == 3 and run["threads"] == 1
    assert (tmp_path / "first" / "plots" / "error_vs_logit_scale.png").stat().st_size > 1000


def test_other_seed_differs(tmp_path, tracking_uri):
    run_a01(tmp_path, tracking_uri, "first", seed=1)
    run_a01(tmp_path, tracking_uri, "second", seed=2)
    assert not compare_runs(tmp_path / "first", tmp_path / "second")["bitwise_equal"]


def test_failing_experiment_is_recorded_failed(tmp_path, tracking_uri, monkeypatch):
    from torchkata.experiments import a01

    def explode(ctx):
        ctx.log("loss", 1.0, 0)
        raise ValueError("boom")

    monkeypatch.setattr(a01, "run", explode)
    with pytest.raises(ValueError, match="boom"):
        run_a01(tmp_path, tracking_uri, "failed")
    assert not (tmp_path / "failed" / "metrics.json").exists()
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    runs = mlflow.search_runs(experiment_names=[tracking.EXPERIMENT])
    assert list(runs["status"]) == ["FAILED"]
    assert "boom" in runs["tags.error"][0]
    assert read_json(tmp_path / "failed" / "error.json")["error"] == "ValueError: boom"

    monkeypatch.undo()  # the next attempt succeeds and clears the old error
    run_a01(tmp_path, tracking_uri, "failed")
    assert not (tmp_path / "failed" / "error.json").exists()


def test_planned_exercise_has_no_experiment(tmp_path, tracking_uri):
    with pytest.raises(CatalogError, match="a02 is planned"):
        run_exercise("a02", seed=0, scale="smoke", impl="reference", threads=1, out=tmp_path, inputs={},
                     tracking_uri=tracking_uri)


def test_missing_declared_input_is_named(tmp_path, tracking_uri):
    with pytest.raises(CatalogError, match="input 'add_constant'"):
        run_exercise("a41", seed=0, scale="smoke", impl="reference", threads=1, out=tmp_path, inputs={},
                     tracking_uri=tracking_uri)
    with pytest.raises(FileNotFoundError, match="nowhere.so"):
        run_exercise("a41", seed=0, scale="smoke", impl="reference", threads=1, out=tmp_path,
                     inputs={"add_constant": tmp_path / "nowhere.so"}, tracking_uri=tracking_uri)
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
