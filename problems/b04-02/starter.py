"""b04-02: a convolution layer without nn.Conv2d: im2col and one matmul.
Not allowed: F.conv2d, torch.conv2d, torch.convolution, nn.Conv2d, F.unfold / nn.Unfold.

Grade it:  torchkata check b04-02
"""
from __future__ import annotations

from torch import Tensor, nn

Pair = int | tuple[int, int]


def im2col(x: Tensor, kernel_size: Pair, stride: Pair = 1, padding: Pair = 0, dilation: Pair = 1) -> Tensor:
    """x [N, C, H, W] -> columns [N, C*kh*kw, H_out*W_out] in the layout of torch.nn.functional.unfold
    (channel-major, then the kernel taps in row-major order), with `padding` zeros on each side.
    ValueError (naming the problem) for a non-4-D input, a kernel_size/stride/dilation below 1, a negative
    padding, or a kernel larger than the padded input ("larger")."""
    raise NotImplementedError("b04-02: write im2col")


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Pair = 1, padding: Pair | str = 0,
           dilation: Pair = 1, groups: int = 1) -> Tensor:
    """torch.nn.functional.conv2d's semantics from im2col and matmul: x [N, C_in, H, W] or unbatched
    [C_in, H, W], weight [C_out, C_in/groups, kh, kw], bias [C_out] or None; padding an int, a pair, 'valid'
    or 'same' (stride 1 only; an odd total padding puts the extra pixel at the bottom/right).
    Differentiable by autograd. ValueError naming the problem ("input", "weight", "channels", "groups",
    "bias", "same", "padding", "stride", "dilation", "larger") for bad arguments."""
    raise NotImplementedError("b04-02: write conv2d")


class Conv2d(nn.Module):
    """nn.Conv2d's parameters (`weight`, `bias` or None) and initialisation (uniform within 1/sqrt(fan_in)),
    computed with your conv2d. ValueError if `groups` does not divide both channel counts."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Pair, stride: Pair = 1,
                 padding: Pair | str = 0, dilation: Pair = 1, groups: int = 1, bias: bool = True):
        super().__init__()
        raise NotImplementedError("b04-02: write Conv2d")

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError("b04-02: write Conv2d.forward")
