"""m3-core-2: streams and events on a CPU (a worker thread per stream), and a double-buffered pipeline that overlaps
copying chunks in with computing on them, with the utilization it reaches against the analytical bounds.
The same pipeline runs on a GPU with torch.cuda streams and events (CudaStream).
Grade it:  torchkata check m3-core-2
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import torch
from torch import Tensor


class Event:
    """The CPU twin of torch.cuda.Event (always timing): a point in a stream's queue.

    - query(): whether the latest record was reached (an event never recorded counts as reached).
    - synchronize(): block until the latest record is reached (never recorded: return at once).
    - elapsed_time(end): milliseconds from this event to `end`; TypeError "Event.elapsed_time: end must be an
      Event, got float" for anything else; RuntimeError "Event.elapsed_time: both events must be recorded and
      reached (synchronize first)" unless both were.
    """

    def __init__(self):
        raise NotImplementedError("m3-core-2: an event's latest record, and when it was reached")

    def query(self) -> bool:
        raise NotImplementedError("m3-core-2: Event.query")

    def synchronize(self) -> None:
        raise NotImplementedError("m3-core-2: Event.synchronize")

    def elapsed_time(self, end: Event) -> float:
        raise NotImplementedError("m3-core-2: Event.elapsed_time")


class Stream:
    """A queue of work run in order by a thread of its own.

    - launch(fn, *args): queue fn(*args) and return at once (TypeError "Stream.launch: fn must be callable, got
      int" for what is not callable).
    - record_event(event=None) -> the event (a new one by default), reached when the work launched before it is
      done. wait_event(event): the work launched from now on waits until the event's latest record *at the time of
      this call* is reached (a later record does not hold it; an event never recorded: no wait). Both raise
      TypeError "Stream.record_event: expected an Event, got str" (wait_event likewise) for what is not an Event.
    - A launched fn that raises is a sticky error: the work launched after it is skipped, its events are still
      reached, and every synchronize() raises RuntimeError "Stream 'NAME': launched work failed: ValueError: ...".
    - synchronize(): block until the work launched so far is done. close() (and leaving a `with` block): finish the
      work launched so far and end the thread; afterwards launch, record_event and synchronize raise RuntimeError
      "Stream 'NAME' is closed"; a second close() does nothing.
    """

    def __init__(self, name: str = "stream"):
        raise NotImplementedError("m3-core-2: start the stream's thread")

    def launch(self, fn: Callable, *args) -> None:
        raise NotImplementedError("m3-core-2: Stream.launch")

    def record_event(self, event: Event | None = None) -> Event:
        raise NotImplementedError("m3-core-2: Stream.record_event")

    def wait_event(self, event: Event) -> None:
        raise NotImplementedError("m3-core-2: Stream.wait_event")

    def synchronize(self) -> None:
        raise NotImplementedError("m3-core-2: Stream.synchronize")

    def close(self) -> None:
        raise NotImplementedError("m3-core-2: Stream.close")

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class CudaStream:
    """A torch.cuda.Stream with `launch(fn, *args)`: fn runs at once on the host and its kernels and copies are
    queued on this stream; record_event, wait_event and synchronize are the CUDA stream's own."""

    def __init__(self, device: str | torch.device = "cuda"):
        raise NotImplementedError("m3-core-2: the CUDA half")

    def launch(self, fn: Callable, *args) -> None:
        raise NotImplementedError("m3-core-2: CudaStream.launch")


class Span(NamedTuple):
    """A chunk's copy and compute, in ms from the start of the pipeline."""
    copy_start: float
    copy_end: float
    compute_start: float
    compute_end: float


def pipeline(chunks: Sequence[Tensor], copy: Callable[[Tensor, Tensor], object], compute: Callable[[Tensor], Tensor],
             slots: Sequence[Tensor], copy_stream, compute_stream, event: Callable | None = None
             ) -> tuple[list[Tensor], list[Span]]:
    """Chunk i copied into slots[i % len(slots)] (`copy(slot, chunk)`) on `copy_stream`, then `compute(slot)` on
    `compute_stream`. Returns the outputs in order and each chunk's Span (from events made by `event()`, Event by
    default, recorded on the streams). Nothing is computed before its copy is done, and no slot is overwritten before the compute
    reading it is done. The same stream for both is the serial schedule. ValueError "pipeline: needs at least one
    slot ..." and "pipeline: chunk 2 has shape (2, 4), its slot (3, 4)" before any work is launched."""
    raise NotImplementedError("m3-core-2: the double-buffered pipeline")


def utilization(timeline: Sequence[Span]) -> dict:
    """{"makespan_ms": the last compute's end, "copy_ms" and "compute_ms": the mean per chunk,
    "copy_utilization" and "compute_utilization": each engine's busy time / the makespan}. ValueError
    "utilization: the timeline has no chunks" for an empty one."""
    raise NotImplementedError("m3-core-2: utilization")


def makespan_bound(copy_ms: float, compute_ms: float, chunks: int, overlapped: bool) -> float:
    """The least wall time of `chunks` chunks, serially and overlapped with two slots. ValueError
    "makespan_bound: chunks must be at least 1, got 0"."""
    raise NotImplementedError("m3-core-2: the analytical bound")
