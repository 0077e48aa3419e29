"""a01 experiment: error of the hand-written softmax against torch.softmax, its speed, and why the max shift matters."""
from __future__ import annotations

import torch

from torchkata.pipeline.bench import compare
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"cases": 8, "max_rows": 64, "max_cols": 64, "bench_shape": [256, 256], "bench_seconds": 0.05},
    "default": {"cases": 64, "max_rows": 512, "max_cols": 512, "bench_shape": [4096, 1024], "bench_seconds": 0.5},
    "full": {"cases": 512, "max_rows": 2048, "max_cols": 2048, "bench_shape": [16384, 4096], "bench_seconds": 2.0},
}
LOGIT_SCALES = [1.0, 10.0, 100.0, 1e3, 1e4]


def naive_softmax(x: torch.Tensor, dim: int) -> torch.Tensor:
    exps = x.exp()
    return exps / exps.sum(dim=dim, keepdim=True)


def max_abs_error(got: torch.Tensor, want: torch.Tensor) -> float:
    """inf when the result has non-finite entries where the reference has none."""
    diff = (got - want).abs()
    return float("inf") if not torch.isfinite(diff).all() else float(diff.max())


def run(ctx: RunContext) -> None:
    p, g = ctx.params, ctx.generator
    value_error = grad_error = 0.0
    for case in range(p["cases"]):
        rows = int(torch.randint(1, p["max_rows"] + 1, (), generator=g))
        cols = int(torch.randint(1, p["max_cols"] + 1, (), generator=g))
        scale = LOGIT_SCALES[case % len(LOGIT_SCALES)]
        dim = case % 2 - 2  # -2 and -1 in turn
        x = (torch.randn(rows, cols, generator=g, dtype=torch.float64) * scale).requires_grad_()
        weights = torch.randn(rows, cols, generator=g, dtype=torch.float64)
        ours = ctx.impl.softmax(x, dim=dim)
        (grad_ours,) = torch.autograd.grad((ours * weights).sum(), x)
        want = torch.softmax(x, dim=dim)
        (grad_want,) = torch.autograd.grad((want * weights).sum(), x)
        value_error = max(value_error, max_abs_error(ours.detach(), want.detach()))
        grad_error = max(grad_error, max_abs_error(grad_ours, grad_want))
        ctx.log("max_abs_error_so_far", value_error, case)
    ctx.metrics.update(max_abs_error=value_error, grad_max_abs_error=grad_error, cases=p["cases"])

    # Why the max shift: error against torch.softmax as logits grow, stable vs naive (float32).
    probe = torch.randn(64, 128, generator=g)
    stable, naive = [], []
    for scale in LOGIT_SCALES:
        x = probe * scale
        want = torch.softmax(x, dim=-1)
        stable.append(max_abs_error(ctx.impl.softmax(x, dim=-1), want))
        naive.append(max_abs_error(naive_softmax(x, dim=-1), want))
    ctx.metrics["float32_error_by_logit_scale"] = {f"{s:g}": e for s, e in zip(LOGIT_SCALES, stable)}
    fig = ctx.figure(figsize=(5, 3.2))
    ax = fig.subplots()
    ax.plot(LOGIT_SCALES, [max(e, 1e-12) for e in stable], "o-", label="max-shifted (yours)")
    finite = [(s, e) for s, e in zip(LOGIT_SCALES, naive) if e != float("inf")]
    ax.plot([s for s, _ in finite], [max(e, 1e-12) for _, e in finite], "x--", label="naive exp/sum")
    for s, e in zip(LOGIT_SCALES, naive):
        if e == float("inf"):
            ax.axvline(s, color="tab:red", alpha=0.3)
    ax.set(xscale="log", yscale="log", xlabel="logit scale", ylabel="max |error| vs torch.softmax",
           title="a01: softmax error (red: naive overflows)")
    ax.legend()
    ctx.save_figure(fig, "error_vs_logit_scale")

    x = torch.randn(*p["bench_shape"], generator=g)
    ctx.bench["softmax"] = compare(lambda: ctx.impl.softmax(x, dim=-1), lambda: torch.softmax(x, dim=-1),
                                   min_run_time=p["bench_seconds"])
    ctx.bench["ratio"] = ctx.bench["softmax"]["ratio"]
    ctx.bench["shape"] = p["bench_shape"]
