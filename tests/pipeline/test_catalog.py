"""The catalog is the one list: every seed id, consistent entries, and every done exercise complete."""
import importlib
import inspect
from pathlib import Path

import pytest
import yaml

from torchkata.pipeline.catalog import ROOT, CatalogError, load_catalog, load_impl
from torchkata.pipeline.cost import main_job_report, pack, project_main_job, project_tests, seconds_per_test_file

SEED_LIST = ROOT.parent / "shared" / "seed-tasks.tsv"
CATALOG = load_catalog()
DONE = [e.id for e in CATALOG.done()]


def test_catalog_has_181_unique_ids():
    assert len(CATALOG.exercises) == 181


@pytest.mark.skipif(not SEED_LIST.is_file(), reason="../shared/seed-tasks.tsv is not beside this checkout")
def test_no_seed_id_missing():
    lines = SEED_LIST.read_text(encoding="utf-8").splitlines()[1:]
    seed_ids = [line.split("\t")[0] for line in lines if line.strip()]
    assert sorted(seed_ids) == sorted(CATALOG.exercises)


def test_unknown_id_names_it_and_suggests():
    with pytest.raises(CatalogError, match="unknown exercise id 'b04-6'; did you mean .*b04-06"):
        CATALOG.get("b04-6")


def test_bad_catalog_entry_is_refused(tmp_path):
    text = (ROOT / "catalog.yaml").read_text(encoding="utf-8")
    bad = tmp_path / "catalog.yaml"
    bad.write_text(text.replace("status: done", "status: finished", 1), encoding="utf-8")
    with pytest.raises(CatalogError, match="status 'finished'"):
        load_catalog(bad)


@pytest.mark.parametrize("exercise_id, scale, expected", [
    ("a02", "default", {"mem_mb": 2000, "runtime": 5, "gpu": 0}),  # no `resources`: the defaults
    ("a02", "full", {"mem_mb": 2000, "runtime": 50, "gpu": 0}),
    ("a24", "default", {"mem_mb": 8000, "runtime": 5, "gpu": 1}),
    ("a25", "default", {"mem_mb": 8000, "runtime": 5, "gpu": 0, "cpus_per_task": 4}),
    ("m5-core-1", "smoke", {"mem_mb": 64000, "runtime": 5, "gpu": 4, "cpus_per_task": 8}),
    ("b04-06", "smoke", {"mem_mb": 8000, "runtime": 5, "gpu": 0}),
    ("b04-06", "default", {"mem_mb": 8000, "runtime": 9, "gpu": 0}),  # flagship: 3 x 180 s
    ("b04-06", "full", {"mem_mb": 8000, "runtime": 90, "gpu": 0}),
])
def test_rule_resources_of_known_entries(exercise_id, scale, expected):
    assert CATALOG.get(exercise_id).rule_resources(scale) == expected


def test_budget_is_180_s_for_a_flagship_only():
    assert CATALOG.get("b04-06").budget_s == 180
    assert CATALOG.get("a01").budget_s == 60


def test_unknown_scale_is_named():
    with pytest.raises(ValueError, match="not 'huge'"):
        CATALOG.get("a01").rule_resources("huge")


def test_every_cuda_exercise_asks_for_a_gpu():
    for e in CATALOG.exercises.values():
        assert (e.rule_resources("default")["gpu"] > 0) == ("cuda" in e.needs), e.id


def write_catalog(tmp_path, **fields) -> Path:
    """A one-exercise catalog with `fields` set on the exercise."""
    entry = {"id": "x1", "title": "t", "seed": {}, "topic": "tensors", "difficulty": "beginner",
             "needs": ["cpu"], "status": "planned", **fields}
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump({"exercises": [entry]}), encoding="utf-8")
    return path


def test_gpus_on_a_cuda_exercise_are_accepted(tmp_path):
    path = write_catalog(tmp_path, needs=["cuda"], resources={"gpus": 2}, flagship=True)
    assert load_catalog(path).get("x1").rule_resources("default")["gpu"] == 2


