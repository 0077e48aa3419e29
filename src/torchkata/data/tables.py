"""scikit-learn's bundled tables (no download needed): diabetes (regression), breast cancer, wine and iris
(classification) -> data/sklearn-tables/<name>.pt.

Each file is {"features": float64 [N, F], "targets": float64 [N] (regression) or int64 [N] (class indices),
"feature_names": [F names], "task": "regression" | "classification", "classes": [names] (classification)}.
The features are as scikit-learn ships them (diabetes's are already centred and scaled); standardising is
the exercise's job, with statistics from its own training split.
"""
from __future__ import annotations

from pathlib import Path

import torch

from torchkata.pipeline.checkpoint import load_checkpoint, save_checkpoint

TABLES = {"diabetes": "regression", "breast_cancer": "classification", "wine": "classification",
          "iris": "classification"}
FILES = [f"{name}.pt" for name in TABLES]


def prepare(out: str | Path) -> None:
    from sklearn import datasets  # imported here: only preparing needs scikit-learn

    for name, task in TABLES.items():
        bunch = getattr(datasets, f"load_{name}")()
        record = {"features": torch.from_numpy(bunch.data).to(torch.float64),
                  "feature_names": [str(n) for n in bunch.feature_names], "task": task}
        if task == "regression":
            record["targets"] = torch.from_numpy(bunch.target).to(torch.float64)
        else:
            record["targets"] = torch.from_numpy(bunch.target).to(torch.int64)
            record["classes"] = [str(c) for c in bunch.target_names]
        save_checkpoint(record, Path(out) / f"{name}.pt")


def load(folder: str | Path, name: str) -> dict:
    if name not in TABLES:
        raise ValueError(f"table must be one of {sorted(TABLES)}, not {name!r}")
    return load_checkpoint(Path(folder) / f"{name}.pt", required_keys=("features", "targets", "feature_names"))


def split(table: dict, test_fraction: float, generator: torch.Generator) -> tuple[dict, dict]:
    """A seeded random split of a table's rows into ({"features", "targets"} train, test)."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    n = len(table["targets"])
    order = torch.randperm(n, generator=generator)
    n_test = max(1, round(n * test_fraction))
    pick = lambda idx: {"features": table["features"][idx], "targets": table["targets"][idx]}  # noqa: E731
    return pick(order[n_test:]), pick(order[:n_test])


def standardize(train: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    """Scale every column to zero mean and unit std with the training rows' statistics (a constant column
    is only centred), applied to the training rows and to each of `others`."""
    mean, std = train.mean(dim=0), train.std(dim=0)
    std = torch.where(std > 0, std, torch.ones_like(std))
    return [(t - mean) / std for t in (train, *others)]
