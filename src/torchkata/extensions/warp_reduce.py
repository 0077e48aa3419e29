"""a45: the sum of all elements by a warp reduction with __shfl_down_sync (csrc/reduce/reduce_cuda.cu), and its
CPU twin, which adds the elements in the same order (csrc/reduce/reduce.cpp): registered as the operator
`torch.ops.torchkata.warp_sum`, built once by the build_extension_reduce rule (shared with m3-deep-2)."""
from __future__ import annotations

from torch import Tensor

from torchkata.extensions.reduce import ops


def warp_sum(x: Tensor, library_path: str | None = None) -> Tensor:
    """The sum of all elements of a float32 or float64 tensor of any shape (made contiguous first), as a 0-d tensor
    of x's dtype and device: each warp of 32 threads folds its values with __shfl_down_sync, then the first warp
    folds the warp sums. Its rounding error is that of a tree (reduce.error_bound), not of a loop."""
    if not isinstance(x, Tensor):
        raise TypeError(f"warp_sum: x must be a Tensor, got {type(x).__name__}")
    return ops(library_path).warp_sum(x)
