"""a18: a memory-minimal training loop, and the instrument that measures it.

Three savings, each leaving every loss and gradient as it was:
- gradient checkpointing (torch.utils.checkpoint): the network's layers in `segments` runs, each run's forward
  keeping only its input; backward runs it again to get the activations it needs. Activation memory falls from one
  tensor per layer to one per segment plus one segment's worth, for one more forward pass;
- optimizer.zero_grad(set_to_none=True) at the top of a step: the gradients of the last step are freed instead of
  zeroed, so they are not held through the next forward (where activations peak), and backward writes new ones;
- in-place ReLU, where nothing else needs its input: after a Linear, whose backward keeps the Linear's input, not its
  output. ReLU's backward needs only its own output, so overwriting the input is safe and allocates nothing.

    model = MemoryMinimalMLP(64, 256, depth=8, classes=10, inplace=True, segments=3)
    with PeakMemory() as memory:
        losses = train_steps(model, optimizer, batches, set_to_none=True)
    memory.peak_bytes   # the most tensor storage alive at once, allocated under the mode

On CPU there is no torch.cuda.max_memory_allocated. PeakMemory is a TorchDispatchMode: it sees every op, forward and
backward (autograd carries the mode into the backward pass), counts the bytes of each storage an op creates (a view
or an in-place result reuses its input's and costs nothing) and subtracts them when the storage is freed (a weakref
callback: Python frees a storage the moment its last tensor goes). The figure is exact and deterministic, so it can be
compared bitwise and checked against a hand count; unlike the allocator it ignores kernels' private scratch buffers
and storage created before the mode (parameters, data), which is what a training step adds that we want.
"""
from __future__ import annotations

import weakref
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.checkpoint import checkpoint_sequential


class PeakMemory(TorchDispatchMode):
    """Live and peak bytes of the tensor storage that ops allocate while the mode is on."""

    def __init__(self):
        super().__init__()
        self.live_bytes = self.peak_bytes = 0
        self._sizes: dict[int, int] = {}  # data pointer -> bytes of the storages alive that this mode counted

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        inputs = {t.untyped_storage().data_ptr() for t in tree_leaves((args, kwargs)) if isinstance(t, Tensor)}
        out = func(*args, **kwargs)
        for t in tree_leaves(out):
            if isinstance(t, Tensor):
                self._count(t.untyped_storage(), inputs)
        return out

    def _count(self, storage, inputs: set[int]) -> None:
        pointer, size = storage.data_ptr(), storage.nbytes()
        if pointer in inputs or pointer in self._sizes:  # a view or an in-place result, or counted already
            return
        self._sizes[pointer] = size
        self.live_bytes += size
        self.peak_bytes = max(self.peak_bytes, self.live_bytes)
        weakref.finalize(storage, self._free, pointer)

    def _free(self, pointer: int) -> None:
        self.live_bytes -= self._sizes.pop(pointer)


class MemoryMinimalMLP(nn.Module):
    """`blocks`: depth blocks of [Linear, ReLU] (the first from features to width, the others width to width), then
    `head`, Linear(width, classes); initialised as nn.Linear's from the global seed. `inplace`: the ReLUs overwrite
    their input. `segments` > 0: the forward runs the blocks through
    torch.utils.checkpoint.checkpoint_sequential in that many segments (non-reentrant). The segments are cut between
    blocks, never between a Linear and its ReLU: a segment keeps its input for the recomputation, and an in-place
    ReLU at its start would overwrite it."""

    def __init__(self, features: int, width: int, depth: int, classes: int, *, inplace: bool = False,
                 segments: int = 0):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        if not 0 <= segments <= depth:
            raise ValueError(f"segments must be between 0 and depth {depth}, got {segments}")
        self.blocks = nn.Sequential(*(nn.Sequential(nn.Linear(features if i == 0 else width, width),
                                                    nn.ReLU(inplace=inplace)) for i in range(depth)))
        self.head = nn.Linear(width, classes)
        self.segments = segments

    def forward(self, x: Tensor) -> Tensor:
        if self.segments:
            return self.head(checkpoint_sequential(self.blocks, self.segments, x, use_reentrant=False))
        return self.head(self.blocks(x))


def train_steps(model: nn.Module, optimizer: torch.optim.Optimizer, batches: Iterable[tuple[Tensor, Tensor]], *,
                set_to_none: bool = True) -> list[float]:
    """One optimizer step per (inputs, class targets) batch on the cross-entropy, the gradients cleared at the top of
    each step with zero_grad(set_to_none); returns each step's loss."""
    losses = []
    for inputs, targets in batches:
        optimizer.zero_grad(set_to_none=set_to_none)
        loss = F.cross_entropy(model(inputs), targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
