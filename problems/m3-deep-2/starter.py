"""m3-deep-2: a reduction kernel with shared memory, optimised. Write the kernel in csrc/reduce/reduce_cuda.cu (a
grid-stride loop, each block's 256 sums halved in shared memory by sequential addressing, the last warp's levels
by __shfl_down_sync with the same pairings, two passes) and its CPU twin in csrc/reduce/reduce.cpp (the same
additions in the same order, the operator registration `torchkata::shared_tree_sum`), with the launch shape of
csrc/reduce/reduce_grid.h; then call the operator here.

Load the built operators with `torchkata.pipeline.extensions.load("reduce", library_path)` (torch.ops.torchkata).
Grade it:  torchkata check m3-deep-2
"""
from __future__ import annotations

from torch import Tensor


def shared_tree_sum(x: Tensor, library_path: str | None = None) -> Tensor:
    """The sum of all elements of a float32 or float64 tensor of any shape, as a 0-d tensor of x's dtype and
    device, computed by your shared-memory tree (CPU twin, or CUDA for CUDA tensors), with a tree's rounding error.

    Raises TypeError when x is not a Tensor; the C++ side raises RuntimeError naming the op and the operand for any
    other dtype.
    """
    raise NotImplementedError("m3-deep-2: call your shared_tree_sum operator")
