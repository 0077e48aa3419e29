"""b02-06: softmax as a custom autograd Function, forward and backward written by hand.

Forward: y = exp(x - max x) / sum exp(x - max x) along `dim` (the shift keeps exp from overflowing; a01 explains it).
Backward: the Jacobian of softmax is J = diag(y) - y yᵀ, so the vector-Jacobian product autograd asks for is
    Jᵀ g = y * g - y * <g, y>
with <g, y> the dot product along `dim`. Only y is needed: the output is saved, not the input.
"""
from __future__ import annotations

import torch
from torch import Tensor

from torchkata.tensors.softmax import row_blocks


class SoftmaxFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, dim: int) -> Tensor:
        # amax cannot reduce an empty tensor; an empty tensor has nothing to normalise anyway
        y = x - x.amax(dim, keepdim=True) if x.numel() else x.clone()
        # exp, sum and scale in place on our own y, a block of rows at a time (a01's row_blocks): the sum and the
        # scaling read the block from the cache the exp just wrote it to, not from memory
        for block in row_blocks(y, dim):
            block.exp_()
            block.mul_(block.sum(dim, keepdim=True).reciprocal_())  # one reciprocal per row, then multiplies
        ctx.dim = dim
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor, None]:
        (y,) = ctx.saved_tensors
        gy = grad_out * y
        # y*g - y*<g, y>, reusing y*g for the dot product and updating it in place (differentiable: gradgradcheck)
        return gy.addcmul_(y, gy.sum(ctx.dim, keepdim=True), value=-1), None


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    """Softmax of `x` along `dim` through SoftmaxFunction: matches torch.softmax and its gradient.

    A `dim` out of range needs no check of ours: the forward's reductions raise PyTorch's IndexError, which names it."""
    if not isinstance(x, Tensor):
        raise TypeError(f"softmax needs a tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"softmax needs a floating-point tensor, got {x.dtype}")
    return SoftmaxFunction.apply(x, dim)
