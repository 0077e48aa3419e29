"""a05 and b02-01: ReLU as a custom autograd Function with a hand-written backward.

relu(x) = max(x, 0), so d relu / dx is 1 where x > 0 and 0 where x < 0. At exactly 0 the derivative does not
exist; PyTorch defines it as 0 (its backward zeroes the gradient where the output is <= 0), and so do we.

The backward needs only the output: relu(x) > 0 exactly where x > 0, and since the output is never negative,
sign(relu(x)) is that 0/1 mask already in the gradient's dtype (sign(0) = 0 gives the 0 at the kink).
"""
from __future__ import annotations

import torch
from torch import Tensor


class ReLUFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        out = x.clamp_min(0)  # NaN stays NaN, like F.relu
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> Tensor:
        (out,) = ctx.saved_tensors
        # written with differentiable ops, so a second backward (gradgradcheck) goes through it
        return out.sign().mul_(grad_out)


def relu(x: Tensor) -> Tensor:
    """max(x, 0) elementwise through ReLUFunction; the gradient at exactly 0 is 0, as PyTorch defines it."""
    if not isinstance(x, Tensor):
        raise TypeError(f"relu needs a tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"relu needs a floating-point tensor to differentiate, got {x.dtype}")
    return ReLUFunction.apply(x)
