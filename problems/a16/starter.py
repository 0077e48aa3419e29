"""a16: linear regression by gradient descent: autograd computes the gradient (loss.backward()), you apply the
update yourself with autograd off (torch.no_grad), and find the largest learning rate that still converges.
torch.optim is off limits.

Grade it:  torchkata check a16
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import Tensor


@torch.no_grad()
def gradient_step(parameters: Iterable[Tensor], lr: float) -> None:
    """p -= lr * p.grad in place for every parameter (any iterable, e.g. model.parameters()) that has a gradient,
    then drop the gradient (p.grad = None). Parameters without a gradient are left alone. The parameters stay leaves
    that require grad. ValueError naming lr unless lr > 0 (nan too), before anything moves."""
    raise NotImplementedError("a16: write gradient_step")


def fit_linear_regression(x: Tensor, y: Tensor, lr: float, steps: int) -> tuple[Tensor, Tensor, list[float]]:
    """`steps` full-batch steps of gradient descent on mean((x @ weight + bias - y)²), starting from weight = 0
    ([features], x's dtype) and bias = 0 (0-d): each step computes the loss, calls backward() and gradient_step.

    Return (weight, bias, losses): the parameters detached, and a list of the loss (a Python float) before each step.
    x must be a floating 2-D [rows, features] tensor with at least one row (TypeError / ValueError), y of shape
    (rows,) (ValueError naming both shapes) and x's dtype (TypeError naming both), steps >= 0 (ValueError)."""
    raise NotImplementedError("a16: write fit_linear_regression")


def stability_bound(x: Tensor) -> float:
    """2 / λ_max, λ_max the largest eigenvalue of the Hessian of that loss in (weight, bias): gradient descent
    converges for every lr below it and diverges above. Same errors for x as fit_linear_regression."""
    raise NotImplementedError("a16: write stability_bound")
