"""b04-09: dilated (atrous) convolution by hand, and its receptive field.

A dilation d spaces a kernel's taps d pixels apart: a 3x3 kernel at d = 2 covers 5x5 pixels with 9 weights.
Written by hand here as the kernel itself dilated, zeros inserted between its taps, then an ordinary
convolution (b04-02's im2col conv2d at dilation 1). It is exact but wasteful: the dilated 3x3 kernel at d = 2
does 25 multiply-adds per output where 9 carry weight; b04-02's conv2d, which dilates the im2col slices
instead, does only the 9 (the experiment times both).

Receptive field of a stack of layers (kernel k_l, stride s_l, dilation d_l), in input pixels along one axis:
    r = 1 + sum_l d_l (k_l - 1) * prod_{m < l} s_m
each layer widens it by its dilated kernel's extent minus one, in units of the input pixels one step of that
layer's input spans. The gradient of one output pixel with respect to the input is non-zero exactly on the
pixels that pixel sees (given weights with no cancellation), so its extent checks the formula.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from torchkata.vision.conv import Pair, conv2d


def dilate_kernel(weight: Tensor, dilation: Pair) -> Tensor:
    """weight [..., kh, kw] -> [..., dh(kh-1)+1, dw(kw-1)+1]: the taps dh rows and dw columns apart, zeros between."""
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
    if dh < 1 or dw < 1:
        raise ValueError(f"dilation must be at least 1, got {dilation!r}")
    if weight.dim() < 2:
        raise ValueError(f"a kernel needs at least two (spatial) dimensions, got shape {list(weight.shape)}")
    kh, kw = weight.shape[-2:]
    dilated = weight.new_zeros(*weight.shape[:-2], dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    dilated[..., ::dh, ::dw] = weight  # an indexed copy: autograd routes the gradient back to the taps
    return dilated


def dilated_conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, dilation: Pair = 2, stride: Pair = 1,
                   padding: Pair | str = 0, groups: int = 1) -> Tensor:
    """F.conv2d(x, weight, bias, stride, padding, dilation, groups), as an undilated convolution with the
    dilated kernel."""
    return conv2d(x, dilate_kernel(weight, dilation), bias, stride, padding, 1, groups)


def receptive_field(layers: Sequence[tuple[int, int, int]]) -> int:
    """Receptive field along one axis of stacked layers given as (kernel, stride, dilation), first layer first."""
    field, step = 1, 1  # step: input pixels between neighbouring positions of the current layer's input
    for kernel, stride, dilation in layers:
        if kernel < 1 or stride < 1 or dilation < 1:
            raise ValueError(f"kernel, stride and dilation must be at least 1, got {(kernel, stride, dilation)}")
        field += dilation * (kernel - 1) * step
        step *= stride
    return field


def gradient_footprint(model: nn.Module, x: Tensor) -> Tensor:
    """|d out[0, :, i, j].sum() / d x[0]| summed over the input channels, [H, W], for the centre output pixel
    (i, j): the input pixels that output pixel depends on are where it is non-zero."""
    x = x.detach().clone().requires_grad_()
    out = model(x)
    i, j = (out.shape[-2] - 1) // 2, (out.shape[-1] - 1) // 2
    (grad,) = torch.autograd.grad(out[0, :, i, j].sum(), x)
    return grad[0].abs().sum(0)


def extent(footprint: Tensor) -> tuple[int, int]:
    """(rows, columns) spanned by the non-zero entries of a [H, W] map, holes included; (0, 0) if all are zero."""
    rows, cols = footprint.ne(0).any(1).nonzero(), footprint.ne(0).any(0).nonzero()
    if len(rows) == 0:
        return 0, 0
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)
