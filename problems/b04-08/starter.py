"""b04-08: a small Fashion-MNIST CNN that downsamples by max pooling, by strided convolution, or not at all.
Fill in every body; keep the signatures. b04-07 and b04-03 build their networks with your `small_cnn`.

Grade it:  torchkata check b04-08
Run it:    snakemake --cores 2 results/b04-08/starter-default/runs/seed-0/metrics.json
"""
from __future__ import annotations

from typing import Callable

from torch import nn

DOWNSAMPLING = ("pool", "stride", "none")
IMAGE_SIZE = 28


def conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Module:
    """nn.Conv2d 3x3 with padding 1 and no bias, at `stride`."""
    raise NotImplementedError("b04-08: conv3x3")


def block(c_in: int, c_out: int, downsample: str, conv: Callable[..., nn.Module] | None = None) -> list[nn.Module]:
    """The layers of one block, the convolution made by conv(c_in, c_out, stride) (conv3x3 when conv is None):
    "pool": [conv at stride 1, nn.MaxPool2d(2), nn.BatchNorm2d(c_out), nn.ReLU()];
    "stride": [conv at stride 2, batch norm, ReLU]; "none": [conv at stride 1, batch norm, ReLU].
    Anything else: ValueError naming `downsample`."""
    raise NotImplementedError("b04-08: block")


def output_size(size: int, downsample: str) -> int:
    """The side of the map that one block leaves from a size x size input."""
    raise NotImplementedError("b04-08: output_size")


def small_cnn(channels: list[int] | tuple[int, ...], downsample: str = "pool", hidden: int = 128,
              dropout: float = 0.25, num_classes: int = 10, conv: Callable[..., nn.Module] | None = None,
              stage: Callable[[int], nn.Module] | None = None, depth: int = 0) -> nn.Sequential:
    """nn.Sequential for [N, 1, 28, 28] images: for each width c in `channels` (from 1 input channel) a `block`,
    followed by `depth` modules stage(c); then nn.Flatten, nn.Linear(to `hidden`), ReLU, nn.Dropout(dropout),
    nn.Linear(hidden, num_classes); with hidden=0 only nn.Flatten and nn.Linear(to num_classes). ValueError naming
    `channels` when it is empty, naming `stage` when depth > 0 comes without one."""
    raise NotImplementedError("b04-08: small_cnn")
