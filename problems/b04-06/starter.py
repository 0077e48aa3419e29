"""b04-06: a CNN for Fashion-MNIST. Fill in every body; keep the signatures. Training is the shared loop
(torchkata.training.loop), which the experiment runs with a one-cycle learning rate.

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

    Anything else (another dtype, another rank) raises ValueError naming what it got (with the word uint8).
    """
    raise NotImplementedError("b04-06: normalize")


class FashionCNN(nn.Module):
    """`self.features`: two conv blocks with batch norm, each halving H and W (28 -> 14 -> 7, `channels` maps);
    `self.classifier`: flatten, nn.Linear(channels[1] * 7 * 7, hidden) at index 1, ReLU, dropout;
    `self.head = nn.Linear(hidden, num_classes)`, its own attribute (b04-10 replaces it). Keep the constructor
    arguments in `self.config` (a dict, channels as a list) so a checkpoint can rebuild the model. forward() raises
    ValueError (naming the shape, 28) for input that is not [N, 1, 28, 28], and works on channels_last input."""

    def __init__(self, channels: tuple[int, int] = (32, 64), hidden: int = 128, num_classes: int = 10,
                 dropout: float = 0.25):
        super().__init__()
        raise NotImplementedError("b04-06: FashionCNN.__init__")

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError("b04-06: FashionCNN.forward")
