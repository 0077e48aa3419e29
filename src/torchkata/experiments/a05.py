"""a05 experiment: the custom ReLU Function against F.relu: values and gradients (the kink at 0 included), gradcheck
and gradgradcheck, and the forward and backward timed against PyTorch's own at growing sizes."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from torchkata.autograd.timing import forward_backward, plot_forward_backward
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"cases": 8, "max_rows": 64, "max_cols": 64, "bench_shape": [256, 256], "sizes": [1 << 12, 1 << 16],
              "bench_seconds": 0.05},
    "default": {"cases": 32, "max_rows": 256, "max_cols": 256, "bench_shape": [4096, 1024],
                "sizes": [1 << 14, 1 << 17, 1 << 20, 1 << 22], "bench_seconds": 0.3},
    "full": {"cases": 512, "max_rows": 2048, "max_cols": 2048, "bench_shape": [16384, 4096],
             "sizes": [1 << k for k in range(10, 27, 2)], "bench_seconds": 1.0},
}


def gradient(fn, x, upstream):
    x = x.detach().requires_grad_()
    (grad,) = torch.autograd.grad(fn(x), x, upstream)
    return grad


def run(ctx: RunContext) -> None:
    p, g, relu = ctx.params, ctx.generator, ctx.impl.relu
    value_error = grad_error = 0.0
    zeros = zero_grad_mismatches = 0
    for case in range(p["cases"]):
        rows = int(torch.randint(1, p["max_rows"] + 1, (), generator=g))
        cols = int(torch.randint(1, p["max_cols"] + 1, (), generator=g))
        # rounded to a grid of 1/4, so a good share of the entries sit exactly on the kink at 0
        x = (torch.randn(rows, cols, generator=g, dtype=torch.float64) * 2).round() / 4
        upstream = torch.randn(rows, cols, generator=g, dtype=torch.float64)
        ours, want = gradient(relu, x, upstream), gradient(F.relu, x, upstream)
        value_error = max(value_error, float((relu(x) - F.relu(x)).abs().max()))
        grad_error = max(grad_error, float((ours - want).abs().max()))
        at_zero = x == 0
        zeros += int(at_zero.sum())
        zero_grad_mismatches += int((ours[at_zero] != want[at_zero]).sum())
        ctx.log("grad_max_abs_error_so_far", grad_error, case)
    x = torch.randn(8, 6, generator=g, dtype=torch.float64).requires_grad_()
    ctx.metrics.update(max_abs_error=value_error, grad_max_abs_error=grad_error, cases=p["cases"],
                       entries_at_zero=zeros, zero_grad_mismatches=zero_grad_mismatches,
                       gradcheck=torch.autograd.gradcheck(relu, (x,)),
                       gradgradcheck=torch.autograd.gradgradcheck(relu, (x,)))

    x = torch.randn(*p["bench_shape"], generator=g).requires_grad_()
    ctx.bench["relu"] = forward_backward(relu, F.relu, (x,), p["bench_seconds"])
    ctx.bench["forward_ratio"] = ctx.bench["relu"]["forward"]["ratio"]
    ctx.bench["backward_ratio"] = ctx.bench["relu"]["backward"]["ratio"]
    ctx.bench["shape"] = p["bench_shape"]

    by_size = [forward_backward(relu, F.relu, (torch.randn(n, generator=g).requires_grad_(),), p["bench_seconds"] / 4)
               for n in p["sizes"]]
    ctx.bench["by_size"] = {str(n): {k: v["ratio"] for k, v in r.items()} for n, r in zip(p["sizes"], by_size)}
    fig = ctx.figure(figsize=(9, 3.2))
    plot_forward_backward(fig, p["sizes"], by_size, "elements", "a05: ReLU")
    ctx.save_figure(fig, "time_vs_size")
