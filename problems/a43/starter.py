"""a43: ReLU by hand-written kernels, forward and backward. Write the kernels in csrc/relu/relu.cpp (the checks, the
CPU loops, the dispatch of CUDA tensors to your launchers, and the operator registrations `torchkata::relu_forward`,
`relu_backward`, `relu_has_cuda`) and csrc/relu/relu_cuda.cu (the CUDA kernels), then wrap them here as an autograd
Function whose backward is differentiable too.

Load the built operators with `torchkata.pipeline.extensions.load("relu", library_path)` (torch.ops.torchkata).
Grade it:  torchkata check a43
"""
from __future__ import annotations

from torch import Tensor


def ops(library_path: str | None = None):
    """The operators the library registered (torch.ops.torchkata), loaded once."""
    raise NotImplementedError("a43: load the relu library")


def relu(x: Tensor, library_path: str | None = None) -> Tensor:
    """max(x, 0) computed by the extension's kernel (CPU, or CUDA for CUDA tensors), differentiable in x (twice),
    with torch.relu's conventions to the bit: -0.0 and NaN pass through, and the gradient at 0 is 0. x is float32,
    float64, float16 or bfloat16.

    Raises TypeError when x is not a Tensor; the C++ side raises RuntimeError naming the op and the operand for any
    other dtype.
    """
    raise NotImplementedError("a43: wrap the relu kernels in an autograd Function")
