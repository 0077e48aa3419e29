"""A dataset whose config path may be left empty (cifar10, for m2-core-1 and b04-01): the prepare step then
generates a stand-in; Snakemake and DVC follow the config value instead of a folder."""
import sys

import pytest

from torchkata.pipeline.catalog import ROOT, load_catalog
from torchkata.pipeline.dvc_stages import data_stages
from torchkata.pipeline.workflow import Workflow

sys.path.insert(0, str(ROOT / "scripts"))
import prepare_data  # noqa: E402


def workflow(**data):
    config = {"seed": 0, "impl": "reference", "scale": "smoke",
              "data": {"fashion_mnist": "data/external/fashion-mnist", "cifar10": ""} | data}
    return Workflow(load_catalog(), config, [])


def test_empty_path_means_no_source_and_a_given_one_must_exist(tmp_path):
    assert workflow().dataset_source("cifar10") == []
    assert workflow(cifar10=str(tmp_path)).dataset_source("cifar10") == [str(tmp_path)]
    with pytest.raises(FileNotFoundError, match="data.cifar10 = '/nowhere/cifar'"):
        workflow(cifar10="/nowhere/cifar").dataset_source("cifar10")
    with pytest.raises(FileNotFoundError, match="data.fashion_mnist"):  # a required source stays required
        workflow(fashion_mnist="/nowhere/fashion").dataset_source("fashion-mnist")


def test_dvc_stage_follows_the_config_value():
    stages = data_stages(load_catalog())
    cifar = stages["cifar10"]
    assert cifar["cmd"] == "python scripts/prepare_data.py cifar10 --source=${data.cifar10} --out data/cifar10"
    assert cifar["params"] == [{"config.yaml": ["data.cifar10"]}]
    assert cifar["deps"] == ["scripts/prepare_data.py", "src/torchkata/data"] and cifar["outs"] == ["data/cifar10"]
    fashion = stages["fashion_mnist"]
    assert fashion["deps"][0] == "${data.fashion_mnist}" and "params" not in fashion


def test_prepare_script_generates_without_a_source(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(prepare_data.cifar10, "generate", lambda out: calls.append(("generate", out)))
    monkeypatch.setattr(prepare_data.cifar10, "prepare", lambda source, out: calls.append(("prepare", source, out)))
    assert prepare_data.main(["cifar10", "--source=", "--out", str(tmp_path)]) == 0
    assert prepare_data.main(["cifar10", "--out", str(tmp_path)]) == 0
    assert prepare_data.main(["cifar10", "--source", "real", "--out", str(tmp_path)]) == 0
    assert calls == [("generate", str(tmp_path)), ("generate", str(tmp_path)), ("prepare", "real", str(tmp_path))]
