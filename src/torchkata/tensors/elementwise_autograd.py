"""m1-core-3: elementwise ops built on hand-written broadcasting, with their own backward.

The forward is b01-04's ops (a03's stride-0 views fed to torch's arithmetic as a same-shape kernel). The
backward is where broadcasting shows: an input of shape (3, 1) was read 4 times per row to make a (3, 4)
output, so its gradient is the sum of those 4 upstream gradients. `sum_to_shape` sums the output's gradient
over every dim the input was broadcast along (the leading dims it lacked and its size-1 dims), undoing the
expansion; every backward below ends with it.
"""
from __future__ import annotations

import torch
from torch import Tensor

from torchkata.tensors import elementwise


def sum_to_shape(grad: Tensor, shape: torch.Size) -> Tensor:
    """`grad` summed over the dims that broadcasting stretched `shape` along, back to `shape`."""
    lead = grad.dim() - len(shape)
    if lead < 0 or any(size not in (1, g) for size, g in zip(shape, grad.shape[lead:])):
        raise RuntimeError(f"a gradient of shape {tuple(grad.shape)} cannot come from broadcasting {tuple(shape)}")
    # the dims summed become size 1 or vanish, so the sum's elements are already in `shape`'s order
    dims = [*range(lead), *(lead + d for d, size in enumerate(shape) if size == 1)]
    if dims:  # sum(dim=[]) would sum everything
        grad = grad.sum(dim=dims)
    return grad.view(shape)


class Add(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor) -> Tensor:
        ctx.shapes = a.shape, b.shape
        return elementwise.add(a, b)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor]:
        a_shape, b_shape = ctx.shapes
        return sum_to_shape(grad, a_shape), sum_to_shape(grad, b_shape)


class Sub(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor) -> Tensor:
        ctx.shapes = a.shape, b.shape
        return elementwise.sub(a, b)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor]:
        a_shape, b_shape = ctx.shapes
        return sum_to_shape(grad, a_shape), sum_to_shape(elementwise.mul(grad, -1), b_shape)


class Mul(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor) -> Tensor:
        ctx.save_for_backward(a, b)
        return elementwise.mul(a, b)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor]:
        a, b = ctx.saved_tensors
        return sum_to_shape(elementwise.mul(grad, b), a.shape), sum_to_shape(elementwise.mul(grad, a), b.shape)


class Div(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor) -> Tensor:
        out = elementwise.div(a, b)
        ctx.a_shape = a.shape
        ctx.save_for_backward(b, out)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor]:
        # d(a/b)/da = 1/b and d(a/b)/db = -a/b^2 = -(grad/b) * out: reusing the output spares a square
        b, out = ctx.saved_tensors
        grad_a = elementwise.div(grad, b)
        grad_b = elementwise.mul(elementwise.mul(grad_a, out), -1)
        return sum_to_shape(grad_a, ctx.a_shape), sum_to_shape(grad_b, b.shape)


def add(a: Tensor, b: Tensor) -> Tensor:
    return Add.apply(a, b)


def sub(a: Tensor, b: Tensor) -> Tensor:
    return Sub.apply(a, b)


def mul(a: Tensor, b: Tensor) -> Tensor:
    return Mul.apply(a, b)


def div(a: Tensor, b: Tensor) -> Tensor:
    return Div.apply(a, b)
