"""a03: broadcasting by hand (shared by b01-03, b01-04 and m1-core-3).

Two shapes broadcast when, aligned on their last dims, each pair of sizes is equal or one of them is 1; the
missing leading dims of the shorter shape count as 1. The result takes the larger size of each pair.

Expanding a tensor to the broadcast shape copies nothing: a dim of size 1 (or a dim that does not exist yet)
gets stride 0, so every index along it reads the same element of the original storage. `as_strided` makes
exactly that view.
"""
from __future__ import annotations

from typing import Sequence, Union

import torch
from torch import Tensor

Shape = Union[int, Sequence[int]]


def _as_tuple(shape: Shape) -> tuple[int, ...]:
    """A shape as a tuple; a bare int is a 1-D shape, as torch takes it."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    if any(size < 0 for size in shape):
        raise ValueError(f"shape {shape} has a negative size")
    return shape


def broadcast_shapes(*shapes: Shape) -> torch.Size:
    """The shape that all `shapes` broadcast to; RuntimeError naming the two clashing shapes if there is none."""
    shapes = [_as_tuple(shape) for shape in shapes]
    ndim = max((len(shape) for shape in shapes), default=0)
    result = [1] * ndim
    source = [()] * ndim  # the shape that set each size, to name it in the error
    for shape in shapes:
        for i, size in enumerate(shape, start=ndim - len(shape)):  # right-aligned
            if size == 1 or size == result[i]:
                continue
            if result[i] != 1:
                raise RuntimeError(f"shapes {source[i]} and {shape} cannot be broadcast: sizes {result[i]} and {size} "
                                   "meet in one dim")
            result[i], source[i] = size, shape
    return torch.Size(result)


def expand(x: Tensor, shape: Shape) -> Tensor:
    """A view of `x` with shape `shape`, broadcast dims at stride 0: no data is copied."""
    shape = _as_tuple(shape)
    new = len(shape) - x.dim()  # leading dims that x does not have
    if new < 0 or any(size not in (1, target) for size, target in zip(x.shape, shape[new:])):
        raise RuntimeError(f"cannot expand shape {tuple(x.shape)} to {shape}")
    strides = [0] * new + [stride if size == target else 0
                           for size, target, stride in zip(x.shape, shape[new:], x.stride())]
    return x.as_strided(shape, strides, x.storage_offset())


def broadcast_tensors(*tensors: Tensor) -> tuple[Tensor, ...]:
    """Every tensor expanded to the common broadcast shape, as views of its own storage."""
    shape = broadcast_shapes(*(t.shape for t in tensors))
    return tuple(expand(t, shape) for t in tensors)
