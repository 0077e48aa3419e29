"""m3-core-2: CPU streams and events, and the double-buffered copy/compute pipeline, graded on: work launched on a
stream runs asynchronously, on its own thread, in order; events are reached after the work before them, timed in
ms, and a wait holds a stream until the record it saw (not a later one); a failing launch is a sticky error raised
by synchronize, naming the stream, without leaving another stream waiting forever; closing finishes the work; the
pipeline's outputs equal the eager computation bitwise for one, two and three slots, serial and overlapped, zero
and one chunk; a compute never reads a slot before its copy is done and a copy never overwrites a slot a compute
still reads (slow copies and slow computes make a missing wait show); the copy of the next chunk runs under the
compute of the last with two streams and not with one; utilization and the analytical bounds on worked timelines;
bad input refused with errors that name it. On a GPU the pipeline with torch.cuda streams (skipped here)."""
import threading
import time

import pytest
import torch

from grading import failing_checks

EXERCISE = "m3-core-2"
WAIT_S = 1.0  # the longest a check waits for a stream that should get going (a loaded machine); it takes ms
GATE_S = 1.0  # the longest gated work waits for the test to open its gate (ms after launching it)
WORK_S = 0.02  # a slow copy's or compute's sleep: long enough to make a missing wait show


@pytest.fixture(scope="module")
def streams(impl_for):
    return impl_for(EXERCISE)


def wait_for(condition, timeout=WAIT_S):
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.002)
    return condition()


def chunks_of(count, rows=3, cols=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(rows, cols, generator=g) for _ in range(count)]


def plain_copy(slot, chunk):
    slot.copy_(chunk)


def square(x):
    return x * x + 1


def run(streams, chunks, copy=plain_copy, compute=square, slots=2, serial=False):
    buffers = [torch.zeros_like(chunks[0]) if chunks else torch.zeros(3, 4) for _ in range(slots)]
    with streams.Stream("copy") as copy_stream, streams.Stream("compute") as compute_stream:
        return streams.pipeline(chunks, copy, compute, buffers, compute_stream if serial else copy_stream,
                                compute_stream)


def gated(gate):
    """Work that waits for the test to open the gate (at most GATE_S: a wrong stream must not hang the grader). Run on
    the test's own thread (a launch that is not asynchronous) it does not wait: it would be waiting for itself."""
    test_thread = threading.get_ident()
    return lambda: threading.get_ident() == test_thread or gate.wait(GATE_S)


def check_launch_is_asynchronous_and_in_order(streams):
    gate, ran, threads = threading.Event(), [], set()
    with streams.Stream("work") as stream:
        try:
            stream.launch(gated(gate))
            for i in range(20):
                stream.launch(lambda i: (ran.append(i), threads.add(threading.get_ident())), i)
            assert ran == [], "launch returned only after the work ran (or the work ran before the gate opened)"
        finally:
            gate.set()
        stream.synchronize()
        assert ran == list(range(20))
        assert threads and threading.get_ident() not in threads, "the work ran on the caller's thread"
        stream.launch(ran.append, 20)  # arguments pass through
    assert ran[-1] == 20, "close() returned before the work launched before it ran"


def check_events(streams):
    never = streams.Event()
    assert never.query(), "an event never recorded counts as reached"
    never.synchronize()
    gate = threading.Event()
    with streams.Stream("work") as stream:
        start = stream.record_event()
        assert isinstance(start, streams.Event)
        try:
            stream.launch(gated(gate))
            stream.launch(time.sleep, 0.03)
            end = streams.Event()
            assert stream.record_event(end) is end
            assert not end.query(), "reached before the work launched before it was done"
            start.synchronize()
            for first, second in ((start, end), (end, start)):
                with pytest.raises(RuntimeError, match="Event.elapsed_time: both events must be recorded and "
                                                       "reached"):
                    first.elapsed_time(second)
        finally:
            gate.set()
        end.synchronize()
        assert end.query() and start.query()
        elapsed = start.elapsed_time(end)
        assert 25 <= elapsed < 10_000, f"elapsed_time {elapsed}: milliseconds over a 30 ms sleep"
        stamps = []
        stream.launch(lambda: stamps.append(time.perf_counter()))
        first = stream.record_event()
        stream.launch(lambda: stamps.append(time.perf_counter()))
        stream.launch(time.sleep, 0.05)
        stream.launch(lambda: stamps.append(time.perf_counter()))
        last = stream.record_event()
        stream.launch(lambda: stamps.append(time.perf_counter()))
        stream.synchronize()
        between = first.elapsed_time(last)
        assert 1000 * (stamps[2] - stamps[1]) <= between <= 1000 * (stamps[3] - stamps[0]), "not the ms between"
        assert end.elapsed_time(start) == pytest.approx(-elapsed)
        with pytest.raises(RuntimeError, match="Event.elapsed_time: both events must be recorded and reached"):
            never.elapsed_time(end)
        with pytest.raises(RuntimeError, match="Event.elapsed_time: both events must be recorded and reached"):
            start.elapsed_time(streams.Event())
        with pytest.raises(TypeError, match="Event.elapsed_time: end must be an Event, got float"):
            start.elapsed_time(1.0)


