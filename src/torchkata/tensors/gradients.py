"""b01-05: gradients, Jacobians and Hessians computed with torch.autograd.grad, one backward pass per output element.

Reverse mode gives one vector-Jacobian product vᵀJ per backward pass. With v the i-th unit vector that is row i of J;
for a scalar function it is the whole gradient. So a Jacobian of an m-element output takes m passes over the same
graph (retain_graph keeps it alive between them), and a Hessian is the Jacobian of a gradient that was itself built
with create_graph=True, so that it can be differentiated again.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor


def _leaf(x: Tensor) -> Tensor:
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got {getattr(x, 'dtype', type(x).__name__)}")
    return x.detach().requires_grad_()  # a fresh leaf: the caller's tensor and its graph are left alone


def _output(f: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    y = f(x)
    if not isinstance(y, Tensor):
        raise TypeError(f"f must return a tensor, got {type(y).__name__}")
    return y


def _grad(y: Tensor, x: Tensor, **options) -> Tensor:
    """∂y/∂x for a one-element y; zeros where y does not depend on x (or not at all: a constant has no graph)."""
    if not y.requires_grad:
        return torch.zeros_like(x)
    return torch.autograd.grad(y.reshape(()), x, allow_unused=True, materialize_grads=True, **options)[0]


def gradient(f: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """∇f(x) for a scalar-valued f, shaped like x (zeros where f does not depend on x)."""
    with torch.enable_grad():  # works inside torch.no_grad() too
        x = _leaf(x)
        y = _output(f, x)
        if y.numel() != 1:
            raise ValueError(f"gradient needs a scalar function; f returned shape {tuple(y.shape)} (use jacobian)")
        return _grad(y, x)


def jacobian(f: Callable[[Tensor], Tensor], x: Tensor, create_graph: bool = False) -> Tensor:
    """J[i..., j...] = ∂f(x)[i...] / ∂x[j...], of shape f(x).shape + x.shape: one backward pass per output element."""
    with torch.enable_grad():
        x = _leaf(x) if not create_graph else x
        y = _output(f, x)
        rows = [_grad(y_i, x, retain_graph=True, create_graph=create_graph) for y_i in y.reshape(-1)]
    return torch.stack(rows).reshape(y.shape + x.shape) if rows else x.new_zeros(y.shape + x.shape)


def hessian(f: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """H[i..., j...] = ∂²f / ∂x[i...] ∂x[j...] for a scalar-valued f, of shape x.shape + x.shape."""
    def grad_with_graph(z: Tensor) -> Tensor:
        y = _output(f, z)
        if y.numel() != 1:
            raise ValueError(f"hessian needs a scalar function; f returned shape {tuple(y.shape)}")
        # create_graph: the gradient is itself a function of z that autograd can differentiate again
        return _grad(y, z, create_graph=True)

    with torch.enable_grad():
        return jacobian(grad_with_graph, _leaf(x), create_graph=True).detach()
