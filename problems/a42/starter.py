"""a42: an add kernel, a + alpha * b, forward and backward. Write the kernels in csrc/add/add.cpp (the CPU loop and
the bindings `forward(a, b, alpha)`, `backward(grad_out, alpha)` -> (grad_a, grad_b), `has_cuda()`) and
csrc/add/add_cuda.cu (the CUDA kernel), then wrap them here as an autograd Function.

Load the built library with `torchkata.pipeline.extensions.load("add", library_path)`.
Grade it:  torchkata check a42
"""
from __future__ import annotations

from torch import Tensor


def add(a: Tensor, b: Tensor, alpha: float = 1.0, library_path: str | None = None) -> Tensor:
    """a + alpha * b computed by the extension's kernel (CPU, or CUDA for CUDA tensors), differentiable in a and b.

    Raises TypeError naming the operand that is not a Tensor; the C++ side raises RuntimeError for operands of
    different shapes, dtypes or devices, and for dtypes other than float32 and float64.
    """
    raise NotImplementedError("a42: wrap the add kernels in an autograd Function")
