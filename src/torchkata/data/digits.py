"""scikit-learn's bundled handwritten digits (UCI, 1797 images of 8x8): no download needed.

data/digits/digits.pt is {"images": uint8 [1797, 8, 8] with values 0..16 (ink counts, not 0..255),
"labels": int64 [1797]} with labels 0..9.
"""
from __future__ import annotations

from pathlib import Path

import torch

from torchkata.pipeline.checkpoint import load_checkpoint, save_checkpoint

MAX_VALUE = 16  # each pixel counts the set bits of a 4x4 block of the original 32x32 bitmap


def prepare(out: str | Path) -> Path:
    from sklearn.datasets import load_digits  # imported here: only preparing needs scikit-learn

    digits = load_digits()
    return save_checkpoint({"images": torch.from_numpy(digits.images).to(torch.uint8),
                            "labels": torch.from_numpy(digits.target).to(torch.int64)}, Path(out) / "digits.pt")


def load(folder: str | Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(Path(folder) / "digits.pt", required_keys=("images", "labels"))


def split(folder: str | Path, test_size: int, generator: torch.Generator, train_size: int | None = None):
    """The digits as float features in [0, 1] (64 per image), split by a seeded permutation:
    ((x_train, y_train), (x_test, y_test)), the training part cut to `train_size` where given."""
    digits = load(folder)
    x, y = digits["images"].flatten(1).float() / MAX_VALUE, digits["labels"]
    order = torch.randperm(len(x), generator=generator)
    test, train = order[:test_size], order[test_size:][:train_size]
    return (x[train], y[train]), (x[test], y[test])


def standardized_split(folder: str | Path, test_fraction: float, generator: torch.Generator,
                       train_size: int | None = None):
    """The digits as a table (features in [0, 1]) split by tables.split, the training rows cut to `train_size` and
    both parts standardised with the training rows' statistics: ((x_train, y_train), (x_test, y_test))."""
    from torchkata.data import tables

    data = load(folder)
    table = {"features": data["images"].flatten(1).float() / MAX_VALUE, "targets": data["labels"]}
    train, test = tables.split(table, test_fraction, generator)
    x_train, x_test = tables.standardize(train["features"][:train_size], test["features"])
    return (x_train, train["targets"][:train_size]), (x_test, test["targets"])
