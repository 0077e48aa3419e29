"""a45: a warp reduction with __shfl_down_sync. Write the kernels in csrc/reduce/reduce_cuda.cu (the CUDA kernel:
a grid-stride loop, each warp folding its 32 values with __shfl_down_sync, the warp sums folded by the first warp,
two passes) and csrc/reduce/reduce.cpp (the checks, the CPU twin that adds the elements in the same order, the
dispatch of CUDA tensors to your launcher, the operator registration `torchkata::warp_sum`), with the launch shape
of csrc/reduce/reduce_grid.h; then call the operator here.

Load the built operators with `torchkata.pipeline.extensions.load("reduce", library_path)` (torch.ops.torchkata).
Grade it:  torchkata check a45
"""
from __future__ import annotations

from torch import Tensor


def warp_sum(x: Tensor, library_path: str | None = None) -> Tensor:
    """The sum of all elements of a float32 or float64 tensor of any shape, as a 0-d tensor of x's dtype and device,
    computed by your warp reduction (CPU twin, or CUDA for CUDA tensors), with a tree's rounding error.

    Raises TypeError when x is not a Tensor; the C++ side raises RuntimeError naming the op and the operand for any
    other dtype.
    """
    raise NotImplementedError("a45: call your warp_sum operator")
