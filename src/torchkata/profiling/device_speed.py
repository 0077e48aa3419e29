"""b01-10: how fast is an op on the CPU against the GPU, and from what size does the GPU win?

Two traps make naive timings of GPU code wrong. CUDA calls are asynchronous: `time.perf_counter()` around an op
times its launch (microseconds), not its work, unless the host waits for the device (`synchronize`) before each
clock read. And the first call pays one-off costs (context creation, kernel loading, allocator growth), so
an op is called once before timing. torch.utils.benchmark.Timer gives the statistics (blocks of calls until a
minimum time, the median); here its clock is one that synchronizes the device first.

Whether the GPU wins depends on what is timed: the op alone on data already on the device, or the op with the
host-to-device copy of its inputs and the copy of its result back, as a one-off call from CPU code pays.
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

import torch
from torch.utils import benchmark

# an op and how to make its inputs for a size n: matmul n x n, the others n*n elements
OPS: dict[str, tuple[Callable, Callable[[int, torch.Generator], tuple[torch.Tensor, ...]]]] = {
    "matmul": (torch.mm, lambda n, g: (torch.randn(n, n, generator=g), torch.randn(n, n, generator=g))),
    "add": (torch.add, lambda n, g: (torch.randn(n * n, generator=g), torch.randn(n * n, generator=g))),
    "sum": (torch.sum, lambda n, g: (torch.randn(n * n, generator=g),)),
}


def synchronizer(device: str | torch.device) -> Callable[[], None]:
    """What waits for `device` to finish its queued work: torch.cuda.synchronize for a CUDA device, nothing for
    the CPU (its ops return when they are done)."""
    device = torch.device(device)
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    if device.type == "cpu":
        return lambda: None
    raise ValueError(f"device must be cpu or cuda, not {str(device)!r}")


def timed_call(op: Callable, inputs: Sequence[torch.Tensor], device: str | torch.device,
               include_transfer: bool) -> Callable[[], torch.Tensor]:
    """The statement to time. With `include_transfer`, each call copies the (CPU) inputs to `device`, runs the op
    and copies the result back to the CPU; without, the inputs are moved once, here, and each call is the op."""
    if include_transfer:
        return lambda: op(*(x.to(device) for x in inputs)).to("cpu")
    placed = [x.to(device) for x in inputs]
    return lambda: op(*placed)


def measure(statement: Callable[[], object], sync: Callable[[], None], min_run_time: float) -> float:
    """Median seconds of one call of `statement`: one warm-up call first (one-off costs are not the op's), then
    torch.utils.benchmark's blocks of calls, every clock read preceded by `sync` so that queued device work
    counts in the block that queued it."""
    if min_run_time <= 0:
        raise ValueError(f"min_run_time must be positive, got {min_run_time}")
    statement()
    sync()

    def clock() -> float:
        sync()
        return time.perf_counter()

    # num_threads: the run's threads (the Timer's own default is 1)
    timer = benchmark.Timer(stmt="statement()", globals={"statement": statement}, timer=clock,
                            num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_run_time).median


def crossover(sizes: Sequence[int], cpu_seconds: Sequence[float], gpu_seconds: Sequence[float]) -> int | None:
    """The smallest size from which the GPU is faster at that size and every larger one measured; None if the GPU
    is not faster at the largest. Sizes must be increasing, one time per size on each device."""
    if not (len(sizes) == len(cpu_seconds) == len(gpu_seconds)):
        raise ValueError(f"one time per size: {len(sizes)} sizes, {len(cpu_seconds)} CPU and "
                         f"{len(gpu_seconds)} GPU times")
    if any(b <= a for a, b in zip(sizes, sizes[1:])):
        raise ValueError(f"sizes must be strictly increasing, got {list(sizes)}")
    found = None
    for size, cpu, gpu in reversed(list(zip(sizes, cpu_seconds, gpu_seconds))):
        if gpu >= cpu:
            break
        found = size
    return found


def sweep(name: str, sizes: Sequence[int], device: str, include_transfer: bool, min_run_time: float,
          generator: torch.Generator) -> list[dict]:
    """Time OPS[name] at each size on `device`: [{"n", "seconds", "max_abs_error"}], the error being the
    statement's result against the op run on the CPU (a device that computes wrong is not fast)."""
    op, make = OPS[name]
    rows = []
    for n in sizes:
        inputs = make(n, generator)
        statement = timed_call(op, inputs, device, include_transfer)
        seconds = measure(statement, synchronizer(device), min_run_time)
        error = (statement().to("cpu").double() - op(*inputs).double()).abs().max().item()
        rows.append({"n": n, "seconds": seconds, "max_abs_error": error})
    return rows
