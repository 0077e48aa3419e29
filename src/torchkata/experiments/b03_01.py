"""b03-01 experiment: the from-scratch feed-forward network on scikit-learn's digits against logistic regression (the
same code with no hidden layer) on the same split, both trained by the shared loop: test accuracy, parameters and
the curves; and a check of the He initialisation: the activations' scale through a deep stack at the start."""
from __future__ import annotations

import torch

from torchkata.data import digits
from torchkata.pipeline.runner import RunContext
from torchkata.training.loop import fit, plot_histories

SCALES = {
    "smoke": {"train_size": 300, "epochs": 1, "hidden": [64], "batch_size": 32, "lr": 1e-3, "deep": 4},
    # ~0.97-0.98 test accuracy against ~0.96 for logistic regression
    "default": {"train_size": None, "epochs": 30, "hidden": [128, 64], "batch_size": 32, "lr": 1e-3, "deep": 16},
    "full": {"train_size": None, "epochs": 100, "hidden": [256, 128], "batch_size": 32, "lr": 5e-4, "deep": 32},
}
TEST_FRACTION = 0.2


def run(ctx: RunContext) -> None:
    p, g, impl = ctx.params, ctx.generator, ctx.impl
    (x_train, y_train), (x_test, y_test) = digits.standardized_split(ctx.input("digits"), TEST_FRACTION, g,
                                                                     p["train_size"])

    histories, seed = {}, int(torch.randint(0, 2**31, (), generator=g))
    for name, sizes in (("mlp", [64, *p["hidden"], 10]), ("logistic_regression", [64, 10])):
        model = impl.FeedForward(sizes, generator=torch.Generator().manual_seed(seed))
        optimizer = torch.optim.Adam(model.parameters(), lr=p["lr"])
        histories[name] = fit(model, optimizer, (x_train, y_train), (x_test, y_test), p["epochs"], p["batch_size"],
                              torch.Generator().manual_seed(seed), log=ctx.log, prefix=f"{name}/")
        ctx.metrics[f"{name}_parameters"] = impl.parameter_count(sizes)
        ctx.metrics[f"{name}_test_accuracy"] = histories[name][-1]["test_accuracy"]
        ctx.bench[f"{name}_train_seconds"] = sum(h["seconds"] for h in histories[name])
    ctx.metrics.update(test_accuracy=ctx.metrics["mlp_test_accuracy"], epochs=p["epochs"], train_samples=len(x_train),
                       test_samples=len(x_test), sizes=[64, *p["hidden"], 10])
    plot_histories(ctx, {f"{n} ({ctx.metrics[f'{n}_parameters']} parameters)": h for n, h in histories.items()},
                   "b03-01: digits")

    # He initialisation keeps the activations' scale through depth: root mean square of each layer's output
    deep = impl.FeedForward([256] * (p["deep"] + 1), generator=torch.Generator().manual_seed(seed))
    h = torch.randn(512, 256, generator=g)
    scales = []
    with torch.no_grad():
        for weight, bias in zip(deep.weights, deep.biases):
            h = torch.relu(h @ weight.T + bias)
            scales.append(float(h.pow(2).mean().sqrt()))
    ctx.metrics["deep_activation_rms"] = {"first": scales[0], "last": scales[-1], "layers": len(scales)}
