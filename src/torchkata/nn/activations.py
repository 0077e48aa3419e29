"""b03-08: Tanh, Sigmoid and GELU by hand, each an autograd Function whose backward is written out (ReLU is a05's
torchkata.autograd.relu). The forwards avoid overflow: exp only ever sees -|x|, so no input gives inf/inf.

    sigmoid(x) = 1 / (1 + e^-x)            sigmoid' = s (1 - s)
    tanh(x)    = 2 sigmoid(2x) - 1          tanh'    = 1 - t^2
    gelu(x)    = x Φ(x), Φ(x) = (1 + erf(x / √2)) / 2          gelu' = Φ(x) + x φ(x)
    gelu(x, "tanh") = x (1 + tanh(√(2/π) (x + 0.044715 x^3))) / 2
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from torchkata.autograd.relu import relu

SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
CUBIC = 0.044715


class SigmoidFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        e = torch.exp(-x.abs())  # in (0, 1]: never overflows
        out = torch.where(x >= 0, 1 / (1 + e), e / (1 + e))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> Tensor:
        (out,) = ctx.saved_tensors
        return grad_out * out * (1 - out)


class TanhFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        # tanh|x| = (1 - e) / (1 + e) with e = exp(-2|x|); expm1 keeps 1 - e exact for small |x|
        e = torch.exp(-2 * x.abs())
        out = torch.copysign(-torch.expm1(-2 * x.abs()) / (1 + e), x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> Tensor:
        (out,) = ctx.saved_tensors
        return grad_out * (1 - out * out)


class GELUFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, approximate: str) -> Tensor:
        ctx.save_for_backward(x)
        ctx.approximate = approximate
        if approximate == "tanh":
            return 0.5 * x * (1 + TanhFunction.apply(SQRT_2_OVER_PI * (x + CUBIC * x ** 3)))
        return x * 0.5 * (1 + torch.erf(x / math.sqrt(2)))

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor, None]:
        (x,) = ctx.saved_tensors
        if ctx.approximate == "tanh":
            t = TanhFunction.apply(SQRT_2_OVER_PI * (x + CUBIC * x ** 3))
            slope = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * CUBIC * x * x)
        else:
            slope = 0.5 * (1 + torch.erf(x / math.sqrt(2))) + x * torch.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
        return grad_out * slope, None


def sigmoid(x: Tensor) -> Tensor:
    return SigmoidFunction.apply(x)


def tanh(x: Tensor) -> Tensor:
    return TanhFunction.apply(x)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """F.gelu's: the exact erf form, or approximate="tanh"; ValueError for another approximation."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate must be 'none' or 'tanh', not {approximate!r}")
    return GELUFunction.apply(x, approximate)


class ReLU(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return relu(x)


class Sigmoid(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return sigmoid(x)


class Tanh(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return tanh(x)


class GELU(nn.Module):
    def __init__(self, approximate: str = "none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return gelu(x, self.approximate)
