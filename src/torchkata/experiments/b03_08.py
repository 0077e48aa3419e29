"""b03-08 experiment: ReLU, Tanh, Sigmoid and GELU (yours) in the same MLP on the same data: for each seed every
activation starts from the same Linear weights and sees the same batches, so the activation is the only
difference. Curves over seeds with their standard deviation as a band, the final accuracies as mean ± std. Your
activations are first checked against torch's (values and gradients) and timed against them."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from torchkata.autograd.timing import forward_backward
from torchkata.nn.fashion_mlp import load, mlp
from torchkata.pipeline.runner import RunContext
from torchkata.training.loop import fit, mean_std, over_seeds, plot_histories

SCALES = {
    "smoke": {"train_size": 300, "test_size": 200, "seeds": 1, "epochs": 1, "widths": [32, 32], "batch_size": 64,
              "lr": 0.02, "momentum": 0.9, "bench_size": 4096, "bench_seconds": 0.02},
    "default": {"train_size": 10000, "test_size": 10000, "seeds": 3, "epochs": 6, "widths": [128, 128, 128],
                "batch_size": 64, "lr": 0.02, "momentum": 0.9, "bench_size": 1_000_000, "bench_seconds": 0.2},
    "full": {"train_size": 60000, "test_size": 10000, "seeds": 10, "epochs": 20, "widths": [256, 256, 256],
             "batch_size": 64, "lr": 0.02, "momentum": 0.9, "bench_size": 10_000_000, "bench_seconds": 1.0},
}


def activations(impl) -> dict[str, tuple]:
    """name: (your module class, torch's function)."""
    return {"ReLU": (impl.ReLU, F.relu), "Tanh": (impl.Tanh, torch.tanh), "Sigmoid": (impl.Sigmoid, torch.sigmoid),
            "GELU": (impl.GELU, F.gelu)}


def against_torch(ctx: RunContext) -> dict[str, float]:
    """Largest difference of value or gradient from torch's, per activation, on float64 inputs across [-20, 20]."""
    x = torch.cat([torch.linspace(-20, 20, 4001, dtype=torch.float64),
                   torch.randn(1000, generator=ctx.generator, dtype=torch.float64)])
    errors = {}
    for name, (module, native) in activations(ctx.impl).items():
        a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
        out, expected = module()(a), native(b)
        out.sum().backward()
        expected.sum().backward()
        errors[name] = max(float((out - expected).detach().abs().max()), float((a.grad - b.grad).abs().max()))
    return errors


def run(ctx: RunContext) -> None:
    p = ctx.params
    errors = against_torch(ctx)
    train, test = load(ctx.input("fashion-mnist"), ctx.generator, p["train_size"], p["test_size"])
    histories, bands, finals = {}, {}, {}
    for name, (module, _) in activations(ctx.impl).items():
        runs = []
        for k in range(p["seeds"]):
            torch.manual_seed(ctx.seed * 1000 + k)  # seed k: the same initial weights for every activation
            model = mlp(tuple(p["widths"]), activation=module)
            optimizer = torch.optim.SGD(model.parameters(), lr=p["lr"], momentum=p["momentum"])
            runs.append(fit(model, optimizer, train, test, p["epochs"], p["batch_size"],
                            torch.Generator().manual_seed(ctx.seed * 1000 + k)))
        histories[name], bands[name] = over_seeds(runs)
        finals[name] = {key: mean_std([run[-1][key] for run in runs]) for key in ("test_accuracy", "train_loss")}
        for h in histories[name]:
            ctx.log(f"{name}.test_accuracy", h["test_accuracy"], h["epoch"])

    ctx.metrics.update(
        max_abs_error=max(errors.values()), errors=errors,
        test_accuracy={name: f["test_accuracy"][0] for name, f in finals.items()},
        test_accuracy_std={name: f["test_accuracy"][1] for name, f in finals.items()},
        train_loss={name: f["train_loss"][0] for name, f in finals.items()},
        first_epoch_test_accuracy={name: h[0]["test_accuracy"] for name, h in histories.items()},
        seeds=p["seeds"], epochs=p["epochs"], train_size=len(train[0]), test_size=len(test[0]), widths=p["widths"])
    plot_histories(ctx, histories, f"b03-08: MLP {p['widths']}, SGD, ±std of {p['seeds']} seeds", errors=bands)
    plot_final(ctx, finals, p)

    x = torch.randn(p["bench_size"], generator=ctx.generator, requires_grad=True)
    for name, (module, native) in activations(ctx.impl).items():
        ctx.bench[name] = forward_backward(module(), native, (x,), p["bench_seconds"])
    ctx.bench["ratio"] = max(ctx.bench[name]["forward"]["ratio"] for name in activations(ctx.impl))


def plot_final(ctx: RunContext, finals: dict, p: dict) -> None:
    fig = ctx.figure(figsize=(5, 3.4))
    ax = fig.subplots()
    names = list(finals)
    means, stds = zip(*(finals[n]["test_accuracy"] for n in names))
    ax.bar(names, means, yerr=stds, capsize=4, color=[f"C{i}" for i in range(len(names))])
    ax.set(ylim=(min(means) - 0.05, min(1.0, max(means) + 0.03)), ylabel="test accuracy",
           title=f"b03-08: after {p['epochs']} epochs, mean ± std of {p['seeds']} seeds")
    ctx.save_figure(fig, "final_accuracy")
