"""a03: broadcasting by hand. Write broadcast_shapes, expand and broadcast_tensors without torch.broadcast_shapes,
torch.broadcast_tensors, torch.broadcast_to, Tensor.expand or Tensor.expand_as.

Grade it:  torchkata check a03
"""
from __future__ import annotations

from typing import Sequence, Union

import torch
from torch import Tensor

Shape = Union[int, Sequence[int]]


def broadcast_shapes(*shapes: Shape) -> torch.Size:
    """The shape that all `shapes` broadcast to, as a torch.Size (a bare int is a 1-D shape; no shapes gives ()).

    Shapes that cannot be broadcast raise RuntimeError whose message names the two clashing shapes, e.g.
    "shapes (2, 3) and (4,) cannot be broadcast"; a negative size raises ValueError that says "negative".
    """
    raise NotImplementedError("a03: write broadcast_shapes")


def expand(x: Tensor, shape: Shape) -> Tensor:
    """A view of `x` broadcast to `shape` that copies nothing (hint: Tensor.as_strided).

    Broadcast dims get stride 0, the other dims keep x's strides, and the view keeps x's storage offset.
    A shape `x` cannot be expanded to raises RuntimeError naming both shapes.
    """
    raise NotImplementedError("a03: write expand")


def broadcast_tensors(*tensors: Tensor) -> tuple[Tensor, ...]:
    """Every tensor expanded to the common broadcast shape, each a view of its own storage."""
    raise NotImplementedError("a03: write broadcast_tensors")
