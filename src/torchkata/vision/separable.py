"""b04-07: depthwise-separable convolution (MobileNet), and what it saves.

A standard k x k convolution from C_in to C_out channels mixes space and channels at once:
C_out * C_in * k * k weights, and as many multiply-adds per output pixel. The separable version factors it
into a depthwise k x k convolution (groups = C_in: each channel filtered on its own, C_in * k * k weights)
followed by a pointwise 1 x 1 convolution that mixes the channels (C_out * C_in weights). The cost ratio is
1/C_out + 1/k^2: about 8-9 times less for k = 3 and a few dozen output channels. Both convolutions are
b04-02's hand-written `Conv2d`.
"""
from __future__ import annotations

from torch import Tensor, nn

from torchkata.vision.conv import Conv2d


def conv_cost(in_channels: int, out_channels: int, kernel_size: int, out_size: tuple[int, int], groups: int = 1,
              bias: bool = True) -> dict[str, int]:
    """Parameters and multiply-adds of one convolution producing an out_size (H, W) map: each output value is a
    dot product over in_channels/groups * k * k inputs (the bias is an addition, not a multiply-add)."""
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"groups={groups} must divide in_channels={in_channels} and out_channels={out_channels}")
    weights = out_channels * (in_channels // groups) * kernel_size * kernel_size
    return {"parameters": weights + (out_channels if bias else 0),
            "macs": weights * out_size[0] * out_size[1]}


class DepthwiseSeparableConv2d(nn.Module):
    """Depthwise k x k (groups = in_channels) then pointwise 1 x 1; `stride` and `padding` apply to the depthwise
    step. One bias, after the pointwise step (a depthwise bias would only be mixed into it)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int | str = 0, bias: bool = True):
        super().__init__()
        self.depthwise = Conv2d(in_channels, in_channels, kernel_size, stride, padding, groups=in_channels,
                                bias=False)
        self.pointwise = Conv2d(in_channels, out_channels, 1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.pointwise(self.depthwise(x))

    def cost(self, out_size: tuple[int, int]) -> dict[str, int]:
        """Parameters and multiply-adds of both steps for an output map of out_size (H, W)."""
        depthwise, pointwise = self.depthwise.weight, self.pointwise.weight
        first = conv_cost(depthwise.shape[0], depthwise.shape[0], depthwise.shape[-1], out_size,
                          groups=depthwise.shape[0], bias=False)
        second = conv_cost(pointwise.shape[1], pointwise.shape[0], 1, out_size, bias=self.pointwise.bias is not None)
        return {key: first[key] + second[key] for key in first}
