"""a46: point-cloud kNN. Write the kernels in csrc/knn/knn.cpp (the checks, the CPU twin: reference points in tiles
sized for L1, blocks of queries scanning them, each query's sorted top-k in a small array of its own, blocks split
over threads with at::parallel_for; the dispatch of CUDA tensors to your launcher; the operator registrations
`torchkata::knn` and `knn_has_cuda`) and csrc/knn/knn_cuda.cu (the CUDA kernel: one thread a query, reference tiles
staged in shared memory, the top-k in a local array), then call them here.

Load the built operators with `torchkata.pipeline.extensions.load("knn", library_path)` (torch.ops.torchkata).
Grade it:  torchkata check a46
"""
from __future__ import annotations

from torch import Tensor


def ops(library_path: str | None = None):
    """The operators the library registered (torch.ops.torchkata), loaded once."""
    raise NotImplementedError("a46: load the knn library")


def knn(query: Tensor, reference: Tensor, k: int, library_path: str | None = None) -> tuple[Tensor, Tensor]:
    """(squared distances [N, k], int64 indices into reference [N, k]) of the k reference points nearest to each
    query point, each row sorted by distance ascending (tied points in any order, each once).

    query [N, D] and reference [M, D]: one floating dtype (float32 or float64), one device, any strides; 1 <= k <= M.
    Raises TypeError when an operand is not a Tensor or k not an int; the C++ side raises RuntimeError naming the op
    and the operand for the rest (shapes, dtypes, devices, k out of range).
    """
    raise NotImplementedError("a46: call the knn kernel")
