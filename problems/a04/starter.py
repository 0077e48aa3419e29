"""a04: a linear layer without autograd: an object with a forward, a hand-written backward and a gradient step,
and the mean squared error with its backward, to train it.

Grade it:  torchkata check a04
"""
from __future__ import annotations

import torch
from torch import Tensor


class Linear:
    """y = x @ weight.T + bias over the last dim of x ([..., in_features] -> [..., out_features]), with plain tensors:
    no requires_grad, no autograd graph, no nn.Module, no F.linear.

    Attributes: weight [out_features, in_features] and bias [out_features], initialised as nn.Linear's (uniform in
    ±1/sqrt(in_features), drawn from `generator`, or torch's global generator when it is None), and grad_weight,
    grad_bias (None until the first backward)."""

    def __init__(self, in_features: int, out_features: int, *, generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float64):
        """ValueError, naming both sizes, when either is below 1."""
        raise NotImplementedError("a04: write Linear.__init__")

    def forward(self, x: Tensor) -> Tensor:
        """The output; keeps x for backward. TypeError for a non-float x or one of another dtype than weight,
        ValueError for an x that does not end in in_features (naming its shape). Calling the layer is forward."""
        raise NotImplementedError("a04: write Linear.forward")

    def __call__(self, x: Tensor) -> Tensor:
        return self.forward(x)

    def backward(self, grad_out: Tensor) -> Tensor:
        """From grad_out = dL/dy for the latest forward: set grad_weight and grad_bias (replacing, not adding to, the
        previous ones) and return dL/dx. Every leading dim of x is a batch dim. RuntimeError before any forward,
        ValueError for a grad_out whose shape is not y's."""
        raise NotImplementedError("a04: write Linear.backward")

    def step(self, lr: float) -> None:
        """Gradient descent: weight and bias move by -lr times their gradients, in place. RuntimeError before any
        backward, ValueError for lr <= 0."""
        raise NotImplementedError("a04: write Linear.step")


def mse_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """mean((prediction - target)²) as a 0-d tensor, nan for empty tensors (as F.mse_loss, which is off limits).
    ValueError when the shapes differ (no broadcasting), TypeError for non-float tensors or dtypes that differ."""
    raise NotImplementedError("a04: write mse_loss")


def mse_backward(prediction: Tensor, target: Tensor) -> Tensor:
    """d mse_loss(prediction, target) / d prediction, without autograd; the same errors as mse_loss."""
    raise NotImplementedError("a04: write mse_backward")
