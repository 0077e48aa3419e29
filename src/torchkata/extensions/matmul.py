"""a44: C = A @ B by a hand-written tiled kernel (csrc/matmul: the CPU twin, cache-blocked and split over threads,
and the CUDA kernel with shared-memory tiles, built in where torch has CUDA), registered as the operator
`torch.ops.torchkata.matmul` and wrapped as an autograd Function.

The build_extension_matmul rule compiles the kernels once; `ops(library_path)` (default: where that rule puts them)
loads the library. The backward is two more products by the same kernel, on transposed views: the CPU kernel reads
its operands through their strides, so a transpose costs no copy.
"""
from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor

from torchkata.pipeline import extensions


@lru_cache(maxsize=None)
def ops(library_path: str | None = None):
    return extensions.load("matmul", library_path)


class MatMul(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, lib) -> Tensor:
        ctx.save_for_backward(a, b)
        ctx.lib = lib
        return lib.matmul(a, b)

    @staticmethod
    def backward(ctx, grad_c: Tensor):
        a, b = ctx.saved_tensors
        # dL/dA = dL/dC B^T and dL/dB = A^T dL/dC; nothing for the library handle
        return ctx.lib.matmul(grad_c, b.t()), ctx.lib.matmul(a.t(), grad_c), None


def matmul(a: Tensor, b: Tensor, library_path: str | None = None) -> Tensor:
    """a @ b for a 2-D a [M, K] and b [K, N] of one floating dtype (float32 or float64) and one device, computed by
    the extension's kernel and differentiable in both. Any strides (transposed, sliced) are read as they are; the
    result is a new contiguous [M, N] tensor."""
    for name, t in (("a", a), ("b", b)):
        if not isinstance(t, Tensor):
            raise TypeError(f"matmul: {name} must be a Tensor, got {type(t).__name__}")
    return MatMul.apply(a, b, ops(library_path))
