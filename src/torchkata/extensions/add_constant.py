"""a41: the simplest C++ extension, x + constant, wrapped as an autograd Function.

The C++ side is csrc/add_constant/add_constant.cpp; the build_extension_add_constant rule compiles it
once, and `library` (or a path given to `add_constant`) loads the result.
"""
from __future__ import annotations

from functools import lru_cache
from types import ModuleType

import torch
from torch import Tensor

from torchkata.pipeline import extensions


@lru_cache(maxsize=None)
def library(path: str | None = None) -> ModuleType:
    return extensions.load("add_constant", path)


class AddConstant(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, constant: float, lib: ModuleType) -> Tensor:
        ctx.lib = lib
        return lib.forward(x, constant)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        # no gradient for the Python float constant nor for the library handle
        return ctx.lib.backward(grad_out.contiguous()), None, None


def add_constant(x: Tensor, constant: float, library_path: str | None = None) -> Tensor:
    """x + constant computed by the C++ extension, differentiable with respect to x."""
    if not isinstance(x, Tensor):
        raise TypeError(f"add_constant: x must be a Tensor, got {type(x).__name__}")
    return AddConstant.apply(x, float(constant), library(library_path))