def test_a_cuda_half_gets_a_gpu_only_where_the_machines_have_cuda(tmp_path):
    half = load_catalog(write_catalog(tmp_path, halves=["cuda"])).get("x1")
    assert half.rule_resources("default")["gpu"] == 0
    assert half.rule_resources("default", frozenset({"cpu", "cuda"}))["gpu"] == 1


@pytest.mark.parametrize("fields, message", [
    ({"resources": {"memory": 4000}}, r"x1: unknown resources \['memory'\]"),
    ({"resources": {"mem_mb": 0}}, "x1: resources.mem_mb must be a positive integer, not 0"),
    ({"resources": {"cpus": -4}}, "x1: resources.cpus must be a positive integer, not -4"),
    ({"resources": {"mem_mb": 1.5}}, "x1: resources.mem_mb must be a positive integer, not 1.5"),
    ({"resources": {"cpus": True}}, "x1: resources.cpus must be a positive integer, not True"),
    ({"resources": {"gpus": 1}}, "x1: resources.gpus is set but neither `needs` nor `halves` has cuda"),
    ({"halves": ["tpu"]}, r"x1: halves \['tpu'\] not in \('cuda',\)"),
    ({"halves": ["cuda"], "needs": ["cuda"]}, r"x1: \['cuda'\] is in both `needs`"),
    ({"flagship": "yes"}, "x1: flagship must be true or false, not 'yes'"),
    ({"resources": {"run_s": 61}}, r"x1: resources.run_s 61 is over the 60 s .* \(180 for a flagship\)"),
    ({"resources": {"run_s": 181}, "flagship": True}, "x1: resources.run_s 181 is over the 180 s"),
])
def test_bad_resources_are_refused(tmp_path, fields, message):
    with pytest.raises(CatalogError, match=message):
        load_catalog(write_catalog(tmp_path, **fields))


def test_slurm_profile_keeps_no_second_list():
    """Per-exercise resources live in the catalog; the profile holds the cluster's own settings."""
    profile = yaml.safe_load((ROOT / "workflow/profiles/slurm/config.v8+.yaml").read_text(encoding="utf-8"))

    def keys(node):
        if isinstance(node, dict):
            for key, value in node.items():
                yield key
                yield from keys(value)
        elif isinstance(node, list):
            for item in node:
                yield from keys(item)

    assert not [k for k in keys(profile) if str(k).startswith("exercise_")]
    assert "set-resources" not in profile
    assert set(profile["config"]["slurm_partitions"]) == {"cpu", "gpu"}


def public_functions(module):
    """The public functions and classes a module defines, with their signatures (a class's: its constructor's)."""
    return {name: inspect.signature(obj) for name, obj in vars(module).items()
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and not name.startswith("_")
            and obj.__module__ == module.__name__}


@pytest.mark.parametrize("exercise_id", DONE)
def test_done_exercise_is_complete(exercise_id):
    """README, starter with the reference's public signatures, tests naming the id, an experiment with 3 scales."""
    e = CATALOG.get(exercise_id)
    assert (e.problem_dir / "README.md").is_file()
    test_file = ROOT / "tests" / "exercises" / f"test_{e.slug}.py"
    assert exercise_id in test_file.read_text(encoding="utf-8")
    reference, starter = load_impl(e, "reference"), load_impl(e, "starter")
    starter_api = public_functions(starter)
    assert starter_api, f"{e.starter_path} defines no functions"
    for name, signature in starter_api.items():
        assert name in vars(reference), f"starter function {name} is not in {e.reference}"
        assert inspect.signature(getattr(reference, name)) == signature, name
    experiment = importlib.import_module(e.experiment_module)
    assert set(experiment.SCALES) == {"smoke", "default", "full"}


@pytest.mark.parametrize("exercise_id", DONE)
def test_starter_is_not_solved(exercise_id):
    """A starter only raises NotImplementedError: the learner writes the body."""
    starter = load_impl(CATALOG.get(exercise_id), "starter")
    for name, function in vars(starter).items():
        if inspect.isfunction(function) and function.__module__ == starter.__name__ and not name.startswith("_"):
            assert "NotImplementedError" in inspect.getsource(function), name


