"""The catalog is the one list: every seed id, consistent entries, and every done exercise complete."""
import importlib
import inspect
from pathlib import Path

import pytest

from torchkata.pipeline.catalog import ROOT, CatalogError, load_catalog, load_impl

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


def public_functions(module):
    return {name: inspect.signature(obj) for name, obj in vars(module).items()
            if inspect.isfunction(obj) and not name.startswith("_") and obj.__module__ == module.__name__}


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
