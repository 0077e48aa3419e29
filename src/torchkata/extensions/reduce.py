"""What the reduction exercises share (a45: blocks folded by warp shuffles, m3-deep-2: by a shared-memory tree):
the operators of csrc/reduce, the error a float sum of a tree of their shape may make, and their experiments'
accuracy trials, error-growth plot, speed sweeps and scales (`experiment`).

Both sum the elements in the CUDA kernels' order (csrc/reduce/reduce_grid.h: blocks of 256 threads, at most 1024
blocks, a grid-stride loop, the block's fold, a second one-block pass over the partial sums), on the CPU too.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch
from torch import Tensor

from torchkata.extensions.kernel_bench import devices, plot_sweeps, speed_sweep
from torchkata.pipeline import extensions

if TYPE_CHECKING:
    from torchkata.pipeline.runner import RunContext

BLOCK, MAX_BLOCKS = 256, 1024
# additions on any element's path besides its lane's grid-stride loop: the first pass's fold (at most 10 levels:
# 5 in the warp, 5 over the warp sums), the second pass's loop over at most 1024 / 256 partial sums, and its fold
FOLD_LEVELS = 10 + 4 + 10


@lru_cache(maxsize=None)
def ops(library_path: str | None = None):
    return extensions.load("reduce", library_path)


def error_bound(x: Tensor) -> float:
    """A bound on |float sum - exact sum| for a tree of the kernels' shape: every element passes through at most
    d = ceil(n / lanes) + FOLD_LEVELS roundings, so the error is at most gamma_d * sum |x| with gamma_d = d u / (1 -
    d u) and u the unit roundoff of x's dtype (Higham, Accuracy and Stability of Numerical Algorithms, 4.2). A loop
    that adds the n elements one after another has d = n, and on a long sum its error shows it."""
    n = x.numel()
    lanes = BLOCK * min(max(math.ceil(n / BLOCK), 1), MAX_BLOCKS)
    depth = math.ceil(n / lanes) + FOLD_LEVELS
    unit_roundoff = torch.finfo(x.dtype).eps / 2
    gamma = depth * unit_roundoff / (1 - depth * unit_roundoff)
    return gamma * float(x.detach().double().abs().sum())


# around a warp (32), a block (256), the last size with one element a thread (2^18), and the edge cases
FIXED_SIZES = [0, 1, 31, 32, 33, 255, 256, 257, (1 << 18) + 1]


def accuracy_trials(ctx: RunContext, total: Callable[[Tensor], Tensor], targets: list[torch.device]) -> None:
    """Seeded trials (FIXED_SIZES, then ctx.params["trials"] sizes up to "max_numel"; float64 and float32 in turn;
    normal values around 1, a sum far from 0) on each device: the worst error against the float64 sum, relative to
    the tree's bound and to the sum, into ctx.metrics."""
    g = ctx.generator
    worst = {"max_error_over_bound": 0.0, "max_rel_error": 0.0, "float32_max_rel_error": 0.0}
    sizes = FIXED_SIZES + [int(n) for n in torch.randint(1, ctx.params["max_numel"] + 1, (ctx.params["trials"],),
                                                         generator=g)]
    for trial, numel in enumerate(sizes):
        dtype = (torch.float64, torch.float32)[trial % 2]
        x = (torch.randn(numel, generator=g, dtype=torch.float64) + 1).to(dtype)
        exact = float(x.double().sum())
        for device in targets:
            error = abs(float(total(x.to(device))) - exact)
            if numel:
                worst["max_error_over_bound"] = max(worst["max_error_over_bound"], error / error_bound(x))
                key = "max_rel_error" if dtype == torch.float64 else "float32_max_rel_error"
                worst[key] = max(worst[key], error / abs(exact))
        ctx.log("max_error_over_bound_so_far", worst["max_error_over_bound"], trial)
    ctx.metrics.update(worst, trials=len(sizes))


