"""The DAG as a user drives it, in a copy of the repository: config errors, a smoke run, up to date, partial rebuilds."""
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from torchkata.pipeline.catalog import ROOT
from torchkata.pipeline.extensions import library_path

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


@pytest.fixture(scope="module")
def project(tmp_path_factory, extension_library):
    """The repository's tracked files, as a fresh clone has them (results/ empty)."""
    dest = tmp_path_factory.mktemp("project")
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True)
    for name in filter(None, tracked.stdout.split("\0")):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


def with_config(project: Path, name: str, **changes) -> Path:
    config = yaml.safe_load((project / "config.yaml").read_text())
    for key, value in changes.items():
        section, _, sub = key.partition("__")
        if sub:
            config[section][sub] = value
        else:
            config[section] = value
    path = project / name
    path.write_text(yaml.safe_dump(config))
    return path


def snakemake(project: Path, *args: str) -> subprocess.CompletedProcess:
    """Snakemake's messages go to stdout and stderr both: `.output` has them together."""
    result = subprocess.run([SNAKEMAKE, *args], cwd=project, capture_output=True, text=True)
    result.output = result.stdout + result.stderr
    return result


def test_misspelt_key_is_named(project):
    bad = project / "misspelt.yaml"
    bad.write_text((project / "config.yaml").read_text().replace("scale: default", "scael: default"))
    result = snakemake(project, "-n", "--configfile", str(bad))
    assert result.returncode != 0
    assert "scael" in result.output


def test_wrong_type_is_named(project):
    result = snakemake(project, "-n", "--configfile", str(with_config(project, "wrong.yaml", threads="two")))
    assert result.returncode != 0
    assert "threads" in result.output and "'two' is not of type 'integer'" in result.output


def test_unknown_exercise_in_selection_is_named(project):
    result = snakemake(project, "-n", "--configfile", str(with_config(project, "sel.yaml", exercises=["zz-99"])))
    assert result.returncode != 0
    assert "zz-99" in result.output


def test_missing_dataset_names_path_and_remedy(project):
    config = with_config(project, "nodata.yaml", exercises=["b04-06"], data__fashion_mnist="/nowhere/fashion")
    result = snakemake(project, "-n", "--configfile", str(config))
    assert result.returncode != 0
    assert "/nowhere/fashion" in result.output and "./run.sh data" in result.output


def test_smoke_run_is_up_to_date_and_rebuilds_only_what_changed(project):
    lib = project / library_path("add_constant").relative_to(ROOT)
    lib.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(library_path("add_constant"), lib)  # built once per session (see conftest), not per test
    config = str(with_config(project, "smoke.yaml", scale="smoke", exercises=["a01", "a41"], variance_seeds=[0, 1]))
    run = snakemake(project, "all", "--cores", "2", "--configfile", config)
    assert run.returncode == 0, run.output[-3000:]
    summary = (project / "results" / "summary" / "summary.csv").read_text()
    assert "a01,Softmax by hand" in summary and ",ran," in summary

    start = time.perf_counter()
    dry = snakemake(project, "all", "-n", "--configfile", config)
    elapsed = time.perf_counter() - start
    assert "Nothing to be done" in dry.output
    assert elapsed < 6  # the bar is 3 s on an idle machine; CI shares 2 cores with other work

    (project / "results" / "a01" / "variance.json").unlink()
    dry = snakemake(project, "all", "-n", "--configfile", config)
    jobs = {line.split()[0] for line in dry.stdout.splitlines()[1:] if line.startswith(("variance", "summary", "all", "exercise", "determinism"))}
    assert jobs == {"variance", "summary", "all"}, dry.stdout
