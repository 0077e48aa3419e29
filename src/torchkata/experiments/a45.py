"""a45 experiment: the warp-shuffle sum (the CPU twin, and the CUDA kernel where there is a GPU) against torch.sum:
its error over seeded trials against the error bound of its tree, how that error grows with n next to torch.sum's
and a plain loop's, and its speed against torch.sum over sizes."""
from __future__ import annotations

import numpy as np
import torch

from torchkata.extensions.kernel_bench import devices, plot_sweeps, speed_sweep
from torchkata.extensions.reduce import error_bound
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"trials": 4, "max_numel": 5000, "error_sizes": [1 << 10, 1 << 14], "sweep": [1 << 12],
              "bench_seconds": 0.02},
    "default": {"trials": 30, "max_numel": 1 << 20, "error_sizes": [1 << k for k in range(10, 25, 2)],
                "sweep": [1 << 10, 1 << 14, 1 << 18, 1 << 22, 1 << 24], "bench_seconds": 0.3},
    "full": {"trials": 200, "max_numel": 1 << 24, "error_sizes": [1 << k for k in range(10, 27, 2)],
             "sweep": [1 << 10, 1 << 14, 1 << 18, 1 << 22, 1 << 24, 1 << 26], "bench_seconds": 1.0},
}
# around a warp (32), a block (256), the last size with one element a thread (2^18), and the edge cases
FIXED_SIZES = [0, 1, 31, 32, 33, 255, 256, 257, (1 << 18) + 1]


def run(ctx: RunContext) -> None:
    p, g = ctx.params, ctx.generator
    library_path = str(ctx.input("reduce"))
    impl = ctx.impl
    targets = devices(ctx, impl.ops(library_path).reduce_has_cuda())
    worst = {"max_error_over_bound": 0.0, "max_rel_error": 0.0, "float32_max_rel_error": 0.0}
    sizes = FIXED_SIZES + [int(n) for n in torch.randint(1, p["max_numel"] + 1, (p["trials"],), generator=g)]
    for trial, numel in enumerate(sizes):
        dtype = (torch.float64, torch.float32)[trial % 2]
        x = (torch.randn(numel, generator=g, dtype=torch.float64) + 1).to(dtype)  # a sum far from 0
        exact = float(x.double().sum())
        for device in targets:
            error = abs(float(impl.warp_sum(x.to(device), library_path)) - exact)
            if numel:
                worst["max_error_over_bound"] = max(worst["max_error_over_bound"], error / error_bound(x))
                key = "max_rel_error" if dtype == torch.float64 else "float32_max_rel_error"
                worst[key] = max(worst[key], error / abs(exact))
        ctx.log("max_error_over_bound_so_far", worst["max_error_over_bound"], trial)
    ctx.metrics.update(worst, trials=len(sizes))

    growth = error_growth(ctx, lambda x: impl.warp_sum(x, library_path))
    ctx.metrics["error_growth"] = {str(n): errors for n, errors in growth.items()}
    plot_error_growth(ctx, growth)

    def make(size, device):
        return (torch.randn(size, generator=g).to(device),)

    sweeps = {device.type: speed_sweep(ctx, p["sweep"], make, lambda x: impl.warp_sum(x, library_path), torch.sum,
                                       device, lambda n: 4 * n)
              for device in targets}
    ctx.bench["sweeps"] = {d: {str(n): v for n, v in s.items()} for d, s in sweeps.items()}
    largest = p["sweep"][-1]
    ctx.bench["ratio"] = sweeps["cpu"][largest]["ratio"]
    if "cuda" in sweeps:
        ctx.bench["cuda_ratio"] = sweeps["cuda"][largest]["ratio"]
    plot_sweeps(ctx, sweeps, "sum of all elements")


def error_growth(ctx: RunContext, total) -> dict[int, dict[str, float]]:
    """Relative error of float32 sums of n values uniform in [0, 1) (all positive: no cancellation to hide the
    rounding) against the float64 sum, for ours, torch.sum and a plain loop (numpy's accumulate), with the bound."""
    growth = {}
    for n in ctx.params["error_sizes"]:
        x = torch.rand(n, generator=ctx.generator)
        exact = float(x.double().sum())
        loop = float(np.add.accumulate(x.numpy())[-1])
        growth[n] = {"ours": abs(float(total(x)) - exact) / exact, "torch_sum": abs(float(x.sum()) - exact) / exact,
                     "loop": abs(loop - exact) / exact, "bound": error_bound(x) / exact}
    return growth


def plot_error_growth(ctx: RunContext, growth: dict[int, dict[str, float]]) -> None:
    fig = ctx.figure(figsize=(5.5, 3.8))
    ax = fig.subplots()
    sizes = list(growth)
    styles = {"ours": ("o-", "warp-shuffle tree (ours)"), "torch_sum": ("s--", "torch.sum"),
              "loop": ("^:", "plain loop, float32"), "bound": ("k-", "bound of our tree")}
    for key, (style, label) in styles.items():
        # an exact sum has error 0: drawn at the floor of the axis, as log scales have no 0
        ax.plot(sizes, [max(growth[n][key], 1e-10) for n in sizes], style, label=label)
    ax.set(xscale="log", yscale="log", xlabel="n (float32 values uniform in [0, 1))",
           ylabel="|sum - exact| / exact", title="rounding error of a float32 sum")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ctx.save_figure(fig, "error_growth")
