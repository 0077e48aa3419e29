"""A dataset whose config path may be left empty (cifar10, for m2-core-1 and b04-01): the prepare step then
generates a stand-in (workflow/rules/data.smk); Snakemake and DVC follow the config value instead of a folder."""
import sys

import pytest

from torchkata.pipeline.catalog import ROOT, load_catalog
from torchkata.pipeline.dvc_stages import data_stages
from torchkata.pipeline.projects import copy_project, snakemake, with_config

sys.path.insert(0, str(ROOT / "scripts"))
import prepare_data  # noqa: E402


def test_empty_path_generates_and_a_given_one_must_exist(tmp_path):
    project = copy_project(tmp_path / "project")
    dry = snakemake(project, "data/cifar10/train.pt", "-n", "--configfile",
                    str(with_config(project, "stand-in.yaml", data__cifar10="")))
    assert dry.returncode == 0 and "prepare_cifar10" in dry.output, dry.output[-2000:]
    missing = snakemake(project, "data/cifar10/train.pt", "-n", "--configfile",
                        str(with_config(project, "missing.yaml", data__cifar10="/nowhere/cifar")))
    assert missing.returncode != 0 and "data.cifar10 = '/nowhere/cifar'" in missing.output


def test_dvc_stage_follows_the_config_value():
    stages = data_stages(load_catalog())
    cifar = stages["cifar10"]
    assert cifar["cmd"] == "python scripts/prepare_data.py cifar10 --source=${data.cifar10} --out data/cifar10"
    assert cifar["params"] == [{"config.yaml": ["data.cifar10"]}]
    # the script and the readers it imports, not the loaders of torchkata.data that exercises write (m3-core-1's)
    assert cifar["deps"][0] == "scripts/prepare_data.py" and "src/torchkata/data/cifar10.py" in cifar["deps"]
    assert "src/torchkata/data/prefetch.py" not in cifar["deps"] and cifar["outs"] == ["data/cifar10"]
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
