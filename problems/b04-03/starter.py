"""b04-03: a residual block by hand (identity and projection shortcuts), and the plain block it is compared with.
Fill in every body; keep the signatures. Build from nn.Conv2d, nn.BatchNorm2d and torch.nn.functional.relu.

Grade it:  torchkata check b04-03
Run it:    snakemake --cores 2 results/b04-03/starter-default/runs/seed-0/metrics.json
"""
from __future__ import annotations

from torch import Tensor, nn


class PlainBlock(nn.Module):
    """conv1 (3x3, `stride`, padding 1, no bias) -> bn1 -> ReLU -> conv2 (3x3, stride 1, padding 1, no bias) -> bn2
    -> ReLU, as attributes conv1, bn1, conv2, bn2 and nothing else. ValueError naming the argument when
    in_channels, out_channels or stride is not a positive int."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        raise NotImplementedError("b04-03: PlainBlock")

    def residual(self, x: Tensor) -> Tensor:
        """bn2(conv2(relu(bn1(conv1(x))))): everything but the last ReLU. ValueError naming in_channels for input
        that is not [N, in_channels, H, W]."""
        raise NotImplementedError("b04-03: residual")

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError("b04-03: forward")


class ResidualBlock(PlainBlock):
    """relu(residual(x) + shortcut(x)). `self.shortcut` is nn.Identity() when stride == 1 and the channels are
    kept, else nn.Sequential(nn.Conv2d(in, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out))."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__(in_channels, out_channels, stride)
        raise NotImplementedError("b04-03: ResidualBlock")

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError("b04-03: forward")
