"""m4-deep-2 experiment: the Triton matmul against torch.matmul over seeded trials of shapes that are not multiples of
the blocks, in float32 and float16; the grouped tile order against row-major as the picture of which program computes
which tile, with the panels of A and B that the first wave of programs reads. Where there is a CUDA device the kernel
is compiled, and its float16 TFLOP/s at n = 4096 are compared with cuBLAS (the goal: at least 90%). Without one it
runs under Triton's interpreter, whose time is reported as what it is: the cost of simulating the kernel in Python,
not a speed of the kernel."""
from __future__ import annotations

import time

import torch

from torchkata.extensions.kernel_bench import relative_error
from torchkata.pipeline.bench import compare
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"fixed": 2, "trials": 1, "max_dim": 40, "tiles": 3, "group_m": 2, "interpreter_n": 32, "gpu_n": 1024,
              "bench_seconds": 0.02},
    "default": {"fixed": 4, "trials": 6, "max_dim": 80, "tiles": 12, "group_m": 4, "interpreter_n": 64, "gpu_n": 4096,
                "bench_seconds": 0.3},
    "full": {"fixed": 4, "trials": 30, "max_dim": 300, "tiles": 16, "group_m": 4, "interpreter_n": 64, "gpu_n": 8192,
             "bench_seconds": 1.0},
}
# (M, K, N): one element, an empty K (zeros), ragged edges of the 32-wide blocks, two groups of a 5 x 2 tile grid
FIXED_SHAPES = [(1, 1, 1), (3, 0, 4), (33, 40, 17), (160, 8, 64)]


def run(ctx: RunContext) -> None:
    p, g, impl = ctx.params, ctx.generator, ctx.impl
    compiled = not impl.interpreted()
    ctx.half("cuda", None if compiled else "no CUDA device: the kernel ran under Triton's interpreter on the CPU")
    device = "cuda" if compiled else "cpu"
    worst = {torch.float32: 0.0, torch.float16: 0.0}
    smallest_scale = float("inf")
    random_shapes = torch.randint(1, p["max_dim"] + 1, (p["trials"], 3), generator=g).tolist()
    shapes = FIXED_SHAPES[:p["fixed"]] + [tuple(s) for s in random_shapes]
    for trial, (m, k, n) in enumerate(shapes):
        for dtype in worst:
            a, b = (torch.randn(rows, cols, generator=g).to(device, dtype) for rows, cols in ((m, k), (k, n)))
            native = torch.matmul(a, b)
            error, scale = relative_error(impl.matmul(a, b).float(), native.float())
            worst[dtype] = max(worst[dtype], error)
            if k:
                smallest_scale = min(smallest_scale, scale)
        ctx.log("float32_max_rel_error_so_far", worst[torch.float32], trial)
    ctx.metrics.update(float32_max_rel_error=worst[torch.float32], float16_max_rel_error=worst[torch.float16],
                       trials=len(shapes), smallest_answer_scale=smallest_scale)

    orders = {"row_major": impl.tile_order(p["tiles"], p["tiles"], 1),
              "grouped": impl.tile_order(p["tiles"], p["tiles"], p["group_m"])}
    wave = p["tiles"]  # as many programs as a row of tiles, running at once
    ctx.metrics["first_wave_panels"] = {name: panels_read(order[:wave]) for name, order in orders.items()}
    plot_orders(ctx, orders, wave, p["group_m"])

    if compiled:
        ctx.bench["cuda"] = gpu_speed(ctx, impl)
    else:
        ctx.bench["interpreter"] = interpreter_time(impl, p["interpreter_n"])


def panels_read(programs: torch.Tensor) -> int:
    """Distinct row panels of A and column panels of B that these programs read: what a wave of programs running
    together loads from memory, and may share in L2."""
    return len(set(programs[:, 0].tolist())) + len(set(programs[:, 1].tolist()))


def interpreter_time(impl, size: int) -> dict:
    """Seconds of one interpreted size^3 product: Python simulating each program and K step, not the kernel's
    speed."""
    m = k = n = size
    a, b = torch.randn(m, k), torch.randn(k, n)
    start = time.perf_counter()
    impl.matmul(a, b)
    seconds = time.perf_counter() - start
    blocks = impl.CPU_CONFIG
    steps = -(-m // blocks["BLOCK_M"]) * -(-n // blocks["BLOCK_N"]) * -(-k // blocks["BLOCK_K"])
    return {"shape": [m, k, n], "seconds": seconds, "program_k_steps": steps, "seconds_per_step": seconds / steps,
            "note": "Triton's interpreter (numpy, one program at a time): not a speed comparison"}


def gpu_speed(ctx: RunContext, impl) -> dict:
    """float16 n x n x n against torch.matmul (cuBLAS) on the same stream, as TFLOP/s; the autotuner's pick."""
    n = ctx.params["gpu_n"]
    a, b = (torch.randn(n, n, generator=ctx.generator).to("cuda", torch.float16) for _ in range(2))
    impl.matmul(a, b)  # autotunes over the GPU configs once

    def ours():
        out = impl.matmul(a, b)
        torch.cuda.synchronize()
        return out

    def native():
        out = torch.matmul(a, b)
        torch.cuda.synchronize()
        return out

    timing = compare(ours, native, ctx.params["bench_seconds"])
    tera = 2 * n**3 / 1e12
    return timing | {"n": n, "dtype": "float16", "device": torch.cuda.get_device_name(),
                     "impl_tflops": tera / timing["impl_s"], "native_tflops": tera / timing["native_s"],
                     "fraction_of_cublas": timing["native_s"] / timing["impl_s"],
                     "best_config": str(getattr(getattr(impl, "autotuned_matmul_kernel", None), "best_config", None))}


def plot_orders(ctx: RunContext, orders: dict[str, torch.Tensor], wave: int, group_m: int) -> None:
    """Each output tile coloured by the program that computes it; the first wave's tiles outlined."""
    from matplotlib.patches import Rectangle

    fig = ctx.figure(figsize=(5.4 * len(orders), 4.8))
    axes = fig.subplots(1, len(orders), squeeze=False)[0]
    for ax, (name, order) in zip(axes, orders.items()):
        rows, cols = int(order[:, 0].max()) + 1, int(order[:, 1].max()) + 1
        program = torch.empty(rows, cols)
        program[order[:, 0].long(), order[:, 1].long()] = torch.arange(len(order), dtype=torch.float32)
        image = ax.imshow(program.numpy(), cmap="viridis")
        for pid, (row, col) in enumerate(order.tolist()):
            ax.text(col, row, str(pid), ha="center", va="center", fontsize=6, color="white" if pid < len(order) / 2
                    else "black")
            if pid < wave:
                ax.add_patch(Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1.5))
        label = "row-major" if name == "row_major" else f"grouped by {group_m} rows"
        ax.set_xticks(range(cols))
        ax.set_yticks(range(rows))
        ax.set(title=f"{label}:\nthe first {wave} programs (red) read {panels_read(order[:wave])} panels of A and B",
               xlabel="tile column (panel of B)", ylabel="tile row (panel of A)")
        fig.colorbar(image, ax=ax, shrink=0.8, label="program id")
    ctx.save_figure(fig, "tile_order")
