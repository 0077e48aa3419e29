"""a18: a memory-minimal training loop (gradient checkpointing with torch.utils.checkpoint, zero_grad(set_to_none),
in-place activations where safe) and the instrument that measures its peak memory on a CPU.

Grade it:  torchkata check a18
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode


class PeakMemory(TorchDispatchMode):
    """Used as `with PeakMemory() as memory: ...`: `memory.live_bytes` is the bytes of tensor storage allocated by ops
    under the mode and not yet freed, `memory.peak_bytes` the most of it alive at once. Count each new storage once,
    when an op creates it: a view or an in-place result shares its input's storage and costs nothing, nor does
    anything allocated before the mode. Subtract a storage's bytes when it is freed (weakref.finalize on
    tensor.untyped_storage() tells you when). Forward and backward ops alike pass through __torch_dispatch__.
    Off limits: torch.profiler, torch.cuda's memory functions, torch.distributed._tools."""

    def __init__(self):
        super().__init__()
        self.live_bytes = self.peak_bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        raise NotImplementedError("a18: write PeakMemory.__torch_dispatch__")


class MemoryMinimalMLP(nn.Module):
    """`self.blocks`: an nn.Sequential of `depth` blocks, each an nn.Sequential(nn.Linear, nn.ReLU(inplace=inplace)),
    the first Linear(features, width), the others Linear(width, width); then `self.head` = Linear(width, classes).
    Build them in that order after the global seed, so that the initialisation is nn.Linear's, in order.
    `self.segments` = segments: with segments > 0 the forward runs the blocks through
    torch.utils.checkpoint.checkpoint_sequential(blocks, segments, x, use_reentrant=False), and must give the values
    and gradients of the plain forward, with in-place ReLUs too. ValueError naming depth unless depth >= 1, naming
    segments unless 0 <= segments <= depth."""

    def __init__(self, features: int, width: int, depth: int, classes: int, *, inplace: bool = False,
                 segments: int = 0):
        super().__init__()
        raise NotImplementedError("a18: write MemoryMinimalMLP")

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError("a18: write MemoryMinimalMLP.forward")


def train_steps(model: nn.Module, optimizer: torch.optim.Optimizer, batches: Iterable[tuple[Tensor, Tensor]], *,
                set_to_none: bool = True) -> list[float]:
    """For each (inputs, class targets) batch: optimizer.zero_grad(set_to_none=set_to_none), cross-entropy of
    model(inputs), backward, optimizer.step(). Return each step's loss as a Python float."""
    raise NotImplementedError("a18: write train_steps")
