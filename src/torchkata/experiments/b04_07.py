"""b04-07 experiment: b04-08's small CNN with standard 3x3 convolutions and with depthwise-separable ones (the
first stays standard in both: one input channel has nothing to separate), trained once each on Fashion-MNIST with
the same data, batch order and one-cycle schedule (error bars: the variance seeds). Parameters and multiply-adds
of the convolutions are counted layer by layer through forward hooks and checked against torch's FlopCounterMode;
the separable layer (b04-02's im2col convolutions) is timed against the same layer of native nn.Conv2d. Plots: the
training curves, and accuracy, counts and training time side by side."""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from torchkata.experiments.b04_08 import fashion_data, plot_side_by_side, train_variant
from torchkata.pipeline.bench import compare
from torchkata.pipeline.runner import RunContext
from torchkata.training.loop import plot_histories
from torchkata.vision.small_cnn import conv3x3, small_cnn

SCALES = {
    "smoke": {"train_size": 128, "test_size": 128, "epochs": 1, "batch_size": 64, "max_lr": 4e-3,
              "weight_decay": 0.01, "channels": [4, 8], "downsample": "stride", "hidden": 8, "dropout": 0.25,
              "bench_batch": 32, "bench_seconds": 0.02},
    "default": {"train_size": 60000, "test_size": 10000, "epochs": 2, "batch_size": 128, "max_lr": 1e-2,
                "weight_decay": 0.01, "channels": [16, 32], "downsample": "stride", "hidden": 128, "dropout": 0.25,
                "bench_batch": 256, "bench_seconds": 0.2},
    "full": {"train_size": 60000, "test_size": 10000, "epochs": 10, "batch_size": 128, "max_lr": 4e-3,
             "weight_decay": 0.01, "channels": [32, 64, 128], "downsample": "pool", "hidden": 128, "dropout": 0.25,
             "bench_batch": 256, "bench_seconds": 1.0},
}


def conv_counts(model: nn.Module, impl) -> dict[str, int]:
    """Parameters and multiply-adds of the model's convolutions on one 28x28 image, each layer counted with
    impl's formulas at the output size a forward hook sees."""
    totals = {"parameters": 0, "macs": 0}

    def count(layer, inputs, output):
        size = tuple(output.shape[-2:])
        if isinstance(layer, impl.DepthwiseSeparableConv2d):
            cost = layer.cost(size)
        else:
            cost = impl.conv_cost(layer.in_channels, layer.out_channels, layer.kernel_size[0], size,
                                  layer.groups, layer.bias is not None)
        for key in totals:
            totals[key] += cost[key]
    # b04-02's Conv2d inside a separable layer is no nn.Conv2d: each layer is counted once
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, impl.DepthwiseSeparableConv2d))]
    hooks = [m.register_forward_hook(count) for m in layers]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 1, 28, 28))
    for hook in hooks:
        hook.remove()
    return totals


def counted_by_torch(model: nn.Module) -> int:
    """Multiply-adds of the layers before Flatten on one image, as FlopCounterMode counts them (2 flops each):
    the convolutions' (and the separable layers' matrix products); batch norm, pooling and ReLU count nothing."""
    features = model[:next(i for i, m in enumerate(model) if isinstance(m, nn.Flatten))]
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        features(torch.zeros(1, 1, 28, 28))
    return counter.get_total_flops() // 2


def run(ctx: RunContext) -> None:
    p, impl = ctx.params, ctx.impl
    train, test = fashion_data(ctx)

    def separable(c_in: int, c_out: int, stride: int) -> nn.Module:
        if c_in == 1:
            return conv3x3(c_in, c_out, stride)
        return impl.DepthwiseSeparableConv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)

    histories = {}
    for name, conv in (("standard", conv3x3), ("separable", separable)):
        def build():
            return small_cnn(p["channels"], p["downsample"], hidden=p["hidden"], dropout=p["dropout"], conv=conv)
        histories[name], model = train_variant(ctx, name, build, train, test)
        model = model.to(memory_format=torch.contiguous_format)
        counts = conv_counts(model, impl)
        ctx.metrics.update({f"{name}_conv_parameters": counts["parameters"], f"{name}_conv_macs": counts["macs"],
                            f"{name}_conv_macs_by_flop_counter": counted_by_torch(model)})
    m = ctx.metrics
    m.update(conv_parameter_ratio=m["standard_conv_parameters"] / m["separable_conv_parameters"],
             conv_macs_ratio=m["standard_conv_macs"] / m["separable_conv_macs"],
             epochs=p["epochs"], train_images=len(train[0]), test_images=len(test[0]), channels=p["channels"])
    ctx.bench.update(threads=torch.get_num_threads(),
                     train_time_ratio=ctx.bench["separable"]["train_seconds"] / ctx.bench["standard"]["train_seconds"])

    # the widest separable layer, hand-written (im2col) against the same weights in native nn.Conv2d
    c_in, c_out = p["channels"][-2:]
    ours = impl.DepthwiseSeparableConv2d(c_in, c_out, 3, padding=1, bias=False)
    native = nn.Sequential(nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False),
                           nn.Conv2d(c_in, c_out, 1, bias=False))
    native[0].weight.data.copy_(ours.depthwise.weight)
    native[1].weight.data.copy_(ours.pointwise.weight)
    x = torch.randn(p["bench_batch"], c_in, 14, 14, generator=ctx.generator)
    with torch.no_grad():
        m["separable_layer_max_abs_error"] = float((ours(x) - native(x)).abs().max())
    ctx.bench["separable_layer"] = compare(lambda: ours(x), lambda: native(x), p["bench_seconds"])
    ctx.bench["ratio"] = ctx.bench["separable_layer"]["ratio"]

    plot_histories(ctx, histories, f"b04-07, channels {p['channels']}")
    names = list(histories)
    plot_side_by_side(ctx, names, {
        "test accuracy": [m[f"{n}_test_accuracy"] for n in names],
        "conv parameters": [m[f"{n}_conv_parameters"] for n in names],
        "conv multiply-adds per image": [m[f"{n}_conv_macs"] for n in names],
        "training CPU s per thread": [ctx.bench[n]["train_cpu_seconds_per_thread"] for n in names]},
        f"b04-07: standard against depthwise-separable convolutions, channels {p['channels']}, one seed")