def check_wait_event_orders_streams(streams):
    """B waits for A's event: B's read runs after A's write, however long A takes."""
    gate, box, seen = threading.Event(), [0], []
    with streams.Stream("a") as a, streams.Stream("b") as b:
        try:
            a.launch(gated(gate))
            a.launch(box.__setitem__, 0, 42)
            written = a.record_event()
            b.wait_event(written)
            b.launch(lambda: seen.append(box[0]))
            assert not wait_for(lambda: seen, timeout=0.1), "B ran before A's event was reached"
        finally:
            gate.set()
        b.synchronize()
        assert seen == [42]
        unrecorded = streams.Event()
        b.wait_event(unrecorded)  # never recorded: no wait
        b.launch(seen.append, "free")
        b.synchronize()
        assert seen == [42, "free"]


def check_wait_sees_the_record_at_the_call(streams):
    """A later record of the same event does not hold back a wait issued before it (CUDA's semantics)."""
    first, second, order = threading.Event(), threading.Event(), []
    with streams.Stream("a") as a, streams.Stream("b") as b:
        event = streams.Event()
        try:
            a.launch(gated(first))
            a.record_event(event)
            b.wait_event(event)
            b.launch(order.append, "b")
            a.launch(gated(second))
            a.record_event(event)
            first.set()
            # within GATE_S / 2: a wait held by the later record runs only when that gate times out
            assert wait_for(lambda: order, timeout=GATE_S / 2), "the wait was held by the event's later record"
        finally:
            first.set()
            second.set()
        event.synchronize()
        assert event.query()


def check_errors_are_sticky_and_named(streams):
    ran = []

    def bad():
        raise ValueError("bad chunk 3")

    gate = threading.Event()
    with streams.Stream("copy") as copy_stream, streams.Stream("other") as other:
        copy_stream.launch(bad)
        copy_stream.launch(ran.append, "after")
        done = copy_stream.record_event()
        # the failed stream's events are still reached: no other stream waits on it forever
        assert wait_for(done.query), "an event recorded after the error was never reached"
        assert ran == [], "work after the error ran"
        try:  # and its waits are still kept: the order of its events holds
            other.launch(gated(gate))
            copy_stream.wait_event(other.record_event())
            after_wait = copy_stream.record_event()
            assert not wait_for(after_wait.query, timeout=0.1), "a failed stream's wait was skipped"
        finally:
            gate.set()
        assert wait_for(after_wait.query)
        for _ in range(2):
            with pytest.raises(RuntimeError, match="Stream 'copy': launched work failed: ValueError: bad chunk 3"):
                copy_stream.synchronize()


def check_close(streams):
    before = set(threading.enumerate())
    stream = streams.Stream("closing")
    assert len(set(threading.enumerate()) - before) == 1, "a stream runs on one thread of its own"
    ran = []
    stream.launch(time.sleep, 0.02)
    stream.launch(ran.append, 1)
    stream.close()
    assert ran == [1], "close() did not finish the work launched before it"
    assert not [t for t in threading.enumerate() if t not in before and t.is_alive()], "the thread outlived close()"
    stream.close()
    for call in (lambda: stream.launch(ran.append, 2), stream.record_event, stream.synchronize):
        with pytest.raises(RuntimeError, match="Stream 'closing' is closed"):
            call()
    assert ran == [1]


def check_bad_arguments(streams):
    with streams.Stream("s") as stream:
        with pytest.raises(TypeError, match="Stream.launch: fn must be callable, got int"):
            stream.launch(3)
        with pytest.raises(TypeError, match="Stream.wait_event: expected an Event, got object"):
            stream.wait_event(object())
        with pytest.raises(TypeError, match="Stream.record_event: expected an Event, got str"):
            stream.record_event("e")
        stream.synchronize()
    with pytest.raises(ValueError, match="pipeline: needs at least one slot"):
        run(streams, chunks_of(2), slots=0)
    for shape in ((2, 4), (4, 4), (3, 4, 1)):
        bad = chunks_of(3)
        bad[2] = torch.zeros(shape)
        got = ", ".join(map(str, shape))
        with pytest.raises(ValueError, match=rf"pipeline: chunk 2 has shape \({got}\), its slot \(3, 4\)"):
            run(streams, bad)
    with pytest.raises(ValueError, match="utilization: the timeline has no chunks"):
        streams.utilization([])
    with pytest.raises(ValueError, match="makespan_bound: chunks must be at least 1, got 0"):
        streams.makespan_bound(1.0, 1.0, 0, True)


