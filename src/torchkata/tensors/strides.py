"""Stride arithmetic shared by b01-07 (reshape), b01-09 (3-D slicing) and m1-core-1 (a strided Tensor class).

A strided tensor is a window on a flat storage: element (i0, i1, ...) lives at storage position
offset + i0*stride0 + i1*stride1 + ... Basic indexing (ints, slices with a step, None, ...) never moves data,
it only computes a new (offset, sizes, strides); torch.as_strided then shows the same storage through it.
A boolean mask picks an irregular set of elements, which no (offset, sizes, strides) describes: it copies.
b01-09's learner writes this module; it is also that exercise's reference.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

Index = int | slice | None | type(Ellipsis) | Tensor


def contiguous_strides(shape: Sequence[int]) -> tuple[int, ...]:
    """Row-major strides of a fresh tensor of `shape`; a size-0 dim counts as 1, as in torch.empty(shape)."""
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= max(size, 1)
    return tuple(reversed(strides))


def _as_tuple(index) -> tuple:
    return index if isinstance(index, tuple) else (index,)


def _check_item(item) -> None:
    if isinstance(item, Tensor):
        if item.dtype != torch.bool:
            raise TypeError(f"only boolean tensors can index here, got a tensor of dtype {item.dtype}")
        if item.dim() == 0:
            raise IndexError("a boolean mask needs at least one dimension")
    elif isinstance(item, bool) or not isinstance(item, (int, slice, type(None), type(Ellipsis))):
        raise TypeError(f"an index must be an int, a slice, None, ... or a boolean mask, got {type(item).__name__}")


def _expand(index: tuple, ndim: int) -> list:
    """The index with `...` spelled out as full slices, so that every item but None consumes one dim; a mask of
    k dims stays one item and consumes k."""
    for item in index:
        _check_item(item)
    if sum(item is Ellipsis for item in index) > 1:
        raise IndexError("an index can only have a single ellipsis (...)")
    consumed = sum(item.dim() if isinstance(item, Tensor) else item is not None for item in index if item is not Ellipsis)
    if consumed > ndim:
        raise IndexError(f"too many indices for tensor of dimension {ndim}: the index uses {consumed}")
    fill = [slice(None)] * (ndim - consumed)
    if Ellipsis not in index:
        return [*index, *fill]
    at = index.index(Ellipsis)
    return [*index[:at], *fill, *index[at + 1:]]


def index_view(shape: Sequence[int], strides: Sequence[int], offset: int, index) -> tuple[int, tuple, tuple]:
    """(offset, sizes, strides) of x[index] for basic indexing: ints, slices (step > 0), None and one `...`."""
    items = _expand(_as_tuple(index), len(shape))
    if any(isinstance(item, Tensor) for item in items):
        raise TypeError("a boolean mask selects a copy, not a view: index_view takes ints, slices, None and ...")
    sizes, new_strides, dim = [], [], 0
    for item in items:
        if item is None:  # a new axis of size 1: never stepped along, so any stride will do
            sizes.append(1)
            new_strides.append(1)
            continue
        size, stride = shape[dim], strides[dim]
        if isinstance(item, int):
            if not -size <= item < size:
                raise IndexError(f"index {item} is out of bounds for dimension {dim} with size {size}")
            offset += (item % size) * stride
        else:
            if item.step is not None and item.step <= 0:
                raise ValueError(f"slice step must be greater than zero, got {item.step}")
            start, stop, step = item.indices(size)
            offset += start * stride
            sizes.append(max(0, -(-(stop - start) // step)))  # ceil((stop - start) / step)
            new_strides.append(stride * step)
        dim += 1
    return offset, tuple(sizes), tuple(new_strides)


def slice_tensor(x: Tensor, index) -> Tensor:
    """x[index] without x[...]: a view through torch.as_strided for basic indexing; a boolean mask (one, of any
    number of dims, anywhere in the index) gathers the selected elements into a copy, as torch does."""
    items = _expand(_as_tuple(index), x.dim())
    masks = [at for at, item in enumerate(items) if isinstance(item, Tensor)]
    if not masks:
        offset, sizes, strides = index_view(x.shape, x.stride(), x.storage_offset(), tuple(items))
        return x.as_strided(sizes, strides, offset)
    if len(masks) > 1:
        raise IndexError(f"only one boolean mask per index is supported, got {len(masks)}")
    (at,) = masks
    mask = items[at]
    # the mask's dims stay whole in the view, at output position `first`
    first = sum(not isinstance(item, int) for item in items[:at])
    view = slice_tensor(x, (*items[:at], *[slice(None)] * mask.dim(), *items[at + 1:]))
    if tuple(view.shape[first:first + mask.dim()]) != tuple(mask.shape):
        raise IndexError(f"the mask of shape {tuple(mask.shape)} does not match the dims it indexes, of shape "
                         f"{tuple(view.shape[first:first + mask.dim()])} in a tensor of shape {tuple(x.shape)}")
    # row-major positions of the True entries within the mask's dims, gathered from those dims flattened into one
    positions = (mask.nonzero() * torch.tensor(contiguous_strides(mask.shape))).sum(1)  # nonzero: (count, dims)
    merged = view.movedim(tuple(range(first, first + mask.dim())), tuple(range(mask.dim())))
    merged = merged.contiguous().as_strided((mask.numel(), *merged.shape[mask.dim():]),
                                            contiguous_strides((mask.numel(), *merged.shape[mask.dim():])))
    return merged.index_select(0, positions).movedim(0, first)
