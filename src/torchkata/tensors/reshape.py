"""b01-07: reshape and flatten by hand, as views wherever torch makes a view and copies only where it must.

A reshape keeps the elements in row-major order. On a contiguous tensor any shape with the same number of
elements is a view with fresh row-major strides. On a strided one it is a view only if each group of old dims
that merge or split was itself laid out like a contiguous block; `view_strides` walks the old dims from the
last, in chunks of dims that are contiguous with each other, and fits the new dims into each chunk (torch's own
algorithm, ATen's computeStride). Where no strides exist, the result is a row-major copy.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

from torchkata.tensors.strides import contiguous_strides


def infer_shape(shape: Sequence[int], numel: int) -> tuple[int, ...]:
    """`shape` with its one -1 (if any) replaced by the size that makes it hold `numel` elements."""
    shape = tuple(shape)
    if shape.count(-1) > 1:
        raise RuntimeError(f"only one dimension can be inferred (-1), got shape {list(shape)}")
    for size in shape:
        if size < -1:
            raise RuntimeError(f"invalid shape dimension {size} in shape {list(shape)}")
    known = math.prod(size for size in shape if size != -1)
    if -1 in shape:
        if known == 0:
            raise RuntimeError(f"cannot reshape a tensor of {numel} elements into shape {list(shape)}: the -1 is "
                               "ambiguous next to a size 0")
        if numel % known:
            raise RuntimeError(f"shape {list(shape)} is invalid for input of size {numel}")
        return tuple(numel // known if size == -1 else size for size in shape)
    if known != numel:
        raise RuntimeError(f"shape {list(shape)} is invalid for input of size {numel}")
    return shape


def view_strides(shape: Sequence[int], strides: Sequence[int], new_shape: Sequence[int]) -> tuple[int, ...] | None:
    """Strides that show the elements of a (shape, strides) tensor in `new_shape` without moving them, or None
    where no strides can. `new_shape` holds the same number of elements (no -1)."""
    if not shape:  # a 0-d tensor: its one element, in any shape of ones
        return (1,) * len(new_shape)
    if math.prod(shape) == 0:  # no element to place: keep the strides if nothing changes, else fresh ones
        return tuple(strides) if tuple(shape) == tuple(new_shape) else contiguous_strides(new_shape)
    new_strides = [0] * len(new_shape)
    view_dim = len(new_shape) - 1
    chunk_stride, chunk_numel, view_numel = strides[-1], 1, 1
    for dim in range(len(shape) - 1, -1, -1):
        chunk_numel *= shape[dim]
        # a chunk ends where the next dim to the left does not continue it contiguously (size 1 always does)
        if dim == 0 or (shape[dim - 1] != 1 and strides[dim - 1] != chunk_numel * chunk_stride):
            while view_dim >= 0 and (view_numel < chunk_numel or new_shape[view_dim] == 1):
                new_strides[view_dim] = view_numel * chunk_stride
                view_numel *= new_shape[view_dim]
                view_dim -= 1
            if view_numel != chunk_numel:  # a new dim straddles two chunks: not a view
                return None
            if dim:  # the next chunk starts at dim - 1
                chunk_stride, chunk_numel, view_numel = strides[dim - 1], 1, 1
    return tuple(new_strides)


def reshape(x: Tensor, shape: Sequence[int]) -> Tensor:
    """x's elements in row-major order, in `shape` (one -1 is inferred): a view of x where one exists, else a copy."""
    new_shape = infer_shape(shape, x.numel())
    strides = view_strides(x.shape, x.stride(), new_shape)
    if strides is not None:
        return x.as_strided(new_shape, strides, x.storage_offset())
    out = torch.empty(new_shape, dtype=x.dtype, device=x.device)
    out.as_strided(x.shape, contiguous_strides(x.shape)).copy_(x)  # x's elements, in row-major order
    return out


def _dim(dim: int, ndim: int, name: str) -> int:
    rank = max(ndim, 1)  # a 0-d tensor takes dims 0 and -1, as torch does
    if not -rank <= dim < rank:
        raise IndexError(f"{name}={dim} is out of range for a tensor of dimension {ndim}")
    return dim % rank


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Dims start_dim..end_dim (inclusive, negative allowed) merged into one; x itself when there is nothing to merge."""
    start, end = _dim(start_dim, x.dim(), "start_dim"), _dim(end_dim, x.dim(), "end_dim")
    if start > end:
        raise RuntimeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    if not x.dim():
        return reshape(x, (1,))
    if start == end:
        return x
    shape = tuple(x.shape)
    return reshape(x, (*shape[:start], math.prod(shape[start:end + 1]), *shape[end + 1:]))
