"""m4-deep-3: a simulator of PyTorch's CUDA caching allocator, and a recorder of a real allocation trace to replay
through it. The rules to follow are in the README (and in c10/cuda/CUDACachingAllocator.cpp).
Grade it:  torchkata check m4-deep-3
"""
from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode


class Block:
    """A block of a segment: `address` (bytes from the simulated address 0), `size`, the segment's `pool` ("small" or
    "large"), whether it is `allocated`, the bytes `requested` for it, and its neighbours in the segment."""

    def __init__(self, address: int, size: int, segment: int, pool: str, prev: Block | None = None,
                 next: Block | None = None):
        self.address, self.size, self.segment, self.pool = address, size, segment, pool
        self.prev, self.next = prev, next
        self.allocated, self.requested = False, 0


class CachingAllocator:
    """The allocator's bookkeeping with simulated addresses (segments laid one after another from address 0).

    `segments`: a list of (address, size, pool) of every segment reserved (cudaMalloc), in order."""

    def __init__(self):
        self.segments: list[tuple[int, int, str]] = []

    def malloc(self, size: int) -> int:
        """The address of a block for a request of `size` bytes. ValueError naming the size when it is not a
        positive int."""
        raise NotImplementedError("m4-deep-3: round, pick the pool, best fit or a new segment, split")

    def free(self, address: int) -> None:
        """Give back the block at `address`, merged with its free neighbours. KeyError naming the address when no
        allocated block is there."""
        raise NotImplementedError("m4-deep-3: free and coalesce")

    def blocks(self) -> list[Block]:
        """Every block, free or allocated, in address order."""
        raise NotImplementedError("m4-deep-3: list the blocks")

    def stats(self) -> dict:
        """allocated_bytes, requested_bytes, reserved_bytes, their peak_* values, segments, largest_free_block,
        free_blocks, and fragmentation = 1 - peak_allocated_bytes / peak_reserved_bytes (0 with nothing reserved)."""
        raise NotImplementedError("m4-deep-3: the statistics")


def replay(trace: list[tuple], allocator: CachingAllocator | None = None) -> CachingAllocator:
    """Run ("alloc", id, nbytes) and ("free", id) events through `allocator` (a fresh one by default); return it.
    KeyError for a free of an id not allocated, ValueError for an id allocated twice or an unknown event."""
    raise NotImplementedError("m4-deep-3: replay a trace")


class AllocationRecorder(TorchDispatchMode):
    """`with AllocationRecorder(device) as recorder:` records in `recorder.trace` an ("alloc", id, nbytes) for each new
    non-empty storage on `device` that an op creates and a ("free", id) when it dies, until the block ends."""

    def __init__(self, device: str | torch.device = "cpu"):
        super().__init__()
        self.trace: list[tuple] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        raise NotImplementedError("m4-deep-3: record the storages the op creates")
