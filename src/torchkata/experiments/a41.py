"""a41 experiment: the C++ add-constant extension against native `x + c`, values, gradients and speed."""
from __future__ import annotations

import torch

from torchkata.pipeline.bench import compare
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"cases": 8, "max_numel": 4096, "bench_numel": 1 << 16, "bench_seconds": 0.05},
    "default": {"cases": 64, "max_numel": 1 << 18, "bench_numel": 1 << 22, "bench_seconds": 0.5},
    "full": {"cases": 256, "max_numel": 1 << 22, "bench_numel": 1 << 24, "bench_seconds": 2.0},
}


def run(ctx: RunContext) -> None:
    p, g = ctx.params, ctx.generator
    library = str(ctx.input("add_constant"))
    value_error = grad_error = 0.0
    for case in range(p["cases"]):
        numel = int(torch.randint(1, p["max_numel"] + 1, (), generator=g))
        constant = float(torch.randn((), generator=g, dtype=torch.float64) * 10)
        x = torch.randn(numel, generator=g, dtype=torch.float64).requires_grad_()
        weights = torch.randn(numel, generator=g, dtype=torch.float64)
        ours = ctx.impl.add_constant(x, constant, library)
        (grad_ours,) = torch.autograd.grad((ours * weights).sum(), x)
        value_error = max(value_error, float((ours.detach() - (x.detach() + constant)).abs().max()))
        grad_error = max(grad_error, float((grad_ours - weights).abs().max()))
        ctx.log("max_abs_error_so_far", value_error, case)
    ctx.metrics.update(max_abs_error=value_error, grad_max_abs_error=grad_error, cases=p["cases"])
    x = torch.randn(p["bench_numel"], generator=g)
    ctx.bench["add_constant"] = compare(lambda: ctx.impl.add_constant(x, 3.0, library), lambda: x + 3.0,
                                        min_run_time=p["bench_seconds"])
    ctx.bench["ratio"] = ctx.bench["add_constant"]["ratio"]
    ctx.bench["numel"] = p["bench_numel"]
