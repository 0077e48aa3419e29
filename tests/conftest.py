"""Shared fixtures. `pytest --impl starter` grades the learners' problems/<id>/starter.py instead of the
reference solutions (`torchkata check ID` does this for one exercise)."""
from __future__ import annotations

import os

import pytest
import torch

from torchkata.pipeline.catalog import IMPLS, load_catalog, load_impl
from torchkata.pipeline.extensions import build, library_path
from torchkata.pipeline.tracking import init_store


def pytest_addoption(parser):
    parser.addoption("--impl", choices=IMPLS, default="reference",
                     help="grade the reference solutions or the learners' starters")


def pytest_configure(config):
    # imported once here, not inside whichever test first builds an optimizer or calls assert_close (2.7 s that
    # would count against that one exercise's test time)
    import torch._dynamo  # noqa: F401

    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:  # share the cores between the workers instead of each one taking them all
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
    config.addinivalue_line("markers", "suite_check: checks the test suite itself (e.g. that broken code is "
                                       "rejected); not part of a learner's grade")


# The tests that look at one finished smoke DAG share it as a session fixture (`smoke_project`), which each
# pytest-xdist worker would otherwise build again: under `-n 2 --dist loadgroup` these files go to one worker as one
# unit, and every other test file goes whole to whichever worker is free (tests/pipeline/test_imports.py checks
# that the list names every file that uses the fixture).
SHARED_DAG_FILES = ("tests/cluster/test_slurm.py", "tests/pipeline/test_workflow.py", "tests/report/test_report_browser.py")


def work_unit(nodeid: str) -> str:
    """What a worker takes whole: the files that share the smoke DAG together, else the test's file."""
    path = nodeid.split("::")[0]
    return "shared-smoke-dag" if path in SHARED_DAG_FILES else path


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """--dist loadgroup, grouped by work_unit. Not by xdist_group marks: pytest-xdist 3.8 reads those from node
    ids that pytest 9.2 no longer lets it change, and silently spreads a group (pytest-dev/pytest-xdist#1386)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByTestGroup(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return ByTestGroup(config, log)


def pytest_collection_modifyitems(config, items):
    if config.getoption("--impl") == "starter":
        skip = pytest.mark.skip(reason="checks the suite, not your solution")
        for item in items:
            if "suite_check" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def impl_for(request):
    """impl_for("a01") -> the module under test for that exercise."""
    name = request.config.getoption("--impl")
    catalog = load_catalog()
    return lambda exercise_id: load_impl(catalog.get(exercise_id), name)


@pytest.fixture(scope="session")
def extension_library():
    """extension_library("add_constant") -> path of the built library; built once if the rule has not."""
    def get(name):
        path = library_path(name)
        if not path.is_file():
            build(name)
        return path
    return get


@pytest.fixture
def tracking_uri(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow/mlflow.db"
    init_store(uri)
    return uri


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def smoke_project(tmp_path_factory, extension_library):
    """A fresh copy of the repository after `snakemake all` at smoke scale for a01 and a41 (two variance
    seeds, the smoke preset): one run shared by the tests that look at a finished pipeline. (project, its config file)"""
    from torchkata.pipeline.projects import copy_project, snakemake, with_config

    extension_library("add_constant")
    project = copy_project(tmp_path_factory.mktemp("smoke-project"))
    config = with_config(project, "smoke.yaml", scale="smoke", exercises=["a01", "a41"])
    run = snakemake(project, "all", "--cores", "2", "--configfile", str(config))
    assert run.returncode == 0, run.output[-3000:]
    return project, config
