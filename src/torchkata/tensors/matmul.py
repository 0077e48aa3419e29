"""b01-01: matrix multiplication by hand, from elementwise products and sums (no matrix-product op).

C[i, j] = sum_k A[i, k] * B[k, j]. With broadcasting that is one line, `(A[:, :, None] * B[None]).sum(1)`, and it
materialises every product A[i, k] * B[k, j] at once: n * k * m elements, 4 GiB for two 1024 x 1024 float32
matrices. The blocked version computes the same sums a slab of k at a time and adds the slabs up, so its largest
temporary is bounded by `block_bytes` whatever the size; only the output grows with the matrices.
"""
from __future__ import annotations

import torch
from torch import Tensor

BLOCK_BYTES = 1 << 24  # 16 MiB: few Python steps per product, and nothing next to the naive version's n * k * m


def check_operands(a: Tensor, b: Tensor) -> None:
    if a.dim() != 2 or b.dim() != 2:
        raise ValueError(f"matmul needs two matrices, got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be multiplied")
    if a.dtype != b.dtype:
        raise TypeError(f"matmul needs one dtype, got {a.dtype} and {b.dtype}")


def matmul_naive(a: Tensor, b: Tensor) -> Tensor:
    """The product of a and b by broadcasting: every product at once (n * k * m elements), then a sum over k."""
    check_operands(a, b)
    return (a[:, :, None] * b[None]).sum(1)


def matmul(a: Tensor, b: Tensor, block_bytes: int = BLOCK_BYTES) -> Tensor:
    """The product of a and b with no temporary above `block_bytes` (beyond one row of products): tiles of rows times slabs of k."""
    check_operands(a, b)
    if block_bytes <= 0:
        raise ValueError(f"block_bytes must be positive, got {block_bytes}")
    n, k, m = a.shape[0], a.shape[1], b.shape[1]
    row_bytes = max(m, 1) * a.element_size()  # the products of one element of a with one row of b
    depth = max(1, min(k, block_bytes // row_bytes))  # rows of b per slab
    rows = max(1, block_bytes // (depth * row_bytes))  # rows of a per tile
    out = a.new_zeros(n, m)
    for i in range(0, n, rows):
        tile = out[i:i + rows]
        for j in range(0, k, depth):
            tile += (a[i:i + rows, j:j + depth, None] * b[None, j:j + depth]).sum(1)
    return out
