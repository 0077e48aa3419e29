"""m3-deep-3: the table of every hand-written kernel against its native PyTorch op. The kernels and their native
ops are given (torchkata.extensions.kernel_registry.KERNELS, one `Kernel` entry each); write the harness that checks
each row, then times ours and the native op in this process on the same threads, and the CSV writer.

Timings: torchkata.pipeline.bench.median_compare (torch.utils.benchmark, under no_grad); a CUDA call must be waited
for (torchkata.extensions.kernel_bench.synced). Errors: torchkata.extensions.kernel_bench.relative_error.
Grade it:  torchkata check m3-deep-3
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from torchkata.extensions.kernel_registry import Kernel

PASSES = ("forward", "forward_backward")
# the table's columns, in this order
COLUMNS = ("device", "kernel", "extension", "pass", "size", "shapes", "threads", "ours_ms", "native_ms", "ratio",
           "unit", "ours_throughput", "native_throughput", "max_rel_error", "tolerance", "status")


def answer(out) -> Tensor:
    """What a kernel is judged by: its output, or the first of its outputs (kNN's distances)."""
    raise NotImplementedError("m3-deep-3: pick the answer of an output")


def run_pass(fn: Callable, inputs: tuple, upstream: Tensor | None) -> tuple[Tensor, ...]:
    """(answer,) of fn(*inputs); with an upstream gradient, (answer, the gradients of its floating-point tensor
    inputs)."""
    raise NotImplementedError("m3-deep-3: run a forward, or a forward and backward")


def max_rel_error(ours: tuple[Tensor, ...], expected: tuple[Tensor, ...]) -> float:
    """The worst max |ours - expected| / max |expected| over the pass's tensors; inf where a shape is wrong."""
    raise NotImplementedError("m3-deep-3: compare a pass's tensors")


def check(ours: Callable, inputs: tuple, upstream: Tensor | None, expected: tuple[Tensor, ...]) -> tuple[float, str]:
    """(max_rel_error of ours's pass on these inputs against the expected tensors, the error ours raised or "")."""
    raise NotImplementedError("m3-deep-3: check a kernel before timing it")


def work(kernel: Kernel, inputs: tuple, outputs: tuple[Tensor, ...], upstream: Tensor | None) -> tuple[str, float]:
    """("GFLOP/s", GFLOP of a call) where the kernel counts its FLOPs, else ("GB/s", the GB the pass must move at
    least: its tensor inputs and outputs; with the backward also the upstream gradient and the inputs again)."""
    raise NotImplementedError("m3-deep-3: the work of a call")


def shapes(inputs: tuple) -> str:
    """The inputs for the table: "64x3, 64x3, 16" (tensors' shapes, other inputs' repr)."""
    raise NotImplementedError("m3-deep-3: describe the inputs")


def benchmark(kernel: Kernel, device: torch.device, sizes: tuple[int, ...], generator: torch.Generator,
              library_path: str | None, seconds: float, repeats: int) -> list[dict]:
    """The kernel's rows on `device`: per size, the forward and, for a kernel with a backward, forward + backward,
    each checked, then timed (median_compare(ours, native, seconds, repeats)) if it passed. One row saying why,
    where the kernel is not benchmarked on this device (kernel.skip)."""
    raise NotImplementedError("m3-deep-3: the kernel's rows")


def write_csv(rows: list[dict], path) -> None:
    """The table as CSV: a header of COLUMNS, one line a row (empty where a row has no value), floats with 4
    significant digits."""
    raise NotImplementedError("m3-deep-3: write the table")
