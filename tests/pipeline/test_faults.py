"""Faults, each really done to a copy of the repository: a SIGKILLed pipeline, a failing exercise, bad input."""
import gzip
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from torchkata.pipeline.projects import SNAKEMAKE, copy_project, job_environment, snakemake, with_config
from torchkata.data.fashion_mnist import RAW
from torchkata.pipeline.catalog import ROOT
from torchkata.pipeline.files import read_json

pytestmark = pytest.mark.slow

RAW_FASHION = ROOT / "data" / "external" / "fashion-mnist"


def deterministic_outputs(project: Path) -> dict[str, object]:
    """Every output that must be equal between two runs of the same config: files byte for byte, and the
    variance summaries but for the MLflow run ids they cite."""
    results = project / "results"
    paths = [*results.glob("*/*/*/seed-*/metrics.json"), *results.glob("*/*/*/seed-*/artifacts/**/*"),
             *results.glob("*/*/determinism.json"), *(project / "data").glob("*/*.pt")]
    outputs = {str(p.relative_to(project)): p.read_bytes() for p in sorted(paths) if p.is_file()}
    for path in results.glob("*/*/variance.json"):
        outputs[str(path.relative_to(project))] = {k: v for k, v in read_json(path).items() if k != "run_ids"}
    return outputs


# b04-10's determinism at smoke scale: both data rules, b04-06's training, its checkpoint handed to b04-10's
# run and rerun
TRANSFER = ["results/b04-10/reference-smoke/determinism.json"]


