"""a42: a + alpha * b by a hand-written kernel (csrc/add: a CPU loop, and a CUDA kernel built in where torch has
CUDA), forward and backward, wrapped as an autograd Function.

The build_extension_add rule compiles the kernels once; `library_path` (default: where that rule puts them)
loads the result. Both operands get a gradient: d/da = grad_out, d/db = alpha * grad_out, the second one computed
by the same kernel.
"""
from __future__ import annotations

from functools import lru_cache
from types import ModuleType

import torch
from torch import Tensor

from torchkata.pipeline import extensions


@lru_cache(maxsize=None)
def library(path: str | None = None) -> ModuleType:
    return extensions.load("add", path)


class Add(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, alpha: float, lib: ModuleType) -> Tensor:
        ctx.alpha, ctx.lib = alpha, lib
        return lib.forward(a, b, alpha)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        grad_a, grad_b = ctx.lib.backward(grad_out, ctx.alpha)
        return grad_a, grad_b, None, None  # nothing for the Python float alpha nor the library handle


def add(a: Tensor, b: Tensor, alpha: float = 1.0, library_path: str | None = None) -> Tensor:
    """a + alpha * b computed by the extension's kernel (CPU, or CUDA for CUDA tensors), differentiable in a and b.
    a and b must have one shape, one floating dtype (float32 or float64) and one device."""
    for name, t in (("a", a), ("b", b)):
        if not isinstance(t, Tensor):
            raise TypeError(f"add: {name} must be a Tensor, got {type(t).__name__}")
    return Add.apply(a, b, float(alpha), library(library_path))
