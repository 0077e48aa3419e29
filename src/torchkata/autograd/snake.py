"""m1-deep-1: the Snake activation (Liu, Ziyin, Ueda 2020) as a custom autograd Function with its own backward.

    snake(x) = x + sin²(a x) / a        a > 0 learnable, one per channel

A ReLU-like trend (x) plus a periodic ripple: the network can represent periodic functions, which ReLU and tanh
cannot extrapolate. Its derivatives, with sin² = (1 - cos(2ax)) / 2 and 2 sin cos = sin(2ax):
    ∂y/∂x = 1 + sin(2ax)
    ∂y/∂a = x sin(2ax) / a - sin²(ax) / a²
The backward is written with differentiable tensor ops on the saved inputs, so that autograd can differentiate it
again (gradgradcheck, and a penalty on gradients in a training).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


class SnakeFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, alpha: Tensor) -> Tensor:
        ctx.save_for_backward(x, alpha)
        ripple = (alpha * x).sin_()
        # one temporary, updated in place: sin(ax) -> sin²(ax) -> sin²(ax)/a -> x + sin²(ax)/a
        return ripple.square_().div_(alpha).add_(x)

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor | None, Tensor | None]:
        x, alpha = ctx.saved_tensors
        twice = 2 * alpha * x
        sin2 = twice.sin()
        grad_x = grad_out + grad_out * sin2 if ctx.needs_input_grad[0] else None
        grad_alpha = None
        if ctx.needs_input_grad[1]:
            # x sin(2ax)/a - sin²(ax)/a², with sin²(ax) = (1 - cos 2ax)/2
            slope = (x * sin2 - (1 - twice.cos()) / (2 * alpha)) / alpha
            # of x's shape: autograd itself sums it over the dims alpha was broadcast along (sum_to its shape)
            grad_alpha = grad_out * slope
        return grad_x, grad_alpha


def snake(x: Tensor, alpha: Tensor) -> Tensor:
    """x + sin²(alpha x)/alpha through SnakeFunction; alpha broadcasts against x (one value per channel)."""
    for name, t in (("x", x), ("alpha", alpha)):
        if not isinstance(t, Tensor) or not t.is_floating_point():
            raise TypeError(f"snake: {name} must be a float tensor, got {getattr(t, 'dtype', type(t).__name__)}")
    try:
        shape = torch.broadcast_shapes(x.shape, alpha.shape)
    except RuntimeError:
        shape = None
    if shape != x.shape:
        raise ValueError(f"snake: alpha of shape {tuple(alpha.shape)} does not broadcast to x's {tuple(x.shape)}")
    if (alpha == 0).any():
        raise ValueError("snake: alpha must be non-zero (the ripple is divided by it)")
    return SnakeFunction.apply(x, alpha)


class Snake(nn.Module):
    """Snake with a learnable alpha per channel; channels on dim 1 ((N, C) or (N, C, H, W) ...)."""

    def __init__(self, channels: int, alpha: float = 1.0):
        super().__init__()
        if alpha <= 0:
            raise ValueError(f"Snake: alpha must be positive, got {alpha}")
        self.alpha = nn.Parameter(torch.full((channels,), float(alpha)))

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 2 or x.shape[1] != len(self.alpha):
            raise ValueError(f"Snake({len(self.alpha)}) wants channels on dim 1, got shape {tuple(x.shape)}")
        return snake(x, self.alpha.view(-1, *[1] * (x.dim() - 2)))