def check_outputs_equal_eager(streams):
    """Bitwise the eager outputs, in order, for every slot count, serial and overlapped, and the compute reads the
    slots the copies wrote (not the chunks)."""
    for count in (0, 1, 5):
        chunks = chunks_of(count, seed=count)
        expected = [square(c) for c in chunks]
        for slots in (1, 2, 3):
            for serial in (False, True):
                seen = []

                def compute(x):
                    seen.append(x.data_ptr())
                    return square(x)

                outputs, timeline = run(streams, chunks, compute=compute, slots=slots, serial=serial)
                assert len(outputs) == len(timeline) == count, (slots, serial)
                assert all(torch.equal(o, e) for o, e in zip(outputs, expected)), (slots, serial)
                assert all(ptr not in {c.data_ptr() for c in chunks} for ptr in seen), "computed from the chunks"
                assert len(set(seen)) == min(slots, count), f"{slots} slots used in turn, got {len(set(seen))}"


def check_compute_waits_for_its_copy(streams):
    """Slow copies: a compute that does not wait for its copy reads the slot's old contents."""
    def slow_copy(slot, chunk):
        time.sleep(WORK_S)
        slot.copy_(chunk)

    chunks = chunks_of(4, seed=1)
    outputs, timeline = run(streams, chunks, copy=slow_copy)
    assert all(torch.equal(o, square(c)) for o, c in zip(outputs, chunks))
    assert all(s.compute_start >= s.copy_end for s in timeline), "a compute started before its copy ended"


def check_copy_waits_for_the_slot(streams):
    """Slow computes that read their slot at the end: a copy that does not wait overwrites it under them."""
    def slow_compute(x):
        time.sleep(WORK_S)
        return square(x)

    chunks = chunks_of(4, seed=2)
    for slots in (1, 2):
        outputs, timeline = run(streams, chunks, compute=slow_compute, slots=slots)
        assert all(torch.equal(o, square(c)) for o, c in zip(outputs, chunks)), slots
        assert all(later.copy_start >= s.compute_end for s, later in zip(timeline, timeline[slots:])), slots


def check_overlap(streams):
    """Two streams and two slots: the next chunk's copy runs under this chunk's compute. One stream: never."""
    def copy(slot, chunk):
        time.sleep(WORK_S)
        slot.copy_(chunk)

    def compute(x):
        time.sleep(WORK_S)
        return square(x)

    chunks = chunks_of(4, seed=3)
    _, overlapped = run(streams, chunks, copy=copy, compute=compute)
    _, serial = run(streams, chunks, copy=copy, compute=compute, serial=True)
    assert all(b.copy_start < a.compute_end for a, b in zip(overlapped, overlapped[1:])), "no overlap"
    assert all(b.copy_start >= a.compute_end for a, b in zip(serial, serial[1:])), "one stream overlapped"
    assert all(s.copy_start >= 0 and s.copy_end - s.copy_start >= 900 * WORK_S for s in overlapped), \
        "ms from the start"
    made = streams.utilization(overlapped)["makespan_ms"], streams.utilization(serial)["makespan_ms"]
    assert made[0] < 0.9 * made[1], f"overlapped {made[0]:.0f} ms against serial {made[1]:.0f} ms"


def check_utilization_and_bounds(streams):
    Span = streams.Span
    timeline = [Span(0.0, 2.0, 2.0, 5.0), Span(2.0, 4.0, 5.0, 8.0), Span(5.0, 8.0, 8.0, 12.0)]
    stats = streams.utilization(timeline)
    assert stats == pytest.approx({"makespan_ms": 12.0, "copy_ms": 7 / 3, "compute_ms": 10 / 3,
                                   "copy_utilization": 7 / 12, "compute_utilization": 10 / 12})
    assert streams.utilization([Span(1.0, 3.0, 4.0, 8.0)])["compute_utilization"] == 0.5
    assert streams.makespan_bound(2.0, 3.0, 4, False) == 20.0
    assert streams.makespan_bound(2.0, 3.0, 4, True) == 2.0 + 3 * 3.0 + 3.0
    assert streams.makespan_bound(5.0, 1.0, 3, True) == 5.0 + 2 * 5.0 + 1.0
    assert streams.makespan_bound(5.0, 1.0, 1, True) == streams.makespan_bound(5.0, 1.0, 1, False) == 6.0


