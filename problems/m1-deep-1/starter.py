"""m1-deep-1: the Snake activation x + sin²(ax)/a as a custom autograd Function. Write the forward and the backward.

Grade it:  torchkata check m1-deep-1
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


class SnakeFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, alpha: Tensor) -> Tensor:
        """x + sin²(alpha·x)/alpha, alpha broadcast against x; save what the backward needs."""
        raise NotImplementedError("m1-deep-1: write SnakeFunction.forward")

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor | None, Tensor | None]:
        """The gradients with respect to x and alpha, written with differentiable tensor ops (gradgradcheck)."""
        raise NotImplementedError("m1-deep-1: write SnakeFunction.backward")


def snake(x: Tensor, alpha: Tensor) -> Tensor:
    """SnakeFunction.apply(x, alpha). TypeError for a non-tensor or non-float x or alpha (naming which); ValueError
    for an alpha that does not broadcast to x's shape (naming the shapes) or that has a zero."""
    raise NotImplementedError("m1-deep-1: write snake")


class Snake(nn.Module):
    """Snake with a learnable alpha per channel (a parameter named `alpha`, shape (channels,), filled with `alpha`,
    which must be positive); channels on dim 1 of the input, any other shape raises ValueError naming it."""

    def __init__(self, channels: int, alpha: float = 1.0):
        super().__init__()
        raise NotImplementedError("m1-deep-1: write Snake.__init__")

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError("m1-deep-1: write Snake.forward")
