"""m1-deep-3: gradient checkpointing, activation memory traded for a second forward pass.

Backward needs what each op saved in the forward pass (a Linear its input, a ReLU its output): for a deep network
those activations are most of training's memory. Checkpointing runs a segment of the network without saving them,
keeps only the segment's input, and in backward runs the segment again, this time saving, to backpropagate through
it. Cut n blocks into s segments: the saved memory falls from n blocks' activations to s segment inputs plus one
segment's activations during its recomputation, at the cost of one more forward pass (about a third more compute).

    out = checkpoint_sequential(blocks, segments=4, x=x)       # like torch.utils.checkpoint.checkpoint_sequential
    out, saved = saved_activation_bytes(lambda: model(x), model.parameters())  # what the forward keeps for backward

Dropout draws random numbers: the recomputation must draw the same ones, so the segment's forward saves the RNG
state and its recomputation restores it (in a forked RNG, leaving the global one where it was).
"""
from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import Tensor, nn


class CheckpointFunction(torch.autograd.Function):
    """segment(x) saving only x; backward recomputes segment(x) with gradients on and backpropagates through it.
    The segment's parameters are inputs of the Function, so that their gradients are returned from backward."""

    @staticmethod
    def forward(ctx, segment: nn.Module, x: Tensor, *params: Tensor) -> Tensor:
        ctx.segment = segment
        ctx.rng_state = torch.get_rng_state()
        ctx.save_for_backward(x)
        with torch.no_grad():
            return segment(x)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        (x,) = ctx.saved_tensors
        x = x.detach().requires_grad_(x.requires_grad)
        params = [p for p in ctx.segment.parameters()]
        with torch.random.fork_rng(devices=[]), torch.enable_grad():
            torch.set_rng_state(ctx.rng_state)
            out = ctx.segment(x)
        wanted = [t for t in (x, *params) if t.requires_grad]
        grads = iter(torch.autograd.grad(out, wanted, grad_out, allow_unused=True))
        return None, *(next(grads) if t.requires_grad else None for t in (x, *params))


def checkpoint(segment: nn.Module, x: Tensor) -> Tensor:
    """segment(x) through CheckpointFunction: the same value and gradients, only x saved for backward."""
    return CheckpointFunction.apply(segment, x, *segment.parameters())


def checkpoint_sequential(blocks: nn.Sequential, segments: int, x: Tensor) -> Tensor:
    """blocks(x) cut into `segments` consecutive runs of blocks (sizes differ by at most one, the longer first), each
    checkpointed."""
    if not 1 <= segments <= len(blocks):
        raise ValueError(f"segments must be between 1 and the number of blocks {len(blocks)}, got {segments}")
    size, extra = divmod(len(blocks), segments)
    start = 0
    for i in range(segments):
        stop = start + size + (i < extra)
        x = checkpoint(blocks[start:stop], x)
        start = stop
    return x


def saved_activation_bytes(fn: Callable[[], Tensor], parameters: Iterable[Tensor] = ()) -> tuple[Tensor, int]:
    """fn()'s result and the bytes of the tensors its forward pass saved for backward, each storage counted once (a
    ReLU's output that the next Linear saves as its input is one tensor), those of `parameters` left out (a Linear
    saves a transposed view of its weight: the storage tells it apart, not the object)."""
    seen = {p.untyped_storage().data_ptr() for p in parameters}
    total = 0

    def pack(t: Tensor) -> Tensor:
        nonlocal total
        storage = t.untyped_storage()
        if storage.data_ptr() not in seen:
            seen.add(storage.data_ptr())
            total += storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, total
