"""b04-02 experiment: the im2col convolution against F.conv2d: its error over random configurations (forward and
gradients, float64), and its time against F.conv2d's for a few typical layers, as ratios and a bar chart."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from torchkata.pipeline.bench import compare
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"cases": 3, "max_size": 10, "bench_batch": 2, "bench_size": 16, "bench_channels": 8,
              "bench_layers": 2, "bench_seconds": 0.02},
    "default": {"cases": 48, "max_size": 20, "bench_batch": 8, "bench_size": 28, "bench_channels": 32,
                "bench_layers": 6, "bench_seconds": 0.2},
    "full": {"cases": 512, "max_size": 48, "bench_batch": 64, "bench_size": 56, "bench_channels": 64,
             "bench_layers": 6, "bench_seconds": 1.0},
}


def layers(channels: int) -> dict[str, dict]:
    """Typical layers to time: name -> (out channels, kernel, F.conv2d keyword arguments)."""
    return {"3x3": dict(out=channels, kernel=3, padding=1),
            "3x3 stride 2": dict(out=2 * channels, kernel=3, stride=2, padding=1),
            "3x3 dilation 2": dict(out=channels, kernel=3, padding=2, dilation=2),
            "5x5 same": dict(out=channels, kernel=5, padding="same"),
            "1x1": dict(out=2 * channels, kernel=1),
            "3x3 depthwise": dict(out=channels, kernel=3, padding=1, groups=channels)}


def random_case(g: torch.Generator, max_size: int) -> tuple[dict, list[int], list[int]]:
    """Random keyword arguments, input shape and weight shape of a valid convolution."""
    draw = lambda low, high: int(torch.randint(low, high + 1, (), generator=g))  # noqa: E731
    groups = draw(1, 3)
    kernel, dilation = (draw(1, 4), draw(1, 4)), (draw(1, 3), draw(1, 2))
    stride = (draw(1, 3), draw(1, 3))
    same = draw(0, 3) == 0  # a quarter of the cases pad 'same' (stride 1)
    padding = "same" if same else (draw(0, 2), draw(0, 2))
    stride = (1, 1) if same else stride
    span = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    size = [draw(s, max(s, max_size)) for s in span]  # at least one kernel placement fits
    args = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    group_in = draw(1, 3)
    return args, [draw(1, 3), groups * group_in, *size], [groups * draw(1, 3), group_in, *kernel]


def run(ctx: RunContext) -> None:
    p, g = ctx.params, ctx.generator
    errors = {"forward": 0.0, "input_grad": 0.0, "weight_grad": 0.0, "bias_grad": 0.0}
    for case in range(p["cases"]):
        args, x_shape, w_shape = random_case(g, p["max_size"])
        x = torch.randn(x_shape, generator=g, dtype=torch.float64, requires_grad=True)
        weight = torch.randn(w_shape, generator=g, dtype=torch.float64, requires_grad=True)
        bias = torch.randn(w_shape[0], generator=g, dtype=torch.float64, requires_grad=True)
        ours, want = ctx.impl.conv2d(x, weight, bias, **args), F.conv2d(x, weight, bias, **args)
        probe = torch.randn(want.shape, generator=g, dtype=torch.float64)
        grads = zip(torch.autograd.grad((ours * probe).sum(), (x, weight, bias)),
                    torch.autograd.grad((want * probe).sum(), (x, weight, bias)))
        for key, (a, b) in zip(errors, [(ours, want), *grads]):
            errors[key] = max(errors[key], float((a - b).abs().max()))
        ctx.log("max_abs_error_so_far", errors["forward"], case)
    ctx.metrics.update(max_abs_error=errors["forward"], grad_max_abs_error=max(list(errors.values())[1:]),
                       errors=errors, cases=p["cases"])

    n, size, channels = p["bench_batch"], p["bench_size"], p["bench_channels"]
    x = torch.randn(n, channels, size, size, generator=g)
    names = list(layers(channels))[:p["bench_layers"]]  # smoke: the first two only
    for name in names:
        layer = layers(channels)[name]
        options = {k: v for k, v in layer.items() if k not in ("out", "kernel")}
        weight = torch.randn(layer["out"], channels // options.get("groups", 1), layer["kernel"], layer["kernel"],
                             generator=g)
        ctx.bench[name] = compare(lambda: ctx.impl.conv2d(x, weight, None, **options),
                                  lambda: F.conv2d(x, weight, None, **options), min_run_time=p["bench_seconds"])
    ctx.bench["ratio"] = ctx.bench["3x3"]["ratio"]
    ctx.bench["input_shape"] = list(x.shape)

    fig = ctx.figure(figsize=(7, 3.6))
    ax = fig.subplots()
    positions = torch.arange(len(names)).float()
    ax.bar(positions - 0.2, [ctx.bench[k]["impl_s"] * 1e3 for k in names], 0.4, label="im2col + matmul (yours)")
    ax.bar(positions + 0.2, [ctx.bench[k]["native_s"] * 1e3 for k in names], 0.4, label="F.conv2d")
    for i, k in enumerate(names):
        ax.text(i, ctx.bench[k]["impl_s"] * 1e3, f"{ctx.bench[k]['ratio']:.1f}x", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(positions.tolist(), names, fontsize=8)
    ax.set(yscale="log", ylabel="ms per forward (median)",
           title=f"b04-02: conv time, input {list(x.shape)}, {torch.get_num_threads()} threads")
    ax.legend(fontsize=8)
    ctx.save_figure(fig, "time_by_layer")
