"""m3-core-1: the prefetching loader, graded against the serial one: bitwise the same batches in the same order for a
seeded source whose transform draws from the generator (with ring depths 1 to 3, a short last batch, and batches
the consumer keeps), tensors the consumer owns (not the staging slots), batches prepared ahead but at most `depth`
waiting, a clean stop (no thread left) when the consumer breaks early or the producer raises (its exception reaches
the consumer with its message), and bad configuration refused with errors that name it. On a GPU the pinned,
non_blocking path on a side stream (skipped here with the reason)."""
import re
import threading
import time

import pytest
import torch

from grading import failing_checks

EXERCISE = "m3-core-1"
WAIT_S = 2.0  # the longest a check waits for the producer to get ahead (a loaded machine); it takes ms


@pytest.fixture(scope="module")
def loader(impl_for):
    return impl_for(EXERCISE)


def source(seed, count=5, batch_size=4):
    """Seeded batches whose 'augmentation' draws from the same generator; the last one short."""
    g = torch.Generator().manual_seed(seed)
    for i in range(count):
        size = batch_size if i < count - 1 else batch_size // 2
        x = torch.randn(size, 3, generator=g)
        yield x * torch.rand(1, generator=g), torch.full((size,), i)


def producer_threads(before):
    return [t for t in threading.enumerate() if t not in before and t.is_alive()]


def wait_for(condition, timeout=WAIT_S):
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.005)
    return condition()


def check_same_batches_in_order(loader):
    """Bitwise the serial loader's batches, for every depth, kept by the consumer across steps: each one is a new
    tensor, not a staging slot that a later batch overwrites."""
    expected = list(loader.serial(source(3), "cpu"))
    assert len(expected) == 5
    for depth in (1, 2, 3):
        got = list(loader.Prefetcher(source(3), depth=depth))
        assert len(got) == len(expected), depth
        for ours, theirs in zip(got, expected):
            assert len(ours) == 2
            for a, b in zip(ours, theirs):
                assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), depth


def check_serial(loader):
    """The baseline yields each batch on the device, in order, and pulls the next only when asked."""
    pulled = []

    def counting():
        for batch in source(1):
            pulled.append(1)
            yield batch

    batches = loader.serial(counting(), torch.device("cpu"))
    first = next(batches)
    assert len(pulled) == 1 and first[0].device.type == "cpu" and int(first[1][0]) == 0
    assert [int(b[1][0]) for b in batches] == [1, 2, 3, 4]


def check_slow_consumer_and_changing_batches(loader):
    """A consumer slower than the producer (the bounded queue fills, the end of the batches waits for room), batches
    that grow and change dtype (the slots are reallocated, not cast or cut): still serial's batches."""
    def changing():
        for shape, dtype in [((2, 3), torch.float32), ((4, 3), torch.float32), ((4, 3), torch.float64)]:
            yield (torch.arange(12, dtype=dtype)[:shape[0] * 3].reshape(shape) + shape[0],)

    expected = list(loader.serial(changing()))
    got = []
    for batch in loader.Prefetcher(changing(), depth=1):
        time.sleep(0.15)
        got.append(batch)
    assert len(got) == len(expected)
    for (ours,), (theirs,) in zip(got, expected):
        assert ours.dtype == theirs.dtype and torch.equal(ours, theirs)


def check_slow_producer(loader):
    """A producer slower than the consumer's patience for one wait: the consumer keeps waiting while it is alive."""
    def slow():
        for i in range(3):
            time.sleep(0.12)
            yield (torch.full((2,), float(i)),)

    assert [float(b[0][0]) for b in loader.Prefetcher(slow(), depth=1)] == [0.0, 1.0, 2.0]


def check_other_devices(loader):
    """Any torch device: on one that is not CUDA (meta: shapes without data) no pinned slots and no stream."""
    got = list(loader.Prefetcher(source(2), depth=1, device="meta"))
    assert [(x.device.type, x.shape, y.dtype) for x, y in got] == [("meta", (4, 3), torch.int64)] * 4 + [
        ("meta", (2, 3), torch.int64)]


def check_prepares_ahead_within_depth(loader):
    """While the consumer holds the first batch, the producer prepares ahead: `depth` batches into the slots and one
    more in hand, waiting for a slot; never more."""
    for depth in (1, 3, None):  # None: the default depth, 2
        pulled = []

        def counting():
            for i in range(20):
                pulled.append(i)
                yield (torch.full((2,), float(i)),)

        prefetcher = loader.Prefetcher(counting()) if depth is None else loader.Prefetcher(counting(), depth=depth)
        depth = depth or 2
        batches = iter(prefetcher)
        first = next(batches)
        assert float(first[0][0]) == 0.0
        assert wait_for(lambda: len(pulled) >= depth + 2), (depth, len(pulled))
        time.sleep(0.1)
        assert len(pulled) == depth + 2, f"depth {depth}: {len(pulled)} batches pulled while the consumer held one"
        assert [float(b[0][0]) for b in batches] == [float(i) for i in range(1, 20)]