CHECKS = [check_launch_is_asynchronous_and_in_order, check_events, check_wait_event_orders_streams,
          check_wait_sees_the_record_at_the_call, check_errors_are_sticky_and_named, check_close,
          check_bad_arguments, check_outputs_equal_eager, check_compute_waits_for_its_copy,
          check_copy_waits_for_the_slot, check_overlap, check_utilization_and_bounds]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_streams(streams, check):
    check(streams)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: no torch.cuda streams, pinned memory "
                                                          "or copy engine to test here")
def test_cuda_pipeline(streams):
    import functools

    weights = torch.randn(512, 512, device="cuda")
    chunks = [torch.randn(4096, 512).pin_memory() for _ in range(6)]
    slots = [torch.empty(4096, 512, device="cuda") for _ in range(2)]
    event = functools.partial(torch.cuda.Event, enable_timing=True)
    compute = functools.partial(torch.matmul, other=weights)

    def copy(slot, chunk):
        slot.copy_(chunk, non_blocking=True)

    expected = [compute(c.cuda()) for c in chunks]
    copy_stream, compute_stream = streams.CudaStream(), streams.CudaStream()
    torch.cuda.synchronize()
    for copier in (compute_stream, copy_stream):
        outputs, timeline = streams.pipeline(chunks, copy, compute, slots, copier, compute_stream, event)
        assert all(torch.equal(o, e) for o, e in zip(outputs, expected, strict=True))
        assert all(s.compute_start >= s.copy_end for s in timeline)


class Broken:
    """The reference with one deliberate mistake."""

    def __init__(self, bug):
        from torchkata.profiling import streams as reference

        self.reference, self.bug = reference, bug
        self.Event, self.Span, self.CudaStream = reference.Event, reference.Span, reference.CudaStream
        self.makespan_bound = reference.makespan_bound

    def Stream(self, name="stream"):
        reference, bug = self.reference, self.bug

        class Wrong(reference.Stream):
            def launch(self, fn, *args):
                if bug == "synchronous":
                    fn(*args)
                    return None
                return super().launch(fn, *args)

            def wait_event(self, event):
                if bug == "waits_for_latest_record" and isinstance(event, reference.Event):
                    return self.launch(lambda: event.synchronize())
                return super().wait_event(event)

            def _run(self):
                if bug != "errors_stop_the_stream":
                    return super()._run()
                while (item := self.work.get()) is not None:
                    try:
                        item[0](*item[1])
                    except BaseException as err:
                        self.error = err
                        return None
                return None

        return Wrong(name)

    def pipeline(self, chunks, copy, compute, slots, copy_stream, compute_stream, event=None):
        reference, bug = self.reference, self.bug

        class NoWait:
            def __init__(self, stream):
                self.stream = stream

            def wait_event(self, event):
                return None

            def __getattr__(self, name):
                return getattr(self.stream, name)

        if bug == "compute_does_not_wait_for_copy":
            compute_stream = NoWait(compute_stream)
        if bug == "copy_does_not_wait_for_slot":
            copy_stream = NoWait(copy_stream)
        if bug == "one_slot_only":
            slots = slots[:1]
        outputs, timeline = reference.pipeline(chunks, copy, compute, slots, copy_stream, compute_stream, event)
        if bug == "timeline_in_seconds":
            timeline = [reference.Span(*(t / 1000 for t in span)) for span in timeline]
        return outputs, timeline

    def utilization(self, timeline):
        stats = self.reference.utilization(timeline)
        if self.bug == "makespan_from_first_copy":
            makespan = stats["makespan_ms"] - timeline[0].copy_start
            stats["compute_utilization"] = stats["compute_ms"] * len(timeline) / makespan
        return stats


BROKEN = {  # bug: the check that must reject it
    "synchronous": check_launch_is_asynchronous_and_in_order,
    "waits_for_latest_record": check_wait_sees_the_record_at_the_call,
    "errors_stop_the_stream": check_errors_are_sticky_and_named,
    "compute_does_not_wait_for_copy": check_compute_waits_for_its_copy,
    "copy_does_not_wait_for_slot": check_copy_waits_for_the_slot,
    "one_slot_only": check_outputs_equal_eager,
    "timeline_in_seconds": check_overlap,
    "makespan_from_first_copy": check_utilization_and_bounds,
}


@pytest.mark.suite_check
@pytest.mark.parametrize("bug", BROKEN)
def test_broken_streams_are_rejected(bug):
    check = BROKEN[bug]
    assert failing_checks([check], Broken(bug)) == [check.__name__]
