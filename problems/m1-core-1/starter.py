"""m1-core-1: a Tensor class with stride-based views on a flat torch storage. Compute every view's
(shape, strides, offset) yourself; torch.as_strided is for to_torch() only.

Grade it:  torchkata check m1-core-1
"""
from __future__ import annotations

from typing import Sequence

import torch


class Tensor:
    def __init__(self, storage: torch.Tensor, shape: Sequence[int], strides: Sequence[int] | None = None,
                 offset: int = 0):
        """A view of the 1-D `storage`: element (i0, i1, ...) is storage[offset + i0*strides[0] + ...].

        Keep `storage` itself (the same object) in self.storage, and tuples in self.shape and self.strides
        (row-major strides when None, as torch.empty(shape).stride()), and self.offset. ValueError, naming what is
        wrong, for a storage that is not 1-D, strides of the wrong length, a negative offset or stride, or a view
        that reaches past the storage's end (name the position it reaches and the storage's length)."""
        raise NotImplementedError("m1-core-1: write Tensor.__init__")

    @classmethod
    def from_torch(cls, data: torch.Tensor) -> "Tensor":
        """A contiguous Tensor on a fresh storage holding a copy of `data`'s elements."""
        raise NotImplementedError("m1-core-1: write Tensor.from_torch")

    def to_torch(self) -> torch.Tensor:
        """The same elements as a torch tensor on the same storage (torch.as_strided)."""
        raise NotImplementedError("m1-core-1: write Tensor.to_torch")

    @property
    def ndim(self) -> int:
        raise NotImplementedError("m1-core-1: write Tensor.ndim")

    def numel(self) -> int:
        raise NotImplementedError("m1-core-1: write Tensor.numel")

    def __getitem__(self, index) -> "Tensor":
        """Basic indexing (ints, slices with a step > 0, negative indices, None, ...): a view on the same storage."""
        raise NotImplementedError("m1-core-1: write Tensor.__getitem__")

    def permute(self, *dims: int) -> "Tensor":
        """Dims reordered (negative dims allowed): a view. ValueError unless each dim appears once; IndexError naming
        a dim out of range."""
        raise NotImplementedError("m1-core-1: write Tensor.permute")

    def transpose(self, dim0: int, dim1: int) -> "Tensor":
        raise NotImplementedError("m1-core-1: write Tensor.transpose")

    def expand(self, *sizes: int) -> "Tensor":
        """Size-1 dims (and new leading dims) repeated with stride 0, -1 keeping an existing size; ValueError naming
        the shapes otherwise."""
        raise NotImplementedError("m1-core-1: write Tensor.expand")

    def is_contiguous(self) -> bool:
        """As torch decides: row-major strides on every dim of size > 1; an empty tensor is contiguous."""
        raise NotImplementedError("m1-core-1: write Tensor.is_contiguous")

    def contiguous(self) -> "Tensor":
        """Self if contiguous, else a copy into a fresh row-major storage."""
        raise NotImplementedError("m1-core-1: write Tensor.contiguous")

    def view(self, *shape: int) -> "Tensor":
        """The same elements in `shape` (one -1 inferred) without a copy; RuntimeError where torch's view refuses."""
        raise NotImplementedError("m1-core-1: write Tensor.view")
