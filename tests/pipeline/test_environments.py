"""The conda environments pin what the pip requirement sets pin, version for version."""
import re
from pathlib import Path

import pytest
import yaml

from torchkata.pipeline.catalog import ROOT

ENVS = ROOT / "envs"
PAIRS = [("requirements-cpu.txt", "conda-cpu.yaml"), ("requirements-cuda.txt", "conda-cuda.yaml")]
PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:==\s*(\S+))?")


def _name(name: str) -> str:
    """PEP 503: PyYAML and pyyaml, scikit_learn and scikit-learn are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lines: list[str], base: Path) -> dict[str, str | None]:
    """Package -> pinned version (None: unpinned) of pip requirement lines; `-r FILE` is read relative to base."""
    found = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-e"):  # -e: the project itself, not a pin
            continue
        if line.startswith("-r"):
            included = base / line[2:].strip()
            found |= pins(included.read_text(encoding="utf-8").splitlines(), included.parent)
            continue
        match = PIN.fullmatch(line)
        if not match:
            raise ValueError(f"{base}: {line!r} is neither NAME nor NAME==VERSION")
        found[_name(match[1])] = match[2]
    return found


def txt_pins(path: Path) -> dict[str, str | None]:
    return pins(path.read_text(encoding="utf-8").splitlines(), path.parent)


def conda_pins(path: Path) -> dict[str, str | None]:
    """The pins under `pip:` of a conda environment file."""
    dependencies = yaml.safe_load(path.read_text(encoding="utf-8"))["dependencies"]
    pip_sections = [d["pip"] for d in dependencies if isinstance(d, dict) and "pip" in d]
    if len(pip_sections) != 1:
        raise ValueError(f"{path}: expected one `pip:` list under dependencies, found {len(pip_sections)}")
    return pins(pip_sections[0], path.parent)


def disagreements(txt: Path, conda: Path) -> list[str]:
    a, b = txt_pins(txt), conda_pins(conda)
    return [f"{name}: {txt.name} has {a.get(name, 'nothing')}, {conda.name} has {b.get(name, 'nothing')}"
            for name in sorted(a.keys() | b.keys()) if a.get(name, "nothing") != b.get(name, "nothing")]


@pytest.mark.parametrize("txt, conda", PAIRS)
def test_conda_environment_pins_what_pip_pins(txt, conda):
    problems = disagreements(ENVS / txt, ENVS / conda)
    assert not problems, "\n".join(problems)


def test_a_disagreement_names_the_package_and_both_versions(tmp_path):
    (tmp_path / "req.txt").write_text("torch==2.13.0  # CPU\nnumpy==2.4.6\nPyYAML==6.0.3\n", encoding="utf-8")
    (tmp_path / "env.yaml").write_text(yaml.safe_dump({"dependencies": [
        "python=3.11", "pip", {"pip": ["torch==2.12.0", "pyyaml==6.0.3", "tqdm==4.70.1"]}]}), encoding="utf-8")
    assert disagreements(tmp_path / "req.txt", tmp_path / "env.yaml") == [
        "numpy: req.txt has 2.4.6, env.yaml has nothing",
        "torch: req.txt has 2.13.0, env.yaml has 2.12.0",
        "tqdm: req.txt has nothing, env.yaml has 4.70.1",
    ]


def test_an_included_file_is_read(tmp_path):
    (tmp_path / "req.txt").write_text("torch==2.13.0\nsnakemake-executor-plugin-slurm\n", encoding="utf-8")
    (tmp_path / "env.yaml").write_text(yaml.safe_dump({"dependencies": [
        {"pip": ["-r req.txt", "-e .."]}]}), encoding="utf-8")
    assert conda_pins(tmp_path / "env.yaml") == {"torch": "2.13.0", "snakemake-executor-plugin-slurm": None}


def test_a_range_is_refused(tmp_path):
    (tmp_path / "req.txt").write_text("torch>=2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="'torch>=2' is neither NAME nor NAME==VERSION"):
        txt_pins(tmp_path / "req.txt")
