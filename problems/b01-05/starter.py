"""b01-05: compute gradients with autograd: a gradient, a Jacobian and a Hessian from torch.autograd.grad.

Grade it:  torchkata check b01-05
"""
from __future__ import annotations

from typing import Callable

from torch import Tensor


def gradient(f: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """∇f(x) for a scalar-valued f, shaped like x; zeros where f does not depend on x."""
    raise NotImplementedError("b01-05: write gradient")


def jacobian(f: Callable[[Tensor], Tensor], x: Tensor, create_graph: bool = False) -> Tensor:
    """J[i..., j...] = ∂f(x)[i...] / ∂x[j...], of shape f(x).shape + x.shape. With create_graph=True, x is used as
    given and the result stays differentiable (hessian needs that); otherwise the result is detached."""
    raise NotImplementedError("b01-05: write jacobian")


def hessian(f: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """H[i..., j...] = ∂²f / ∂x[i...] ∂x[j...] for a scalar-valued f, of shape x.shape + x.shape.

    All three work inside torch.no_grad(), leave x (and any x.grad) untouched, and raise TypeError for an x that is not
    a floating-point tensor or an f that does not return a tensor, and ValueError (naming the shape) when gradient or
    hessian gets an f that is not scalar. torch.autograd.functional and torch.func are off limits."""
    raise NotImplementedError("b01-05: write hessian")
