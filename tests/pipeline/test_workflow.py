"""The DAG as a user drives it, in a copy of the repository: config errors, a smoke run, up to date, partial rebuilds."""
import re

import pandas as pd
import pytest

from torchkata.pipeline.projects import copy_project, snakemake, with_config


@pytest.fixture(scope="module")
def project(tmp_path_factory, extension_library):
    extension_library("add_constant")
    return copy_project(tmp_path_factory.mktemp("project"))


def test_misspelt_key_is_named(project):
    bad = project / "misspelt.yaml"
    bad.write_text((project / "config.yaml").read_text().replace("scale: default", "scael: default"))
    result = snakemake(project, "-n", "--configfile", str(bad))
    assert result.returncode != 0
    assert "scael" in result.output


def test_wrong_type_is_named(project):
    wrong = with_config(project, "wrong.yaml", scales__smoke={"threads": "two", "variance_seeds": [0, 1]})
    result = snakemake(project, "-n", "--configfile", str(wrong))
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


def test_smoke_run_is_up_to_date_and_rebuilds_only_what_changed(smoke_project):
    project, config = smoke_project
    summary = (project / "results" / "summary" / "smoke" / "summary.csv").read_text()
    assert "a01,reference,Softmax by hand" in summary and ",ran," in summary
    runs = project / "results" / "a01" / "reference-smoke"  # at smoke only the result's run draws figures
    assert list((runs / "runs" / "seed-0" / "plots").glob("*.png"))
    assert not list((runs / "runs" / "seed-1" / "plots").glob("*.png"))
    assert not list((runs / "rerun" / "seed-0" / "plots").glob("*.png"))

    dry = snakemake(project, "all", "-n", "--configfile", str(config))
    assert "Nothing to be done" in dry.output  # its time is measured by `torchkata cost`, not asserted here

    (project / "results" / "a01" / "reference-smoke" / "variance.json").unlink()
    dry = snakemake(project, "all", "-n", "--configfile", str(config))
    jobs = {line.split()[0] for line in dry.stdout.splitlines()[1:] if line.startswith(("variance", "summary", "all", "exercise", "determinism"))}
    assert jobs == {"variance", "summary", "all"}, dry.stdout
    rebuilt = snakemake(project, "all", "--cores", "2", "--configfile", str(config))  # and really only those
    assert rebuilt.returncode == 0, rebuilt.output[-3000:]
    assert set(re.findall(r"^(?:local)?rule (\w+):$", rebuilt.output, flags=re.MULTILINE)) == {"variance", "summary", "all"}
    assert (project / "results" / "a01" / "reference-smoke" / "variance.json").is_file()


def test_an_edit_to_a_shared_module_reruns_the_exercises_that_import_it(smoke_project):
    project, config = smoke_project
    softmax = project / "src" / "torchkata" / "tensors" / "softmax.py"  # imported by a01's reference, not by a41
    softmax.write_text(softmax.read_text() + "\n")
    dry = snakemake(project, "all", "-n", "--configfile", str(config))
    reasons = re.findall(r"^\s*output: results/(\w+)/", dry.stdout, flags=re.MULTILINE)
    assert "a01" in reasons and "a41" not in reasons, dry.stdout
    softmax.write_text(softmax.read_text()[:-1])


def test_resources_come_from_the_catalog(project):
    dry = snakemake(project, "-n", "-p", "--cores", "1", "results/b04-06/reference-default/runs/seed-0/metrics.json",
                    "results/a01/reference-smoke/runs/seed-0/metrics.json")
    assert dry.returncode == 0, dry.output[-3000:]
    jobs = dict(re.findall(r"^rule (exercise_\w+):\n(?:    .*\n)*?    resources: (.*)$", dry.stdout, flags=re.MULTILINE))
    assert "mem_mb=8000" in jobs["exercise_b04_06"] and "runtime=9" in jobs["exercise_b04_06"]  # a flagship
    assert "mem_mb=2000" in jobs["exercise_a01"] and "runtime=5" in jobs["exercise_a01"]
    # torch's threads are the scale's, also where --cores is fewer: results do not depend on the machine
    threads = dict(re.findall(r"run_exercise.py (\S+) .* --threads (\d+) ", dry.stdout))
    assert threads == {"b04-06": "2", "a01": "1"}


@pytest.mark.slow
def test_a_learners_run_sits_beside_the_reference(smoke_project, tmp_path):
    """The learner's run goes to starter-smoke/, the reference's files stay as they were, and the summary shows
    both rows and the comparison."""
    project, config = smoke_project
    reference = project / "results" / "a01" / "reference-smoke"
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in reference.rglob("*") if p.is_file()}
    starter = project / "problems" / "a01" / "starter.py"
    original = starter.read_text()
    starter.write_text((project / "src" / "torchkata" / "tensors" / "softmax.py").read_text())  # a correct answer
    try:
        learner = with_config(project, "learner.yaml", scale="smoke", impl="starter", exercises=["a01"])
        run = snakemake(project, "all", "--cores", "2", "--configfile", str(learner))
        assert run.returncode == 0, run.output[-3000:]
    finally:
        starter.write_text(original)
    assert (project / "results" / "a01" / "starter-smoke" / "determinism.json").is_file()
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in reference.rglob("*") if p.is_file()} == before
    table = pd.read_csv(project / "results" / "summary" / "smoke" / "summary.csv")
    a01 = table[table["id"] == "a01"].set_index("impl")
    assert set(a01.index) == {"reference", "starter"} and set(a01["status"]) == {"ran"}
    assert a01.loc["starter", "value"] == a01.loc["reference", "value"]  # the same answer, the same error
    # the learner's call selected only a01: the other reference rows of the scale's table stay as they were
    assert table[(table["id"] == "a41") & (table["impl"] == "reference")]["status"].tolist() == ["ran"]
    page = (project / "results" / "summary" / "smoke" / "summary.html").read_text()
    assert "Your solutions beside the reference (1)" in page
