"""Timing a hand-written op against its native PyTorch counterpart, in one process, as a ratio."""
from __future__ import annotations

import contextlib
import ctypes
import functools
import time
from typing import Callable

import torch
from torch.utils import benchmark

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_RETAIN_BYTES = 1 << 30
# A timing asked for at most this long is a smoke run's check that the bench runs, not a figure to read: one warm
# call and one timed call, where autoranging would spend ~0.3 s per timing (a whole smoke run's budget)
QUICK_S = 0.05


@functools.cache
def keep_freed_memory() -> bool:
    """Have glibc keep freed tensor memory in the process for reuse; True where it took effect.

    By default glibc maps large blocks (a 16 MB tensor) freshly and returns them on free, adapting its threshold
    as it goes: depending on what the process did before, every call of an op then page-faults its temporaries
    or none does, and the same softmax timed 7 ms in one process and 30 ms in the next. With both thresholds
    fixed high every op runs on reused memory, the state a training loop is in."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: its allocator has no such modes to pin
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, _RETAIN_BYTES) and libc.mallopt(_M_TRIM_THRESHOLD, _RETAIN_BYTES))


def median_seconds(fn: Callable[[], object], min_run_time: float) -> float:
    keep_freed_memory()
    if min_run_time <= QUICK_S:
        fn()
        start = time.perf_counter()
        fn()
        return max(time.perf_counter() - start, 1e-9)
    # at the run's threads, which `compare` reports: the Timer's own default is 1 thread
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_run_time).median


@contextlib.contextmanager
def unfilled_empty():
    """torch.empty without the NaN fill that deterministic mode (on in every pipeline run) adds to it.

    The fill makes uninitialised memory repeatable; it costs a full write pass over a tensor that a hand-written op
    allocates for its result (b01-04: 1.72 times torch.add with it, 1.11 without), where the native op allocates its
    output inside ATen, unfilled. So both are timed as a user without deterministic mode runs them."""
    before = torch.utils.deterministic.fill_uninitialized_memory
    torch.utils.deterministic.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.utils.deterministic.fill_uninitialized_memory = before


def compare(impl: Callable[[], object], native: Callable[[], object], min_run_time: float = 0.2) -> dict:
    """Median seconds of both and impl/native (above 1: the hand-written op is slower)."""
    with torch.no_grad(), unfilled_empty():
        impl_s = median_seconds(impl, min_run_time)
        native_s = median_seconds(native, min_run_time)
    return {"impl_s": impl_s, "native_s": native_s, "ratio": impl_s / native_s,
            "threads": torch.get_num_threads()}


def median_compare(impl, native, seconds: float, repeats: int) -> dict:
    """`compare` run `repeats` times, the run with the median ratio: one slow spell of a shared machine moves
    one of the two timings of a run, not the median of several runs."""
    runs = sorted((compare(impl, native, min_run_time=seconds) for _ in range(repeats)), key=lambda r: r["ratio"])
    return runs[len(runs) // 2] | {"ratios": [r["ratio"] for r in runs]}
