"""b01-10: time tensor ops on the CPU and the GPU, and find the size from which the GPU wins.

Grade it:  torchkata check b01-10
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

# given: an op and how to make its inputs for a size n (matmul n x n, the others n*n elements)
OPS: dict[str, tuple[Callable, Callable[[int, torch.Generator], tuple[torch.Tensor, ...]]]] = {
    "matmul": (torch.mm, lambda n, g: (torch.randn(n, n, generator=g), torch.randn(n, n, generator=g))),
    "add": (torch.add, lambda n, g: (torch.randn(n * n, generator=g), torch.randn(n * n, generator=g))),
    "sum": (torch.sum, lambda n, g: (torch.randn(n * n, generator=g),)),
}


def synchronizer(device: str | torch.device) -> Callable[[], None]:
    """A callable that waits until `device` has finished its queued work: for "cuda"/"cuda:N" it synchronizes
    that device; for "cpu" it does nothing and returns None. Any other device type: ValueError naming it."""
    raise NotImplementedError("b01-10: write synchronizer")


def timed_call(op: Callable, inputs: Sequence[torch.Tensor], device: str | torch.device,
               include_transfer: bool) -> Callable[[], torch.Tensor]:
    """A no-argument statement to time. include_transfer=True: each call copies every (CPU) input to `device`
    with .to(device), runs op, and copies the result back with .to("cpu"). False: move the inputs once, now,
    and each call only runs op on them."""
    raise NotImplementedError("b01-10: write timed_call")


def measure(statement: Callable[[], object], sync: Callable[[], None], min_run_time: float) -> float:
    """Median seconds of one call of `statement`, with torch.utils.benchmark.Timer's blocked_autorange: call it
    once first (warm-up) and sync; time with a clock that calls `sync` before every read. min_run_time must be
    positive (ValueError naming it)."""
    raise NotImplementedError("b01-10: write measure")


def crossover(sizes: Sequence[int], cpu_seconds: Sequence[float], gpu_seconds: Sequence[float]) -> int | None:
    """The smallest size from which the GPU is strictly faster at that size and at every larger one; None if it
    is not faster at the largest (or there are no sizes). ValueError when the lengths differ ("one time per
    size") or the sizes are not strictly increasing."""
    raise NotImplementedError("b01-10: write crossover")


def sweep(name: str, sizes: Sequence[int], device: str, include_transfer: bool, min_run_time: float,
          generator: torch.Generator) -> list[dict]:
    """For each n in sizes: make OPS[name]'s inputs with `generator`, time timed_call(...) with measure(...) and
    the device's synchronizer, and return [{"n": n, "seconds": median, "max_abs_error": |statement() - op(inputs)|
    max, both on the CPU in float64}]."""
    raise NotImplementedError("b01-10: write sweep")
