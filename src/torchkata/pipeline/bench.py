"""Timing a hand-written op against its native PyTorch counterpart, in one process, as a ratio."""
from __future__ import annotations

from typing import Callable

import torch
from torch.utils import benchmark


def median_seconds(fn: Callable[[], object], min_run_time: float) -> float:
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn})
    return timer.blocked_autorange(min_run_time=min_run_time).median


def compare(impl: Callable[[], object], native: Callable[[], object], min_run_time: float = 0.2) -> dict:
    """Median seconds of both and impl/native (above 1: the hand-written op is slower)."""
    with torch.no_grad():
        impl_s = median_seconds(impl, min_run_time)
        native_s = median_seconds(native, min_run_time)
    return {"impl_s": impl_s, "native_s": native_s, "ratio": impl_s / native_s,
            "threads": torch.get_num_threads()}
