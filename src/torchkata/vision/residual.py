"""b04-03: the residual block of ResNet (He et al., 2016), and the plain block it is compared with.

Both are two 3x3 convolutions with batch norm, a ReLU between them and one at the end. The residual block adds its
input back before the last ReLU: y = relu(F(x) + shortcut(x)). The shortcut is the identity when the block keeps
the shape; when it changes the channels or the stride, a projection (1x1 convolution at the block's stride, with
batch norm) brings x to F(x)'s shape. A deep stack of residual blocks can always do at least what a shallower
one does (F = 0 passes x on), and its gradient reaches the early layers through the shortcuts' identity: a plain
stack of the same depth trains worse, not only tests worse, which is the degradation the experiment shows.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class PlainBlock(nn.Module):
    """conv 3x3 (stride) -> batch norm -> ReLU -> conv 3x3 -> batch norm -> ReLU; no shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("stride", stride)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def residual(self, x: Tensor) -> Tensor:
        """F(x): both convolutions, without the last ReLU."""
        if x.dim() != 4 or x.shape[1] != self.conv1.in_channels:
            raise ValueError(f"expected input [N, {self.conv1.in_channels}, H, W] (in_channels), "
                             f"got {list(x.shape)}")
        return self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.residual(x))


class ResidualBlock(PlainBlock):
    """PlainBlock with its input added before the last ReLU: through `shortcut`, the identity when the shape is
    kept, else a projection (1x1 conv at the stride, no bias, and batch norm)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__(in_channels, out_channels, stride)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.residual(x) + self.shortcut(x))
