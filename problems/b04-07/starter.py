"""b04-07: depthwise-separable convolution, and its cost against a standard convolution.
Build the convolutions from torchkata.vision.conv.Conv2d (b04-02) or nn.Conv2d.

Grade it:  torchkata check b04-07
"""
from __future__ import annotations

from torch import Tensor, nn


def conv_cost(in_channels: int, out_channels: int, kernel_size: int, out_size: tuple[int, int], groups: int = 1,
              bias: bool = True) -> dict[str, int]:
    """{"parameters": weights + biases, "macs": multiply-adds} of one convolution producing an out_size (H, W)
    map (a bias is an addition, not a multiply-add). ValueError naming "groups" if groups does not divide
    both channel counts."""
    raise NotImplementedError("b04-07: write conv_cost")


class DepthwiseSeparableConv2d(nn.Module):
    """`depthwise`: k x k, groups = in_channels, no bias, with `stride` and `padding`; then `pointwise`: 1 x 1 to
    out_channels, with the bias if `bias`. Both modules expose `weight` and `bias` as nn.Conv2d does."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int | str = 0, bias: bool = True):
        super().__init__()
        raise NotImplementedError("b04-07: write DepthwiseSeparableConv2d")

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError("b04-07: write forward")

    def cost(self, out_size: tuple[int, int]) -> dict[str, int]:
        """conv_cost of both steps added, for an output map of out_size (H, W)."""
        raise NotImplementedError("b04-07: write cost")
