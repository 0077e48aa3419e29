"""b04-02: 2-D convolution without nn.Conv2d: im2col (every receptive field laid out as a column) and one matmul.

A convolution slides a kernel [C_out, C_in, kh, kw] over the padded input and takes a dot product at each
position. im2col gathers, for each of the kh*kw kernel taps, the input pixels that tap touches at every output
position (a strided slice of the padded input), so that all dot products become one matrix product:
weight [C_out, C_in*kh*kw] @ columns [C_in*kh*kw, H_out*W_out]. Groups split the channels into independent
convolutions, one matmul each (batched); dilation spaces the taps `dilation` pixels apart. Autograd
differentiates slicing, stacking and matmul, so the backward needs no code of its own.

b04-09 (dilated convolution) and b04-07 (depthwise-separable convolution) use this module.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Pair = int | tuple[int, int]


def _pair(value: Pair, name: str, minimum: int) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or any(not isinstance(v, int) or v < minimum for v in pair):
        raise ValueError(f"{name} must be an int or a pair of ints of at least {minimum}, got {value!r}")
    return pair


def _output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Output length along one axis: the number of kernel placements that fit in the padded input."""
    span = dilation * (kernel - 1) + 1  # the pixels one dilated kernel covers
    return (size + 2 * padding - span) // stride + 1


def _taps(x: Tensor, kernel_size: Pair, stride: Pair, padding: Pair, dilation: Pair) -> Tensor:
    """x [N, C, H, W] -> [N, C, kh*kw, H_out, W_out]: for each kernel tap, the input pixel it meets at every output
    position. Zero padding of `padding` pixels on each side."""
    if x.dim() != 4:
        raise ValueError(f"im2col expects input [N, C, H, W], got shape {list(x.shape)}")
    (kh, kw), (sh, sw) = _pair(kernel_size, "kernel_size", 1), _pair(stride, "stride", 1)
    (ph, pw), (dh, dw) = _pair(padding, "padding", 0), _pair(dilation, "dilation", 1)
    h, w = x.shape[2:]
    out_h, out_w = _output_size(h, kh, sh, ph, dh), _output_size(w, kw, sw, pw, dw)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"kernel {kh}x{kw} with dilation {(dh, dw)} is larger than the input {h}x{w} "
                         f"padded by {(ph, pw)}")
    x = F.pad(x, (pw, pw, ph, ph))
    # tap (i, j) sees the padded input from row i*dh on, every sh-th row, out_h of them (same for columns)
    taps = [x[:, :, i * dh:i * dh + sh * (out_h - 1) + 1:sh, j * dw:j * dw + sw * (out_w - 1) + 1:sw]
            for i in range(kh) for j in range(kw)]
    return torch.stack(taps, dim=2)


def im2col(x: Tensor, kernel_size: Pair, stride: Pair = 1, padding: Pair = 0, dilation: Pair = 1) -> Tensor:
    """x [N, C, H, W] -> columns [N, C*kh*kw, H_out*W_out] in the layout of torch.nn.functional.unfold
    (channel-major, then the taps in row-major order)."""
    return _taps(x, kernel_size, stride, padding, dilation).flatten(1, 2).flatten(2)


def _same_padding(kernel: int, dilation: int) -> tuple[int, int]:
    """(before, after) padding that keeps a stride-1 output the input's size; an odd total puts the extra
    pixel after, as PyTorch does."""
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Pair = 1, padding: Pair | str = 0,
           dilation: Pair = 1, groups: int = 1) -> Tensor:
    """The semantics of torch.nn.functional.conv2d by im2col and matmul. x [N, C_in, H, W] (or unbatched [C_in, H, W]), weight
    [C_out, C_in/groups, kh, kw], bias [C_out] or None; padding an int, a pair, 'valid' or 'same' (stride 1)."""
    if x.dim() == 3:  # unbatched, as PyTorch allows
        return conv2d(x.unsqueeze(0), weight, bias, stride, padding, dilation, groups).squeeze(0)
    if x.dim() != 4 or weight.dim() != 4:
        raise ValueError(f"conv2d expects input [N, C, H, W] and weight [C_out, C_in/groups, kh, kw], "
                         f"got shapes {list(x.shape)} and {list(weight.shape)}")
    out_channels, group_in, kh, kw = weight.shape
    if groups < 1 or out_channels % groups:
        raise ValueError(f"groups must be a positive divisor of the {out_channels} output channels, got {groups}")
    if group_in * groups != x.shape[1]:
        raise ValueError(f"input has {x.shape[1]} channels; weight with {group_in} per group and groups={groups} "
                         f"expects {group_in * groups}")
    if bias is not None and tuple(bias.shape) != (out_channels,):
        raise ValueError(f"bias must have shape [{out_channels}], got {list(bias.shape)}")
    stride, dilation = _pair(stride, "stride", 1), _pair(dilation, "dilation", 1)
    if isinstance(padding, str):
        if padding == "valid":
            padding = 0
        elif padding == "same":
            if stride != (1, 1):
                raise ValueError(f"padding='same' needs stride 1, got stride {stride}")
            (top, bottom), (left, right) = _same_padding(kh, dilation[0]), _same_padding(kw, dilation[1])
            x, padding = F.pad(x, (left, right, top, bottom)), 0
        else:
            raise ValueError(f"padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
    taps = _taps(x, (kh, kw), stride, padding, dilation)  # [N, C_in, kh*kw, H_out, W_out]
    n, out_h, out_w = taps.shape[0], taps.shape[3], taps.shape[4]
    # group g's weights [C_out/g, C_in/g*kh*kw] meet group g's rows of the columns: one batched matmul
    columns = taps.reshape(n, groups, group_in * kh * kw, out_h * out_w)
    out = weight.reshape(1, groups, out_channels // groups, group_in * kh * kw) @ columns
    out = out.reshape(n, out_channels, out_h, out_w)
    return out if bias is None else out + bias.reshape(1, -1, 1, 1)


class Conv2d(nn.Module):
    """nn.Conv2d's parameters and initialisation, computed by `conv2d` above."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Pair, stride: Pair = 1,
                 padding: Pair | str = 0, dilation: Pair = 1, groups: int = 1, bias: bool = True):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"groups={groups} must divide in_channels={in_channels} and out_channels={out_channels}")
        kh, kw = _pair(kernel_size, "kernel_size", 1)
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, kh, kw))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        # nn.Conv2d's default: uniform in +-1/sqrt(fan_in) for both (kaiming_uniform with a=sqrt(5))
        bound = 1 / math.sqrt(self.weight[0].numel())
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
