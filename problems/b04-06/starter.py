"""b04-06: a CNN for Fashion-MNIST. Fill in every body; keep the signatures.

Grade it:  torchkata check b04-06
Run it:    snakemake --cores 2 results/b04-06/starter-default/runs/seed-0/metrics.json
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

MEAN, STD = 0.2860, 0.3530  # mean and std of the Fashion-MNIST training pixels scaled to [0, 1]
IMAGE_SHAPE = (1, 28, 28)


def normalize(images: Tensor) -> Tensor:
    """uint8 images [N, 28, 28] (0..255) -> float32 [N, 1, 28, 28] with zero mean and unit std.

    Anything else (another dtype, another rank) raises ValueError naming what it got.
    """
    raise NotImplementedError("b04-06: normalize")


class FashionCNN(nn.Module):
    """Conv blocks, then a classifier, then `self.head = nn.Linear(hidden, num_classes)` as its own
    attribute (b04-10 replaces it). Keep the constructor arguments in `self.config` (a dict) so a
    checkpoint can rebuild the model. forward() raises ValueError for input that is not [N, 1, 28, 28]."""

    def __init__(self, channels: tuple[int, int] = (32, 64), hidden: int = 128, num_classes: int = 10,
                 dropout: float = 0.25):
        super().__init__()
        raise NotImplementedError("b04-06: FashionCNN.__init__")

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError("b04-06: FashionCNN.forward")


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, images: Tensor, labels: Tensor,
                batch_size: int, generator: torch.Generator) -> float:
    """One pass over (images, labels) in an order drawn from `generator`; returns the mean training loss."""
    raise NotImplementedError("b04-06: train_epoch")


@torch.no_grad()
def evaluate(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 1000) -> dict:
    """In eval mode: {"loss": mean cross-entropy, "accuracy", "correct": count, "predictions": labels}."""
    raise NotImplementedError("b04-06: evaluate")
