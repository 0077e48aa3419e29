"""a16: linear regression by gradient descent, autograd computing the gradient and a hand-written update under
torch.no_grad() applying it (what torch.optim.SGD does, with nothing hidden).

    weight, bias, losses = fit_linear_regression(x, y, lr=0.9 * stability_bound(x), steps=1000)

Each step is: loss = mean((x @ weight + bias - y)²); loss.backward(); then, with autograd off,
weight -= lr * weight.grad (and the bias) and the gradients are dropped. The update must not be recorded: it is
not part of the model, and in place on a leaf that requires grad autograd refuses it outright.

The loss is a quadratic in θ = (weight, bias) with the constant Hessian H = (2/N) Aᵀ A, A = [x 1] (the design with
a column of ones for the bias). Along H's eigenvector of eigenvalue λ the error to the optimum is multiplied by
(1 - lr·λ) each step, so gradient descent converges exactly when lr < 2 / λ_max (stability_bound) and diverges,
fastest along the top eigenvector, above it. The slowest direction, λ_min, sets how many steps convergence takes.
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import Tensor


@torch.no_grad()
def gradient_step(parameters: Iterable[Tensor], lr: float) -> None:
    """p -= lr * p.grad in place for every parameter with a gradient, then p.grad = None (the next backward starts
    afresh instead of adding to it). Parameters without a gradient are left alone."""
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr}")
    for p in parameters:
        if p.grad is not None:
            p -= lr * p.grad
            p.grad = None


def _check_x(x: Tensor) -> None:
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got {x.dtype}")
    if x.dim() != 2 or len(x) == 0:
        raise ValueError(f"x must be 2-D [rows, features] with at least one row, got shape {tuple(x.shape)}")


def _check_data(x: Tensor, y: Tensor) -> None:
    _check_x(x)
    if y.shape != x.shape[:1]:  # a [N, 1] target against an [N] prediction would broadcast to [N, N]
        raise ValueError(f"y must have shape ({len(x)},) to match x {tuple(x.shape)}, got {tuple(y.shape)}")
    if y.dtype != x.dtype:
        raise TypeError(f"y ({y.dtype}) and x ({x.dtype}) must have the same dtype")


def fit_linear_regression(x: Tensor, y: Tensor, lr: float, steps: int) -> tuple[Tensor, Tensor, list[float]]:
    """`steps` full-batch gradient steps on mean((x @ weight + bias - y)²) from weight = 0, bias = 0.

    Returns (weight [features], bias (0-d), losses): the learnt parameters, detached, and the loss before each step.
    A learning rate above stability_bound(x) diverges: the losses grow (to inf and nan if run long enough)."""
    _check_data(x, y)
    if steps < 0:
        raise ValueError(f"steps must be at least 0, got {steps}")
    weight = torch.zeros(x.shape[1], dtype=x.dtype, requires_grad=True)
    bias = torch.zeros((), dtype=x.dtype, requires_grad=True)
    losses = []
    for _ in range(steps):
        loss = ((x @ weight + bias - y) ** 2).mean()
        loss.backward()
        losses.append(loss.item())
        gradient_step((weight, bias), lr)
    return weight.detach(), bias.detach(), losses


def stability_bound(x: Tensor) -> float:
    """2 / λ_max of the MSE's Hessian (2/N) Aᵀ A in (weight, bias), A = [x 1]: the largest learning rate at which
    gradient descent on the linear regression still converges (from any start, whatever the targets)."""
    _check_x(x)
    design = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)
    hessian = 2 / len(x) * design.T @ design
    return 2 / float(torch.linalg.eigvalsh(hessian)[-1])
