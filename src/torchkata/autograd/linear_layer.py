"""a04: a linear layer without autograd, an object with forward, a hand-written backward and a gradient step.

The arithmetic (forward, backward, the MSE) is b02-02's, in torchkata.autograd.linear_regression; this module adds
what a layer object keeps between the calls: its parameters, the input its backward needs, and the gradients.
"""
from __future__ import annotations

import torch
from torch import Tensor

from torchkata.autograd.linear_regression import linear_backward, linear_forward, mse_backward, mse_loss

__all__ = ["Linear", "mse_loss", "mse_backward"]


class Linear:
    """y = x @ weight.T + bias with plain tensors (no autograd graph).

    forward(x) keeps x for backward; backward(dL/dy) sets grad_weight and grad_bias and returns dL/dx;
    step(lr) moves the parameters against their gradients. Initialised as nn.Linear: weight and bias uniform in
    ±1/sqrt(in_features)."""

    def __init__(self, in_features: int, out_features: int, *, generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float64):
        if in_features < 1 or out_features < 1:
            raise ValueError(f"in_features and out_features must be at least 1, got {in_features} and {out_features}")
        bound = in_features ** -0.5
        self.weight = (torch.rand(out_features, in_features, generator=generator, dtype=dtype) * 2 - 1) * bound
        self.bias = (torch.rand(out_features, generator=generator, dtype=dtype) * 2 - 1) * bound
        self.grad_weight = self.grad_bias = self.input = None

    def forward(self, x: Tensor) -> Tensor:
        out = linear_forward(x, self.weight, self.bias)
        self.input = x
        return out

    __call__ = forward

    def backward(self, grad_out: Tensor) -> Tensor:
        if self.input is None:
            raise RuntimeError("backward needs the input of a forward first: call forward(x) before backward")
        grad_x, self.grad_weight, self.grad_bias = linear_backward(grad_out, self.input, self.weight)
        return grad_x

    def step(self, lr: float) -> None:
        if self.grad_weight is None:
            raise RuntimeError("step needs gradients: call backward before step")
        if not lr > 0:
            raise ValueError(f"lr must be positive, got {lr}")
        self.weight -= lr * self.grad_weight
        self.bias -= lr * self.grad_bias
