"""b02-02: linear regression without nn.Module and without autograd: the forward and backward of a linear layer and
of the mean squared error as functions of plain tensors, and a gradient-descent step made of them.

Grade it:  torchkata check b02-02
"""
from __future__ import annotations

import torch
from torch import Tensor


def linear_forward(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """x @ weight.T + bias over the last dim of x: [..., in_features] -> [..., out_features] (weight is
    [out_features, in_features], bias [out_features], as nn.Linear's). As F.linear, which is off limits.

    Raise, naming the problem: TypeError for a non-tensor, a non-float tensor or dtypes that differ; ValueError for a
    weight that is not 2-D, an x that does not end in in_features (a 0-d x included), a bias of the wrong shape."""
    raise NotImplementedError("b02-02: write linear_forward")


def linear_backward(grad_out: Tensor, x: Tensor, weight: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(dL/dx, dL/dweight, dL/dbias) from grad_out = dL/dy of y = linear_forward(x, weight, bias), by the chain
    rule, without autograd. Every leading dim of x is a batch dim. The same errors as linear_forward, and ValueError
    for a grad_out whose shape is not y's."""
    raise NotImplementedError("b02-02: write linear_backward")


def mse_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """mean((prediction - target)²) as a 0-d tensor, nan for empty tensors (as F.mse_loss, which is off limits).
    Raise ValueError when the shapes differ (no broadcasting), TypeError for non-float tensors or dtypes that
    differ."""
    raise NotImplementedError("b02-02: write mse_loss")


def mse_backward(prediction: Tensor, target: Tensor) -> Tensor:
    """d mse_loss(prediction, target) / d prediction, without autograd; the same errors as mse_loss."""
    raise NotImplementedError("b02-02: write mse_backward")


@torch.no_grad()
def sgd_step(weight: Tensor, bias: Tensor, x: Tensor, y: Tensor, lr: float) -> Tensor:
    """One gradient-descent step on mse_loss(linear_forward(x, weight, bias), y) with your backwards: update weight
    and bias in place (they may be nn.Parameters) and return the loss before the step. ValueError for lr <= 0."""
    raise NotImplementedError("b02-02: write sgd_step")
