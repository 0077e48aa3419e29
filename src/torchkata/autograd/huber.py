"""b02-03: the Huber loss as a custom autograd Function, forward and backward by hand.

For a residual d = input - target:  huber(d) = d²/2 where |d| <= delta, delta·(|d| - delta/2) beyond: quadratic near 0,
linear (so robust to outliers) far from it, with matching value and slope at |d| = delta.

Both pieces are one formula in c = clamp(d, -delta, delta):  huber(d) = c·(d - c/2), and c is the derivative
d huber / d d. So the forward computes c once, and the backward is c times the upstream gradient.
"""
from __future__ import annotations

import torch
from torch import Tensor

REDUCTIONS = ("none", "mean", "sum")


class HuberLossFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input: Tensor, target: Tensor, reduction: str, delta: float) -> Tensor:
        diff = input - target
        slope = diff.clamp(-delta, delta)
        ctx.save_for_backward(input, target, slope)
        ctx.options = reduction, delta
        if reduction == "none":
            return slope * (diff - 0.5 * slope)
        # the sum of c·(d - c/2) as two dot products: no elementwise temporary beyond d and c
        total = slope.flatten().dot(diff.flatten()) - 0.5 * slope.flatten().dot(slope.flatten())
        return total / diff.numel() if reduction == "mean" else total

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        input, target, slope = ctx.saved_tensors
        reduction, delta = ctx.options
        if torch.is_grad_enabled():  # a double backward needs the slope as a function of the inputs, not a constant
            slope = (input - target).clamp(-delta, delta)
        grad = slope * (grad_out / slope.numel() if reduction == "mean" else grad_out)
        return grad, -grad, None, None


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """F.huber_loss for two float tensors of the same shape, through HuberLossFunction."""
    for name, t in (("input", input), ("target", target)):
        if not isinstance(t, Tensor) or not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got {getattr(t, 'dtype', type(t).__name__)}")
    if input.shape != target.shape:
        raise ValueError(f"input shape {tuple(input.shape)} and target shape {tuple(target.shape)} differ")
    if input.dtype != target.dtype:
        raise TypeError(f"input ({input.dtype}) and target ({target.dtype}) must have the same dtype")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if not delta > 0:
        raise ValueError(f"delta must be positive, got {delta}")
    return HuberLossFunction.apply(input, target, reduction, delta)
