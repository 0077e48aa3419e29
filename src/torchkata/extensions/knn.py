"""a46: the k nearest neighbours of point clouds by a hand-written kernel (csrc/knn: the CPU twin, reference tiles
sized for L1 and blocks of queries split over threads, and the CUDA kernel with reference tiles in shared memory and
each query's top-k in a local array), registered as the operator `torch.ops.torchkata.knn`.

Not batched: one cloud of queries [N, D] against one cloud of reference points [M, D] (a batch of clouds is a loop,
or one call on clouds offset far apart). The distances are squared Euclidean, computed as sum((q - r)^2) (not
|q|^2 - 2 q.r + |r|^2, which loses the small distances to cancellation). Ties go to the lower reference index.
"""
from __future__ import annotations

from functools import lru_cache

from torch import Tensor

from torchkata.pipeline import extensions


@lru_cache(maxsize=None)
def ops(library_path: str | None = None):
    return extensions.load("knn", library_path)


def knn(query: Tensor, reference: Tensor, k: int, library_path: str | None = None) -> tuple[Tensor, Tensor]:
    """(squared distances [N, k], int64 indices into reference [N, k]) of the k reference points nearest to each
    query point, each row sorted by distance ascending, equal distances by index ascending.

    query [N, D] and reference [M, D]: one floating dtype (float32 or float64), one device, any strides; 1 <= k <= M.
    Raises TypeError when an operand is not a Tensor or k not an int; the C++ side raises RuntimeError naming the op
    and the operand for the rest (shapes, dtypes, devices, k out of range).
    """
    for name, t in (("query", query), ("reference", reference)):
        if not isinstance(t, Tensor):
            raise TypeError(f"knn: {name} must be a Tensor, got {type(t).__name__}")
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"knn: k must be an int, got {type(k).__name__}")
    return ops(library_path).knn(query, reference, k)
