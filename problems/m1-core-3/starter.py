"""m1-core-3: elementwise ops on hand-written broadcasting, with their own backward.

Write sum_to_shape and the four autograd Functions. The forward may call b01-04's ops (imported below: they
broadcast with a03's stride-0 views); the backward must reduce each gradient back to its input's shape with your
sum_to_shape. Off limits: Tensor.sum_to_size, Tensor.expand, and torch's own autograd doing the work for you
(computing the forward with torch's differentiable ops and letting autograd differentiate it).

Grade it:  torchkata check m1-core-3
"""
from __future__ import annotations

import torch
from torch import Tensor

from torchkata.tensors import elementwise  # noqa: F401 - b01-04's add/sub/mul/div, yours to use


def sum_to_shape(grad: Tensor, shape: torch.Size) -> Tensor:
    """`grad` summed over the dims that broadcasting stretched `shape` along (the leading dims `shape` lacks and
    its size-1 dims), returned with exactly `shape`. RuntimeError naming both shapes if `grad`'s shape cannot
    have come from broadcasting `shape`."""
    raise NotImplementedError("m1-core-3: write sum_to_shape")


class Add(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor) -> Tensor:
        raise NotImplementedError("m1-core-3: write Add.forward")

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError("m1-core-3: write Add.backward")


class Sub(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor) -> Tensor:
        raise NotImplementedError("m1-core-3: write Sub.forward")

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError("m1-core-3: write Sub.backward")


class Mul(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor) -> Tensor:
        raise NotImplementedError("m1-core-3: write Mul.forward")

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError("m1-core-3: write Mul.backward")


class Div(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor) -> Tensor:
        raise NotImplementedError("m1-core-3: write Div.forward")

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError("m1-core-3: write Div.backward")


def add(a: Tensor, b: Tensor) -> Tensor:
    """a add b through Add (hint: Add.apply)."""
    raise NotImplementedError("m1-core-3: write add")


def sub(a: Tensor, b: Tensor) -> Tensor:
    """a sub b through Sub (hint: Sub.apply)."""
    raise NotImplementedError("m1-core-3: write sub")


def mul(a: Tensor, b: Tensor) -> Tensor:
    """a mul b through Mul (hint: Mul.apply)."""
    raise NotImplementedError("m1-core-3: write mul")


def div(a: Tensor, b: Tensor) -> Tensor:
    """a div b through Div (hint: Div.apply)."""
    raise NotImplementedError("m1-core-3: write div")
