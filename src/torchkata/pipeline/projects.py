"""Copies of the repository for driving the DAG as a user does (results/ empty, as in a fresh clone): the tests
that run the pipeline, and `torchkata cost`."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from torchkata.pipeline.catalog import ROOT
from torchkata.pipeline.extensions import library_path

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def copy_project(dest: Path, extensions: tuple[str, ...] = ("add_constant",)) -> Path:
    """The tracked files into dest, plus the already-built extensions (built once per session, not per copy)."""
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True)
    for name in filter(None, tracked.stdout.split("\0")):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    for name in extensions:
        lib = dest / library_path(name).relative_to(ROOT)
        lib.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(library_path(name), lib)
    # the raw Fashion-MNIST files stay where ./run.sh data put them
    config = yaml.safe_load((dest / "config.yaml").read_text())
    config["data"]["fashion_mnist"] = str(ROOT / config["data"]["fashion_mnist"])
    (dest / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return dest


def with_config(project: Path, name: str, **changes) -> Path:
    """A config file beside project's config.yaml with changes; `section__key=value` sets a nested key."""
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


def job_environment(extra: dict | None = None) -> dict:
    """The environment of a pipeline call: jobs run `python`, which must be this interpreter."""
    env = {**os.environ, **(extra or {})}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def snakemake(project: Path, *args: str, env: dict | None = None, **popen) -> subprocess.CompletedProcess:
    """Snakemake's messages go to stdout and stderr both: `.output` has them together."""
    result = subprocess.run([SNAKEMAKE, *args], cwd=project, capture_output=True, text=True,
                            env=job_environment(env), **popen)
    result.output = result.stdout + result.stderr
    return result
