"""a42 experiment: the hand-written add kernel (CPU, and CUDA where there is a GPU) against torch.add, values and
gradients over seeded trials of awkward sizes, and its speed against torch.add over sizes."""
from __future__ import annotations

import torch

from torchkata.extensions.kernel_bench import devices, plot_sweeps, relative_error, speed_sweep
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"trials": 2, "max_numel": 2000, "sweep": [1 << 12], "bench_seconds": 0.02},
    "default": {"trials": 40, "max_numel": 1 << 20, "sweep": [1 << 10, 1 << 14, 1 << 18, 1 << 22],
                "bench_seconds": 0.3},
    "full": {"trials": 200, "max_numel": 1 << 24, "sweep": [1 << 10, 1 << 14, 1 << 18, 1 << 22, 1 << 25],
             "bench_seconds": 1.0},
}
# the kernels' block is 256 threads: sizes around it, and the edge cases, before random ones
FIXED_SIZES = [0, 1, 255, 256, 257, 4097]


def run(ctx: RunContext) -> None:
    p, g = ctx.params, ctx.generator
    library_path = str(ctx.input("add"))
    impl = ctx.impl
    targets = devices(ctx, impl.library(library_path).has_cuda())
    worst = {"max_rel_error": 0.0, "float32_max_rel_error": 0.0, "grad_max_rel_error": 0.0}
    smallest_scale = float("inf")
    sizes = FIXED_SIZES + [int(n) for n in torch.randint(1, p["max_numel"] + 1, (p["trials"],), generator=g)]
    for trial, numel in enumerate(sizes):
        dtype = (torch.float32, torch.float64)[trial % 2]
        alpha = float(torch.randn((), generator=g) * 3)
        a, b, weights = (torch.randn(numel, generator=g, dtype=dtype) for _ in range(3))
        for device in targets:
            a_d, b_d = (t.to(device).requires_grad_() for t in (a, b))
            out = impl.add(a_d, b_d, alpha, library_path)
            grad_a, grad_b = torch.autograd.grad((out * weights.to(device)).sum(), (a_d, b_d))
            value, scale = relative_error(out.cpu(), torch.add(a, b, alpha=alpha))
            grad, _ = relative_error(torch.cat([grad_a, grad_b]).cpu(), torch.cat([weights, alpha * weights]))
            key = "max_rel_error" if dtype == torch.float64 else "float32_max_rel_error"
            worst[key] = max(worst[key], value)
            worst["grad_max_rel_error"] = max(worst["grad_max_rel_error"], grad)
            if numel:
                smallest_scale = min(smallest_scale, scale)
        ctx.log("max_rel_error_so_far", worst["max_rel_error"], trial)
    ctx.metrics.update(worst, trials=len(sizes), smallest_answer_scale=smallest_scale)

    def make(size, device):
        a, b = (torch.randn(size, generator=g).to(device) for _ in range(2))
        return a, b

    sweeps = {device.type: speed_sweep(ctx, p["sweep"], make, lambda a, b: impl.add(a, b, 0.5, library_path),
                                       lambda a, b: torch.add(a, b, alpha=0.5), device, lambda n: 3 * 4 * n)
              for device in targets}
    ctx.bench["sweeps"] = {d: {str(n): v for n, v in s.items()} for d, s in sweeps.items()}
    largest = p["sweep"][-1]
    ctx.bench["ratio"] = sweeps["cpu"][largest]["ratio"]
    if "cuda" in sweeps:
        ctx.bench["cuda_ratio"] = sweeps["cuda"][largest]["ratio"]
    plot_sweeps(ctx, sweeps, "a + 0.5 b")
