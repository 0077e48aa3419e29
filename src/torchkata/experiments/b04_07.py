"""b04-07 experiment: the same small CNN with standard 3x3 convolutions and with depthwise-separable ones, trained
on Fashion-MNIST over a few seeds: accuracy (mean, std), parameters and multiply-adds (counted), and time per
epoch and per forward. Both use b04-02's hand-written Conv2d, so the speed compares the layer types, not two
implementations."""
from __future__ import annotations

import torch
from torch import nn

from torchkata.data import fashion_mnist
from torchkata.pipeline.bench import median_seconds
from torchkata.training.loop import fit, mean_std, over_seeds, plot_histories
from torchkata.vision.conv import Conv2d
from torchkata.vision.fashion_cnn import normalize

SCALES = {
    "smoke": {"train_size": 128, "test_size": 64, "seeds": 1, "epochs": 1, "channels": [4, 8, 8],
              "batch_size": 64, "lr": 3e-3, "bench_batch": 8, "bench_seconds": 0.02},
    "default": {"train_size": 10000, "test_size": 5000, "seeds": 2, "epochs": 2, "channels": [16, 32, 64],
                "batch_size": 128, "lr": 3e-3, "bench_batch": 256, "bench_seconds": 0.3},
    "full": {"train_size": 60000, "test_size": 10000, "seeds": 5, "epochs": 10, "channels": [32, 64, 128],
             "batch_size": 128, "lr": 2e-3, "bench_batch": 256, "bench_seconds": 1.0},
}


def network(kind: str, channels: list[int], impl) -> tuple[nn.Sequential, list[dict]]:
    """A stem 3x3 conv (standard in both: one input channel has nothing to separate), then a block per further
    width, each followed by batch norm, ReLU and a 2x2 max pool: conv 3x3 (standard or separable); global average
    pool, linear. Returns the model and each conv layer's cost on 28x28 inputs."""
    size = 28
    layers = [Conv2d(1, channels[0], 3, padding=1), nn.BatchNorm2d(channels[0]), nn.ReLU(), nn.MaxPool2d(2)]
    costs = [impl.conv_cost(1, channels[0], 3, (size, size))]
    for c_in, c_out in zip(channels, channels[1:]):
        size //= 2  # after the previous pool
        if kind == "standard":
            conv = Conv2d(c_in, c_out, 3, padding=1)
            costs.append(impl.conv_cost(c_in, c_out, 3, (size, size)))
        else:
            conv = impl.DepthwiseSeparableConv2d(c_in, c_out, 3, padding=1)
            costs.append(conv.cost((size, size)))
        layers += [conv, nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2)]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels[-1], 10)]
    return nn.Sequential(*layers), costs


def run(ctx) -> None:
    p = ctx.params
    folder = ctx.input("fashion-mnist")
    train, test = fashion_mnist.load(folder, "train"), fashion_mnist.load(folder, "test")
    train = (normalize(train["images"][:p["train_size"]]), train["labels"][:p["train_size"]])
    test = (normalize(test["images"][:p["test_size"]]), test["labels"][:p["test_size"]])

    histories, errors, summary = {}, {}, {}
    for kind in ("standard", "separable"):
        runs = []
        for k in range(p["seeds"]):
            torch.manual_seed(ctx.seed * 1000 + k)
            model, costs = network(kind, p["channels"], ctx.impl)
            optimizer = torch.optim.Adam(model.parameters(), lr=p["lr"])
            runs.append(fit(model, optimizer, train, test, p["epochs"], p["batch_size"],
                            torch.Generator().manual_seed(ctx.seed * 1000 + k), prefix=f"{kind}_"))
        histories[kind], errors[kind] = over_seeds(runs)
        accuracy = mean_std([r[-1]["test_accuracy"] for r in runs])
        model.eval()
        batch = test[0][:p["bench_batch"]]
        with torch.no_grad():
            forward_s = median_seconds(lambda: model(batch), p["bench_seconds"])
        summary[kind] = {"test_accuracy_mean": accuracy[0], "test_accuracy_std": accuracy[1],
                         "parameters": sum(t.numel() for t in model.parameters()),
                         "conv_parameters": sum(c["parameters"] for c in costs),
                         "conv_macs": sum(c["macs"] for c in costs)}
        ctx.bench[kind] = {"epoch_s": [h["seconds"] for h in histories[kind]], "forward_s": forward_s,
                           "images_per_s": len(batch) / forward_s}
    ctx.metrics.update(summary, test_accuracy=summary["separable"]["test_accuracy_mean"],
                       macs_ratio=summary["standard"]["conv_macs"] / summary["separable"]["conv_macs"],
                       parameter_ratio=summary["standard"]["conv_parameters"] / summary["separable"]["conv_parameters"],
                       seeds=p["seeds"], epochs=p["epochs"], train_size=p["train_size"], test_size=len(test[1]))
    ctx.bench["forward_ratio"] = ctx.bench["separable"]["forward_s"] / ctx.bench["standard"]["forward_s"]
    plot_histories(ctx, histories, f"b04-07: standard vs separable, ±std of {p['seeds']} seeds", errors=errors)
