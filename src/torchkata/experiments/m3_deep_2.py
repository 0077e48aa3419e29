"""m3-deep-2 experiment: the shared-memory tree sum (the CPU twin, and the CUDA kernel where there is a GPU) against
torch.sum and against a45's warp-shuffle sum on the same launch shape: its error over seeded trials against the
error bound of its tree, how that error grows with n next to torch.sum's and a plain loop's, and its speed."""
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
    lib = ops(library_path)
    targets = devices(ctx, lib.reduce_has_cuda())

    def total(x):
        return impl.shared_tree_sum(x, library_path)

    accuracy_trials(ctx, total, targets)
    error_growth(ctx, total, "shared-memory tree")

    def make(size, device):
        return (torch.randn(size, generator=ctx.generator).to(device),)

    sweep, largest = ctx.params["sweep"], ctx.params["sweep"][-1]
    against_torch = {device.type: speed_sweep(ctx, sweep, make, total, torch.sum, device, lambda n: 4 * n)
                     for device in targets}
    # the same launch shape folded by warp shuffles (a45): what the shared-memory levels cost
    against_warp = {device.type: speed_sweep(ctx, [largest], make, total, lib.warp_sum, device, lambda n: 4 * n)
                    for device in targets}
    ctx.bench["sweeps"] = {d: {str(n): v for n, v in s.items()} for d, s in against_torch.items()}
    ctx.bench["ratio"] = against_torch["cpu"][largest]["ratio"]
    ctx.bench["ratio_to_warp_shuffle"] = {d: s[largest]["ratio"] for d, s in against_warp.items()}
    if "cuda" in against_torch:
        ctx.bench["cuda_ratio"] = against_torch["cuda"][largest]["ratio"]
    plot_sweeps(ctx, against_torch, "shared-memory tree sum")
