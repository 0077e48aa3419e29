"""m3-core-2: streams and events, and a pipeline that overlaps copies with compute, on a CPU and on CUDA.

A CUDA stream is a queue of work that the GPU runs in order; work on two streams may run at once (a copy on the
copy engine while kernels run on the SMs), and an event recorded on one stream, waited on by another, orders them.
On a CPU the same model is a worker thread per stream:

    with Stream("copy") as copy_stream, Stream("compute") as compute_stream:
        outputs, timeline = pipeline(chunks, copy, compute, slots, copy_stream, compute_stream)
    utilization(timeline)["compute_utilization"]      # the compute engine's busy time / the wall time

`Stream.launch(fn, *args)` returns at once; the stream's thread runs the work in launch order. `record_event`
puts an `Event` in the queue, reached when the work before it is done; `wait_event` makes the stream's later work
wait until the event's latest record (at the time of the call, as in CUDA) is reached. Events are timestamped, so
`elapsed_time` gives a timeline, as torch.cuda.Event(enable_timing=True) does on a GPU. `CudaStream` gives a
torch.cuda.Stream the same `launch`, so `pipeline` runs unchanged on a GPU with torch.cuda.Event.

`pipeline` double-buffers: chunk i is copied into slot i % len(slots) on the copy stream, then computed from that
slot on the compute stream. Two waits make it correct: the compute waits for its copy (read after write), and a
copy waits until the compute of the chunk that last used its slot is done (write after read). With one stream for
both ("serial") nothing overlaps; with two streams and two slots the copy of chunk i + 1 runs under the compute of
chunk i, and the wall time approaches max(copy, compute) per chunk instead of copy + compute (`makespan_bound`).
"""
from __future__ import annotations

import queue
import threading
import time
from typing import Callable, NamedTuple, Sequence

import torch
from torch import Tensor


class Mark:
    """One record of an event: reached when its stream gets to it, and when (`time`, set as it is reached)."""

    def __init__(self):
        self.reached = threading.Event()

    def reach(self) -> None:
        self.time = time.perf_counter()  # before set(): whoever sees it reached sees its time
        self.reached.set()


class Event:
    """The CPU twin of torch.cuda.Event (always timing): a point in a stream's queue."""

    def __init__(self):
        self.mark: Mark | None = None  # the latest record; None: never recorded

    def query(self) -> bool:
        """Whether the latest record was reached (an event never recorded counts as reached, as in CUDA)."""
        return self.mark is None or self.mark.reached.is_set()

    def synchronize(self) -> None:
        """Block until the latest record is reached."""
        if self.mark is not None:
            self.mark.reached.wait()

    def elapsed_time(self, end: Event) -> float:
        """Milliseconds from this event to `end`, both recorded and reached."""
        if not isinstance(end, Event):
            raise TypeError(f"Event.elapsed_time: end must be an Event, got {type(end).__name__}")
        if self.mark is None or end.mark is None or not (self.query() and end.query()):
            raise RuntimeError("Event.elapsed_time: both events must be recorded and reached (synchronize first)")
        return 1000 * (end.mark.time - self.mark.time)


