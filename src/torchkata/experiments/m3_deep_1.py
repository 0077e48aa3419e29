"""m3-deep-1 experiment: the fused LayerNorm + Dropout kernel (the CPU twin, and the CUDA kernel where there is a GPU)
against F.layer_norm(x) * mask / (1 - p) under the same mask: values and gradients over seeded trials of widths
that are not multiples of the block, one-element rows, empty batches, p = 0 and p near 1; the kept fraction
against 1 - p; and its speed against the eager pair F.layer_norm + F.dropout, forward and forward + backward, over
widths."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from torchkata.extensions.kernel_bench import devices, relative_error
from torchkata.pipeline.bench import compare
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"trials": 2, "max_rows": 8, "max_width": 60, "rows": 64, "widths": [64], "bench_seconds": 0.02},
    "default": {"trials": 24, "max_rows": 64, "max_width": 1100, "rows": 4096, "widths": [128, 256, 512, 1024, 2048],
                "bench_seconds": 0.3},
    "full": {"trials": 200, "max_rows": 512, "max_width": 8192, "rows": 8192,
             "widths": [128, 256, 512, 1024, 2048, 4096, 8192], "bench_seconds": 1.0},
}
# (rows, width): one element, an empty batch, one-element rows, and widths around the CUDA block (256) and the CPU's
# 16 lanes
FIXED_SHAPES = [(1, 1), (0, 7), (3, 1), (2, 15), (5, 255), (2, 256), (2, 257), (4, 1000)]
PS = [0.0, 0.1, 0.5, 0.9, 0.999]
BENCH_P, BENCH_WIDTH = 0.1, 1024  # the default scale: rows 4096 x width 1024, float32


def reference(x, weight, bias, mask, p):
    """F.layer_norm over the last dimension, then dropout under the given keep-mask."""
    normed = F.layer_norm(x, (x.shape[-1],), weight, bias)
    return normed * mask / (1 - p) if p < 1 else torch.zeros_like(normed)


def run(ctx: RunContext) -> None:
    p, g = ctx.params, ctx.generator
    impl, library_path = ctx.impl, str(ctx.input("layernorm_dropout"))
    ops = impl.ops(library_path)
    targets = devices(ctx, ops.layernorm_dropout_has_cuda())
    worst = {"max_rel_error": 0.0, "float32_max_rel_error": 0.0, "grad_max_rel_error": 0.0, "mask_mismatches": 0}
    random_shapes = torch.stack([torch.randint(1, p["max_rows"] + 1, (p["trials"],), generator=g),
                                 torch.randint(1, p["max_width"] + 1, (p["trials"],), generator=g)], 1).tolist()
    shapes = FIXED_SHAPES + [tuple(s) for s in random_shapes]
    for trial, (rows, width) in enumerate(shapes):
        dtype, drop = (torch.float64, torch.float32)[trial % 2], PS[trial % len(PS)]
        x = torch.randn(rows, width, generator=g, dtype=dtype) * 3 + 1
        weight, bias, upstream = (torch.randn(*shape, generator=g, dtype=dtype)
                                  for shape in ((width,), (width,), (rows, width)))
        mask = impl.keep_mask(rows, width, drop, trial)
        expected_args = [t.clone().requires_grad_() for t in (x, weight, bias)]
        expected = reference(*expected_args, mask, drop)
        expected_grads = torch.autograd.grad(expected, expected_args, upstream, allow_unused=True)
        for device in targets:
            args = [t.to(device).requires_grad_() for t in (x, weight, bias)]
            out = impl.layernorm_dropout(*args, p=drop, seed=trial, library_path=library_path)
            grads = torch.autograd.grad(out, args, upstream.to(device))
            op_mask = ops.layernorm_dropout_forward(*(a.detach() for a in args), drop, trial, 1e-5)[3].cpu()
            worst["mask_mismatches"] += int((op_mask != mask).sum())
            key = "max_rel_error" if dtype == torch.float64 else "float32_max_rel_error"
            worst[key] = max(worst[key], relative_error(out.detach().cpu(), expected)[0])
            # the three gradients as one vector: grad_x of a one-element row is 0 exactly, and relative to itself
            # its rounding would be all error
            theirs = [torch.zeros(t.shape, dtype=dtype) if e is None else e for t, e in zip(args, expected_grads)]
            grad_error = relative_error(torch.cat([t.cpu().flatten() for t in grads]),
                                        torch.cat([t.flatten() for t in theirs]))[0]
            worst["grad_max_rel_error"] = max(worst["grad_max_rel_error"], grad_error)
        ctx.log("max_rel_error_so_far", worst["max_rel_error"], trial)
    ctx.metrics.update(worst, trials=len(shapes), **kept_fraction(impl, p["rows"], BENCH_WIDTH, BENCH_P))

    sweeps = {device.type: speed_sweep(ctx, impl, library_path, device) for device in targets}
    ctx.bench["sweeps"] = {d: {str(w): v for w, v in s.items()} for d, s in sweeps.items()}
    at = BENCH_WIDTH if BENCH_WIDTH in p["widths"] else p["widths"][-1]
    for device, sweep in sweeps.items():
        prefix = "" if device == "cpu" else f"{device}_"
        ctx.bench[f"{prefix}ratio"] = sweep[at]["forward"]["ratio"]  # ours / eager: below 1, the fused op is faster
        ctx.bench[f"{prefix}forward_backward_ratio"] = sweep[at]["forward_backward"]["ratio"]
    plot_sweeps(ctx, sweeps)


def kept_fraction(impl, rows: int, width: int, p: float) -> dict:
    """The share of kept elements of a rows x width mask, and its distance from 1 - p in standard deviations of a
    binomial count (|z| of a few at most for a fair coin per element)."""
    n = rows * width
    kept = float(impl.keep_mask(rows, width, p, 0).double().mean())
    return {"kept_fraction": kept, "kept_fraction_z": (kept - (1 - p)) / math.sqrt(p * (1 - p) / n)}


def speed_sweep(ctx: RunContext, impl, library_path: str, device: torch.device) -> dict:
    """{width: {"forward": compare(...), "forward_backward": compare(...)}} on rows x width float32 inputs."""
    g, sweep = ctx.generator, {}
    for width in ctx.params["widths"]:
        x = torch.randn(ctx.params["rows"], width, generator=g).to(device).requires_grad_()
        weight, bias = (torch.randn(width, generator=g).to(device).requires_grad_() for _ in range(2))
        upstream = torch.randn(ctx.params["rows"], width, generator=g).to(device)

        def fused():
            return impl.layernorm_dropout(x, weight, bias, BENCH_P, 1, library_path=library_path)

        def eager():
            return F.dropout(F.layer_norm(x, (width,), weight, bias), BENCH_P)

        def with_backward(forward):
            def step():
                with torch.enable_grad():  # compare() times under no_grad
                    return torch.autograd.grad(forward(), (x, weight, bias), upstream)
            return step

        seconds = ctx.params["bench_seconds"]
        sweep[width] = {"forward": compare(synced(fused, device), synced(eager, device), seconds),
                        "forward_backward": compare(synced(with_backward(fused), device),
                                                    synced(with_backward(eager), device), seconds)}
    return sweep


def synced(fn, device: torch.device):
    def call():
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)  # a CUDA launch returns before the kernel ends
        return out
    return call


def plot_sweeps(ctx: RunContext, sweeps: dict[str, dict]) -> None:
    fig = ctx.figure(figsize=(9.6, 3.6 * len(sweeps)))
    axes = fig.subplots(len(sweeps), 2, squeeze=False)
    for row, (device, sweep) in zip(axes, sweeps.items()):
        widths = list(sweep)
        for ax, phase in zip(row, ("forward", "forward_backward")):
            ax.plot(widths, [sweep[w][phase]["impl_s"] * 1e3 for w in widths], "o-", label="fused kernel (ours)")
            ax.plot(widths, [sweep[w][phase]["native_s"] * 1e3 for w in widths], "s--",
                    label="F.layer_norm + F.dropout")
            ax.set(xscale="log", xlabel=f"width ({ctx.params['rows']} rows, float32)", ylabel="median ms",
                   title=f"{phase.replace('_', ' + ')} on {device}, {sweep[widths[0]][phase]['threads']} threads")
            ax.set_xticks(widths, [str(w) for w in widths])
            ax.minorticks_off()
            ax.grid(alpha=0.3)
            ax.legend()
    ctx.save_figure(fig, "speed")
