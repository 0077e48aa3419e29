"""m3-deep-2: the sum of all elements by a shared-memory tree reduction (csrc/reduce/reduce_cuda.cu: sequential
addressing, the last warp's levels by shuffles) and its CPU twin, which adds the elements in the same order
(csrc/reduce/reduce.cpp): registered as the operator `torch.ops.torchkata.shared_tree_sum`, built once by the
build_extension_reduce rule (shared with a45)."""
from __future__ import annotations

from torch import Tensor

from torchkata.extensions.reduce import ops


def shared_tree_sum(x: Tensor, library_path: str | None = None) -> Tensor:
    """The sum of all elements of a float32 or float64 tensor of any shape (made contiguous first), as a 0-d tensor
    of x's dtype and device: each block's 256 sums halved in shared memory (thread t adds t + s, s = 128, ..., 1).
    Its rounding error is that of a tree (reduce.error_bound), not of a loop."""
    if not isinstance(x, Tensor):
        raise TypeError(f"shared_tree_sum: x must be a Tensor, got {type(x).__name__}")
    return ops(library_path).shared_tree_sum(x)
