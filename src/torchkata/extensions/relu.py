"""a43: ReLU by hand-written kernels (csrc/relu: a CPU loop, and a CUDA kernel built in where torch has CUDA),
registered as torch operators (`torch.ops.torchkata.relu_forward` / `relu_backward`) and wrapped as an autograd
Function, with a backward that is itself differentiable (gradgradcheck).

The build_extension_relu rule compiles the kernels once; `ops(library_path)` (default: where that rule puts them)
loads the library, whose registrations make the operators callable for CPU and, in a CUDA build, CUDA tensors.
The backward reads the saved output, not the input, as torch's does: the gradient flows where y > 0.
"""
from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor

from torchkata.pipeline import extensions


@lru_cache(maxsize=None)
def ops(library_path: str | None = None):
    return extensions.load("relu", library_path)


class ReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, lib) -> Tensor:
        y = lib.relu_forward(x)
        ctx.save_for_backward(y)
        ctx.lib = lib
        return y

    @staticmethod
    def backward(ctx, grad_y: Tensor):
        (y,) = ctx.saved_tensors
        return ReLUBackward.apply(grad_y, y, ctx.lib), None  # nothing for the library handle


class ReLUBackward(torch.autograd.Function):
    """grad_x = grad_y where y > 0: linear in grad_y (its own backward is the same mask), and flat in y (the mask
    is piecewise constant), so a second derivative through it is exact."""

    @staticmethod
    def forward(ctx, grad_y: Tensor, y: Tensor, lib) -> Tensor:
        ctx.save_for_backward(y)
        ctx.lib = lib
        return lib.relu_backward(grad_y, y)

    @staticmethod
    def backward(ctx, grad_grad_x: Tensor):
        (y,) = ctx.saved_tensors
        return ReLUBackward.apply(grad_grad_x, y, ctx.lib), None, None


def relu(x: Tensor, library_path: str | None = None) -> Tensor:
    """max(x, 0) computed by the extension's kernel (CPU, or CUDA for CUDA tensors), differentiable in x, with
    torch.relu's conventions to the bit: -0.0 and NaN pass through, and the gradient at 0 is 0. x is float32,
    float64, float16 or bfloat16."""
    if not isinstance(x, Tensor):
        raise TypeError(f"relu: x must be a Tensor, got {type(x).__name__}")
    return ReLU.apply(x, ops(library_path))
