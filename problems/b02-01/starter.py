"""b02-01: a custom autograd Function for ReLU, used inside a network. Write its forward and backward yourself.

Grade it:  torchkata check b02-01
"""
from __future__ import annotations

import torch
from torch import Tensor


class ReLUFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        """max(x, 0) elementwise; save what the backward needs with ctx.save_for_backward."""
        raise NotImplementedError("b02-01: write ReLUFunction.forward")

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> Tensor:
        """d loss / d x from d loss / d out: pass the gradient where x > 0, zero elsewhere (at exactly 0 too)."""
        raise NotImplementedError("b02-01: write ReLUFunction.backward")


def relu(x: Tensor) -> Tensor:
    """ReLUFunction.apply(x). Must match F.relu and its gradient (0 at exactly 0), pass gradcheck and gradgradcheck
    in float64, leave `x` untouched, and raise TypeError (naming the type or dtype) for a non-tensor or a
    non-floating-point tensor. F.relu, torch.relu and nn.ReLU are off limits."""
    raise NotImplementedError("b02-01: write relu")
