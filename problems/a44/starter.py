"""a44: tiled matrix multiplication. Write the kernels in csrc/matmul/matmul.cpp (the checks, the CPU twin: packed
blocks of A and B sized for the caches, a register-tiled micro-kernel, rows split over threads with
at::parallel_for; the dispatch of CUDA tensors to your launcher; the operator registrations `torchkata::matmul` and
`matmul_has_cuda`) and csrc/matmul/matmul_cuda.cu (the CUDA kernel: tiles of A and B staged in shared memory), then
wrap them here as an autograd Function.

Load the built operators with `torchkata.pipeline.extensions.load("matmul", library_path)` (torch.ops.torchkata).
Grade it:  torchkata check a44
"""
from __future__ import annotations

from torch import Tensor


def ops(library_path: str | None = None):
    """The operators the library registered (torch.ops.torchkata), loaded once."""
    raise NotImplementedError("a44: load the matmul library")


def matmul(a: Tensor, b: Tensor, library_path: str | None = None) -> Tensor:
    """a @ b for a 2-D a [M, K] and b [K, N] of one floating dtype (float32 or float64) and one device, computed by
    the extension's kernel and differentiable in both. Any strides are accepted; the result is a new contiguous
    [M, N] tensor.

    Raises TypeError when a or b is not a Tensor; the C++ side raises RuntimeError naming the op, the operands and
    their shapes, dtypes or devices for anything else it cannot multiply.
    """
    raise NotImplementedError("a44: wrap the matmul kernel in an autograd Function")
