"""a44 experiment: the tiled matmul (the CPU twin, and the CUDA kernel where there is a GPU) against torch.matmul:
values and gradients over seeded trials of shapes that are not multiples of the tiles, and its speed against
torch.matmul (MKL on this CPU, cuBLAS on a GPU) on square float32 products at the run's threads, as GFLOP/s."""
from __future__ import annotations

import torch

from torchkata.extensions.kernel_bench import devices, relative_error
from torchkata.pipeline.bench import compare, median_compare
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"trials": 3, "max_dim": 40, "sweep": [64], "bench_seconds": 0.02},
    "default": {"trials": 20, "max_dim": 300, "sweep": [128, 256, 512, 1024, 2048], "bench_seconds": 0.3},
    "full": {"trials": 100, "max_dim": 1000, "sweep": [128, 256, 512, 1024, 2048, 4096], "bench_seconds": 1.0},
}
# (M, K, N) around every tile edge (CPU: 6-row micro-tiles, 256-deep blocks, 120-row blocks, 2048-column panels;
# CUDA: 64 x 64 x 16), one element, and empty products
FIXED_SHAPES = [(1, 1, 1), (0, 5, 3), (4, 0, 3), (7, 13, 9), (65, 63, 64), (121, 257, 130), (3, 4, 2049)]
# the CPU goal: at least half of torch.matmul's speed at these sizes
GOAL_SIZES = (1024, 2048)


def run(ctx: RunContext) -> None:
    p, g = ctx.params, ctx.generator
    library_path = str(ctx.input("matmul"))
    impl = ctx.impl
    targets = devices(ctx, impl.ops(library_path).matmul_has_cuda())
    worst = {"max_rel_error": 0.0, "float32_max_rel_error": 0.0, "grad_max_rel_error": 0.0}
    smallest_scale = float("inf")
    random_shapes = torch.randint(1, p["max_dim"] + 1, (p["trials"], 3), generator=g).tolist()
    shapes = FIXED_SHAPES + [tuple(s) for s in random_shapes]
    for trial, (m, k, n) in enumerate(shapes):
        dtype = (torch.float64, torch.float32)[trial % 2]
        a, b, weights = (torch.randn(rows, cols, generator=g, dtype=dtype) for rows, cols in ((m, k), (k, n), (m, n)))
        native = torch.matmul(a, b)
        for device in targets:
            a_d, b_d = (t.to(device).requires_grad_() for t in (a, b))
            out = impl.matmul(a_d, b_d, library_path)
            grad_a, grad_b = torch.autograd.grad((out * weights.to(device)).sum(), (a_d, b_d))
            value, scale = relative_error(out.detach().cpu(), native)
            grad, _ = relative_error(torch.cat([grad_a.flatten(), grad_b.flatten()]).cpu(),
                                     torch.cat([(weights @ b.t()).flatten(), (a.t() @ weights).flatten()]))
            key = "max_rel_error" if dtype == torch.float64 else "float32_max_rel_error"
            worst[key] = max(worst[key], value)
            worst["grad_max_rel_error"] = max(worst["grad_max_rel_error"], grad)
            if native.numel() and k:
                smallest_scale = min(smallest_scale, scale)
        ctx.log("max_rel_error_so_far", worst["max_rel_error"], trial)
    ctx.metrics.update(worst, trials=len(shapes), smallest_answer_scale=smallest_scale)

    ops = impl.ops(library_path)
    sweeps = {device.type: speed_sweep(ctx, ops, device) for device in targets}
    ctx.bench["sweeps"] = {d: {str(n): v for n, v in s.items()} for d, s in sweeps.items()}
    ctx.bench["ratio"] = sweeps["cpu"][p["sweep"][-1]]["ratio"]
    # speed as a fraction of torch.matmul's (the goal: at least 0.5 at 1024^3 and 2048^3)
    ctx.bench["speed_vs_torch"] = {f"{d}_{n}": s[n]["native_s"] / s[n]["impl_s"]
                                   for d, s in sweeps.items() for n in s if n in GOAL_SIZES or d == "cuda"}
    plot_gflops(ctx, sweeps)


def speed_sweep(ctx: RunContext, ops, device: torch.device) -> dict:
    """{n: compare(ours, torch.matmul) with GFLOP/s} for square float32 products; at the goal sizes the median of
    three comparisons, as one slow spell of a shared machine would otherwise decide the figure."""
    g = ctx.generator
    sweep = {}
    for n in ctx.params["sweep"]:
        a, b = (torch.randn(n, n, generator=g).to(device) for _ in range(2))

        def ours():
            return synced(ops.matmul(a, b), device)

        def native():
            return synced(torch.matmul(a, b), device)

        seconds = ctx.params["bench_seconds"]
        timing = median_compare(ours, native, seconds, repeats=3) if n == 1024 else compare(ours, native, seconds)
        flops = 2 * n**3 / 1e9
        sweep[n] = timing | {"impl_gflops": flops / timing["impl_s"], "native_gflops": flops / timing["native_s"]}
    return sweep


def synced(out: torch.Tensor, device: torch.device) -> torch.Tensor:
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # a CUDA launch returns before the kernel ends
    return out


def plot_gflops(ctx: RunContext, sweeps: dict[str, dict]) -> None:
    fig = ctx.figure(figsize=(4.8 * len(sweeps), 3.6))
    axes = fig.subplots(1, len(sweeps), squeeze=False)[0]
    for ax, (device, sweep) in zip(axes, sweeps.items()):
        sizes = list(sweep)
        ax.plot(sizes, [sweep[n]["impl_gflops"] for n in sizes], "o-", label="tiled kernel (ours)")
        ax.plot(sizes, [sweep[n]["native_gflops"] for n in sizes], "s--", label="torch.matmul")
        ax.set(xscale="log", xlabel="n (n x n @ n x n, float32)", ylabel="GFLOP/s",
               title=f"matmul on {device}, {sweep[sizes[0]]['threads']} threads")
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.grid(alpha=0.3)
        ax.legend()
    ctx.save_figure(fig, "speed")
