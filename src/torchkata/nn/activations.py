"""b03-08: Sigmoid and Tanh by hand, each an autograd Function whose backward is written out, and GELU built on them
(ReLU is a05's torchkata.autograd.relu). The forwards avoid overflow: exp only ever sees -|x|, so no input gives
inf/inf.

    sigmoid(x) = 1 / (1 + e^-x)            sigmoid' = s (1 - s)
    tanh(x)    = 2 sigmoid(2x) - 1          tanh'    = 1 - t^2
    gelu(x)    = x Φ(x), Φ(x) = (1 + erf(x / √2)) / 2          (autograd: gelu' = Φ(x) + x φ(x))
    gelu(x, "tanh") = x (1 + tanh(√(2/π) (x + 0.044715 x^3))) / 2 = x sigmoid(2 √(2/π) (x + 0.044715 x^3))
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from torchkata.autograd.relu import relu

SQRT_8_OVER_PI = math.sqrt(8 / math.pi)  # 2 √(2/π)
CUBIC = 0.044715


class SigmoidFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        e = torch.exp(-x.abs())  # in (0, 1]: never overflows
        out = torch.where(x >= 0, 1, e) / (1 + e)  # 1 / (1 + e^-x), and e^x / (1 + e^x) for x < 0
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> Tensor:
        (out,) = ctx.saved_tensors
        return grad_out * out * (1 - out)


class TanhFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        # tanh|x| = (1 - e) / (1 + e) = -m / (2 + m) with m = e - 1, e = exp(-2|x|); expm1 keeps m exact for small |x|
        m = torch.expm1(-2 * x.abs())
        out = torch.copysign(-m / (2 + m), x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> Tensor:
        (out,) = ctx.saved_tensors
        return grad_out * (1 - out * out)


def sigmoid(x: Tensor) -> Tensor:
    return SigmoidFunction.apply(x)


def tanh(x: Tensor) -> Tensor:
    return TanhFunction.apply(x)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """F.gelu's: the exact erf form, or approximate="tanh"; ValueError for another approximation."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate must be 'none' or 'tanh', not {approximate!r}")
    # autograd writes the backward from the pieces: Φ's is PyTorch's, sigmoid's is SigmoidFunction's above
    if approximate == "tanh":
        return x * sigmoid(SQRT_8_OVER_PI * (x + CUBIC * x ** 3))  # (1 + tanh z) / 2 = sigmoid(2z)
    return x * torch.special.ndtr(x)  # ndtr: Φ, the standard normal CDF, (1 + erf(x / √2)) / 2


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
