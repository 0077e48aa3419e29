"""Which exercises a run covers: the config's selection, the catalog's status, the machine's capabilities.

Read by the Snakefile (at parse time, so no torch here) and by the summary.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from torchkata.pipeline.catalog import Catalog, Exercise, machine_capabilities, skip_reason


class ConfigError(ValueError):
    pass


def check_config_syntax(path: Path) -> None:
    """A config file that is not YAML stops the run with its line and column (Snakemake's own message names
    neither)."""
    try:
        yaml.safe_load(Path(path).read_text())
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        raise ConfigError(f"{path}, line {mark.line + 1}, column {mark.column + 1}: not valid YAML: "
                          f"{err.problem or err.context}") from None


def capabilities(config: dict) -> set[str]:
    caps = config["capabilities"]
    return machine_capabilities() if caps == "auto" else set(caps)


@dataclass(frozen=True)
class Plan:
    runnable: list[Exercise]       # done, selected, and this machine meets their needs
    skipped: dict[str, str]        # done and selected, with the reason it cannot run here
    capabilities: set[str]


def selection(catalog: Catalog, wanted) -> list[Exercise]:
    if wanted == "all":
        return list(catalog.exercises.values())
    topics = {e.topic for e in catalog.exercises.values()}
    unknown = [w for w in wanted if w not in catalog.exercises and w not in topics]
    if unknown:
        raise ConfigError(f"config key `exercises` names {unknown}: neither exercise ids nor topics "
                          f"(topics: {', '.join(sorted(topics))})")
    return [e for e in catalog.exercises.values() if e.id in wanted or e.topic in wanted]


def make_plan(catalog: Catalog, config: dict) -> Plan:
    caps = capabilities(config)
    runnable, skipped = [], {}
    for exercise in selection(catalog, config["exercises"]):
        if not exercise.done:
            continue
        reason = skip_reason(exercise, caps)
        if reason:
            skipped[exercise.id] = reason
        else:
            runnable.append(exercise)
    return Plan(runnable, skipped, caps)


def rotated(exercises: list[Exercise], key: str) -> list[Exercise]:
    """`exercises` starting at a place that `key` (e.g. the commit) chooses, so successive CI runs start elsewhere."""
    import hashlib

    if not exercises:
        return []
    start = int(hashlib.sha256(key.encode()).hexdigest(), 16) % len(exercises)
    return exercises[start:] + exercises[:start]


def rotating_sample(exercises: list[Exercise], key: str, budget_s: float, cost) -> list[Exercise]:
    """A sample of `exercises` whose summed cost(e) fits budget_s, from where `key` rotates them to. At least one
    is taken."""
    chosen, spent = [], 0.0
    for exercise in rotated(exercises, key):
        if chosen and spent + cost(exercise) > budget_s:
            continue
        chosen.append(exercise)
        spent += cost(exercise)
    return chosen
