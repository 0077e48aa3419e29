"""The Fashion-MNIST MLP that the network-basics trainings share (b03-02, b03-04, b03-05, b03-08): images as
flat normalised vectors, a subset drawn from a generator where a comparison trains many models, and an MLP
whose activation and normalisation layer are arguments, so that two variants differ in nothing else."""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from torchkata.data import fashion_mnist
from torchkata.vision.fashion_cnn import normalize

PIXELS, CLASSES = 28 * 28, 10


def flat(images: Tensor) -> Tensor:
    """uint8 images [N, 28, 28] -> float [N, 784], normalised with the training set's mean and std."""
    return normalize(images).flatten(1)


def load(folder, generator: torch.Generator, train_size: int | None = None,
         test_size: int | None = None) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    """((x, y) train, (x, y) test) of the prepared Fashion-MNIST; a random subset of each where a size is given."""
    splits = []
    for split, size in (("train", train_size), ("test", test_size)):
        data = fashion_mnist.load(folder, split)
        idx = torch.randperm(len(data["labels"]), generator=generator)[:size]
        splits.append((flat(data["images"][idx]), data["labels"][idx]))
    return splits[0], splits[1]


def mlp(widths: tuple[int, ...] = (256, 128), activation: Callable[[], nn.Module] = nn.ReLU,
        norm: Callable[[int], nn.Module] | None = None) -> nn.Sequential:
    """784 -> widths... -> 10: each hidden layer Linear (-> norm(width)) -> activation()."""
    layers, n_in = [], PIXELS
    for width in widths:
        layers += [nn.Linear(n_in, width), *([norm(width)] if norm is not None else []), activation()]
        n_in = width
    return nn.Sequential(*layers, nn.Linear(n_in, CLASSES))
