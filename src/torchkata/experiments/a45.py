"""a45 experiment: the warp-shuffle sum (the CPU twin, and the CUDA kernel where there is a GPU) against torch.sum:
its error over seeded trials against the error bound of its tree, how that error grows with n next to torch.sum's
and a plain loop's, and its speed against torch.sum over sizes."""
from __future__ import annotations

import torch

from torchkata.extensions.kernel_bench import devices, plot_sweeps, speed_sweep
from torchkata.extensions.reduce import accuracy_trials, error_growth, ops
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"trials": 4, "max_numel": 5000, "error_sizes": [1 << 10, 1 << 14], "sweep": [1 << 12],
              "bench_seconds": 0.02},
    "default": {"trials": 30, "max_numel": 1 << 20, "error_sizes": [1 << k for k in range(10, 25, 2)],
                "sweep": [1 << 10, 1 << 14, 1 << 18, 1 << 22, 1 << 24], "bench_seconds": 0.3},
    "full": {"trials": 200, "max_numel": 1 << 24, "error_sizes": [1 << k for k in range(10, 27, 2)],
             "sweep": [1 << 10, 1 << 14, 1 << 18, 1 << 22, 1 << 24, 1 << 26], "bench_seconds": 1.0},
}


def run(ctx: RunContext) -> None:
    library_path = str(ctx.input("reduce"))
    impl = ctx.impl
    targets = devices(ctx, ops(library_path).reduce_has_cuda())  # the library's build, whoever wrote the op

    def total(x):
        return impl.warp_sum(x, library_path)

    accuracy_trials(ctx, total, targets)
    error_growth(ctx, total, "warp-shuffle tree")

    def make(size, device):
        return (torch.randn(size, generator=ctx.generator).to(device),)

    sweeps = {device.type: speed_sweep(ctx, ctx.params["sweep"], make, total, torch.sum, device, lambda n: 4 * n)
              for device in targets}
    ctx.bench["sweeps"] = {d: {str(n): v for n, v in s.items()} for d, s in sweeps.items()}
    largest = ctx.params["sweep"][-1]
    ctx.bench["ratio"] = sweeps["cpu"][largest]["ratio"]
    if "cuda" in sweeps:
        ctx.bench["cuda_ratio"] = sweeps["cuda"][largest]["ratio"]
    plot_sweeps(ctx, sweeps, "sum of all elements")