class Stream:
    """A queue of work run in order by a thread of its own. Work that raises is a sticky error: the stream skips
    the work launched after it (its events are still reached, so no other stream waits forever) and
    `synchronize` raises it, naming the stream, as CUDA reports an asynchronous error at the next sync."""

    def __init__(self, name: str = "stream"):
        self.name = name
        self.work: queue.SimpleQueue = queue.SimpleQueue()
        self.error: BaseException | None = None
        self.closed = False
        self.thread = threading.Thread(target=self._run, name=f"stream-{name}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (item := self.work.get()) is not None:
            fn, args, always = item
            if self.error is not None and not always:
                continue
            try:
                fn(*args)
            except BaseException as err:  # noqa: BLE001  (kept, and raised by synchronize)
                self.error = err

    def _put(self, fn: Callable, args: tuple, always: bool) -> None:
        if self.closed:
            raise RuntimeError(f"Stream {self.name!r} is closed")
        self.work.put((fn, args, always))

    def launch(self, fn: Callable, *args) -> None:
        """Queue fn(*args); returns at once."""
        if not callable(fn):
            raise TypeError(f"Stream.launch: fn must be callable, got {type(fn).__name__}")
        self._put(fn, args, False)

    def record_event(self, event: Event | None = None) -> Event:
        """Record `event` (a new one by default) here: it is reached when the work launched before it is done."""
        event = Event() if event is None else event
        if not isinstance(event, Event):
            raise TypeError(f"Stream.record_event: expected an Event, got {type(event).__name__}")
        mark = Mark()
        self._put(mark.reach, (), True)
        event.mark = mark
        return event

    def wait_event(self, event: Event) -> None:
        """The work launched here from now on waits for the event's latest record so far (none: no wait)."""
        if not isinstance(event, Event):
            raise TypeError(f"Stream.wait_event: expected an Event, got {type(event).__name__}")
        if event.mark is not None:
            self._put(event.mark.reached.wait, (), True)

    def synchronize(self) -> None:
        """Block until all the work launched so far is done; raise the stream's error, if any."""
        self.record_event().synchronize()
        if self.error is not None:
            raise RuntimeError(f"Stream {self.name!r}: launched work failed: "
                               f"{type(self.error).__name__}: {self.error}") from self.error

    def close(self) -> None:
        """Finish the work launched so far and end the thread."""
        if not self.closed:
            self.work.put(None)
            self.closed = True
        self.thread.join()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class CudaStream:
    """A torch.cuda.Stream with `launch`: fn runs at once on the host and queues its kernels and copies on this
    stream. record_event, wait_event and synchronize are the CUDA stream's own (with torch.cuda.Event)."""

    def __init__(self, device: str | torch.device = "cuda"):
        self.stream = torch.cuda.Stream(device)

    def launch(self, fn: Callable, *args) -> None:
        with torch.cuda.stream(self.stream):
            fn(*args)

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


class Span(NamedTuple):
    """A chunk's copy and compute, in ms from the start of the pipeline."""
    copy_start: float
    copy_end: float
    compute_start: float
    compute_end: float


def pipeline(chunks: Sequence[Tensor], copy: Callable[[Tensor, Tensor], object], compute: Callable[[Tensor], Tensor],
             slots: Sequence[Tensor], copy_stream, compute_stream, event: Callable | None = None
             ) -> tuple[list[Tensor], list[Span]]:
    """Each chunk copied into a slot (`copy(slot, chunk)`) on `copy_stream`, then `compute(slot)` on
    `compute_stream`, the slots used in turn. Returns the outputs in order and each chunk's Span. `event` makes
    the streams' events (default: Event; torch.cuda.Event with timing on a GPU). The same stream for both: the
    serial schedule."""
    event = Event if event is None else event  # None, not Event, as the default: the starter's signature matches
    if not slots:
        raise ValueError("pipeline: needs at least one slot to copy the chunks into")
    for i, chunk in enumerate(chunks):
        slot = slots[i % len(slots)]
        if chunk.shape != slot.shape:
            raise ValueError(f"pipeline: chunk {i} has shape {tuple(chunk.shape)}, its slot {tuple(slot.shape)}")
    outputs: list = [None] * len(chunks)

    def compute_into(i: int, slot: Tensor) -> None:
        outputs[i] = compute(slot)

    origin = compute_stream.record_event(event())
    copy_stream.wait_event(origin)
    free: list = [None] * len(slots)  # per slot: the event after which it may be overwritten
    marks = []
    for i, chunk in enumerate(chunks):
        s = i % len(slots)
        if free[s] is not None:
            copy_stream.wait_event(free[s])  # the compute that last read this slot is done
        copy_start = copy_stream.record_event(event())
        copy_stream.launch(copy, slots[s], chunk)
        copied = copy_stream.record_event(event())
        compute_stream.wait_event(copied)  # the chunk is in the slot
        compute_start = compute_stream.record_event(event())
        compute_stream.launch(compute_into, i, slots[s])
        free[s] = compute_stream.record_event(event())
        marks.append((copy_start, copied, compute_start, free[s]))
    copy_stream.synchronize()
    compute_stream.synchronize()
    return outputs, [Span(*(origin.elapsed_time(e) for e in m)) for m in marks]


def utilization(timeline: Sequence[Span]) -> dict:
    """The wall time (origin to the last compute's end) and how busy each engine was in it, with the mean copy and
    compute per chunk."""
    if not timeline:
        raise ValueError("utilization: the timeline has no chunks")
    makespan = max(span.compute_end for span in timeline)
    copy = sum(span.copy_end - span.copy_start for span in timeline)
    compute = sum(span.compute_end - span.compute_start for span in timeline)
    return {"makespan_ms": makespan, "copy_ms": copy / len(timeline), "compute_ms": compute / len(timeline),
            "copy_utilization": copy / makespan, "compute_utilization": compute / makespan}


def makespan_bound(copy_ms: float, compute_ms: float, chunks: int, overlapped: bool) -> float:
    """The least wall time of `chunks` chunks: serially (or with one slot) copy + compute each; overlapped with
    two slots, the first copy, then the slower of the two per chunk, then the last compute."""
    if chunks < 1:
        raise ValueError(f"makespan_bound: chunks must be at least 1, got {chunks}")
    if not overlapped:
        return chunks * (copy_ms + compute_ms)
    return copy_ms + (chunks - 1) * max(copy_ms, compute_ms) + compute_ms
