"""m1-core-1: a Tensor class with stride-based views, on a flat torch storage.

A Tensor is (storage, shape, strides, offset): element (i0, i1, ...) is storage[offset + i0*s0 + i1*s1 + ...].
Every view operation (indexing, transpose, permute, expand, view) computes a new (shape, strides, offset) and
returns a Tensor on the *same* storage object; only `contiguous()` of a non-contiguous tensor allocates. The stride
arithmetic of indexing is b01-09's (torchkata.tensors.strides), that of view b01-07's (torchkata.tensors.reshape).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from torchkata.tensors.reshape import infer_shape, view_strides
from torchkata.tensors.strides import contiguous_strides, index_view


class Tensor:
    def __init__(self, storage: torch.Tensor, shape: Sequence[int], strides: Sequence[int] | None = None,
                 offset: int = 0):
        if storage.dim() != 1:
            raise ValueError(f"the storage must be a 1-D torch tensor, got shape {tuple(storage.shape)}")
        self.storage, self.shape, self.offset = storage, tuple(shape), offset
        self.strides = contiguous_strides(self.shape) if strides is None else tuple(strides)
        if len(self.strides) != len(self.shape):
            raise ValueError(f"{len(self.strides)} strides for a shape of {len(self.shape)} dims")
        if offset < 0 or min(self.strides, default=0) < 0:
            raise ValueError(f"offset {offset} and strides {self.strides} must not be negative")
        last = offset + sum((size - 1) * stride for size, stride in zip(self.shape, self.strides))
        if self.numel() and last >= len(storage):
            raise ValueError(f"shape {self.shape}, strides {self.strides} and offset {offset} reach position {last} "
                             f"of a storage of {len(storage)} elements")

    @classmethod
    def from_torch(cls, data: torch.Tensor) -> Tensor:
        """A contiguous Tensor holding a copy of `data`'s elements."""
        return cls(data.detach().clone().flatten(), data.shape)

    def to_torch(self) -> torch.Tensor:
        """The same elements as a torch tensor sharing this storage."""
        return torch.as_strided(self.storage, self.shape, self.strides, self.offset)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def numel(self) -> int:
        return math.prod(self.shape)

    def _dim(self, dim: int) -> int:
        if not -self.ndim <= dim < self.ndim:
            raise IndexError(f"dim {dim} is out of range for a tensor of {self.ndim} dims")
        return dim % self.ndim

    def __getitem__(self, index) -> Tensor:
        offset, shape, strides = index_view(self.shape, self.strides, self.offset, index)
        return Tensor(self.storage, shape, strides, offset)

    def permute(self, *dims: int) -> Tensor:
        order = [self._dim(d) for d in dims]
        if sorted(order) != list(range(self.ndim)):
            raise ValueError(f"permute needs each of the {self.ndim} dims once, got {dims}")
        return Tensor(self.storage, [self.shape[d] for d in order], [self.strides[d] for d in order], self.offset)

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        order = list(range(self.ndim))
        a, b = self._dim(dim0), self._dim(dim1)
        order[a], order[b] = b, a
        return self.permute(*order)

    def expand(self, *sizes: int) -> Tensor:
        """Size-1 dims repeated `size` times with stride 0 (no copy); new leading dims too; -1 keeps a size."""
        if len(sizes) < self.ndim:
            raise ValueError(f"expand to {sizes} has fewer dims than the tensor's shape {self.shape}")
        lead = len(sizes) - self.ndim
        shape, strides = [], []
        for i, size in enumerate(sizes):
            old_size, old_stride = (self.shape[i - lead], self.strides[i - lead]) if i >= lead else (1, 0)
            if size == -1 and i >= lead:
                size = old_size
            if size < 0 or (old_size != 1 and size != old_size):
                raise ValueError(f"cannot expand shape {self.shape} to {sizes}: dim {i} of size {old_size} to {size}")
            shape.append(size)
            strides.append(old_stride if size == old_size else 0)
        return Tensor(self.storage, shape, strides, self.offset)

    def is_contiguous(self) -> bool:
        """Row-major with no gaps; a size-1 dim's stride does not matter, nor anything in an empty tensor."""
        expected = 1
        for size, stride in reversed(list(zip(self.shape, self.strides))):
            if size != 1 and stride != expected:
                return not self.numel()
            expected *= size
        return True

    def contiguous(self) -> Tensor:
        """Self if already contiguous, else a copy of the elements into a fresh row-major storage."""
        if self.is_contiguous():
            return self
        positions = torch.tensor(self.offset)  # storage position of every element, in row-major order
        for size, stride in zip(self.shape, self.strides):
            positions = positions.unsqueeze(-1) + torch.arange(size) * stride
        return Tensor(self.storage.take(positions.flatten()), self.shape)

    def view(self, *shape: int) -> Tensor:
        new_shape = infer_shape(shape, self.numel())
        strides = view_strides(self.shape, self.strides, new_shape)
        if strides is None:
            raise RuntimeError(f"view {new_shape} of shape {self.shape} with strides {self.strides} needs a copy: "
                               "call contiguous() first")
        return Tensor(self.storage, new_shape, strides, self.offset)

    def __repr__(self) -> str:
        return f"Tensor(shape={self.shape}, strides={self.strides}, offset={self.offset})"