def check_stops_when_consumer_breaks(loader):
    """Breaking out of the loop (over an endless source), closing it, or leaving a `with` block ends the producer."""
    def endless():
        i = 0
        while True:
            i += 1
            yield (torch.full((4,), float(i)),)

    before = set(threading.enumerate())
    for batch in loader.Prefetcher(endless(), depth=2):
        break
    assert not producer_threads(before), "a producer thread outlived the loop"
    with loader.Prefetcher(endless(), depth=1) as prefetcher:
        assert float(next(iter(prefetcher))[0][0]) == 1.0
    assert not producer_threads(before), "a producer thread outlived the with block"
    loader.Prefetcher(endless()).close()  # never started: nothing to stop


def check_producer_error_reaches_consumer(loader):
    """The batches before the error arrive; then the producer's exception, its type and message, in the consumer."""
    def failing():
        yield (torch.zeros(2),)
        yield (torch.ones(2),)
        raise ValueError("corrupt sample 17 in shard 3")

    before = set(threading.enumerate())
    got = []
    with pytest.raises(ValueError, match="corrupt sample 17 in shard 3"):
        for batch in loader.Prefetcher(failing(), depth=2):
            got.append(float(batch[0][0]))
    assert got == [0.0, 1.0]
    assert not producer_threads(before), "the producer thread outlived its error"


def check_bad_config_is_refused(loader):
    for depth in (0, -1, 1.5, True, "2"):
        message = r"Prefetcher: depth .* at least 1, got " + re.escape(repr(depth))
        with pytest.raises(ValueError, match=message):
            loader.Prefetcher(source(0), depth=depth)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="Prefetcher: pin_memory=True needs CUDA"):
            loader.Prefetcher(source(0), pin_memory=True)
        with pytest.raises(ValueError, match="Prefetcher: device cuda asked for, but torch has no CUDA device"):
            loader.Prefetcher(source(0), device="cuda")
    with pytest.raises(TypeError, match="Prefetcher: each batch must be a tuple of tensors, got list"):
        list(loader.Prefetcher(iter([[torch.zeros(2)]]), depth=1))
    prefetcher = loader.Prefetcher(source(0), depth=1)
    list(prefetcher)
    with pytest.raises(RuntimeError, match="Prefetcher: one pass only"):
        list(prefetcher)


CHECKS = [check_same_batches_in_order, check_serial, check_slow_consumer_and_changing_batches, check_slow_producer,
          check_other_devices, check_prepares_ahead_within_depth,
          check_stops_when_consumer_breaks, check_producer_error_reaches_consumer, check_bad_config_is_refused]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_loader(loader, check):
    check(loader)


def test_cpu_wheel_has_no_pinned_memory():
    """What the walkthrough says: without CUDA, pin_memory() raises instead of pinning (so the loader never asks)."""
    if torch.cuda.is_available():
        pytest.skip("CUDA present: pinned memory exists")
    with pytest.raises(RuntimeError, match="Cannot access accelerator device when none is available"):
        torch.zeros(2).pin_memory()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: no pinned memory, side stream or "
                                                          "non_blocking copy to test here")
def test_cuda_pinned_non_blocking_path(loader):
    expected = list(loader.serial(source(5), "cuda"))
    prefetcher = loader.Prefetcher(source(5), depth=2, device="cuda")
    assert prefetcher.pin_memory
    got = list(prefetcher)
    for ours, theirs in zip(got, expected, strict=True):
        for a, b in zip(ours, theirs):
            assert a.device.type == "cuda" and torch.equal(a, b)


class Broken:
    """The reference with one deliberate mistake."""

    def __init__(self, bug):
        from torchkata.data import prefetch

        self.serial, self.bug, self.reference = prefetch.serial, bug, prefetch

    def Prefetcher(self, batches, depth=2, device="cpu", pin_memory=None):
        reference, bug = self.reference, self.bug

        class Wrong(reference.Prefetcher):
            def _to_device(self, buffers):
                if bug == "yields_staging_slot":  # the slot itself: the next batch staged there overwrites it
                    self.free.put((buffers, None))
                    return tuple(buffers)
                return super()._to_device(buffers)

            def _hand_over(self, item):
                if bug == "error_swallowed" and isinstance(item, BaseException):
                    item = None
                return super()._hand_over(item)

            def close(self):
                if bug != "never_stops":
                    super().close()

        if bug == "unbounded":
            depth_used = 50 if isinstance(depth, int) and not isinstance(depth, bool) and depth > 0 else depth
            return Wrong(batches, depth_used, device, pin_memory)
        return Wrong(batches, depth, device, pin_memory)


@pytest.mark.suite_check
@pytest.mark.parametrize("bug", ["yields_staging_slot", "error_swallowed", "never_stops", "unbounded"])
def test_broken_loader_is_rejected(bug):
    assert failing_checks(CHECKS, Broken(bug))
