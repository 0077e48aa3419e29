"""m4-deep-3: a simulator of PyTorch's CUDA caching allocator, replaying an allocation trace, to see how much of the
memory a training step reserves it actually uses, and how that changes with the batch size.

The rules followed are those of c10/cuda/CUDACachingAllocator.cpp (pytorch/pytorch, DeviceCachingAllocator) with its
default configuration (no max_split_size, no expandable segments, no roundup_power2_divisions, one stream):
- every request is rounded up to a multiple of 512 bytes (kMinBlockSize; `round_size`);
- requests of at most 1 MiB (kSmallSize) go to the small pool, larger ones to the large pool (`get_pool`);
- a request takes the smallest free block of its pool that fits, the lowest address among equals (`get_free_block`:
  the pool is a set ordered by size, then address);
- with none, a new segment is reserved (cudaMalloc): 2 MiB (kSmallBuffer) for a small request, 20 MiB
  (kLargeBuffer) for a request under 10 MiB (kMinLargeAlloc), else the request rounded up to 2 MiB (kRoundLarge)
  (`get_allocation_size`);
- the block is split when what remains is at least 512 bytes in the small pool, more than 1 MiB in the large pool
  (`should_split`); the request takes the front, the rest is a free block. An unsplit block is handed out whole,
  and the allocated-bytes statistic counts the block's size, not the request's;
- a freed block merges with its free neighbours in the segment (`free_block`, `try_merge_blocks`); segments are
  never returned (no empty_cache), so reserved memory only grows.
"""
from __future__ import annotations

import bisect
import weakref

import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

MIB = 1024 * 1024
MIN_BLOCK = 512          # kMinBlockSize: every block is a multiple of it
SMALL_SIZE = MIB         # kSmallSize: the largest request of the small pool
SMALL_BUFFER = 2 * MIB   # kSmallBuffer: a small-pool segment
LARGE_BUFFER = 20 * MIB  # kLargeBuffer: the segment of a large request under MIN_LARGE_ALLOC
MIN_LARGE_ALLOC = 10 * MIB  # kMinLargeAlloc
ROUND_LARGE = 2 * MIB    # kRoundLarge: larger requests reserve a segment of their size rounded to this


