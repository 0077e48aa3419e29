"""b01-06 experiment: error of the hand-written cosine similarity against F.cosine_similarity (values, gradients,
broadcast and zero-vector cases), what eps does as a vector shrinks, and its speed against torch's."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from torchkata.pipeline.bench import compare
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"cases": 8, "max_rows": 64, "max_cols": 64, "bench_shape": [256, 256], "bench_seconds": 0.05},
    "default": {"cases": 64, "max_rows": 512, "max_cols": 512, "bench_shape": [4096, 1024], "bench_seconds": 0.5},
    "full": {"cases": 512, "max_rows": 2048, "max_cols": 2048, "bench_shape": [16384, 4096], "bench_seconds": 2.0},
}
EPS = 1e-8
NORMS = [10.0 ** k for k in range(-14, 1)]  # of x1, against a parallel x2: the true cosine is 1
X2_NORM = 1e-3  # small enough that clamping the product of the norms shows


def clamps_the_product(x1: torch.Tensor, x2: torch.Tensor, eps: float) -> torch.Tensor:
    """torch before 1.12: <x1, x2> / max(||x1|| * ||x2||, eps)."""
    return (x1 * x2).sum(-1) / ((x1 * x1).sum(-1) * (x2 * x2).sum(-1)).sqrt().clamp_min(eps)


def run(ctx: RunContext) -> None:
    p, g, cosine = ctx.params, ctx.generator, ctx.impl.cosine_similarity
    value_error = grad_error = 0.0
    for case in range(p["cases"]):
        rows = int(torch.randint(1, p["max_rows"] + 1, (), generator=g))
        cols = int(torch.randint(1, p["max_cols"] + 1, (), generator=g))
        x1 = torch.randn(rows, cols, generator=g, dtype=torch.float64)
        x2 = torch.randn(rows if case % 3 else 1, cols, generator=g, dtype=torch.float64)  # every third broadcasts
        x2 += x1[: x2.shape[0]] * (case % 5)  # correlated to various degrees
        if case % 4 == 0:
            x1[0] = 0.0  # a zero vector
        dim = case % 2 - 2  # -2 and -1 in turn
        want = F.cosine_similarity(x1, x2, dim=dim, eps=EPS)
        # float32 values against torch in float64
        got = cosine(x1.float(), x2.float(), dim=dim, eps=EPS)
        value_error = max(value_error, float((got.double() - want).abs().max()))
        # float64 gradients against torch's
        a, b = x1.clone().requires_grad_(), x2.clone().requires_grad_()
        weights = torch.randn(want.shape, generator=g, dtype=torch.float64)
        ours = torch.autograd.grad((cosine(a, b, dim=dim, eps=EPS) * weights).sum(), (a, b))
        theirs = torch.autograd.grad((F.cosine_similarity(a, b, dim=dim, eps=EPS) * weights).sum(), (a, b))
        grad_error = max(grad_error, *(float((o - t).abs().max() / t.abs().max().clamp_min(1)) for o, t in
                                       zip(ours, theirs)))
        ctx.log("max_abs_error_so_far", value_error, case)
    ctx.metrics.update(max_abs_error=value_error, grad_max_rel_error=grad_error, cases=p["cases"])

    # eps: a vector shrinking below eps against a parallel one of norm 1e-3 (the true cosine stays 1)
    direction = torch.randn(8, generator=g, dtype=torch.float64)
    direction /= (direction * direction).sum().sqrt()
    x1 = torch.stack([direction * n for n in NORMS])
    x2 = (direction * X2_NORM).expand_as(x1)
    series = {"yours": cosine(x1, x2, dim=-1, eps=EPS), "F.cosine_similarity": F.cosine_similarity(x1, x2, dim=-1),
              "max(||x1|| ||x2||, eps) (torch < 1.12)": clamps_the_product(x1, x2, EPS)}
    ctx.metrics["cosine_by_norm_of_x1"] = {f"{n:g}": c for n, c in zip(NORMS, series["yours"].tolist())}
    ctx.metrics["zero_vector_similarity"] = float(cosine(torch.zeros(1, 8), x2[:1].float(), dim=-1))
    fig = ctx.figure(figsize=(5.5, 3.4))
    ax = fig.subplots()
    for (label, values), style in zip(series.items(), ["o-", "x--", "s:"]):
        ax.plot(NORMS, values.tolist(), style, label=label, markersize=4)
    ax.axvline(EPS, color="grey", alpha=0.4)
    ax.set(xscale="log", yscale="log", xlabel=f"||x1|| (x2 parallel, ||x2|| = {X2_NORM:g})", ylabel="cosine similarity",
           title=f"b01-06: what eps = {EPS:g} does (true cosine: 1)")
    ax.legend(fontsize=8)
    ctx.save_figure(fig, "cosine_vs_norm")

    x1 = torch.randn(*p["bench_shape"], generator=g)
    x2 = torch.randn(*p["bench_shape"], generator=g)
    timed = compare(lambda: cosine(x1, x2, dim=-1), lambda: F.cosine_similarity(x1, x2, dim=-1),
                    min_run_time=p["bench_seconds"])
    ctx.bench["cosine_similarity"] = timed
    ctx.bench["ratio"] = ctx.bench["cosine_similarity"]["ratio"]
    ctx.bench["shape"] = p["bench_shape"]
