"""b03-04 experiment: your batch norm against nn.BatchNorm1d on one batch (outputs in training and eval, the
running statistics, the gradients), then the same deep ReLU MLP on a Fashion-MNIST subset trained with your
BatchNorm1d after each hidden Linear and without, by plain SGD, over a few seeds: the mean curves with the
seeds' standard deviation as a band, and the final accuracies as mean ± std."""
from __future__ import annotations

import torch
from torch import nn

from torchkata.nn.fashion_mlp import load, mlp
from torchkata.pipeline.bench import compare
from torchkata.pipeline.runner import RunContext
from torchkata.training.loop import fit, mean_std, over_seeds, plot_histories

SCALES = {
    "smoke": {"train_size": 300, "test_size": 200, "seeds": 1, "epochs": 1, "widths": [32, 32], "batch_size": 64,
              "lr": 0.05, "bench_shape": [64, 32], "bench_seconds": 0.02},
    "default": {"train_size": 10000, "test_size": 10000, "seeds": 3, "epochs": 5, "widths": [256, 256, 256, 256],
                "batch_size": 64, "lr": 0.05, "bench_shape": [512, 256], "bench_seconds": 0.3},
    "full": {"train_size": 60000, "test_size": 10000, "seeds": 10, "epochs": 20, "widths": [512, 512, 512, 512],
             "batch_size": 64, "lr": 0.05, "bench_shape": [2048, 512], "bench_seconds": 1.0},
}


def against_native(ctx: RunContext, shape: list[int]) -> dict:
    """Largest differences from nn.BatchNorm1d after three training batches (outputs, running statistics,
    gradients) and in eval mode."""
    ours, theirs = ctx.impl.BatchNorm1d(shape[1]), nn.BatchNorm1d(shape[1])
    with torch.no_grad():
        theirs.weight.uniform_(0.5, 2.0, generator=ctx.generator)
        theirs.bias.uniform_(-1.0, 1.0, generator=ctx.generator)
    ours.load_state_dict(theirs.state_dict())
    errors = {"train_output": 0.0, "running_mean": 0.0, "running_var": 0.0, "grad_input": 0.0, "grad_weight": 0.0}
    for _ in range(3):
        x = torch.randn(shape, generator=ctx.generator) * 3 + 1
        outs, grads = [], []
        for module in (ours, theirs):
            xi = x.clone().requires_grad_()
            out = module(xi)
            out.pow(2).mean().backward()
            outs.append(out.detach())
            grads.append((xi.grad, module.weight.grad.clone()))
            module.zero_grad()
        for key, a, b in [("train_output", *outs), ("running_mean", ours.running_mean, theirs.running_mean),
                          ("running_var", ours.running_var, theirs.running_var),
                          ("grad_input", grads[0][0], grads[1][0]), ("grad_weight", grads[0][1], grads[1][1])]:
            errors[key] = max(errors[key], float((a - b).abs().max()))
    ours.eval(), theirs.eval()
    with torch.no_grad():
        errors["eval_output"] = float((ours(x) - theirs(x)).abs().max())
    return errors


def run(ctx: RunContext) -> None:
    p = ctx.params
    errors = against_native(ctx, p["bench_shape"])
    train, test = load(ctx.input("fashion-mnist"), ctx.generator, p["train_size"], p["test_size"])
    variants = {"without batch norm": None, "with your BatchNorm1d": ctx.impl.BatchNorm1d}
    histories, bands, finals = {}, {}, {}
    for label, norm in variants.items():
        runs = []
        for k in range(p["seeds"]):
            torch.manual_seed(ctx.seed * 1000 + k)  # seed k: the same initial Linear weights with and without
            model = mlp(tuple(p["widths"]), norm=norm)
            optimizer = torch.optim.SGD(model.parameters(), lr=p["lr"])
            runs.append(fit(model, optimizer, train, test, p["epochs"], p["batch_size"],
                            torch.Generator().manual_seed(ctx.seed * 1000 + k)))
        histories[label], bands[label] = over_seeds(runs)
        finals[label] = {key: mean_std([run[-1][key] for run in runs]) for key in ("test_accuracy", "train_loss")}
        for h in histories[label]:
            ctx.log(f"{label}.test_accuracy", h["test_accuracy"], h["epoch"])

    (_, without), (_, with_bn) = finals.items()
    ctx.metrics.update(
        max_abs_error=max(errors.values()), errors=errors,
        test_accuracy_with=with_bn["test_accuracy"][0], test_accuracy_with_std=with_bn["test_accuracy"][1],
        test_accuracy_without=without["test_accuracy"][0], test_accuracy_without_std=without["test_accuracy"][1],
        final={label: {f"{key}_{stat}": v for key, pair in f.items() for stat, v in zip(("mean", "std"), pair)}
               for label, f in finals.items()},
        first_epoch_test_accuracy={label: h[0]["test_accuracy"] for label, h in histories.items()},
        seeds=p["seeds"], epochs=p["epochs"], train_size=len(train[0]), test_size=len(test[0]), widths=p["widths"])
    plot_histories(ctx, histories, f"b03-04 (±std, {p['seeds']} seeds)", errors=bands)

    x = torch.randn(p["bench_shape"], generator=ctx.generator)
    ours, theirs = ctx.impl.BatchNorm1d(p["bench_shape"][1]), nn.BatchNorm1d(p["bench_shape"][1])
    ctx.bench["batch_norm_train_forward"] = compare(lambda: ours(x), lambda: theirs(x), p["bench_seconds"])
    ctx.bench.update(ratio=ctx.bench["batch_norm_train_forward"]["ratio"], shape=p["bench_shape"])
