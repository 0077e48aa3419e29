"""b02-06 experiment: the custom softmax Function against torch.softmax: values and gradients over random shapes, dims
and logit scales up to 1e4, the Jacobian against diag(y) - y yᵀ, gradcheck and gradgradcheck, and the forward and
backward timed against PyTorch's, at 4096x1024 and across row lengths."""
from __future__ import annotations

import torch

from torchkata.autograd.timing import forward_backward, plot_forward_backward
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"cases": 10, "max_rows": 64, "max_cols": 64, "jacobian_size": 8, "bench_shape": [256, 256],
              "elements": 1 << 14, "row_lengths": [16, 1024], "bench_seconds": 0.05},
    "default": {"cases": 40, "max_rows": 256, "max_cols": 256, "jacobian_size": 64, "bench_shape": [4096, 1024],
                "elements": 1 << 20, "row_lengths": [8, 64, 512, 4096], "bench_seconds": 0.3},
    "full": {"cases": 400, "max_rows": 2048, "max_cols": 2048, "jacobian_size": 512, "bench_shape": [16384, 4096],
             "elements": 1 << 24, "row_lengths": [8, 64, 512, 4096, 32768], "bench_seconds": 1.0},
}
LOGIT_SCALES = [1.0, 10.0, 100.0, 1e3, 1e4]


def max_abs(t: torch.Tensor) -> float:
    return float(t.detach().abs().max()) if t.numel() else 0.0


def run(ctx: RunContext) -> None:
    p, g, softmax = ctx.params, ctx.generator, ctx.impl.softmax
    value_error = grad_error = 0.0
    for case in range(p["cases"]):
        rows = int(torch.randint(1, p["max_rows"] + 1, (), generator=g))
        cols = int(torch.randint(1, p["max_cols"] + 1, (), generator=g))
        dim = case % 2 - 2  # -2 and -1 in turn
        x = torch.randn(rows, cols, generator=g, dtype=torch.float64) * LOGIT_SCALES[case % len(LOGIT_SCALES)]
        x.requires_grad_()
        upstream = torch.randn(rows, cols, generator=g, dtype=torch.float64)
        ours, want = softmax(x, dim=dim), torch.softmax(x, dim=dim)
        value_error = max(value_error, max_abs(ours - want))
        grad_error = max(grad_error, max_abs(torch.autograd.grad(ours, x, upstream)[0]
                                             - torch.autograd.grad(want, x, upstream)[0]))
        ctx.log("grad_max_abs_error_so_far", grad_error, case)

    x = torch.randn(p["jacobian_size"], generator=g, dtype=torch.float64)
    y = torch.softmax(x, dim=0)
    jacobian = torch.autograd.functional.jacobian(lambda t: softmax(t, dim=0), x)
    small = torch.randn(3, 4, 5, generator=g, dtype=torch.float64).requires_grad_()
    ctx.metrics.update(max_abs_error=value_error, grad_max_abs_error=grad_error, cases=p["cases"],
                       jacobian_max_abs_error=max_abs(jacobian - (torch.diag(y) - torch.outer(y, y))),
                       gradcheck=all(torch.autograd.gradcheck(lambda t: softmax(t, dim=d), (small,)) for d in (0, 1, 2)),
                       gradgradcheck=all(torch.autograd.gradgradcheck(lambda t: softmax(t, dim=d), (small,))
                                         for d in (0, 1, 2)))

    ours, native = (lambda t: softmax(t, dim=-1)), (lambda t: torch.softmax(t, dim=-1))
    x = torch.randn(*p["bench_shape"], generator=g).requires_grad_()
    ctx.bench["softmax"] = forward_backward(ours, native, (x,), p["bench_seconds"])
    ctx.bench["forward_ratio"] = ctx.bench["softmax"]["forward"]["ratio"]
    ctx.bench["backward_ratio"] = ctx.bench["softmax"]["backward"]["ratio"]
    ctx.bench["shape"] = p["bench_shape"]

    # the same number of elements in rows of different lengths: the native kernel fuses the row's passes
    by_length = [forward_backward(ours, native, (torch.randn(p["elements"] // n, n, generator=g).requires_grad_(),),
                                  p["bench_seconds"] / 4)
                 for n in p["row_lengths"]]
    ctx.bench["by_row_length"] = {str(n): {k: v["ratio"] for k, v in r.items()}
                                  for n, r in zip(p["row_lengths"], by_length)}
    fig = ctx.figure(figsize=(9, 3.2))
    plot_forward_backward(fig, p["row_lengths"], by_length, f"row length ({p['elements']} elements)",
                          "b02-06: softmax")
    ctx.save_figure(fig, "time_vs_row_length")