def test_sigkill_mid_run_then_resume_equals_uninterrupted(tmp_path, extension_library):
    extension_library("add_constant")
    reference = copy_project(tmp_path / "uninterrupted")
    run = snakemake(reference, *TRANSFER, "--cores", "2")
    assert run.returncode == 0, run.output[-3000:]

    project = copy_project(tmp_path / "killed")
    pipeline = subprocess.Popen([SNAKEMAKE, *TRANSFER, "--cores", "2"], cwd=project,
                                env=job_environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
    # kill while b04-10's run is inside its experiment: it has made its output folder, not yet its metrics
    started = project / "results" / "b04-10" / "reference-smoke" / "runs" / "seed-0" / "plots"
    deadline = time.monotonic() + 300
    while not started.is_dir():
        assert pipeline.poll() is None, "the pipeline ended before it could be killed"
        assert time.monotonic() < deadline, "b04-10 never started"
        time.sleep(0.05)
    os.killpg(pipeline.pid, signal.SIGKILL)
    pipeline.wait()
    incomplete = list((project / ".snakemake" / "incomplete").iterdir())
    assert incomplete, "nothing was running when the pipeline was killed"
    assert not (started.parent / "metrics.json").exists()
    assert (project / ".snakemake" / "locks").is_dir() and any((project / ".snakemake" / "locks").iterdir())

    resumed = snakemake(project, *TRANSFER, "--cores", "2")
    assert resumed.returncode == 0, resumed.output[-3000:]
    assert "removed the lock that a killed Snakemake run left" in resumed.output
    assert "exercise_b04_10" in resumed.output  # the interrupted job ran again
    assert not list((project / ".snakemake" / "incomplete").iterdir())
    expected, got = deterministic_outputs(reference), deterministic_outputs(project)
    assert sorted(got) == sorted(expected)
    assert [name for name in expected if got[name] != expected[name]] == []


def inject_fault(project: Path, exercise_slug: str, message: str) -> None:
    """The exercise's experiment raises as its first statement."""
    module = project / "src" / "torchkata" / "experiments" / f"{exercise_slug}.py"
    source = module.read_text()
    signature = "def run(ctx: RunContext) -> None:\n"
    assert signature in source
    module.write_text(source.replace(signature, f"{signature}    raise RuntimeError({message!r})\n"))


def test_failing_exercise_others_go_on_summary_and_mlflow_say_failed(tmp_path, extension_library):
    extension_library("add_constant")
    project = copy_project(tmp_path / "project")
    inject_fault(project, "a01", "injected fault in a01")
    config = with_config(project, "smoke.yaml", scale="smoke", exercises=["a01", "a41"])
    run = snakemake(project, "all", "--cores", "2", "--keep-going", "--configfile", str(config))
    assert run.returncode != 0
    assert "RuntimeError: injected fault in a01" in run.output  # the failed job's log is shown

    for name in ("determinism.json", "variance.json", "variance.png"):  # the other exercise went on
        assert (project / "results" / "a41" / "reference-smoke" / name).is_file()
    table = pd.read_csv(project / "results" / "summary" / "smoke" / "summary.csv").set_index("id")
    assert table.loc["a41", "status"] == "ran"
    assert table.loc["a01", "status"] == "failed"
    assert "RuntimeError: injected fault in a01" in table.loc["a01", "note"]

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{project}/results/mlflow/mlflow.db")
    runs = mlflow.search_runs(experiment_names=["torchkata"])
    by_exercise = runs.groupby("params.exercise")["status"].agg(sorted).to_dict()
    assert by_exercise == {"a01": ["FAILED"] * 3, "a41": ["FINISHED"] * 3}  # seeds 0, 1 and the rerun
    assert set(runs[runs["params.exercise"] == "a01"]["tags.error"]) == {"RuntimeError: injected fault in a01"}


@pytest.fixture(scope="module")
def project(tmp_path_factory, extension_library):
    extension_library("add_constant")
    return copy_project(tmp_path_factory.mktemp("project"))


def raw_folder_with(folder: Path, stem: str, content: bytes) -> Path:
    """Fashion-MNIST's raw folder with one file replaced by `content` (uncompressed)."""
    folder.mkdir()
    for images, labels in RAW.values():
        for name in (images, labels):
            if name != stem:
                (folder / f"{name}.gz").symlink_to(RAW_FASHION / f"{name}.gz")
    (folder / stem).write_bytes(content)
    return folder


def real_labels() -> bytes:
    return gzip.decompress((RAW_FASHION / "train-labels-idx1-ubyte.gz").read_bytes())


@pytest.mark.parametrize("damage, message", [
    (lambda data: b"\x12\x34\x08\x01" + data[4:], "bad magic number 12340801; not an IDX file"),
    (lambda data: data[: len(data) // 2], "truncated: dims [60000] of uint8 need 60008 bytes, file has 30004"),
], ids=["bad-magic", "truncated"])
def test_damaged_dataset_file_is_named(project, tmp_path, damage, message):
    raw = raw_folder_with(tmp_path / "raw", "train-labels-idx1-ubyte", damage(real_labels()))
    config = with_config(project, f"{tmp_path.name}.yaml", data__fashion_mnist=str(raw), exercises=["b04-06"])
    result = snakemake(project, "data/fashion-mnist/train.pt", "--cores", "1", "--configfile", str(config))
    assert result.returncode != 0
    assert f"{raw / 'train-labels-idx1-ubyte'}: {message}" in result.output
    assert not (project / "data" / "fashion-mnist" / "train.pt").exists()


def test_missing_dataset_file_is_named_with_the_remedy(project, tmp_path):
    raw = raw_folder_with(tmp_path / "raw", "train-labels-idx1-ubyte", real_labels())
    (raw / "t10k-images-idx3-ubyte.gz").unlink()
    config = with_config(project, f"{tmp_path.name}.yaml", data__fashion_mnist=str(raw), exercises=["b04-06"])
    result = snakemake(project, "data/fashion-mnist/train.pt", "--cores", "1", "--configfile", str(config))
    assert result.returncode != 0
    assert f"Fashion-MNIST file {raw / 't10k-images-idx3-ubyte'}[.gz] not found; get it with `./run.sh data`" \
        in result.output


def test_malformed_config_names_file_and_line(tmp_path, extension_library):
    extension_library("add_constant")
    project = copy_project(tmp_path)
    config = project / "config.yaml"
    config.write_text(config.read_text().replace("seed: 0", "seed: [0"))
    broken_line = config.read_text().splitlines().index("seed: [0") + 1
    result = snakemake(project, "-n")
    assert result.returncode != 0
    found = re.search(rf"{re.escape(str(config))}, line (\d+), column \d+: not valid YAML: expected ',' or ']'",
                      result.output)
    assert found, result.output
    assert int(found[1]) >= broken_line  # where the parser noticed: at or after the unclosed bracket


def test_unknown_exercise_target_is_named(project):
    result = snakemake(project, "-n", "results/zz-99/reference-smoke/determinism.json")
    assert result.returncode != 0
    assert "zz-99" in result.output


def test_corrupted_checkpoint_is_named_before_training(tmp_path):
    from torchkata.pipeline.checkpoint import CheckpointError
    from torchkata.pipeline.runner import run_exercise

    corrupted = tmp_path / "model.pt"
    corrupted.write_bytes(b"PK\x03\x04 not really a checkpoint")
    inputs = {"b04-06": corrupted, "fashion-mnist": tmp_path, "digits": tmp_path}  # never reached
    start = time.perf_counter()
    with pytest.raises(CheckpointError, match=f"checkpoint {corrupted} is corrupted"):
        run_exercise("b04-10", seed=0, scale="smoke", impl="reference", threads=1, out=tmp_path / "run",
                     inputs=inputs)
    assert time.perf_counter() - start < 20  # stopped at the checkpoint, before any training
    assert "model.pt is corrupted" in read_json(tmp_path / "run" / "error.json")["error"]
