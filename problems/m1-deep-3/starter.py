"""m1-deep-3: gradient checkpointing. Save a segment's input only, and recompute the segment in backward.

Grade it:  torchkata check m1-deep-3
"""
from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import Tensor, nn


class CheckpointFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, segment: nn.Module, x: Tensor, *params: Tensor) -> Tensor:
        """segment(x) without saving its activations (torch.no_grad()); save x for backward, and the RNG state so
        that dropout can draw the same masks again. `params` are the segment's parameters, passed in so that
        backward can return their gradients."""
        raise NotImplementedError("m1-deep-3: write CheckpointFunction.forward")

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        """Recompute segment(x) with gradients on and the saved RNG state (in a forked RNG: the global one must not
        move), and backpropagate grad_out through it: None for the segment, then the gradients of x and of each
        parameter (None for those that need none or are unused)."""
        raise NotImplementedError("m1-deep-3: write CheckpointFunction.backward")


def checkpoint(segment: nn.Module, x: Tensor) -> Tensor:
    """segment(x) through CheckpointFunction."""
    raise NotImplementedError("m1-deep-3: write checkpoint")


def checkpoint_sequential(blocks: nn.Sequential, segments: int, x: Tensor) -> Tensor:
    """blocks(x), cut into `segments` consecutive runs of blocks, each checkpointed. Sizes differ by at most one,
    the longer first (5 blocks in 2: 3 + 2). torch.utils.checkpoint is off limits. ValueError naming segments
    and the number of blocks unless 1 <= segments <= len(blocks)."""
    raise NotImplementedError("m1-deep-3: write checkpoint_sequential")


def saved_activation_bytes(fn: Callable[[], Tensor], parameters: Iterable[Tensor] = ()) -> tuple[Tensor, int]:
    """(fn(), the bytes of the tensors fn's forward pass saved for backward), counted with
    torch.autograd.graph.saved_tensors_hooks: each storage once (untyped_storage().nbytes()), leaving out the
    storages of `parameters`. The saved tensors must still work for backward."""
    raise NotImplementedError("m1-deep-3: write saved_activation_bytes")
