"""b01-01: matrix multiplication without torch.mm. Write `matmul_naive` and `matmul` from elementwise products,
sums, indexing and slicing only.

Grade it:  torchkata check b01-01
"""
from __future__ import annotations

from torch import Tensor

BLOCK_BYTES = 1 << 24  # 16 MiB


def matmul_naive(a: Tensor, b: Tensor) -> Tensor:
    """a @ b for an (n, k) and a (k, m) matrix by broadcasting: all n * k * m products at once, then a sum.

    Raise ValueError naming both shapes unless both are matrices with matching inner sizes, TypeError naming both
    dtypes when they differ.
    """
    raise NotImplementedError("b01-01: write matmul_naive")


def matmul(a: Tensor, b: Tensor, block_bytes: int = BLOCK_BYTES) -> Tensor:
    """a @ b like matmul_naive, but no tensor it creates is larger than max(block_bytes, the output), and each
    slab of products uses more than half of block_bytes (or one row of products, where block_bytes is smaller).

    Same errors as matmul_naive, and ValueError naming `block_bytes` unless it is positive.
    """
    raise NotImplementedError("b01-01: write matmul")
