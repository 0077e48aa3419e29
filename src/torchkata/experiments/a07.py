"""a07 experiment: the hand-written LayerNorm against F.layer_norm over random shapes, normalized_shapes and affine
settings (values and gradients), its error in float32, float16 and bfloat16, what eps does to rows of small variance,
and the forward and backward timed against F.layer_norm at 4096x1024."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from torchkata.autograd.timing import forward_backward
from torchkata.pipeline.bench import compare
from torchkata.pipeline.runner import RunContext

SCALES = {
    # gradcheck and a backward timed with a given upstream gradient import torch's symbolic shapes (sympy, 1.3 s,
    # more than a smoke run's budget): the smoke run checks gradients against F.layer_norm's and times the forward
    "smoke": {"cases": 6, "max_size": 6, "row_stds": 9, "bench_shape": [256, 256], "bench_seconds": 0.02,
              "gradcheck": False, "bench_backward": False},
    "default": {"cases": 60, "max_size": 12, "row_stds": 41, "bench_shape": [4096, 1024], "bench_seconds": 0.3,
                "gradcheck": True, "bench_backward": True},
    "full": {"cases": 600, "max_size": 24, "row_stds": 81, "bench_shape": [16384, 4096], "bench_seconds": 1.0,
             "gradcheck": True, "bench_backward": True},
}
EPS = 1e-5
LOW_PRECISION = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def max_abs(t: torch.Tensor) -> float:
    return float(t.detach().abs().max()) if t.numel() else 0.0


def random_case(g: torch.Generator, max_size: int) -> tuple[tuple[int, ...], tuple[int, ...], bool, bool]:
    """(input shape, normalized_shape, has weight, has bias): rank 1 to 4, normalising over 1 to all of its dims."""
    rank = int(torch.randint(1, 5, (), generator=g))
    shape = tuple(torch.randint(1, max_size + 1, (rank,), generator=g).tolist())
    normalized = shape[int(torch.randint(0, rank, (), generator=g)):]
    weight, bias = torch.randint(0, 2, (2,), generator=g).bool().tolist()
    return shape, normalized, weight, bias


def run(ctx: RunContext) -> None:
    p, g, impl = ctx.params, ctx.generator, ctx.impl
    value_error = grad_error = 0.0
    for case in range(p["cases"]):
        shape, normalized, has_weight, has_bias = random_case(g, p["max_size"])
        x = (torch.randn(shape, generator=g, dtype=torch.float64) * 3 + 1).requires_grad_()
        weight = torch.randn(normalized, generator=g, dtype=torch.float64).requires_grad_() if has_weight else None
        bias = torch.randn(normalized, generator=g, dtype=torch.float64).requires_grad_() if has_bias else None
        upstream = torch.randn(shape, generator=g, dtype=torch.float64)
        leaves = [t for t in (x, weight, bias) if t is not None]
        ours, want = impl.layer_norm(x, normalized, weight, bias, EPS), F.layer_norm(x, normalized, weight, bias, EPS)
        value_error = max(value_error, max_abs(ours - want))
        # gradients of the scalar <out, upstream>: the same as grad(out, upstream), without its sympy import
        mine, theirs = (torch.autograd.grad((out * upstream).sum(), leaves) for out in (ours, want))
        for mine, theirs in zip(mine, theirs):
            grad_error = max(grad_error, max_abs(mine - theirs))
        ctx.log("grad_max_abs_error_so_far", grad_error, case)

    ctx.metrics.update(max_abs_error=value_error, grad_max_abs_error=grad_error, cases=p["cases"])
    if p["gradcheck"]:
        small = torch.randn(3, 2, 4, generator=g, dtype=torch.float64).requires_grad_()
        affine = [torch.randn(2, 4, generator=g, dtype=torch.float64).requires_grad_() for _ in range(2)]
        ctx.metrics["gradcheck"] = torch.autograd.gradcheck(lambda x, w, b: impl.layer_norm(x, (2, 4), w, b),
                                                            (small, *affine))

    # the same input in lower precisions, against F.layer_norm in that precision; offset 100: a large mean
    x, w, b = torch.randn(64, 256, generator=g) * 10 + 100, torch.randn(256, generator=g), torch.randn(256, generator=g)
    ctx.metrics["max_abs_error_by_dtype"] = {
        name: max_abs(impl.layer_norm(x.to(dt), 256, w.to(dt), b.to(dt)).double()
                      - F.layer_norm(x.to(dt), (256,), w.to(dt), b.to(dt)).double())
        for name, dt in LOW_PRECISION.items()}

    # eps sits inside the square root: a row whose variance is near eps is normalised to a std below 1
    row_stds = torch.logspace(-5, 1, p["row_stds"], dtype=torch.float64)
    rows = torch.randn(p["row_stds"], 64, generator=g, dtype=torch.float64)
    rows = (rows - rows.mean(1, keepdim=True)) / rows.std(1, correction=0, keepdim=True) * row_stds[:, None]
    ours, want = impl.layer_norm(rows, 64, eps=EPS), F.layer_norm(rows, (64,), eps=EPS)
    outside = rows / (rows.std(1, correction=0, keepdim=True) + EPS)  # the common mistake: eps added to the std
    ctx.metrics["eps_rows_max_abs_error"] = max_abs(ours - want)
    fig = ctx.figure(figsize=(5.5, 3.4))
    ax = fig.subplots()
    ax.plot(row_stds, ours.std(1, correction=0), "o-", ms=3, label="yours: (x-mean)/sqrt(var+eps)")
    ax.plot(row_stds, want.std(1, correction=0), "x", ms=6, label="F.layer_norm")
    ax.plot(row_stds, outside.std(1, correction=0), "--", label="mistake: (x-mean)/(std+eps)")
    ax.axvline(EPS ** 0.5, color="gray", ls=":", label="std = sqrt(eps)")
    ax.set(xscale="log", xlabel="std of the input row", ylabel="std of the normalised row",
           title=f"a07: what eps={EPS:g} does to rows of small variance")
    ax.legend(fontsize=7)
    ctx.save_figure(fig, "eps_effect")

    n = p["bench_shape"][-1]
    x = torch.randn(*p["bench_shape"], generator=g).requires_grad_()
    w, b = torch.randn(n, generator=g).requires_grad_(), torch.randn(n, generator=g).requires_grad_()
    ours, native = (lambda x, w, b: impl.layer_norm(x, n, w, b)), (lambda x, w, b: F.layer_norm(x, (n,), w, b))
    if p["bench_backward"]:
        ctx.bench["layer_norm"] = forward_backward(ours, native, (x, w, b), p["bench_seconds"])
        ctx.bench["backward_ratio"] = ctx.bench["layer_norm"]["backward"]["ratio"]
    else:
        ctx.bench["layer_norm"] = {"forward": compare(lambda: ours(x, w, b), lambda: native(x, w, b), p["bench_seconds"])}
    ctx.bench["forward_ratio"] = ctx.bench["layer_norm"]["forward"]["ratio"]
    ctx.bench["shape"] = p["bench_shape"]