def test_allotments_fit_the_main_job(tmp_path):
    """With nothing measured, every exercise at its allotment: the catalog still fits the main job's 2 hours."""
    result = project_main_job(CATALOG, results=tmp_path, cores=8)
    assert result["measured"] == [] and len(result["per_run_s"]) == 181
    assert result["projected_s"] <= result["budget_s"], main_job_report(result)


def test_a_measured_run_replaces_the_allotment(tmp_path):
    bench = tmp_path / "a01" / "reference-default" / "runs" / "seed-0" / "bench.json"
    bench.parent.mkdir(parents=True)
    bench.write_text('{"wall_s": 70.0, "run_s": 69.0}')
    result = project_main_job(CATALOG, results=tmp_path, cores=8)
    assert result["per_run_s"]["a01"] == 70.0
    assert result["over_allotment"] == {"a01": {"measured_s": 70.0, "allotted_s": CATALOG.get("a01").run_s}}


def test_pack_puts_the_longest_first():
    assert pack([1, 1, 1, 1, 4], slots=2) == 4  # in the given order the 4 would land on a slot already at 2
    assert pack([5], slots=4) == 5 and pack([], slots=2) == 0


JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="tests.exercises.test_a01" name="test_softmax[a]" time="1.5" />
<testcase classname="tests.exercises.test_a01" name="test_softmax[b]" time="0.5" />
<testcase classname="tests.exercises.test_b04_06.TestTraining" name="test_x" time="4.0" />
<testcase classname="tests.pipeline.test_workflow" name="test_dag" time="100.0" />
</testsuite></testsuites>"""


def test_the_test_command_is_projected_from_its_files(tmp_path):
    junit = tmp_path / "junit.xml"
    junit.write_text(JUNIT)
    files = seconds_per_test_file(junit)
    assert files == {"tests/exercises/test_a01": 2.0, "tests/exercises/test_b04_06": 4.0,
                     "tests/pipeline/test_workflow": 100.0}
    result = project_tests(CATALOG, files, wall=110.0, workers=2)
    assert result["exercise_tests_s"] == {"a01": 2.0, "b04-06": 4.0} and result["pipeline_tests_s"] == 100.0
    assert result["over_budget"] == {"b04-06": 4.0}
    # the 179 exercises without a measured test file at the mean (3 s), over the two workers
    assert result["projected_s"] == pytest.approx(110.0 + 179 * 3.0 / 2)


def test_raw_data_keys_are_config_keys():
    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text(encoding="utf-8"))
    data_keys = schema["properties"]["data"]["properties"]
    config = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    for e in CATALOG.exercises.values():
        for key in e.raw_data:
            assert key in data_keys and key in config["data"], f"{e.id}: inputs.raw_data {key!r} is not under data:"


def test_raw_data_reaches_the_run_only_where_set(tmp_path):
    from torchkata.pipeline.workflow import Workflow

    config = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    exercise = CATALOG.get("b03-02")
    (tmp_path / "mnist").mkdir()
    config["data"] |= {"fashion_mnist": str(tmp_path), "mnist": ""}
    flow = Workflow(CATALOG, config, [exercise])
    assert flow.raw_data(exercise) == {"fashion_mnist": str(tmp_path)}
    config["data"]["mnist"] = str(tmp_path / "mnist")
    assert flow.raw_data(exercise) == {"fashion_mnist": str(tmp_path), "mnist": str(tmp_path / "mnist")}
    assert flow.input_paths(exercise, "reference-smoke", 0)["mnist"] == str(tmp_path / "mnist")
    config["data"]["mnist"] = str(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="data.mnist = .*nowhere.* is not a folder"):
        flow.raw_data(exercise)


def test_unknown_input_kind_is_refused(tmp_path):
    path = write_catalog(tmp_path, inputs={"raw": ["mnist"]})
    with pytest.raises(CatalogError, match=r"x1: unknown inputs \['raw'\]"):
        load_catalog(path)
