"""b04-09: dilated convolution by hand, and its receptive field.
Not allowed: the `dilation` argument of F.conv2d / torch.conv2d / nn.Conv2d. You may convolve with
torchkata.vision.conv.conv2d (b04-02) at dilation 1, or with your own b04-02 solution.

Grade it:  torchkata check b04-09
"""
from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

Pair = int | tuple[int, int]


def dilate_kernel(weight: Tensor, dilation: Pair) -> Tensor:
    """weight [..., kh, kw] -> [..., dh(kh-1)+1, dw(kw-1)+1]: the taps dh rows and dw columns apart, zeros
    between; differentiable. ValueError naming "dilation" below 1, "dimensions" for fewer than two."""
    raise NotImplementedError("b04-09: write dilate_kernel")


def dilated_conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, dilation: Pair = 2, stride: Pair = 1,
                   padding: Pair | str = 0, groups: int = 1) -> Tensor:
    """Equal to F.conv2d(x, weight, bias, stride, padding, dilation, groups): an undilated convolution with the
    dilated kernel. Note the argument order: dilation comes fourth."""
    raise NotImplementedError("b04-09: write dilated_conv2d")


def receptive_field(layers: Sequence[tuple[int, int, int]]) -> int:
    """Receptive field in input pixels along one axis of stacked layers (kernel, stride, dilation), first
    layer first; 1 for no layers. ValueError ("at least 1") for a kernel, stride or dilation below 1."""
    raise NotImplementedError("b04-09: write receptive_field")


def gradient_footprint(model: nn.Module, x: Tensor) -> Tensor:
    """For the centre output pixel (i, j) = ((H_out-1)//2, (W_out-1)//2) of model(x): the gradient of
    out[0, :, i, j].sum() with respect to x[0], its absolute value summed over the input channels, [H, W].
    Leaves `x` alone (no .grad, no requires_grad)."""
    raise NotImplementedError("b04-09: write gradient_footprint")


def extent(footprint: Tensor) -> tuple[int, int]:
    """(rows, columns) spanned by the non-zero entries of a [H, W] map, first to last, holes included;
    (0, 0) if all are zero."""
    raise NotImplementedError("b04-09: write extent")
