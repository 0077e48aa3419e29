"""m3-core-1: a data loader that prepares the next batches on a background thread (into a ring of reusable staging
buffers, pinned where CUDA is present), hands them over through a bounded queue, and copies each to the device
(non_blocking=True on a side stream where CUDA is present), so that preparing batches overlaps the training step.

The batches come from any iterable of tuples of tensors, e.g. torchkata.data.augment.augmented_batches.
Grade it:  torchkata check m3-core-1
"""
from __future__ import annotations

from typing import Iterable, Iterator

import torch
from torch import Tensor

Batch = tuple[Tensor, ...]


def serial(batches: Iterable[Batch], device: str | torch.device = "cpu") -> Iterator[Batch]:
    """The baseline: each batch prepared when the consumer asks for it, in its thread, then moved to `device`."""
    raise NotImplementedError("m3-core-1: the serial loader")


class Prefetcher:
    """Iterates over `batches` (tuples of tensors) prepared ahead on a background thread, at most `depth` of them
    waiting in staging slots, each delivered on `device` as new tensors the consumer owns (a slot is reused for a
    later batch). `device`: any torch device (CUDA: pinned slots and a side stream; others, e.g. cpu or meta: plain
    slots and an ordinary copy). `pin_memory`: page-locked slots (default: where `device` is CUDA; True needs CUDA).
    The default depth is 2. One pass; use it in a `for` loop or a `with` block; close() of one never started does
    nothing.

    - The same batches in the same order as `serial` (bitwise).
    - The producer thread ends when the batches run out, when the consumer stops early (break, an exception, `close()`,
      leaving the `with` block), or when the producer raises: its exception is raised again in the consumer. The
      thread has ended by the time the loop or close() returns.
    - While the consumer holds a batch, the producer has at most `depth` batches staged and one more in hand.
    - ValueError for a depth that is not an integer of at least 1 ("Prefetcher: depth ... at least 1, got 0"), for
      pin_memory=True or a CUDA device without CUDA; TypeError (raised in the consumer) for a batch that is not a
      tuple of tensors; RuntimeError for a second pass.
    """

    def __init__(self, batches: Iterable[Batch], depth: int = 2, device: str | torch.device = "cpu",
                 pin_memory: bool | None = None):
        raise NotImplementedError("m3-core-1: check the configuration and set up the slots and queues")

    def __iter__(self) -> Iterator[Batch]:
        raise NotImplementedError("m3-core-1: start the producer thread and yield the batches on the device")

    def close(self) -> None:
        """Stop the producer and wait for its thread to end."""
        raise NotImplementedError("m3-core-1: stop the producer")

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
