"""b01-07: reshape and flatten by hand. Make a view (torch.as_strided on the input) wherever torch would, and a
copy only where no strides can show the elements in the new shape. Off limits: .reshape, .view, .flatten,
.contiguous, torch.reshape, torch.flatten.

Grade it:  torchkata check b01-07
"""
from __future__ import annotations

from typing import Sequence

from torch import Tensor


def infer_shape(shape: Sequence[int], numel: int) -> tuple[int, ...]:
    """`shape` with its one -1 (if any) replaced by the size that makes it hold `numel` elements.

    RuntimeError (naming the problem) for two -1s, a size below -1, a -1 next to a 0, or a shape that does not
    hold `numel` elements."""
    raise NotImplementedError("b01-07: write infer_shape")


def view_strides(shape: Sequence[int], strides: Sequence[int], new_shape: Sequence[int]) -> tuple[int, ...] | None:
    """Strides that show the elements of a (shape, strides) tensor, in row-major order, in `new_shape` without
    moving them; None where none exist. Must agree with torch's choice (x.view succeeds exactly when this is not
    None, with the same strides on every dim of size > 1)."""
    raise NotImplementedError("b01-07: write view_strides")


def reshape(x: Tensor, shape: Sequence[int]) -> Tensor:
    """x's elements in row-major order, in `shape` (one -1 inferred): a view of x (same storage) where torch.reshape
    makes one, else a fresh contiguous copy."""
    raise NotImplementedError("b01-07: write reshape")


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Dims start_dim..end_dim (inclusive, negative allowed) merged into one, like torch.flatten: x itself when
    start and end are the same dim, shape (1,) for a 0-d x; RuntimeError if start comes after end, IndexError
    naming a dim that is out of range."""
    raise NotImplementedError("b01-07: write flatten")
