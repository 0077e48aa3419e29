"""m3-core-1: a data loader that prepares the next batches on a background thread while the training step runs.

    batches = augmented_batches(images, labels, batch_size=256, generator=g)   # any iterable of tensor tuples
                                                                              # (torchkata.data.augment)
    for x, y in Prefetcher(batches, depth=2, device="cuda"):                  # or serial(batches, device)
        ...

The producer thread pulls each batch from the iterable (indexing and augmenting it: the costly part) and copies it
into one of `depth` reusable staging slots; the consumer takes the filled slots from a bounded queue in order, copies
each to the device and hands the slot back. Where the device is CUDA the slots are page-locked (pinned: the GPU's
copy engine reads them by DMA, which needs memory the OS cannot move) and the copy is `non_blocking=True` on a side
stream, so it overlaps the kernels of the previous step; the consumer's stream waits for the copy's event, and the
producer waits for it before it overwrites the slot. On a CPU the slots are plain memory (the CPU wheel has no
pinned memory: `Tensor.pin_memory()` raises "Cannot access accelerator device when none is available") and the copy
is an ordinary one; what overlaps is the preparation on the producer thread with the step on the consumer's (torch
ops release the GIL).

One producer thread: the batches come out in the iterable's order, and a transform that draws from one seeded
generator draws the same numbers as it would in the consumer's thread, so the prefetching loader yields bitwise the
batches of `serial`. The thread ends with the loop: when the batches run out, when the consumer stops early (breaks,
raises, or `close()`), or when the producer raises (its exception is raised again in the consumer).
"""
from __future__ import annotations

import queue
import threading
from typing import Callable, Iterable, Iterator

import torch
from torch import Tensor

Batch = tuple[Tensor, ...]
POLL_S = 0.05  # how often a blocked thread looks whether the loop was stopped


def serial(batches: Iterable[Batch], device: str | torch.device = "cpu") -> Iterator[Batch]:
    """The baseline: each batch prepared when the consumer asks for it, in its thread, then moved to `device`."""
    for batch in batches:
        yield tuple(t.to(device) for t in batch)


class Prefetcher:
    """Iterates over `batches` (tuples of tensors) prepared ahead on a background thread, at most `depth` of them
    waiting in staging slots, each delivered on `device` as tensors the consumer owns. `pin_memory`: page-locked
    slots (default: where `device` is CUDA; True needs CUDA). One pass; use it in a `for` loop or a `with` block."""

    def __init__(self, batches: Iterable[Batch], depth: int = 2, device: str | torch.device = "cpu",
                 pin_memory: bool | None = None):
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ValueError(f"Prefetcher: depth (the queue's bound, batches prepared ahead) must be an integer of "
                             f"at least 1, got {depth!r}")
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"Prefetcher: device {self.device} asked for, but torch has no CUDA device here")
        if pin_memory is None:
            pin_memory = self.device.type == "cuda"
        if pin_memory and not torch.cuda.is_available():
            raise ValueError("Prefetcher: pin_memory=True needs CUDA (page-locked memory is for the GPU's copy "
                             "engine), and torch has no CUDA device here")
        self.batches, self.depth, self.pin_memory = batches, depth, pin_memory
        self.stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        self.free: queue.Queue = queue.Queue()  # slots the producer may fill, with the copy it must wait for
        self.filled: queue.Queue = queue.Queue(maxsize=depth)  # the bounded hand-over, in order
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def __iter__(self) -> Iterator[Batch]:
        if self.thread is not None:
            raise RuntimeError("Prefetcher: one pass only; make a new one over fresh batches")
        for _ in range(self.depth):
            self.free.put(([], None))
        self.thread = threading.Thread(target=self._produce, name="prefetch-producer", daemon=True)
        self.thread.start()
        try:
            while True:
                item = self._next_filled()
                if item is None:  # the batches ran out
                    return
                if isinstance(item, BaseException):
                    raise item
                yield self._to_device(item)
        finally:
            self.close()

    def _next_filled(self):
        """The next item of the bounded queue; a producer that ended without handing over its end is an error, not
        a consumer waiting forever."""
        while True:
            try:
                return self.filled.get(timeout=POLL_S)
            except queue.Empty:
                if not self.thread.is_alive() and self.filled.empty():
                    raise RuntimeError("Prefetcher: the producer thread ended without handing over the end of the "
                                       "batches") from None

    def close(self) -> None:
        """Stop the producer and wait for its thread to end (after the batch it is preparing)."""
        self.stop.set()
        if self.thread is not None:
            self.thread.join()

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _produce(self) -> None:
        try:
            for batch in self.batches:
                slot = self._free_slot()
                if slot is None:
                    return
                buffers, copied = slot
                if copied is not None:
                    copied.synchronize()  # the device copy of this slot's last batch has read it
                self._stage(buffers, batch)
                if not self._hand_over(buffers):
                    return
            self._hand_over(None)
        except BaseException as err:  # noqa: BLE001  (handed to the consumer, who raises it)
            self._hand_over(err)

    def _free_slot(self):
        """The next free slot, or None once the loop is stopped."""
        while not self.stop.is_set():
            try:
                return self.free.get(timeout=POLL_S)
            except queue.Empty:
                continue
        return None

    def _hand_over(self, item) -> bool:
        """Put item in the bounded queue; False once the loop is stopped (nobody will take it)."""
        while not self.stop.is_set():
            try:
                self.filled.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _stage(self, buffers: list[Tensor], batch: Batch) -> None:
        """Copy the batch into the slot's buffers, (re)allocated where a tensor's shape or dtype changed."""
        if not isinstance(batch, tuple) or not all(isinstance(t, Tensor) for t in batch):
            raise TypeError(f"Prefetcher: each batch must be a tuple of tensors, got {type(batch).__name__}")
        del buffers[len(batch):]
        for i, t in enumerate(batch):
            if i == len(buffers) or buffers[i].shape != t.shape or buffers[i].dtype != t.dtype:
                fresh = torch.empty(t.shape, dtype=t.dtype)
                fresh = fresh.pin_memory() if self.pin_memory else fresh
                buffers[i:i + 1] = [fresh]
            buffers[i].copy_(t)

    def _to_device(self, buffers: list[Tensor]) -> Batch:
        """New tensors on the device from a filled slot, and the slot back to the producer."""
        if self.stream is None:
            batch = tuple(b.to(self.device, copy=True) for b in buffers)
            self.free.put((buffers, None))
            return batch
        compute = torch.cuda.current_stream(self.device)
        batch = tuple(torch.empty_like(b, device=self.device) for b in buffers)  # allocated on the compute stream
        self.stream.wait_stream(compute)  # its memory may still be in use by the compute stream's last kernels
        with torch.cuda.stream(self.stream):
            for out, b in zip(batch, buffers):
                out.copy_(b, non_blocking=True)
            copied = torch.cuda.Event()
            copied.record(self.stream)
        compute.wait_event(copied)  # the step's kernels start once the batch has arrived
        self.free.put((buffers, copied))
        return batch