def round_size(size: int) -> int:
    """The block a request of `size` bytes needs: a multiple of 512, at least 512."""
    return max(MIN_BLOCK, -(-size // MIN_BLOCK) * MIN_BLOCK)


def pool_of(rounded: int) -> str:
    return "small" if rounded <= SMALL_SIZE else "large"


def segment_size(rounded: int) -> int:
    """What cudaMalloc is asked for when no free block fits a request of `rounded` bytes."""
    if rounded <= SMALL_SIZE:
        return SMALL_BUFFER
    if rounded < MIN_LARGE_ALLOC:
        return LARGE_BUFFER
    return -(-rounded // ROUND_LARGE) * ROUND_LARGE


def should_split(pool: str, remaining: int) -> bool:
    return remaining >= MIN_BLOCK if pool == "small" else remaining > SMALL_SIZE


class Block:
    """A block of a segment, and its neighbours in it (`prev`, `next`: None at the segment's ends)."""

    def __init__(self, address: int, size: int, segment: int, pool: str, prev: Block | None = None,
                 next: Block | None = None):
        self.address, self.size, self.segment, self.pool = address, size, segment, pool
        self.prev, self.next = prev, next
        self.allocated, self.requested = False, 0


class CachingAllocator:
    """The allocator's bookkeeping, with addresses from a counter standing in for cudaMalloc's: `malloc(size)`
    returns a block's address, `free(address)` gives it back. Statistics as torch.cuda.memory_stats names them:
    allocated (block sizes), requested (the sizes asked for) and reserved (segment sizes) bytes, current and peak."""

    def __init__(self):
        self.free_blocks: dict[str, list[tuple[int, int, Block]]] = {"small": [], "large": []}  # sorted (size, address)
        self.live: dict[int, Block] = {}  # address -> allocated block
        self.segments: list[tuple[int, int, str]] = []  # (address, size, pool) of each cudaMalloc
        self.next_address = 0
        self.allocated = self.requested = self.reserved = 0
        self.peak_allocated = self.peak_requested = self.peak_reserved = 0

    def malloc(self, size: int) -> int:
        if not isinstance(size, int) or size <= 0:
            raise ValueError(f"malloc: size must be a positive number of bytes, got {size!r}")
        rounded = round_size(size)
        pool = pool_of(rounded)
        block = self._best_fit(pool, rounded) or self._new_segment(pool, segment_size(rounded))
        remaining = block.size - rounded
        if should_split(pool, remaining):
            rest = Block(block.address + rounded, remaining, block.segment, pool, prev=block, next=block.next)
            if block.next:
                block.next.prev = rest
            block.next, block.size = rest, rounded
            self._insert_free(rest)
        block.allocated, block.requested = True, size
        self.live[block.address] = block
        self.allocated += block.size
        self.requested += size
        self.peak_allocated = max(self.peak_allocated, self.allocated)
        self.peak_requested = max(self.peak_requested, self.requested)
        return block.address

    def free(self, address: int) -> None:
        block = self.live.pop(address, None)
        if block is None:
            raise KeyError(f"free: no allocated block at address {address:#x} (never allocated, or freed already)")
        self.allocated -= block.size
        self.requested -= block.requested
        block.allocated, block.requested = False, 0
        for neighbour in (block.prev, block.next):  # merge with free neighbours of the same segment
            if neighbour is not None and not neighbour.allocated:
                self._remove_free(neighbour)
                if neighbour is block.prev:
                    neighbour.size += block.size
                    neighbour.next = block.next
                    if block.next:
                        block.next.prev = neighbour
                    block = neighbour
                else:
                    block.size += neighbour.size
                    block.next = neighbour.next
                    if neighbour.next:
                        neighbour.next.prev = block
        self._insert_free(block)

    def _best_fit(self, pool: str, rounded: int) -> Block | None:
        blocks = self.free_blocks[pool]
        i = bisect.bisect_left(blocks, (rounded,))  # before every (rounded, address, block)
        return blocks.pop(i)[2] if i < len(blocks) else None

    def _new_segment(self, pool: str, size: int) -> Block:
        self.segments.append((self.next_address, size, pool))
        block = Block(self.next_address, size, len(self.segments) - 1, pool)
        self.next_address += size
        self.reserved += size
        self.peak_reserved = max(self.peak_reserved, self.reserved)
        return block

    def _insert_free(self, block: Block) -> None:
        bisect.insort(self.free_blocks[block.pool], (block.size, block.address, block))

    def _remove_free(self, block: Block) -> None:
        blocks = self.free_blocks[block.pool]
        blocks.pop(bisect.bisect_left(blocks, (block.size, block.address)))

    def blocks(self) -> list[Block]:
        """Every block, free or allocated, in address order."""
        free = [b for pool in self.free_blocks.values() for _, _, b in pool]
        return sorted([*free, *self.live.values()], key=lambda b: b.address)

    def largest_free_block(self) -> int:
        return max((blocks[-1][0] for blocks in self.free_blocks.values() if blocks), default=0)

    def stats(self) -> dict:
        """The numbers of torch.cuda.memory_stats this simulates, and the fragmentation they imply."""
        return {"allocated_bytes": self.allocated, "requested_bytes": self.requested, "reserved_bytes": self.reserved,
                "peak_allocated_bytes": self.peak_allocated, "peak_requested_bytes": self.peak_requested,
                "peak_reserved_bytes": self.peak_reserved, "segments": len(self.segments),
                "largest_free_block": self.largest_free_block(),
                "free_blocks": sum(len(blocks) for blocks in self.free_blocks.values()),
                # of the memory reserved at its peak, the share that was never in use at once
                "fragmentation": 1 - self.peak_allocated / self.peak_reserved if self.peak_reserved else 0.0}


def replay(trace: list[tuple], allocator: CachingAllocator | None = None) -> CachingAllocator:
    """Run a trace of ("alloc", id, nbytes) and ("free", id) events (ids name the trace's tensors) through the
    allocator (a fresh one by default) and return it."""
    allocator = allocator or CachingAllocator()
    address_of: dict = {}
    for event in trace:
        if event[0] == "alloc":
            _, key, nbytes = event
            if key in address_of:
                raise ValueError(f"replay: id {key!r} is allocated twice without a free in between")
            address_of[key] = allocator.malloc(nbytes)
        elif event[0] == "free":
            if event[1] not in address_of:
                raise KeyError(f"replay: free of id {event[1]!r}, which is not allocated")
            allocator.free(address_of.pop(event[1]))
        else:
            raise ValueError(f"replay: an event is ('alloc', id, nbytes) or ('free', id), got {event!r}")
    return allocator


class AllocationRecorder(TorchDispatchMode):
    """Inside `with AllocationRecorder(device) as recorder:`, every storage on `device` that an op creates is
    recorded as ("alloc", id, nbytes), and ("free", id) when its last tensor dies (a finalizer on the storage, whose
    Python object lives exactly as long as the storage itself): the trace the caching allocator would have seen.

    Below autograd, so the backward's ops are recorded too. A view or an in-place op returns a storage already
    known (or one of its inputs'), which is no new allocation; empty storages allocate nothing. Frees after the
    block ends are not recorded: what is alive then stays allocated in the trace."""

    def __init__(self, device: str | torch.device = "cpu"):
        super().__init__()
        self.device = torch.device(device)
        self.trace: list[tuple] = []
        self._live: set[int] = set()  # data pointers of the storages recorded and not freed
        self._recording = True

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage().data_ptr() for t in tree_flatten((args, kwargs))[0] if isinstance(t, Tensor)}
        for t in tree_flatten(out)[0]:
            if isinstance(t, Tensor) and t.device == self.device:
                self._record(t.untyped_storage(), inputs)
        return out

    def _record(self, storage, inputs: set[int]) -> None:
        pointer = storage.data_ptr()
        if storage.nbytes() and pointer not in self._live and pointer not in inputs:
            key = len(self.trace)
            self._live.add(pointer)
            self.trace.append(("alloc", key, storage.nbytes()))
            weakref.finalize(storage, self._freed, pointer, key)

    def _freed(self, pointer: int, key: int) -> None:
        if self._recording:
            self._live.discard(pointer)
            self.trace.append(("free", key))

    def __exit__(self, *exc):
        self._recording = False
        return super().__exit__(*exc)
