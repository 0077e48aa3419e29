"""b01-10 experiment: matmul, add and sum timed on the CPU and, where there is one, on the GPU, with and without
the host-device copies; the crossover size where the GPU wins, and a plot of time against size.

The CPU half runs everywhere. The CUDA half runs where torch sees a CUDA device, and is recorded as skipped with
the reason elsewhere (ctx.half). Timings and crossovers go to bench.json; metrics.json holds only the results'
errors against the CPU op, which are deterministic (0 on the CPU: the timed statement is the op).
"""
from __future__ import annotations

import torch

from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"ops": ["matmul", "add", "sum"], "sizes": [16, 64], "min_run_time": 0.01},
    "default": {"ops": ["matmul", "add", "sum"], "sizes": [16, 32, 64, 128, 256, 512, 1024, 2048],
                "min_run_time": 0.2},
    "full": {"ops": ["matmul", "add", "sum"], "sizes": [16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192],
             "min_run_time": 1.0},
}
# GPU-side error tolerance is the exercise's to state: float32 sums in another order (TF32 is off by default)
SETTINGS = (("cpu", "cpu", False), ("cuda", "cuda", False), ("cuda_with_copies", "cuda", True))


def run(ctx: RunContext) -> None:
    p, impl = ctx.params, ctx.impl
    on_gpu = ctx.half("cuda") if torch.cuda.is_available() else ctx.half(
        "cuda", skipped="no CUDA device here (torch.cuda.is_available() is False)")
    timings, errors = {}, {}
    for name in p["ops"]:
        timings[name] = {}
        for label, device, copies in SETTINGS:
            if device == "cuda" and not on_gpu:
                continue
            rows = impl.sweep(name, p["sizes"], device, copies, p["min_run_time"], ctx.generator)
            timings[name][label] = rows
            errors[f"{name}_{label}"] = max(r["max_abs_error"] for r in rows)
    ctx.metrics.update(result_max_abs_error=max(errors.values()), max_abs_error_by_setting=errors,
                       sizes=p["sizes"], cuda_half_ran=on_gpu)

    crossovers = {}
    for name, by_setting in timings.items():
        cpu = [r["seconds"] for r in by_setting["cpu"]]
        crossovers[name] = {label: impl.crossover(p["sizes"], cpu, [r["seconds"] for r in rows])
                            for label, rows in by_setting.items() if label != "cpu"}
    ctx.bench.update(timings=timings, crossover=crossovers, threads=torch.get_num_threads(),
                     gpu=torch.cuda.get_device_name() if on_gpu else None)

    fig = ctx.figure(figsize=(4 * len(timings), 3.5))
    for ax, (name, by_setting) in zip(fig.subplots(1, len(timings), squeeze=False)[0], timings.items()):
        for label, rows in by_setting.items():
            ax.plot([r["n"] for r in rows], [r["seconds"] for r in rows], "o-", ms=3, label=label)
            at = crossovers[name].get(label)
            if at is not None:
                ax.axvline(at, ls=":", color=ax.lines[-1].get_color())
        ax.set(xscale="log", yscale="log", xlabel="n (matmul n×n; add, sum n² elements)", ylabel="seconds",
               title=f"b01-10: {name}" + ("" if on_gpu else " (CPU only: no CUDA here)"))
        ax.legend(fontsize=7)
    ctx.save_figure(fig, "time_vs_size")
