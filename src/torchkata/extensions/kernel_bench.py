"""What the kernel exercises' experiments share (a42 on): the devices a kernel runs on here (its CUDA half where
there is a GPU), its error against the native op relative to the size of the answer, and its speed against the
native op over sizes, as bench.json figures and a plot."""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from torchkata.pipeline.bench import compare
from torchkata.pipeline.runner import RunContext


def devices(ctx: RunContext, has_cuda: bool) -> list[torch.device]:
    """The CPU, and the GPU where torch has one and the library was built with its CUDA kernel (`has_cuda`);
    records which."""
    if not torch.cuda.is_available():
        ctx.half("cuda", skipped="no CUDA device")
        return [torch.device("cpu")]
    if not has_cuda:
        ctx.half("cuda", skipped="the extension was built without its CUDA kernel")
        return [torch.device("cpu")]
    ctx.half("cuda")
    return [torch.device("cpu"), torch.device("cuda")]


def relative_error(ours: Tensor, reference: Tensor) -> tuple[float, float]:
    """(max |ours - reference| / max |reference|, max |reference|). The scale is returned so that a check can refuse
    an answer too small to judge (an all-zero output matches an all-zero reference to any tolerance)."""
    scale = float(reference.detach().abs().max()) if reference.numel() else 0.0
    error = float((ours.detach() - reference.detach()).abs().max()) if reference.numel() else 0.0
    return (error / scale if scale > 0 else error), scale


def speed_sweep(ctx: RunContext, sizes: list[int], make: Callable[[int, torch.device], tuple],
                ours: Callable, native: Callable, device: torch.device, bytes_moved: Callable[[int], int]) -> dict:
    """Time ours and native on make(size, device)'s arguments for each size: {size: compare(...) with GB/s}."""
    sweep = {}
    for size in sizes:
        args = make(size, device)
        timing = compare(lambda: synced(ours, args, device), lambda: synced(native, args, device),
                         min_run_time=ctx.params["bench_seconds"])
        gigabytes = bytes_moved(size) / 1e9
        sweep[size] = timing | {"impl_gb_s": gigabytes / timing["impl_s"], "native_gb_s": gigabytes / timing["native_s"]}
    return sweep


def synced(fn: Callable, args: tuple, device: torch.device):
    """fn(*args), returning once the device has finished it."""
    out = fn(*args)
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # a CUDA launch returns before the kernel ends
    return out


def plot_sweeps(ctx: RunContext, sweeps: dict[str, dict], title: str, name: str = "speed") -> None:
    """GB/s over sizes, ours against native, one panel per device."""
    fig = ctx.figure(figsize=(4.5 * len(sweeps), 3.4))
    axes = fig.subplots(1, len(sweeps), squeeze=False)[0]
    for ax, (device, sweep) in zip(axes, sweeps.items()):
        sizes = list(sweep)
        ax.plot(sizes, [sweep[s]["impl_gb_s"] for s in sizes], "o-", label="hand-written kernel")
        ax.plot(sizes, [sweep[s]["native_gb_s"] for s in sizes], "s--", label="native torch op")
        ax.set(xscale="log", xlabel="elements", ylabel="GB/s (bytes read + written / time)", title=f"{title}: {device}")
        ax.grid(alpha=0.3)
        ax.legend()
    ctx.save_figure(fig, name)
