"""b01-09: slicing 3-D tensors by hand. Turn an index into (offset, sizes, strides) and show x's storage through
it with torch.as_strided; gather a boolean mask's elements into a copy. Off limits: indexing a tensor with [],
.narrow, .select, .unsqueeze.

Grade it:  torchkata check b01-09
"""
from __future__ import annotations

from typing import Sequence

from torch import Tensor


def contiguous_strides(shape: Sequence[int]) -> tuple[int, ...]:
    """Row-major strides of a fresh tensor of `shape` (as torch.empty(shape).stride(); a size-0 dim counts as 1)."""
    raise NotImplementedError("b01-09: write contiguous_strides")


def index_view(shape: Sequence[int], strides: Sequence[int], offset: int, index) -> tuple[int, tuple, tuple]:
    """(storage offset, sizes, strides) of x[index], for x = (shape, strides, offset) and a basic index: an int
    (negative counts from the end), a slice (step > 0; ends may lie outside), None (a new dim of size 1), one
    `...`, or a tuple of these. IndexError for an int out of range (name it, its dim and the size), too many
    indices (name the tensor's dimension), two `...`; ValueError for a step <= 0 (name it); TypeError for
    anything else, a boolean mask included (a mask does not give a view)."""
    raise NotImplementedError("b01-09: write index_view")


def slice_tensor(x: Tensor, index) -> Tensor:
    """x[index] without indexing x: a view (x.as_strided) for a basic index; with one boolean mask (of 1 or more
    dims, anywhere in the index) a copy of the selected elements, placed where torch places them. IndexError
    naming both shapes when the mask does not fit the dims it covers, for a 0-d mask, or for a second mask;
    TypeError naming the dtype for an integer tensor index."""
    raise NotImplementedError("b01-09: write slice_tensor")
