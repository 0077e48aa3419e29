"""m3-deep-3: every hand-written kernel against its native PyTorch op (kernel_registry.KERNELS), as one table.

Each row is one (kernel, size, pass) on one device: ours and the native op on the same inputs, in this process, on
the same threads. The row is checked before it is timed (the timing of a wrong kernel measures nothing): a kernel
whose answer, or with the backward whose gradients, are off by more than its tolerance relative to the largest
expected value, or that raises, fails its row, which then has no times. Times are medians of torch.utils.benchmark
(pipeline.bench.median_compare), synchronised on a GPU; ratio = ours / native (below 1: ours is faster).
"""
from __future__ import annotations

import csv
import math
from typing import Callable

import torch
from torch import Tensor

from torchkata.extensions.kernel_bench import relative_error, synced
from torchkata.extensions.kernel_registry import Kernel
from torchkata.pipeline.bench import median_compare
from torchkata.pipeline.files import atomic_path

PASSES = ("forward", "forward_backward")
COLUMNS = ("device", "kernel", "extension", "pass", "size", "shapes", "threads", "ours_ms", "native_ms", "ratio",
           "unit", "ours_throughput", "native_throughput", "max_rel_error", "tolerance", "status")


def answer(out) -> Tensor:
    """What a kernel is judged by: its output, or the first of its outputs (kNN's distances: its indices may order
    tied points either way)."""
    return out[0] if isinstance(out, tuple) else out


def run_pass(fn: Callable, inputs: tuple, upstream: Tensor | None) -> tuple[Tensor, ...]:
    """(answer,) of fn(*inputs); with an upstream gradient, (answer, the gradients of its floating-point tensor inputs),
    through leaves of their own (the inputs' own flags stay as they are)."""
    if upstream is None:
        return (answer(fn(*inputs)),)
    with torch.enable_grad():  # the timings run under no_grad
        leaves = {i: x.detach().requires_grad_() for i, x in enumerate(inputs)
                  if isinstance(x, Tensor) and x.is_floating_point()}
        out = answer(fn(*(leaves.get(i, x) for i, x in enumerate(inputs))))
        # an input the judged answer does not use (a48's depths, which only its depth output reads) gets zeros
        return out, *torch.autograd.grad(out, list(leaves.values()), upstream, materialize_grads=True)


def max_rel_error(ours: tuple[Tensor, ...], expected: tuple[Tensor, ...]) -> float:
    """The worst max |ours - expected| / max |expected| over the pass's tensors (in float64); inf where a shape is wrong
    (a difference would broadcast it)."""
    if any(a.shape != b.shape for a, b in zip(ours, expected)):
        return math.inf
    return max(relative_error(a.double(), b.double())[0] for a, b in zip(ours, expected))


def check(ours: Callable, inputs: tuple, upstream: Tensor | None, expected: tuple[Tensor, ...]) -> tuple[float, str]:
    """(max_rel_error of ours's pass on these inputs against the expected tensors, the error ours raised or "")."""
    try:
        found = run_pass(ours, inputs, upstream)
    except Exception as err:  # a kernel that raises fails its row; the others are still measured
        return math.inf, f"{type(err).__name__}: {err}"
    return max_rel_error(found, expected), ""


def work(kernel: Kernel, inputs: tuple, outputs: tuple[Tensor, ...], upstream: Tensor | None) -> tuple[str, float]:
    """(the throughput's unit, one call's amount of work): GFLOP where the kernel counts its FLOPs, else the GB a pass
    must at least move, every tensor it reads or writes once: the inputs and outputs; with the backward also the
    upstream gradient, the inputs again (the backward reads what the forward saved) and the gradients."""
    backward = upstream is not None
    if kernel.flops is not None:
        return "GFLOP/s", kernel.flops(inputs, backward) / 1e9
    tensors = [t for t in inputs if isinstance(t, Tensor)]
    moved = sum(t.nbytes for t in (*tensors, *outputs, *((upstream, *tensors) if backward else ())))
    return "GB/s", moved / 1e9


def shapes(inputs: tuple) -> str:
    """The inputs for the table: "64x3, 64x3, 16" (tensors' shapes, other inputs' repr)."""
    return ", ".join("x".join(map(str, x.shape)) if isinstance(x, Tensor) else repr(x) for x in inputs)


def benchmark(kernel: Kernel, device: torch.device, sizes: tuple[int, ...], generator: torch.Generator,
              library_path: str | None, seconds: float, repeats: int) -> list[dict]:
    """The kernel's rows on `device`: per size, the forward and, for a kernel with a backward, forward + backward.
    One row saying why, where the kernel is not benchmarked on this device (kernel.skip)."""
    base = {"device": device.type, "kernel": kernel.name, "extension": kernel.extension or ""}
    if device.type in kernel.skip:
        return [base | {"status": f"skipped: {kernel.skip[device.type]}"}]
    ours = kernel.ours if kernel.extension is None else _with_library(kernel.ours, library_path)
    expected = kernel.expected or kernel.native
    rows = []
    for size in sizes:
        for backward in (False, True) if kernel.backward else (False,):
            inputs = tuple(x.to(device) if isinstance(x, Tensor) else x for x in kernel.make(size, generator))
            upstream = None
            if backward:
                with torch.no_grad():
                    shape = answer(kernel.native(*inputs)).shape
                upstream = torch.randn(shape, generator=generator).to(device)
            reference = run_pass(expected, inputs, upstream)
            error, raised = check(ours, inputs, upstream, reference)
            row = base | {"pass": PASSES[backward], "size": size, "shapes": shapes(inputs), "max_rel_error": error,
                          "tolerance": kernel.tolerance}
            if not error <= kernel.tolerance:  # NaN fails too
                rows.append(row | {"status": f"error: {raised}" if raised else "mismatch"})
                continue
            timing = median_compare(lambda: synced(run_pass, (ours, inputs, upstream), device),
                                    lambda: synced(run_pass, (kernel.native, inputs, upstream), device),
                                    seconds, repeats)
            unit, amount = work(kernel, inputs, reference, upstream)
            rows.append(row | {"threads": timing["threads"], "ours_ms": timing["impl_s"] * 1e3,
                               "native_ms": timing["native_s"] * 1e3, "ratio": timing["ratio"], "unit": unit,
                               "ours_throughput": amount / timing["impl_s"],
                               "native_throughput": amount / timing["native_s"], "status": "ok"})
    return rows


def _with_library(ours: Callable, library_path: str | None) -> Callable:
    return lambda *inputs: ours(*inputs, library_path=library_path)


def write_csv(rows: list[dict], path) -> None:
    """The table, one line a row, the columns COLUMNS (empty where a row has no value: a skipped or failed row has no
    times); numbers with 4 significant digits."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: f"{v:.4g}" if isinstance(v, float) else v for k, v in row.items()})
