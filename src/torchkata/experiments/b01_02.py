"""b01-02 experiment: error of min-max scaling against a float64 reference and scikit-learn, constant slices,
and its speed against the fused native per-row normalisation (layer_norm) and the textbook expression."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from sklearn.preprocessing import minmax_scale

from torchkata.pipeline.bench import compare
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"cases": 8, "max_rows": 64, "max_cols": 64, "bench_shape": [256, 256], "bench_seconds": 0.05},
    "default": {"cases": 64, "max_rows": 512, "max_cols": 512, "bench_shape": [4096, 1024], "bench_seconds": 0.5},
    "full": {"cases": 512, "max_rows": 2048, "max_cols": 2048, "bench_shape": [16384, 4096], "bench_seconds": 2.0},
}


def reference64(x: torch.Tensor, dim: int) -> torch.Tensor:
    x = x.double()
    low, high = x.amin(dim, keepdim=True), x.amax(dim, keepdim=True)
    return torch.where(high > low, (x - low) / (high - low), 0.0)


def textbook(x: torch.Tensor, dim: int) -> torch.Tensor:
    """As it is usually written: out of place, the minimum taken twice, no constant-slice case."""
    return (x - x.amin(dim, keepdim=True)) / (x.amax(dim, keepdim=True) - x.amin(dim, keepdim=True))


def one_pass_aminmax(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Both ends from one reduction (torch.aminmax), then the same in-place arithmetic as the reference."""
    low, high = torch.aminmax(x, dim=dim, keepdim=True)
    span = high - low
    return (x - low).div_(torch.where(span == 0, 1, span))


def run(ctx: RunContext) -> None:
    p, g, scale = ctx.params, ctx.generator, ctx.impl.min_max_scale
    error = sklearn_error = 0.0
    constant_slices = 0
    for case in range(p["cases"]):
        rows = int(torch.randint(1, p["max_rows"] + 1, (), generator=g))
        cols = int(torch.randint(1, p["max_cols"] + 1, (), generator=g))
        dim = case % 2 - 2  # -2 and -1 in turn
        spread, offset = 10.0 ** (case % 7 - 3), 10.0 ** (case % 5)  # spreads 1e-3..1e3 around offsets 1..1e4
        x = torch.randn(rows, cols, generator=g) * spread + offset
        if case % 4 == 0:  # every fourth case has a constant slice: the first row (dim -1) or column (dim -2)
            x.select(-3 - dim, 0).fill_(offset)
        constant_slices += int((x.amax(dim) == x.amin(dim)).sum())
        error = max(error, float((scale(x, dim=dim).double() - reference64(x, dim)).abs().max()))
        x64 = x.double()
        columns = x64 if dim == -2 else x64.t()  # scikit-learn scales columns
        ours = scale(x64, dim=dim) if dim == -2 else scale(x64, dim=dim).t()
        sklearn_error = max(sklearn_error, float((ours - torch.from_numpy(minmax_scale(columns.numpy()))).abs().max()))
        ctx.log("max_abs_error_so_far", error, case)
    ctx.metrics.update(max_abs_error=error, float64_max_abs_error_vs_sklearn=sklearn_error,
                       constant_slices=constant_slices, cases=p["cases"])

    # what scaling does to rows of very different offset and spread, a constant row among them
    rows = torch.stack([torch.linspace(-1, 1, 40).sin() * 3 + 10, torch.randn(40, generator=g) * 0.01 - 5,
                        torch.linspace(0, 4, 40) ** 2, torch.full((40,), 2.0)])
    scaled = scale(rows, dim=-1)
    ctx.metrics["example_rows"] = {"min": scaled.amin(-1).tolist(), "max": scaled.amax(-1).tolist()}
    fig = ctx.figure(figsize=(8, 3.2))
    before, after = fig.subplots(1, 2)
    labels = ["sin, offset 10", "noise, spread 0.01", "quadratic", "constant 2.0"]
    for row, out, label in zip(rows, scaled, labels):
        before.plot(row.tolist(), label=label)
        after.plot(out.tolist(), label=label)
    before.set(title="rows of x", xlabel="position along dim -1")
    after.set(title="min_max_scale(x, dim=-1)", xlabel="position along dim -1", ylim=(-0.05, 1.05))
    before.legend(fontsize=7)
    ctx.save_figure(fig, "rows_before_after")

    x = torch.randn(*p["bench_shape"], generator=g)
    width = x.shape[-1:]
    seconds = p["bench_seconds"]
    ctx.bench["min_max_scale"] = compare(lambda: scale(x, dim=-1), lambda: F.layer_norm(x, width),
                                         min_run_time=seconds)
    ctx.bench["ratio"] = ctx.bench["min_max_scale"]["ratio"]
    ctx.bench["native"] = "torch.nn.functional.layer_norm over the last dim (fused per-row normalisation)"
    for name, variant in [("textbook", textbook), ("one_pass_aminmax", one_pass_aminmax)]:
        ctx.bench[name] = compare(lambda: variant(x, -1), lambda: F.layer_norm(x, width), min_run_time=seconds)
    ctx.bench["shape"] = p["bench_shape"]