def error_growth(ctx: RunContext, total: Callable[[Tensor], Tensor], label: str) -> None:
    """Relative error of float32 sums of n values uniform in [0, 1) (all positive: no cancellation to hide the
    rounding) against the float64 sum, for ours, torch.sum and a plain loop (numpy's accumulate), with the bound,
    for n in ctx.params["error_sizes"]: ctx.metrics["error_growth"] and plots/error_growth.png."""
    growth = {}
    for n in ctx.params["error_sizes"]:
        x = torch.rand(n, generator=ctx.generator)
        exact = float(x.double().sum())
        loop = float(np.add.accumulate(x.numpy())[-1])
        growth[n] = {"ours": abs(float(total(x)) - exact) / exact, "torch_sum": abs(float(x.sum()) - exact) / exact,
                     "loop": abs(loop - exact) / exact, "bound": error_bound(x) / exact}
    ctx.metrics["error_growth"] = {str(n): errors for n, errors in growth.items()}

    fig = ctx.figure(figsize=(5.5, 3.8))
    ax = fig.subplots()
    sizes = list(growth)
    styles = {"ours": ("o-", f"{label} (ours)"), "torch_sum": ("s--", "torch.sum"),
              "loop": ("^:", "plain loop, float32"), "bound": ("k-", "bound of our tree")}
    for key, (style, name) in styles.items():
        # an exact sum has error 0: drawn at the floor of the axis, as log scales have no 0
        ax.plot(sizes, [max(growth[n][key], 1e-10) for n in sizes], style, label=name)
    ax.set(xscale="log", yscale="log", xlabel="n (float32 values uniform in [0, 1))",
           ylabel="|sum - exact| / exact", title="rounding error of a float32 sum")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ctx.save_figure(fig, "error_growth")


SCALES = {
    "smoke": {"trials": 4, "max_numel": 5000, "error_sizes": [1 << 10, 1 << 14], "sweep": [1 << 12],
              "bench_seconds": 0.02},
    "default": {"trials": 30, "max_numel": 1 << 20, "error_sizes": [1 << k for k in range(10, 25, 2)],
                "sweep": [1 << 10, 1 << 14, 1 << 18, 1 << 22, 1 << 24], "bench_seconds": 0.3},
    "full": {"trials": 200, "max_numel": 1 << 24, "error_sizes": [1 << k for k in range(10, 27, 2)],
             "sweep": [1 << 10, 1 << 14, 1 << 18, 1 << 22, 1 << 24, 1 << 26], "bench_seconds": 1.0},
}


def experiment(ctx: RunContext, method: str, label: str, title: str, baseline: str | None = None) -> None:
    """Both exercises' run: the learner's `method` (an op of their module, called with the built library) over
    seeded trials against its error bound, its error growth, and its speed against torch.sum over sizes; with a
    `baseline` op of the library, also against that at the largest size (the same launch shape, another fold)."""
    library_path = str(ctx.input("reduce"))
    lib = ops(library_path)
    targets = devices(ctx, lib.reduce_has_cuda())  # the library's build, whoever wrote the op

    def total(x):
        return getattr(ctx.impl, method)(x, library_path)

    accuracy_trials(ctx, total, targets)
    error_growth(ctx, total, label)

    def make(size, device):
        return (torch.randn(size, generator=ctx.generator).to(device),)

    sweep, largest = ctx.params["sweep"], ctx.params["sweep"][-1]
    against_torch = {device.type: speed_sweep(ctx, sweep, make, total, torch.sum, device, lambda n: 4 * n)
                     for device in targets}
    ctx.bench["sweeps"] = {d: {str(n): v for n, v in s.items()} for d, s in against_torch.items()}
    ctx.bench["ratio"] = against_torch["cpu"][largest]["ratio"]
    if baseline is not None:
        native = getattr(lib, baseline)
        ctx.bench[f"ratio_to_{baseline}"] = {
            device.type: speed_sweep(ctx, [largest], make, total, native, device, lambda n: 4 * n)[largest]["ratio"]
            for device in targets}
    if "cuda" in against_torch:
        ctx.bench["cuda_ratio"] = against_torch["cuda"][largest]["ratio"]
    plot_sweeps(ctx, against_torch, title)
