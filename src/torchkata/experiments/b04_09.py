"""b04-09 experiment: the dilated convolution by a zero-dilated kernel against F.conv2d (forward and gradients over
random configurations), the receptive fields of a few stacks by formula against the gradient of one output pixel
(plotted: a dilated stack's field has holes), the field's growth with depth for plain and doubling-dilation
stacks (linear against exponential, each depth checked by gradient), and the time of both hand-written dilations against F.conv2d."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from torchkata.experiments.b04_02 import random_case
from torchkata.pipeline.bench import compare
from torchkata.pipeline.runner import RunContext
from torchkata.vision.conv import conv2d

SCALES = {
    "smoke": {"cases": 3, "max_size": 10, "channels": 2, "bench_batch": 2, "bench_size": 16, "bench_channels": 8,
              "bench_dilations": [2], "bench_seconds": 0.02, "growth_depth": 3},
    "default": {"cases": 48, "max_size": 20, "channels": 4, "bench_batch": 8, "bench_size": 28,
                "bench_channels": 32, "bench_dilations": [1, 2, 4], "bench_seconds": 0.2, "growth_depth": 6},
    "full": {"cases": 512, "max_size": 48, "channels": 8, "bench_batch": 64, "bench_size": 56,
             "bench_channels": 64, "bench_dilations": [1, 2, 4, 8], "bench_seconds": 1.0, "growth_depth": 8},
}
# stacks of (kernel, stride, dilation): three 3x3 layers plain, dilated 2-2-2 (holes), dilated 1-2-4 (none),
# and a strided stack whose later layers reach further per tap
STACKS = {"3x3 x3": [(3, 1, 1)] * 3, "dilation 2-2-2": [(3, 1, 2)] * 3,
          "dilation 1-2-4": [(3, 1, 1), (3, 1, 2), (3, 1, 4)], "stride 2-2-1": [(3, 2, 1), (3, 2, 1), (3, 1, 1)]}


def positive_stack(layers: list[tuple[int, int, int]], channels: int, g: torch.Generator) -> nn.Sequential:
    """Convolutions with positive weights: no two paths cancel, so the gradient is non-zero on the whole field."""
    model = nn.Sequential(*[nn.Conv2d(channels, channels, k, stride=s, dilation=d) for k, s, d in layers])
    with torch.no_grad():
        for conv in model:
            conv.weight.copy_(torch.rand(conv.weight.shape, generator=g) + 0.5)
    return model


def checked_field(impl, layers, channels: int, g: torch.Generator) -> tuple[int, Tensor]:
    """The receptive field of a stack by formula, and the gradient footprint of its centre output pixel."""
    formula = impl.receptive_field(layers)
    size = 2 * formula + 1  # the centre output pixel's field lies well inside
    return formula, impl.gradient_footprint(positive_stack(layers, channels, g),
                                            torch.randn(1, channels, size, size, generator=g))


def plot_growth(ctx: RunContext, growth: dict[str, dict[str, list[int]]]) -> None:
    fig = ctx.figure(figsize=(5.5, 3.8))
    ax = fig.subplots()
    for i, (name, fields) in enumerate(growth.items()):
        depths = range(1, len(fields["formula"]) + 1)
        ax.plot(depths, fields["formula"], "-", color=f"C{i}", label=f"{name}: formula")
        ax.plot(depths, fields["gradient_rows"], "o", color=f"C{i}", mfc="none", ms=8, label=f"{name}: gradient extent")
    ax.set_yscale("log", base=2)
    ax.set(xlabel="3x3 layers", ylabel="receptive field (pixels, one axis)",
           title="b04-09: receptive field growth, 9 weights per layer either way")
    ax.legend(fontsize=7)
    ctx.save_figure(fig, "receptive_field_growth")


def run(ctx: RunContext) -> None:
    p, g, impl = ctx.params, ctx.generator, ctx.impl
    errors = {"forward": 0.0, "input_grad": 0.0, "weight_grad": 0.0, "bias_grad": 0.0}
    for case in range(p["cases"]):
        args, x_shape, w_shape = random_case(g, p["max_size"])
        inputs = [torch.randn(shape, generator=g, dtype=torch.float64).requires_grad_()
                  for shape in (x_shape, w_shape, w_shape[:1])]
        ours = impl.dilated_conv2d(*inputs, args["dilation"], args["stride"], args["padding"], args["groups"])
        want = F.conv2d(*inputs, **args)
        probe = torch.randn(want.shape, generator=g, dtype=torch.float64)
        grads = zip(torch.autograd.grad((ours * probe).sum(), inputs), torch.autograd.grad((want * probe).sum(), inputs))
        for key, (a, b) in zip(errors, [(ours, want), *grads]):
            errors[key] = max(errors[key], float((a - b).abs().max()))
    ctx.metrics.update(max_abs_error=errors["forward"], grad_max_abs_error=max(list(errors.values())[1:]),
                       errors=errors, cases=p["cases"])

    fields, footprints = {}, {}
    for name, layers in STACKS.items():
        formula, footprints[name] = checked_field(impl, layers, p["channels"], g)
        rows, cols = impl.extent(footprints[name])
        fields[name] = {"formula": formula, "gradient_rows": rows, "gradient_cols": cols,
                        "pixels_seen": int(footprints[name].count_nonzero())}
    ctx.metrics["receptive_fields"] = fields
    # depth 1..D of plain 3x3 layers against dilations 1, 2, 4, ...: the field grows by 2 per layer against doubling
    growth = {}
    for name, dilation in (("plain", lambda layer: 1), ("dilation 1-2-4-...", lambda layer: 2 ** layer)):
        growth[name] = {"formula": [], "gradient_rows": [], "gradient_cols": []}
        for depth in range(1, p["growth_depth"] + 1):
            formula, footprint = checked_field(impl, [(3, 1, dilation(l)) for l in range(depth)], p["channels"], g)
            rows, cols = impl.extent(footprint)
            for key, value in (("formula", formula), ("gradient_rows", rows), ("gradient_cols", cols)):
                growth[name][key].append(value)
    ctx.metrics["receptive_field_growth"] = growth
    ctx.metrics["formula_matches_gradient"] = (
        all(f["formula"] == f["gradient_rows"] == f["gradient_cols"] for f in fields.values())
        and all(f["formula"] == f["gradient_rows"] == f["gradient_cols"] for f in growth.values()))
    plot_growth(ctx, growth)

    fig = ctx.figure(figsize=(3 * len(STACKS), 3.3))
    for ax, (name, footprint) in zip(fig.subplots(1, len(STACKS)), footprints.items()):
        ax.imshow(footprint.ne(0).numpy(), cmap="Greys")
        f = fields[name]
        ax.set_title(f"{name}\nfield {f['formula']} (formula), {f['gradient_rows']} (gradient)\n"
                     f"{f['pixels_seen']} pixels seen", fontsize=8)
        ax.set(xticks=[], yticks=[])
    fig.suptitle("b04-09: input pixels one output pixel depends on (non-zero gradient)", fontsize=9)
    ctx.save_figure(fig, "receptive_fields")

    # a zero-dilated kernel does (d(k-1)+1)^2 multiply-adds per output where k^2 carry weight; the im2col slices
    # of b04-02's conv2d skip the zeros
    channels = p["bench_channels"]
    x = torch.randn(p["bench_batch"], channels, p["bench_size"], p["bench_size"], generator=g)
    weight = torch.randn(channels, channels, 3, 3, generator=g)
    for d in p["bench_dilations"]:
        native = lambda d=d: F.conv2d(x, weight, padding=d, dilation=d)  # noqa: E731
        ctx.bench[f"zero_dilated_kernel_d{d}"] = compare(lambda d=d: impl.dilated_conv2d(x, weight, None, d, 1, d),
                                                         native, min_run_time=p["bench_seconds"])
        ctx.bench[f"im2col_dilation_d{d}"] = compare(lambda d=d: conv2d(x, weight, None, 1, d, d), native,
                                                     min_run_time=p["bench_seconds"])
    ctx.bench["ratio"] = ctx.bench[f"zero_dilated_kernel_d{p['bench_dilations'][-1]}"]["ratio"]
    ctx.bench["input_shape"] = list(x.shape)
